//! What recovery and verification share: a person proves control of an address by a secret sent to it, a one-time
//! code (`code` method, the default) or a link (`link` method). The flows live in [`crate::recovery`] and
//! [`crate::verification`], the methods in [`crate::strategy::code`] and [`crate::strategy::link`]; this module holds
//! their settings, the trait both flows' strategies share ([`ChallengeStrategy`]), the sending and checking of
//! secrets ([`Challenges`]), the flow skeleton both services run ([`service`]) and the one entry point `proxy` uses
//! for either kind ([`ChallengeFlows`]).
//!
//! Both flows never tell whether an address is known: an unknown address gets the same answer, and the same
//! database work (a code row is written either way), and a message only with `notify_unknown_recipients`. A secret
//! works once, for its flow only, until it expires; after `max_submissions` wrong secrets the flow's secrets stop
//! working and a new one must be requested. Every step that sends a message writes the flow, the secret and the
//! message in one transaction ([`crate::outbox`]).

mod secrets;
pub(crate) mod service;

pub use secrets::{filled, normalise_email, Challenges, Delivery};

use crate::engine::{FlowOutcome, SubmitContext};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowType};
use crate::recovery::RecoveryFlows;
use crate::ui::{Group, UiContainer};
use crate::verification::VerificationFlows;
use async_trait::async_trait;
use identity::session::manager::IssuedSession;
use identity::Identity;
use serde_json::Value;
use time::Duration;
use uuid::Uuid;

/// How one of the two flows is set up.
#[derive(Debug, Clone)]
pub struct ChallengeKindSettings {
    /// `selfservice.flows.<flow>.enabled`.
    pub enabled: bool,
    /// `use: link` instead of `code`.
    pub use_link: bool,
    /// `selfservice.flows.<flow>.lifespan`.
    pub lifespan: Duration,
    /// Send "unknown address" messages.
    pub notify_unknown_recipients: bool,
    /// The page that renders the flow (for links in `continue_with` and admin answers).
    pub ui_url: String,
}

/// Settings of both flows.
#[derive(Debug, Clone)]
pub struct ChallengeSettings {
    /// Public base URL with a trailing slash (for `ui.action`).
    pub public_base: String,
    /// Base URL of links in messages, with a trailing slash (`selfservice.methods.link.config.base_url`).
    pub link_base: String,
    /// Recovery.
    pub recovery: ChallengeKindSettings,
    /// Verification.
    pub verification: ChallengeKindSettings,
    /// `selfservice.methods.code.enabled`.
    pub code_enabled: bool,
    /// `selfservice.methods.code.config.lifespan`.
    pub code_lifespan: Duration,
    /// `selfservice.methods.code.config.max_submissions`.
    pub max_submissions: u32,
    /// `selfservice.methods.link.enabled`.
    pub link_enabled: bool,
    /// `selfservice.methods.link.config.lifespan`.
    pub link_lifespan: Duration,
    /// How long after recovery the password may be changed without signing in again.
    pub privileged_session_max_age: Duration,
    /// Where a verified browser goes without `return_to`.
    pub verification_return_url: String,
    /// The key codes are stored under (HMAC).
    pub secret: Vec<u8>,
}

impl ChallengeSettings {
    /// The settings of one flow kind.
    pub fn of(&self, kind: FlowKind) -> &ChallengeKindSettings {
        if kind == FlowKind::Recovery {
            &self.recovery
        } else {
            &self.verification
        }
    }
}

/// What starts a flow.
#[derive(Debug, Clone)]
pub struct ChallengeInit {
    /// Recovery or verification.
    pub kind: FlowKind,
    /// Browser or API.
    pub flow_type: FlowType,
    /// The init request's full URL.
    pub request_url: String,
    /// A validated `return_to`.
    pub return_to: Option<String>,
    /// The masked CSRF token (browser flows).
    pub csrf_token: String,
}

