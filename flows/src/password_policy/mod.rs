//! Password policy, matching Kratos v25's `DefaultPasswordValidator` plus the
//! bcrypt hasher's length limit.
//!
//! Order of checks (the order Kratos reports them in):
//! 1. minimum length in **bytes** (`min_password_length`, 4000032);
//! 2. identifier similarity (4000031), see [`similar`];
//! 3. Have I Been Pwned k-anonymity look-up (4000034), through a [`BreachRange`]
//!    supplied by the caller; failures are ignored when `ignore_network_errors`;
//! 4. maximum length in bytes (4000033) — in Kratos this comes from the bcrypt hasher
//!    (72 bytes), which runs after the validator.
//!
//! Nothing is cached here; the caller may cache range answers.

mod breach;
mod similarity;

pub use breach::{
    range_count, range_url, sha1_prefix_suffix, BreachError, BreachRange, DEFAULT_HIBP_HOST,
};
pub use similarity::{similar, MAX_SIMILARITY_CHECK_LENGTH, MIN_IDENTIFIER_PASSWORD_DISTANCE};

use serde_json::{Map, Value};

/// Kratos' `min_password_length` default.
pub const DEFAULT_MIN_LENGTH: usize = 8;
/// bcrypt's input limit; Kratos' bcrypt hasher rejects longer passwords with 4000033.
pub const BCRYPT_MAX_LENGTH: usize = 72;

/// UI text ids (Kratos `text/id.go`).
pub const ID_PASSWORD_POLICY_GENERIC: u64 = 4_000_005;
pub const ID_PASSWORD_TOO_SIMILAR: u64 = 4_000_031;
pub const ID_PASSWORD_TOO_SHORT: u64 = 4_000_032;
pub const ID_PASSWORD_TOO_LONG: u64 = 4_000_033;
pub const ID_PASSWORD_BREACHED: u64 = 4_000_034;

/// `selfservice.methods.password.config` as far as the policy is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Minimum length in bytes (Kratos compares `len(password)`). Default 8.
    pub min_length: usize,
    /// Maximum length in bytes; `0` disables the limit. Default 72: Kratos has no
    /// maximum in its validator, but its default hasher (bcrypt) rejects passwords
    /// longer than 72 bytes with 4000033. Use 0 when hashing with argon2.
    pub max_length: usize,
    /// `identifier_similarity_check_enabled`, default true.
    pub identifier_similarity_check: bool,
    /// `haveibeenpwned_enabled`, default true (as in Kratos).
    pub haveibeenpwned_enabled: bool,
    /// `max_breaches`: a password seen in more breaches than this is rejected. Default 0.
    pub max_breaches: u64,
    /// `ignore_network_errors`, default true.
    pub ignore_network_errors: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
            max_length: BCRYPT_MAX_LENGTH,
            identifier_similarity_check: true,
            haveibeenpwned_enabled: true,
            max_breaches: 0,
            ignore_network_errors: true,
        }
    }
}

/// Why a password was refused. Lengths are byte lengths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("The password must be at least {min} characters long, but got {actual}.")]
    TooShort { min: usize, actual: usize },
    #[error("The password must be at most {max} characters long, but got {actual}.")]
    TooLong { max: usize, actual: usize },
    #[error("The password can not be used because it is too similar to the identifier.")]
    TooSimilar,
    #[error("The password has been found in data breaches and must no longer be used.")]
    Breached { count: u64 },
    /// The breach service could not be asked and `ignore_network_errors` is off.
    #[error("The password can not be used because {}.", UNCHECKED_REASON)]
    Unchecked,
}

/// `reason` used for [`Violation::Unchecked`] (4000005).
pub const UNCHECKED_REASON: &str =
    "it could not be checked against known data breaches: the leaked password service is unavailable";

/// The parts of a Kratos `UiText` (`type` is always `"error"`). An empty `context`
/// means Kratos sends no `context` key (4000031).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicyMessage {
    pub id: u64,
    pub text: String,
    pub context: Map<String, Value>,
}

impl Violation {
    /// The Kratos message (id, exact English text, context).
    pub fn message(&self) -> PolicyMessage {
        let mut context = Map::new();
        let id = match self {
            Violation::TooShort { min, actual } => {
                context.insert("min_length".into(), Value::from(*min));
                context.insert("actual_length".into(), Value::from(*actual));
                ID_PASSWORD_TOO_SHORT
            }
            Violation::TooLong { max, actual } => {
                context.insert("max_length".into(), Value::from(*max));
                context.insert("actual_length".into(), Value::from(*actual));
                ID_PASSWORD_TOO_LONG
            }
            Violation::TooSimilar => ID_PASSWORD_TOO_SIMILAR,
            Violation::Breached { count } => {
                context.insert("breaches".into(), Value::from(*count));
                ID_PASSWORD_BREACHED
            }
            Violation::Unchecked => {
                context.insert("reason".into(), Value::from(UNCHECKED_REASON));
                ID_PASSWORD_POLICY_GENERIC
            }
        };
        PolicyMessage {
            id,
            text: self.to_string(),
            context,
        }
    }
}

/// Validates `password` for `identifier` (call once per identifier, as Kratos does;
/// an empty identifier skips the similarity check).
///
/// `breaches` is the Have I Been Pwned source; with `None` (or
/// `haveibeenpwned_enabled == false`) no look-up is made.
pub async fn check(
    config: &PolicyConfig,
    identifier: &str,
    password: &str,
    breaches: Option<&dyn BreachRange>,
) -> Result<(), Violation> {
    let actual = password.len();
    if actual < config.min_length {
        return Err(Violation::TooShort {
            min: config.min_length,
            actual,
        });
    }

    if config.identifier_similarity_check && similar(identifier, password) {
        return Err(Violation::TooSimilar);
    }

    if config.haveibeenpwned_enabled {
        if let Some(source) = breaches {
            let (prefix, suffix) = sha1_prefix_suffix(password);
            match source.range(&prefix).await {
                Ok(body) => {
                    let count = range_count(&body, &suffix);
                    if count > config.max_breaches {
                        return Err(Violation::Breached { count });
                    }
                }
                Err(_) if config.ignore_network_errors => {}
                Err(_) => return Err(Violation::Unchecked),
            }
        }
    }

    if config.max_length > 0 && actual > config.max_length {
        return Err(Violation::TooLong {
            max: config.max_length,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
