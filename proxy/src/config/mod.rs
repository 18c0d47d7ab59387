//! Configuration: typed, strict, layered.
//!
//! Layers, later ones win: built-in defaults, YAML file(s), environment variables, CLI `--set key=value` flags.
//! Key names follow Kratos where Kratos has the key, so a Kratos config for the features we support loads
//! unchanged. Unknown keys are an error that names the key.
//!
//! Environment variables: every key path maps to the upper-cased path with `.` replaced by `_`
//! (`dsn` → `DSN`, `serve.admin.port` → `SERVE_ADMIN_PORT`, `identity.default_schema_id` →
//! `IDENTITY_DEFAULT_SCHEMA_ID`). Values are read as the type of the key: numbers, booleans, durations (`1h30m`),
//! lists (JSON, or comma-separated for lists of strings: `SECRETS_COOKIE=new-secret,old-secret`) and objects
//! (JSON, e.g. `IDENTITY_SCHEMAS='[{"id":"default","url":"file:///etc/schema.json"}]'`).

mod env;
mod types;

pub use types::*;

use serde_json::Value;
use std::path::Path;

/// What went wrong while loading configuration. The message is meant for a human at a terminal.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid YAML/JSON.
    #[error("config file {path} is not valid YAML: {reason}")]
    Syntax {
        /// The file.
        path: String,
        /// Parser message with line and column.
        reason: String,
    },
    /// A key is unknown or has a value of the wrong type.
    #[error("invalid config at `{key}`: {reason}")]
    Key {
        /// Dotted key path.
        key: String,
        /// Why.
        reason: String,
    },
    /// The values are well-formed but do not make sense together.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// Where configuration comes from.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// YAML or JSON files, merged in order.
    pub files: Vec<std::path::PathBuf>,
    /// `key.path=value` overrides from the command line.
    pub overrides: Vec<String>,
    /// `--dev`.
    pub dev: bool,
    /// Whether to read environment variables (tests turn this off).
    pub use_env: bool,
}

