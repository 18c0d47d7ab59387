//! Session to JWT conversion (Kratos' `GET /sessions/whoami?tokenize_as=<template>`).
//!
//! Configuration mirrors Kratos' `session.whoami.tokenizer.templates.<name>`: every template
//! names a JWKS (`jwks_url`) holding the signing key, an optional claims mapper
//! (`claims_mapper_url`), the token lifetime (`ttl`) and where the `sub` claim comes from
//! (`subject_source`: `id`, the default, or `external_id`).
//!
//! All documents are read once by [`Tokenizer::load`]; [`Tokenizer::tokenize`] does no I/O.
//!
//! Claims follow Kratos' `session/tokenizer.go`: `jti` (random UUID v4), `iss`, `iat`, `nbf`
//! (both `now`), `exp` (`now + ttl`), `sid` (session id) and `sub`. The mapper's `claims` are
//! then merged over these, overriding any of them except `sub`, which is always set from the
//! subject source last.
//!
//! Differences from Kratos:
//! * the claims mapper is a JSON template (see [`mapper`](self#claims-mapper)), not Jsonnet;
//! * JWKS and mapper are read at startup from `file://` or `base64://` URLs only, not HTTP;
//! * a JWK without `alg` is accepted (the algorithm follows from its type) and the first key
//!   with private material of a supported type is used rather than strictly the first key;
//! * `kid` is put in the header only when the key has one (Kratos writes `"kid": ""`).
//!
//! # Claims mapper
//!
//! The mapper document is a JSON object with a `claims` object. A string value that is exactly
//! `{{ <path> }}` is replaced by the JSON value found at `<path>`, where the path starts with
//! `session` (the whoami session JSON) or `claims` (the default claims above) followed by
//! dot-separated keys or array indexes, e.g. `"{{ session.identity.traits.email }}"`. Missing
//! paths give `null`; stepping into a string, number or boolean is a mapper error.

mod mapper;
pub(crate) mod source;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use self::mapper::Mapper;
use crate::jws::jwk::{select_signing_key, PrivateJwk};

/// One `session.whoami.tokenizer.templates.<name>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// Where the JWKS with the signing key lives: `file:///abs.json`, `file://relative.json` or
    /// `base64://<json>`.
    pub jwks_url: String,
    /// Optional claims mapper (a JSON template, see the module documentation), same URL forms.
    pub claims_mapper_url: Option<String>,
    /// Token lifetime; Kratos' default is one minute.
    pub ttl: std::time::Duration,
    /// `"id"` (default when `None` or empty) or `"external_id"`.
    pub subject_source: Option<String>,
}

/// Errors of [`Tokenizer::load`] and [`Tokenizer::tokenize`].
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// `tokenize_as` names no configured template (Kratos answers 400).
    #[error("unable to find tokenizer template {0:?}")]
    UnknownTemplate(String),
    /// A template could not be loaded: unreadable or invalid JWKS, mapper or setting.
    #[error("tokenizer template {template:?} is misconfigured: {reason}")]
    Config { template: String, reason: String },
    /// The session could not be mapped to claims: the claims mapper failed on it, or it lacks
    /// what the claims need (its `id`, its identity's `id`, or the identity's `external_id` when
    /// the subject source is `external_id`). Kratos answers 400.
    #[error("unable to map the session to JWT claims: {0}")]
    Mapper(String),
    /// Signing or encoding the token failed.
    #[error("unable to sign JSON Web Token: {0}")]
    Sign(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubjectSource {
    Id,
    ExternalId,
}

struct Template {
    key: PrivateJwk,
    mapper: Option<Mapper>,
    ttl: time::Duration,
    subject: SubjectSource,
}

/// Compiled tokenizer templates, ready to sign. Cheap to share (`Send + Sync`).
#[derive(Default)]
pub struct Tokenizer {
    templates: BTreeMap<String, Template>,
}

impl fmt::Debug for Tokenizer {
    // Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, tpl) in &self.templates {
            map.entry(
                name,
                &format_args!(
                    "{{ alg: {}, kid: {:?}, ttl: {}, subject: {:?}, mapper: {} }}",
                    tpl.key.alg.name(),
                    tpl.key.kid,
                    tpl.ttl,
                    tpl.subject,
                    tpl.mapper.is_some()
                ),
            );
        }
        map.finish()
    }
}

impl Tokenizer {
    /// Reads every template's JWKS and claims mapper and selects its signing key.
    ///
    /// Any problem (unreadable URL, invalid JSON, no usable private key, `alg` not matching the
    /// key, invalid mapper, unknown subject source, ttl out of range) is a
    /// [`TokenizeError::Config`] naming the template.
    pub fn load(templates: &BTreeMap<String, TemplateConfig>) -> Result<Self, TokenizeError> {
        let mut compiled = BTreeMap::new();
        for (name, config) in templates {
            let template = compile(config).map_err(|reason| TokenizeError::Config {
                template: name.clone(),
                reason,
            })?;
            compiled.insert(name.clone(), template);
        }
        Ok(Self {
            templates: compiled,
        })
    }

