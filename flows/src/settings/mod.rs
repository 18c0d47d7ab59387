//! The settings flow, transport-neutral: the signed-in identity changes its traits (`profile`) or its password
//! (`password`). Changes to credentials, identifiers or addresses are privileged: they need a session
//! authenticated within `privileged_session_max_age`.
//!
//! A privileged change of a browser flow with a session that is too old is not lost: as in Kratos, it is paused in
//! a continuity container ([`crate::continuity`]; the payload, a new password included, is stored sealed) while
//! the browser signs in again, and [`SettingsFlows::resume`] completes it when that browser comes back to the flow
//! (`GET /self-service/settings?flow=`) with a fresh session. Only the latest paused change of a flow is resumed,
//! and only if the flow was not submitted again in between. A resumed change that fails before the identity is
//! stored (a store error, say) is put back in its container, so that the browser's next return tries it again.

use crate::continuity::{Continuity, ContinuityError, CookieUpdate, Resume};
use crate::engine::{dispatch, Dispatch, FlowOutcome};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowType};
use crate::hooks::{HookFailure, HookRequest, HookRunner, NoHooks};
use crate::store::FlowPool;
use crate::texts;
use crate::ui::{csrf_node, UiContainer};
use async_trait::async_trait;
use identity::manager::UpdateIdentity;
use identity::session::manager::SessionManager;
use identity::text;
use identity::{Identity, IdentityManager, SharedClock, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long a paused settings change waits for the refresh sign-in (Kratos: 15 minutes).
pub const CONTINUITY_LIFESPAN: Duration = Duration::minutes(15);

/// The flow's context key naming the container of its latest paused change.
const CONTINUITY_CONTEXT: &str = "continuity_container";

/// The continuity container of a settings flow's paused change.
fn container_name(flow_id: Uuid) -> String {
    format!("ory_kratos_settings_{flow_id}")
}

/// Settings of the settings flow.
#[derive(Debug, Clone)]
pub struct SettingsFlowSettings {
    /// Public base URL with a trailing slash (for `ui.action`).
    pub public_base: String,
    /// `selfservice.flows.settings.lifespan`.
    pub lifespan: Duration,
    /// `selfservice.flows.settings.privileged_session_max_age`.
    pub privileged_session_max_age: Duration,
    /// The settings page (for `continue_with` links).
    pub settings_ui: String,
}

/// What starts a settings flow.
#[derive(Debug, Clone)]
pub struct SettingsInit {
    /// Browser or API.
    pub flow_type: FlowType,
    /// The init request's full URL.
    pub request_url: String,
    /// A validated `return_to`.
    pub return_to: Option<String>,
    /// The masked CSRF token (browser flows).
    pub csrf_token: String,
    /// The signed-in identity.
    pub identity_id: Uuid,
    /// Its session.
    pub session_id: Uuid,
}

/// A settings method (`profile`, `password`, later `totp`, `lookup_secret`, `webauthn`, …).
#[async_trait]
pub trait SettingsStrategy: Send + Sync {
    /// The `method` value this strategy handles.
    fn method(&self) -> &'static str;

    /// Adds the strategy's nodes to the settings form of `identity`.
    fn populate(&self, ui: &mut UiContainer, identity: &Identity);

    /// Decodes a submit body into the change, as JSON: the form in which a change waits in a continuity container
    /// for a refresh sign-in. A body that does not decode puts a message on the flow and yields `None`.
    fn decode(&self, flow: &mut Flow, body: &Value) -> Option<Value>;

    /// Checks a change of `identity` and describes the update. `privileged`: the session may make privileged
    /// changes. Messages for the user go onto `ui`.
    async fn change(
        &self,
        ui: &mut UiContainer,
        identity: &Identity,
        change: &Value,
        privileged: bool,
    ) -> Result<SettingsResult, FlowError>;
}

/// What a settings strategy made of a change.
#[derive(Debug)]
pub enum SettingsResult {
    /// Store this identity.
    Update(Box<UpdateIdentity>),
    /// The form carries messages: show it again.
    Retry,
    /// The change is privileged and the session too old: sign in again first.
    RefreshRequired,
}

/// A change of a settings flow: which method, and its decoded change.
#[derive(Debug, Clone)]
struct SettingsChange {
    method: String,
    change: Value,
}

impl SettingsChange {
    /// The change as a continuity payload, bound to its flow.
    fn to_payload(&self, flow_id: Uuid) -> Value {
        json!({"flow": flow_id, "method": self.method, "change": self.change})
    }

    /// The change a payload of [`SettingsChange::to_payload`] for `flow_id` holds.
    fn from_payload(payload: &Value, flow_id: Uuid) -> Option<Self> {
        if payload.get("flow").and_then(Value::as_str) != Some(flow_id.to_string().as_str()) {
            return None;
        }
        Some(Self {
            method: payload.get("method")?.as_str()?.to_owned(),
            change: payload.get("change")?.clone(),
        })
    }
}

/// Why applying a change failed: before the identity was stored, so nothing of the change happened and it may be
/// tried again, or after.
#[derive(Debug)]
enum ApplyError {
    /// Nothing of the change was stored.
    Before(FlowError),
    /// The identity was stored; what comes after it failed.
    After(FlowError),
}

impl ApplyError {
    fn into_inner(self) -> FlowError {
        match self {
            ApplyError::Before(e) | ApplyError::After(e) => e,
        }
    }
}

impl From<FlowError> for ApplyError {
    fn from(e: FlowError) -> Self {
        ApplyError::Before(e)
    }
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        ApplyError::Before(e.into())
    }
}

