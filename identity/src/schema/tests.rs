use std::path::{Component, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::text::{self, UiTextType};

fn default_schema_json(draft: Option<&str>) -> Value {
    let mut schema = json!({
        "$id": "https://schemas.ory.sh/presets/kratos/identity.email.schema.json",
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
                        "ory.sh/kratos": {
                            "credentials": {"password": {"identifier": true}},
                            "verification": {"via": "email"},
                            "recovery": {"via": "email"}
                        }
                    },
                    "name": {
                        "type": "object",
                        "properties": {
                            "first": {"type": "string", "minLength": 2},
                            "last": {"type": "string"}
                        }
                    },
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                    "age": {"type": "integer", "minimum": 18}
                },
                "required": ["email"],
                "additionalProperties": false
            }
        }
    });
    if let (Some(draft), Some(obj)) = (draft, schema.as_object_mut()) {
        obj.insert("$schema".to_owned(), json!(draft));
    }
    schema
}

const DRAFT7: &str = "http://json-schema.org/draft-07/schema#";
const DRAFT2020: &str = "https://json-schema.org/draft/2020-12/schema";

fn compile(raw: Value) -> IdentitySchema {
    IdentitySchema::new("default", "inline", raw).unwrap()
}

fn inline(id: &str, raw: &Value) -> SchemaSource {
    SchemaSource {
        id: id.to_owned(),
        url: raw.to_string(),
    }
}

fn msg(node: &str, message: UiText) -> FieldMessage {
    FieldMessage {
        node: node.to_owned(),
        message,
    }
}

fn context(value: Value) -> Option<serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!(
        "portcullis-schema-test-{}-{n}-{name}",
        std::process::id()
    ));
    std::fs::write(&path, contents).unwrap();
    path
}

/// Frees a deeply nested value without recursion.
fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(mut v) = stack.pop() {
        match &mut v {
            Value::Object(map) => {
                let taken = std::mem::take(map);
                stack.extend(taken.into_iter().map(|(_, c)| c));
            }
            Value::Array(items) => stack.append(items),
            _ => {}
        }
    }
}

// ----------------------------------------------------------------------------
// Loading

