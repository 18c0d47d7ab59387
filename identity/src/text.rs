//! Kratos UI messages (`uiText`).
//!
//! Texts, ids and context keys are byte-for-byte those of Ory Kratos v25.4.0
//! (`text/id.go`, `text/message_validation.go`, `text/message_system.go`).
//! Kratos serialises a message context with Go's `encoding/json`, which sorts
//! map keys, so contexts here are built with their keys in sorted order too
//! (`serde_json`'s `preserve_order` keeps insertion order).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// A Kratos UI message (`uiText`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiText {
    /// The message id, e.g. `4000002`.
    pub id: u64,
    /// The message text, in American English.
    pub text: String,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: UiTextType,
    /// The message's context, useful when customising messages.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context: Option<Map<String, Value>>,
}

/// The type of a [`UiText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiTextType {
    /// `info`
    Info,
    /// `error`
    Error,
    /// `success`
    Success,
}

/// Message ids (Kratos `text/id.go`).
pub mod ids {
    /// `ErrorValidation`
    pub const VALIDATION: u64 = 4_000_000;
    /// `ErrorValidationGeneric`
    pub const VALIDATION_GENERIC: u64 = 4_000_001;
    /// `ErrorValidationRequired`
    pub const VALIDATION_REQUIRED: u64 = 4_000_002;
    /// `ErrorValidationMinLength`
    pub const VALIDATION_MIN_LENGTH: u64 = 4_000_003;
    /// `ErrorValidationInvalidFormat` (pattern mismatch)
    pub const VALIDATION_INVALID_FORMAT: u64 = 4_000_004;
    /// `ErrorValidationPasswordPolicyViolationGeneric`
    pub const VALIDATION_PASSWORD_POLICY_VIOLATION: u64 = 4_000_005;
    /// `ErrorValidationInvalidCredentials`
    pub const VALIDATION_INVALID_CREDENTIALS: u64 = 4_000_006;
    /// `ErrorValidationDuplicateCredentials`
    pub const VALIDATION_DUPLICATE_CREDENTIALS: u64 = 4_000_007;
    /// `ErrorValidationTOTPVerifierWrong`
    pub const VALIDATION_TOTP_VERIFIER_WRONG: u64 = 4_000_008;
    /// `ErrorValidationIdentifierMissing`
    pub const VALIDATION_IDENTIFIER_MISSING: u64 = 4_000_009;
    /// `ErrorValidationAddressNotVerified`
    pub const VALIDATION_ADDRESS_NOT_VERIFIED: u64 = 4_000_010;
    /// `ErrorValidationMaxLength`
    pub const VALIDATION_MAX_LENGTH: u64 = 4_000_017;
    /// `ErrorValidationMinimum`
    pub const VALIDATION_MINIMUM: u64 = 4_000_018;
    /// `ErrorValidationExclusiveMinimum`
    pub const VALIDATION_EXCLUSIVE_MINIMUM: u64 = 4_000_019;
    /// `ErrorValidationMaximum`
    pub const VALIDATION_MAXIMUM: u64 = 4_000_020;
    /// `ErrorValidationExclusiveMaximum`
    pub const VALIDATION_EXCLUSIVE_MAXIMUM: u64 = 4_000_021;
    /// `ErrorValidationMultipleOf`
    pub const VALIDATION_MULTIPLE_OF: u64 = 4_000_022;
    /// `ErrorValidationMaxItems`
    pub const VALIDATION_MAX_ITEMS: u64 = 4_000_023;
    /// `ErrorValidationMinItems`
    pub const VALIDATION_MIN_ITEMS: u64 = 4_000_024;
    /// `ErrorValidationUniqueItems`
    pub const VALIDATION_UNIQUE_ITEMS: u64 = 4_000_025;
    /// `ErrorValidationWrongType`
    pub const VALIDATION_WRONG_TYPE: u64 = 4_000_026;
    /// `ErrorValidationConst`
    pub const VALIDATION_CONST: u64 = 4_000_029;
    /// `ErrorValidationConstGeneric`
    pub const VALIDATION_CONST_GENERIC: u64 = 4_000_030;
    /// `ErrorValidationPasswordIdentifierTooSimilar`
    pub const VALIDATION_PASSWORD_IDENTIFIER_TOO_SIMILAR: u64 = 4_000_031;
    /// `ErrorValidationPasswordMinLength`
    pub const VALIDATION_PASSWORD_MIN_LENGTH: u64 = 4_000_032;
    /// `ErrorValidationPasswordMaxLength`
    pub const VALIDATION_PASSWORD_MAX_LENGTH: u64 = 4_000_033;
    /// `ErrorValidationPasswordTooManyBreaches`
    pub const VALIDATION_PASSWORD_TOO_MANY_BREACHES: u64 = 4_000_034;
    /// `ErrorValidationTraitsMismatch`
    pub const VALIDATION_TRAITS_MISMATCH: u64 = 4_000_036;
    /// `ErrorValidationAccountNotFound`
    pub const VALIDATION_ACCOUNT_NOT_FOUND: u64 = 4_000_037;
    /// `ErrorValidationPasswordNewSameAsOld`
    pub const VALIDATION_PASSWORD_NEW_SAME_AS_OLD: u64 = 4_000_039;
    /// `ErrorSystemGeneric`
    pub const SYSTEM_GENERIC: u64 = 5_000_001;
}

