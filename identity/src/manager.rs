//! Creating, updating and deleting identities: schema validation, credential import, address bookkeeping.
//! The admin API, the CLI importer and the self-service flows all go through here.

use crate::error::Error;
use crate::hash::{self, Hasher};
use crate::model::{Credential, CredentialType, Identity, IdentityState, VerificationStatus};
use crate::schema::{SchemaRegistry, TraitsInfo};
use crate::store::IdentityPool;
use crate::view;
use crate::SharedClock;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// `createIdentityBody`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentity {
    /// Schema of the traits.
    pub schema_id: String,
    /// Traits.
    pub traits: Value,
    /// `active` (default) or `inactive`.
    #[serde(default)]
    pub state: Option<String>,
    /// Public metadata.
    #[serde(default)]
    pub metadata_public: Option<Value>,
    /// Admin metadata.
    #[serde(default)]
    pub metadata_admin: Option<Value>,
    /// Credentials to import.
    #[serde(default)]
    pub credentials: Option<ImportCredentials>,
    /// Addresses to import as verified.
    #[serde(default)]
    pub verifiable_addresses: Option<Vec<ImportVerifiableAddress>>,
    /// Recovery addresses (derived from traits; accepted for compatibility).
    #[serde(default)]
    pub recovery_addresses: Option<Vec<Value>>,
    /// Organization.
    #[serde(default)]
    pub organization_id: Option<Uuid>,
    /// External id.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// `updateIdentityBody` (PUT: a full replace).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentity {
    /// Schema (kept when empty).
    #[serde(default)]
    pub schema_id: Option<String>,
    /// Traits.
    pub traits: Value,
    /// State (kept when absent).
    #[serde(default)]
    pub state: Option<String>,
    /// Public metadata (cleared when absent).
    #[serde(default)]
    pub metadata_public: Option<Value>,
    /// Admin metadata (cleared when absent).
    #[serde(default)]
    pub metadata_admin: Option<Value>,
    /// Credentials to import.
    #[serde(default)]
    pub credentials: Option<ImportCredentials>,
    /// External id (cleared when absent).
    #[serde(default)]
    pub external_id: Option<String>,
}

/// Credentials in create and update bodies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportCredentials {
    /// Password.
    #[serde(default)]
    pub password: Option<ImportPassword>,
    /// Social sign-in links.
    #[serde(default)]
    pub oidc: Option<ImportProviders>,
    /// SAML links.
    #[serde(default)]
    pub saml: Option<ImportProviders>,
}

/// `{"config": {...}}` of a password import.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportPassword {
    /// The password settings.
    pub config: ImportPasswordConfig,
}

/// A plaintext password (hashed here) or a hash in one of the supported formats.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportPasswordConfig {
    /// A hash to import as-is.
    #[serde(default)]
    pub hashed_password: Option<String>,
    /// A plaintext password.
    #[serde(default)]
    pub password: Option<String>,
    /// Verify the first login through the migration hook.
    #[serde(default)]
    pub use_password_migration_hook: Option<bool>,
}

impl std::fmt::Debug for ImportPasswordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportPasswordConfig")
            .field(
                "hashed_password",
                &self.hashed_password.as_ref().map(|_| "[redacted]"),
            )
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field(
                "use_password_migration_hook",
                &self.use_password_migration_hook,
            )
            .finish()
    }
}

/// `{"config": {"providers": [...]}}` of an OIDC or SAML import.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProviders {
    /// Provider links.
    pub config: ImportProvidersConfig,
}

/// The provider list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProvidersConfig {
    /// Links.
    pub providers: Vec<ImportProvider>,
}

/// One provider link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProvider {
    /// Provider id from the config.
    pub provider: String,
    /// Subject at the provider.
    pub subject: String,
    /// Link automatically on first login.
    #[serde(default)]
    pub use_auto_link: Option<bool>,
    /// Organization.
    #[serde(default)]
    pub organization: Option<Uuid>,
}

/// A verifiable address in a create body.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportVerifiableAddress {
    /// The address.
    pub value: String,
    /// Whether it is verified.
    #[serde(default)]
    pub verified: bool,
    /// `email` or `sms`.
    #[serde(default)]
    pub via: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Anything else the SDK sends (`id`, timestamps) is accepted and ignored.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// Identity operations with validation, hashing and persistence.
#[derive(Clone)]
pub struct IdentityManager {
    pool: Arc<dyn IdentityPool>,
    schemas: Arc<SchemaRegistry>,
    hasher: Hasher,
    clock: SharedClock,
}

impl std::fmt::Debug for IdentityManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityManager").finish_non_exhaustive()
    }
}

