//! What every flow service shares: loading and saving flows against one clock, the context of a submit, the one
//! [`FlowOutcome`] a submit ends in (which `proxy` maps to HTTP once), and the registry-side checks of `method`.

use crate::continuity::SealedCookie;
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind};
use crate::hooks::HookRequest;
use crate::store::FlowPool;
use identity::session::manager::{DeviceInfo, IssuedSession};
use identity::text::{UiText, UiTextType};
use identity::{Identity, SharedClock, StoreError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a submit came from.
#[derive(Debug, Clone, Default)]
pub struct SubmitContext {
    /// For the new session's device entry.
    pub device: DeviceInfo,
    /// The client address, for throttling.
    pub client_ip: Option<std::net::IpAddr>,
    /// For web hooks.
    pub request: HookRequest,
    /// The session the request carries: `(session id, identity id)`.
    pub session: Option<(Uuid, Uuid)>,
    /// The browser's masked CSRF token (browser flows), for a flow that this submit opens (recovery opens a
    /// settings flow).
    pub csrf_token: String,
}

/// What a submit led to. Every flow service answers with one of these; `proxy` turns it into a browser redirect,
/// an SPA's JSON or a native app's answer in one place.
#[derive(Debug)]
pub enum FlowOutcome {
    /// The form needs another try; the flow carries the messages (HTTP 400, or the form again for browsers).
    Form(Flow),
    /// Too many failed attempts: the flow carries a message; try again after `retry_after` (HTTP 429).
    Throttled {
        /// The flow with the message.
        flow: Flow,
        /// When another attempt is allowed.
        retry_after: std::time::Duration,
    },
    /// The request carries a session, and this flow cannot run while signed in. A login flow carries Kratos'
    /// "already signed in" message.
    AlreadySignedIn(Flow),
    /// Signed in.
    SignedIn {
        /// The completed flow.
        flow: Flow,
        /// The new session and its token.
        session: IssuedSession,
        /// Who.
        identity: Box<Identity>,
    },
    /// Signed up, with a session when the `session` hook is configured.
    Registered {
        /// The completed flow.
        flow: Flow,
        /// The new identity.
        identity: Box<Identity>,
        /// The new session, if any.
        session: Option<IssuedSession>,
    },
    /// The flow moved on and shows its next step (a message went out, a wrong code was told, an address was
    /// verified): HTTP 200 with the flow.
    Continue(Flow),
    /// Recovered: signed in, with a settings flow to set a new password in.
    Recovered(Box<crate::challenge::Recovered>),
    /// The credentials were right but no address of the identity is verified (`require_verified_address`); no
    /// session was issued.
    AddressNotVerified {
        /// The flow, with the message.
        flow: Flow,
        /// Who.
        identity: Box<Identity>,
    },
    /// Settings saved: the flow is in state `success`. New addresses get verification flows, and the flow records
    /// where to continue.
    SettingsSaved {
        /// The completed flow.
        flow: Flow,
        /// The identity after the change.
        identity: Box<Identity>,
        /// Verifiable addresses that are new and need a verification message: `(address id, value)`.
        new_addresses: Vec<(Uuid, String)>,
    },
    /// A privileged settings change with a session that is too old: sign in again (browsers are sent to the
    /// refresh sign-in, others get HTTP 403 `session_refresh_required`).
    RefreshRequired {
        /// The flow.
        flow: Flow,
        /// For browser flows: the continuity cookie to set, naming the paused change that
        /// [`crate::settings::SettingsFlows::resume`] completes after the sign-in.
        continuity_cookie: Option<SealedCookie>,
    },
}

/// Loads and saves flows, stamping them with one clock.
#[derive(Clone)]
pub struct FlowRepo {
    pool: Arc<dyn FlowPool>,
    clock: SharedClock,
}

impl std::fmt::Debug for FlowRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRepo").finish_non_exhaustive()
    }
}

