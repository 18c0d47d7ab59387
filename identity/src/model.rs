//! The identity model: an identity, its credentials and its addresses.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// Whether an identity may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    /// May sign in and use sessions.
    #[default]
    Active,
    /// Disabled: no session of it is valid.
    Inactive,
}

impl IdentityState {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

impl FromStr for IdentityState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// A string that is not one of the allowed values of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

/// The kinds of credentials Kratos knows. Every one may be stored; strategies decide which are usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    /// Password.
    Password,
    /// Social sign-in.
    Oidc,
    /// Time-based one-time password.
    Totp,
    /// Backup codes.
    LookupSecret,
    /// WebAuthn security keys.
    Webauthn,
    /// One-time codes by e-mail or SMS.
    Code,
    /// Passkeys.
    Passkey,
    /// Profile (used in AMR).
    Profile,
    /// SAML.
    Saml,
    /// Recovery by link (used in AMR).
    LinkRecovery,
    /// Recovery by code (used in AMR).
    CodeRecovery,
}

impl CredentialType {
    /// All types, in wire-name order.
    pub const ALL: [CredentialType; 11] = [
        Self::Password,
        Self::Oidc,
        Self::Totp,
        Self::LookupSecret,
        Self::Webauthn,
        Self::Code,
        Self::Passkey,
        Self::Profile,
        Self::Saml,
        Self::LinkRecovery,
        Self::CodeRecovery,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
            Self::Totp => "totp",
            Self::LookupSecret => "lookup_secret",
            Self::Webauthn => "webauthn",
            Self::Code => "code",
            Self::Passkey => "passkey",
            Self::Profile => "profile",
            Self::Saml => "saml",
            Self::LinkRecovery => "link_recovery",
            Self::CodeRecovery => "code_recovery",
        }
    }

    /// Whether this credential alone lets a user sign in (first factor).
    pub fn is_first_factor(self) -> bool {
        matches!(
            self,
            Self::Password | Self::Oidc | Self::Saml | Self::Passkey | Self::Code
        )
    }
}

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialType {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// One credential of an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Row id.
    pub id: Uuid,
    /// Which kind.
    pub kind: CredentialType,
    /// The identifiers a user signs in with (e-mail, username, `provider:subject`).
    pub identifiers: Vec<String>,
    /// Method-specific configuration (for passwords: `{"hashed_password": ...}`).
    pub config: Value,
    /// Config format version.
    pub version: i32,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Credential {
    /// The stored password hash, if this is a password credential that has one.
    pub fn hashed_password(&self) -> Option<&str> {
        self.config.get("hashed_password").and_then(Value::as_str)
    }
}

/// Verification state of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    /// Not yet sent.
    #[default]
    Pending,
    /// A verification message went out.
    Sent,
    /// Verified.
    Completed,
}

impl VerificationStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Completed => "completed",
        }
    }
}