/// Who submits.
#[derive(Debug, Clone)]
pub struct SettingsActor {
    /// The session's identity.
    pub identity_id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// When the session last authenticated.
    pub authenticated_at: OffsetDateTime,
    /// For web hooks.
    pub request: HookRequest,
    /// The browser's continuity cookie ([`crate::continuity::COOKIE_NAME`]), if it sent one.
    pub continuity_cookie: Option<String>,
}

/// What a browser's return to its settings flow found ([`SettingsFlows::resume`]).
#[derive(Debug)]
pub struct SettingsResume {
    /// The outcome of the paused change, when one waited for this browser (as a submit's outcome).
    pub outcome: Option<FlowOutcome>,
    /// What to do with the browser's continuity cookie.
    pub continuity_cookie: CookieUpdate,
}

/// The settings flow.
#[derive(Clone)]
pub struct SettingsFlows {
    flows: Arc<dyn FlowPool>,
    identities: IdentityManager,
    sessions: SessionManager,
    strategies: Arc<[Arc<dyn SettingsStrategy>]>,
    clock: SharedClock,
    settings: SettingsFlowSettings,
    hooks: Arc<dyn HookRunner>,
    continuity: Option<Continuity>,
}

impl std::fmt::Debug for SettingsFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsFlows").finish_non_exhaustive()
    }
}

impl SettingsFlows {
    /// Wires the flow with its enabled strategies, in the order their nodes appear.
    pub fn new(
        flows: Arc<dyn FlowPool>,
        identities: IdentityManager,
        sessions: SessionManager,
        strategies: Vec<Arc<dyn SettingsStrategy>>,
        clock: SharedClock,
        settings: SettingsFlowSettings,
    ) -> Self {
        Self {
            flows,
            identities,
            sessions,
            strategies: strategies.into(),
            clock,
            settings,
            hooks: Arc::new(NoHooks),
            continuity: None,
        }
    }

    /// Pauses privileged changes of browser flows with a stale session in these containers, to complete them
    /// after the refresh sign-in.
    pub fn with_continuity(mut self, continuity: Continuity) -> Self {
        self.continuity = Some(continuity);
        self
    }

    /// Runs these hooks after changes.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    /// The configured settings.
    pub fn settings(&self) -> &SettingsFlowSettings {
        &self.settings
    }

