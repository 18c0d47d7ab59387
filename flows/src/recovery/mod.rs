//! The recovery flow: its service and the trait its strategies implement. A person who lost their password proves
//! control of a recovery address ([`crate::challenge`]); the service then signs them in and opens a privileged
//! settings flow to set a new password. Administrators can hand out a recovery code or link directly.

use crate::challenge::service::{ChallengeService, Opened};
use crate::challenge::{AddressMethod, ChallengeResult, ChallengeStrategy, Challenges, Recovered};
use crate::engine::{FlowOutcome, SubmitContext};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowType};
use crate::hooks::{HookRunner, NoHooks};
use crate::settings::{SettingsFlows, SettingsInit};
use crate::texts;
use async_trait::async_trait;
use identity::session::{Aal, AuthenticationMethod};
use identity::Identity;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// A recovery method (`code`, `link`).
#[async_trait]
pub trait RecoveryStrategy: ChallengeStrategy {
    /// Handles a submit whose `method` is this strategy's: decodes its own body, then sends a secret to the
    /// address or checks one. Messages for the user go onto `flow.ui`.
    async fn recover(
        &self,
        flow: &mut Flow,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<ChallengeResult, FlowError>;

    /// Starts a flow an administrator hands to `identity` with a secret of this method, already in
    /// `sent_email`; returns the secret. `None`: this method has no admin flows.
    async fn admin_flow(
        &self,
        _flow: &mut Flow,
        _identity: &Identity,
    ) -> Result<Option<String>, FlowError> {
        Ok(None)
    }
}

#[async_trait]
impl<T: AddressMethod> RecoveryStrategy for T {
    async fn recover(
        &self,
        flow: &mut Flow,
        body: &Value,
        _ctx: &SubmitContext,
    ) -> Result<ChallengeResult, FlowError> {
        self.submit(flow, body).await
    }

    async fn admin_flow(
        &self,
        flow: &mut Flow,
        identity: &Identity,
    ) -> Result<Option<String>, FlowError> {
        AddressMethod::admin_flow(self, flow, identity)
            .await
            .map(Some)
    }
}

/// The recovery flow.
#[derive(Clone)]
pub struct RecoveryFlows {
    service: ChallengeService<dyn RecoveryStrategy>,
    settings_flows: SettingsFlows,
    hooks: Arc<dyn HookRunner>,
}

impl std::fmt::Debug for RecoveryFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryFlows").finish_non_exhaustive()
    }
}

impl RecoveryFlows {
    /// Wires the flow with its enabled strategies.
    pub fn new(
        strategies: Vec<Arc<dyn RecoveryStrategy>>,
        challenges: Challenges,
        settings_flows: SettingsFlows,
    ) -> Self {
        Self {
            service: ChallengeService::new(FlowKind::Recovery, strategies, challenges),
            settings_flows,
            hooks: Arc::new(NoHooks),
        }
    }

    /// The skeleton it runs (init, link prefill).
    pub(crate) fn service(&self) -> &ChallengeService<dyn RecoveryStrategy> {
        &self.service
    }

