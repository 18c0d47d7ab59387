//! Courier messages and dispatches, serialised as Kratos does (`GET /admin/courier/messages`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$v),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s { $($s => Ok(Self::$v),)+ _ => Err(UnknownValue(s.to_owned())) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A string that names no known enum value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

string_enum!(
    /// Where a message is in its life.
    MessageStatus {
        /// Waiting for a worker.
        Queued = "queued",
        /// Claimed by a worker (until its lease runs out).
        Processing = "processing",
        /// Delivered to the SMTP server.
        Sent = "sent",
        /// Given up after `courier.message_retries` attempts.
        Abandoned = "abandoned",
    }
);

string_enum!(
    /// The channel kind of a message.
    MessageType {
        /// E-mail.
        Email = "email",
        /// SMS (not delivered by this courier yet).
        Phone = "phone",
    }
);

impl MessageType {
    /// The courier channel Kratos names for this kind of message (`courier.channels[].id`): `email` or `sms`.
    pub fn channel(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "sms",
        }
    }
}

string_enum!(
    /// The outcome of one delivery attempt.
    DispatchStatus {
        /// The attempt failed.
        Failed = "failed",
        /// The message was handed to the server.
        Success = "success",
    }
);

string_enum!(
    /// Kratos' template types (also `message.template_type`).
    TemplateType {
        /// Recovery link asked for an unknown address.
        RecoveryInvalid = "recovery_invalid",
        /// Recovery link.
        RecoveryValid = "recovery_valid",
        /// Recovery code asked for an unknown address.
        RecoveryCodeInvalid = "recovery_code_invalid",
        /// Recovery code.
        RecoveryCodeValid = "recovery_code_valid",
        /// Verification link asked for an unknown address.
        VerificationInvalid = "verification_invalid",
        /// Verification link.
        VerificationValid = "verification_valid",
        /// Verification code asked for an unknown address.
        VerificationCodeInvalid = "verification_code_invalid",
        /// Verification code.
        VerificationCodeValid = "verification_code_valid",
        /// One-time login code.
        LoginCodeValid = "login_code_valid",
        /// One-time registration code.
        RegistrationCodeValid = "registration_code_valid",
        /// A test template (`Subject` and `Body` come from the data).
        Stub = "stub",
    }
);

impl TemplateType {
    /// The template directory / `courier.templates` key (`recovery_code`) and whether it is the `valid` variant.
    pub fn dir_and_variant(self) -> (&'static str, Variant) {
        match self {
            Self::RecoveryInvalid => ("recovery", Variant::Invalid),
            Self::RecoveryValid => ("recovery", Variant::Valid),
            Self::RecoveryCodeInvalid => ("recovery_code", Variant::Invalid),
            Self::RecoveryCodeValid => ("recovery_code", Variant::Valid),
            Self::VerificationInvalid => ("verification", Variant::Invalid),
            Self::VerificationValid => ("verification", Variant::Valid),
            Self::VerificationCodeInvalid => ("verification_code", Variant::Invalid),
            Self::VerificationCodeValid => ("verification_code", Variant::Valid),
            Self::LoginCodeValid => ("login_code", Variant::Valid),
            Self::RegistrationCodeValid => ("registration_code", Variant::Valid),
            Self::Stub => ("stub", Variant::Valid),
        }
    }
}

/// `valid` or `invalid` (the address is known or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The address belongs to an identity.
    Valid,
    /// It does not.
    Invalid,
}

impl Variant {
    /// `valid` / `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
        }
    }
}

/// One delivery attempt of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Attempt id.
    pub id: Uuid,
    /// The message.
    pub message_id: Uuid,
    /// `failed` or `success`.
    pub status: DispatchStatus,
    /// What went wrong (absent on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A message in the outbox. Serialises to Kratos' `message` object; `body_plaintext`, `template_data`,
/// `identity_id` and `next_attempt_at` are internal and not part of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Message id.
    pub id: Uuid,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// `email`.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The address.
    pub recipient: String,
    /// HTML body.
    pub body: String,
    /// Subject line.
    pub subject: String,
    /// Which template rendered it.
    pub template_type: TemplateType,
    /// The delivery channel, as Kratos writes it: `email` for e-mail.
    pub channel: Option<String>,
    /// Delivery attempts so far.
    pub send_count: u32,
    /// Attempts, newest first (only when loaded one by one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dispatches: Vec<Dispatch>,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Plaintext body (multipart alternative).
    #[serde(skip)]
    pub body_plaintext: String,
    /// The data the templates were rendered with.
    #[serde(skip)]
    pub template_data: Value,
    /// The identity the message is about, if known.
    #[serde(skip)]
    pub identity_id: Option<Uuid>,
    /// Not before this time is the message tried (again).
    #[serde(skip)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The claim that holds it while `processing` (marking it needs the same claim).
    #[serde(skip)]
    pub claim: Option<Uuid>,
}

/// What [`super::CourierStore::enqueue`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub body: String,
    /// Plaintext body.
    pub body_plaintext: String,
    /// Which template.
    pub template_type: TemplateType,
    /// The data it was rendered with.
    pub template_data: Value,
    /// The identity it is about.
    pub identity_id: Option<Uuid>,
}