#[test]
fn loads_absolute_file_url() {
    let path = temp_file("abs.json", &default_schema_json(None).to_string());
    let url = format!("file://{}", path.display());
    let reg = SchemaRegistry::load(
        &[SchemaSource {
            id: "default".into(),
            url: url.clone(),
        }],
        "default",
    )
    .unwrap();
    assert_eq!(reg.default_schema().id(), "default");
    assert_eq!(reg.default_schema().url(), url);
    assert_eq!(reg.default_schema().raw(), &default_schema_json(None));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn loads_relative_file_url() {
    let path = temp_file("rel.json", &default_schema_json(None).to_string());
    // A path relative to the working directory: up to the root, then down.
    let cwd = std::env::current_dir().unwrap();
    let ups = cwd
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let mut relative = "../".repeat(ups);
    relative.push_str(path.to_str().unwrap().trim_start_matches('/'));
    let reg = SchemaRegistry::load(
        &[SchemaSource {
            id: "rel".into(),
            url: format!("file://{relative}"),
        }],
        "rel",
    )
    .unwrap();
    assert_eq!(reg.get("rel").unwrap().raw(), &default_schema_json(None));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn loads_base64_urls() {
    let raw = default_schema_json(None).to_string();
    let std_padded = base64::engine::general_purpose::STANDARD.encode(&raw);
    let url_unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
    let reg = SchemaRegistry::load(
        &[
            SchemaSource {
                id: "a".into(),
                url: format!("base64://{std_padded}"),
            },
            SchemaSource {
                id: "b".into(),
                url: format!("base64://{url_unpadded}"),
            },
        ],
        "b",
    )
    .unwrap();
    assert_eq!(reg.get("a").unwrap().raw(), &default_schema_json(None));
    assert_eq!(reg.get("b").unwrap().raw(), &default_schema_json(None));
    assert_eq!(reg.default_schema().id(), "b");
    let ids: Vec<&str> = reg.iter().map(IdentitySchema::id).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn loads_inline_json_and_keeps_it_unchanged() {
    // Key order and unknown keywords are preserved as written.
    let text = r#"  {"z": 1, "properties": {"traits": {"type": "object", "properties": {"a": {"type": "string"}}}}, "a": {"x": [1, 2.5]}} "#;
    let reg = SchemaRegistry::load(
        &[SchemaSource {
            id: "x".into(),
            url: text.into(),
        }],
        "x",
    )
    .unwrap();
    let expected: Value = serde_json::from_str(text).unwrap();
    assert_eq!(reg.default_schema().raw(), &expected);
    assert_eq!(
        serde_json::to_string(reg.default_schema().raw()).unwrap(),
        r#"{"z":1,"properties":{"traits":{"type":"object","properties":{"a":{"type":"string"}}}},"a":{"x":[1,2.5]}}"#
    );
}

#[test]
fn missing_file_fails() {
    let path = std::env::temp_dir().join("portcullis-definitely-missing-schema.json");
    let err = SchemaRegistry::load(
        &[SchemaSource {
            id: "default".into(),
            url: format!("file://{}", path.display()),
        }],
        "default",
    )
    .unwrap_err();
    let SchemaError::Load { id, reason } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(id, "default");
    assert!(
        reason.starts_with(&format!("cannot read file {}: ", path.display())),
        "{reason}"
    );
    assert!(err
        .to_string()
        .starts_with("identity schema \"default\" could not be loaded: cannot read file"));
}

#[test]
fn bad_json_fails() {
    let path = temp_file("bad.json", "{\"properties\": ");
    let err = SchemaRegistry::load(
        &[SchemaSource {
            id: "broken".into(),
            url: format!("file://{}", path.display()),
        }],
        "broken",
    )
    .unwrap_err();
    assert_eq!(
        err,
        SchemaError::Load {
            id: "broken".into(),
            reason: "the schema is not valid JSON: EOF while parsing a value at line 1 column 15"
                .into()
        }
    );
    std::fs::remove_file(path).unwrap();

    let err = SchemaRegistry::load(
        &[SchemaSource {
            id: "b64".into(),
            url: "base64://not base64!".into(),
        }],
        "b64",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"b64\" could not be loaded: the base64:// URL is not valid base64"
    );
}

#[test]
fn unsupported_urls_fail() {
    let err = SchemaRegistry::load(
        &[SchemaSource {
            id: "r".into(),
            url: "https://example.com/schema.json".into(),
        }],
        "r",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"r\" could not be loaded: remote schema URL https://example.com/schema.json is not supported (no network access); use file://, base64:// or inline JSON"
    );
    let err = SchemaRegistry::load(
        &[SchemaSource {
            id: "p".into(),
            url: "/etc/schema.json".into(),
        }],
        "p",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"p\" could not be loaded: unsupported schema URL /etc/schema.json: expected file://, base64:// or inline JSON"
    );
}

#[test]
fn invalid_json_schema_fails() {
    let err = SchemaRegistry::load(&[inline("bad", &json!({"type": 12}))], "bad").unwrap_err();
    assert_eq!(
        err,
        SchemaError::Invalid {
            id: "bad".into(),
            reason: "not a valid JSON Schema (draft-07): 12 is not valid under any of the schemas listed in the 'anyOf' keyword (at /type)".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "identity schema \"bad\" is invalid: not a valid JSON Schema (draft-07): 12 is not valid under any of the schemas listed in the 'anyOf' keyword (at /type)"
    );
}

#[test]
fn duplicate_and_unknown_default_fail() {
    let raw = default_schema_json(None);
    let err = SchemaRegistry::load(
        &[inline("default", &raw), inline("default", &raw)],
        "default",
    )
    .unwrap_err();
    assert_eq!(err, SchemaError::Duplicate("default".into()));
    assert_eq!(
        err.to_string(),
        "identity schema id \"default\" is configured more than once"
    );

    let err = SchemaRegistry::load(&[inline("default", &raw)], "nope").unwrap_err();
    assert_eq!(err, SchemaError::DefaultMissing("nope".into()));
    assert_eq!(
        err.to_string(),
        "the default identity schema \"nope\" is not among the configured identity schemas"
    );

    let err = SchemaRegistry::load(&[], "default").unwrap_err();
    assert_eq!(err, SchemaError::DefaultMissing("default".into()));

    let err = SchemaRegistry::from_schemas(vec![compile(raw.clone()), compile(raw)], "default")
        .unwrap_err();
    assert_eq!(err, SchemaError::Duplicate("default".into()));
}

#[test]
fn traits_must_be_an_object_schema() {
    let cases = [
        (
            json!({"type": "object"}),
            "the schema has no \"properties\"; an identity schema must declare \"properties.traits\"",
        ),
        (
            json!({"properties": {"name": {"type": "string"}}}),
            "\"properties.traits\" is missing; an identity schema must declare its traits there",
        ),
        (
            json!({"properties": {"traits": true}}),
            "\"properties.traits\" must be an object schema",
        ),
        (
            json!({"properties": {"traits": {"type": "string", "properties": {"a": {}}}}}),
            "\"properties.traits.type\" must be \"object\", found \"string\"",
        ),
        (
            json!({"properties": {"traits": {"type": "object"}}}),
            "\"properties.traits.properties\" is missing",
        ),
        (
            json!({"properties": {"traits": {"type": "object", "properties": {}}}}),
            "\"properties.traits.properties\" must declare at least one trait",
        ),
    ];
    for (raw, reason) in cases {
        let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
        assert_eq!(
            err,
            SchemaError::Invalid {
                id: "s".into(),
                reason: reason.into()
            }
        );
    }
    let err = IdentitySchema::new("s", "inline", json!(true)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"s\" is invalid: an identity schema must be a JSON object"
    );
}

#[test]
fn extension_config_is_checked() {
    let raw = json!({"properties": {"traits": {"type": "object", "properties": {
        "email": {"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": "yes"}}}}
    }}}});
    let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"s\" is invalid: not a valid Kratos identity schema: \"yes\" is not of type \"boolean\" (at /properties/traits/properties/email/ory.sh~1kratos/credentials/password/identifier)"
    );

    let raw = json!({"properties": {"traits": {"type": "object", "properties": {
        "name": {"type": "object", "properties": {"e": {"type": "string", "ory.sh/kratos": {"recovery": {"via": "pigeon"}}}}}
    }}}});
    let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
    assert!(
        err.to_string().contains(
            "(at /properties/traits/properties/name/properties/e/ory.sh~1kratos/recovery/via)"
        ),
        "{err}"
    );

    // Verification needs a format Kratos knows.
    let raw = json!({"properties": {"traits": {"type": "object", "properties": {
        "email": {"type": "string", "format": "uuid", "ory.sh/kratos": {"verification": {"via": "email"}}}
    }}}});
    let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
    assert!(
        err.to_string()
            .contains("(at /properties/traits/properties/email/format)"),
        "{err}"
    );
}

