//! Identity schemas: loading, compiling and validating traits as Kratos does.
//!
//! A schema is loaded from `file://`, `base64://` or inline JSON, checked
//! against its draft's meta-schema (draft 7 unless `$schema` says otherwise)
//! and Kratos's identity meta-schema, and compiled without any network or
//! file access for `$ref`s. Traits are validated as the identity document
//! `{"traits": …}`; errors become Kratos UI messages attached to node names
//! (`traits.email`), and the `ory.sh/kratos` extension yields the
//! identifiers and addresses in [`TraitsInfo`].

mod extension;
mod formats;
mod messages;
mod meta;
mod source;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use jsonschema::Draft;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::text::{self, UiText};

/// Traits nested deeper than this (counting objects and arrays) are refused
/// before validation.
pub const MAX_TRAITS_DEPTH: usize = 128;

/// Schemas nested deeper than this (objects and arrays) are refused; a schema
/// parsed from text cannot be deeper than 128 anyway (`serde_json`'s limit).
pub const MAX_SCHEMA_DEPTH: usize = 128;

/// At most this many messages are returned for one document.
pub const MAX_MESSAGES: usize = 1000;

/// A configured identity schema (`identity.schemas[]` in Kratos's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSource {
    /// The schema id.
    pub id: String,
    /// `file:///abs/path.json`, `file://relative/path.json`, `base64://…` or
    /// inline JSON (text starting with `{`).
    pub url: String,
}

/// Why identity schemas could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema could not be read, decoded or parsed as JSON.
    #[error("identity schema \"{id}\" could not be loaded: {reason}")]
    Load {
        /// The schema id.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// The schema is not a valid JSON Schema or not a valid identity schema.
    #[error("identity schema \"{id}\" is invalid: {reason}")]
    Invalid {
        /// The schema id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The default schema id is not among the configured schemas.
    #[error("the default identity schema \"{0}\" is not among the configured identity schemas")]
    DefaultMissing(String),
    /// Two schemas share an id.
    #[error("identity schema id \"{0}\" is configured more than once")]
    Duplicate(String),
}

/// An identifier or address found in traits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// `email` or `sms`.
    pub via: String,
    /// The address; e-mail addresses are lower-cased and trimmed.
    pub value: String,
}

/// What the `ory.sh/kratos` extension found in valid traits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraitsInfo {
    /// Password identifiers, lower-cased and trimmed (as Kratos stores them),
    /// deduplicated, in document order.
    pub password_identifiers: Vec<String>,
    /// Addresses from `verification.via`.
    pub verifiable_addresses: Vec<Address>,
    /// Addresses from `recovery.via`.
    pub recovery_addresses: Vec<Address>,
    /// Code (one-time code) identifiers: e-mails lower-cased and trimmed, phone
    /// numbers in E.164 form; sorted, deduplicated.
    pub code_identifiers: Vec<String>,
    /// WebAuthn identifiers, lower-cased and trimmed, deduplicated.
    pub webauthn_identifiers: Vec<String>,
    /// The TOTP account name (the last marked value), as given.
    pub totp_account_name: Option<String>,
}

/// A validation message attached to a form node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMessage {
    /// The node name, e.g. `traits.email`, `traits.name.first`,
    /// `traits.tags.1`; `""` for the root.
    pub node: String,
    /// The message.
    pub message: UiText,
}

/// Refuses every external `$ref`: identity schemas must be self-contained.
pub(crate) struct NoRemoteRetriever;

impl jsonschema::Retrieve for NoRemoteRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "refusing to resolve the external reference {}: identity schemas must be self-contained (remote and file $refs are disabled)",
            uri.as_str()
        )
        .into())
    }
}

/// The unpadded base64url form of a schema id, as used in Kratos's
/// `schema_url` (`default` → `ZGVmYXVsdA`).
pub fn schema_url_id(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A compiled identity schema.
#[derive(Clone)]
pub struct IdentitySchema {
    id: String,
    url: String,
    raw: Value,
    draft: Draft,
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for IdentitySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySchema")
            .field("id", &self.id)
            .field("url", &source::describe_url(&self.url))
            .field("draft", &self.draft)
            .finish_non_exhaustive()
    }
}

