//! The login flow: its service (`init`, `load`, `submit`) and the trait its strategies implement. The service owns
//! what every method shares (expiry, "already signed in", dispatch on `method`, disabled accounts, verified
//! addresses, hooks, the session); a strategy only adds its nodes and turns its body into an identity.

use crate::engine::{dispatch, Dispatch, FlowOutcome, FlowRepo, SubmitContext};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowState, FlowType};
use crate::hooks::{add_hook_messages, HookFailure, HookRunner, NoHooks};
use crate::ui::UiContainer;
use async_trait::async_trait;
use identity::session::manager::SessionManager;
use identity::session::AuthenticationMethod;
use identity::text::{UiText, UiTextType};
use identity::{Identity, IdentityManager};
use serde_json::Value;
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// A login method (`password`, later `code`, `oidc`, `webauthn`, …).
#[async_trait]
pub trait LoginStrategy: Send + Sync {
    /// The `method` value this strategy handles.
    fn method(&self) -> &'static str;

    /// Adds the strategy's nodes to a new flow's form. `refresh` is the signed-in identity that re-authenticates.
    fn populate(&self, ui: &mut UiContainer, refresh: Option<&Identity>);

    /// Handles a submit whose `method` is this strategy's: decodes its own body and authenticates. Messages for
    /// the user go onto `flow.ui`.
    async fn login(
        &self,
        flow: &mut Flow,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<LoginResult, FlowError>;
}

/// What a login strategy made of a submit.
#[derive(Debug)]
pub enum LoginResult {
    /// The identity proved itself with `method`.
    Authenticated {
        /// Who.
        identity: Box<Identity>,
        /// The AMR entry of the new session.
        method: AuthenticationMethod,
    },
    /// The form carries messages: show it again.
    Retry,
    /// Too many failed attempts; the form carries a message.
    Throttled {
        /// When another attempt is allowed.
        retry_after: std::time::Duration,
    },
}

/// Settings of the login flow.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// Public base URL with a trailing slash (for `ui.action`).
    pub public_base: String,
    /// `selfservice.flows.login.lifespan`.
    pub lifespan: Duration,
    /// The `require_verified_address` hook: sign-in needs a verified address.
    pub require_verified_address: bool,
}

/// What starts a login flow.
#[derive(Debug, Clone)]
pub struct LoginInit {
    /// Browser or API.
    pub flow_type: FlowType,
    /// The init request's full URL.
    pub request_url: String,
    /// A validated `return_to`.
    pub return_to: Option<String>,
    /// The masked CSRF token (browser flows; empty for API flows).
    pub csrf_token: String,
    /// `refresh=true` for this `(session, identity)`.
    pub refresh_for: Option<(Uuid, Uuid)>,
}

/// The login flow.
#[derive(Clone)]
pub struct LoginFlows {
    repo: FlowRepo,
    identities: IdentityManager,
    sessions: SessionManager,
    strategies: Arc<[Arc<dyn LoginStrategy>]>,
    hooks: Arc<dyn HookRunner>,
    settings: LoginSettings,
}

impl std::fmt::Debug for LoginFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFlows").finish_non_exhaustive()
    }
}

/// Kratos' message on a login flow submitted while signed in.
pub fn already_signed_in_message() -> UiText {
    identity::text::validation_generic(
        "A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?",
    )
}

/// Kratos' message for a correct login to a disabled (`inactive`) identity.
pub fn account_disabled_message() -> UiText {
    UiText {
        id: 4_010_011,
        text: "This account has been disabled.".into(),
        kind: UiTextType::Error,
        context: None,
    }
}

impl LoginFlows {
    /// Wires the flow with its enabled strategies, in the order their nodes appear.
    pub fn new(
        repo: FlowRepo,
        identities: IdentityManager,
        sessions: SessionManager,
        strategies: Vec<Arc<dyn LoginStrategy>>,
        settings: LoginSettings,
    ) -> Self {
        Self {
            repo,
            identities,
            sessions,
            strategies: strategies.into(),
            hooks: Arc::new(NoHooks),
            settings,
        }
    }