#[test]
fn unsupported_schema_dialect_and_remote_refs_fail() {
    let mut raw = default_schema_json(None);
    raw["$schema"] = json!("https://example.com/my-meta");
    let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"s\" is invalid: unsupported $schema \"https://example.com/my-meta\"; supported are draft-04, draft-06, draft-07, 2019-09 and 2020-12"
    );

    let mut raw = default_schema_json(None);
    raw["properties"]["traits"]["properties"]["remote"] =
        json!({"$ref": "https://example.com/remote.json"});
    let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("refusing to resolve the external reference https://example.com/remote.json"),
        "{text}"
    );

    let mut raw = default_schema_json(None);
    raw["properties"]["traits"]["properties"]["local"] = json!({"$ref": "file:///etc/passwd"});
    let err = IdentitySchema::new("s", "inline", raw).unwrap_err();
    assert!(err.to_string().contains("refusing to resolve"), "{err}");
}

#[test]
fn empty_id_fails() {
    let err = IdentitySchema::new("", "inline", default_schema_json(None)).unwrap_err();
    assert_eq!(
        err,
        SchemaError::Invalid {
            id: String::new(),
            reason: "the schema id must not be empty".into()
        }
    );
}

// ----------------------------------------------------------------------------
// Resolving

#[test]
fn resolves_by_id_and_base64url() {
    assert_eq!(schema_url_id("default"), "ZGVmYXVsdA");
    assert_eq!(schema_url_id("customer?"), "Y3VzdG9tZXI_");
    let raw = default_schema_json(None);
    let reg = SchemaRegistry::load(
        &[inline("default", &raw), inline("customer?", &raw)],
        "default",
    )
    .unwrap();
    assert_eq!(reg.resolve("default").unwrap().id(), "default");
    assert_eq!(reg.resolve("ZGVmYXVsdA").unwrap().id(), "default");
    assert_eq!(reg.resolve("ZGVmYXVsdA==").unwrap().id(), "default");
    assert_eq!(reg.resolve("Y3VzdG9tZXI_").unwrap().id(), "customer?");
    assert_eq!(reg.get("customer?").unwrap().url_id(), "Y3VzdG9tZXI_");
    assert!(reg.resolve("unknown").is_none());
    assert!(reg.resolve("").is_none());
    assert!(reg.resolve("%%%").is_none());
    assert!(reg.get("ZGVmYXVsdA").is_none());
    assert_eq!(reg.default_id(), "default");
}

// ----------------------------------------------------------------------------
// Validating