/// A successful recovery.
#[derive(Debug)]
pub struct Recovered {
    /// The recovery flow (`passed_challenge`).
    pub flow: Flow,
    /// The new session.
    pub session: IssuedSession,
    /// Who.
    pub identity: Identity,
    /// The settings flow to change the password in.
    pub settings_flow: Flow,
}

/// What a recovery or verification strategy made of a submit. Messages for the user are on the flow's form.
#[derive(Debug)]
pub enum ChallengeResult {
    /// A message went out (or would have, for an unknown address); the flow is stored. HTTP 200.
    Sent,
    /// A wrong, used or expired secret: HTTP 200 with the message, as Kratos answers.
    Invalid,
    /// The form needs another try: HTTP 400.
    Retry,
    /// The secret was right: the identity controls the flow's address. The flow is `passed_challenge`.
    Proved(Box<Identity>),
}

/// What both flows need of a method besides its submit: its name and its forms. [`crate::recovery::RecoveryStrategy`]
/// and [`crate::verification::VerificationStrategy`] extend it.
pub trait ChallengeStrategy: Send + Sync {
    /// The `method` value this strategy handles.
    fn method(&self) -> &'static str;

    /// Adds the strategy's nodes to a new flow's form: the address to send to.
    fn populate(&self, flow: &Flow, ui: &mut UiContainer);

    /// The form of a flow opened from the link in a message, with the secret of its query (`code` or `token`,
    /// already checked to look like a secret) filled in but not used; `None`: this method has no such form.
    fn prefill(&self, _flow: &Flow, _secret: &LinkSecret<'_>) -> Option<UiContainer> {
        None
    }
}

/// A method that proves control of an address with a secret sent to it (`code`, `link`). It serves recovery and
/// verification alike: implementing this makes it a [`ChallengeStrategy`], a [`crate::recovery::RecoveryStrategy`]
/// and a [`crate::verification::VerificationStrategy`].
#[async_trait]
pub trait AddressMethod: Send + Sync {
    /// The `method` value.
    fn name(&self) -> &'static str;

    /// The UI group of its nodes.
    fn group(&self) -> Group;

    /// The shared services.
    fn challenges(&self) -> &Challenges;

    /// See [`ChallengeStrategy::prefill`].
    fn prefill_form(&self, flow: &Flow, secret: &LinkSecret<'_>) -> Option<UiContainer>;

    /// Handles a submit of this method: decodes its own body, then sends a secret or checks one.
    async fn submit(&self, flow: &mut Flow, body: &Value) -> Result<ChallengeResult, FlowError>;

    /// Sends a new secret to `email` (to its owner, or the "unknown address" message) and stores the flow
    /// (inserted when `new_flow`).
    async fn send(
        &self,
        flow: &mut Flow,
        email: &str,
        identity: Option<&Identity>,
        new_flow: bool,
    ) -> Result<(), FlowError>;

    /// Puts a flow an administrator creates for `identity` into `sent_email` with a new secret, stores it, and
    /// returns the secret.
    async fn admin_flow(&self, flow: &mut Flow, identity: &Identity) -> Result<String, FlowError>;

    /// Sends to the address a person typed: the form again with a message when it is not an address.
    async fn send_to_typed(
        &self,
        flow: &mut Flow,
        raw: &str,
    ) -> Result<ChallengeResult, FlowError> {
        let c = self.challenges();
        let Some(email) = c.address_or_retry(flow, self.name(), self.group(), raw) else {
            return Ok(ChallengeResult::Retry);
        };
        let identity = c.recipient(flow, &email).await?;
        self.send(flow, &email, identity.as_ref(), false).await?;
        Ok(ChallengeResult::Sent)
    }
}

impl<T: AddressMethod> ChallengeStrategy for T {
    fn method(&self) -> &'static str {
        self.name()
    }

    fn populate(&self, _flow: &Flow, ui: &mut UiContainer) {
        self.challenges()
            .address_nodes(ui, self.name(), self.group(), None);
    }

    fn prefill(&self, flow: &Flow, secret: &LinkSecret<'_>) -> Option<UiContainer> {
        self.prefill_form(flow, secret)
    }
}

