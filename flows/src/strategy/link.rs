//! The `link` method of recovery and verification: a link with a one-time token sent to the address. Opening the
//! link shows a confirmation form; its POST, with the flow's CSRF token, uses the token.

use super::{Strategy, StrategyDeps};
use crate::challenge::{filled, AddressMethod, ChallengeResult, Challenges, Delivery, LinkSecret};
use crate::courier::TemplateType;
use crate::engine::decode;
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind};
use crate::recovery::RecoveryStrategy;
use crate::texts;
use crate::ui::{labels, Group, InputType, UiContainer, UiNode};
use crate::verification::VerificationStrategy;
use async_trait::async_trait;
use identity::Identity;
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The `link` method.
pub struct LinkStrategy {
    c: Challenges,
}

/// A link token: 32 alphanumerics from the OS RNG.
fn new_token() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32)
}

impl LinkStrategy {
    /// On with `selfservice.methods.link.enabled`.
    pub fn build(deps: &StrategyDeps) -> Option<Arc<Self>> {
        let c = deps.challenges.as_ref()?;
        c.settings()
            .link_enabled
            .then(|| Arc::new(Self { c: c.clone() }))
    }

    /// The confirmation form of a link from a message: the token in a hidden input and a "Continue" button, so
    /// that the token is used by a POST that carries the CSRF token, never by the GET that opened the link.
    fn confirm_form(&self, flow: &Flow, token: &str) -> UiContainer {
        let mut ui = self.c.form(flow);
        ui.upsert_node(UiNode::input(
            "token",
            Some(json!(token)),
            Group::Link,
            InputType::Hidden,
        ));
        ui.upsert_node(
            UiNode::input(
                "method",
                Some(json!("link")),
                Group::Link,
                InputType::Submit,
            )
            .with_label(labels::node_continue()),
        );
        ui.add_message(texts::confirm_link(flow.kind == FlowKind::Recovery));
        ui
    }
}

/// A submit of the `link` method: an address to send to, or the token of a confirmed link.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

impl Strategy for LinkStrategy {
    fn recovery(self: Arc<Self>) -> Option<Arc<dyn RecoveryStrategy>> {
        Some(self)
    }

    fn verification(self: Arc<Self>) -> Option<Arc<dyn VerificationStrategy>> {
        Some(self)
    }
}

#[async_trait]
impl AddressMethod for LinkStrategy {
    fn name(&self) -> &'static str {
        "link"
    }

    fn group(&self) -> Group {
        Group::Link
    }

    fn challenges(&self) -> &Challenges {
        &self.c
    }

    fn prefill_form(&self, flow: &Flow, secret: &LinkSecret<'_>) -> Option<UiContainer> {
        match secret {
            LinkSecret::Token(t) => Some(self.confirm_form(flow, t)),
            LinkSecret::Code(_) => None,
        }
    }

    /// Sends a new link to `email` (to its owner, or the "unknown address" message) and stores the flow.
    async fn send(
        &self,
        flow: &mut Flow,
        email: &str,
        identity: Option<&Identity>,
        new_flow: bool,
    ) -> Result<(), FlowError> {
        let token = new_token();
        let lifespan = self.c.settings().link_lifespan;
        let mut data = self.c.message_data(flow, email, identity, lifespan);
        let recovery = flow.kind == FlowKind::Recovery;
        let url = json!(self.c.link_url(flow, "token", &token));
        let template = match (recovery, identity.is_some()) {
            (true, true) => {
                data["RecoveryURL"] = url;
                TemplateType::RecoveryValid
            }
            (true, false) => TemplateType::RecoveryInvalid,
            (false, true) => {
                data["VerificationURL"] = url;
                TemplateType::VerificationValid
            }
            (false, false) => TemplateType::VerificationInvalid,
        };
        let mut ui = self.c.address_form(flow, "link", Group::Link, Some(email));
        ui.add_message(if recovery {
            texts::recovery_link_sent()
        } else {
            texts::verification_link_sent()
        });
        let delivery = Delivery {
            method: "link",
            address: email,
            identity,
            secret: &token,
            lifespan,
            message: (template, data),
            ui,
            new_flow,
        };
        self.c.deliver(flow, delivery).await
    }

    async fn submit(&self, flow: &mut Flow, body: &Value) -> Result<ChallengeResult, FlowError> {
        let Some(b) = decode::<Body>(flow, body) else {
            return Ok(ChallengeResult::Retry);
        };
        if let Some(token) = filled(b.token) {
            // The confirmation form has done its job: what follows shows the outcome or asks for a new link.
            if flow.ui.node("token").is_some() {
                let email = flow
                    .context_value("address")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let ui = self
                    .c
                    .address_form(flow, "link", Group::Link, email.as_deref());
                flow.set_form(&ui);
            }
            return self.c.check(flow, "link", &token).await;
        }
        let Some(raw) = filled(b.email) else {
            return Ok(self.c.required(flow, "email"));
        };
        self.send_to_typed(flow, &raw).await
    }

    async fn admin_flow(&self, flow: &mut Flow, identity: &Identity) -> Result<String, FlowError> {
        let token = new_token();
        let ui = self.c.address_form(flow, "link", Group::Link, None);
        self.c
            .deliver_admin(flow, identity, "link", &token, ui)
            .await?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_random() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, new_token());
    }
}