impl FlowRepo {
    /// Wraps a flow store.
    pub fn new(pool: Arc<dyn FlowPool>, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    /// The time now.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Stores a new flow.
    pub async fn create(&self, flow: &Flow) -> Result<(), FlowError> {
        Ok(self.pool.create_flow(flow).await?)
    }

    /// Loads a flow of `kind`, expired or not.
    pub async fn load(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        match self.pool.get_flow(kind, id).await {
            Ok(f) => Ok(f),
            Err(StoreError::NotFound) => Err(FlowError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves a changed flow.
    pub async fn save(&self, flow: &mut Flow) -> Result<(), FlowError> {
        flow.updated_at = self.clock.now();
        Ok(self.pool.update_flow(flow).await?)
    }

    /// Replaces the form's messages with `message` and stores the flow.
    pub async fn with_message(&self, mut flow: Flow, message: UiText) -> Result<Flow, FlowError> {
        flow.ui.reset_messages();
        flow.ui.add_message(message);
        self.save(&mut flow).await?;
        Ok(flow)
    }

    /// A flow that can still be submitted. An expired one yields [`FlowError::Expired`] with the flow `replace`
    /// starts instead (same type, `return_to` and CSRF token); a completed one [`FlowError::Completed`].
    pub async fn open<F, Fut>(&self, flow: Flow, replace: F) -> Result<Flow, FlowError>
    where
        F: FnOnce(&Flow) -> Fut,
        Fut: std::future::Future<Output = Result<Flow, FlowError>>,
    {
        if flow.is_expired(self.now()) {
            let replacement = replace(&flow).await?;
            return Err(FlowError::Expired {
                expired: Box::new(flow),
                replacement: Box::new(replacement),
            });
        }
        if flow.is_completed() {
            return Err(FlowError::Completed);
        }
        Ok(flow)
    }

    /// Saves the flow and answers with its form (HTTP 400).
    pub async fn form(&self, mut flow: Flow) -> Result<FlowOutcome, FlowError> {
        self.save(&mut flow).await?;
        Ok(FlowOutcome::Form(flow))
    }
}

/// The `method` of a submit body: a string, or missing.
fn method_of(body: &Value) -> Option<&str> {
    body.get("method").and_then(Value::as_str)
}

/// Kratos' message for a submit whose `method` no enabled strategy of the flow handles (4010002 … 4010006).
pub fn no_strategy_message(kind: FlowKind) -> UiText {
    let (id, text) = match kind {
        FlowKind::Login => (
            4_010_002,
            "Could not find a strategy to log you in with. Did you fill out the form correctly?",
        ),
        FlowKind::Registration => (
            4_010_003,
            "Could not find a strategy to sign you up with. Did you fill out the form correctly?",
        ),
        FlowKind::Settings => (
            4_010_004,
            "Could not find a strategy to update your settings. Did you fill out the form correctly?",
        ),
        FlowKind::Recovery => (
            4_010_005,
            "Could not find a strategy to recover your account with. Did you fill out the form correctly?",
        ),
        FlowKind::Verification => (
            4_010_006,
            "Could not find a strategy to verify your account with. Did you fill out the form correctly?",
        ),
    };
    UiText {
        id,
        text: text.into(),
        kind: UiTextType::Error,
        context: None,
    }
}

/// Decodes a strategy's typed body. A body that does not decode puts a message on the flow's form and yields
/// `None`: the flow comes back with HTTP 400, as Kratos answers.
pub fn decode<T: DeserializeOwned>(flow: &mut Flow, body: &Value) -> Option<T> {
    match T::deserialize(body) {
        Ok(v) => Some(v),
        Err(e) => {
            flow.ui
                .add_message(identity::text::validation_generic(&format!(
                    "The request body could not be read: {e}."
                )));
            None
        }
    }
}

/// What a flow service does with a submit's `method` before a strategy sees it.
pub enum Dispatch<'a, S: ?Sized> {
    /// This enabled strategy handles it.
    Strategy(&'a S),
    /// No enabled strategy handles it; the flow carries Kratos' "no strategy" message.
    Unknown,
}

/// Finds the strategy for `body`'s `method` among the enabled `strategies` (by their `method()` names). A missing,
/// unknown or disabled method is [`Dispatch::Unknown`], with Kratos' "no strategy" message on the flow: the flow
/// comes back with HTTP 400, as Kratos answers.
pub fn dispatch<'a, S: ?Sized>(
    flow: &mut Flow,
    body: &Value,
    strategies: &'a [Arc<S>],
    name: impl Fn(&S) -> &'static str,
) -> Dispatch<'a, S> {
    let method = method_of(body).unwrap_or_default();
    if let Some(s) = strategies.iter().find(|s| name(s) == method) {
        return Dispatch::Strategy(s);
    }
    flow.ui.add_message(no_strategy_message(flow.kind));
    Dispatch::Unknown
}