fn draft_name(draft: Draft) -> &'static str {
    match draft {
        Draft::Draft4 => "draft-04",
        Draft::Draft6 => "draft-06",
        Draft::Draft7 => "draft-07",
        Draft::Draft201909 => "2019-09",
        Draft::Draft202012 => "2020-12",
        _ => "unknown",
    }
}

/// Nesting depth of a value (objects and arrays), computed without recursion;
/// stops counting past `limit`.
fn depth_exceeds(value: &Value, limit: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        let depth = depth + 1;
        if depth > limit {
            return true;
        }
        for child in children {
            if child.is_object() || child.is_array() {
                stack.push((child, depth));
            }
        }
    }
    false
}

/// Drops a value without recursion (a deeply nested value would overflow the
/// stack when dropped the usual way).
fn drop_iteratively(value: Value) {
    let mut stack = vec![value];
    while let Some(mut value) = stack.pop() {
        match &mut value {
            Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
            Value::Array(items) => stack.append(items),
            _ => {}
        }
    }
}

impl IdentitySchema {
    /// Compiles an identity schema from its JSON. `url` is where it came from
    /// (kept for reference only).
    ///
    /// # Errors
    ///
    /// [`SchemaError::Invalid`] when the id is empty, the JSON is not a valid
    /// JSON Schema (or uses an unknown `$schema`, or an external `$ref`), or
    /// it is not a valid Kratos identity schema.
    pub fn new(
        id: impl Into<String>,
        url: impl Into<String>,
        raw: Value,
    ) -> Result<Self, SchemaError> {
        let id = id.into();
        let url = url.into();
        let invalid = |reason: String| SchemaError::Invalid {
            id: id.clone(),
            reason,
        };
        if id.is_empty() {
            return Err(invalid("the schema id must not be empty".to_owned()));
        }
        if !raw.is_object() {
            return Err(invalid(
                "an identity schema must be a JSON object".to_owned(),
            ));
        }
        if depth_exceeds(&raw, MAX_SCHEMA_DEPTH) {
            drop_iteratively(raw);
            return Err(invalid(format!(
                "the schema is nested too deeply (more than {MAX_SCHEMA_DEPTH} levels)"
            )));
        }
        // Kratos's schemas are draft 7 unless `$schema` says otherwise.
        let draft = Draft::Draft7.detect(&raw);
        if draft == Draft::Unknown {
            let named = raw.get("$schema").map(Value::to_string).unwrap_or_default();
            return Err(invalid(format!(
                "unsupported $schema {named}; supported are draft-04, draft-06, draft-07, 2019-09 and 2020-12"
            )));
        }
        let validator = jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .with_format("email", formats::is_email)
            .with_format("tel", formats::is_tel)
            .with_format("no-validate", |_: &str| true)
            .with_retriever(NoRemoteRetriever)
            .build(&raw)
            .map_err(|e| {
                let at = e.instance_path().to_string();
                invalid(if at.is_empty() {
                    format!("not a valid JSON Schema ({}): {e}", draft_name(draft))
                } else {
                    format!(
                        "not a valid JSON Schema ({}): {e} (at {at})",
                        draft_name(draft)
                    )
                })
            })?;
        meta::check_identity_schema(&raw).map_err(&invalid)?;
        Ok(Self {
            id,
            url,
            raw,
            draft,
            validator: Arc::new(validator),
        })
    }

    /// The schema id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The URL the schema was loaded from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema JSON exactly as loaded (what `GET /schemas/{id}` returns).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The unpadded base64url form of the id (see [`schema_url_id`]).
    pub fn url_id(&self) -> String {
        schema_url_id(&self.id)
    }

