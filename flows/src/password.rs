//! Login and registration with the password method, transport-neutral. The proxy maps [`Outcome`] and
//! [`FlowError`] to Kratos' status matrix.

use crate::flow::{Flow, FlowKind, FlowType};
use crate::hooks::{HookFailure, HookRequest, HookRunner, NoHooks};
use crate::password_policy::{self, BreachRange, PolicyConfig};
use crate::store::FlowPool;
use crate::ui::UiContainer;
use identity::manager::{CreateIdentity, ImportCredentials, ImportPassword, ImportPasswordConfig};
use identity::session::manager::{DeviceInfo, IssuedSession, SessionManager};
use identity::session::{Aal, AuthenticationMethod};
use identity::text::{self, UiText, UiTextType};
use identity::throttle::{Throttle, ThrottleKey, ThrottleSettings};
use identity::{CredentialType, Identity, IdentityManager, SharedClock, StoreError};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// Settings of the password flows.
#[derive(Debug, Clone)]
pub struct PasswordFlowSettings {
    /// Public base URL with a trailing slash (for `ui.action`).
    pub public_base: String,
    /// `selfservice.flows.login.lifespan`.
    pub login_lifespan: Duration,
    /// `selfservice.flows.registration.lifespan`.
    pub registration_lifespan: Duration,
    /// Whether registration is on.
    pub registration_enabled: bool,
    /// Whether registration issues a session (the `session` hook).
    pub session_after_registration: bool,
    /// Password policy.
    pub policy: PolicyConfig,
    /// The `require_verified_address` login hook: sign-in needs a verified address.
    pub require_verified_address: bool,
}

/// What starts a flow.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// Login or registration.
    pub kind: FlowKind,
    /// Browser or API.
    pub flow_type: FlowType,
    /// The init request's full URL.
    pub request_url: String,
    /// A validated `return_to`.
    pub return_to: Option<String>,
    /// The masked CSRF token (browser flows; empty for API flows).
    pub csrf_token: String,
    /// Login `refresh=true` for this (session, identity).
    pub refresh_for: Option<(Uuid, Uuid)>,
}

/// What a submit led to.
#[derive(Debug)]
pub enum Outcome {
    /// Signed in.
    LoggedIn {
        /// The new session and its token.
        session: IssuedSession,
        /// Who.
        identity: Identity,
    },
    /// Signed up (with a session when the `session` hook is configured).
    Registered {
        /// The new identity.
        identity: Identity,
        /// The new session, if any.
        session: Option<IssuedSession>,
    },
    /// The form needs another try: the flow carries the messages (HTTP 400).
    Retry(Flow),
    /// The password was right but no address of the identity is verified (`require_verified_address`); no
    /// session was issued.
    AddressNotVerified {
        /// The flow.
        flow: Flow,
        /// Who.
        identity: Box<Identity>,
    },
    /// Too many failed logins: the flow carries a message; try again after `retry_after` (HTTP 429).
    Throttled {
        /// The flow with the message.
        flow: Flow,
        /// When another attempt is allowed.
        retry_after: std::time::Duration,
    },
}

/// Where a submit came from.
#[derive(Debug, Clone, Default)]
pub struct SubmitContext {
    /// For the new session's device entry.
    pub device: DeviceInfo,
    /// The client address, for throttling.
    pub client_ip: Option<std::net::IpAddr>,
    /// For web hooks.
    pub request: HookRequest,
}

/// Why a flow request cannot proceed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Unknown flow id (or a flow of another kind).
    #[error("flow not found")]
    NotFound,
    /// The flow expired; `replacement` is a fresh flow to use instead.
    #[error("the flow expired")]
    Expired {
        /// The expired flow.
        expired: Box<Flow>,
        /// A new flow of the same kind and type.
        replacement: Box<Flow>,
    },
    /// The flow has already been completed.
    #[error("the flow was already completed")]
    Completed,
    /// Registration is turned off.
    #[error("registration is disabled")]
    RegistrationDisabled,
    /// This flow kind (recovery, verification) or method is turned off.
    #[error("{0} is disabled")]
    Disabled(&'static str),
    /// The flow belongs to another identity than the session's.
    #[error("the flow belongs to another identity")]
    IdentityMismatch,
    /// The submit body is unusable.
    #[error("{0}")]
    BadRequest(String),
    /// Persistence failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Identity operations failed.
    #[error(transparent)]
    Identity(#[from] identity::Error),
    /// A hook could not run.
    #[error("a hook failed: {0}")]
    Hook(String),
}

/// Password login and registration.
#[derive(Clone)]
pub struct PasswordFlows {
    flows: Arc<dyn FlowPool>,
    identities: IdentityManager,
    sessions: SessionManager,
    breaches: Option<Arc<dyn BreachRange>>,
    clock: SharedClock,
    settings: PasswordFlowSettings,
    throttle: Throttle,
    hooks: Arc<dyn HookRunner>,
}

impl std::fmt::Debug for PasswordFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordFlows").finish_non_exhaustive()
    }
}

