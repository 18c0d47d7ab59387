//! Claims mapper: a JSON template standing in for Kratos' Jsonnet claims mapper.
//!
//! The mapper document is a JSON object with a `claims` object, mirroring the `{claims: {...}}`
//! value a Kratos Jsonnet mapper evaluates to:
//!
//! ```json
//! { "claims": { "email": "{{ session.identity.traits.email }}", "aud": ["my-api"] } }
//! ```
//!
//! A string value that is exactly a placeholder `{{ <path> }}` is replaced by the JSON value at
//! that path, whatever its type. A path starts at `session` (the session JSON, Kratos'
//! `std.extVar('session')`) or `claims` (the default claims, Kratos' `std.extVar('claims')`)
//! and continues with dot-separated object keys or array indexes
//! (`session.identity.verifiable_addresses.0.value`). A path that does not exist yields `null`;
//! a path that tries to step into a string, number or boolean is a mapper error (as indexing
//! one is in Jsonnet). Every other value, object keys included, is copied literally.

use serde_json::{Map, Value};

/// A validated claims template.
#[derive(Debug, Clone)]
pub(super) struct Mapper {
    claims: Map<String, Value>,
}

impl Mapper {
    /// Parses and validates a mapper document.
    pub(super) fn parse(document: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(document).map_err(|e| {
            format!("the claims mapper is not valid JSON (only JSON templates are supported, not Jsonnet): {e}")
        })?;
        let Value::Object(mut doc) = doc else {
            return Err(
                "the claims mapper must be a JSON object with a \"claims\" object".to_owned(),
            );
        };
        let Some(Value::Object(claims)) = doc.remove("claims") else {
            return Err("the claims mapper must have a \"claims\" object".to_owned());
        };
        validate(&Value::Object(claims.clone()), "claims")?;
        Ok(Self { claims })
    }

    /// Renders the template against the session JSON and the default claims.
    pub(super) fn render(
        &self,
        session: &Value,
        claims: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let claims = Value::Object(claims.clone());
        let roots = Roots {
            session,
            claims: &claims,
        };
        self.claims
            .iter()
            .map(|(key, value)| Ok((key.clone(), render(value, &roots)?)))
            .collect()
    }
}

struct Roots<'a> {
    session: &'a Value,
    claims: &'a Value,
}

/// The path inside a `{{ ... }}` placeholder, if `s` is one.
fn placeholder(s: &str) -> Option<&str> {
    s.strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .map(str::trim)
}

/// Checks every placeholder of the template; `at` locates the value for error messages.
fn validate(value: &Value, at: &str) -> Result<(), String> {
    match value {
        Value::String(s) => match placeholder(s) {
            Some(path) => parse_path(path)
                .map(|_| ())
                .map_err(|e| format!("{at}: invalid placeholder {s:?}: {e}")),
            None => Ok(()),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| validate(item, &format!("{at}[{i}]"))),
        Value::Object(obj) => obj
            .iter()
            .try_for_each(|(key, item)| validate(item, &format!("{at}.{key}"))),
        _ => Ok(()),
    }
}

enum Root {
    Session,
    Claims,
}

fn parse_path(path: &str) -> Result<(Root, Vec<&str>), String> {
    let mut segments = path.split('.');
    let root = match segments.next().map(str::trim) {
        Some("session") => Root::Session,
        Some("claims") => Root::Claims,
        _ => return Err("the path must start with \"session\" or \"claims\"".to_owned()),
    };
    let rest: Vec<&str> = segments.map(str::trim).collect();
    if rest.iter().any(|s| s.is_empty()) {
        return Err("the path has an empty segment".to_owned());
    }
    Ok((root, rest))
}

fn render(value: &Value, roots: &Roots<'_>) -> Result<Value, String> {
    match value {
        Value::String(s) => match placeholder(s) {
            Some(path) => lookup(path, roots),
            None => Ok(value.clone()),
        },
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, roots))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(obj) => obj
            .iter()
            .map(|(key, item)| Ok((key.clone(), render(item, roots)?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        _ => Ok(value.clone()),
    }
}

fn lookup(path: &str, roots: &Roots<'_>) -> Result<Value, String> {
    let (root, segments) = parse_path(path)?;
    let mut current: &Value = match root {
        Root::Session => roots.session,
        Root::Claims => roots.claims,
    };
    for (depth, segment) in segments.iter().enumerate() {
        let next = match current {
            Value::Object(obj) => obj.get(*segment),
            Value::Array(items) => match segment.parse::<usize>() {
                Ok(index) => items.get(index),
                Err(_) => {
                    return Err(format!(
                        "{path:?}: {:?} is an array, it cannot be indexed by {segment:?}",
                        prefix(path, depth)
                    ))
                }
            },
            Value::Null => None,
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                return Err(format!(
                    "{path:?}: {:?} is a {}, it has no field {segment:?}",
                    prefix(path, depth),
                    type_name(current)
                ))
            }
        };
        match next {
            Some(next) => current = next,
            None => return Ok(Value::Null),
        }
    }
    Ok(current.clone())
}

/// The first `depth + 1` segments of `path` (root included).
fn prefix(path: &str, depth: usize) -> String {
    path.split('.')
        .take(depth + 1)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(".")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