    /// Runs these hooks after recoveries.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Handles a submit: send a secret, or check one and sign the person in.
    pub async fn submit(
        &self,
        id: Uuid,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<FlowOutcome, FlowError> {
        let (mut flow, strategy) = match self.service.begin(id, body).await? {
            Opened::Strategy(f, s) => (f, s),
            Opened::Done(outcome) => return Ok(outcome),
        };
        match strategy.recover(&mut flow, body, ctx).await? {
            ChallengeResult::Proved(identity) => self.recovered(flow, *identity, ctx).await,
            other => self.service.answer(flow, other).await,
        }
    }

    /// Signs the recovered identity in, opens the privileged settings flow and runs the hooks.
    async fn recovered(
        &self,
        mut flow: Flow,
        identity: Identity,
        ctx: &SubmitContext,
    ) -> Result<FlowOutcome, FlowError> {
        let c = &self.service.challenges;
        let now = c.repo().now();
        if !identity.is_active() {
            flow.ui.add_message(identity::text::validation_generic(
                "The account is disabled, so it cannot be recovered.",
            ));
            return self.service.answer(flow, ChallengeResult::Invalid).await;
        }
        let method = flow.active.clone().unwrap_or_default();
        let session = c
            .sessions()
            .issue(
                &identity,
                vec![AuthenticationMethod {
                    method: format!("{method}_recovery"),
                    aal: Aal::Aal1,
                    completed_at: now,
                    provider: None,
                    organization: None,
                }],
                ctx.device.clone(),
            )
            .await?;
        if self.hooks.revoke_active_sessions(FlowKind::Recovery) {
            c.sessions()
                .revoke_others(identity.id, Some(session.session.id))
                .await?;
        }
        let privileged_until = now
            .checked_add(c.settings().privileged_session_max_age)
            .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc());
        let browser = flow.flow_type == FlowType::Browser;
        let settings_flow = self
            .settings_flows
            .init_after_recovery(
                SettingsInit {
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: if browser {
                        ctx.csrf_token.clone()
                    } else {
                        String::new()
                    },
                    identity_id: identity.id,
                    session_id: session.session.id,
                },
                privileged_until,
            )
            .await?;
        flow.ui
            .add_message(texts::recovery_successful(privileged_until));
        flow.set_context_value(
            "continue_with",
            json!([{
                "action": "show_settings_ui",
                "flow": {
                    "id": settings_flow.id,
                    "url": format!("{}?flow={}", self.settings_flows.settings().settings_ui, settings_flow.id),
                },
            }]),
        );
        c.repo().save(&mut flow).await?;
        let identity_json = identity::view::admin_identity(
            &identity,
            &c.settings().public_base,
            identity::view::CredentialsView::Omit,
        );
        let session_json = c
            .sessions()
            .render(&session.session, Some(&identity), false);
        self.hooks
            .after_persist(
                FlowKind::Recovery,
                &flow,
                &identity_json,
                Some(&session_json),
                &ctx.request,
            )
            .await;
        Ok(FlowOutcome::Recovered(Box::new(Recovered {
            flow,
            session,
            identity,
            settings_flow,
        })))
    }

    /// Admin `POST /admin/recovery/code`: a recovery flow in `sent_email` and its code, valid for `expires_in`.
    pub async fn admin_code(
        &self,
        identity_id: Uuid,
        expires_in: Duration,
        flow_type: FlowType,
        request_url: String,
    ) -> Result<(Flow, String), FlowError> {
        self.admin("code", identity_id, expires_in, flow_type, request_url)
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
        let (mut flow, token) = self
            .admin(
                "link",
                identity_id,
                expires_in,
                FlowType::Browser,
                request_url,
            )
            .await?;
        if return_to.is_some() {
            flow.return_to = return_to;
            self.service.challenges.repo().save(&mut flow).await?;
        }
        Ok((flow, token))
    }

    async fn admin(
        &self,
        method: &'static str,
        identity_id: Uuid,
        expires_in: Duration,
        flow_type: FlowType,
        request_url: String,
    ) -> Result<(Flow, String), FlowError> {
        let disabled = || {
            FlowError::Disabled(if method == "link" {
                "the link method"
            } else {
                "the code method"
            })
        };
        if !self.service.enabled() {
            return Err(disabled());
        }
        let strategy = self
            .service
            .strategies()
            .iter()
            .find(|s| s.method() == method)
            .cloned()
            .ok_or_else(disabled)?;
        let c = &self.service.challenges;
        let identity = c
            .identities()
            .pool()
            .get_identity(identity_id, false)
            .await?;
        let mut flow = Flow::new(
            FlowKind::Recovery,
            flow_type,
            request_url,
            c.repo().now(),
            expires_in,
        );
        let secret = strategy
            .admin_flow(&mut flow, &identity)
            .await?
            .ok_or_else(disabled)?;
        Ok((flow, secret))
    }
}