fn error(id: u64, text: String, context: Option<Map<String, Value>>) -> UiText {
    UiText {
        id,
        text,
        kind: UiTextType::Error,
        context,
    }
}

/// Builds a context object with its keys in sorted order (as Go's
/// `encoding/json` writes a `map[string]any`).
fn context<const N: usize>(pairs: [(&str, Value); N]) -> Option<Map<String, Value>> {
    let mut pairs = pairs;
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = Map::new();
    for (key, value) in pairs {
        map.insert(key.to_owned(), value);
    }
    Some(map)
}

/// A JSON number for a Go `float64`, written as an integer when it is one
/// (Go's `encoding/json` writes `18`, not `18.0`).
pub(crate) fn float_value(value: f64) -> Value {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e15 {
        // In range and integral, so the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        let int = value as i64;
        return Value::Number(Number::from(int));
    }
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// Formats a float as Go's `fmt` `%v` does (`strconv.FormatFloat(v, 'g', -1, 64)`):
/// the shortest representation, in exponent form when the decimal exponent is
/// below -4 or at least 6, e.g. `18`, `0.5`, `1e+06`, `1.25e-05`.
pub(crate) fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.2345e6`.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = if digits.is_empty() {
        "0".to_owned()
    } else {
        digits
    };
    let nd = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let mut out = String::new();
    if value < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    } else {
        // Decimal point position relative to the start of `digits`.
        let dp = exp + 1;
        if dp <= 0 {
            out.push_str("0.");
            for _ in 0..(-dp) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if dp >= nd {
            out.push_str(&digits);
            for _ in 0..(dp - nd) {
                out.push('0');
            }
        } else {
            let split = usize::try_from(dp).unwrap_or(0);
            let (int, frac) = digits.split_at(split.min(digits.len()));
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    }
    out
}

/// Quotes a string as Go's `strconv.Quote` (and `%q`) does.
pub(crate) fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let code = c as u32;
                if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// 4000001: a generic validation error; the text is the reason.
pub fn validation_generic(reason: &str) -> UiText {
    error(
        ids::VALIDATION_GENERIC,
        reason.to_owned(),
        context([("reason", Value::from(reason))]),
    )
}

/// 4000002: `Property <property> is missing.`
pub fn validation_required(property: &str) -> UiText {
    error(
        ids::VALIDATION_REQUIRED,
        format!("Property {property} is missing."),
        context([("property", Value::from(property))]),
    )
}

/// 4000003: `length must be >= <min>, but got <actual>`
pub fn validation_min_length(min_length: u64, actual_length: u64) -> UiText {
    error(
        ids::VALIDATION_MIN_LENGTH,
        format!("length must be >= {min_length}, but got {actual_length}"),
        context([
            ("min_length", Value::from(min_length)),
            ("actual_length", Value::from(actual_length)),
        ]),
    )
}

/// 4000017: `length must be <= <max>, but got <actual>`
pub fn validation_max_length(max_length: u64, actual_length: u64) -> UiText {
    error(
        ids::VALIDATION_MAX_LENGTH,
        format!("length must be <= {max_length}, but got {actual_length}"),
        context([
            ("max_length", Value::from(max_length)),
            ("actual_length", Value::from(actual_length)),
        ]),
    )
}

/// 4000004: `does not match pattern "<pattern>"`
pub fn validation_invalid_format(pattern: &str) -> UiText {
    error(
        ids::VALIDATION_INVALID_FORMAT,
        format!("does not match pattern {}", go_quote(pattern)),
        context([("pattern", Value::from(pattern))]),
    )
}

/// 4000018: `must be >= <minimum> but found <actual>`
pub fn validation_minimum(minimum: f64, actual: f64) -> UiText {
    error(
        ids::VALIDATION_MINIMUM,
        format!(
            "must be >= {} but found {}",
            go_float(minimum),
            go_float(actual)
        ),
        context([
            ("minimum", float_value(minimum)),
            ("actual", float_value(actual)),
        ]),
    )
}

/// 4000019: `must be > <minimum> but found <actual>`
pub fn validation_exclusive_minimum(minimum: f64, actual: f64) -> UiText {
    error(
        ids::VALIDATION_EXCLUSIVE_MINIMUM,
        format!(
            "must be > {} but found {}",
            go_float(minimum),
            go_float(actual)
        ),
        context([
            ("minimum", float_value(minimum)),
            ("actual", float_value(actual)),
        ]),
    )
}

/// 4000020: `must be <= <maximum> but found <actual>`
pub fn validation_maximum(maximum: f64, actual: f64) -> UiText {
    error(
        ids::VALIDATION_MAXIMUM,
        format!(
            "must be <= {} but found {}",
            go_float(maximum),
            go_float(actual)
        ),
        context([
            ("maximum", float_value(maximum)),
            ("actual", float_value(actual)),
        ]),
    )
}

/// 4000021: `must be < <maximum> but found <actual>`
pub fn validation_exclusive_maximum(maximum: f64, actual: f64) -> UiText {
    error(
        ids::VALIDATION_EXCLUSIVE_MAXIMUM,
        format!(
            "must be < {} but found {}",
            go_float(maximum),
            go_float(actual)
        ),
        context([
            ("maximum", float_value(maximum)),
            ("actual", float_value(actual)),
        ]),
    )
}

/// 4000022: `<actual> not multipleOf <base>`
pub fn validation_multiple_of(base: f64, actual: f64) -> UiText {
    error(
        ids::VALIDATION_MULTIPLE_OF,
        format!("{} not multipleOf {}", go_float(actual), go_float(base)),
        context([("base", float_value(base)), ("actual", float_value(actual))]),
    )
}

/// 4000023: `maximum <max> items allowed, but found <actual> items`
pub fn validation_max_items(max_items: u64, actual_items: u64) -> UiText {
    error(
        ids::VALIDATION_MAX_ITEMS,
        format!("maximum {max_items} items allowed, but found {actual_items} items"),
        context([
            ("max_items", Value::from(max_items)),
            ("actual_items", Value::from(actual_items)),
        ]),
    )
}

/// 4000024: `minimum <min> items allowed, but found <actual> items`
pub fn validation_min_items(min_items: u64, actual_items: u64) -> UiText {
    error(
        ids::VALIDATION_MIN_ITEMS,
        format!("minimum {min_items} items allowed, but found {actual_items} items"),
        context([
            ("min_items", Value::from(min_items)),
            ("actual_items", Value::from(actual_items)),
        ]),
    )
}

/// 4000025: `items at index <a> and <b> are equal`
pub fn validation_unique_items(index_a: u64, index_b: u64) -> UiText {
    error(
        ids::VALIDATION_UNIQUE_ITEMS,
        format!("items at index {index_a} and {index_b} are equal"),
        context([
            ("index_a", Value::from(index_a)),
            ("index_b", Value::from(index_b)),
        ]),
    )
}

/// 4000026: `expected <a or b>, but got <actual>`
pub fn validation_wrong_type<S: AsRef<str>>(allowed_types: &[S], actual_type: &str) -> UiText {
    let allowed: Vec<&str> = allowed_types.iter().map(AsRef::as_ref).collect();
    error(
        ids::VALIDATION_WRONG_TYPE,
        format!("expected {}, but got {actual_type}", allowed.join(" or ")),
        context([
            ("allowed_types", Value::from(allowed.clone())),
            ("actual_type", Value::from(actual_type)),
        ]),
    )
}

/// 4000029: `must be equal to constant <expected>`.
///
/// Kratos passes the expected value as Go renders it with `%#v` (strings and
/// numbers quoted, e.g. `"admin"`); the schema module produces it that way.
pub fn validation_const(expected: &str) -> UiText {
    error(
        ids::VALIDATION_CONST,
        format!("must be equal to constant {expected}"),
        context([("expected", Value::from(expected))]),
    )
}

/// 4000030: `const failed` (object or array constants).
pub fn validation_const_generic() -> UiText {
    error(
        ids::VALIDATION_CONST_GENERIC,
        "const failed".to_owned(),
        None,
    )
}

/// 4000005: `The password can not be used because <reason>.`
pub fn validation_password_policy_violation(reason: &str) -> UiText {
    error(
        ids::VALIDATION_PASSWORD_POLICY_VIOLATION,
        format!("The password can not be used because {reason}."),
        context([("reason", Value::from(reason))]),
    )
}

/// 4000031: the password is too similar to the identifier.
pub fn validation_password_identifier_too_similar() -> UiText {
    error(
        ids::VALIDATION_PASSWORD_IDENTIFIER_TOO_SIMILAR,
        "The password can not be used because it is too similar to the identifier.".to_owned(),
        None,
    )
}

/// 4000032: `The password must be at least <min> characters long, but got <actual>.`
pub fn validation_password_min_length(min_length: u64, actual_length: u64) -> UiText {
    error(
        ids::VALIDATION_PASSWORD_MIN_LENGTH,
        format!(
            "The password must be at least {min_length} characters long, but got {actual_length}."
        ),
        context([
            ("min_length", Value::from(min_length)),
            ("actual_length", Value::from(actual_length)),
        ]),
    )
}

/// 4000033: `The password must be at most <max> characters long, but got <actual>.`
pub fn validation_password_max_length(max_length: u64, actual_length: u64) -> UiText {
    error(
        ids::VALIDATION_PASSWORD_MAX_LENGTH,
        format!(
            "The password must be at most {max_length} characters long, but got {actual_length}."
        ),
        context([
            ("max_length", Value::from(max_length)),
            ("actual_length", Value::from(actual_length)),
        ]),
    )
}

/// 4000034: the password was found in data breaches.
pub fn validation_password_too_many_breaches(breaches: i64) -> UiText {
    error(
        ids::VALIDATION_PASSWORD_TOO_MANY_BREACHES,
        "The password has been found in data breaches and must no longer be used.".to_owned(),
        context([("breaches", Value::from(breaches))]),
    )
}

/// 4000039: the new password equals the old one.
pub fn validation_password_new_same_as_old() -> UiText {
    error(
        ids::VALIDATION_PASSWORD_NEW_SAME_AS_OLD,
        "The new password must be different from the old password.".to_owned(),
        None,
    )
}

/// 4000006: invalid credentials.
pub fn validation_invalid_credentials() -> UiText {
    error(
        ids::VALIDATION_INVALID_CREDENTIALS,
        "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.".to_owned(),
        None,
    )
}

/// 4000007: duplicate identifier.
pub fn validation_duplicate_credentials() -> UiText {
    error(
        ids::VALIDATION_DUPLICATE_CREDENTIALS,
        "An account with the same identifier (email, phone, username, ...) exists already."
            .to_owned(),
        None,
    )
}

/// 4000009: no login identifiers found.
pub fn validation_identifier_missing() -> UiText {
    error(
        ids::VALIDATION_IDENTIFIER_MISSING,
        "Could not find any login identifiers. Did you forget to set them? This could also be caused by a server misconfiguration.".to_owned(),
        None,
    )
}

/// 4000010: address not verified.
pub fn validation_address_not_verified() -> UiText {
    error(
        ids::VALIDATION_ADDRESS_NOT_VERIFIED,
        "Account not active yet. Did you forget to verify your email address?".to_owned(),
        None,
    )
}

/// 4000036: traits do not match the flow's traits.
pub fn validation_traits_mismatch() -> UiText {
    error(
        ids::VALIDATION_TRAITS_MISMATCH,
        "The provided traits do not match the traits previously associated with this flow."
            .to_owned(),
        None,
    )
}

/// 4000037: account not found.
pub fn validation_account_not_found() -> UiText {
    error(
        ids::VALIDATION_ACCOUNT_NOT_FOUND,
        "This account does not exist or has no login method configured.".to_owned(),
        None,
    )
}

/// 5000001: a generic system error; the text is the reason.
pub fn system_generic(reason: &str) -> UiText {
    error(
        ids::SYSTEM_GENERIC,
        reason.to_owned(),
        context([("reason", Value::from(reason))]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(value: Value) -> Option<Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    #[test]
    fn serialises_like_kratos() {
        let msg = validation_min_length(6, 3);
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"id":4000003,"text":"length must be >= 6, but got 3","type":"error","context":{"actual_length":3,"min_length":6}}"#
        );
        let msg = validation_const_generic();
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"id":4000030,"text":"const failed","type":"error"}"#
        );
        let back: UiText = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        assert_eq!(back, msg);
        let info: UiText =
            serde_json::from_value(json!({"id": 1, "text": "x", "type": "info"})).unwrap();
        assert_eq!(info.kind, UiTextType::Info);
        assert_eq!(
            serde_json::to_value(UiTextType::Success).unwrap(),
            json!("success")
        );
    }

    #[test]
    fn generic_and_required() {
        let m = validation_generic("something broke");
        assert_eq!(
            (m.id, m.kind, m.text.as_str()),
            (4000001, UiTextType::Error, "something broke")
        );
        assert_eq!(m.context, ctx(json!({"reason": "something broke"})));

        let m = validation_required("email");
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000002, "Property email is missing.")
        );
        assert_eq!(m.context, ctx(json!({"property": "email"})));

        let m = system_generic("db down");
        assert_eq!((m.id, m.text.as_str()), (5000001, "db down"));
        assert_eq!(m.context, ctx(json!({"reason": "db down"})));
    }

    #[test]
    fn lengths_and_pattern() {
        let m = validation_max_length(10, 12);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000017, "length must be <= 10, but got 12")
        );
        assert_eq!(
            m.context,
            ctx(json!({"actual_length": 12, "max_length": 10}))
        );

        let m = validation_invalid_format("^[a-z]\\d+$");
        assert_eq!(m.id, 4000004);
        assert_eq!(m.text, r#"does not match pattern "^[a-z]\\d+$""#);
        assert_eq!(m.context, ctx(json!({"pattern": "^[a-z]\\d+$"})));
    }

    #[test]
    fn numeric() {
        let m = validation_minimum(18.0, 17.0);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000018, "must be >= 18 but found 17")
        );
        assert_eq!(m.context, ctx(json!({"actual": 17, "minimum": 18})));
        assert_eq!(
            serde_json::to_string(&m.context).unwrap(),
            r#"{"actual":17,"minimum":18}"#
        );

        let m = validation_exclusive_minimum(0.5, 0.25);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000019, "must be > 0.5 but found 0.25")
        );
        assert_eq!(m.context, ctx(json!({"actual": 0.25, "minimum": 0.5})));

        let m = validation_maximum(100.0, 1_000_000.0);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000020, "must be <= 100 but found 1e+06")
        );
        assert_eq!(m.context, ctx(json!({"actual": 1_000_000, "maximum": 100})));

        let m = validation_exclusive_maximum(10.0, 10.0);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000021, "must be < 10 but found 10")
        );
        assert_eq!(m.context, ctx(json!({"actual": 10, "maximum": 10})));

        let m = validation_multiple_of(2.0, 3.0);
        assert_eq!((m.id, m.text.as_str()), (4000022, "3 not multipleOf 2"));
        assert_eq!(m.context, ctx(json!({"actual": 3, "base": 2})));
    }

    #[test]
    fn go_float_formatting() {
        for (v, s) in [
            (0.0, "0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.000_012_5, "1.25e-05"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (3.5, "3.5"),
        ] {
            assert_eq!(go_float(v), s, "{v}");
        }
    }

    #[test]
    fn items_and_types() {
        let m = validation_max_items(3, 5);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000023, "maximum 3 items allowed, but found 5 items")
        );
        assert_eq!(m.context, ctx(json!({"actual_items": 5, "max_items": 3})));

        let m = validation_min_items(1, 0);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000024, "minimum 1 items allowed, but found 0 items")
        );
        assert_eq!(m.context, ctx(json!({"actual_items": 0, "min_items": 1})));

        let m = validation_unique_items(0, 2);
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000025, "items at index 0 and 2 are equal")
        );
        assert_eq!(m.context, ctx(json!({"index_a": 0, "index_b": 2})));

        let m = validation_wrong_type(&["string", "null"], "number");
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000026, "expected string or null, but got number")
        );
        assert_eq!(
            serde_json::to_string(&m.context).unwrap(),
            r#"{"actual_type":"number","allowed_types":["string","null"]}"#
        );
    }

    #[test]
    fn consts() {
        let m = validation_const("\"admin\"");
        assert_eq!(
            (m.id, m.text.as_str()),
            (4000029, "must be equal to constant \"admin\"")
        );
        assert_eq!(m.context, ctx(json!({"expected": "\"admin\""})));
        let m = validation_const_generic();
        assert_eq!(
            (m.id, m.text.as_str(), m.context),
            (4000030, "const failed", None)
        );
    }

    #[test]
    fn password_and_credentials() {
        let m = validation_password_policy_violation("it is too short");
        assert_eq!(m.id, 4000005);
        assert_eq!(
            m.text,
            "The password can not be used because it is too short."
        );
        assert_eq!(m.context, ctx(json!({"reason": "it is too short"})));

        let m = validation_invalid_credentials();
        assert_eq!(m.id, 4000006);
        assert_eq!(m.text, "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.");
        assert_eq!(m.context, None);

        let m = validation_duplicate_credentials();
        assert_eq!(m.id, 4000007);
        assert_eq!(
            m.text,
            "An account with the same identifier (email, phone, username, ...) exists already."
        );

        let m = validation_password_identifier_too_similar();
        assert_eq!(m.id, 4000031);
        assert_eq!(
            m.text,
            "The password can not be used because it is too similar to the identifier."
        );

        let m = validation_password_min_length(8, 4);
        assert_eq!(m.id, 4000032);
        assert_eq!(
            m.text,
            "The password must be at least 8 characters long, but got 4."
        );
        assert_eq!(m.context, ctx(json!({"actual_length": 4, "min_length": 8})));

        let m = validation_password_max_length(72, 80);
        assert_eq!(m.id, 4000033);
        assert_eq!(
            m.text,
            "The password must be at most 72 characters long, but got 80."
        );
        assert_eq!(
            m.context,
            ctx(json!({"actual_length": 80, "max_length": 72}))
        );

        let m = validation_password_too_many_breaches(42);
        assert_eq!(m.id, 4000034);
        assert_eq!(
            m.text,
            "The password has been found in data breaches and must no longer be used."
        );
        assert_eq!(m.context, ctx(json!({"breaches": 42})));

        let m = validation_password_new_same_as_old();
        assert_eq!(m.id, 4000039);
        assert_eq!(
            m.text,
            "The new password must be different from the old password."
        );

        assert_eq!(validation_identifier_missing().id, 4000009);
        assert_eq!(validation_address_not_verified().id, 4000010);
        assert_eq!(validation_traits_mismatch().id, 4000036);
        assert_eq!(validation_account_not_found().id, 4000037);
        for m in [
            validation_identifier_missing(),
            validation_address_not_verified(),
            validation_traits_mismatch(),
            validation_account_not_found(),
        ] {
            assert_eq!(m.kind, UiTextType::Error);
            assert_eq!(m.context, None);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("foo"), "\"foo\"");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }
}