    /// The form for `identity`: each method's nodes, with its current traits filled in.
    fn form_for(&self, flow_id: Uuid, csrf_token: &str, identity: &Identity) -> UiContainer {
        let mut ui = UiContainer::new(format!(
            "{}self-service/settings?flow={flow_id}",
            self.settings.public_base
        ));
        ui.upsert_node(csrf_node(csrf_token));
        for s in self.strategies.iter() {
            s.populate(&mut ui, identity);
        }
        ui
    }

    /// Starts a settings flow for a signed-in identity.
    pub async fn init(&self, req: SettingsInit) -> Result<Flow, FlowError> {
        self.create(req, None).await
    }

    /// Creates the flow, with a form-level message when given.
    async fn create(
        &self,
        req: SettingsInit,
        message: Option<identity::text::UiText>,
    ) -> Result<Flow, FlowError> {
        let identity = self
            .identities
            .pool()
            .get_identity(req.identity_id, true)
            .await?;
        let mut flow = Flow::new(
            FlowKind::Settings,
            req.flow_type,
            req.request_url,
            self.clock.now(),
            self.settings.lifespan,
        );
        flow.state = crate::flow::FlowState::ShowForm;
        flow.return_to = req.return_to;
        flow.csrf_token = req.csrf_token;
        flow.identity_id = Some(req.identity_id);
        flow.session_id = Some(req.session_id);
        let mut ui = self.form_for(flow.id, &flow.csrf_token, &identity);
        if let Some(m) = message {
            ui.add_message(m);
        }
        flow.set_form(&ui);
        self.flows.create_flow(&flow).await?;
        Ok(flow)
    }

    /// A settings flow for an identity that just recovered its account, carrying the "recovered" message.
    pub async fn init_after_recovery(
        &self,
        req: SettingsInit,
        privileged_until: OffsetDateTime,
    ) -> Result<Flow, FlowError> {
        self.create(req, Some(texts::recovery_successful(privileged_until)))
            .await
    }

