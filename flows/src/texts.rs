//! Messages and labels of the settings, recovery and verification flows, with Kratos' ids (`text/message_*.go`):
//! UIs translate by id, so the ids and context keys are what must not drift.

use identity::text::{UiText, UiTextType};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

fn text(id: u64, kind: UiTextType, text: &str, context: Option<Map<String, Value>>) -> UiText {
    UiText {
        id,
        text: text.to_owned(),
        kind,
        context,
    }
}

fn info(id: u64, t: &str) -> UiText {
    text(id, UiTextType::Info, t, None)
}

fn error(id: u64, t: &str) -> UiText {
    text(id, UiTextType::Error, t, None)
}

/// 1050001: settings saved.
pub fn settings_saved() -> UiText {
    text(
        1_050_001,
        UiTextType::Success,
        "Your changes have been saved!",
        None,
    )
}

/// 1060001: account recovered; the session may change the password until the privileged window closes.
pub fn recovery_successful(privileged_until: OffsetDateTime) -> UiText {
    let rfc3339 = identity::view::timestamp(privileged_until);
    let unix = privileged_until.unix_timestamp();
    let mut ctx = Map::new();
    ctx.insert("privilegedSessionExpiresAt".into(), rfc3339.clone());
    ctx.insert("privileged_session_expires_at".into(), rfc3339);
    ctx.insert("privileged_session_expires_at_unix".into(), json!(unix));
    text(
        1_060_001,
        UiTextType::Success,
        "You successfully recovered your account. Please change your password or set up an alternative login \
         method (e.g. social sign in) within the next 60.00 minutes.",
        Some(ctx),
    )
}

/// 1060002: recovery link sent.
pub fn recovery_link_sent() -> UiText {
    info(
        1_060_002,
        "An email containing a recovery link has been sent to the email address you provided. If you have not \
         received an email, check the spelling of the address and make sure to use the address you registered \
         with.",
    )
}

/// 1060003: recovery code sent.
pub fn recovery_code_sent() -> UiText {
    info(
        1_060_003,
        "An email containing a recovery code has been sent to the email address you provided. If you have not \
         received an email, check the spelling of the address and make sure to use the address you registered \
         with.",
    )
}

/// 1080001: verification link sent.
pub fn verification_link_sent() -> UiText {
    info(
        1_080_001,
        "An email containing a verification link has been sent to the email address you provided. If you have \
         not received an email, check the spelling of the address and make sure to use the address you \
         registered with.",
    )
}

/// 1080003: verification code sent.
pub fn verification_code_sent() -> UiText {
    info(
        1_080_003,
        "An email containing a verification code has been sent to the email address you provided. If you have \
         not received an email, check the spelling of the address and make sure to use the address you \
         registered with.",
    )
}

/// 1080002: address verified.
pub fn verification_successful() -> UiText {
    text(
        1_080_002,
        UiTextType::Success,
        "You successfully verified your email address.",
        None,
    )
}

/// 4060004: recovery link invalid or used.
pub fn recovery_token_invalid() -> UiText {
    error(
        4_060_004,
        "The recovery token is invalid or has already been used. Please retry the flow.",
    )
}

/// 4060006: recovery code invalid or used.
pub fn recovery_code_invalid() -> UiText {
    error(
        4_060_006,
        "The recovery code is invalid or has already been used. Please try again.",
    )
}

/// 4070001: verification link invalid or used.
pub fn verification_token_invalid() -> UiText {
    error(
        4_070_001,
        "The verification token is invalid or has already been used. Please retry the flow.",
    )
}

/// 4070006: verification code invalid or used.
pub fn verification_code_invalid() -> UiText {
    error(
        4_070_006,
        "The verification code is invalid or has already been used. Please try again.",
    )
}

/// 4060001 / 4070002: the flow already succeeded and cannot be retried (Kratos' wording for both).
pub fn already_completed(recovery: bool) -> UiText {
    error(
        if recovery { 4_060_001 } else { 4_070_002 },
        "The request was already completed successfully and can not be retried.",
    )
}

/// 4000001: too many wrong codes; a new code must be requested.
pub fn too_many_attempts() -> UiText {
    identity::text::validation_generic(
        "The request was submitted too often. Please request another code.",
    )
}

/// 1070010 / 1070011: the code input's label.
pub fn code_label(recovery: bool) -> UiText {
    if recovery {
        info(1_070_010, "Recovery code")
    } else {
        info(1_070_011, "Verification code")
    }
}

/// 1070008: "Resend code".
pub fn resend_code() -> UiText {
    info(1_070_008, "Resend code")
}

/// 1060000 / 1080000: a link from a message was opened; the form's button (a POST with the CSRF token) uses it.
/// Kratos has no text for this step (its link method uses the link on the GET), so the flow kind's base id is used.
pub fn confirm_link(recovery: bool) -> UiText {
    if recovery {
        info(
            1_060_000,
            "Select Continue to recover your account with the link from your email.",
        )
    } else {
        info(
            1_080_000,
            "Select Continue to verify your email address with the link from your email.",
        )
    }
}