fn check_default_schema_behaviour(schema: &IdentitySchema) {
    // Valid traits.
    let info = schema
        .validate_traits(&json!({
            "email": "  Foo.Bar@Example.COM",
            "name": {"first": "Jo", "last": "Doe"},
            "tags": ["a", "b"],
            "age": 30
        }))
        .unwrap();
    assert_eq!(
        info,
        TraitsInfo {
            password_identifiers: vec!["foo.bar@example.com".into()],
            verifiable_addresses: vec![Address {
                via: "email".into(),
                value: "foo.bar@example.com".into()
            }],
            recovery_addresses: vec![Address {
                via: "email".into(),
                value: "foo.bar@example.com".into()
            }],
            code_identifiers: vec![],
            webauthn_identifiers: vec![],
            totp_account_name: None,
        }
    );

    // Missing email.
    assert_eq!(
        schema.validate_traits(&json!({})).unwrap_err(),
        vec![msg("traits.email", text::validation_required("email"))]
    );
    let missing = schema.validate_traits(&json!({"age": 20})).unwrap_err();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].node, "traits.email");
    assert_eq!(missing[0].message.id, 4000002);
    assert_eq!(missing[0].message.text, "Property email is missing.");
    assert_eq!(missing[0].message.kind, UiTextType::Error);
    assert_eq!(
        missing[0].message.context,
        context(json!({"property": "email"}))
    );

    // Bad e-mail format (reported once, though both `format` and the recovery
    // extension reject it).
    let errs = schema
        .validate_traits(&json!({"email": "not-an-email"}))
        .unwrap_err();
    assert_eq!(
        errs,
        vec![msg(
            "traits.email",
            text::validation_generic("\"not-an-email\" is not valid \"email\"")
        )]
    );
    assert_eq!(errs[0].message.id, 4000001);
    assert_eq!(
        errs[0].message.context,
        context(json!({"reason": "\"not-an-email\" is not valid \"email\""}))
    );

    // Too short.
    let errs = schema
        .validate_traits(&json!({"email": "a@b.cd", "name": {"first": "J"}}))
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].node, "traits.name.first");
    assert_eq!(errs[0].message.id, 4000003);
    assert_eq!(errs[0].message.text, "length must be >= 2, but got 1");
    assert_eq!(
        errs[0].message.context,
        context(json!({"actual_length": 1, "min_length": 2}))
    );

    // Wrong type.
    let errs = schema.validate_traits(&json!({"email": 12})).unwrap_err();
    assert_eq!(
        errs,
        vec![msg(
            "traits.email",
            text::validation_wrong_type(&["string"], "number")
        )]
    );
    assert_eq!(errs[0].message.id, 4000026);
    assert_eq!(errs[0].message.text, "expected string, but got number");
    assert_eq!(
        errs[0].message.context,
        context(json!({"actual_type": "number", "allowed_types": ["string"]}))
    );
    let errs = schema
        .validate_traits(&json!({"email": "a@b.cd", "age": 20.5}))
        .unwrap_err();
    assert_eq!(
        errs,
        vec![msg(
            "traits.age",
            text::validation_wrong_type(&["integer"], "number")
        )]
    );
    let errs = schema
        .validate_traits(&json!({"email": "a@b.cd", "tags": ["ok", 1]}))
        .unwrap_err();
    assert_eq!(
        errs,
        vec![msg(
            "traits.tags.1",
            text::validation_wrong_type(&["string"], "number")
        )]
    );

    // Below minimum.
    let errs = schema
        .validate_traits(&json!({"email": "a@b.cd", "age": 17}))
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].node, "traits.age");
    assert_eq!(errs[0].message.id, 4000018);
    assert_eq!(errs[0].message.text, "must be >= 18 but found 17");
    assert_eq!(
        errs[0].message.context,
        context(json!({"actual": 17, "minimum": 18}))
    );

    // Too many items.
    let errs = schema
        .validate_traits(&json!({"email": "a@b.cd", "tags": ["a", "b", "c", "d"]}))
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].node, "traits.tags");
    assert_eq!(errs[0].message.id, 4000023);
    assert_eq!(
        errs[0].message.text,
        "maximum 3 items allowed, but found 4 items"
    );
    assert_eq!(
        errs[0].message.context,
        context(json!({"actual_items": 4, "max_items": 3}))
    );

    // Traits that are not an object.
    for (traits, actual) in [
        (json!("foo"), "string"),
        (json!(null), "null"),
        (json!([1]), "array"),
        (json!(1.5), "number"),
    ] {
        let errs = schema.validate_traits(&traits).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].node, "");
        assert_eq!(errs[0].message.id, 4000026);
        assert_eq!(
            errs[0].message.context,
            context(json!({"actual_type": actual, "allowed_types": ["object"]}))
        );
    }

    // Unknown trait.
    let errs = schema
        .validate_traits(&json!({"email": "a@b.cd", "nickname": "x"}))
        .unwrap_err();
    assert_eq!(
        errs,
        vec![msg(
            "traits",
            text::validation_generic("additionalProperties \"nickname\" not allowed")
        )]
    );

    // Several errors at once.
    let errs = schema
        .validate_traits(&json!({"name": {"first": 1}, "age": 3}))
        .unwrap_err();
    let mut nodes: Vec<(&str, u64)> = errs
        .iter()
        .map(|m| (m.node.as_str(), m.message.id))
        .collect();
    nodes.sort_unstable();
    assert_eq!(
        nodes,
        [
            ("traits.age", 4000018),
            ("traits.email", 4000002),
            ("traits.name.first", 4000026)
        ]
    );
}

#[test]
fn validates_default_schema_draft7() {
    check_default_schema_behaviour(&compile(default_schema_json(None)));
    check_default_schema_behaviour(&compile(default_schema_json(Some(DRAFT7))));
}

#[test]
fn validates_default_schema_draft2020() {
    let schema = compile(default_schema_json(Some(DRAFT2020)));
    assert_eq!(schema.draft, Draft::Draft202012);
    check_default_schema_behaviour(&schema);
}

fn traits_schema(properties: Value) -> IdentitySchema {
    compile(json!({"properties": {"traits": {"type": "object", "properties": properties}}}))
}