    /// Runs these hooks around sign-ins.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Starts a flow.
    pub async fn init(&self, req: LoginInit) -> Result<Flow, FlowError> {
        let mut flow = Flow::new(
            FlowKind::Login,
            req.flow_type,
            req.request_url,
            self.repo.now(),
            self.settings.lifespan,
        );
        flow.return_to = req.return_to;
        flow.csrf_token = req.csrf_token;
        let mut ui = UiContainer::new(format!(
            "{}self-service/login?flow={}",
            self.settings.public_base, flow.id
        ));
        ui.set_csrf(&flow.csrf_token);
        let refresh = match req.refresh_for {
            Some((session_id, identity_id)) => {
                let identity = self
                    .identities
                    .pool()
                    .get_identity(identity_id, true)
                    .await?;
                flow.refresh = true;
                flow.session_id = Some(session_id);
                flow.identity_id = Some(identity_id);
                ui.add_message(UiText {
                    id: 1_010_003,
                    text: "Please confirm this action by verifying that it is you.".into(),
                    kind: UiTextType::Info,
                    context: None,
                });
                Some(identity)
            }
            None => None,
        };
        for s in self.strategies.iter() {
            s.populate(&mut ui, refresh.as_ref());
        }
        ui.sort_login();
        flow.ui = ui;
        self.repo.create(&flow).await?;
        Ok(flow)
    }

    async fn open(&self, flow: Flow) -> Result<Flow, FlowError> {
        self.repo
            .open(flow, |f| {
                self.init(LoginInit {
                    flow_type: f.flow_type,
                    request_url: f.request_url.clone(),
                    return_to: f.return_to.clone(),
                    csrf_token: f.csrf_token.clone(),
                    refresh_for: None,
                })
            })
            .await
    }

    /// Submits a loaded flow with the method `body` names.
    pub async fn submit(
        &self,
        flow: Flow,
        body: &Value,
        ctx: SubmitContext,
    ) -> Result<FlowOutcome, FlowError> {
        if ctx.session.is_some() && !flow.refresh {
            let flow = self
                .repo
                .with_message(flow, already_signed_in_message())
                .await?;
            return Ok(FlowOutcome::AlreadySignedIn(flow));
        }
        let mut flow = self.open(flow).await?;
        flow.ui.reset_messages();
        let strategy = match dispatch(&mut flow, body, &self.strategies, |s| s.method()) {
            Dispatch::Strategy(s) => s,
            Dispatch::Unknown => return self.repo.form(flow).await,
        };
        match strategy.login(&mut flow, body, &ctx).await? {
            LoginResult::Retry => self.repo.form(flow).await,
            LoginResult::Throttled { retry_after } => {
                self.repo.save(&mut flow).await?;
                Ok(FlowOutcome::Throttled { flow, retry_after })
            }
            LoginResult::Authenticated { identity, method } => {
                self.finish(flow, *identity, method, strategy.method(), ctx)
                    .await
            }
        }
    }

    /// What every method does once the identity proved itself.
    async fn finish(
        &self,
        mut flow: Flow,
        identity: Identity,
        amr: AuthenticationMethod,
        method: &str,
        ctx: SubmitContext,
    ) -> Result<FlowOutcome, FlowError> {
        if !identity.is_active() {
            flow.ui.add_message(account_disabled_message());
            return self.repo.form(flow).await;
        }
        if self.settings.require_verified_address
            && !identity.verifiable_addresses.iter().any(|a| a.verified)
        {
            flow.ui
                .add_message(identity::text::validation_address_not_verified());
            self.repo.save(&mut flow).await?;
            return Ok(FlowOutcome::AddressNotVerified {
                flow,
                identity: Box::new(identity),
            });
        }
        let identity_json = identity::view::admin_identity(
            &identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        );
        match self
            .hooks
            .before_persist(FlowKind::Login, &flow, &identity_json, &ctx.request)
            .await
        {
            Ok(_) => {}
            Err(HookFailure::Interrupted(messages)) => {
                add_hook_messages(&mut flow.ui, messages);
                return self.repo.form(flow).await;
            }
            Err(HookFailure::Failed(reason)) => return Err(FlowError::Hook(reason)),
        }
        let session = self
            .sessions
            .issue(&identity, vec![amr], ctx.device)
            .await?;
        if self.hooks.revoke_active_sessions(FlowKind::Login) {
            self.sessions
                .revoke_others(identity.id, Some(session.session.id))
                .await?;
        }
        if let Some((old, _)) = ctx.session.filter(|(old, _)| *old != session.session.id) {
            // A refresh login replaces the session it re-authenticated.
            self.sessions.revoke(old).await?;
        }
        flow.state = FlowState::PassedChallenge;
        flow.active = Some(method.to_owned());
        self.repo.save(&mut flow).await?;
        let session_json = self
            .sessions
            .render(&session.session, Some(&identity), false);
        self.hooks
            .after_persist(
                FlowKind::Login,
                &flow,
                &identity_json,
                Some(&session_json),
                &ctx.request,
            )
            .await;
        Ok(FlowOutcome::SignedIn {
            flow,
            session,
            identity: Box::new(identity),
        })
    }
}
