//! Sessions: the model, tokens, assurance levels, issuing and persistence.

pub mod cookie;
pub mod manager;
pub mod pool;
pub mod token;

pub use token::TokenHash;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Authenticator assurance level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    /// No authentication.
    #[default]
    Aal0,
    /// One factor.
    Aal1,
    /// Two factors.
    Aal2,
    /// Reserved.
    Aal3,
}

impl Aal {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aal0 => "aal0",
            Self::Aal1 => "aal1",
            Self::Aal2 => "aal2",
            Self::Aal3 => "aal3",
        }
    }
}

impl std::str::FromStr for Aal {
    type Err = crate::model::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aal0" => Ok(Self::Aal0),
            "aal1" => Ok(Self::Aal1),
            "aal2" => Ok(Self::Aal2),
            "aal3" => Ok(Self::Aal3),
            other => Err(crate::model::UnknownValue(other.to_owned())),
        }
    }
}

/// One completed authentication step (an AMR entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    /// `password`, `oidc`, `totp`, … (Kratos' credential type names).
    pub method: String,
    /// The level this step counts for.
    pub aal: Aal,
    /// When it was completed.
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
    /// OIDC/SAML provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Uuid>,
}

/// The assurance level a list of completed methods gives, as Kratos computes it: aal2 needs a first and a second
/// factor, aal1 a first factor, anything else is aal0.
pub fn aal_of(methods: &[AuthenticationMethod]) -> Aal {
    let first = methods.iter().any(|m| m.aal == Aal::Aal1);
    let second = methods.iter().any(|m| m.aal >= Aal::Aal2);
    match (first, second) {
        (true, true) => Aal::Aal2,
        (true, false) => Aal::Aal1,
        _ => Aal::Aal0,
    }
}

/// A device a session was used from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Row id.
    pub id: Uuid,
    /// Client IP.
    pub ip_address: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// `City, CC` from CDN headers.
    pub location: Option<String>,
    /// First seen.
    pub created_at: OffsetDateTime,
    /// Last seen.
    pub updated_at: OffsetDateTime,
}

/// A session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Session id.
    pub id: Uuid,
    /// Whose session.
    pub identity_id: Uuid,
    /// SHA-256 of the session token (the token itself is never stored).
    pub token_hash: TokenHash,
    /// SHA-256 of the logout token.
    pub logout_token_hash: TokenHash,
    /// Stored active flag (revocation clears it).
    pub active: bool,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Last authentication.
    pub authenticated_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// Assurance level.
    pub aal: Aal,
    /// Completed methods.
    pub authentication_methods: Vec<AuthenticationMethod>,
    /// Devices.
    pub devices: Vec<Device>,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Session {
    /// Whether the session may be used at `now` (the identity's state is checked separately).
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.active && self.expires_at > now
    }
}

/// What the session cache keeps per token: enough to answer whoami and feed mutators without touching SQL or
/// parsing the identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    /// Session id.
    pub session_id: Uuid,
    /// Identity id.
    pub identity_id: Uuid,
    /// Expiry as unix seconds.
    pub expires_at: i64,
    /// Assurance level.
    pub aal: Aal,
    /// Whether the identity has a second factor available (for `required_aal: highest_available`).
    pub identity_has_aal2: bool,
    /// The whoami body (the session JSON with its identity), pre-rendered.
    pub body: String,
    /// The identity's traits as JSON text (for mutators).
    pub traits: String,
    /// The identity's public metadata as JSON text.
    pub metadata_public: String,
    /// Whether the identity's e-mail trait (`traits.email`) is a verified address; see [`email_verified`].
    /// `None` only in entries that an older version wrote to Redis: the cache treats those as stale and reloads
    /// them, so a missing field never reads as verified.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// `body` parsed, once per snapshot (not stored; rebuilt on demand).
    #[serde(skip)]
    pub parsed: ParsedBody,
}

