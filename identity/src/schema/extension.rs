//! The `ory.sh/kratos` schema extension: collects identifiers and addresses
//! from a traits document by walking the schema alongside the data, as
//! Kratos's extension runners (`identity/extension_credentials.go`,
//! `extension_verification.go`, `extension_recovery.go`, the TOTP account
//! name extension) do while validating.

use std::collections::HashSet;
use std::hash::Hash;

use serde_json::{Map, Value};

use super::formats::{is_email, is_tel, normalize_phone};
use super::messages::node_segment;
use super::{Address, FieldMessage, TraitsInfo, MAX_MESSAGES};
use crate::text::{self, go_quote};

/// The key of the extension in a (sub)schema.
pub(crate) const EXTENSION_KEY: &str = "ory.sh/kratos";

/// Schema hops (`$ref`, `allOf`, `properties`, `items`, …) followed from the root.
const MAX_WALK_DEPTH: usize = 512;
/// Subschema visits per document.
const MAX_STEPS: usize = 1_000_000;

pub(crate) struct Collector<'s> {
    root: &'s Value,
    /// Draft 4/6/7: a `$ref` makes its sibling keywords ignored.
    ref_overrides_siblings: bool,
    steps: usize,
    exhausted: bool,
    /// (schema, data) pairs on the walk's stack, to cut `$ref` cycles that
    /// make no progress in the data.
    active: HashSet<(usize, usize)>,
    password: Unique<String>,
    webauthn: Unique<String>,
    /// (address, channel)
    code: Unique<(String, String)>,
    verifiable: Unique<Address>,
    recovery: Unique<Address>,
    totp: Option<String>,
    pub(crate) errors: Vec<FieldMessage>,
}

/// A list without duplicates, in insertion order.
struct Unique<T> {
    items: Vec<T>,
    seen: HashSet<T>,
}

impl<T: Clone + Eq + Hash> Unique<T> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn push(&mut self, item: T) {
        if self.seen.insert(item.clone()) {
            self.items.push(item);
        }
    }
}