fn one_error(schema: &IdentitySchema, traits: Value) -> FieldMessage {
    let mut errs = schema.validate_traits(&traits).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.remove(0)
}

#[test]
fn maps_other_keywords() {
    let s = traits_schema(json!({
        "code": {"type": "string", "pattern": "^[a-z]+\\d$", "maxLength": 4},
        "n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 0.5},
        "m": {"type": "number", "maximum": 5},
        "list": {"type": "array", "minItems": 2, "uniqueItems": true},
        "role": {"const": "admin"},
        "obj": {"const": {"a": 1}},
        "color": {"enum": ["red", "green"]},
        "one": {"enum": [1]},
        "mixed": {"enum": [[1], "x"]},
        "either": {"type": ["string", "null"]},
        "choice": {"anyOf": [{"type": "string", "minLength": 5}, {"type": "integer"}]},
        "holder": {"type": "object", "properties": {"nothing": false}},
        "props": {"type": "object", "minProperties": 2}
    }));
    let e = one_error(&s, json!({"code": "ABC"}));
    assert_eq!(e.node, "traits.code");
    assert_eq!(e.message, text::validation_invalid_format("^[a-z]+\\d$"));
    assert_eq!(e.message.text, "does not match pattern \"^[a-z]+\\\\d$\"");

    let errs = s.validate_traits(&json!({"code": "abcdef"})).unwrap_err();
    assert!(errs.contains(&msg("traits.code", text::validation_max_length(4, 6))));

    let e = one_error(&s, json!({"n": 0}));
    assert_eq!(e.message, text::validation_exclusive_minimum(0.0, 0.0));
    assert_eq!(e.message.text, "must be > 0 but found 0");
    let e = one_error(&s, json!({"n": 10}));
    assert_eq!(e.message, text::validation_exclusive_maximum(10.0, 10.0));
    let e = one_error(&s, json!({"n": 1.25}));
    assert_eq!(e.message, text::validation_multiple_of(0.5, 1.25));
    assert_eq!(e.message.text, "1.25 not multipleOf 0.5");
    let e = one_error(&s, json!({"m": 5.5}));
    assert_eq!(e.message, text::validation_maximum(5.0, 5.5));
    assert_eq!(
        e.message.context,
        context(json!({"actual": 5.5, "maximum": 5}))
    );

    let e = one_error(&s, json!({"list": [1]}));
    assert_eq!(e.message, text::validation_min_items(2, 1));
    let e = one_error(&s, json!({"list": [1, 2, 3, 2, 1]}));
    assert_eq!(e.node, "traits.list");
    assert_eq!(e.message, text::validation_unique_items(1, 3));

    let e = one_error(&s, json!({"role": "user"}));
    assert_eq!(e.message, text::validation_const("\"admin\""));
    assert_eq!(e.message.text, "must be equal to constant \"admin\"");
    assert_eq!(e.message.id, 4000029);
    let e = one_error(&s, json!({"obj": {"a": 2}}));
    assert_eq!(e.message, text::validation_const_generic());

    let e = one_error(&s, json!({"color": "blue"}));
    assert_eq!(
        e.message,
        text::validation_generic("value must be one of \"red\", \"green\"")
    );
    let e = one_error(&s, json!({"one": 2}));
    assert_eq!(e.message, text::validation_generic("value must be \"1\""));
    let e = one_error(&s, json!({"mixed": 2}));
    assert_eq!(e.message, text::validation_generic("enum failed"));

    let e = one_error(&s, json!({"either": 1}));
    assert_eq!(
        e.message,
        text::validation_wrong_type(&["string", "null"], "number")
    );
    assert_eq!(e.message.text, "expected string or null, but got number");

    let errs = s.validate_traits(&json!({"choice": "abc"})).unwrap_err();
    assert_eq!(
        errs,
        vec![
            msg("traits.choice", text::validation_min_length(5, 3)),
            msg(
                "traits.choice",
                text::validation_wrong_type(&["integer"], "string")
            ),
        ]
    );

    let e = one_error(&s, json!({"holder": {"nothing": 1}}));
    assert_eq!(e.node, "traits.holder.nothing");
    assert_eq!(e.message, text::validation_generic("always fail"));

    let e = one_error(&s, json!({"props": {"a": 1}}));
    assert_eq!(
        e.message,
        text::validation_generic("minimum 2 properties allowed, but found 1 properties")
    );
}

#[test]
fn required_nested_and_escaped_names() {
    let s = traits_schema(json!({
        "name": {"type": "object", "properties": {"first": {"type": "string"}}, "required": ["first", "a.b", "c/d"]}
    }));
    let errs = s.validate_traits(&json!({"name": {}})).unwrap_err();
    assert_eq!(
        errs,
        vec![
            msg("traits.name.first", text::validation_required("first")),
            msg("traits.name.a\\.b", text::validation_required("a.b")),
            msg("traits.name.c/d", text::validation_required("c~1d")),
        ]
    );
}

