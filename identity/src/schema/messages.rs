//! Turning jsonschema validation errors into Kratos messages, as Kratos's
//! `ui/container.(*Container).ParseError` and `translateValidationError` do
//! with ory/jsonschema's errors.

use std::collections::HashMap;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::Location;
use jsonschema::ValidationError;
use serde_json::Value;

use super::FieldMessage;
use crate::text::{self, go_quote, UiText};

/// How deep `anyOf`/`oneOf` error contexts are followed.
const MAX_CONTEXT_DEPTH: usize = 16;

/// A JSON pointer's reference tokens, unescaped.
fn pointer_tokens(pointer: &str) -> Vec<String> {
    match pointer.strip_prefix('/') {
        None => Vec::new(),
        Some(rest) => rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    }
}

/// A node-name segment for a property name: Kratos
/// (`jsonschemax.JSONPointerToDotNotation`) escapes dots.
pub(crate) fn node_segment(token: &str) -> String {
    token.replace('.', "\\.")
}

/// The node name for an instance location: `/traits/name/first` →
/// `traits.name.first`, the root → `""`.
pub(crate) fn node_name(location: &Location) -> String {
    pointer_tokens(location.as_str())
        .iter()
        .map(|t| node_segment(t))
        .collect::<Vec<_>>()
        .join(".")
}

fn join_node(parent: &str, segment: &str) -> String {
    if parent.is_empty() {
        segment.to_owned()
    } else {
        format!("{parent}.{segment}")
    }
}

