//! The state every self-service flow shares, whatever its kind.

use crate::ui::UiContainer;
use identity::session::Aal;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Which flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    /// Sign in.
    Login,
    /// Sign up.
    Registration,
    /// Change profile or credentials.
    Settings,
    /// Regain access.
    Recovery,
    /// Prove an address.
    Verification,
}

/// Browser (cookies, CSRF, redirects) or API (native apps, tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowType {
    /// Native apps.
    Api,
    /// Browsers, including SPAs.
    Browser,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// The wire and storage name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
        impl FromStr for $ty {
            type Err = identity::model::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Self::$variant),)*
                    other => Err(identity::model::UnknownValue(other.to_owned())),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(FlowKind {
    Login => "login",
    Registration => "registration",
    Settings => "settings",
    Recovery => "recovery",
    Verification => "verification",
});

/// Where a flow stands (Kratos' `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// Login, registration, recovery and verification start here.
    ChooseMethod,
    /// Recovery and verification: a code or link went out.
    SentEmail,
    /// Completed; the flow cannot be submitted again.
    PassedChallenge,
    /// Settings start here.
    ShowForm,
    /// Settings: the change was saved.
    Success,
}

names!(FlowState {
    ChooseMethod => "choose_method",
    SentEmail => "sent_email",
    PassedChallenge => "passed_challenge",
    ShowForm => "show_form",
    Success => "success",
});

impl serde::Serialize for FlowState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

names!(FlowType {
    Api => "api",
    Browser => "browser",
});

/// One flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Flow id (the `?flow=` value).
    pub id: Uuid,
    /// Kind.
    pub kind: FlowKind,
    /// API or browser.
    pub flow_type: FlowType,
    /// Where the flow stands.
    pub state: FlowState,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// Creation.
    pub issued_at: OffsetDateTime,
    /// The init request's full URL.
    pub request_url: String,
    /// Validated `return_to`.
    pub return_to: Option<String>,
    /// Method in use.
    pub active: Option<String>,
    /// The form.
    pub ui: UiContainer,
    /// The flow's CSRF token (unmasked; empty for API flows).
    pub csrf_token: String,
    /// Owner (settings flows).
    pub identity_id: Option<Uuid>,
    /// Session (settings flows, refresh logins).
    pub session_id: Option<Uuid>,
    /// Re-authentication requested (login).
    pub refresh: bool,
    /// Requested assurance level (login).
    pub requested_aal: Aal,
    /// Echoed from submits.
    pub transient_payload: Option<Value>,
    /// Strategy state that never leaves the server.
    pub internal_context: Value,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Flow {
    /// A new flow that lives for `lifespan`.
    pub fn new(
        kind: FlowKind,
        flow_type: FlowType,
        request_url: String,
        now: OffsetDateTime,
        lifespan: Duration,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind,
            flow_type,
            state: FlowState::ChooseMethod,
            // A lifespan too long to represent means "does not expire"; inputs are checked before they get here.
            expires_at: now
                .checked_add(lifespan)
                .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc()),
            issued_at: now,
            request_url,
            return_to: None,
            active: None,
            ui: UiContainer::new(String::new()),
            csrf_token: String::new(),
            identity_id: None,
            session_id: None,
            refresh: false,
            requested_aal: Aal::Aal1,
            transient_payload: None,
            internal_context: Value::Object(Default::default()),
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether the flow can no longer be submitted at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// The flow's form, with last submit's messages cleared.
    pub fn form(&self) -> UiContainer {
        let mut ui = self.ui.clone();
        ui.reset_messages();
        ui
    }

    /// Stores `ui` as the flow's form.
    pub fn set_form(&mut self, ui: &UiContainer) {
        self.ui = ui.clone();
    }

    /// Whether the flow was completed and cannot be submitted again.
    pub fn is_completed(&self) -> bool {
        self.state == FlowState::PassedChallenge
    }

    /// A value kept in the flow's server-side context.
    pub fn context_value(&self, key: &str) -> Option<&Value> {
        self.internal_context.get(key)
    }

    /// Sets a value in the flow's server-side context.
    pub fn set_context_value(&mut self, key: &str, value: Value) {
        if !self.internal_context.is_object() {
            self.internal_context = Value::Object(Default::default());
        }
        if let Value::Object(m) = &mut self.internal_context {
            m.insert(key.to_owned(), value);
        }
    }
}

/// The flow as the Kratos API shows it (`loginFlow`, `registrationFlow`, …).
pub fn flow_json(flow: &Flow) -> serde_json::Value {
    use identity::view::timestamp;
    let mut m = serde_json::Map::new();
    m.insert("id".into(), serde_json::json!(flow.id));
    if matches!(flow.kind, FlowKind::Login | FlowKind::Registration) {
        m.insert("organization_id".into(), Value::Null);
    }
    m.insert("type".into(), serde_json::json!(flow.flow_type.as_str()));
    m.insert("expires_at".into(), timestamp(flow.expires_at));
    m.insert("issued_at".into(), timestamp(flow.issued_at));
    m.insert("request_url".into(), serde_json::json!(flow.request_url));
    if let Some(r) = flow.return_to.as_deref().filter(|r| !r.is_empty()) {
        m.insert("return_to".into(), serde_json::json!(r));
    }
    if let Some(a) = flow.active.as_deref().filter(|a| !a.is_empty()) {
        m.insert("active".into(), serde_json::json!(a));
    }
    m.insert(
        "ui".into(),
        serde_json::to_value(&flow.ui).unwrap_or(Value::Null),
    );
    if flow.kind == FlowKind::Login {
        m.insert("created_at".into(), timestamp(flow.created_at));
        m.insert("updated_at".into(), timestamp(flow.updated_at));
        m.insert("refresh".into(), serde_json::json!(flow.refresh));
        m.insert(
            "requested_aal".into(),
            serde_json::json!(flow.requested_aal.as_str()),
        );
    }
    m.insert("state".into(), serde_json::json!(flow.state.as_str()));
    if matches!(flow.kind, FlowKind::Settings | FlowKind::Recovery) {
        // The only part of the server-side context that clients see: what to do next.
        if let Some(c) = flow
            .internal_context
            .get("continue_with")
            .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        {
            m.insert("continue_with".into(), c.clone());
        }
    }
    if let Some(p) = &flow.transient_payload {
        m.insert("transient_payload".into(), p.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            FlowKind::Login,
            FlowKind::Registration,
            FlowKind::Settings,
            FlowKind::Recovery,
            FlowKind::Verification,
        ] {
            assert_eq!(k.as_str().parse::<FlowKind>(), Ok(k));
        }
        assert_eq!("api".parse::<FlowType>(), Ok(FlowType::Api));
        assert!("web".parse::<FlowType>().is_err());
    }

    #[test]
    fn expiry_is_exclusive_of_the_last_instant() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let f = Flow::new(
            FlowKind::Login,
            FlowType::Api,
            "x".into(),
            now,
            Duration::hours(1),
        );
        assert!(!f.is_expired(now + Duration::minutes(59)));
        assert!(f.is_expired(now + Duration::hours(1)));
    }
}
