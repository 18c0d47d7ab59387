//! The verification flow: its service and the trait its strategies implement. A person proves control of a
//! verifiable address ([`crate::challenge`]), which marks it verified; nobody is signed in. Registration, profile
//! changes and logins refused for an unverified address start a flow that has already sent its message.

use crate::challenge::service::{ChallengeService, Opened};
use crate::challenge::{
    AddressMethod, ChallengeInit, ChallengeResult, ChallengeStrategy, Challenges,
};
use crate::engine::{FlowOutcome, SubmitContext};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind};
use crate::hooks::{HookRunner, NoHooks};
use crate::texts;
use crate::ui::{labels, Group, UiNode};
use async_trait::async_trait;
use identity::Identity;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A verification method (`code`, `link`).
#[async_trait]
pub trait VerificationStrategy: ChallengeStrategy {
    /// Handles a submit whose `method` is this strategy's: decodes its own body, then sends a secret to the
    /// address or checks one. Messages for the user go onto `flow.ui`.
    async fn verify(
        &self,
        flow: &mut Flow,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<ChallengeResult, FlowError>;

    /// Sends a secret to `address` of `identity` and stores `flow`, which is new, in `sent_email`.
    async fn send_to(
        &self,
        flow: &mut Flow,
        identity: &Identity,
        address: &str,
    ) -> Result<(), FlowError>;
}

#[async_trait]
impl<T: AddressMethod> VerificationStrategy for T {
    async fn verify(
        &self,
        flow: &mut Flow,
        body: &Value,
        _ctx: &SubmitContext,
    ) -> Result<ChallengeResult, FlowError> {
        self.submit(flow, body).await
    }

    async fn send_to(
        &self,
        flow: &mut Flow,
        identity: &Identity,
        address: &str,
    ) -> Result<(), FlowError> {
        self.send(flow, address, Some(identity), true).await
    }
}

/// The verification flow.
#[derive(Clone)]
pub struct VerificationFlows {
    service: ChallengeService<dyn VerificationStrategy>,
    hooks: Arc<dyn HookRunner>,
}

impl std::fmt::Debug for VerificationFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationFlows").finish_non_exhaustive()
    }
}

impl VerificationFlows {
    /// Wires the flow with its enabled strategies.
    pub fn new(strategies: Vec<Arc<dyn VerificationStrategy>>, challenges: Challenges) -> Self {
        Self {
            service: ChallengeService::new(FlowKind::Verification, strategies, challenges),
            hooks: Arc::new(NoHooks),
        }
    }

    /// The skeleton it runs (init, link prefill).
    pub(crate) fn service(&self) -> &ChallengeService<dyn VerificationStrategy> {
        &self.service
    }

    /// Runs these hooks after verifications.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Handles a submit: send a secret, or check one and mark the address verified.
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
        match strategy.verify(&mut flow, body, ctx).await? {
            ChallengeResult::Proved(identity) => self.verified(flow, &identity, ctx).await,
            other => self.service.answer(flow, other).await,
        }
    }

    /// The verified flow: a "Continue" link to `return_to` (or the configured page), and the hooks.
    async fn verified(
        &self,
        mut flow: Flow,
        identity: &Identity,
        ctx: &SubmitContext,
    ) -> Result<FlowOutcome, FlowError> {
        let c = &self.service.challenges;
        let href = flow
            .return_to
            .clone()
            .unwrap_or_else(|| c.settings().verification_return_url.clone());
        let mut ui = c.form(&flow);
        ui.upsert_node(UiNode::anchor(
            "continue",
            href,
            labels::node_continue(),
            Group::Code,
        ));
        ui.add_message(texts::verification_successful());
        flow.set_form(&ui);
        c.repo().save(&mut flow).await?;
        let identity_json = identity::view::admin_identity(
            identity,
            &c.settings().public_base,
            identity::view::CredentialsView::Omit,
        );
        self.hooks
            .after_persist(
                FlowKind::Verification,
                &flow,
                &identity_json,
                None,
                &ctx.request,
            )
            .await;
        Ok(FlowOutcome::Continue(flow))
    }

    /// A verification flow that has already sent a message to `address` of `identity` (after registration, a
    /// profile change, or a login refused for an unverified address), with the configured method.
    pub async fn send(
        &self,
        identity: &Identity,
        address: &str,
        init: ChallengeInit,
    ) -> Result<Flow, FlowError> {
        let Some(strategy) = self.service.default_strategy() else {
            return Err(FlowError::Disabled("the verification method"));
        };
        let mut flow = self.service.new_flow(&init);
        strategy.send_to(&mut flow, identity, address).await?;
        Ok(flow)
    }
}