/// Escapes a property name as a JSON pointer token.
fn escape_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The type name Go's ory/jsonschema reports for a value (`jsonType`): numbers
/// are always `number`.
pub(crate) fn go_json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A primitive rendered as Go's `%#v` renders ory/jsonschema's decoded value
/// (numbers are `json.Number`, a string type, so they are quoted too); `None`
/// for arrays and objects.
fn go_sharp_v(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("<nil>".to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(go_quote(&n.to_string())),
        Value::String(s) => Some(go_quote(s)),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A canonical key for JSON equality (object key order ignored, `1 == 1.0`).
fn canonical_key(value: &Value, out: &mut String, depth: usize) {
    if depth > 256 {
        out.push('…');
        return;
    }
    match value {
        Value::Null => out.push('n'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(n) => {
            out.push('#');
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    out.push_str(&text::float_value(f).to_string());
                }
                _ => out.push_str(&n.to_string()),
            }
        }
        Value::String(s) => {
            out.push('"');
            out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical_key(item, out, depth + 1);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for key in keys {
                out.push_str(&go_quote(key));
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical_key(v, out, depth + 1);
                }
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// The first pair of equal items, as ory/jsonschema finds it (smallest second
/// index, then smallest first index).
fn first_equal_pair(items: &[Value]) -> Option<(u64, u64)> {
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut key = String::new();
        canonical_key(item, &mut key, 0);
        if let Some(&j) = seen.get(&key) {
            return Some((u64::try_from(j).ok()?, u64::try_from(i).ok()?));
        }
        seen.insert(key, i);
    }
    None
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The allowed types of a `type` error, in the schema's own order when the
/// keyword can be found at the error's schema location.
fn allowed_types(kind: &TypeKind, schema: &Value, schema_path: &Location) -> Vec<String> {
    match schema.pointer(schema_path.as_str()) {
        Some(Value::String(t)) => return vec![t.clone()],
        Some(Value::Array(ts)) if !ts.is_empty() && ts.iter().all(Value::is_string) => {
            return ts
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        }
        _ => {}
    }
    match kind {
        TypeKind::Single(t) => vec![t.as_str().to_owned()],
        TypeKind::Multiple(set) => set.iter().map(|t| t.as_str().to_owned()).collect(),
    }
}

fn numeric(
    instance: &Value,
    limit: &Value,
    build: fn(f64, f64) -> UiText,
    fallback: &ValidationError<'_>,
) -> UiText {
    match (limit.as_f64(), instance.as_f64()) {
        (Some(limit), Some(actual)) => build(limit, actual),
        _ => text::validation_generic(&fallback.to_string()),
    }
}

/// Appends the Kratos messages for one jsonschema error to `out`.
pub(crate) fn push_messages(
    err: &ValidationError<'_>,
    schema: &Value,
    out: &mut Vec<FieldMessage>,
    depth: usize,
) {
    let node = node_name(err.instance_path());
    let instance: &Value = err.instance();
    let message = match err.kind() {
        ValidationErrorKind::Required { property } => {
            let name = match property {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Kratos names the property by the last token of its (escaped)
            // JSON pointer and the node by the unescaped, dotted path.
            out.push(FieldMessage {
                node: join_node(&node, &node_segment(&name)),
                message: text::validation_required(&escape_token(&name)),
            });
            return;
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            if depth < MAX_CONTEXT_DEPTH && context.iter().any(|branch| !branch.is_empty()) {
                for branch in context {
                    for cause in branch {
                        push_messages(cause, schema, out, depth + 1);
                    }
                }
                return;
            }
            text::validation_generic(&err.to_string())
        }
        ValidationErrorKind::MinLength { limit } => text::validation_min_length(
            *limit,
            to_u64(instance.as_str().map_or(0, |s| s.chars().count())),
        ),
        ValidationErrorKind::MaxLength { limit } => text::validation_max_length(
            *limit,
            to_u64(instance.as_str().map_or(0, |s| s.chars().count())),
        ),
        ValidationErrorKind::Pattern { pattern } => text::validation_invalid_format(pattern),
        ValidationErrorKind::Minimum { limit } => {
            numeric(instance, limit, text::validation_minimum, err)
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            numeric(instance, limit, text::validation_exclusive_minimum, err)
        }
        ValidationErrorKind::Maximum { limit } => {
            numeric(instance, limit, text::validation_maximum, err)
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            numeric(instance, limit, text::validation_exclusive_maximum, err)
        }
        ValidationErrorKind::MultipleOf { multiple_of } => match instance.as_f64() {
            Some(actual) => text::validation_multiple_of(*multiple_of, actual),
            None => text::validation_generic(&err.to_string()),
        },
        ValidationErrorKind::MaxItems { limit } => {
            text::validation_max_items(*limit, to_u64(instance.as_array().map_or(0, Vec::len)))
        }
        ValidationErrorKind::MinItems { limit } => {
            text::validation_min_items(*limit, to_u64(instance.as_array().map_or(0, Vec::len)))
        }
        ValidationErrorKind::UniqueItems => {
            match instance
                .as_array()
                .and_then(|items| first_equal_pair(items))
            {
                Some((a, b)) => text::validation_unique_items(a, b),
                None => text::validation_generic(&err.to_string()),
            }
        }
        ValidationErrorKind::Type { kind } => text::validation_wrong_type(
            &allowed_types(kind, schema, err.schema_path()),
            go_json_type(instance),
        ),
        ValidationErrorKind::Constant { expected_value } => match go_sharp_v(expected_value) {
            Some(expected) => text::validation_const(&expected),
            None => text::validation_const_generic(),
        },
        ValidationErrorKind::Enum { options } => {
            let rendered: Option<Vec<String>> = match &**options {
                Value::Array(items) => items.iter().map(go_sharp_v).collect(),
                _ => None,
            };
            let reason = match rendered {
                Some(items) if items.len() == 1 => {
                    format!("value must be {}", items.join(""))
                }
                Some(items) if !items.is_empty() => {
                    format!("value must be one of {}", items.join(", "))
                }
                _ => "enum failed".to_owned(),
            };
            text::validation_generic(&reason)
        }
        ValidationErrorKind::Format { format } => {
            let value = match instance {
                Value::String(s) => go_quote(s),
                other => other.to_string(),
            };
            text::validation_generic(&format!("{value} is not valid {}", go_quote(format)))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let names: Vec<String> = unexpected.iter().map(|n| go_quote(n)).collect();
            text::validation_generic(&format!(
                "additionalProperties {} not allowed",
                names.join(", ")
            ))
        }
        ValidationErrorKind::MinProperties { limit } => text::validation_generic(&format!(
            "minimum {limit} properties allowed, but found {} properties",
            instance.as_object().map_or(0, serde_json::Map::len)
        )),
        ValidationErrorKind::MaxProperties { limit } => text::validation_generic(&format!(
            "maximum {limit} properties allowed, but found {} properties",
            instance.as_object().map_or(0, serde_json::Map::len)
        )),
        ValidationErrorKind::AdditionalItems { limit } => text::validation_generic(&format!(
            "only {limit} items are allowed, but found {} items",
            instance.as_array().map_or(0, Vec::len)
        )),
        ValidationErrorKind::Contains => text::validation_generic("contains failed"),
        ValidationErrorKind::Not { .. } => text::validation_generic("not failed"),
        ValidationErrorKind::FalseSchema => text::validation_generic("always fail"),
        ValidationErrorKind::ContentEncoding { content_encoding } => {
            let value = instance
                .as_str()
                .map_or_else(|| instance.to_string(), go_quote);
            text::validation_generic(&format!("{value} is not {content_encoding} encoded"))
        }
        ValidationErrorKind::ContentMediaType { content_media_type } => text::validation_generic(
            &format!("value is not of mediatype {}", go_quote(content_media_type)),
        ),
        _ => text::validation_generic(&err.to_string()),
    };
    out.push(FieldMessage { node, message });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unique_pairs() {
        assert_eq!(first_equal_pair(&[json!(1), json!(2), json!(3)]), None);
        assert_eq!(
            first_equal_pair(&[json!(1), json!(2), json!(1.0), json!(2)]),
            Some((0, 2))
        );
        assert_eq!(
            first_equal_pair(&[json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})]),
            Some((0, 1))
        );
        assert_eq!(first_equal_pair(&[json!("1"), json!(1)]), None);
    }

    #[test]
    fn sharp_v() {
        assert_eq!(go_sharp_v(&json!("a")).as_deref(), Some("\"a\""));
        assert_eq!(go_sharp_v(&json!(5)).as_deref(), Some("\"5\""));
        assert_eq!(go_sharp_v(&json!(true)).as_deref(), Some("true"));
        assert_eq!(go_sharp_v(&json!(null)).as_deref(), Some("<nil>"));
        assert_eq!(go_sharp_v(&json!([1])), None);
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer_tokens(""), Vec::<String>::new());
        assert_eq!(pointer_tokens("/a~1b/c~0d/0"), vec!["a/b", "c~d", "0"]);
        assert_eq!(node_segment("a.b"), "a\\.b");
        assert_eq!(escape_token("a/b~"), "a~1b~0");
    }
}