impl IdentityManager {
    /// Wires the manager.
    pub fn new(
        pool: Arc<dyn IdentityPool>,
        schemas: Arc<SchemaRegistry>,
        hasher: Hasher,
        clock: SharedClock,
    ) -> Self {
        Self {
            pool,
            schemas,
            hasher,
            clock,
        }
    }

    /// The store.
    pub fn pool(&self) -> &Arc<dyn IdentityPool> {
        &self.pool
    }

    /// The schemas.
    pub fn schemas(&self) -> &SchemaRegistry {
        &self.schemas
    }

    /// The password hasher.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Validates traits against a schema.
    pub fn validate(&self, schema_id: &str, traits: &Value) -> Result<TraitsInfo, Error> {
        let schema = self
            .schemas
            .get(schema_id)
            .ok_or_else(|| Error::UnknownSchema(schema_id.to_owned()))?;
        schema.validate_traits(traits).map_err(Error::Validation)
    }

    /// Builds (without storing) a new identity from a create body: validates traits, hashes or checks the
    /// password, derives identifiers and addresses.
    pub async fn build(&self, body: CreateIdentity) -> Result<Identity, Error> {
        let now = self.clock.now();
        let info = self.validate(&body.schema_id, &body.traits)?;
        let mut identity = Identity::new(body.schema_id, body.traits, now);
        if let Some(state) = body.state.as_deref() {
            identity.state = parse_state(state)?;
        }
        identity.metadata_public = body.metadata_public.filter(|v| !v.is_null());
        identity.metadata_admin = body.metadata_admin.filter(|v| !v.is_null());
        identity.organization_id = body.organization_id;
        identity.external_id = body.external_id.filter(|e| !e.is_empty());
        apply_addresses(&mut identity, &info, now);
        if let Some(imported) = body.verifiable_addresses {
            for a in imported {
                let value = a.value.trim().to_lowercase();
                if let Some(existing) = identity
                    .verifiable_addresses
                    .iter_mut()
                    .find(|x| x.value == value)
                {
                    existing.verified = a.verified;
                    if a.verified {
                        existing.status = VerificationStatus::Completed;
                        existing.verified_at = Some(now);
                    } else if let Some(s) = a.status.as_deref() {
                        existing.status = s.parse().map_err(|_| {
                            Error::BadRequest(format!("unknown verifiable address status {s:?}"))
                        })?;
                    }
                }
            }
        }
        if let Some(creds) = body.credentials {
            self.import_credentials(&mut identity, creds, now).await?;
        }
        refresh_identifiers(&mut identity, &info, now);
        Ok(identity)
    }

    /// Creates and stores an identity.
    pub async fn create(&self, body: CreateIdentity) -> Result<Identity, Error> {
        let identity = self.build(body).await?;
        self.pool.create_identity(&identity).await?;
        Ok(identity)
    }

    /// Replaces an identity (PUT semantics: omitted metadata and external id are cleared).
    pub async fn update(&self, id: Uuid, body: UpdateIdentity) -> Result<Identity, Error> {
        let mut identity = self.pool.get_identity(id, true).await?;
        let now = self.clock.now();
        if let Some(schema_id) = body.schema_id.filter(|s| !s.is_empty()) {
            identity.schema_id = schema_id;
        }
        let info = self.validate(&identity.schema_id, &body.traits)?;
        identity.traits = body.traits;
        if let Some(state) = body.state.as_deref() {
            set_state(&mut identity, parse_state(state)?, now);
        }
        identity.metadata_public = body.metadata_public.filter(|v| !v.is_null());
        identity.metadata_admin = body.metadata_admin.filter(|v| !v.is_null());
        identity.external_id = body.external_id.filter(|e| !e.is_empty());
        apply_addresses(&mut identity, &info, now);
        if let Some(creds) = body.credentials {
            self.import_credentials(&mut identity, creds, now).await?;
        }
        refresh_identifiers(&mut identity, &info, now);
        identity.updated_at = now;
        self.pool.update_identity(&identity).await?;
        Ok(identity)
    }