    /// Loads a flow, expired or not.
    pub async fn load(&self, id: Uuid) -> Result<Flow, FlowError> {
        match self.flows.get_flow(FlowKind::Settings, id).await {
            Ok(f) => Ok(f),
            Err(StoreError::NotFound) => Err(FlowError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Loads a flow of `identity_id` (403 [`FlowError::IdentityMismatch`] for another identity's flow).
    pub async fn load_for(&self, id: Uuid, identity_id: Uuid) -> Result<Flow, FlowError> {
        let flow = self.load(id).await?;
        if flow.identity_id != Some(identity_id) {
            return Err(FlowError::IdentityMismatch);
        }
        Ok(flow)
    }

    /// The identity a flow belongs to, for rendering the flow.
    pub async fn identity_of(&self, flow: &Flow) -> Result<Identity, FlowError> {
        let id = flow.identity_id.ok_or(FlowError::NotFound)?;
        Ok(self.identities.pool().get_identity(id, false).await?)
    }

    /// Whether a session authenticated at `authenticated_at` may make privileged changes now.
    pub fn is_privileged(&self, authenticated_at: OffsetDateTime) -> bool {
        let max_age = self.settings.privileged_session_max_age;
        match authenticated_at.checked_add(max_age) {
            Some(until) => until > self.clock.now(),
            // Beyond the calendar: an unbounded age (or nothing, for a negative one).
            None => max_age.is_positive(),
        }
    }

    /// The flow was submitted: a change paused earlier must not be resumed over this one.
    fn forget_paused(flow: &mut Flow) {
        if let Value::Object(m) = &mut flow.internal_context {
            m.remove(CONTINUITY_CONTEXT);
        }
    }

    /// Saves the flow with `ui` and answers with its form (HTTP 400, or the form again for browsers).
    async fn form(&self, mut flow: Flow, ui: UiContainer) -> Result<FlowOutcome, FlowError> {
        Self::forget_paused(&mut flow);
        flow.set_form(&ui);
        flow.updated_at = self.clock.now();
        self.flows.update_flow(&flow).await?;
        Ok(FlowOutcome::Form(flow))
    }

    /// Applies a change. Expired flows yield [`FlowError::Expired`] with a fresh flow for the same session.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        actor: SettingsActor,
        body: &Value,
    ) -> Result<FlowOutcome, FlowError> {
        let mut flow = self.load_for(flow_id, actor.identity_id).await?;
        if flow.is_expired(self.clock.now()) {
            let replacement = self
                .init(SettingsInit {
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: flow.csrf_token.clone(),
                    identity_id: actor.identity_id,
                    session_id: actor.session_id,
                })
                .await?;
            return Err(FlowError::Expired {
                expired: Box::new(flow),
                replacement: Box::new(replacement),
            });
        }
        flow.ui.reset_messages();
        let strategy = match dispatch(&mut flow, body, &self.strategies, |s| s.method()) {
            Dispatch::Strategy(s) => s,
            Dispatch::Unknown => {
                let ui = flow.ui.clone();
                return self.form(flow, ui).await;
            }
        };
        let Some(change) = strategy.decode(&mut flow, body) else {
            let ui = flow.ui.clone();
            return self.form(flow, ui).await;
        };
        let change = SettingsChange {
            method: strategy.method().to_owned(),
            change,
        };
        let paused = (flow.flow_type == FlowType::Browser).then(|| change.to_payload(flow.id));
        match self
            .apply(flow, &actor, change)
            .await
            .map_err(ApplyError::into_inner)?
        {
            FlowOutcome::RefreshRequired { flow, .. } => match paused {
                Some(payload) => self.pause(flow, &actor, payload).await,
                None => Ok(FlowOutcome::RefreshRequired {
                    flow,
                    continuity_cookie: None,
                }),
            },
            outcome => Ok(outcome),
        }
    }

    /// Applies a change to a loaded, live flow: the strategy checks it, then hooks run and the identity is stored.
    async fn apply(
        &self,
        flow: Flow,
        actor: &SettingsActor,
        change: SettingsChange,
    ) -> Result<FlowOutcome, ApplyError> {
        let mut ui = flow.form();
        let Some(strategy) = self.strategies.iter().find(|s| s.method() == change.method) else {
            ui.add_message(crate::engine::no_strategy_message(FlowKind::Settings));
            return Ok(self.form(flow, ui).await?);
        };
        let identity = self
            .identities
            .pool()
            .get_identity(actor.identity_id, true)
            .await?;
        let privileged = self.is_privileged(actor.authenticated_at);
        let body = match strategy
            .change(&mut ui, &identity, &change.change, privileged)
            .await?
        {
            SettingsResult::Update(body) => *body,
            SettingsResult::Retry => return Ok(self.form(flow, ui).await?),
            SettingsResult::RefreshRequired => {
                return Ok(FlowOutcome::RefreshRequired {
                    flow,
                    continuity_cookie: None,
                })
            }
        };
        self.update(flow, ui, identity, body, strategy.method(), actor)
            .await
    }

    /// Keeps a change that needs a refresh sign-in in a continuity container, and remembers the container on the
    /// flow as its latest paused change. Without containers (or secrets to seal them) the change is dropped, as
    /// before: the browser signs in again and submits again.
    async fn pause(
        &self,
        mut flow: Flow,
        actor: &SettingsActor,
        payload: Value,
    ) -> Result<FlowOutcome, FlowError> {
        let Some(continuity) = &self.continuity else {
            return Ok(FlowOutcome::RefreshRequired {
                flow,
                continuity_cookie: None,
            });
        };
        let paused = continuity
            .pause(
                &container_name(flow.id),
                Some(actor.identity_id),
                &payload,
                CONTINUITY_LIFESPAN,
                actor.continuity_cookie.as_deref(),
            )
            .await;
        match paused {
            Ok((container, cookie)) => {
                flow.set_context_value(CONTINUITY_CONTEXT, json!(container.id));
                flow.updated_at = self.clock.now();
                self.flows.update_flow(&flow).await?;
                Ok(FlowOutcome::RefreshRequired {
                    flow,
                    continuity_cookie: Some(cookie),
                })
            }
            Err(ContinuityError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "could not keep a settings change for after the refresh sign-in");
                Ok(FlowOutcome::RefreshRequired {
                    flow,
                    continuity_cookie: None,
                })
            }
        }
    }

    /// A browser came back to its settings flow (`GET /self-service/settings?flow=`), as after the refresh
    /// sign-in that a privileged change asked for: with a session that may now make privileged changes, the change
    /// this browser paused on this flow is resumed and applied as a submit would (same checks and hooks; the
    /// flow ends in `success`). Nothing happens for another browser (no container in its cookie), another
    /// identity, an expired container, a change that a later submit of the flow superseded, or a session that is
    /// still too old (the container then waits for the sign-in). When applying the change fails before the
    /// identity is stored, the change waits again in its container ([`Continuity::restore`]) and the error is
    /// returned.
    pub async fn resume(
        &self,
        flow_id: Uuid,
        actor: SettingsActor,
    ) -> Result<SettingsResume, FlowError> {
        let nothing = |continuity_cookie| SettingsResume {
            outcome: None,
            continuity_cookie,
        };
        let (Some(continuity), Some(cookie)) =
            (&self.continuity, actor.continuity_cookie.as_deref())
        else {
            return Ok(nothing(CookieUpdate::Keep));
        };
        let flow = self.load_for(flow_id, actor.identity_id).await?;
        if flow.flow_type != FlowType::Browser
            || flow.is_expired(self.clock.now())
            || !self.is_privileged(actor.authenticated_at)
        {
            return Ok(nothing(CookieUpdate::Keep));
        }
        let (resumed, update) = match continuity
            .resume(
                &container_name(flow.id),
                Some(cookie),
                Some(actor.identity_id),
            )
            .await
        {
            Ok(r) => r,
            Err(ContinuityError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "could not resume a paused settings change");
                return Ok(nothing(CookieUpdate::Clear));
            }
        };
        let Resume::Resumed(container) = resumed else {
            return Ok(nothing(update));
        };
        let latest = flow
            .context_value(CONTINUITY_CONTEXT)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let change = if latest == Some(container.id) {
            SettingsChange::from_payload(&container.payload, flow.id)
        } else {
            None
        };
        let Some(change) = change else {
            return Ok(nothing(update));
        };
        match self.apply(flow, &actor, change).await {
            Ok(outcome) => Ok(SettingsResume {
                outcome: Some(outcome),
                continuity_cookie: update,
            }),
            Err(ApplyError::Before(e)) => {
                // Nothing of the change was stored (a store error, say): put it back, so that the browser's next
                // return tries again. The error answer leaves the browser's cookie as it was, naming the container.
                if let Err(put_back) = continuity.restore(&container).await {
                    tracing::warn!(error = %put_back, "could not put back a settings change whose resume failed");
                }
                Err(e)
            }
            // The change is stored: it must not be applied twice.
            Err(ApplyError::After(e)) => Err(e),
        }
    }

    /// Stores a checked change: the interrupting hooks may refuse it or patch traits and metadata.
    async fn update(
        &self,
        flow: Flow,
        mut ui: UiContainer,
        identity: Identity,
        mut body: UpdateIdentity,
        method: &str,
        actor: &SettingsActor,
    ) -> Result<FlowOutcome, ApplyError> {
        match self.before_hooks(&flow, &identity, &body, actor).await? {
            Ok(Some(patch)) => {
                if let Some(t) = patch.get("traits") {
                    body.traits = t.clone();
                }
                if let Some(m) = patch.get("metadata_public") {
                    body.metadata_public = Some(m.clone()).filter(|v| !v.is_null());
                }
                if let Some(m) = patch.get("metadata_admin") {
                    body.metadata_admin = Some(m.clone()).filter(|v| !v.is_null());
                }
            }
            Ok(None) => {}
            Err(messages) => {
                crate::hooks::add_hook_messages(&mut ui, messages);
                return Ok(self.form(flow, ui).await?);
            }
        }
        let before: Vec<Uuid> = identity.verifiable_addresses.iter().map(|a| a.id).collect();
        let updated = match self.identities.update(identity.id, body).await {
            Ok(i) => i,
            Err(identity::Error::Conflict) => {
                ui.add_message(text::validation_duplicate_credentials());
                return Ok(self.form(flow, ui).await?);
            }
            Err(identity::Error::Validation(messages)) => {
                ui.add_field_messages(&messages);
                return Ok(self.form(flow, ui).await?);
            }
            Err(e) => return Err(ApplyError::Before(e.into())),
        };
        let new_addresses = updated
            .verifiable_addresses
            .iter()
            .filter(|a| !before.contains(&a.id) && !a.verified)
            .map(|a| (a.id, a.value.clone()))
            .collect();
        let flow = self
            .saved(flow, &updated, method, actor)
            .await
            .map_err(ApplyError::After)?;
        Ok(FlowOutcome::SettingsSaved {
            flow,
            identity: Box::new(updated),
            new_addresses,
        })
    }

    /// Runs the interrupting hooks: `Ok(Ok(patch))` to go on, `Ok(Err(messages))` when a hook refused.
    async fn before_hooks(
        &self,
        flow: &Flow,
        identity: &Identity,
        body: &UpdateIdentity,
        actor: &SettingsActor,
    ) -> Result<Result<Option<Value>, Vec<(String, identity::text::UiText)>>, FlowError> {
        let mut preview = identity::view::admin_identity(
            identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        );
        preview["traits"] = body.traits.clone();
        match self
            .hooks
            .before_persist(FlowKind::Settings, flow, &preview, &actor.request)
            .await
        {
            Ok(patch) => Ok(Ok(patch)),
            Err(HookFailure::Interrupted(messages)) => Ok(Err(messages)),
            Err(HookFailure::Failed(reason)) => Err(FlowError::Hook(reason)),
        }
    }

    /// Marks the flow successful with a fresh form, refreshes cached sessions and runs the after hooks.
    async fn saved(
        &self,
        mut flow: Flow,
        identity: &Identity,
        method: &str,
        actor: &SettingsActor,
    ) -> Result<Flow, FlowError> {
        let now = self.clock.now();
        Self::forget_paused(&mut flow);
        let mut ui = self.form_for(flow.id, &flow.csrf_token, identity);
        ui.add_message(texts::settings_saved());
        flow.set_form(&ui);
        flow.state = crate::flow::FlowState::Success;
        flow.active = Some(method.to_owned());
        flow.updated_at = now;
        self.flows.update_flow(&flow).await?;
        self.sessions.identity_changed(identity).await?;
        if self.hooks.revoke_active_sessions(FlowKind::Settings) {
            self.sessions
                .revoke_others(identity.id, Some(actor.session_id))
                .await?;
        }
        let identity_json = identity::view::admin_identity(
            identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        );
        self.hooks
            .after_persist(
                FlowKind::Settings,
                &flow,
                &identity_json,
                None,
                &actor.request,
            )
            .await;
        Ok(flow)
    }

    /// Records `continue_with` items on a flow (shown in its JSON).
    pub async fn set_continue_with(
        &self,
        flow: &mut Flow,
        items: Vec<Value>,
    ) -> Result<(), FlowError> {
        flow.set_context_value("continue_with", Value::Array(items));
        self.flows.update_flow(flow).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::continuity::{SqlContinuityPool, COOKIE_NAME};
    use crate::strategy::{Registry, StrategyDeps};
    use identity::cache::{CacheConfig, SessionCache};
    use identity::hash::{Argon2Params, Hasher, HasherConfig};
    use identity::schema::{SchemaRegistry, SchemaSource};
    use identity::session::cookie::CookieCodec;
    use identity::session::manager::SessionSettings;
    use identity::store::ListIdentities;
    use identity::throttle::{Throttle, ThrottleSettings};
    use identity::{AddressKind, Clock, CredentialType, Db, IdentityPool, ManualClock};
    use std::sync::atomic::{AtomicBool, Ordering};

    const SCHEMA: &str = r#"{"type":"object","properties":{"traits":{"type":"object","properties":{"email":{"type":"string","format":"email","ory.sh/kratos":{"credentials":{"password":{"identifier":true}}}}}}}}"#;

    /// The identity store, whose next identity update fails once when armed.
    struct FlakyIdentities {
        db: Db,
        fail_next_update: AtomicBool,
    }

    #[async_trait]
    impl IdentityPool for FlakyIdentities {
        async fn create_identity(&self, identity: &Identity) -> Result<(), StoreError> {
            self.db.create_identity(identity).await
        }
        async fn update_identity(&self, identity: &Identity) -> Result<(), StoreError> {
            if self.fail_next_update.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Backend(sqlx::Error::PoolTimedOut));
            }
            self.db.update_identity(identity).await
        }
        async fn get_identity(&self, id: Uuid, creds: bool) -> Result<Identity, StoreError> {
            self.db.get_identity(id, creds).await
        }
        async fn get_identity_by_external_id(
            &self,
            external_id: &str,
            creds: bool,
        ) -> Result<Identity, StoreError> {
            self.db
                .get_identity_by_external_id(external_id, creds)
                .await
        }
        async fn find_by_credential_identifier(
            &self,
            kind: CredentialType,
            identifier: &str,
        ) -> Result<Identity, StoreError> {
            self.db
                .find_by_credential_identifier(kind, identifier)
                .await
        }
        async fn find_by_address(
            &self,
            kind: AddressKind,
            via: &str,
            value: &str,
        ) -> Result<Identity, StoreError> {
            self.db.find_by_address(kind, via, value).await
        }
        async fn list_identities(
            &self,
            params: &ListIdentities,
        ) -> Result<(Vec<Identity>, Option<u64>), StoreError> {
            self.db.list_identities(params).await
        }
        async fn delete_identity(&self, id: Uuid) -> Result<(), StoreError> {
            self.db.delete_identity(id).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.db.ping().await
        }
    }

