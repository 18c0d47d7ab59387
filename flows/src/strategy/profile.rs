//! The `profile` method of the settings flow: the signed-in identity changes its traits. Changing an identifier or
//! an address is privileged (it is how a stolen, old session would take the account over).

use super::{Strategy, StrategyDeps};
use crate::engine::decode;
use crate::error::FlowError;
use crate::flow::Flow;
use crate::settings::{SettingsResult, SettingsStrategy};
use crate::ui::{labels, nodes_from_schema, Group, InputType, UiContainer, UiNode};
use async_trait::async_trait;
use identity::manager::UpdateIdentity;
use identity::{CredentialType, Identity, IdentityManager};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The profile method.
pub struct ProfileStrategy {
    identities: IdentityManager,
}

impl ProfileStrategy {
    /// The strategy, when `selfservice.methods.profile` is enabled.
    pub fn build(deps: &StrategyDeps) -> Option<Arc<Self>> {
        deps.profile.then(|| {
            Arc::new(Self {
                identities: deps.identities.clone(),
            })
        })
    }
}

impl Strategy for ProfileStrategy {
    fn settings(self: Arc<Self>) -> Option<Arc<dyn SettingsStrategy>> {
        Some(self)
    }
}

/// A profile submit (`updateSettingsFlowWithProfileMethod`).
#[derive(Debug, Deserialize)]
struct ProfileBody {
    #[serde(default)]
    traits: Option<Map<String, Value>>,
}

/// `(via, value)` pairs, sorted, for comparing address lists.
fn sorted_pairs<'a>(list: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list.map(|(a, b)| (a.clone(), b.clone())).collect();
    v.sort();
    v
}

#[async_trait]
impl SettingsStrategy for ProfileStrategy {
    fn method(&self) -> &'static str {
        "profile"
    }

    fn populate(&self, ui: &mut UiContainer, identity: &Identity) {
        if let Some(schema) = self.identities.schemas().get(&identity.schema_id) {
            for node in nodes_from_schema(schema, Group::Profile) {
                ui.upsert_node(node);
            }
        }
        ui.set_values_from_json("traits", &identity.traits);
        ui.upsert_node(
            UiNode::input(
                "method",
                Some(json!("profile")),
                Group::Profile,
                InputType::Submit,
            )
            .with_label(labels::node_save()),
        );
    }

    fn decode(&self, flow: &mut Flow, body: &Value) -> Option<Value> {
        let b = decode::<ProfileBody>(flow, body)?;
        Some(json!({"traits": b.traits.unwrap_or_default()}))
    }

    async fn change(
        &self,
        ui: &mut UiContainer,
        identity: &Identity,
        change: &Value,
        privileged: bool,
    ) -> Result<SettingsResult, FlowError> {
        let traits = change.get("traits").cloned().unwrap_or_else(|| json!({}));
        ui.set_values_from_json("traits", &traits);
        let info = match self.identities.validate(&identity.schema_id, &traits) {
            Ok(info) => info,
            Err(identity::Error::Validation(messages)) => {
                ui.add_field_messages(&messages);
                return Ok(SettingsResult::Retry);
            }
            Err(e) => return Err(e.into()),
        };
        let mut identifiers_now = identity
            .credentials
            .get(&CredentialType::Password)
            .map(|c| c.identifiers.clone())
            .unwrap_or_default();
        identifiers_now.sort();
        let mut identifiers_new = info.password_identifiers.clone();
        identifiers_new.sort();
        let changed = identifiers_new != identifiers_now
            || sorted_pairs(info.verifiable_addresses.iter().map(|a| (&a.via, &a.value)))
                != sorted_pairs(
                    identity
                        .verifiable_addresses
                        .iter()
                        .map(|a| (&a.via, &a.value)),
                )
            || sorted_pairs(info.recovery_addresses.iter().map(|a| (&a.via, &a.value)))
                != sorted_pairs(
                    identity
                        .recovery_addresses
                        .iter()
                        .map(|a| (&a.via, &a.value)),
                );
        if changed && !privileged {
            return Ok(SettingsResult::RefreshRequired);
        }
        Ok(SettingsResult::Update(Box::new(UpdateIdentity {
            schema_id: Some(identity.schema_id.clone()),
            traits,
            state: Some(identity.state.as_str().into()),
            metadata_public: identity.metadata_public.clone(),
            metadata_admin: identity.metadata_admin.clone(),
            credentials: None,
            external_id: identity.external_id.clone(),
        })))
    }
}