    /// `true` when no template is configured.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// `true` when a template of that name is configured.
    pub fn contains(&self, template: &str) -> bool {
        self.templates.contains_key(template)
    }

    /// Turns a session into a signed JWT using `template`.
    ///
    /// `session` is the whoami session JSON (with `id` and `identity`, whose `id` and, for the
    /// `external_id` subject source, `external_id` are used). `issuer` becomes `iss` (Kratos
    /// uses its public base URL) and `now` gives `iat`, `nbf` and `exp = now + ttl`.
    pub fn tokenize(
        &self,
        template: &str,
        session: &Value,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<String, TokenizeError> {
        let tpl = self
            .templates
            .get(template)
            .ok_or_else(|| TokenizeError::UnknownTemplate(template.to_owned()))?;

        let session_id = session
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| TokenizeError::Mapper("the session has no \"id\"".to_owned()))?;
        let subject = subject(session, tpl.subject)?;
        let iat = now.unix_timestamp();
        let exp = now
            .checked_add(tpl.ttl)
            .ok_or_else(|| TokenizeError::Sign("the expiry time is out of range".to_owned()))?
            .unix_timestamp();

        let mut claims = Map::new();
        claims.insert(
            "jti".to_owned(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        claims.insert("iss".to_owned(), Value::String(issuer.to_owned()));
        claims.insert("exp".to_owned(), Value::from(exp));
        claims.insert("sid".to_owned(), Value::String(session_id.to_owned()));
        claims.insert("nbf".to_owned(), Value::from(iat));
        claims.insert("iat".to_owned(), Value::from(iat));
        claims.insert("sub".to_owned(), Value::String(subject.clone()));

        if let Some(mapper) = &tpl.mapper {
            let mapped = mapper
                .render(session, &claims)
                .map_err(|e| TokenizeError::Mapper(format!("claims mapper: {e}")))?;
            // Like Go's json.Unmarshal into the existing claims map: mapped keys win...
            claims.extend(mapped);
            // ...except `sub`, which Kratos sets again after the mapper.
            claims.insert("sub".to_owned(), Value::String(subject));
        }

        // Go marshals maps with sorted keys; do the same so tokens look like Kratos'.
        let claims = sorted(Value::Object(claims));
        let token =
            crate::jws::sign_compact(&tpl.key.key, tpl.key.alg, tpl.key.kid.as_deref(), &claims)
                .map_err(TokenizeError::Sign)?;
        Ok(token)
    }
}

fn compile(config: &TemplateConfig) -> Result<Template, String> {
    let subject = match config.subject_source.as_deref().map(str::trim) {
        None | Some("") | Some("id") => SubjectSource::Id,
        Some("external_id") => SubjectSource::ExternalId,
        Some(other) => {
            return Err(format!(
                "unknown subject_source {other:?}; expected \"id\" or \"external_id\""
            ))
        }
    };
    let ttl = time::Duration::try_from(config.ttl)
        .map_err(|_| format!("ttl {:?} is out of range", config.ttl))?;

    if config.jwks_url.trim().is_empty() {
        return Err("jwks_url is required".to_owned());
    }
    let jwks = source::load(&config.jwks_url).map_err(|e| format!("jwks_url: {e}"))?;
    let key = select_signing_key(&jwks).map_err(|e| format!("jwks_url: {e}"))?;

    let mapper = match config.claims_mapper_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => {
            let document = source::load(url).map_err(|e| format!("claims_mapper_url: {e}"))?;
            Some(Mapper::parse(&document).map_err(|e| format!("claims_mapper_url: {e}"))?)
        }
    };

    Ok(Template {
        key,
        mapper,
        ttl,
        subject,
    })
}

/// The `sub` claim for `session` (Kratos' `SetSubjectClaim`).
fn subject(session: &Value, source: SubjectSource) -> Result<String, TokenizeError> {
    let identity = session.get("identity");
    match source {
        SubjectSource::Id => identity
            .and_then(|identity| identity.get("id"))
            .or_else(|| session.get("identity_id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                TokenizeError::Mapper("the session has no identity id".to_owned())
            }),
        SubjectSource::ExternalId => identity
            .and_then(|identity| identity.get("external_id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                TokenizeError::Mapper(
                    "the session's identity does not have an external ID set, but it is required for the subject claim"
                        .to_owned(),
                )
            }),
    }
}

/// `value` with every object's keys in ascending order, recursively.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