#[test]
fn extension_collects_identifiers_and_addresses() {
    let s = traits_schema(json!({
        "email": {
            "type": "string", "format": "email",
            "ory.sh/kratos": {
                "credentials": {
                    "password": {"identifier": true},
                    "webauthn": {"identifier": true},
                    "code": {"identifier": true, "via": "email"},
                    "totp": {"account_name": true}
                },
                "verification": {"via": "email"},
                "recovery": {"via": "email"}
            }
        },
        "username": {
            "type": "string",
            "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}
        },
        "phone": {
            "type": "string", "format": "tel",
            "ory.sh/kratos": {
                "credentials": {"code": {"identifier": true, "via": "sms"}},
                "verification": {"via": "sms"},
                "recovery": {"via": "sms"}
            }
        },
        "contact": {
            "type": "object",
            "properties": {
                "email": {
                    "type": "string", "format": "email",
                    "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}, "verification": {"via": "email"}}
                }
            }
        },
        "emails": {
            "type": "array",
            "items": {
                "type": "string", "format": "email",
                "ory.sh/kratos": {"recovery": {"via": "email"}, "credentials": {"code": {"identifier": true, "via": "email"}}}
            }
        },
        "aliases": {
            "type": "array",
            "items": {"type": "string"},
            "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}
        }
    }));
    let info = s
        .validate_traits(&json!({
            "email": "Zed@Example.com",
            "username": " Alice ",
            "phone": "+1 (555) 123-4567",
            "contact": {"email": "Other@Example.com"},
            "emails": ["b@example.com", "ZED@example.com"],
            "aliases": ["Al", "alice", "AL"]
        }))
        .unwrap();
    assert_eq!(
        info.password_identifiers,
        ["zed@example.com", "alice", "other@example.com", "al"]
    );
    assert_eq!(info.webauthn_identifiers, ["zed@example.com"]);
    assert_eq!(info.totp_account_name.as_deref(), Some("Zed@Example.com"));
    assert_eq!(
        info.code_identifiers,
        ["+15551234567", "b@example.com", "zed@example.com"]
    );
    let addr = |via: &str, value: &str| Address {
        via: via.into(),
        value: value.into(),
    };
    assert_eq!(
        info.verifiable_addresses,
        [
            addr("email", "zed@example.com"),
            addr("sms", "+1 (555) 123-4567"),
            addr("email", "other@example.com"),
        ]
    );
    assert_eq!(
        info.recovery_addresses,
        [
            addr("email", "zed@example.com"),
            addr("sms", "+1 (555) 123-4567"),
            addr("email", "b@example.com"),
        ]
    );
}

#[test]
fn extension_follows_refs_and_all_of() {
    for draft in [DRAFT7, DRAFT2020] {
        let defs = if draft == DRAFT7 {
            "definitions"
        } else {
            "$defs"
        };
        let s = compile(json!({
            "$schema": draft,
            defs: {
                "email": {
                    "type": "string", "format": "email",
                    "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}
                }
            },
            "properties": {"traits": {"type": "object", "properties": {
                "primary": {"$ref": format!("#/{defs}/email")},
                "backup": {"allOf": [{"$ref": format!("#/{defs}/email")}]}
            }}}
        }));
        let info = s
            .validate_traits(&json!({"primary": "A@x.io", "backup": "B@x.io"}))
            .unwrap();
        assert_eq!(info.password_identifiers, ["a@x.io", "b@x.io"], "{draft}");
    }
}

#[test]
fn extension_errors() {
    let s = traits_schema(json!({
        "mail": {"type": "string", "ory.sh/kratos": {"verification": {"via": "email"}}},
        "sms": {"type": "string", "ory.sh/kratos": {"verification": {"via": "sms"}}},
        "phone": {"type": "string", "ory.sh/kratos": {"credentials": {"code": {"identifier": true, "via": "sms"}}}},
        "nocode": {"type": "string", "ory.sh/kratos": {"credentials": {"code": {"identifier": true}}}}
    }));
    // Without a format, verification via e-mail checks the address itself.
    let info = s.validate_traits(&json!({"mail": "X@Y.z"})).unwrap();
    assert_eq!(
        info.verifiable_addresses,
        [Address {
            via: "email".into(),
            value: "x@y.z".into()
        }]
    );
    assert_eq!(
        one_error(&s, json!({"mail": "nope"})),
        msg(
            "traits.mail",
            text::validation_generic("\"nope\" is not valid \"email\"")
        )
    );
    assert_eq!(
        one_error(&s, json!({"sms": "+4915112345678"})),
        msg(
            "traits.sms",
            text::validation_generic("no format specified. A format is required if verification is enabled. If this was intentional, please set \"format\" to \"no-validate\"")
        )
    );
    assert_eq!(
        one_error(&s, json!({"phone": "12345"})),
        msg(
            "traits.phone",
            text::validation_generic("invalid country code")
        )
    );
    assert_eq!(
        one_error(&s, json!({"nocode": "a@b.c"})),
        msg(
            "traits.nocode",
            text::validation_generic("channel type \"\" must be one of email, sms")
        )
    );
}