    /// Applies an RFC 6902 JSON Patch to the admin view of an identity.
    pub async fn patch(
        &self,
        id: Uuid,
        patch: Value,
        public_base: &str,
    ) -> Result<Identity, Error> {
        let patch: json_patch::Patch = serde_json::from_value(patch)
            .map_err(|e| Error::BadRequest(format!("invalid JSON Patch: {e}")))?;
        for op in &patch.0 {
            let path = op_path(op);
            for forbidden in [
                "/id",
                "/credentials",
                "/state_changed_at",
                "/created_at",
                "/updated_at",
                "/schema_url",
            ] {
                if path == forbidden || path.starts_with(&format!("{forbidden}/")) {
                    return Err(Error::BadRequest(format!(
                        "patch of {path} is not allowed: {forbidden} is read-only"
                    )));
                }
            }
        }
        let mut identity = self.pool.get_identity(id, true).await?;
        let mut doc = view::admin_identity(&identity, public_base, view::CredentialsView::Omit);
        json_patch::patch(&mut doc, &patch)
            .map_err(|e| Error::BadRequest(format!("could not apply patch: {e}")))?;
        let now = self.clock.now();
        let str_field = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        let schema_id = str_field("schema_id")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| identity.schema_id.clone());
        let traits = doc.get("traits").cloned().unwrap_or(Value::Null);
        let info = self.validate(&schema_id, &traits)?;
        identity.schema_id = schema_id;
        identity.traits = traits;
        let state =
            str_field("state").ok_or_else(|| Error::BadRequest("state is required".into()))?;
        set_state(&mut identity, parse_state(&state)?, now);
        identity.metadata_public = doc.get("metadata_public").cloned().filter(|v| !v.is_null());
        identity.metadata_admin = doc.get("metadata_admin").cloned().filter(|v| !v.is_null());
        identity.external_id = str_field("external_id").filter(|s| !s.is_empty());
        identity.organization_id = match doc.get("organization_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|_| Error::BadRequest("organization_id must be a UUID".into()))?,
            ),
        };
        // Verification state may be patched (for example to mark an imported address verified).
        if let Some(Value::Array(list)) = doc.get("verifiable_addresses") {
            for patched in list {
                let Some(addr_id) = patched.get("id").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(a) = identity
                    .verifiable_addresses
                    .iter_mut()
                    .find(|a| a.id.to_string() == addr_id)
                {
                    let verified = patched.get("verified").and_then(Value::as_bool);
                    let status = patched
                        .get("status")
                        .and_then(Value::as_str)
                        .map(|s| {
                            VerificationStatus::from_str(s).map_err(|_| {
                                Error::BadRequest(format!(
                                    "unknown verifiable address status {s:?}"
                                ))
                            })
                        })
                        .transpose()?;
                    match verified {
                        // Flipping `verified` decides the status too.
                        Some(v) if v != a.verified => {
                            a.verified = v;
                            a.verified_at = v.then_some(now);
                            a.status = if v {
                                VerificationStatus::Completed
                            } else {
                                VerificationStatus::Pending
                            };
                            a.updated_at = now;
                        }
                        _ => {
                            if let Some(s) = status.filter(|s| *s != a.status) {
                                a.status = s;
                                a.updated_at = now;
                            }
                        }
                    }
                }
            }
        }
        apply_addresses(&mut identity, &info, now);
        refresh_identifiers(&mut identity, &info, now);
        identity.updated_at = now;
        self.pool.update_identity(&identity).await?;
        Ok(identity)
    }

    /// Removes one credential type. First-factor credentials can only go if another first factor remains.
    pub async fn delete_credential(
        &self,
        id: Uuid,
        kind: &str,
        identifier: Option<&str>,
    ) -> Result<(), Error> {
        let mut identity = self.pool.get_identity(id, true).await?;
        // As in Kratos, a type the identity has no credential of (or no such type at all) is a 404, before any
        // check of what may be deleted.
        let kind = CredentialType::from_str(kind)
            .ok()
            .filter(|k| identity.credentials.contains_key(k))
            .ok_or_else(|| {
                Error::NoCredential(format!(
                    "You tried to remove a {kind:?} credential, but this identity has none."
                ))
            })?;
        match kind {
            CredentialType::Totp | CredentialType::LookupSecret | CredentialType::Webauthn => {}
            CredentialType::Password | CredentialType::Oidc | CredentialType::Saml => {
                let others = identity
                    .credentials
                    .keys()
                    .filter(|k| **k != kind && k.is_first_factor())
                    .count();
                let partial = matches!(kind, CredentialType::Oidc | CredentialType::Saml)
                    && identity
                        .credentials
                        .get(&kind)
                        .is_some_and(|c| c.identifiers.len() > 1);
                if others == 0 && !partial {
                    return Err(Error::BadRequest(format!(
                        "cannot remove the {kind} credential: it is the last first-factor credential of this identity"
                    )));
                }
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "credentials of type {other} cannot be deleted"
                )))
            }
        }
        let now = self.clock.now();
        match kind {
            CredentialType::Oidc | CredentialType::Saml => {
                let identifier = identifier.filter(|s| !s.is_empty()).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "the identifier query parameter is required for {kind}"
                    ))
                })?;
                let cred = identity.credentials.get_mut(&kind).ok_or(Error::NotFound)?;
                let before = cred.identifiers.len();
                cred.identifiers.retain(|i| i != identifier);
                if cred.identifiers.len() == before {
                    return Err(Error::NotFound);
                }
                if let Some(Value::Array(providers)) = cred.config.get_mut("providers") {
                    providers.retain(|p| {
                        let key = format!(
                            "{}:{}",
                            p.get("provider")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                            p.get("subject").and_then(Value::as_str).unwrap_or_default()
                        );
                        key != identifier
                    });
                }
                cred.updated_at = now;
                if cred.identifiers.is_empty() {
                    identity.credentials.remove(&kind);
                }
            }
            _ => {
                identity.credentials.remove(&kind).ok_or(Error::NotFound)?;
            }
        }
        identity.updated_at = now;
        self.pool.update_identity(&identity).await?;
        Ok(())
    }

    async fn import_credentials(
        &self,
        identity: &mut Identity,
        creds: ImportCredentials,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        if let Some(pw) = creds.password {
            let config = match (pw.config.hashed_password, pw.config.password) {
                (Some(hashed), _) if !hashed.is_empty() => {
                    hash::validate_format(&hashed).map_err(|e| {
                        Error::BadRequest(format!("unable to import the hashed password: {e}"))
                    })?;
                    json!({ "hashed_password": hashed })
                }
                (_, Some(plain)) if !plain.is_empty() => {
                    let hashed = self.hasher.hash(&plain).await?;
                    json!({ "hashed_password": hashed })
                }
                _ if pw.config.use_password_migration_hook == Some(true) => {
                    json!({ "use_password_migration_hook": true })
                }
                _ => {
                    return Err(Error::BadRequest(
                        "credentials.password.config needs password or hashed_password".into(),
                    ))
                }
            };
            set_config(identity, CredentialType::Password, config, now);
        }
        for (kind, providers) in [
            (CredentialType::Oidc, creds.oidc),
            (CredentialType::Saml, creds.saml),
        ] {
            let Some(p) = providers else { continue };
            let identifiers: Vec<String> = p
                .config
                .providers
                .iter()
                .map(|x| format!("{}:{}", x.provider, x.subject))
                .collect();
            let list: Vec<Value> = p
                .config
                .providers
                .iter()
                .map(|x| {
                    let mut o = json!({"provider": x.provider, "subject": x.subject});
                    if let Some(v) = x.use_auto_link {
                        o["use_auto_link"] = json!(v);
                    }
                    if let Some(org) = x.organization {
                        o["organization"] = json!(org);
                    }
                    o
                })
                .collect();
            set_config(identity, kind, json!({ "providers": list }), now);
            identity.set_credential_identifiers(kind, identifiers, now);
        }
        Ok(())
    }
}