impl FromStr for VerificationStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "completed" => Ok(Self::Completed),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// An address that can be verified (e-mail or phone).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiableAddress {
    /// Row id.
    pub id: Uuid,
    /// `email` or `sms`.
    pub via: String,
    /// The address.
    pub value: String,
    /// Whether it was verified.
    pub verified: bool,
    /// When it was verified.
    pub verified_at: Option<OffsetDateTime>,
    /// Progress of verification.
    pub status: VerificationStatus,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An address recovery messages can be sent to.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryAddress {
    /// Row id.
    pub id: Uuid,
    /// `email` or `sms`.
    pub via: String,
    /// The address.
    pub value: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An identity: someone who can sign in.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Identity id.
    pub id: Uuid,
    /// Which identity schema its traits follow.
    pub schema_id: String,
    /// Traits, validated against the schema.
    pub traits: Value,
    /// Active or disabled.
    pub state: IdentityState,
    /// When `state` last changed.
    pub state_changed_at: Option<OffsetDateTime>,
    /// Metadata the user may read.
    pub metadata_public: Option<Value>,
    /// Metadata only the admin API shows.
    pub metadata_admin: Option<Value>,
    /// Id in an external system, unique.
    pub external_id: Option<String>,
    /// Organization (B2B), if any.
    pub organization_id: Option<Uuid>,
    /// Credentials by type.
    pub credentials: BTreeMap<CredentialType, Credential>,
    /// Verifiable addresses.
    pub verifiable_addresses: Vec<VerifiableAddress>,
    /// Recovery addresses.
    pub recovery_addresses: Vec<RecoveryAddress>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Identity {
    /// A new active identity without credentials or addresses.
    pub fn new(schema_id: impl Into<String>, traits: Value, now: OffsetDateTime) -> Self {
        Self {
            id: Uuid::new_v4(),
            schema_id: schema_id.into(),
            traits,
            state: IdentityState::Active,
            state_changed_at: Some(now),
            metadata_public: None,
            metadata_admin: None,
            external_id: None,
            organization_id: None,
            credentials: BTreeMap::new(),
            verifiable_addresses: Vec::new(),
            recovery_addresses: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Replaces the verifiable and recovery addresses with those derived from the traits, keeping the id and
    /// verification state of every address that is still present.
    pub fn set_addresses(
        &mut self,
        verifiable: &[(String, String)],
        recovery: &[(String, String)],
        now: OffsetDateTime,
    ) {
        let old = std::mem::take(&mut self.verifiable_addresses);
        for (via, value) in verifiable {
            if self
                .verifiable_addresses
                .iter()
                .any(|a| &a.via == via && &a.value == value)
            {
                continue;
            }
            let kept = old.iter().find(|a| &a.via == via && &a.value == value);
            self.verifiable_addresses
                .push(kept.cloned().unwrap_or_else(|| VerifiableAddress {
                    id: Uuid::new_v4(),
                    via: via.clone(),
                    value: value.clone(),
                    verified: false,
                    verified_at: None,
                    status: VerificationStatus::Pending,
                    created_at: now,
                    updated_at: now,
                }));
        }
        let old = std::mem::take(&mut self.recovery_addresses);
        for (via, value) in recovery {
            if self
                .recovery_addresses
                .iter()
                .any(|a| &a.via == via && &a.value == value)
            {
                continue;
            }
            let kept = old.iter().find(|a| &a.via == via && &a.value == value);
            self.recovery_addresses
                .push(kept.cloned().unwrap_or_else(|| RecoveryAddress {
                    id: Uuid::new_v4(),
                    via: via.clone(),
                    value: value.clone(),
                    created_at: now,
                    updated_at: now,
                }));
        }
    }

    /// Sets (or replaces) the identifiers of a credential, creating the credential with an empty config if needed.
    pub fn set_credential_identifiers(
        &mut self,
        kind: CredentialType,
        identifiers: Vec<String>,
        now: OffsetDateTime,
    ) {
        match self.credentials.get_mut(&kind) {
            Some(c) => {
                if c.identifiers != identifiers {
                    c.identifiers = identifiers;
                    c.updated_at = now;
                }
            }
            None => {
                self.credentials.insert(
                    kind,
                    Credential {
                        id: Uuid::new_v4(),
                        kind,
                        identifiers,
                        config: Value::Object(Default::default()),
                        version: 0,
                        created_at: now,
                        updated_at: now,
                    },
                );
            }
        }
    }

    /// Whether the identity may currently sign in.
    pub fn is_active(&self) -> bool {
        self.state == IdentityState::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-01 00:00 UTC)
    }

    #[test]
    fn credential_types_round_trip_through_their_names() {
        for t in CredentialType::ALL {
            assert_eq!(t.as_str().parse::<CredentialType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        assert!("magic".parse::<CredentialType>().is_err());
    }

    #[test]
    fn set_addresses_keeps_verification_state_of_unchanged_addresses() {
        let mut i = Identity::new("default", json!({}), now());
        let e = ("email".to_owned(), "a@example.com".to_owned());
        i.set_addresses(std::slice::from_ref(&e), &[], now());
        i.verifiable_addresses[0].verified = true;
        let id = i.verifiable_addresses[0].id;
        let f = ("email".to_owned(), "b@example.com".to_owned());
        i.set_addresses(&[e.clone(), f, e], &[], now());
        assert_eq!(i.verifiable_addresses.len(), 2, "duplicates collapse");
        assert_eq!(i.verifiable_addresses[0].id, id);
        assert!(i.verifiable_addresses[0].verified);
        assert!(!i.verifiable_addresses[1].verified);
    }
}
