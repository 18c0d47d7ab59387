//! Decoding `application/x-www-form-urlencoded` submissions into the JSON a
//! JSON client would have sent (Kratos `decoderx` form decoding).
//!
//! Dotted names become nested objects (`traits.name.first` →
//! `{"traits": {"name": {"first": …}}}`) and values are coerced to the type
//! the identity schema declares for that name:
//!
//! | schema type | value taken | coercion |
//! |---|---|---|
//! | `string` | first | an empty value leaves the key out (so a required field reports "missing", as in Kratos) |
//! | `number`, `integer` | first | parsed as a number (`18`, `1.5`, `1e3`); an empty value leaves the key out, or gives `0` when the property is required (Kratos); an unparsable one stays a string for validation to reject |
//! | `boolean` | **last** (Kratos renders a hidden `false` before the checkbox's `true`) | `true`/`on`/`1`/`t` → `true`, `false`/`off`/`0`/`f`/`""` → `false` (any case); anything else stays a string |
//! | array of strings / numbers / booleans / anything | all, in order | each item as above (empty items kept) |
//! | `object` | first | the value parsed as JSON, else kept as a string; an empty value leaves the key out unless required |
//! | not in the schema (`password`, `method`, `csrf_token`, …) | first | kept as a string, even when empty |
//!
//! Every `object` path of the schema that received no value is filled with
//! `{}` afterwards (so a form without any `traits.*` field still yields
//! `"traits": {}`), unless something else already sits in its way.
//!
//! Conflicting names (`a=1&a.b=2`) never fail: names are applied in the
//! order they first appear and a later name replaces whatever is in its way,
//! so `a=1&a.b=2` gives `{"a": {"b": "2"}}` and `a.b=2&a=1` gives
//! `{"a": "1"}`.

use std::collections::HashMap;

use identity::schema::IdentitySchema;
use serde_json::{Map, Number, Value};

use super::schema_paths::{list_paths, PathKind, SchemaPath};

/// Names with more dot-separated segments than this are refused.
pub const MAX_FORM_DEPTH: usize = 32;

/// Forms with more fields (name/value pairs) than this are refused.
pub const MAX_FORM_FIELDS: usize = 1000;

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A name has too many segments.
    #[error("the form field name \"{key}\" is nested more than {max} levels deep")]
    TooDeep {
        /// The name (truncated to 100 characters).
        key: String,
        /// The limit.
        max: usize,
    },
    /// Too many fields.
    #[error("the form has more than {max} fields")]
    TooManyFields {
        /// The limit.
        max: usize,
    },
}

/// Decodes form pairs (in the order received) into a JSON object, coercing
/// values to the identity schema's types (see the module docs).
///
/// # Errors
///
/// [`FormError::TooManyFields`] beyond [`MAX_FORM_FIELDS`] pairs,
/// [`FormError::TooDeep`] for a name with more than [`MAX_FORM_DEPTH`]
/// segments.
pub fn decode_form(
    pairs: &[(String, String)],
    schema: Option<&IdentitySchema>,
) -> Result<Value, FormError> {
    decode_form_with_schema_json(pairs, schema.map(IdentitySchema::raw))
}

/// [`decode_form`] with a raw schema document.
///
/// # Errors
///
/// As [`decode_form`].
pub fn decode_form_with_schema_json(
    pairs: &[(String, String)],
    schema: Option<&Value>,
) -> Result<Value, FormError> {
    if pairs.len() > MAX_FORM_FIELDS {
        return Err(FormError::TooManyFields {
            max: MAX_FORM_FIELDS,
        });
    }
    // Group values by name, names in order of first appearance.
    let mut order: Vec<&str> = Vec::new();
    let mut values: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, value) in pairs {
        if key.split('.').count() > MAX_FORM_DEPTH {
            return Err(FormError::TooDeep {
                key: key.chars().take(100).collect(),
                max: MAX_FORM_DEPTH,
            });
        }
        values
            .entry(key.as_str())
            .or_insert_with(|| {
                order.push(key.as_str());
                Vec::new()
            })
            .push(value.as_str());
    }

    let paths: Vec<SchemaPath> = schema.map(list_paths).unwrap_or_default();
    let by_name: HashMap<&str, &SchemaPath> = paths.iter().map(|p| (p.name.as_str(), p)).collect();

    let mut root = Map::new();
    for key in order {
        let Some(vals) = values.get(key) else {
            continue;
        };
        if let Some(value) = coerce(by_name.get(key).copied(), vals) {
            set_path(&mut root, key, value);
        }
    }
    for path in paths.iter().filter(|p| p.kind == PathKind::Object) {
        fill_object(&mut root, &path.name);
    }
    Ok(Value::Object(root))
}

/// The value for one name, or `None` to leave it out.
fn coerce(path: Option<&SchemaPath>, values: &[&str]) -> Option<Value> {
    let first = values.first().copied().unwrap_or_default();
    let last = values.last().copied().unwrap_or_default();
    let Some(path) = path else {
        return Some(Value::from(first));
    };
    match path.kind {
        PathKind::String => (!first.is_empty()).then(|| Value::from(first)),
        PathKind::Number | PathKind::Integer => {
            if first.is_empty() {
                path.required.then(|| Value::from(0))
            } else {
                Some(parse_number(first).unwrap_or_else(|| Value::from(first)))
            }
        }
        PathKind::Boolean => Some(parse_bool(last).map_or_else(|| Value::from(last), Value::Bool)),
        PathKind::StringArray | PathKind::AnyArray | PathKind::JsonArray => Some(Value::Array(
            values.iter().map(|v| Value::from(*v)).collect(),
        )),
        PathKind::NumberArray => Some(Value::Array(
            values
                .iter()
                .map(|v| parse_number(v).unwrap_or_else(|| Value::from(*v)))
                .collect(),
        )),
        PathKind::BooleanArray => Some(Value::Array(
            values
                .iter()
                .map(|v| parse_bool(v).map_or_else(|| Value::from(*v), Value::Bool))
                .collect(),
        )),
        PathKind::Object => {
            if first.is_empty() && !path.required {
                None
            } else {
                Some(serde_json::from_str(first).unwrap_or_else(|_| Value::from(first)))
            }
        }
        PathKind::Json | PathKind::Null | PathKind::Untyped => Some(Value::from(first)),
    }
}

/// A finite number, as an integer when it is one.
pub(crate) fn parse_number(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Value::from(u));
    }
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // Integral and in range: the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::from(f as i64));
    }
    Number::from_f64(f).map(Value::Number)
}

/// A checkbox or boolean field's value.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "on" | "1" => Some(true),
        "false" | "f" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Sets `value` at a dotted name, replacing anything in the way.
fn set_path(root: &mut Map<String, Value>, key: &str, value: Value) {
    let mut segments: Vec<&str> = key.split('.').collect();
    let Some(last) = segments.pop() else {
        return;
    };
    let mut current = root;
    for segment in segments {
        let slot = current
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return;
        };
        current = next;
    }
    current.insert(last.to_owned(), value);
}

/// Puts `{}` at a dotted name when nothing is there, creating missing
/// parents but never replacing a value.
fn fill_object(root: &mut Map<String, Value>, key: &str) {
    let mut current = root;
    for segment in key.split('.') {
        let slot = current
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(next) = slot else {
            return;
        };
        current = next;
    }
}