fn op_path(op: &json_patch::PatchOperation) -> String {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(o) => o.path.to_string(),
        P::Remove(o) => o.path.to_string(),
        P::Replace(o) => o.path.to_string(),
        P::Move(o) => o.path.to_string(),
        P::Copy(o) => o.path.to_string(),
        P::Test(o) => o.path.to_string(),
    }
}

fn parse_state(s: &str) -> Result<IdentityState, Error> {
    IdentityState::from_str(s).map_err(|_| {
        Error::BadRequest(format!(
            "identity state {s:?} is not valid: use \"active\" or \"inactive\""
        ))
    })
}

fn set_state(identity: &mut Identity, state: IdentityState, now: OffsetDateTime) {
    if identity.state != state {
        identity.state = state;
        identity.state_changed_at = Some(now);
    }
}

fn set_config(identity: &mut Identity, kind: CredentialType, config: Value, now: OffsetDateTime) {
    let cred = identity
        .credentials
        .entry(kind)
        .or_insert_with(|| Credential {
            id: Uuid::new_v4(),
            kind,
            identifiers: Vec::new(),
            config: json!({}),
            version: 0,
            created_at: now,
            updated_at: now,
        });
    cred.config = config;
    cred.updated_at = now;
}

fn apply_addresses(identity: &mut Identity, info: &TraitsInfo, now: OffsetDateTime) {
    let pairs = |list: &[crate::schema::Address]| -> Vec<(String, String)> {
        list.iter()
            .map(|a| (a.via.clone(), a.value.clone()))
            .collect()
    };
    identity.set_addresses(
        &pairs(&info.verifiable_addresses),
        &pairs(&info.recovery_addresses),
        now,
    );
}

/// Keeps the identifiers of schema-derived credentials in step with the traits.
fn refresh_identifiers(identity: &mut Identity, info: &TraitsInfo, now: OffsetDateTime) {
    if identity.credentials.contains_key(&CredentialType::Password) {
        identity.set_credential_identifiers(
            CredentialType::Password,
            info.password_identifiers.clone(),
            now,
        );
    }
    if identity.credentials.contains_key(&CredentialType::Code) {
        identity.set_credential_identifiers(
            CredentialType::Code,
            info.code_identifiers.clone(),
            now,
        );
    }
}
