//! The flow skeleton recovery and verification both run: start a flow with the configured method's form, replace
//! an expired flow, open a link from a message without using its secret, and dispatch a submit on `method` to the
//! enabled strategy. What a proven address leads to is each flow's own ([`crate::recovery`],
//! [`crate::verification`]).

use super::{ChallengeInit, ChallengeResult, ChallengeStrategy, Challenges, LinkSecret};
use crate::engine::{no_strategy_message, FlowOutcome};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowState};
use crate::texts;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// One flow kind with its enabled strategies.
pub struct ChallengeService<S: ?Sized> {
    kind: FlowKind,
    strategies: Arc<[Arc<S>]>,
    pub(crate) challenges: Challenges,
}

impl<S: ?Sized> Clone for ChallengeService<S> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            strategies: self.strategies.clone(),
            challenges: self.challenges.clone(),
        }
    }
}

/// What a submit found before a strategy sees it. (Both variants are large and it lives for one call.)
#[allow(clippy::large_enum_variant)]
pub enum Opened<'a, S: ?Sized> {
    /// Hand the flow to this strategy.
    Strategy(Flow, &'a S),
    /// The answer is already known (no such method, or the flow is done).
    Done(FlowOutcome),
}

impl<S: ?Sized + ChallengeStrategy> ChallengeService<S> {
    /// The flow of `kind` with its enabled strategies, in the order their nodes appear.
    pub fn new(kind: FlowKind, strategies: Vec<Arc<S>>, challenges: Challenges) -> Self {
        Self {
            kind,
            strategies: strategies.into(),
            challenges,
        }
    }

    /// Whether the flow is on.
    pub fn enabled(&self) -> bool {
        self.challenges.settings().of(self.kind).enabled
    }

    /// The strategy new flows use: `use: code` or `use: link`, or the first enabled one when that is off.
    pub fn default_strategy(&self) -> Option<&S> {
        let name = if self.challenges.settings().of(self.kind).use_link {
            "link"
        } else {
            "code"
        };
        self.strategy(name)
            .or_else(|| self.strategies.first().map(|s| &**s))
    }

    /// The enabled strategies.
    pub fn strategies(&self) -> &[Arc<S>] {
        &self.strategies
    }

    fn strategy(&self, name: &str) -> Option<&S> {
        self.strategies
            .iter()
            .find(|s| s.method() == name)
            .map(|s| &**s)
    }

    /// A new flow, not yet stored, with its lifespan, `return_to` and CSRF token and no form.
    pub fn new_flow(&self, req: &ChallengeInit) -> Flow {
        let mut flow = Flow::new(
            self.kind,
            req.flow_type,
            req.request_url.clone(),
            self.challenges.repo().now(),
            self.challenges.settings().of(self.kind).lifespan,
        );
        flow.return_to = req.return_to.clone();
        flow.csrf_token = req.csrf_token.clone();
        flow
    }

    /// Starts a flow (`choose_method`) with the configured method's form.
    pub async fn init(&self, req: ChallengeInit) -> Result<Flow, FlowError> {
        if !self.enabled() {
            return Err(FlowError::Disabled(self.kind.as_str()));
        }
        let mut flow = self.new_flow(&req);
        let mut ui = self.challenges.form(&flow);
        if let Some(s) = self.default_strategy() {
            s.populate(&flow, &mut ui);
        }
        flow.set_form(&ui);
        self.challenges.repo().create(&flow).await?;
        Ok(flow)
    }

    /// A flow that can still be submitted; an expired one yields [`FlowError::Expired`] with a new flow.
    pub async fn open(&self, id: Uuid) -> Result<Flow, FlowError> {
        let flow = self.challenges.repo().load(self.kind, id).await?;
        if flow.is_expired(self.challenges.repo().now()) {
            let replacement = self
                .init(ChallengeInit {
                    kind: self.kind,
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: flow.csrf_token.clone(),
                })
                .await?;
            return Err(FlowError::Expired {
                expired: Box::new(flow),
                replacement: Box::new(replacement),
            });
        }
        Ok(flow)
    }

    /// Opens a flow from the link in a message (`?code=` or `?token=`) without using the secret: the method that
    /// sent it fills it into its form, and only a later POST with the flow's CSRF token uses it. A mail scanner
    /// that follows the link uses up nothing, and a link opened in someone else's browser signs nobody in (Kratos
    /// pre-fills codes the same way). Values that cannot be a secret are not stored; a flow that is not waiting
    /// for a secret is left as it is.
    pub async fn prefill(
        &self,
        id: Uuid,
        code: Option<&str>,
        token: Option<&str>,
    ) -> Result<Flow, FlowError> {
        let mut flow = self.open(id).await?;
        if flow.state != FlowState::SentEmail {
            return Ok(flow);
        }
        let plausible = |s: &&str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        let secret = match (
            token.map(str::trim).filter(plausible),
            code.map(str::trim).filter(plausible),
        ) {
            (Some(t), _) => LinkSecret::Token(t),
            (None, Some(c)) => LinkSecret::Code(c),
            (None, None) => return Ok(flow),
        };
        let filled = self
            .strategies
            .iter()
            .find_map(|s| s.prefill(&flow, &secret));
        let Some(ui) = filled else {
            return Ok(flow);
        };
        flow.set_form(&ui);
        self.challenges.repo().save(&mut flow).await?;
        Ok(flow)
    }

    /// Opens the flow of a submit, clears the last submit's messages, and finds its strategy by `method` (default:
    /// the flow's own method). An unknown
    /// or disabled method, or a flow that has passed its challenge, comes back with a message (HTTP 400).
    pub async fn begin(&self, id: Uuid, body: &Value) -> Result<Opened<'_, S>, FlowError> {
        let mut flow = self.open(id).await?;
        flow.ui.reset_messages();
        let named = body
            .get("method")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty());
        let strategy = match named.or(flow.active.as_deref()) {
            Some(m) => self.strategy(m),
            None => self.default_strategy(),
        };
        let Some(strategy) = strategy else {
            flow.ui.add_message(no_strategy_message(self.kind));
            return self
                .answer(flow, ChallengeResult::Retry)
                .await
                .map(Opened::Done);
        };
        if flow.state == FlowState::PassedChallenge {
            flow.ui
                .add_message(texts::already_completed(self.kind == FlowKind::Recovery));
            return self
                .answer(flow, ChallengeResult::Retry)
                .await
                .map(Opened::Done);
        }
        Ok(Opened::Strategy(flow, strategy))
    }

    /// Stores the flow (unless a message step already did) and answers with it: 200, or 400 for a retry.
    pub async fn answer(
        &self,
        mut flow: Flow,
        result: ChallengeResult,
    ) -> Result<FlowOutcome, FlowError> {
        match result {
            ChallengeResult::Sent => Ok(FlowOutcome::Continue(flow)),
            ChallengeResult::Invalid => {
                self.challenges.repo().save(&mut flow).await?;
                Ok(FlowOutcome::Continue(flow))
            }
            ChallengeResult::Retry | ChallengeResult::Proved(_) => {
                self.challenges.repo().save(&mut flow).await?;
                Ok(FlowOutcome::Form(flow))
            }
        }
    }
}
