//! Environment variables and `--set` overrides, typed by the shape of the default configuration.

use super::ConfigError;
use serde_json::{Map, Value};

/// Every settable key: its dotted path and the default value that tells its type.
fn leaves<'a>(shape: &'a Value, prefix: &mut Vec<&'a str>, out: &mut Vec<(String, &'a Value)>) {
    match shape {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(k);
                leaves(v, prefix, out);
                prefix.pop();
            }
        }
        other => out.push((prefix.join("."), other)),
    }
}

/// Applies environment variables whose name matches a key (`SERVE_ADMIN_PORT` → `serve.admin.port`).
pub(super) fn apply_env(
    tree: &mut Value,
    shape: &Value,
    vars: &[(String, String)],
) -> Result<(), ConfigError> {
    let mut keys = Vec::new();
    leaves(shape, &mut Vec::new(), &mut keys);
    for (path, default) in keys {
        let name = path.replace('.', "_").to_uppercase();
        if let Some((_, raw)) = vars.iter().find(|(k, _)| *k == name) {
            let value = typed(raw, default).map_err(|reason| ConfigError::Key {
                key: format!("{path} (from ${name})"),
                reason,
            })?;
            set(tree, &path, value);
        }
    }
    Ok(())
}

/// Applies one `key.path=value` override. The key must exist.
pub(super) fn apply_override(
    tree: &mut Value,
    shape: &Value,
    key: &str,
    raw: &str,
) -> Result<(), ConfigError> {
    let mut keys = Vec::new();
    leaves(shape, &mut Vec::new(), &mut keys);
    // A known leaf is typed by its default; anything else (inside maps, lists, free-form configs) is parsed as
    // YAML and left to the typed deserializer to judge.
    let value = match keys.iter().find(|(p, _)| p == key) {
        Some((_, default)) => typed(raw, default),
        None => serde_yaml::from_str::<Value>(raw).map_err(|e| e.to_string()),
    }
    .map_err(|reason| ConfigError::Key {
        key: key.to_owned(),
        reason,
    })?;
    set(tree, key, value);
    Ok(())
}

/// Reads `raw` as a value of the same kind as `default`.
fn typed(raw: &str, default: &Value) -> Result<Value, String> {
    let structured =
        || serde_json::from_str::<Value>(raw).map_err(|e| format!("expected JSON: {e}"));
    match default {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            other => Err(format!("expected true or false, found {other:?}")),
        },
        Value::Number(_) => raw
            .trim()
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .map_err(|_| format!("expected a number, found {raw:?}")),
        Value::Array(_) => {
            if raw.trim_start().starts_with('[') {
                structured()
            } else {
                Ok(Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ))
            }
        }
        Value::Object(_) => structured(),
        // Optional keys: structured values, numbers and booleans are recognised, everything else is text.
        Value::Null => {
            let t = raw.trim();
            if t.starts_with('{') || t.starts_with('[') {
                structured()
            } else if let Ok(v @ (Value::Bool(_) | Value::Number(_))) = serde_json::from_str(t) {
                Ok(v)
            } else {
                Ok(Value::String(raw.to_owned()))
            }
        }
    }
}

/// Sets `path` in `tree`, creating mappings on the way.
fn set(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return;
        }
        node = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}
