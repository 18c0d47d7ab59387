//! The `code` method of recovery and verification: a six-digit code sent to the address, typed into the flow's
//! form (or pre-filled from the link in the message, and then submitted).

use super::{Strategy, StrategyDeps};
use crate::challenge::{filled, AddressMethod, ChallengeResult, Challenges, Delivery, LinkSecret};
use crate::codes::new_code;
use crate::courier::TemplateType;
use crate::engine::decode;
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowState};
use crate::recovery::RecoveryStrategy;
use crate::texts;
use crate::ui::{labels, Autocomplete, Group, InputType, UiContainer, UiNode};
use crate::verification::VerificationStrategy;
use async_trait::async_trait;
use identity::Identity;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The `code` method.
pub struct CodeStrategy {
    c: Challenges,
}

impl CodeStrategy {
    /// On with `selfservice.methods.code.enabled`.
    pub fn build(deps: &StrategyDeps) -> Option<Arc<Self>> {
        let c = deps.challenges.as_ref()?;
        c.settings()
            .code_enabled
            .then(|| Arc::new(Self { c: c.clone() }))
    }

    /// The code form, with a resend button carrying the address.
    fn code_form(&self, flow: &Flow, email: &str) -> UiContainer {
        let mut ui = self.c.form(flow);
        let mut code = UiNode::input("code", None, Group::Code, InputType::Text)
            .with_autocomplete(Autocomplete::OneTimeCode)
            .with_label(texts::code_label(flow.kind == FlowKind::Recovery));
        if let Some(a) = code.input_attributes_mut() {
            a.pattern = Some("[0-9]+".into());
            a.maxlength = Some(6);
        }
        ui.upsert_node(code);
        ui.upsert_node(
            UiNode::input(
                "method",
                Some(json!("code")),
                Group::Code,
                InputType::Submit,
            )
            .with_label(labels::node_submit()),
        );
        if !email.is_empty() {
            ui.upsert_node(
                UiNode::input("email", Some(json!(email)), Group::Code, InputType::Submit)
                    .with_label(texts::resend_code()),
            );
        }
        ui
    }
}

/// A submit of the `code` method: an address to send to, or a code.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

impl Strategy for CodeStrategy {
    fn recovery(self: Arc<Self>) -> Option<Arc<dyn RecoveryStrategy>> {
        Some(self)
    }

    fn verification(self: Arc<Self>) -> Option<Arc<dyn VerificationStrategy>> {
        Some(self)
    }
}

#[async_trait]
impl AddressMethod for CodeStrategy {
    fn name(&self) -> &'static str {
        "code"
    }

    fn group(&self) -> Group {
        Group::Code
    }

    fn challenges(&self) -> &Challenges {
        &self.c
    }

    fn prefill_form(&self, flow: &Flow, secret: &LinkSecret<'_>) -> Option<UiContainer> {
        let LinkSecret::Code(code) = secret else {
            return None;
        };
        let mut ui = flow.ui.clone();
        ui.set_value("code", json!(code)).then_some(ui)
    }

    /// Sends a new code to `email` (to its owner, or the "unknown address" message) and stores the flow.
    async fn send(
        &self,
        flow: &mut Flow,
        email: &str,
        identity: Option<&Identity>,
        new_flow: bool,
    ) -> Result<(), FlowError> {
        let code = new_code();
        let lifespan = self.c.settings().code_lifespan;
        let mut data = self.c.message_data(flow, email, identity, lifespan);
        let recovery = flow.kind == FlowKind::Recovery;
        let template = match (recovery, identity.is_some()) {
            (true, true) => {
                data["RecoveryCode"] = json!(code);
                TemplateType::RecoveryCodeValid
            }
            (true, false) => TemplateType::RecoveryCodeInvalid,
            (false, true) => {
                data["VerificationCode"] = json!(code);
                data["VerificationURL"] = json!(self.c.link_url(flow, "code", &code));
                TemplateType::VerificationCodeValid
            }
            (false, false) => TemplateType::VerificationCodeInvalid,
        };
        let mut ui = self.code_form(flow, email);
        ui.add_message(if recovery {
            texts::recovery_code_sent()
        } else {
            texts::verification_code_sent()
        });
        let delivery = Delivery {
            method: "code",
            address: email,
            identity,
            secret: &code,
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
        if let Some(code) = filled(b.code) {
            return self.c.check(flow, "code", &code).await;
        }
        let Some(raw) = filled(b.email) else {
            let field = if flow.state == FlowState::SentEmail {
                "code"
            } else {
                "email"
            };
            return Ok(self.c.required(flow, field));
        };
        self.send_to_typed(flow, &raw).await
    }

    async fn admin_flow(&self, flow: &mut Flow, identity: &Identity) -> Result<String, FlowError> {
        let code = new_code();
        let ui = self.code_form(flow, "");
        self.c
            .deliver_admin(flow, identity, "code", &code, ui)
            .await?;
        Ok(code)
    }
}
