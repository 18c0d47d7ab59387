//! A trivial login method for the registry's tests: `method=echo` with an `identity_id` signs that identity in.
//! It shows what a method is: this one file, plus one `Registry::add` line.

use super::{Strategy, StrategyDeps};
use crate::engine::{decode, SubmitContext};
use crate::error::FlowError;
use crate::flow::Flow;
use crate::login::{LoginResult, LoginStrategy};
use crate::ui::{Group, InputType, UiContainer, UiNode};
use async_trait::async_trait;
use identity::session::{Aal, AuthenticationMethod};
use identity::{Identity, IdentityManager};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// The `echo` method.
pub struct EchoStrategy {
    identities: IdentityManager,
}

impl EchoStrategy {
    /// Always on.
    pub fn build(deps: &StrategyDeps) -> Option<Arc<Self>> {
        Some(Arc::new(Self {
            identities: deps.identities.clone(),
        }))
    }
}

impl Strategy for EchoStrategy {
    fn login(self: Arc<Self>) -> Option<Arc<dyn LoginStrategy>> {
        Some(self)
    }
}

#[derive(Deserialize)]
struct Body {
    identity_id: Uuid,
}

#[async_trait]
impl LoginStrategy for EchoStrategy {
    fn method(&self) -> &'static str {
        "echo"
    }

    fn populate(&self, ui: &mut UiContainer, _refresh: Option<&Identity>) {
        ui.upsert_node(UiNode::input(
            "identity_id",
            None,
            Group::Default,
            InputType::Text,
        ));
        ui.add_node(UiNode::input(
            "method",
            Some(json!("echo")),
            Group::Default,
            InputType::Submit,
        ));
    }

    async fn login(
        &self,
        flow: &mut Flow,
        body: &Value,
        _ctx: &SubmitContext,
    ) -> Result<LoginResult, FlowError> {
        let Some(b) = decode::<Body>(flow, body) else {
            return Ok(LoginResult::Retry);
        };
        let identity = self
            .identities
            .pool()
            .get_identity(b.identity_id, true)
            .await?;
        Ok(LoginResult::Authenticated {
            identity: Box::new(identity),
            method: AuthenticationMethod {
                method: "echo".into(),
                aal: Aal::Aal1,
                completed_at: time::OffsetDateTime::UNIX_EPOCH,
                provider: None,
                organization: None,
            },
        })
    }
}