#[test]
fn tel_and_no_validate_formats() {
    let s = traits_schema(json!({
        "phone": {"type": "string", "format": "tel"},
        "free": {"type": "string", "format": "no-validate", "ory.sh/kratos": {"verification": {"via": "sms"}}},
        "other": {"type": "string", "format": "some-unknown-format"}
    }));
    assert!(s
        .validate_traits(&json!({"phone": "+4915112345678", "free": " anything ", "other": "x"}))
        .is_ok());
    assert_eq!(
        one_error(&s, json!({"phone": "12"})),
        msg(
            "traits.phone",
            text::validation_generic("\"12\" is not valid \"tel\"")
        )
    );
    let info = s.validate_traits(&json!({"free": " anything "})).unwrap();
    assert_eq!(info.verifiable_addresses[0].value, "anything");
}

// ----------------------------------------------------------------------------
// Pathological input

#[test]
fn deeply_nested_traits_are_refused() {
    let s = compile(default_schema_json(None));
    let mut deep = json!("leaf");
    for _ in 0..10_000 {
        let mut map = serde_json::Map::new();
        map.insert("a".into(), deep);
        deep = Value::Object(map);
    }
    let errs = s.validate_traits(&deep).unwrap_err();
    assert_eq!(
        errs,
        vec![msg(
            "",
            text::validation_generic("traits are nested too deeply (more than 128 levels)")
        )]
    );
    // Arrays count too.
    let mut deep_array = json!(1);
    for _ in 0..10_000 {
        deep_array = Value::Array(vec![deep_array]);
    }
    let mut traits = serde_json::Map::new();
    traits.insert("tags".into(), deep_array);
    let traits = Value::Object(traits);
    assert_eq!(s.validate_traits(&traits).unwrap_err().len(), 1);
    dismantle(deep);
    dismantle(traits);
}