    /// Validates traits: the identity document `{"traits": traits}` is
    /// validated against the schema, and the `ory.sh/kratos` extension
    /// collects identifiers and addresses.
    ///
    /// # Errors
    ///
    /// The messages (at most [`MAX_MESSAGES`], never empty) when the traits
    /// are invalid; a single root (`""`) message when they are not an object
    /// or are nested deeper than [`MAX_TRAITS_DEPTH`].
    pub fn validate_traits(&self, traits: &Value) -> Result<TraitsInfo, Vec<FieldMessage>> {
        if !traits.is_object() {
            return Err(vec![FieldMessage {
                node: String::new(),
                message: text::validation_wrong_type(&["object"], messages::go_json_type(traits)),
            }]);
        }
        if depth_exceeds(traits, MAX_TRAITS_DEPTH) {
            return Err(vec![FieldMessage {
                node: String::new(),
                message: text::validation_generic(&format!(
                    "traits are nested too deeply (more than {MAX_TRAITS_DEPTH} levels)"
                )),
            }]);
        }
        let mut document = Map::new();
        document.insert("traits".to_owned(), traits.clone());
        let document = Value::Object(document);

        let mut out = Vec::new();
        for err in self.validator.iter_errors(&document) {
            if out.len() >= MAX_MESSAGES {
                break;
            }
            messages::push_messages(&err, &self.raw, &mut out, 0);
        }

        let ref_overrides_siblings =
            matches!(self.draft, Draft::Draft4 | Draft::Draft6 | Draft::Draft7);
        let mut collector = extension::Collector::new(&self.raw, ref_overrides_siblings);
        collector.walk(&self.raw, &document, &mut Vec::new(), 0);
        let (info, extension_errors) = collector.finish();
        out.extend(extension_errors);

        if out.is_empty() {
            return Ok(info);
        }
        // A value can fail the same way twice (e.g. the `format` keyword and
        // the recovery extension both reject a bad e-mail address).
        out.truncate(MAX_MESSAGES);
        let mut unique: Vec<FieldMessage> = Vec::with_capacity(out.len());
        for message in out {
            if !unique.contains(&message) {
                unique.push(message);
            }
        }
        Err(unique)
    }
}

/// The configured identity schemas, in configuration order, and the default.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<IdentitySchema>,
    /// A copy of the default schema (which is also in `schemas`).
    default: IdentitySchema,
}

impl SchemaRegistry {
    /// Loads and compiles every schema.
    ///
    /// # Errors
    ///
    /// On the first unreadable ([`SchemaError::Load`]) or invalid
    /// ([`SchemaError::Invalid`]) schema, on a duplicate id
    /// ([`SchemaError::Duplicate`]) and when `default_id` is not configured
    /// ([`SchemaError::DefaultMissing`]).
    pub fn load(sources: &[SchemaSource], default_id: &str) -> Result<Self, SchemaError> {
        let mut schemas: Vec<IdentitySchema> = Vec::with_capacity(sources.len());
        for src in sources {
            if schemas.iter().any(|s| s.id == src.id) {
                return Err(SchemaError::Duplicate(src.id.clone()));
            }
            let raw = source::load(&src.url).map_err(|reason| SchemaError::Load {
                id: src.id.clone(),
                reason,
            })?;
            schemas.push(IdentitySchema::new(src.id.clone(), src.url.clone(), raw)?);
        }
        Self::from_schemas(schemas, default_id)
    }

    /// Builds a registry from compiled schemas.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Duplicate`] or [`SchemaError::DefaultMissing`].
    pub fn from_schemas(
        schemas: Vec<IdentitySchema>,
        default_id: &str,
    ) -> Result<Self, SchemaError> {
        for (i, schema) in schemas.iter().enumerate() {
            if schemas.iter().skip(i + 1).any(|s| s.id == schema.id) {
                return Err(SchemaError::Duplicate(schema.id.clone()));
            }
        }
        let default = schemas
            .iter()
            .find(|s| s.id == default_id)
            .cloned()
            .ok_or_else(|| SchemaError::DefaultMissing(default_id.to_owned()))?;
        Ok(Self { schemas, default })
    }

    /// The schema with this id.
    pub fn get(&self, id: &str) -> Option<&IdentitySchema> {
        self.schemas.iter().find(|s| s.id == id)
    }

    /// The schema with this id, or whose id's base64url form this is (what
    /// Kratos's `schema_url` uses); padding and the standard alphabet are
    /// tolerated.
    pub fn resolve(&self, id_or_b64: &str) -> Option<&IdentitySchema> {
        self.get(id_or_b64).or_else(|| {
            let decoded = source::decode_base64_any(id_or_b64)?;
            let id = String::from_utf8(decoded).ok()?;
            self.get(&id)
        })
    }

    /// The default schema.
    pub fn default_schema(&self) -> &IdentitySchema {
        &self.default
    }

    /// The default schema's id.
    pub fn default_id(&self) -> &str {
        self.default_schema().id()
    }

    /// All schemas, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &IdentitySchema> {
        self.schemas.iter()
    }
}