impl PasswordFlows {
    /// Wires the flows.
    pub fn new(
        flows: Arc<dyn FlowPool>,
        identities: IdentityManager,
        sessions: SessionManager,
        breaches: Option<Arc<dyn BreachRange>>,
        clock: SharedClock,
        settings: PasswordFlowSettings,
    ) -> Self {
        Self {
            flows,
            identities,
            sessions,
            breaches,
            throttle: Throttle::in_process(
                ThrottleSettings {
                    enabled: false,
                    ..Default::default()
                },
                clock.clone(),
            ),
            hooks: Arc::new(NoHooks),
            clock,
            settings,
        }
    }

    /// Throttles failed logins.
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }

    /// Runs these hooks after logins and registrations.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    fn action(&self, kind: FlowKind, id: Uuid) -> String {
        format!(
            "{}self-service/{}?flow={id}",
            self.settings.public_base,
            kind.as_str()
        )
    }

    fn fresh_ui(&self, kind: FlowKind, id: Uuid) -> Result<UiContainer, FlowError> {
        let action = self.action(kind, id);
        let schema = self.identities.schemas().default_schema();
        Ok(match kind {
            FlowKind::Registration => UiContainer::password_registration(action, "", schema),
            _ => UiContainer::password_login(action, "", Some(schema)),
        })
    }

    /// Starts a native (API) login or registration flow.
    pub async fn init_api(&self, kind: FlowKind, request_url: String) -> Result<Flow, FlowError> {
        self.init(InitRequest {
            kind,
            flow_type: FlowType::Api,
            request_url,
            return_to: None,
            csrf_token: String::new(),
            refresh_for: None,
        })
        .await
    }

    /// Starts a login or registration flow.
    pub async fn init(&self, req: InitRequest) -> Result<Flow, FlowError> {
        if req.kind == FlowKind::Registration && !self.settings.registration_enabled {
            return Err(FlowError::RegistrationDisabled);
        }
        let lifespan = match req.kind {
            FlowKind::Registration => self.settings.registration_lifespan,
            _ => self.settings.login_lifespan,
        };
        let mut flow = Flow::new(
            req.kind,
            req.flow_type,
            req.request_url,
            self.clock.now(),
            lifespan,
        );
        flow.return_to = req.return_to;
        flow.csrf_token = req.csrf_token;
        let mut ui = self.fresh_ui(req.kind, flow.id)?;
        if !flow.csrf_token.is_empty() {
            ui.set_csrf(&flow.csrf_token);
        }
        if let (FlowKind::Login, Some((session_id, identity_id))) = (req.kind, req.refresh_for) {
            self.prepare_refresh(&mut flow, &mut ui, session_id, identity_id)
                .await?;
        }
        flow.ui = serde_json::to_value(ui).map_err(|e| FlowError::BadRequest(e.to_string()))?;
        self.flows.create_flow(&flow).await?;
        Ok(flow)
    }

    /// `refresh=true`: the identifier is fixed to the signed-in identity's and the user is asked to confirm.
    async fn prepare_refresh(
        &self,
        flow: &mut Flow,
        ui: &mut UiContainer,
        session_id: Uuid,
        identity_id: Uuid,
    ) -> Result<(), FlowError> {
        let identity = self
            .identities
            .pool()
            .get_identity(identity_id, true)
            .await?;
        let identifier = identity
            .credentials
            .get(&CredentialType::Password)
            .and_then(|c| c.identifiers.first().cloned())
            .unwrap_or_default();
        flow.refresh = true;
        flow.session_id = Some(session_id);
        flow.identity_id = Some(identity_id);
        if let Some(node) = ui.node_mut("identifier") {
            if let crate::ui::Attributes::Input(a) = &mut node.attributes {
                a.type_ = crate::ui::InputType::Hidden;
                a.value = Some(json!(identifier));
            }
        }
        ui.add_message(UiText {
            id: 1_010_003,
            text: "Please confirm this action by verifying that it is you.".into(),
            kind: UiTextType::Info,
            context: None,
        });
        Ok(())
    }

    /// Loads a flow, expired or not.
    pub async fn load(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        match self.flows.get_flow(kind, id).await {
            Ok(f) => Ok(f),
            Err(StoreError::NotFound) => Err(FlowError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Loads a flow; an expired one yields [`FlowError::Expired`] with a replacement of the same kind, type,
    /// `return_to` and CSRF token.
    pub async fn get(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        let flow = self.load(kind, id).await?;
        if flow.is_expired(self.clock.now()) {
            let replacement = self
                .init(InitRequest {
                    kind,
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: flow.csrf_token.clone(),
                    refresh_for: None,
                })
                .await?;
            return Err(FlowError::Expired {
                expired: Box::new(flow),
                replacement: Box::new(replacement),
            });
        }
        Ok(flow)
    }

    /// Adds a form-level message to a flow and stores it (e.g. "already signed in", throttling).
    pub async fn with_message(&self, flow: Flow, message: UiText) -> Result<Flow, FlowError> {
        let mut ui = Self::ui_of(&flow)?;
        ui.add_message(message);
        match self.retry(flow, ui).await? {
            Outcome::Retry(f) => Ok(f),
            _ => Err(FlowError::BadRequest("unexpected outcome".into())),
        }
    }

    async fn retry(&self, mut flow: Flow, ui: UiContainer) -> Result<Outcome, FlowError> {
        flow.ui = serde_json::to_value(ui).map_err(|e| FlowError::BadRequest(e.to_string()))?;
        flow.updated_at = self.clock.now();
        self.flows.update_flow(&flow).await?;
        Ok(Outcome::Retry(flow))
    }

    fn ui_of(flow: &Flow) -> Result<UiContainer, FlowError> {
        let mut ui: UiContainer = serde_json::from_value(flow.ui.clone())
            .map_err(|e| FlowError::BadRequest(format!("stored flow is unreadable: {e}")))?;
        ui.reset_messages();
        Ok(ui)
    }

    fn open(flow: &Flow) -> Result<(), FlowError> {
        if flow.state == "passed_challenge" {
            return Err(FlowError::Completed);
        }
        Ok(())
    }

    /// `method=password` on a login flow. Unknown identifiers and wrong passwords give the same message and
    /// cost the same hashing work. Every attempt is counted against the throttle of the identifier and the client
    /// address before any hashing (so concurrent guesses cannot overtake the limit) and taken back if the
    /// password is right.
    pub async fn login(
        &self,
        flow_id: Uuid,
        identifier: &str,
        password: &str,
        ctx: SubmitContext,
    ) -> Result<Outcome, FlowError> {
        let mut flow = self.get(FlowKind::Login, flow_id).await?;
        Self::open(&flow)?;
        let mut ui = Self::ui_of(&flow)?;
        let normalized = identifier.trim().to_lowercase();
        ui.set_value("identifier", json!(identifier));
        if normalized.is_empty() || password.is_empty() {
            let missing = if normalized.is_empty() {
                "identifier"
            } else {
                "password"
            };
            ui.add_message_to_node(missing, text::validation_required(missing));
            return self.retry(flow, ui).await;
        }
        let mut keys = vec![ThrottleKey::Identifier(normalized.clone())];
        keys.extend(ctx.client_ip.map(ThrottleKey::Ip));
        // Counted before any hashing, atomically: concurrent guesses cannot overtake the limit. It stays counted
        // unless the password turns out right (and also when this request ends in an error or is dropped).
        let attempt = match self.throttle.reserve(&keys).await {
            Ok(attempt) => attempt,
            Err(t) => {
                ui.add_message(throttled_message(t.retry_after));
                let Outcome::Retry(flow) = self.retry(flow, ui).await? else {
                    return Err(FlowError::BadRequest("unexpected outcome".into()));
                };
                return Ok(Outcome::Throttled {
                    flow,
                    retry_after: t.retry_after,
                });
            }
        };
        let hasher = self.identities.hasher();
        let found = match self
            .identities
            .pool()
            .find_by_credential_identifier(CredentialType::Password, &normalized)
            .await
        {
            Ok(i) => Some(i),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let stored = found
            .as_ref()
            .and_then(|i| i.credentials.get(&CredentialType::Password))
            .and_then(|c| c.hashed_password().map(str::to_owned));
        let (identity, hash) = match (found, stored) {
            (Some(i), Some(h)) => (i, h),
            _ => {
                hasher.verify_dummy(password).await;
                attempt.failed();
                ui.add_message(text::validation_invalid_credentials());
                return self.retry(flow, ui).await;
            }
        };
        let ok = hasher.verify(password, &hash).await.unwrap_or(false);
        if !ok {
            attempt.failed();
            ui.add_message(text::validation_invalid_credentials());
            return self.retry(flow, ui).await;
        }
        // The right password: this attempt and the identifier's earlier failures no longer count.
        attempt.succeeded().await;
        if !identity.is_active() {
            ui.add_message(UiText {
                id: 4_000_010,
                text: "The account is disabled.".into(),
                kind: UiTextType::Error,
                context: None,
            });
            return self.retry(flow, ui).await;
        }
        if hasher.needs_rehash(&hash) {
            self.rehash(&identity, password).await;
        }
        if self.settings.require_verified_address
            && !identity.verifiable_addresses.iter().any(|a| a.verified)
        {
            ui.add_message(text::validation_address_not_verified());
            let Outcome::Retry(flow) = self.retry(flow, ui).await? else {
                return Err(FlowError::BadRequest("unexpected outcome".into()));
            };
            return Ok(Outcome::AddressNotVerified {
                flow,
                identity: Box::new(identity),
            });
        }
        let identity_json = self.identity_json(&identity);
        match self
            .hooks
            .before_persist(FlowKind::Login, &flow, &identity_json, &ctx.request)
            .await
        {
            Ok(_) => {}
            Err(HookFailure::Interrupted(messages)) => {
                add_hook_messages(&mut ui, messages);
                return self.retry(flow, ui).await;
            }
            Err(HookFailure::Failed(reason)) => return Err(FlowError::Hook(reason)),
        }
        let now = self.clock.now();
        let session = self
            .sessions
            .issue(&identity, password_amr(now), ctx.device)
            .await?;
        if self.hooks.revoke_active_sessions(FlowKind::Login) {
            self.sessions
                .revoke_others(identity.id, Some(session.session.id))
                .await?;
        }
        flow.state = "passed_challenge".into();
        flow.active = Some("password".into());
        flow.updated_at = now;
        self.flows.update_flow(&flow).await?;
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
        Ok(Outcome::LoggedIn { session, identity })
    }

    fn identity_json(&self, identity: &Identity) -> Value {
        identity::view::admin_identity(
            identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        )
    }

    /// Stores a fresh hash with the current parameters; failures are logged, never fatal to the login.
    async fn rehash(&self, identity: &Identity, password: &str) {
        let body = identity::manager::UpdateIdentity {
            schema_id: Some(identity.schema_id.clone()),
            traits: identity.traits.clone(),
            state: Some(identity.state.as_str().into()),
            metadata_public: identity.metadata_public.clone(),
            metadata_admin: identity.metadata_admin.clone(),
            credentials: Some(password_import(password)),
            external_id: identity.external_id.clone(),
        };
        if let Err(e) = self.identities.update(identity.id, body).await {
            tracing::warn!(error = %e, identity = %identity.id, "could not upgrade a password hash");
        }
    }

    /// `method=password` on a registration flow.
    pub async fn register(
        &self,
        flow_id: Uuid,
        traits: Value,
        password: &str,
        ctx: SubmitContext,
    ) -> Result<Outcome, FlowError> {
        let mut flow = self.get(FlowKind::Registration, flow_id).await?;
        Self::open(&flow)?;
        let mut ui = Self::ui_of(&flow)?;
        ui.set_values_from_json("traits", &traits);
        let schema_id = self.identities.schemas().default_id().to_owned();
        let info = match self.identities.validate(&schema_id, &traits) {
            Ok(info) => info,
            Err(identity::Error::Validation(messages)) => {
                ui.add_field_messages(&messages);
                return self.retry(flow, ui).await;
            }
            Err(e) => return Err(e.into()),
        };
        if password.is_empty() {
            ui.add_message_to_node("password", text::validation_required("password"));
            return self.retry(flow, ui).await;
        }
        let identifier = info
            .password_identifiers
            .first()
            .cloned()
            .unwrap_or_default();
        if let Err(v) = password_policy::check(
            &self.settings.policy,
            &identifier,
            password,
            self.breaches.as_deref(),
        )
        .await
        {
            let m = v.message();
            ui.add_message_to_node(
                "password",
                UiText {
                    id: m.id,
                    text: m.text,
                    kind: UiTextType::Error,
                    context: Some(m.context).filter(|c: &Map<String, Value>| !c.is_empty()),
                },
            );
            return self.retry(flow, ui).await;
        }
        let mut body = CreateIdentity {
            schema_id,
            traits,
            state: None,
            metadata_public: None,
            metadata_admin: None,
            credentials: Some(password_import(password)),
            verifiable_addresses: None,
            recovery_addresses: None,
            organization_id: None,
            external_id: None,
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
                add_hook_messages(&mut ui, messages);
                return self.retry(flow, ui).await;
            }
            Err(HookFailure::Failed(reason)) => return Err(FlowError::Hook(reason)),
        }
        let identity = match self.identities.create(body).await {
            Ok(i) => i,
            Err(identity::Error::Conflict) => {
                ui.add_message(text::validation_duplicate_credentials());
                return self.retry(flow, ui).await;
            }
            Err(identity::Error::Validation(messages)) => {
                // A hook's patch broke the schema.
                ui.add_field_messages(&messages);
                return self.retry(flow, ui).await;
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let session = if self.settings.session_after_registration {
            Some(
                self.sessions
                    .issue(&identity, password_amr(now), ctx.device)
                    .await?,
            )
        } else {
            None
        };
        flow.state = "passed_challenge".into();
        flow.active = Some("password".into());
        flow.updated_at = now;
        self.flows.update_flow(&flow).await?;
        let session_json = session
            .as_ref()
            .map(|s| self.sessions.render(&s.session, Some(&identity), false));
        self.hooks
            .after_persist(
                FlowKind::Registration,
                &flow,
                &self.identity_json(&identity),
                session_json.as_ref(),
                &ctx.request,
            )
            .await;
        Ok(Outcome::Registered { identity, session })
    }
}

/// Puts hook messages on the nodes their JSON pointers name (`#/traits/email` → `traits.email`), or on the form.
pub(crate) fn add_hook_messages(ui: &mut UiContainer, messages: Vec<(String, UiText)>) {
    for (pointer, message) in messages {
        let name = pointer
            .trim_start_matches('#')
            .trim_start_matches('/')
            .replace('/', ".");
        if name.is_empty() || ui.node(&name).is_none() {
            ui.add_message(message);
        } else {
            ui.add_message_to_node(&name, message);
        }
    }
}

/// The form message of a throttled login.
pub fn throttled_message(retry_after: std::time::Duration) -> UiText {
    let secs = retry_after.as_secs().max(1);
    UiText {
        id: 4_000_001,
        text: format!("Too many failed sign-in attempts. Please try again in {secs} seconds."),
        kind: UiTextType::Error,
        context: Some(
            [
                ("reason".to_owned(), json!("too many failed attempts")),
                ("retry_after_seconds".to_owned(), json!(secs)),
            ]
            .into_iter()
            .collect(),
        ),
    }
}

/// The AMR entry of a password login.
fn password_amr(now: time::OffsetDateTime) -> Vec<AuthenticationMethod> {
    vec![AuthenticationMethod {
        method: CredentialType::Password.as_str().into(),
        aal: Aal::Aal1,
        completed_at: now,
        provider: None,
        organization: None,
    }]
}

/// A plaintext password for the identity manager to hash.
fn password_import(password: &str) -> ImportCredentials {
    ImportCredentials {
        password: Some(ImportPassword {
            config: ImportPasswordConfig {
                password: Some(password.to_owned()),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}