/// Decodes `%XX` escapes in a URI fragment.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes.get(i).copied().unwrap_or_default();
        if byte == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(decoded) = hex {
                out.push(decoded);
                i += 3;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text of a trait value an extension applies to (Go's `%s` of a string
/// or a `json.Number`); other types contribute nothing.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_type(name: &str, data: &Value) -> bool {
    match name {
        "null" => data.is_null(),
        "boolean" => data.is_boolean(),
        "string" => data.is_string(),
        "array" => data.is_array(),
        "object" => data.is_object(),
        "number" => data.is_number(),
        "integer" => match data {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => true,
    }
}

/// Whether `data` satisfies a `type` keyword (absent or malformed: yes).
fn type_matches(kind: Option<&Value>, data: &Value) -> bool {
    match kind {
        Some(Value::String(name)) => is_type(name, data),
        Some(Value::Array(names)) if !names.is_empty() => names
            .iter()
            .any(|n| n.as_str().is_none_or(|name| is_type(name, data))),
        _ => true,
    }
}

/// Password/WebAuthn/code identifiers as Kratos stores them
/// (`NormalizeIdentifier`: lower-cased and trimmed).
fn lower_trim(value: &str) -> String {
    value.trim().to_lowercase()
}

impl<'s> Collector<'s> {
    pub(crate) fn new(root: &'s Value, ref_overrides_siblings: bool) -> Self {
        Self {
            root,
            ref_overrides_siblings,
            steps: 0,
            exhausted: false,
            active: HashSet::new(),
            password: Unique::new(),
            webauthn: Unique::new(),
            code: Unique::new(),
            verifiable: Unique::new(),
            recovery: Unique::new(),
            totp: None,
            errors: Vec::new(),
        }
    }

    fn resolve_ref(&self, reference: &str) -> Option<&'s Value> {
        let fragment = reference.strip_prefix('#')?;
        if fragment.is_empty() {
            return Some(self.root);
        }
        if !fragment.starts_with('/') {
            // Anchors are not supported.
            return None;
        }
        self.root.pointer(&percent_decode(fragment))
    }

    /// Walks `schema` alongside `data` (found at node `path`).
    pub(crate) fn walk(
        &mut self,
        schema: &'s Value,
        data: &Value,
        path: &mut Vec<String>,
        depth: usize,
    ) {
        if self.exhausted {
            return;
        }
        let key = (
            std::ptr::from_ref(schema) as usize,
            std::ptr::from_ref(data) as usize,
        );
        if !self.active.insert(key) {
            // The same subschema again on the same value: a `$ref` cycle.
            return;
        }
        self.walk_inner(schema, data, path, depth);
        self.active.remove(&key);
    }

    fn walk_inner(
        &mut self,
        schema: &'s Value,
        data: &Value,
        path: &mut Vec<String>,
        depth: usize,
    ) {
        self.steps += 1;
        if depth > MAX_WALK_DEPTH || self.steps > MAX_STEPS {
            self.exhausted = true;
            self.errors.push(FieldMessage {
                node: String::new(),
                message: text::validation_generic(
                    "the identity schema is too deeply nested or recursive to evaluate these traits",
                ),
            });
            return;
        }
        let Some(obj) = schema.as_object() else {
            return;
        };

        if let Some(target) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve_ref(r))
        {
            self.walk(target, data, path, depth + 1);
            if self.ref_overrides_siblings {
                return;
            }
        } else if self.ref_overrides_siblings && obj.contains_key("$ref") {
            return;
        }

        // ory/jsonschema stops at a `type` mismatch, before running extensions.
        if !type_matches(obj.get("type"), data) {
            return;
        }

        if let Some(Value::Object(config)) = obj.get(EXTENSION_KEY) {
            self.apply(config, obj, data, path);
        }

        if let Some(Value::Array(all)) = obj.get("allOf") {
            for sub in all {
                self.walk(sub, data, path, depth + 1);
            }
        }

        match data {
            Value::Object(fields) => {
                if let Some(Value::Object(props)) = obj.get("properties") {
                    for (name, sub) in props {
                        if let Some(value) = fields.get(name) {
                            path.push(node_segment(name));
                            self.walk(sub, value, path, depth + 1);
                            path.pop();
                        }
                    }
                }
            }
            Value::Array(items) => self.walk_items(obj, items, path, depth),
            _ => {}
        }
    }

    fn walk_items(
        &mut self,
        obj: &'s Map<String, Value>,
        items: &[Value],
        path: &mut Vec<String>,
        depth: usize,
    ) {
        // Positional schemas: `prefixItems` (2020-12) or an `items` array
        // (earlier drafts); the rest follows `items` (2020-12) or
        // `additionalItems`.
        let (positional, rest): (&[Value], Option<&'s Value>) =
            match (obj.get("prefixItems"), obj.get("items")) {
                (Some(Value::Array(prefix)), items) => (prefix.as_slice(), items),
                (_, Some(Value::Array(tuple))) => (tuple.as_slice(), obj.get("additionalItems")),
                (_, items) => (&[], items),
            };
        for (index, item) in items.iter().enumerate() {
            let sub = positional.get(index).or(rest);
            if let Some(sub) = sub {
                path.push(index.to_string());
                self.walk(sub, item, path, depth + 1);
                path.pop();
            }
            if self.exhausted {
                return;
            }
        }
    }

    fn error(&mut self, path: &[String], reason: &str) {
        if self.errors.len() >= MAX_MESSAGES {
            return;
        }
        self.errors.push(FieldMessage {
            node: path.join("."),
            message: text::validation_generic(reason),
        });
    }

    fn apply(
        &mut self,
        config: &Map<String, Value>,
        schema: &Map<String, Value>,
        data: &Value,
        path: &[String],
    ) {
        // The extension on an array property applies to each of its items.
        let values: Vec<String> = match data {
            Value::Array(items) => items.iter().filter_map(value_text).collect(),
            other => value_text(other).into_iter().collect(),
        };
        if values.is_empty() {
            return;
        }
        let section = |name: &str| config.get(name).and_then(Value::as_object);
        let flag = |obj: Option<&Map<String, Value>>, key: &str| {
            obj.and_then(|o| o.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let via_of = |obj: Option<&Map<String, Value>>| {
            obj.and_then(|o| o.get("via"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let credentials = section("credentials");
        let credential = |name: &str| {
            credentials
                .and_then(|c| c.get(name))
                .and_then(Value::as_object)
        };

        let password = flag(credential("password"), "identifier");
        let webauthn = flag(credential("webauthn"), "identifier");
        let totp = flag(credential("totp"), "account_name");
        let code = flag(credential("code"), "identifier");
        let code_via = via_of(credential("code"));
        let verification_via = via_of(section("verification"));
        let recovery_via = via_of(section("recovery"));
        let format = match schema.get("format") {
            None => Some(String::new()),
            Some(Value::String(f)) => Some(f.clone()),
            // Kratos skips verification when `format` is not a string.
            Some(_) => None,
        };

        for value in &values {
            let normalized = lower_trim(value);
            if password && !normalized.is_empty() {
                self.password.push(normalized.clone());
            }
            if webauthn && !normalized.is_empty() {
                self.webauthn.push(normalized.clone());
            }
            if totp {
                self.totp = Some(value.clone());
            }
            if code {
                self.apply_code(&code_via, value, path);
            }
            if !verification_via.is_empty() {
                if let Some(format) = &format {
                    self.apply_verification(&verification_via, format, value, path);
                }
            }
            if !recovery_via.is_empty() {
                self.apply_recovery(&recovery_via, value, path);
            }
        }
    }

    fn apply_code(&mut self, via: &str, value: &str, path: &[String]) {
        let address = match via {
            "email" => {
                if value.contains('@') {
                    lower_trim(value)
                } else {
                    value.to_owned()
                }
            }
            "sms" => match normalize_phone(value) {
                Ok(phone) => phone,
                Err(reason) => return self.error(path, reason),
            },
            other => {
                return self.error(
                    path,
                    &format!("channel type {} must be one of email, sms", go_quote(other)),
                )
            }
        };
        if address.is_empty() {
            return;
        }
        self.code.push((address, via.to_owned()));
    }

    fn apply_verification(&mut self, via: &str, format: &str, value: &str, path: &[String]) {
        let mut format = format;
        if format.is_empty() {
            if via == "email" {
                format = "email";
                if !is_email(value) {
                    return self.error(
                        path,
                        &format!("{} is not valid {}", go_quote(value), go_quote("email")),
                    );
                }
            } else {
                return self.error(
                    path,
                    "no format specified. A format is required if verification is enabled. If this was intentional, please set \"format\" to \"no-validate\"",
                );
            }
        }
        let normalized = if format == "email" {
            lower_trim(value)
        } else {
            value.trim().to_owned()
        };
        self.verifiable.push(Address {
            via: via.to_owned(),
            value: normalized,
        });
    }

    fn apply_recovery(&mut self, via: &str, value: &str, path: &[String]) {
        let normalized = match via {
            "email" => {
                if !is_email(value) {
                    return self.error(
                        path,
                        &format!("{} is not valid {}", go_quote(value), go_quote("email")),
                    );
                }
                lower_trim(value)
            }
            "sms" => {
                if !is_tel(value) {
                    return self.error(
                        path,
                        &format!("{} is not valid {}", go_quote(value), go_quote("tel")),
                    );
                }
                value.trim().to_owned()
            }
            other => {
                return self.error(
                    path,
                    &format!("recovery.via has unknown value {}", go_quote(other)),
                )
            }
        };
        self.recovery.push(Address {
            via: via.to_owned(),
            value: normalized,
        });
    }

    pub(crate) fn finish(self) -> (TraitsInfo, Vec<FieldMessage>) {
        // Kratos keeps code addresses sorted by address, then channel.
        let mut code = self.code.items;
        code.sort();
        let mut code_identifiers = Unique::new();
        for (address, _) in code {
            code_identifiers.push(address);
        }
        (
            TraitsInfo {
                password_identifiers: self.password.items,
                verifiable_addresses: self.verifiable.items,
                recovery_addresses: self.recovery.items,
                code_identifiers: code_identifiers.items,
                webauthn_identifiers: self.webauthn.items,
                totp_account_name: self.totp,
            },
            self.errors,
        )
    }
}
