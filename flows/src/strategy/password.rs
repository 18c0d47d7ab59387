//! The `password` method for login, registration and settings: an identifier and a password, hashed with the configured
//! hasher (argon2id by default) off the async reactor.

use super::{Strategy, StrategyDeps};
use crate::engine::{decode, SubmitContext};
use crate::error::FlowError;
use crate::flow::Flow;
use crate::login::{LoginResult, LoginStrategy};
use crate::password_policy::{self, BreachRange, PolicyConfig};
use crate::registration::{RegistrationResult, RegistrationStrategy};
use crate::settings::{SettingsResult, SettingsStrategy};
use crate::ui::{
    labels, password_node, password_submit, Attributes, Autocomplete, InputType, UiContainer,
};
use async_trait::async_trait;
use identity::manager::{CreateIdentity, ImportCredentials, ImportPassword, ImportPasswordConfig};
use identity::schema::IdentitySchema;
use identity::session::{Aal, AuthenticationMethod};
use identity::text::{self, UiText, UiTextType};
use identity::throttle::{Throttle, ThrottleKey};
use identity::{CredentialType, Identity, IdentityManager, SharedClock, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The password method.
pub struct PasswordStrategy {
    identities: IdentityManager,
    breaches: Option<Arc<dyn BreachRange>>,
    policy: PolicyConfig,
    throttle: Throttle,
    clock: SharedClock,
}

impl PasswordStrategy {
    /// The strategy, when `selfservice.methods.password` is enabled.
    pub fn build(deps: &StrategyDeps) -> Option<Arc<Self>> {
        let policy = deps.password.clone()?;
        Some(Arc::new(Self {
            identities: deps.identities.clone(),
            breaches: deps.breaches.clone(),
            policy,
            throttle: deps.throttle.clone(),
            clock: deps.clock.clone(),
        }))
    }

    fn amr(&self) -> AuthenticationMethod {
        AuthenticationMethod {
            method: CredentialType::Password.as_str().into(),
            aal: Aal::Aal1,
            completed_at: self.clock.now(),
            provider: None,
            organization: None,
        }
    }

    /// Checks a new password against the policy; a violation goes onto the `password` node.
    async fn meets_policy(&self, ui: &mut UiContainer, identifier: &str, password: &str) -> bool {
        let checked =
            password_policy::check(&self.policy, identifier, password, self.breaches.as_deref())
                .await;
        let Err(v) = checked else { return true };
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
        false
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
}

impl Strategy for PasswordStrategy {
    fn login(self: Arc<Self>) -> Option<Arc<dyn LoginStrategy>> {
        Some(self)
    }

    fn registration(self: Arc<Self>) -> Option<Arc<dyn RegistrationStrategy>> {
        Some(self)
    }

    fn settings(self: Arc<Self>) -> Option<Arc<dyn SettingsStrategy>> {
        Some(self)
    }
}

/// A password login submit (`updateLoginFlowWithPasswordMethod`).
#[derive(Debug, Deserialize)]
struct LoginBody {
    #[serde(default)]
    identifier: Option<String>,
    /// The older name of `identifier`.
    #[serde(default)]
    password_identifier: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A password registration submit (`updateRegistrationFlowWithPasswordMethod`).
#[derive(Debug, Deserialize)]
struct RegistrationBody {
    #[serde(default)]
    traits: Option<Map<String, Value>>,
    #[serde(default)]
    password: Option<String>,
}

#[async_trait]
impl LoginStrategy for PasswordStrategy {
    fn method(&self) -> &'static str {
        "password"
    }

    fn populate(&self, ui: &mut UiContainer, refresh: Option<&Identity>) {
        let schema = self.identities.schemas().default_schema();
        for node in crate::ui::password_login_nodes(Some(schema)) {
            ui.upsert_node(node);
        }
        // Re-authentication: the identifier is the signed-in identity's, and only the password is asked for.
        if let Some(identity) = refresh {
            let identifier = identity
                .credentials
                .get(&CredentialType::Password)
                .and_then(|c| c.identifiers.first().cloned())
                .unwrap_or_default();
            if let Some(node) = ui.node_mut("identifier") {
                if let Attributes::Input(a) = &mut node.attributes {
                    a.type_ = InputType::Hidden;
                    a.value = Some(json!(identifier));
                }
            }
        }
    }

    /// Unknown identifiers and wrong passwords give the same message and cost the same hashing work. Every attempt
    /// is counted against the throttle of the identifier and the client address before any hashing (so concurrent
    /// guesses cannot overtake the limit) and taken back if the password is right.
    async fn login(
        &self,
        flow: &mut Flow,
        body: &Value,
        ctx: &SubmitContext,
    ) -> Result<LoginResult, FlowError> {
        let Some(b) = decode::<LoginBody>(flow, body) else {
            return Ok(LoginResult::Retry);
        };
        let identifier = b
            .identifier
            .filter(|i| !i.is_empty())
            .or(b.password_identifier)
            .unwrap_or_default();
        let password = b.password.unwrap_or_default();
        let ui = &mut flow.ui;
        let normalized = identifier.trim().to_lowercase();
        ui.set_value("identifier", json!(identifier));
        if normalized.is_empty() || password.is_empty() {
            let missing = if normalized.is_empty() {
                "identifier"
            } else {
                "password"
            };
            ui.add_message_to_node(missing, text::validation_required(missing));
            return Ok(LoginResult::Retry);
        }
        let mut keys = vec![ThrottleKey::Identifier(normalized.clone())];
        keys.extend(ctx.client_ip.map(ThrottleKey::Ip));
        // Counted before any hashing, atomically. It stays counted unless the password turns out right (and also
        // when this request ends in an error or is dropped).
        let attempt = match self.throttle.reserve(&keys).await {
            Ok(attempt) => attempt,
            Err(t) => {
                ui.add_message(throttled_message(t.retry_after));
                return Ok(LoginResult::Throttled {
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
                hasher.verify_dummy(&password).await;
                attempt.failed();
                ui.add_message(text::validation_invalid_credentials());
                return Ok(LoginResult::Retry);
            }
        };
        if !hasher.verify(&password, &hash).await.unwrap_or(false) {
            attempt.failed();
            ui.add_message(text::validation_invalid_credentials());
            return Ok(LoginResult::Retry);
        }
        // The right password: this attempt and the identifier's earlier failures no longer count.
        attempt.succeeded().await;
        if identity.is_active() && hasher.needs_rehash(&hash) {
            self.rehash(&identity, &password).await;
        }
        Ok(LoginResult::Authenticated {
            identity: Box::new(identity),
            method: self.amr(),
        })
    }
}

#[async_trait]
impl RegistrationStrategy for PasswordStrategy {
    fn method(&self) -> &'static str {
        "password"
    }

    fn populate(&self, ui: &mut UiContainer, schema: &IdentitySchema) {
        for node in crate::ui::password_registration_nodes(schema) {
            ui.upsert_node(node);
        }
    }

    async fn register(
        &self,
        flow: &mut Flow,
        body: &Value,
        _ctx: &SubmitContext,
    ) -> Result<RegistrationResult, FlowError> {
        let Some(b) = decode::<RegistrationBody>(flow, body) else {
            return Ok(RegistrationResult::Retry);
        };
        let traits = Value::Object(b.traits.unwrap_or_default());
        let password = b.password.unwrap_or_default();
        let ui = &mut flow.ui;
        ui.set_values_from_json("traits", &traits);
        let schema_id = self.identities.schemas().default_id().to_owned();
        let info = match self.identities.validate(&schema_id, &traits) {
            Ok(info) => info,
            Err(identity::Error::Validation(messages)) => {
                ui.add_field_messages(&messages);
                return Ok(RegistrationResult::Retry);
            }
            Err(e) => return Err(e.into()),
        };
        if password.is_empty() {
            ui.add_message_to_node("password", text::validation_required("password"));
            return Ok(RegistrationResult::Retry);
        }
        let identifier = info
            .password_identifiers
            .first()
            .cloned()
            .unwrap_or_default();
        if !self.meets_policy(ui, &identifier, &password).await {
            return Ok(RegistrationResult::Retry);
        }
        Ok(RegistrationResult::Create {
            identity: Box::new(CreateIdentity {
                schema_id,
                traits,
                state: None,
                metadata_public: None,
                metadata_admin: None,
                credentials: Some(password_import(&password)),
                verifiable_addresses: None,
                recovery_addresses: None,
                organization_id: None,
                external_id: None,
            }),
            method: self.amr(),
        })
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

/// A password settings submit (`updateSettingsFlowWithPasswordMethod`).
#[derive(Debug, Deserialize)]
struct SettingsBody {
    #[serde(default)]
    password: Option<String>,
}

#[async_trait]
impl SettingsStrategy for PasswordStrategy {
    fn method(&self) -> &'static str {
        "password"
    }

    fn populate(&self, ui: &mut UiContainer, _identity: &Identity) {
        ui.upsert_node(password_node(Autocomplete::NewPassword));
        // Each method has its own `method` button: appended, not upserted over another method's.
        ui.add_node(password_submit(labels::node_save()));
    }

    fn decode(&self, flow: &mut Flow, body: &Value) -> Option<Value> {
        let b = decode::<SettingsBody>(flow, body)?;
        Some(json!({"password": b.password.unwrap_or_default()}))
    }

    /// A new password is always privileged; it must pass the policy and differ from the old one.
    async fn change(
        &self,
        ui: &mut UiContainer,
        identity: &Identity,
        change: &Value,
        privileged: bool,
    ) -> Result<SettingsResult, FlowError> {
        if !privileged {
            return Ok(SettingsResult::RefreshRequired);
        }
        let password = change
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if password.is_empty() {
            ui.add_message_to_node("password", text::validation_required("password"));
            return Ok(SettingsResult::Retry);
        }
        let credential = identity.credentials.get(&CredentialType::Password);
        let identifier = credential
            .and_then(|c| c.identifiers.first().cloned())
            .or_else(|| {
                self.identities
                    .validate(&identity.schema_id, &identity.traits)
                    .ok()
                    .and_then(|i| i.password_identifiers.first().cloned())
            })
            .unwrap_or_default();
        if !self.meets_policy(ui, &identifier, password).await {
            return Ok(SettingsResult::Retry);
        }
        if let Some(hash) = credential.and_then(|c| c.hashed_password()) {
            let hasher = self.identities.hasher();
            if hasher.verify(password, hash).await.unwrap_or(false) {
                ui.add_message_to_node("password", text::validation_password_new_same_as_old());
                return Ok(SettingsResult::Retry);
            }
        }
        Ok(SettingsResult::Update(Box::new(
            identity::manager::UpdateIdentity {
                schema_id: Some(identity.schema_id.clone()),
                traits: identity.traits.clone(),
                state: Some(identity.state.as_str().into()),
                metadata_public: identity.metadata_public.clone(),
                metadata_admin: identity.metadata_admin.clone(),
                credentials: Some(password_import(password)),
                external_id: identity.external_id.clone(),
            },
        )))
    }
}