#[test]
fn nesting_within_the_limit_is_fine() {
    let s = compile(
        json!({"properties": {"traits": {"type": "object", "properties": {
            "node": {"$ref": "#/definitions/node"}
        }}}, "definitions": {"node": {"type": "object", "properties": {
            "child": {"$ref": "#/definitions/node"},
            "id": {"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}
        }}}}),
    );
    let mut node = json!({"id": "Deepest"});
    for i in 0..(MAX_TRAITS_DEPTH - 2) {
        node = json!({"child": node, "id": format!("n{i}")});
    }
    let traits = json!({ "node": node });
    let info = s.validate_traits(&traits).unwrap();
    assert_eq!(info.password_identifiers.len(), MAX_TRAITS_DEPTH - 1);
    // Schema order: `child` (recursively) before `id`.
    assert_eq!(info.password_identifiers.first().unwrap(), "deepest");
    assert_eq!(info.password_identifiers.last().unwrap(), "n125");
}

#[test]
fn self_referencing_schemas_do_not_hang() {
    let s = compile(
        json!({"properties": {"traits": {"type": "object", "properties": {
            "loop": {"$ref": "#/properties/traits/properties/loop"},
            "other": {"allOf": [{"$ref": "#/properties/traits/properties/other"}]},
            "email": {"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}
        }}}}),
    );
    let info = s
        .validate_traits(&json!({"loop": {"a": 1}, "other": 2, "email": "E"}))
        .unwrap();
    assert_eq!(info.password_identifiers, ["e"]);
}

#[test]
fn huge_arrays() {
    let s = compile(default_schema_json(None));
    let tags: Vec<Value> = (0..200_000).map(|i| json!(format!("t{i}"))).collect();
    let errs = s
        .validate_traits(&json!({"email": "a@b.cd", "tags": tags}))
        .unwrap_err();
    assert_eq!(
        errs,
        vec![msg("traits.tags", text::validation_max_items(3, 200_000))]
    );

    // Every item wrong: the message count is capped.
    let bad: Vec<Value> = (0..5_000).map(|i| json!(i)).collect();
    let errs = s
        .validate_traits(&json!({"email": "a@b.cd", "tags": bad}))
        .unwrap_err();
    assert_eq!(errs.len(), MAX_MESSAGES);

    // Unique items over a big array, and many identifiers.
    let u = traits_schema(json!({
        "ids": {"type": "array", "uniqueItems": true, "items": {"type": "string",
            "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}}
    }));
    let mut ids: Vec<Value> = (0..100_000).map(|i| json!(format!("id{i}"))).collect();
    let info = u.validate_traits(&json!({ "ids": ids.clone() })).unwrap();
    assert_eq!(info.password_identifiers.len(), 100_000);
    ids.push(json!("id5"));
    let e = one_error(&u, json!({ "ids": ids }));
    assert_eq!(e.message, text::validation_unique_items(5, 100_000));
}

#[test]
fn weird_traits_values_do_not_panic() {
    let s = compile(default_schema_json(None));
    for traits in [
        json!({"email": null}),
        json!({"email": {"nested": [1, 2, {"x": null}]}}),
        json!({"email": "\u{0}\u{1f}\"\\"}),
        json!({"email": "a@b.cd", "name": null, "tags": {}, "age": 1e300}),
        json!({"email": "a@b.cd", "age": -9_223_372_036_854_775_808_i64}),
        json!({"": "", "\u{fffd}": 1}),
    ] {
        assert!(s.validate_traits(&traits).is_err(), "{traits}");
    }
    assert!(s
        .validate_traits(&json!({"email": "a@b.cd", "age": 18_446_744_073_709_551_615_u64}))
        .is_ok());
}

#[test]
fn malformed_schemas_do_not_panic() {
    for raw in [
        json!({}),
        json!([]),
        json!("x"),
        json!(null),
        json!({"properties": []}),
        json!({"properties": {"traits": {"properties": {"a": 1}}}}),
        json!({"properties": {"traits": {"properties": {"a": {"pattern": "("}}}}}),
        json!({"properties": {"traits": {"properties": {"a": {"$ref": "#/nope"}}}}}),
        json!({"properties": {"traits": {"properties": {"a": {"$ref": 5}}}}}),
        json!({"$schema": 5, "properties": {"traits": {"properties": {"a": {}}}}}),
        json!({"properties": {"traits": {"properties": {"a": {"ory.sh/kratos": 5}}}}}),
        json!({"properties": {"traits": {"properties": {"a": {"format": 5}}}}}),
    ] {
        assert!(
            IdentitySchema::new("s", "inline", raw.clone()).is_err(),
            "{raw}"
        );
    }
}

#[test]
fn deeply_nested_schemas_are_refused() {
    // (`json!` would serialise the nested value recursively; build it by hand.)
    let wrap = |key: &str, inner: Value| {
        let mut map = serde_json::Map::new();
        map.insert(key.to_owned(), inner);
        Value::Object(map)
    };
    let mut deep = json!({"type": "string"});
    for _ in 0..10_000 {
        deep = wrap("properties", wrap("a", deep));
    }
    let raw = wrap(
        "properties",
        wrap("traits", wrap("properties", wrap("a", deep))),
    );
    let err = IdentitySchema::new("deep", "inline", raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity schema \"deep\" is invalid: the schema is nested too deeply (more than 128 levels)"
    );
}

#[test]
fn schemas_as_deep_as_json_parsing_allows_load() {
    // Nesting close to serde_json's parse limit of 128.
    let mut text = String::from(r#"{"type": "string", "minLength": 2}"#);
    let levels = 60;
    for _ in 0..levels {
        text = format!(r#"{{"type": "object", "properties": {{"a": {text}}}}}"#);
    }
    let text = format!(
        r#"{{"properties": {{"traits": {{"type": "object", "properties": {{"a": {text}}}}}}}}}"#
    );
    let reg = SchemaRegistry::load(
        &[SchemaSource {
            id: "deep".into(),
            url: text,
        }],
        "deep",
    )
    .unwrap();
    let mut traits = json!("x");
    for _ in 0..levels {
        traits = json!({ "a": traits });
    }
    let traits = json!({ "a": traits });
    let errs = reg.default_schema().validate_traits(&traits).unwrap_err();
    let node = format!("traits{}", ".a".repeat(levels + 1));
    assert_eq!(errs, vec![msg(&node, text::validation_min_length(2, 1))]);
}

#[test]
fn long_ref_chains_do_not_overflow() {
    let mut defs = serde_json::Map::new();
    let n = 700;
    for i in 0..n {
        defs.insert(
            format!("a{i}"),
            json!({"$ref": format!("#/definitions/a{}", i + 1)}),
        );
    }
    defs.insert(
        format!("a{n}"),
        json!({"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}),
    );
    let raw = json!({
        "definitions": defs,
        "properties": {"traits": {"type": "object", "properties": {"id": {"$ref": "#/definitions/a0"}}}}
    });
    // jsonschema accepts the chain; walking it for the extension goes past the
    // walk's depth limit and is refused rather than overflowing the stack.
    let schema = IdentitySchema::new("chain", "inline", raw).unwrap();
    assert_eq!(
        schema.validate_traits(&json!({"id": "X"})).unwrap_err(),
        vec![msg(
            "",
            text::validation_generic(
                "the identity schema is too deeply nested or recursive to evaluate these traits"
            )
        )]
    );
}

#[test]
fn registry_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<SchemaRegistry>();
    assert_send_sync::<IdentitySchema>();
    let reg =
        SchemaRegistry::load(&[inline("default", &default_schema_json(None))], "default").unwrap();
    let reg = std::sync::Arc::new(reg);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                reg.default_schema()
                    .validate_traits(&json!({"email": format!("u{i}@x.io")}))
                    .unwrap()
                    .password_identifiers
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), [format!("u{i}@x.io")]);
    }
}
