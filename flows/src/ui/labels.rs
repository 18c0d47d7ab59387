//! Info messages used as node labels, byte-for-byte those of Kratos v25.4.0
//! (`text/id.go`, `text/message_node.go`, `text/message_login.go`,
//! `text/message_registration.go`).
//!
//! Contexts are written with sorted keys, as Go's `encoding/json` writes a
//! `map[string]any`.

use identity::text::{UiText, UiTextType};
use serde_json::{Map, Value};

/// Label and info message ids.
pub mod ids {
    /// `InfoSelfServiceLogin`: "Sign in".
    pub const LOGIN: u64 = 1_010_001;
    /// `InfoSelfServiceLoginWith`: "Sign in with {provider}".
    pub const LOGIN_WITH: u64 = 1_010_002;
    /// `InfoSelfServiceLoginContinue`: "Continue".
    pub const LOGIN_CONTINUE: u64 = 1_010_013;
    /// `InfoSelfServiceLoginPassword`: "Sign in with password".
    pub const LOGIN_PASSWORD: u64 = 1_010_022;
    /// `InfoSelfServiceRegistration`: "Sign up".
    pub const REGISTRATION: u64 = 1_040_001;
    /// `InfoSelfServiceRegistrationWith`: "Sign up with {provider}".
    pub const REGISTRATION_WITH: u64 = 1_040_002;
    /// `InfoSelfServiceRegistrationContinue`: "Continue".
    pub const REGISTRATION_CONTINUE: u64 = 1_040_003;
    /// `InfoSelfServiceRegistrationBack`: "Back".
    pub const REGISTRATION_BACK: u64 = 1_040_008;
    /// `InfoNodeLabelInputPassword`: "Password".
    pub const NODE_PASSWORD: u64 = 1_070_001;
    /// `InfoNodeLabelGenerated`: the schema title.
    pub const NODE_GENERATED: u64 = 1_070_002;
    /// `InfoNodeLabelSave`: "Save".
    pub const NODE_SAVE: u64 = 1_070_003;
    /// `InfoNodeLabelID`: "ID".
    pub const NODE_ID: u64 = 1_070_004;
    /// `InfoNodeLabelSubmit`: "Submit".
    pub const NODE_SUBMIT: u64 = 1_070_005;
    /// `InfoNodeLabelEmail`: "Email".
    pub const NODE_EMAIL: u64 = 1_070_007;
    /// `InfoNodeLabelContinue`: "Continue".
    pub const NODE_CONTINUE: u64 = 1_070_009;
}

fn info(id: u64, text: &str) -> UiText {
    UiText {
        id,
        text: text.to_owned(),
        kind: UiTextType::Info,
        context: None,
    }
}

/// A context object with its keys sorted (Go's `encoding/json` order).
fn sorted_context(pairs: &[(&str, Value)]) -> Map<String, Value> {
    let mut pairs: Vec<(&str, Value)> = pairs.to_vec();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// 1010001 "Sign in".
pub fn login() -> UiText {
    info(ids::LOGIN, "Sign in")
}

/// 1010002 "Sign in with {provider}" (context `provider`, `provider_id`).
pub fn login_with(provider: &str, provider_id: &str) -> UiText {
    let mut text = info(ids::LOGIN_WITH, &format!("Sign in with {provider}"));
    text.context = Some(sorted_context(&[
        ("provider", Value::from(provider)),
        ("provider_id", Value::from(provider_id)),
    ]));
    text
}

/// 1010013 "Continue".
pub fn login_continue() -> UiText {
    info(ids::LOGIN_CONTINUE, "Continue")
}

/// 1010022 "Sign in with password".
pub fn login_password() -> UiText {
    info(ids::LOGIN_PASSWORD, "Sign in with password")
}

/// 1040001 "Sign up".
pub fn registration() -> UiText {
    info(ids::REGISTRATION, "Sign up")
}

/// 1040002 "Sign up with {provider}" (context `provider`, `provider_id`).
pub fn registration_with(provider: &str, provider_id: &str) -> UiText {
    let mut text = info(ids::REGISTRATION_WITH, &format!("Sign up with {provider}"));
    text.context = Some(sorted_context(&[
        ("provider", Value::from(provider)),
        ("provider_id", Value::from(provider_id)),
    ]));
    text
}

/// 1040003 "Continue".
pub fn registration_continue() -> UiText {
    info(ids::REGISTRATION_CONTINUE, "Continue")
}

/// 1040008 "Back".
pub fn registration_back() -> UiText {
    info(ids::REGISTRATION_BACK, "Back")
}

/// 1070001 "Password".
pub fn node_password() -> UiText {
    info(ids::NODE_PASSWORD, "Password")
}

/// 1070002: a label generated from a schema `title`; the text is the title,
/// the context `{"name": <node name>, "title": <title>}`.
pub fn node_generated(title: &str, name: &str) -> UiText {
    let mut text = info(ids::NODE_GENERATED, title);
    text.context = Some(sorted_context(&[
        ("title", Value::from(title)),
        ("name", Value::from(name)),
    ]));
    text
}

/// 1070003 "Save".
pub fn node_save() -> UiText {
    info(ids::NODE_SAVE, "Save")
}

/// 1070004 "ID".
pub fn node_id() -> UiText {
    info(ids::NODE_ID, "ID")
}

/// 1070005 "Submit".
pub fn node_submit() -> UiText {
    info(ids::NODE_SUBMIT, "Submit")
}

/// 1070007 "Email".
pub fn node_email() -> UiText {
    info(ids::NODE_EMAIL, "Email")
}

/// 1070009 "Continue".
pub fn node_continue() -> UiText {
    info(ids::NODE_CONTINUE, "Continue")
}