impl Config {
    /// Loads and validates configuration from every layer.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = if sources.use_env {
            std::env::vars().collect()
        } else {
            Vec::new()
        };
        Self::load_with_env(sources, &vars)
    }

    /// As [`Config::load`], with the environment given explicitly.
    pub fn load_with_env(
        sources: &Sources,
        vars: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut tree = Value::Object(Default::default());
        for file in &sources.files {
            merge(&mut tree, read_file(file)?);
        }
        let shape = serde_json::to_value(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        env::apply_env(&mut tree, &shape, vars)?;
        for o in &sources.overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| ConfigError::Key {
                key: o.clone(),
                reason: "expected key.path=value".into(),
            })?;
            env::apply_override(&mut tree, &shape, key.trim(), value)?;
        }
        let mut config = Self::from_value(tree)?;
        config.dev = sources.dev;
        config.finish()?;
        Ok(config)
    }

    /// Deserializes a complete tree, naming the offending key on error.
    pub fn from_value(tree: Value) -> Result<Self, ConfigError> {
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Key {
                key: if key == "." { "(root)".into() } else { key },
                reason: e.into_inner().to_string(),
            }
        })
    }

    /// Fills derived defaults and checks cross-key rules.
    fn finish(&mut self) -> Result<(), ConfigError> {
        if self.dsn.is_none() {
            if self.dev {
                self.dsn = Some(Secret::new("sqlite://portcullis.db?mode=rwc"));
            } else {
                return Err(ConfigError::Invalid(
                    "`dsn` is required (for example sqlite:///var/lib/portcullis/db.sqlite?mode=rwc or \
                     postgres://user:pass@host/db); use --dev for a local SQLite database"
                        .into(),
                ));
            }
        }
        for (name, list) in [
            ("secrets.default", &self.secrets.default),
            ("secrets.cookie", &self.secrets.cookie),
            ("secrets.cipher", &self.secrets.cipher),
            ("secrets.pagination", &self.secrets.pagination),
        ] {
            if let Some(short) = list.iter().position(|s| s.expose().len() < 16) {
                return Err(ConfigError::Key {
                    key: format!("{name}.{short}"),
                    reason: "secrets must be at least 16 characters long".into(),
                });
            }
        }
        for (name, url) in [
            ("serve.public.base_url", &self.serve.public.base_url),
            ("serve.admin.base_url", &self.serve.admin.base_url),
            (
                "selfservice.default_browser_return_url",
                &self.selfservice.default_browser_return_url,
            ),
        ] {
            if let Some(u) = url {
                url::Url::parse(u).map_err(|e| ConfigError::Key {
                    key: name.into(),
                    reason: format!("{u:?} is not an absolute URL: {e}"),
                })?;
            }
        }
        if self.identity.schemas.is_empty() {
            self.identity.schemas.push(SchemaEntry {
                id: self.identity.default_schema_id.clone(),
                url: BUILTIN_SCHEMA.to_owned(),
            });
        }
        if !self
            .identity
            .schemas
            .iter()
            .any(|s| s.id == self.identity.default_schema_id)
        {
            return Err(ConfigError::Key {
                key: "identity.default_schema_id".into(),
                reason: format!(
                    "{:?} is not among identity.schemas",
                    self.identity.default_schema_id
                ),
            });
        }
        if !self.dev && self.hashers.bcrypt.cost < 12 {
            tracing::warn!(
                configured = self.hashers.bcrypt.cost,
                "hashers.bcrypt.cost below 12 is only allowed with --dev; using 12"
            );
            self.hashers.bcrypt.cost = 12;
        }
        for (name, l) in [
            ("serve.public", &self.serve.public),
            ("serve.admin", &self.serve.admin),
            ("serve.api", &self.serve.api),
        ] {
            for (key, d) in [
                ("timeout.read", l.timeout.read),
                ("timeout.write", l.timeout.write),
                ("timeout.idle", l.timeout.idle),
            ] {
                if d.0.is_zero() {
                    return Err(ConfigError::Key {
                        key: format!("{name}.{key}"),
                        reason: "must be longer than zero".into(),
                    });
                }
            }
            check_cidrs(&format!("{name}.trusted_proxies"), &l.trusted_proxies)?;
            if l.max_connections == 0 {
                return Err(ConfigError::Key {
                    key: format!("{name}.max_connections"),
                    reason: "must be at least 1".into(),
                });
            }
        }
        check_cidrs(
            "serve.proxy.trusted_proxies",
            &self.serve.proxy.trusted_proxies,
        )?;
        self.hashers.argon2.memory_kib()?;
        self.tracing.check()?;
        self.security.check()?;
        Ok(())
    }

    /// Self-service methods switched on in `selfservice.methods.<name>.enabled` that Portcullis does not implement
    /// yet: they load (Kratos configs carry them) but offer nothing, so `serve` warns and `config check` lists them.
    pub fn unimplemented_methods(&self) -> Vec<&'static str> {
        let m = &self.selfservice.methods;
        [
            ("totp", m.totp.enabled),
            ("lookup_secret", m.lookup_secret.enabled),
            ("webauthn", m.webauthn.enabled),
            ("passkey", m.passkey.enabled),
            ("oidc", m.oidc.enabled),
            ("saml", m.saml.enabled),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
    }

    /// The warning for a method of [`Self::unimplemented_methods`].
    pub fn unimplemented_method_warning(method: &str) -> String {
        format!(
            "selfservice.methods.{method}.enabled is true, but Portcullis does not implement the {method} method \
             yet: no flow offers it and its credentials cannot be used to sign in"
        )
    }

    /// Kratos keys that are accepted so Kratos configs load unchanged, but have no effect here.
    pub fn ignored_kratos_keys(&self) -> Vec<&'static str> {
        [
            (
                "tracing",
                !self.tracing.provider.is_empty() && !self.tracing.exports(),
            ),
            ("oauth2_provider", self.oauth2_provider.is_some()),
            ("clients", self.clients.is_some()),
            ("database", self.database.is_some()),
            ("organizations", self.organizations.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }

    /// `serve --dev` without registration hooks: adds the `session` hook, so the demo signs people in after
    /// registration as the Kratos quickstart does. Returns whether it did.
    pub fn sign_in_after_registration_by_default(&mut self) -> bool {
        let after = &mut self.selfservice.flows.registration.after;
        if !after.hooks.is_empty() || after.password.is_some() {
            return false;
        }
        after.password = Some(MethodAfter {
            default_browser_return_url: None,
            hooks: vec![Hook {
                hook: "session".into(),
                config: None,
            }],
        });
        true
    }

    /// The DSN (always set after loading).
    pub fn dsn(&self) -> &str {
        self.dsn.as_ref().map(Secret::expose).unwrap_or("memory")
    }
}

/// The identity schema used when none is configured: an e-mail that is the password identifier and the
/// verification and recovery address, plus an optional name.
pub const BUILTIN_SCHEMA: &str = r#"{
  "$id": "https://portcullis.dev/schemas/default.json",
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Person",
  "type": "object",
  "properties": {
    "traits": {
      "type": "object",
      "properties": {
        "email": {
          "type": "string",
          "format": "email",
          "title": "E-Mail",
          "minLength": 3,
          "maxLength": 320,
          "ory.sh/kratos": {
            "credentials": {"password": {"identifier": true}, "code": {"identifier": true, "via": "email"}},
            "verification": {"via": "email"},
            "recovery": {"via": "email"}
          }
        },
        "name": {
          "type": "object",
          "properties": {
            "first": {"type": "string", "title": "First name", "maxLength": 256},
            "last": {"type": "string", "title": "Last name", "maxLength": 256}
          }
        }
      },
      "required": ["email"],
      "additionalProperties": false
    }
  }
}"#;

fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_yaml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Default::default())),
        other => Err(ConfigError::Syntax {
            path: path.display().to_string(),
            reason: format!(
                "the top level must be a mapping of keys, found {}",
                type_name(&other)
            ),
        }),
    }
}

/// Every entry of `list` is a CIDR or an address (so `config check` refuses what `serve` would).
fn check_cidrs(key: &str, list: &[String]) -> Result<(), ConfigError> {
    for (i, c) in list.iter().enumerate() {
        if let Err(e) = c.parse::<rules::cidr::Cidr>() {
            return Err(ConfigError::Key {
                key: format!("{key}.{i}"),
                reason: format!("{c:?} is not a CIDR or an address: {e}"),
            });
        }
    }
    Ok(())
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Deep-merges `over` into `base`: mappings merge key by key, everything else is replaced.
pub(crate) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests;
