//! The leaf paths of a JSON schema, as Kratos' `jsonschemax.ListPaths` lists
//! them: used to build form nodes from an identity schema, to find the
//! identifier label and to coerce form values.
//!
//! Only schema-local `$ref`s (`#`, `#/json/pointer`) are followed; a
//! reference cycle ends that branch (Kratos refuses such schemas).

use std::collections::HashMap;

use serde_json::{Map, Value};

/// References are followed at most this deep (per branch).
const MAX_DEPTH: usize = 64;

/// At most this many paths are collected (a schema with thousands of
/// properties is not a login form).
const MAX_PATHS: usize = 10_000;

/// At most this many subschemas are visited (references can make a small
/// schema exponentially large).
const MAX_VISITS: usize = 100_000;

/// The value type of a path (Kratos' prototype `Type` plus `TypeHint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// `"type": "string"` or a string `const`.
    String,
    /// `"type": "number"` or a numeric `const`.
    Number,
    /// `"type": "integer"`.
    Integer,
    /// `"type": "boolean"` or a boolean `const`.
    Boolean,
    /// An array whose items are all strings.
    StringArray,
    /// An array whose items are all numbers or all integers.
    NumberArray,
    /// An array whose items are all booleans.
    BooleanArray,
    /// An array without (or with mixed) item types.
    AnyArray,
    /// An array of objects or arrays.
    JsonArray,
    /// `"type": "object"`.
    Object,
    /// Anything else Kratos treats as opaque JSON (a `null`, object or array
    /// `const`, or more than two types).
    Json,
    /// `"type": "null"`.
    Null,
    /// No usable type (none, two types or an unknown one).
    Untyped,
}

impl PathKind {
    /// Whether Kratos has a non-nil prototype for this kind (a path without
    /// one is listed only when it has a default).
    fn has_prototype(self) -> bool {
        !matches!(self, PathKind::Json | PathKind::Null | PathKind::Untyped)
    }

    /// Whether Kratos' type hint is `JSON` (no form node is made for it).
    pub fn is_json(self) -> bool {
        matches!(
            self,
            PathKind::JsonArray | PathKind::Object | PathKind::Json
        )
    }
}

/// One path of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaPath {
    /// The dotted name from the schema root, e.g. `traits.name.first`.
    pub name: String,
    /// The value type.
    pub kind: PathKind,
    /// `format`, when set.
    pub format: Option<String>,
    /// `pattern`, when set.
    pub pattern: Option<String>,
    /// `maxLength`, when set.
    pub max_length: Option<u64>,
    /// `title`, when set and not empty.
    pub title: Option<String>,
    /// Whether the parent schema lists this property in `required`.
    pub required: bool,
    /// Whether a non-null `default` is set.
    pub has_default: bool,
    /// The `ory.sh/kratos` extension block of this (sub)schema.
    pub extension: Option<Map<String, Value>>,
}