/// The secret in the query of a link from a message.
#[derive(Debug, Clone, Copy)]
pub enum LinkSecret<'a> {
    /// `?code=`.
    Code(&'a str),
    /// `?token=`.
    Token(&'a str),
}

/// Recovery and verification behind one entry point, for the HTTP routes both kinds share.
#[derive(Clone, Debug)]
pub struct ChallengeFlows {
    /// Recovery.
    pub recovery: RecoveryFlows,
    /// Verification.
    pub verification: VerificationFlows,
    challenges: Challenges,
}

impl ChallengeFlows {
    /// Both flows, sharing `challenges`.
    pub fn new(
        recovery: RecoveryFlows,
        verification: VerificationFlows,
        challenges: Challenges,
    ) -> Self {
        Self {
            recovery,
            verification,
            challenges,
        }
    }

    /// The configured settings.
    pub fn settings(&self) -> &ChallengeSettings {
        self.challenges.settings()
    }

    /// Whether the flow kind is on.
    pub fn enabled(&self, kind: FlowKind) -> bool {
        self.settings().of(kind).enabled
    }

    /// The page of a flow kind.
    pub fn ui_url(&self, kind: FlowKind) -> &str {
        &self.settings().of(kind).ui_url
    }

    /// Whether an administrator created the flow (its link carries no CSRF cookie).
    pub fn is_admin_flow(flow: &Flow) -> bool {
        flow.context_value("admin").and_then(Value::as_bool) == Some(true)
    }

    /// Starts a flow (`choose_method`).
    pub async fn init(&self, req: ChallengeInit) -> Result<Flow, FlowError> {
        match req.kind {
            FlowKind::Recovery => self.recovery.service().init(req).await,
            _ => self.verification.service().init(req).await,
        }
    }

    /// Loads a flow, expired or not.
    pub async fn load(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        self.challenges.repo().load(kind, id).await
    }

    /// Opens a flow from the link in a message without using its secret ([`service::ChallengeService::prefill`]).
    pub async fn prefill(
        &self,
        kind: FlowKind,
        id: Uuid,
        code: Option<&str>,
        token: Option<&str>,
    ) -> Result<Flow, FlowError> {
        match kind {
            FlowKind::Recovery => self.recovery.service().prefill(id, code, token).await,
            _ => self.verification.service().prefill(id, code, token).await,
        }
    }

    /// Handles a submit: send (or resend) to an address, or check a secret.
    pub async fn submit(
        &self,
        kind: FlowKind,
        id: Uuid,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<FlowOutcome, FlowError> {
        match kind {
            FlowKind::Recovery => self.recovery.submit(id, body, ctx).await,
            _ => self.verification.submit(id, body, ctx).await,
        }
    }

    /// A verification flow that has already sent a message to `address` of `identity` (after registration, a
    /// profile change, or a login refused for an unverified address).
    pub async fn send_verification(
        &self,
        identity: &Identity,
        address: &str,
        init: ChallengeInit,
    ) -> Result<Flow, FlowError> {
        self.verification.send(identity, address, init).await
    }

    /// Admin `POST /admin/recovery/code`: a recovery flow in `sent_email` and its code, valid for `expires_in`.
    pub async fn admin_code(
        &self,
        identity_id: Uuid,
        expires_in: Duration,
        flow_type: FlowType,
        request_url: String,
    ) -> Result<(Flow, String), FlowError> {
        self.recovery
            .admin_code(identity_id, expires_in, flow_type, request_url)
            .await
    }

    /// Admin `POST /admin/recovery/link`: a browser recovery flow and its link token, valid for `expires_in`.
    pub async fn admin_link(
        &self,
        identity_id: Uuid,
        expires_in: Duration,
        return_to: Option<String>,
        request_url: String,
    ) -> Result<(Flow, String), FlowError> {
        self.recovery
            .admin_link(identity_id, expires_in, return_to, request_url)
            .await
    }
}
