//! The registration flow: its service (`init`, `load`, `submit`) and the trait its strategies implement. The service
//! owns what every method shares (expiry, dispatch on `method`, hooks, storing the identity, the session); a
//! strategy only adds its nodes and turns its body into a new identity.

use crate::engine::{dispatch, Dispatch, FlowOutcome, FlowRepo, SubmitContext};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowState, FlowType};
use crate::hooks::{add_hook_messages, HookFailure, HookRunner, NoHooks};
use crate::ui::UiContainer;
use async_trait::async_trait;
use identity::manager::CreateIdentity;
use identity::schema::IdentitySchema;
use identity::session::manager::SessionManager;
use identity::session::AuthenticationMethod;
use identity::IdentityManager;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

/// A registration method (`password`, later `code`, `oidc`, `webauthn`, `passkey`, …).
#[async_trait]
pub trait RegistrationStrategy: Send + Sync {
    /// The `method` value this strategy handles.
    fn method(&self) -> &'static str;

    /// Adds the strategy's nodes to a new flow's form.
    fn populate(&self, ui: &mut UiContainer, schema: &IdentitySchema);

    /// Handles a submit whose `method` is this strategy's: decodes its own body, validates it and describes the
    /// identity to create. Messages for the user go onto `flow.ui`.
    async fn register(
        &self,
        flow: &mut Flow,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<RegistrationResult, FlowError>;
}

/// What a registration strategy made of a submit.
#[derive(Debug)]
pub enum RegistrationResult {
    /// Create this identity; a session (if configured) gets `method` as its AMR entry.
    Create {
        /// The identity with its credentials.
        identity: Box<CreateIdentity>,
        /// The AMR entry of the new session.
        method: AuthenticationMethod,
    },
    /// The form carries messages: show it again.
    Retry,
}

/// Settings of the registration flow.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// Public base URL with a trailing slash (for `ui.action`).
    pub public_base: String,
    /// `selfservice.flows.registration.lifespan`.
    pub lifespan: Duration,
    /// `selfservice.flows.registration.enabled`.
    pub enabled: bool,
    /// Whether registration issues a session (the `session` hook).
    pub session_after_registration: bool,
}

/// What starts a registration flow.
#[derive(Debug, Clone)]
pub struct RegistrationInit {
    /// Browser or API.
    pub flow_type: FlowType,
    /// The init request's full URL.
    pub request_url: String,
    /// A validated `return_to`.
    pub return_to: Option<String>,
    /// The masked CSRF token (browser flows; empty for API flows).
    pub csrf_token: String,
}

/// The registration flow.
#[derive(Clone)]
pub struct RegistrationFlows {
    repo: FlowRepo,
    identities: IdentityManager,
    sessions: SessionManager,
    strategies: Arc<[Arc<dyn RegistrationStrategy>]>,
    hooks: Arc<dyn HookRunner>,
    settings: RegistrationSettings,
}

impl std::fmt::Debug for RegistrationFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationFlows").finish_non_exhaustive()
    }
}

impl RegistrationFlows {
    /// Wires the flow with its enabled strategies, in the order their nodes appear.
    pub fn new(
        repo: FlowRepo,
        identities: IdentityManager,
        sessions: SessionManager,
        strategies: Vec<Arc<dyn RegistrationStrategy>>,
        settings: RegistrationSettings,
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

    /// Runs these hooks around registrations.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Whether registration is on.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Starts a flow.
    pub async fn init(&self, req: RegistrationInit) -> Result<Flow, FlowError> {
        if !self.settings.enabled {
            return Err(FlowError::RegistrationDisabled);
        }
        let mut flow = Flow::new(
            FlowKind::Registration,
            req.flow_type,
            req.request_url,
            self.repo.now(),
            self.settings.lifespan,
        );
        flow.return_to = req.return_to;
        flow.csrf_token = req.csrf_token;
        let schema = self.identities.schemas().default_schema();
        let mut ui = UiContainer::new(format!(
            "{}self-service/registration?flow={}",
            self.settings.public_base, flow.id
        ));
        ui.set_csrf(&flow.csrf_token);
        for s in self.strategies.iter() {
            s.populate(&mut ui, schema);
        }
        ui.sort_registration(schema);
        flow.ui = ui;
        self.repo.create(&flow).await?;
        Ok(flow)
    }

    async fn open(&self, flow: Flow) -> Result<Flow, FlowError> {
        self.repo
            .open(flow, |f| {
                self.init(RegistrationInit {
                    flow_type: f.flow_type,
                    request_url: f.request_url.clone(),
                    return_to: f.return_to.clone(),
                    csrf_token: f.csrf_token.clone(),
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
        if ctx.session.is_some() {
            return Ok(FlowOutcome::AlreadySignedIn(flow));
        }
        let mut flow = self.open(flow).await?;
        flow.ui.reset_messages();
        let strategy = match dispatch(&mut flow, body, &self.strategies, |s| s.method()) {
            Dispatch::Strategy(s) => s,
            Dispatch::Unknown => return self.repo.form(flow).await,
        };
        let (mut body, amr) = match strategy.register(&mut flow, body, &ctx).await? {
            RegistrationResult::Retry => return self.repo.form(flow).await,
            RegistrationResult::Create { identity, method } => (*identity, method),
        };
        let preview = json!({
            "schema_id": body.schema_id,
            "traits": body.traits,
            "state": "active",
            "metadata_public": null,
            "metadata_admin": null,
        });
        match self
            .hooks
            .before_persist(FlowKind::Registration, &flow, &preview, &ctx.request)
            .await
        {
            Ok(Some(patch)) => {
                if let Some(t) = patch.get("traits") {
                    body.traits = t.clone();
                }
                body.metadata_public = patch.get("metadata_public").cloned();
                body.metadata_admin = patch.get("metadata_admin").cloned();
            }
            Ok(None) => {}
            Err(HookFailure::Interrupted(messages)) => {
                add_hook_messages(&mut flow.ui, messages);
                return self.repo.form(flow).await;
            }
            Err(HookFailure::Failed(reason)) => return Err(FlowError::Hook(reason)),
        }
        let identity = match self.identities.create(body).await {
            Ok(i) => i,
            Err(identity::Error::Conflict) => {
                flow.ui
                    .add_message(identity::text::validation_duplicate_credentials());
                return self.repo.form(flow).await;
            }
            Err(identity::Error::Validation(messages)) => {
                // A hook's patch broke the schema.
                flow.ui.add_field_messages(&messages);
                return self.repo.form(flow).await;
            }
            Err(e) => return Err(e.into()),
        };
        let session = if self.settings.session_after_registration {
            Some(
                self.sessions
                    .issue(&identity, vec![amr], ctx.device)
                    .await?,
            )
        } else {
            None
        };
        flow.state = FlowState::PassedChallenge;
        flow.active = Some(strategy.method().to_owned());
        self.repo.save(&mut flow).await?;
        let session_json = session
            .as_ref()
            .map(|s| self.sessions.render(&s.session, Some(&identity), false));
        let identity_json = identity::view::admin_identity(
            &identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        );
        self.hooks
            .after_persist(
                FlowKind::Registration,
                &flow,
                &identity_json,
                session_json.as_ref(),
                &ctx.request,
            )
            .await;
        Ok(FlowOutcome::Registered {
            flow,
            identity: Box::new(identity),
            session,
        })
    }
}