impl SchemaPath {
    fn ext_flag(&self, section: &str, key: &str) -> bool {
        self.extension
            .as_ref()
            .and_then(|ext| ext.get("credentials"))
            .and_then(|c| c.get(section))
            .and_then(|s| s.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether the extension marks this path as a login identifier of any
    /// kind (password, webauthn or code identifier, passkey display name or
    /// TOTP account name), as Kratos' `GetIdentifierLabelFromSchema` checks.
    pub fn is_identifier(&self) -> bool {
        self.ext_flag("password", "identifier")
            || self.ext_flag("webauthn", "identifier")
            || self.ext_flag("passkey", "display_name")
            || self.ext_flag("totp", "account_name")
            || self.ext_flag("code", "identifier")
    }

    /// Whether `"ory.sh/kratos": {"disabled": true}` is set.
    pub fn is_disabled(&self) -> bool {
        self.extension
            .as_ref()
            .and_then(|ext| ext.get("disabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Resolves a schema-local reference (`#` or `#/a/b`, JSON pointer escapes
/// and percent-encoding understood).
fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    if !pointer.starts_with('/') {
        return None;
    }
    let mut current = root;
    for raw in pointer.split('/').skip(1) {
        let decoded = percent_decode(raw)?;
        let token = decoded.replace("~1", "/").replace("~0", "~");
        current = match current {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'%') {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(*bytes.get(i)?);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `type` keyword as a list.
fn types_of(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

struct Walker<'a> {
    root: &'a Value,
    out: Vec<SchemaPath>,
    visits: usize,
}

impl<'a> Walker<'a> {
    fn kind_of(&self, schema: &Map<String, Value>) -> PathKind {
        if let Some(constant) = schema.get("const") {
            return match constant {
                Value::Number(_) => PathKind::Number,
                Value::String(_) => PathKind::String,
                Value::Bool(_) => PathKind::Boolean,
                _ => PathKind::Json,
            };
        }
        let types = types_of(schema);
        match types.len() {
            1 => match types.first().copied() {
                Some("null") => PathKind::Null,
                Some("boolean") => PathKind::Boolean,
                Some("number") => PathKind::Number,
                Some("integer") => PathKind::Integer,
                Some("string") => PathKind::String,
                Some("array") => self.array_kind(schema),
                Some("object") => PathKind::Object,
                _ => PathKind::Untyped,
            },
            0 | 2 => PathKind::Untyped,
            _ => PathKind::Json,
        }
    }

    fn array_kind(&self, schema: &Map<String, Value>) -> PathKind {
        let item_schemas: Vec<&Value> = match schema.get("items") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => return PathKind::AnyArray,
        };
        let mut types: Vec<&str> = Vec::new();
        for item in item_schemas {
            let Some(item) = item.as_object() else {
                continue;
            };
            types.extend(types_of(item));
            if let Some(target) = item
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| resolve_ref(self.root, r))
                .and_then(Value::as_object)
            {
                types.extend(types_of(target));
            }
        }
        // Go's `slices.Compact` drops consecutive duplicates only.
        types.dedup();
        match types.as_slice() {
            ["boolean"] => PathKind::BooleanArray,
            ["number"] | ["integer"] => PathKind::NumberArray,
            ["string"] => PathKind::StringArray,
            [_] => PathKind::JsonArray,
            _ => PathKind::AnyArray,
        }
    }

    fn walk(
        &mut self,
        schema: &'a Value,
        parent: Option<&'a Map<String, Value>>,
        parents: &mut Vec<String>,
        refs: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH || self.out.len() >= MAX_PATHS || self.visits >= MAX_VISITS {
            return;
        }
        self.visits += 1;
        let Some(map) = schema.as_object() else {
            return;
        };
        let kind = self.kind_of(map);
        let has_default = map.get("default").is_some_and(|d| !d.is_null());
        if let (Some(last), true) = (parents.last(), kind.has_prototype() || has_default) {
            let required = parent
                .and_then(|p| p.get("required"))
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|n| n.as_str() == Some(last.as_str())));
            self.out.push(SchemaPath {
                name: parents.join("."),
                kind,
                format: map.get("format").and_then(Value::as_str).map(str::to_owned),
                pattern: map
                    .get("pattern")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                max_length: map.get("maxLength").and_then(Value::as_u64),
                title: map
                    .get("title")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
                required,
                has_default,
                extension: map.get("ory.sh/kratos").and_then(Value::as_object).cloned(),
            });
        }

        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            if !refs.iter().any(|r| r == reference) {
                if let Some(target) = resolve_ref(self.root, reference) {
                    refs.push(reference.to_owned());
                    self.walk(target, Some(map), parents, refs, depth + 1);
                    refs.pop();
                }
            }
        }
        for keyword in ["not", "if", "then", "else"] {
            if let Some(sub) = map.get(keyword) {
                self.walk(sub, Some(map), parents, refs, depth + 1);
            }
        }
        for keyword in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(subs)) = map.get(keyword) {
                for sub in subs {
                    self.walk(sub, Some(map), parents, refs, depth + 1);
                }
            }
        }
        if let Some(Value::Object(properties)) = map.get("properties") {
            for (name, sub) in properties {
                parents.push(name.clone());
                self.walk(sub, Some(map), parents, refs, depth + 1);
                parents.pop();
            }
        }
    }
}

/// Lists the paths of a schema, sorted by name and deduplicated (a later
/// duplicate replaces an earlier one only when that has no default), as
/// Kratos' `jsonschemax.ListPaths` does.
pub fn list_paths(schema: &Value) -> Vec<SchemaPath> {
    let mut walker = Walker {
        root: schema,
        out: Vec::new(),
        visits: 0,
    };
    walker.walk(schema, None, &mut Vec::new(), &mut Vec::new(), 0);
    let mut unique: Vec<SchemaPath> = Vec::with_capacity(walker.out.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for path in walker.out {
        match index.get(&path.name).and_then(|&i| unique.get_mut(i)) {
            Some(existing) => {
                if !existing.has_default {
                    *existing = path;
                }
            }
            None => {
                index.insert(path.name.clone(), unique.len());
                unique.push(path);
            }
        }
    }
    unique.sort_by(|a, b| a.name.cmp(&b.name));
    unique
}

/// The schema's keys in document order, as Kratos' `GetKeysInOrder` lists
/// them for sorting nodes: object properties are descended into (names with
/// dots escaped as `\.`), anything else is a key.
pub fn keys_in_order(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<(&Value, Vec<String>)> = vec![(schema, Vec::new())];
    // Depth-first in document order without recursion: push children
    // reversed.
    while let Some((value, parents)) = stack.pop() {
        if out.len() >= MAX_PATHS || parents.len() > MAX_DEPTH {
            break;
        }
        if value.get("type").and_then(Value::as_str) == Some("object") {
            if let Some(Value::Object(props)) = value.get("properties") {
                for (key, sub) in props.iter().rev() {
                    let mut next = parents.clone();
                    next.push(key.replace('.', "\\."));
                    stack.push((sub, next));
                }
            }
        } else {
            out.push(parents.join("."));
        }
    }
    out
}