    struct Env {
        settings: SettingsFlows,
        identities: IdentityManager,
        store: Arc<FlakyIdentities>,
        clock: ManualClock,
    }

    async fn env(dir: &std::path::Path) -> Env {
        let (db, _) = identity::store::testing::sqlite_file(dir).await.unwrap();
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 0:00 UTC));
        let shared: SharedClock = Arc::new(clock.clone());
        let schemas = SchemaRegistry::load(
            &[SchemaSource {
                id: "default".into(),
                url: SCHEMA.into(),
            }],
            "default",
        )
        .unwrap();
        let hasher = Hasher::new(HasherConfig {
            algorithm: identity::hash::Algorithm::Argon2,
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
                ..Argon2Params::default()
            },
            bcrypt: Default::default(),
        });
        let store = Arc::new(FlakyIdentities {
            db: db.clone(),
            fail_next_update: AtomicBool::new(false),
        });
        let identities =
            IdentityManager::new(store.clone(), Arc::new(schemas), hasher, shared.clone());
        let sessions = SessionManager::new(
            Arc::new(db.clone()),
            Arc::new(db.clone()),
            SessionCache::local_only(CacheConfig::default()),
            shared.clone(),
            SessionSettings {
                lifespan: Duration::hours(1),
                earliest_possible_extend: Duration::hours(1),
            },
            "http://127.0.0.1/".into(),
        );
        let deps = StrategyDeps {
            identities: identities.clone(),
            clock: shared.clone(),
            throttle: Throttle::in_process(
                ThrottleSettings {
                    enabled: false,
                    ..Default::default()
                },
                shared.clone(),
            ),
            breaches: None,
            password: Some(crate::password_policy::PolicyConfig {
                haveibeenpwned_enabled: false,
                ..Default::default()
            }),
            profile: true,
            challenges: None,
        };
        let continuity = Continuity::new(
            Arc::new(SqlContinuityPool::new(db.clone())),
            CookieCodec::new(&["secret-one-0123456789"]),
            shared.clone(),
        );
        let settings = SettingsFlows::new(
            Arc::new(crate::SqlFlowPool::new(db)),
            identities.clone(),
            sessions,
            Registry::build(&deps).settings,
            shared,
            SettingsFlowSettings {
                public_base: "http://127.0.0.1/".into(),
                lifespan: Duration::hours(1),
                privileged_session_max_age: Duration::minutes(15),
                settings_ui: "http://127.0.0.1/settings".into(),
            },
        )
        .with_continuity(continuity);
        Env {
            settings,
            identities,
            store,
            clock,
        }
    }

    /// A resumed change whose identity update fails with a store error is not lost: it waits in its container
    /// again, and the browser's next return completes it.
    #[tokio::test]
    async fn a_resume_that_fails_to_store_can_be_resumed_again() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path()).await;
        let person = env
            .identities
            .create(identity::manager::CreateIdentity {
                schema_id: "default".into(),
                traits: json!({"email": "ann@example.com"}),
                state: None,
                metadata_public: None,
                metadata_admin: None,
                credentials: None,
                verifiable_addresses: None,
                recovery_addresses: None,
                organization_id: None,
                external_id: None,
            })
            .await
            .unwrap();
        let session_id = Uuid::new_v4();
        let flow = env
            .settings
            .init(SettingsInit {
                flow_type: FlowType::Browser,
                request_url: "http://127.0.0.1/self-service/settings/browser".into(),
                return_to: None,
                csrf_token: "csrf".into(),
                identity_id: person.id,
                session_id,
            })
            .await
            .unwrap();
        let actor = |authenticated_at, continuity_cookie| SettingsActor {
            identity_id: person.id,
            session_id,
            authenticated_at,
            request: HookRequest::default(),
            continuity_cookie,
        };

        // A stale session's password change waits for the refresh sign-in.
        let stale = env.clock.now() - Duration::hours(1);
        let body = json!({"method": "password", "password": "an unusual passphrase 4711"});
        let cookie = match env
            .settings
            .submit(flow.id, actor(stale, None), &body)
            .await
        {
            Ok(FlowOutcome::RefreshRequired {
                continuity_cookie: Some(c),
                ..
            }) => c.value,
            other => panic!("expected a paused change, got {other:?}"),
        };
        assert!(!cookie.is_empty(), "{COOKIE_NAME}");

        // Back with a fresh session, the store fails while applying it: an error, and nothing changed.
        let fresh = env.clock.now();
        env.store.fail_next_update.store(true, Ordering::SeqCst);
        let failed = env
            .settings
            .resume(flow.id, actor(fresh, Some(cookie.clone())))
            .await;
        assert!(
            matches!(failed, Err(FlowError::Identity(identity::Error::Store(_)))),
            "{failed:?}"
        );
        let unchanged = env.identities.pool().get_identity(person.id, true).await;
        assert!(!unchanged
            .unwrap()
            .credentials
            .contains_key(&CredentialType::Password));

        // The same browser comes back again (its cookie unchanged): the change is completed now.
        let resumed = env
            .settings
            .resume(flow.id, actor(fresh, Some(cookie.clone())))
            .await
            .unwrap();
        match resumed.outcome {
            Some(FlowOutcome::SettingsSaved { flow, identity, .. }) => {
                assert_eq!(flow.state, crate::flow::FlowState::Success);
                assert!(identity.credentials.contains_key(&CredentialType::Password));
            }
            other => panic!("expected the change saved, got {other:?}"),
        }
        assert_eq!(resumed.continuity_cookie, CookieUpdate::Clear);

        // Once.
        let again = env
            .settings
            .resume(flow.id, actor(fresh, Some(cookie)))
            .await
            .unwrap();
        assert!(again.outcome.is_none());
    }
}
