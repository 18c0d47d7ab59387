//! Login and registration with the password method, transport-neutral. The proxy maps [`Outcome`] and
//! [`FlowError`] to Kratos' status matrix.

use crate::flow::{Flow, FlowKind, FlowType};
use crate::password_policy::{self, BreachRange, PolicyConfig};
use crate::store::FlowPool;
use crate::ui::UiContainer;
use identity::manager::{CreateIdentity, ImportCredentials, ImportPassword, ImportPasswordConfig};
use identity::session::manager::{DeviceInfo, IssuedSession, SessionManager};
use identity::session::{Aal, AuthenticationMethod};
use identity::text::{self, UiText, UiTextType};
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
    /// The submit body is unusable.
    #[error("{0}")]
    BadRequest(String),
    /// Persistence failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Identity operations failed.
    #[error(transparent)]
    Identity(#[from] identity::Error),
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
            clock,
            settings,
        }
    }

    fn action(&self, kind: FlowKind, id: Uuid) -> String {
        format!(
            "{}self-service/{}?flow={id}",
            self.settings.public_base,
            kind.as_str()
        )
    }

    fn fresh_ui(&self, kind: FlowKind, id: Uuid) -> Result<Value, FlowError> {
        let action = self.action(kind, id);
        let schema = self.identities.schemas().default_schema();
        let ui = match kind {
            FlowKind::Registration => UiContainer::password_registration(action, "", schema),
            _ => UiContainer::password_login(action, "", Some(schema)),
        };
        serde_json::to_value(ui).map_err(|e| FlowError::BadRequest(e.to_string()))
    }

    /// Starts a native (API) login or registration flow.
    pub async fn init_api(&self, kind: FlowKind, request_url: String) -> Result<Flow, FlowError> {
        if kind == FlowKind::Registration && !self.settings.registration_enabled {
            return Err(FlowError::RegistrationDisabled);
        }
        let lifespan = match kind {
            FlowKind::Registration => self.settings.registration_lifespan,
            _ => self.settings.login_lifespan,
        };
        let mut flow = Flow::new(kind, FlowType::Api, request_url, self.clock.now(), lifespan);
        flow.ui = self.fresh_ui(kind, flow.id)?;
        self.flows.create_flow(&flow).await?;
        Ok(flow)
    }

    /// Loads a flow; an expired one yields [`FlowError::Expired`] with a replacement.
    pub async fn get(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        let flow = match self.flows.get_flow(kind, id).await {
            Ok(f) => f,
            Err(StoreError::NotFound) => return Err(FlowError::NotFound),
            Err(e) => return Err(e.into()),
        };
        if flow.is_expired(self.clock.now()) {
            let replacement = self.init_api(kind, flow.request_url.clone()).await?;
            return Err(FlowError::Expired {
                expired: Box::new(flow),
                replacement: Box::new(replacement),
            });
        }
        Ok(flow)
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
    /// cost the same hashing work.
    pub async fn login(
        &self,
        flow_id: Uuid,
        identifier: &str,
        password: &str,
        device: DeviceInfo,
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
                ui.add_message(text::validation_invalid_credentials());
                return self.retry(flow, ui).await;
            }
        };
        let ok = hasher.verify(password, &hash).await.unwrap_or(false);
        if !ok {
            ui.add_message(text::validation_invalid_credentials());
            return self.retry(flow, ui).await;
        }
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
        let now = self.clock.now();
        let session = self
            .sessions
            .issue(&identity, password_amr(now), device)
            .await?;
        flow.state = "passed_challenge".into();
        flow.active = Some("password".into());
        flow.updated_at = now;
        self.flows.update_flow(&flow).await?;
        Ok(Outcome::LoggedIn { session, identity })
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
        device: DeviceInfo,
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
        let body = CreateIdentity {
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
        let identity = match self.identities.create(body).await {
            Ok(i) => i,
            Err(identity::Error::Conflict) => {
                ui.add_message(text::validation_duplicate_credentials());
                return self.retry(flow, ui).await;
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let session = if self.settings.session_after_registration {
            Some(
                self.sessions
                    .issue(&identity, password_amr(now), device)
                    .await?,
            )
        } else {
            None
        };
        flow.state = "passed_challenge".into();
        flow.active = Some("password".into());
        flow.updated_at = now;
        self.flows.update_flow(&flow).await?;
        Ok(Outcome::Registered { identity, session })
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