/// A lazily parsed copy of [`SessionSnapshot::body`], shared by every request that uses the snapshot. Equality
/// ignores it: it is derived from `body`.
#[derive(Debug, Clone, Default)]
pub struct ParsedBody(std::sync::OnceLock<std::sync::Arc<serde_json::Value>>);

impl From<serde_json::Value> for ParsedBody {
    fn from(v: serde_json::Value) -> Self {
        Self(std::sync::OnceLock::from(std::sync::Arc::new(v)))
    }
}

impl PartialEq for ParsedBody {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// Whether the e-mail address an identity presents is verified, from the identity as whoami renders it: its
/// `traits.email` is a string and one of its `verifiable_addresses` sent `via` e-mail has that value (compared
/// without case, as addresses are stored lower-case) and `verified: true`. Another verified address of the same
/// identity does not count. False for anything else (no e-mail trait, no identity, a non-Kratos body).
pub fn email_verified(identity: &serde_json::Value) -> bool {
    let Some(email) = identity
        .get("traits")
        .and_then(|t| t.get("email"))
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty())
    else {
        return false;
    };
    identity
        .get("verifiable_addresses")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|a| {
                a.get("via").and_then(serde_json::Value::as_str) == Some("email")
                    && a.get("verified").and_then(serde_json::Value::as_bool) == Some(true)
                    && a.get("value")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case(email))
            })
        })
}

impl SessionSnapshot {
    /// Whether the e-mail trait is verified (false for an entry written by an older version).
    pub fn is_email_verified(&self) -> bool {
        self.email_verified == Some(true)
    }

    /// The whoami body as JSON, parsed on first use and then shared (the edge proxy's templates read it per
    /// request; a cached snapshot is parsed once, not once per request).
    pub fn body_json(&self) -> Result<std::sync::Arc<serde_json::Value>, serde_json::Error> {
        if let Some(v) = self.parsed.0.get() {
            return Ok(v.clone());
        }
        let parsed = std::sync::Arc::new(serde_json::from_str(&self.body)?);
        Ok(self.parsed.0.get_or_init(|| parsed).clone())
    }

    /// Whether the snapshot is still usable at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now.unix_timestamp()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::email_verified;
    use serde_json::json;

    #[test]
    fn only_a_verified_address_equal_to_the_email_trait_counts() {
        let identity = |email: serde_json::Value, addresses: serde_json::Value| json!({"traits": {"email": email}, "verifiable_addresses": addresses});
        let addr = |value: &str, via: &str, verified: bool| json!({"value": value, "via": via, "verified": verified, "status": "completed"});
        let cases = [
            (
                identity(
                    json!("ann@example.com"),
                    json!([addr("ann@example.com", "email", true)]),
                ),
                true,
            ),
            (
                identity(
                    json!("Ann@Example.com"),
                    json!([addr("ann@example.com", "email", true)]),
                ),
                true,
            ),
            (
                identity(
                    json!("ann@example.com"),
                    json!([addr("ann@example.com", "email", false)]),
                ),
                false,
            ),
            // Another verified address of the same identity is not the one injected.
            (
                identity(
                    json!("ceo@corp.example"),
                    json!([
                        addr("ceo@corp.example", "email", false),
                        addr("me@home.example", "email", true)
                    ]),
                ),
                false,
            ),
            (
                identity(
                    json!("ann@example.com"),
                    json!([addr("ann@example.com", "sms", true)]),
                ),
                false,
            ),
            (identity(json!("ann@example.com"), json!([])), false),
            (json!({"traits": {"email": "ann@example.com"}}), false),
            (
                identity(json!(null), json!([addr("ann@example.com", "email", true)])),
                false,
            ),
            (identity(json!(""), json!([addr("", "email", true)])), false),
            (json!({"traits": {"username": "ann"}}), false),
            (json!(null), false),
            (
                json!({"traits": {"email": "ann@example.com"}, "verifiable_addresses": [{"value": "ann@example.com", "via": "email", "verified": "true"}]}),
                false,
            ),
        ];
        for (i, want) in cases {
            assert_eq!(email_verified(&i), want, "{i}");
        }
    }
}
