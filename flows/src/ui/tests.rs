use identity::schema::{FieldMessage, IdentitySchema};
use identity::text::{self, UiText, UiTextType};
use serde_json::{json, Value};

use super::*;

const ACTION: &str =
    "http://127.0.0.1:4433/self-service/login?flow=3c4f6a0e-2b6d-4c8e-9f3a-1d2e3f4a5be1";
const TOKEN: &str = "dGVzdC1jc3JmLXRva2Vu";

fn schema_json() -> Value {
    json!({
        "$id": "https://example.com/person.schema.json",
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
                        "maxLength": 320,
                        "ory.sh/kratos": {
                            "credentials": {"password": {"identifier": true}},
                            "verification": {"via": "email"},
                            "recovery": {"via": "email"}
                        }
                    },
                    "name": {
                        "type": "object",
                        "properties": {
                            "first": {"type": "string", "title": "First name", "pattern": "^[A-Za-z]+$"},
                            "last": {"type": "string", "title": "Last name"}
                        },
                        "required": ["first"]
                    },
                    "age": {"type": "integer", "minimum": 18, "title": "Age"},
                    "newsletter": {"type": "boolean", "title": "Newsletter"},
                    "website": {"type": "string", "format": "uri"},
                    "phone": {"type": "string", "format": "tel"},
                    "birthday": {"type": "string", "format": "date"},
                    "wake_up": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "scores": {"type": "array", "items": {"type": "number"}},
                    "flags": {"type": "array", "items": {"type": "boolean"}},
                    "address": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}}
                    }
                },
                "required": ["email"],
                "additionalProperties": false
            }
        }
    })
}

fn schema() -> IdentitySchema {
    IdentitySchema::new("default", "inline", schema_json()).unwrap()
}

fn login_golden() -> (Value, String) {
    let flow: Value = serde_json::from_str(include_str!("testdata/login_flow.json")).unwrap();
    let ui = serde_json::to_string(&flow["ui"]).unwrap();
    (flow, ui)
}

fn names(ui: &UiContainer) -> Vec<&str> {
    ui.nodes.iter().map(UiNode::id).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------- login

#[test]
fn login_container_matches_golden_bytes() {
    let ui = UiContainer::password_login(ACTION, TOKEN, Some(&schema()));
    let (_, golden) = login_golden();
    assert_eq!(serde_json::to_string(&ui).unwrap(), golden);
}

#[test]
fn login_golden_round_trips() {
    let (flow, golden) = login_golden();
    let ui: UiContainer = serde_json::from_value(flow["ui"].clone()).unwrap();
    assert_eq!(
        ui,
        UiContainer::password_login(ACTION, TOKEN, Some(&schema()))
    );
    assert_eq!(serde_json::to_string(&ui).unwrap(), golden);
    assert_eq!(ui.node("identifier").unwrap().value(), Some(&json!("")));
    assert_eq!(ui.node("password").unwrap().value(), None);
}

#[test]
fn login_nodes_are_sorted_like_kratos_whatever_the_insertion_order() {
    let mut ui = UiContainer::new(ACTION);
    let mut nodes = password_login_nodes(None);
    nodes.reverse();
    for node in nodes {
        ui.add_node(node);
    }
    ui.add_node(UiNode::input(
        "provider",
        Some(json!("google")),
        Group::Oidc,
        InputType::Submit,
    ));
    ui.add_node(UiNode::input(
        "provider",
        Some(json!("github")),
        Group::Oidc,
        InputType::Submit,
    ));
    ui.add_node(UiNode::input(
        "totp_code",
        None,
        Group::Totp,
        InputType::Text,
    ));
    ui.set_csrf(TOKEN);
    ui.sort_login();
    assert_eq!(
        names(&ui),
        [
            "provider",
            "provider",
            "csrf_token",
            "identifier",
            "password",
            "method",
            "totp_code"
        ]
    );
    let providers: Vec<_> = ui
        .nodes
        .iter()
        .take(2)
        .map(|n| n.value().cloned())
        .collect();
    assert_eq!(providers, [Some(json!("github")), Some(json!("google"))]);
}

#[test]
fn identifier_label_rules() {
    // No schema: "ID".
    let nodes = password_login_nodes(None);
    let label = nodes[0].meta.label.clone().unwrap();
    assert_eq!((label.id, label.text.as_str()), (1070004, "ID"));
    assert_eq!(label.context, None);

    // One marked identifier with a title: generated from it.
    let label = identifier_label(&schema());
    assert_eq!(
        serde_json::to_string(&label).unwrap(),
        r#"{"id":1070002,"text":"E-Mail","type":"info","context":{"name":"traits.email","title":"E-Mail"}}"#
    );

    // Any kind of identifier counts (code identifier here).
    let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
        "phone": {"type": "string", "title": "Phone", "ory.sh/kratos": {"credentials": {"code": {"identifier": true}}}}
    }}}});
    assert_eq!(identifier_label_from_json(&raw).id, 1070002);

    // Two identifiers, or one without a title: "ID".
    let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
        "email": {"type": "string", "title": "Email", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
        "username": {"type": "string", "title": "Username", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}
    }}}});
    assert_eq!(identifier_label_from_json(&raw), labels::node_id());
    let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
        "email": {"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}
    }}}});
    assert_eq!(identifier_label_from_json(&raw), labels::node_id());
}

#[test]
fn api_flow_csrf_node_has_empty_value() {
    assert_eq!(
        serde_json::to_string(&csrf_node("")).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"csrf_token","type":"hidden","value":"","required":true,"disabled":false,"node_type":"input"},"messages":[],"meta":{}}"#
    );
}

#[test]
fn message_ids_and_texts() {
    for (label, id, text) in [
        (labels::login(), 1010001, "Sign in"),
        (labels::login_continue(), 1010013, "Continue"),
        (labels::login_password(), 1010022, "Sign in with password"),
        (labels::registration(), 1040001, "Sign up"),
        (labels::registration_continue(), 1040003, "Continue"),
        (labels::registration_back(), 1040008, "Back"),
        (labels::node_password(), 1070001, "Password"),
        (labels::node_save(), 1070003, "Save"),
        (labels::node_id(), 1070004, "ID"),
        (labels::node_submit(), 1070005, "Submit"),
        (labels::node_email(), 1070007, "Email"),
        (labels::node_continue(), 1070009, "Continue"),
    ] {
        assert_eq!((label.id, label.text.as_str()), (id, text));
        assert_eq!(label.kind, UiTextType::Info);
        assert_eq!(label.context, None);
    }
    assert_eq!(
        serde_json::to_string(&labels::login_with("Google", "google")).unwrap(),
        r#"{"id":1010002,"text":"Sign in with Google","type":"info","context":{"provider":"Google","provider_id":"google"}}"#
    );
    assert_eq!(
        labels::registration_with("GitHub", "github").text,
        "Sign up with GitHub"
    );
}

// --------------------------------------------------------- registration

#[test]
fn registration_nodes_from_schema() {
    let nodes = nodes_from_schema(&schema(), Group::Default);
    let json: Vec<Value> = nodes
        .iter()
        .map(|n| serde_json::to_value(n).unwrap())
        .collect();
    // Listed by name, as Kratos' ListPaths does; objects make no node.
    let listed: Vec<&str> = nodes.iter().map(UiNode::id).collect();
    assert_eq!(
        listed,
        [
            "traits.address.city",
            "traits.age",
            "traits.birthday",
            "traits.email",
            "traits.flags",
            "traits.name.first",
            "traits.name.last",
            "traits.newsletter",
            "traits.phone",
            "traits.scores",
            "traits.tags",
            "traits.wake_up",
            "traits.website",
        ]
    );
    let by_name = |name: &str| {
        json.iter()
            .find(|n| n["attributes"]["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        serde_json::to_string(&by_name("traits.email")).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.email","type":"email","required":true,"autocomplete":"email","disabled":false,"maxlength":320,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070002,"text":"E-Mail","type":"info","context":{"name":"traits.email","title":"E-Mail"}}}}"#
    );
    assert_eq!(
        serde_json::to_string(&by_name("traits.name.first")).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.name.first","type":"text","required":true,"pattern":"^[A-Za-z]+$","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070002,"text":"First name","type":"info","context":{"name":"traits.name.first","title":"First name"}}}}"#
    );
    assert_eq!(
        serde_json::to_string(&by_name("traits.name.last")).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.name.last","type":"text","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070002,"text":"Last name","type":"info","context":{"name":"traits.name.last","title":"Last name"}}}}"#
    );
    // Integer → number; `minimum` is not rendered.
    assert_eq!(
        serde_json::to_string(&by_name("traits.age")).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.age","type":"number","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070002,"text":"Age","type":"info","context":{"name":"traits.age","title":"Age"}}}}"#
    );
    assert_eq!(
        by_name("traits.newsletter")["attributes"]["type"],
        "checkbox"
    );
    assert_eq!(
        serde_json::to_string(&by_name("traits.website")).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.website","type":"url","autocomplete":"url","disabled":false,"node_type":"input"},"messages":[],"meta":{}}"#
    );
    assert_eq!(by_name("traits.phone")["attributes"]["type"], "tel");
    assert_eq!(by_name("traits.phone")["attributes"]["autocomplete"], "tel");
    assert_eq!(by_name("traits.birthday")["attributes"]["type"], "date");
    assert_eq!(
        by_name("traits.wake_up")["attributes"]["type"],
        "datetime-local"
    );
    for array in ["traits.tags", "traits.scores", "traits.flags"] {
        assert_eq!(by_name(array)["attributes"]["type"], "text", "{array}");
    }
    for node in &nodes {
        assert_eq!(node.group, Group::Default);
        assert!(node.messages.is_empty());
    }
}

#[test]
fn registration_container_order_and_method_nodes() {
    let ui = UiContainer::password_registration(ACTION, TOKEN, &schema());
    // csrf, first trait, password, the other traits in schema order,
    // method last.
    assert_eq!(
        names(&ui),
        [
            "csrf_token",
            "traits.email",
            "password",
            "traits.name.first",
            "traits.name.last",
            "traits.age",
            "traits.newsletter",
            "traits.website",
            "traits.phone",
            "traits.birthday",
            "traits.wake_up",
            "traits.tags",
            "traits.scores",
            "traits.flags",
            "traits.address.city",
            "method",
        ]
    );
    let password = serde_json::to_string(ui.node("password").unwrap()).unwrap();
    assert_eq!(
        password,
        r#"{"type":"input","group":"password","attributes":{"name":"password","type":"password","required":true,"autocomplete":"new-password","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070001,"text":"Password","type":"info"}}}"#
    );
    let method = serde_json::to_string(ui.node("method").unwrap()).unwrap();
    assert_eq!(
        method,
        r#"{"type":"input","group":"password","attributes":{"name":"method","type":"submit","value":"password","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1040001,"text":"Sign up","type":"info"}}}"#
    );
    // Round trip.
    let text = serde_json::to_string(&ui).unwrap();
    let back: UiContainer = serde_json::from_str(&text).unwrap();
    assert_eq!(back, ui);
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}

#[test]
fn registration_sort_puts_oidc_first_and_orders_providers_by_value() {
    let mut ui = UiContainer::password_registration(ACTION, TOKEN, &schema());
    ui.add_node(
        UiNode::input(
            "provider",
            Some(json!("google")),
            Group::Oidc,
            InputType::Submit,
        )
        .with_label(labels::registration_with("Google", "google")),
    );
    ui.add_node(UiNode::input(
        "provider",
        Some(json!("apple")),
        Group::Oidc,
        InputType::Submit,
    ));
    ui.sort_registration(&schema());
    assert_eq!(
        &names(&ui)[..4],
        ["provider", "provider", "csrf_token", "traits.email"]
    );
    assert_eq!(ui.nodes[0].value(), Some(&json!("apple")));
    assert_eq!(names(&ui).last(), Some(&"method"));
}

#[test]
fn disabled_schema_fields() {
    // The brief's `"ory.sh/kratos": {"disabled": true}` form.
    let raw = json!({
        "type": "object",
        "properties": {"traits": {"type": "object", "properties": {
            "email": {"type": "string", "format": "email"},
            "member_id": {"type": "string", "title": "Member ID", "ory.sh/kratos": {"disabled": true}}
        }}}
    });
    let nodes = password_registration_nodes_from_json(&raw);
    let member = nodes.iter().find(|n| n.id() == "traits.member_id").unwrap();
    assert_eq!(
        serde_json::to_string(member).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.member_id","type":"text","disabled":true,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070002,"text":"Member ID","type":"info","context":{"name":"traits.member_id","title":"Member ID"}}}}"#
    );
    let email = nodes.iter().find(|n| n.id() == "traits.email").unwrap();
    assert!(!email.input_attributes().unwrap().disabled);
    // Kratos' identity meta-schema (and so IdentitySchema::new) refuses
    // unknown keys in the extension block, so this only works with raw
    // schemas today.
    assert!(IdentitySchema::new("d", "inline", raw).is_err());
}

#[test]
fn schema_refs_combinators_and_cycles() {
    let raw = json!({
        "definitions": {
            "email": {"type": "string", "format": "email", "title": "Email"},
            "loop": {"type": "object", "properties": {"next": {"$ref": "#/definitions/loop"}, "leaf": {"type": "string"}}}
        },
        "type": "object",
        "properties": {"traits": {"type": "object", "properties": {
            "email": {"$ref": "#/definitions/email"},
            "nick": {"allOf": [{"type": "string", "title": "Nick"}]},
            "either": {"type": ["string", "null"]},
            "defaulted": {"type": ["string", "null"], "default": "x"},
            "const": {"const": 5},
            "nothing": {"type": "null"},
            "chain": {"$ref": "#/definitions/loop"},
            "dangling": {"$ref": "#/definitions/missing"},
            "remote": {"$ref": "https://example.com/schema.json"},
            "objects": {"type": "array", "items": {"type": "object"}},
            "escaped": {"$ref": "#/definitions/a~1b"}
        }}}
    });
    let nodes = nodes_from_schema_json(&raw, Group::Profile);
    let listed: Vec<&str> = nodes.iter().map(UiNode::id).collect();
    assert_eq!(
        listed,
        [
            "traits.chain.leaf",
            "traits.const",
            "traits.defaulted",
            "traits.email",
            "traits.nick",
        ]
    );
    let email = nodes.iter().find(|n| n.id() == "traits.email").unwrap();
    assert_eq!(email.input_attributes().unwrap().type_, InputType::Email);
    assert_eq!(email.group, Group::Profile);
    let constant = nodes.iter().find(|n| n.id() == "traits.const").unwrap();
    assert_eq!(
        constant.input_attributes().unwrap().type_,
        InputType::Number
    );
    assert_eq!(
        keys_in_order(&raw),
        [
            "traits.email",
            "traits.nick",
            "traits.either",
            "traits.defaulted",
            "traits.const",
            "traits.nothing",
            "traits.chain",
            "traits.dangling",
            "traits.remote",
            "traits.objects",
            "traits.escaped"
        ]
    );
    // A root `password` / `csrf_token` property gets its special type.
    let raw = json!({"type": "object", "properties": {
        "password": {"type": "string"}, "csrf_token": {"type": "string"}
    }});
    let nodes = nodes_from_schema_json(&raw, Group::Default);
    assert_eq!(
        nodes[0].input_attributes().unwrap().type_,
        InputType::Hidden
    );
    assert_eq!(
        nodes[1].input_attributes().unwrap().type_,
        InputType::Password
    );
    // Garbage never panics.
    for raw in [
        json!(null),
        json!([1, 2]),
        json!("x"),
        json!({"properties": 3}),
    ] {
        assert!(nodes_from_schema_json(&raw, Group::Default).is_empty());
        assert_eq!(identifier_label_from_json(&raw), labels::node_id());
    }
}

#[test]
fn exponential_references_are_cut_short() {
    // a0 → a1 twice → a2 twice … : 2^40 visits without a budget.
    let mut definitions = serde_json::Map::new();
    for i in 0..40 {
        let next = format!("#/definitions/a{}", i + 1);
        definitions.insert(
            format!("a{i}"),
            json!({"allOf": [{"$ref": next}, {"$ref": next}], "properties": {"f": {"type": "string"}}}),
        );
    }
    definitions.insert("a40".to_owned(), json!({"type": "string"}));
    let raw = json!({
        "definitions": definitions,
        "type": "object",
        "properties": {"traits": {"$ref": "#/definitions/a0"}}
    });
    let started = std::time::Instant::now();
    let nodes = nodes_from_schema_json(&raw, Group::Default);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(nodes[0].id(), "traits.f");
    assert!(decode_form_with_schema_json(&pairs(&[("traits.f", "x")]), Some(&raw)).is_ok());
}

#[test]
fn keys_in_order_escapes_dots() {
    let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
        "a.b": {"type": "string"}, "c": {"type": "object"}
    }}}});
    assert_eq!(keys_in_order(&raw), ["traits.a\\.b"]);
    assert_eq!(keys_in_order(&json!({"type": "string"})), [""]);
}

// ------------------------------------------------------------ node kinds

#[test]
fn other_node_types_serialize_like_kratos() {
    let text = UiNode::text(
        "totp_secret_key",
        UiText {
            id: 1050006,
            text: "SECRET".to_owned(),
            kind: UiTextType::Info,
            context: Some(json!({"secret": "SECRET"}).as_object().unwrap().clone()),
        },
        Group::Totp,
    );
    assert_eq!(
        serde_json::to_string(&text).unwrap(),
        r#"{"type":"text","group":"totp","attributes":{"text":{"id":1050006,"text":"SECRET","type":"info","context":{"secret":"SECRET"}},"id":"totp_secret_key","node_type":"text"},"messages":[],"meta":{}}"#
    );
    let img = UiNode::img(
        "totp_qr",
        "data:image/png;base64,AAAA",
        256,
        256,
        Group::Totp,
    )
    .with_label(UiText {
        id: 1050005,
        text: "Authenticator app QR code".to_owned(),
        kind: UiTextType::Info,
        context: None,
    });
    assert_eq!(
        serde_json::to_string(&img).unwrap(),
        r#"{"type":"img","group":"totp","attributes":{"src":"data:image/png;base64,AAAA","id":"totp_qr","width":256,"height":256,"node_type":"img"},"messages":[],"meta":{"label":{"id":1050005,"text":"Authenticator app QR code","type":"info"}}}"#
    );
    let anchor = UiNode::anchor(
        "continue",
        "http://app.local/",
        labels::node_continue(),
        Group::Code,
    );
    assert_eq!(
        serde_json::to_string(&anchor).unwrap(),
        r#"{"type":"a","group":"code","attributes":{"href":"http://app.local/","title":{"id":1070009,"text":"Continue","type":"info"},"id":"continue","node_type":"a"},"messages":[],"meta":{}}"#
    );
    let script = UiNode::script(
        ScriptAttributes::new(
            "webauthn_script",
            "http://127.0.0.1:4433/.well-known/ory/webauthn.js",
            "sha512-abc",
            "nonce-1",
        ),
        Group::Webauthn,
    );
    assert_eq!(
        serde_json::to_string(&script).unwrap(),
        r#"{"type":"script","group":"webauthn","attributes":{"src":"http://127.0.0.1:4433/.well-known/ory/webauthn.js","async":true,"referrerpolicy":"no-referrer","crossorigin":"anonymous","integrity":"sha512-abc","type":"text/javascript","id":"webauthn_script","nonce":"nonce-1","node_type":"script"},"messages":[],"meta":{}}"#
    );
    let div = UiNode::div("captcha", Group::Captcha);
    assert_eq!(
        serde_json::to_string(&div).unwrap(),
        r#"{"type":"div","group":"captcha","attributes":{"id":"captcha","node_type":"div"},"messages":[],"meta":{}}"#
    );
    let mut div_full = UiNode::div("captcha", Group::Captcha);
    if let Attributes::Div(a) = &mut div_full.attributes {
        a.class = Some("cf-turnstile".to_owned());
        a.data = Some(
            [
                ("z".to_owned(), "1".to_owned()),
                ("a".to_owned(), "2".to_owned()),
            ]
            .into_iter()
            .collect(),
        );
    }
    assert_eq!(
        serde_json::to_string(&div_full.attributes).unwrap(),
        r#"{"class":"cf-turnstile","id":"captcha","data":{"a":"2","z":"1"},"node_type":"div"}"#
    );

    let mut webauthn = UiNode::input(
        "webauthn_login_trigger",
        Some(json!("")),
        Group::Webauthn,
        InputType::Button,
    );
    {
        let a = webauthn.input_attributes_mut().unwrap();
        a.onclick = Some("window.oryWebAuthnLogin()".to_owned());
        a.onclick_trigger = Some(Trigger::WebAuthnLogin);
        a.onload_trigger = Some(Trigger::PasskeyLoginAutocompleteInit);
        a.label = Some(labels::node_submit());
        a.autocomplete = Some(Autocomplete::UsernameWebauthn);
    }
    assert_eq!(
        serde_json::to_string(&webauthn.attributes).unwrap(),
        r#"{"name":"webauthn_login_trigger","type":"button","value":"","autocomplete":"username webauthn","label":{"id":1070005,"text":"Submit","type":"info"},"disabled":false,"onclick":"window.oryWebAuthnLogin()","onclickTrigger":"oryWebAuthnLogin","onloadTrigger":"oryPasskeyLoginAutocompleteInit","node_type":"input"}"#
    );

    for node in [text, img, anchor, script, div, div_full, webauthn] {
        let encoded = serde_json::to_string(&node).unwrap();
        let back: UiNode = serde_json::from_str(&encoded).unwrap();
        assert_eq!(back, node);
        assert_eq!(serde_json::to_string(&back).unwrap(), encoded);
        // Attributes alone decode by node_type.
        let attributes: Attributes =
            serde_json::from_value(serde_json::to_value(&node.attributes).unwrap()).unwrap();
        assert_eq!(attributes, node.attributes);
    }
}

#[test]
fn enums_cover_the_sdk_values() {
    let wire = |v: Value| v.as_str().unwrap().to_owned();
    let groups: Vec<String> = Group::ALL
        .iter()
        .map(|g| wire(serde_json::to_value(g).unwrap()))
        .collect();
    assert_eq!(
        groups,
        [
            "default",
            "password",
            "oidc",
            "profile",
            "link",
            "code",
            "totp",
            "lookup_secret",
            "webauthn",
            "passkey",
            "identifier_first",
            "captcha",
            "saml"
        ]
    );
    let types: Vec<&str> = InputType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "text",
            "password",
            "number",
            "checkbox",
            "hidden",
            "email",
            "tel",
            "submit",
            "button",
            "datetime-local",
            "date",
            "url"
        ]
    );
    assert_eq!(NodeType::ALL.len(), 6);
    assert_eq!(Autocomplete::ALL.len(), 7);
    assert_eq!(Trigger::ALL.len(), 6);
    for g in Group::ALL {
        assert_eq!(Group::parse(g.as_str()), Some(*g));
        assert_eq!(g.to_string(), g.as_str());
    }
    assert_eq!(Group::parse("nope"), None);
}

#[test]
fn lenient_and_strict_deserialization() {
    // Missing/null messages and meta, null value: read like Go does.
    let node: UiNode = serde_json::from_value(json!({
        "type": "input", "group": "password",
        "attributes": {"name": "password", "type": "password", "value": null, "node_type": "input"},
        "messages": null
    }))
    .unwrap();
    assert_eq!(node.value(), None);
    assert!(node.messages.is_empty());
    assert_eq!(node.meta, Meta::default());
    assert_eq!(
        serde_json::to_string(&node).unwrap(),
        r#"{"type":"input","group":"password","attributes":{"name":"password","type":"password","disabled":false,"node_type":"input"},"messages":[],"meta":{}}"#
    );
    // The node type decides; a stale node_type is rewritten.
    let node: UiNode = serde_json::from_value(json!({
        "type": "div", "group": "default", "attributes": {"id": "x", "node_type": "input"},
        "messages": [], "meta": {}
    }))
    .unwrap();
    assert_eq!(node.attributes.node_type(), NodeType::Div);
    let container: UiContainer = serde_json::from_value(json!({
        "action": "a", "method": "POST", "nodes": null, "messages": null
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_string(&container).unwrap(),
        r#"{"action":"a","method":"POST","nodes":[]}"#
    );

    // Values outside the SDK enums are refused, without panicking.
    for bad in [
        json!({"type": "input", "group": "nope", "attributes": {"name": "a", "type": "text"}}),
        json!({"type": "select", "group": "default", "attributes": {}}),
        json!({"type": "input", "group": "default", "attributes": {"name": "a", "type": "range"}}),
        json!({"type": "input", "group": "default", "attributes": {"name": "a", "type": "text", "autocomplete": "off"}}),
        json!({"type": "input", "group": "default", "attributes": {"name": "a", "type": "text", "onclickTrigger": "x"}}),
        json!({"type": "text", "group": "default", "attributes": {"id": "a"}}),
        json!({"type": "input", "group": "default", "attributes": {"name": "a", "type": "text"}, "messages": [{"id": 1, "text": "x", "type": "warning"}]}),
        json!({"type": "input", "group": "default", "attributes": "nope"}),
        json!([]),
        json!(null),
    ] {
        assert!(
            serde_json::from_value::<UiNode>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    for bad in [
        json!({"id": "x"}),
        json!({"id": "x", "node_type": "blink"}),
        json!(3),
    ] {
        assert!(
            serde_json::from_value::<Attributes>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

// ------------------------------------------------------------- messages

#[test]
fn messages_attach_to_existing_and_missing_nodes() {
    let mut ui = UiContainer::password_registration(ACTION, TOKEN, &schema());
    ui.add_message_to_node("traits.email", text::validation_required("email"));
    let email = ui.node("traits.email").unwrap();
    assert_eq!(email.messages.len(), 1);
    assert_eq!(email.messages[0].id, 4000002);

    // A missing node is appended as a text input in group default.
    ui.add_message_to_node("traits.unknown", text::validation_generic("nope"));
    let added = ui.nodes.last().unwrap();
    assert_eq!(
        serde_json::to_string(added).unwrap(),
        r#"{"type":"input","group":"default","attributes":{"name":"traits.unknown","type":"text","disabled":false,"node_type":"input"},"messages":[{"id":4000001,"text":"nope","type":"error","context":{"reason":"nope"}}],"meta":{}}"#
    );
    // A second message for it goes to the same node.
    let count = ui.nodes.len();
    ui.add_message_to_node("traits.unknown", text::validation_generic("again"));
    assert_eq!(ui.nodes.len(), count);
    assert_eq!(ui.node("traits.unknown").unwrap().messages.len(), 2);

    // Blank names go to the form.
    ui.add_message_to_node("  ", text::validation_invalid_credentials());
    ui.add_message(text::validation_duplicate_credentials());
    assert_eq!(
        ui.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [4000006, 4000007]
    );
    let encoded = serde_json::to_value(&ui).unwrap();
    assert_eq!(encoded["messages"][0]["id"], 4000006);

    // Validation output of the identity schema.
    let errors = schema()
        .validate_traits(&json!({"name": {}, "age": 3}))
        .unwrap_err();
    let mut fresh = UiContainer::password_registration(ACTION, TOKEN, &schema());
    fresh.add_field_messages(&errors);
    fresh.add_field_messages(&[FieldMessage {
        node: String::new(),
        message: text::system_generic("boom"),
    }]);
    assert_eq!(fresh.messages.len(), 1);
    assert!(!fresh.node("traits.age").unwrap().messages.is_empty());
    assert_eq!(fresh.node("traits.age").unwrap().messages[0].id, 4000018);

    ui.reset_messages();
    assert!(ui.messages.is_empty());
    assert!(ui.nodes.iter().all(|n| n.messages.is_empty()));
    let encoded = serde_json::to_value(&ui).unwrap();
    assert!(encoded.get("messages").is_none());
}

// --------------------------------------------------------------- values

#[test]
fn set_value_never_echoes_passwords() {
    let mut ui = UiContainer::password_login(ACTION, TOKEN, None);
    assert!(!ui.set_value("password", json!("hunter2")));
    assert_eq!(ui.node("password").unwrap().value(), None);
    assert!(!serde_json::to_string(&ui).unwrap().contains("hunter2"));

    assert!(ui.set_value("identifier", json!("a@b.c")));
    assert_eq!(
        ui.node("identifier").unwrap().value(),
        Some(&json!("a@b.c"))
    );
    assert!(ui.set_value("identifier", Value::Null));
    assert_eq!(ui.node("identifier").unwrap().value(), None);
    assert!(!ui.set_value("nope", json!(1)));

    let mut ui = UiContainer::password_registration(ACTION, TOKEN, &schema());
    ui.set_values_from_json(
        "traits",
        &json!({"email": "a@b.c", "name": {"first": "Ada"}, "age": 36, "newsletter": true, "password": "x", "tags": ["a", "b"], "unknown": 1}),
    );
    ui.set_values_from_json("", &json!({"password": "hunter2", "method": "password"}));
    assert_eq!(
        ui.node("traits.email").unwrap().value(),
        Some(&json!("a@b.c"))
    );
    assert_eq!(
        ui.node("traits.name.first").unwrap().value(),
        Some(&json!("Ada"))
    );
    assert_eq!(ui.node("traits.age").unwrap().value(), Some(&json!(36)));
    assert_eq!(
        ui.node("traits.newsletter").unwrap().value(),
        Some(&json!(true))
    );
    assert_eq!(ui.node("password").unwrap().value(), None);
    assert!(ui.node("traits.unknown").is_none());
    assert!(!serde_json::to_string(&ui).unwrap().contains("hunter2"));

    ui.add_message_to_node("traits.email", text::validation_required("email"));
    ui.reset(&["csrf_token", "method"]);
    assert_eq!(ui.node("traits.email").unwrap().value(), None);
    assert!(ui.node("traits.email").unwrap().messages.is_empty());
    assert_eq!(ui.node("csrf_token").unwrap().value(), Some(&json!(TOKEN)));
    assert_eq!(ui.node("method").unwrap().value(), Some(&json!("password")));

    // upsert replaces, add_node appends, remove_node removes.
    ui.upsert_node(csrf_node("new"));
    assert_eq!(ui.node("csrf_token").unwrap().value(), Some(&json!("new")));
    assert_eq!(names(&ui).iter().filter(|n| **n == "csrf_token").count(), 1);
    ui.remove_node("csrf_token");
    assert!(ui.node("csrf_token").is_none());
}

// ----------------------------------------------------------------- forms

#[test]
fn form_decoding_nests_and_coerces() {
    let form = pairs(&[
        ("csrf_token", "tok"),
        ("method", "password"),
        ("password", "secret"),
        ("traits.email", "a@b.c"),
        ("traits.name.first", "Ada"),
        ("traits.name.last", ""),
        ("traits.age", "36"),
        ("traits.newsletter", "false"),
        ("traits.newsletter", "true"),
        ("traits.tags", "x"),
        ("traits.tags", "y"),
        ("traits.scores", "1.5"),
        ("traits.scores", "2"),
        ("traits.flags", "on"),
        ("traits.flags", "0"),
    ]);
    let decoded = decode_form(&form, Some(&schema())).unwrap();
    assert_eq!(
        serde_json::to_string(&decoded).unwrap(),
        r#"{"csrf_token":"tok","method":"password","password":"secret","traits":{"email":"a@b.c","name":{"first":"Ada"},"age":36,"newsletter":true,"tags":["x","y"],"scores":[1.5,2],"flags":[true,false],"address":{}}}"#
    );
    // Same as the JSON a JSON client would send: the schema accepts it.
    assert!(schema().validate_traits(&decoded["traits"]).is_ok());
}

#[test]
fn form_decoding_scalars() {
    let decode = |list: &[(&str, &str)]| decode_form(&pairs(list), Some(&schema())).unwrap();
    // Numbers.
    assert_eq!(
        decode(&[("traits.age", "18.5")])["traits"]["age"],
        json!(18.5)
    );
    assert_eq!(
        decode(&[("traits.age", "1e3")])["traits"]["age"],
        json!(1000)
    );
    assert_eq!(decode(&[("traits.age", "-7")])["traits"]["age"], json!(-7));
    assert_eq!(
        decode(&[("traits.age", "abc")])["traits"]["age"],
        json!("abc")
    );
    assert_eq!(
        decode(&[("traits.age", "NaN")])["traits"]["age"],
        json!("NaN")
    );
    assert_eq!(
        decode(&[("traits.age", "inf")])["traits"]["age"],
        json!("inf")
    );
    assert_eq!(
        decode(&[("traits.age", "1"), ("traits.age", "2")])["traits"]["age"],
        json!(1)
    );
    assert!(decode(&[("traits.age", "")])["traits"].get("age").is_none());
    // Booleans: last value wins.
    for (values, expected) in [
        (&["true"][..], json!(true)),
        (&["on"][..], json!(true)),
        (&["1"][..], json!(true)),
        (&["TRUE"][..], json!(true)),
        (&["false"][..], json!(false)),
        (&["0"][..], json!(false)),
        (&[""][..], json!(false)),
        (&["true", "false"][..], json!(false)),
        (&["false", "true"][..], json!(true)),
        (&["yes"][..], json!("yes")),
    ] {
        let list: Vec<(&str, &str)> = values.iter().map(|v| ("traits.newsletter", *v)).collect();
        assert_eq!(
            decode(&list)["traits"]["newsletter"],
            expected,
            "{values:?}"
        );
    }
    // Unchecked checkbox: nothing sent, nothing set.
    assert!(decode(&[("traits.email", "a@b.c")])["traits"]
        .get("newsletter")
        .is_none());
    // Strings: first value; empty leaves the key out.
    assert_eq!(
        decode(&[("traits.email", "a@b.c"), ("traits.email", "x@y.z")])["traits"]["email"],
        json!("a@b.c")
    );
    let empty = decode(&[("traits.email", "")]);
    assert_eq!(empty, json!({"traits": {"address": {}, "name": {}}}));
    let errors = schema().validate_traits(&empty["traits"]).unwrap_err();
    assert_eq!(errors[0].message.id, 4000002);
    // Array items that do not parse stay strings.
    assert_eq!(
        decode(&[("traits.scores", "1"), ("traits.scores", "nope")])["traits"]["scores"],
        json!([1, "nope"])
    );
    // A single value for an array field is an array.
    assert_eq!(
        decode(&[("traits.tags", "solo")])["traits"]["tags"],
        json!(["solo"])
    );
    // An object field carrying JSON.
    assert_eq!(
        decode(&[("traits.address", r#"{"city":"Berlin"}"#)])["traits"]["address"],
        json!({"city": "Berlin"})
    );
    assert_eq!(
        decode(&[("traits.address", "not json")])["traits"]["address"],
        json!("not json")
    );
    // Unknown keys stay strings, even empty; repeated ones keep the first.
    assert_eq!(
        decode(&[("identifier", ""), ("x.y", "1"), ("x.y", "2")]),
        json!({"identifier": "", "x": {"y": "1"}, "traits": {"address": {}, "name": {}}})
    );
}

#[test]
fn form_decoding_required_number_defaults_to_zero() {
    let raw = json!({"type": "object", "properties": {"traits": {"type": "object",
        "properties": {"age": {"type": "number"}}, "required": ["age"]}}});
    let decoded = decode_form_with_schema_json(&pairs(&[("traits.age", "")]), Some(&raw)).unwrap();
    assert_eq!(decoded, json!({"traits": {"age": 0}}));
}

#[test]
fn form_decoding_without_schema_keeps_strings() {
    let decoded = decode_form(
        &pairs(&[
            ("traits.age", "36"),
            ("traits.ok", "true"),
            ("identifier", "a"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(
        decoded,
        json!({"traits": {"age": "36", "ok": "true"}, "identifier": "a"})
    );
    assert_eq!(decode_form(&[], None).unwrap(), json!({}));
}

#[test]
fn form_decoding_conflicts_are_deterministic() {
    let decode = |list: &[(&str, &str)]| decode_form(&pairs(list), None).unwrap();
    // The name that appears later replaces what is in its way.
    assert_eq!(
        decode(&[("a", "1"), ("a.b", "2")]),
        json!({"a": {"b": "2"}})
    );
    assert_eq!(decode(&[("a.b", "2"), ("a", "1")]), json!({"a": "1"}));
    assert_eq!(
        decode(&[("a.b", "2"), ("a", "1"), ("a.b", "3")]),
        json!({"a": "1"})
    );
    assert_eq!(
        decode(&[("a.b.c", "1"), ("a.b", "2"), ("a.d", "3")]),
        json!({"a": {"b": "2", "d": "3"}})
    );
    // Odd names are plain keys.
    assert_eq!(decode(&[("", "x")]), json!({"": "x"}));
    assert_eq!(decode(&[("a..b", "x")]), json!({"a": {"": {"b": "x"}}}));
    assert_eq!(decode(&[(".", "x")]), json!({"": {"": "x"}}));
    // With a schema, a scalar in the way of an object path is kept.
    let decoded = decode_form(&pairs(&[("traits", "x")]), Some(&schema())).unwrap();
    assert_eq!(decoded, json!({"traits": "x"}));
}

#[test]
fn form_decoding_limits() {
    let deep_ok = vec!["a"; MAX_FORM_DEPTH].join(".");
    assert!(decode_form(&pairs(&[(&deep_ok, "1")]), None).is_ok());
    let deep = vec!["a"; MAX_FORM_DEPTH + 1].join(".");
    assert_eq!(
        decode_form(&pairs(&[(&deep, "1")]), None),
        Err(FormError::TooDeep {
            key: deep.clone(),
            max: MAX_FORM_DEPTH
        })
    );
    let many: Vec<(String, String)> = (0..=MAX_FORM_FIELDS)
        .map(|i| (format!("k{i}"), "v".to_owned()))
        .collect();
    assert_eq!(
        decode_form(&many, None),
        Err(FormError::TooManyFields {
            max: MAX_FORM_FIELDS
        })
    );
    assert!(decode_form(&many[..MAX_FORM_FIELDS], None).is_ok());
    let repeated: Vec<(String, String)> = (0..=MAX_FORM_FIELDS)
        .map(|_| ("traits.tags".to_owned(), "v".to_owned()))
        .collect();
    assert!(decode_form(&repeated, Some(&schema())).is_err());
    let long_key = format!("{}{}", "x".repeat(200), ".a".repeat(40));
    match decode_form(&pairs(&[(&long_key, "1")]), None) {
        Err(FormError::TooDeep { key, .. }) => assert_eq!(key.chars().count(), 100),
        other => panic!("unexpected {other:?}"),
    }
}

// -------------------------------------------------------------- sorting

/// Go's stable sort must agree with Rust's for a proper ordering; this
/// checks the port of insertion sort + SymMerge on many shapes.
#[test]
fn go_stable_sort_port_is_a_stable_sort() {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for len in [0usize, 1, 2, 5, 19, 20, 21, 39, 40, 41, 64, 97, 150] {
        for _ in 0..8 {
            let mut ui = UiContainer::new("a");
            for i in 0..len {
                let key = next() % 7;
                // All nodes in one group; names decide the key position,
                // the index goes into the value to check stability.
                let name = format!("k{key}");
                ui.add_node(UiNode::input(
                    name,
                    Some(json!(format!("v{}", next() % 3))),
                    Group::Default,
                    InputType::Text,
                ));
                // Tag each node to check stability afterwards.
                let last = ui.nodes.last_mut().unwrap();
                last.messages.push(UiText {
                    id: i as u64,
                    text: String::new(),
                    kind: UiTextType::Info,
                    context: None,
                });
            }
            let keys: Vec<String> = (0..7).map(|k| format!("k{k}")).collect();
            let mut expected = ui.nodes.clone();
            expected.sort_by(|a, b| {
                let pa = keys.iter().position(|k| a.id().starts_with(k.as_str()));
                let pb = keys.iter().position(|k| b.id().starts_with(k.as_str()));
                pa.cmp(&pb).then_with(|| {
                    let va = a.value().and_then(Value::as_str).unwrap_or_default();
                    let vb = b.value().and_then(Value::as_str).unwrap_or_default();
                    va.cmp(vb)
                })
            });
            sort::sort_nodes(&mut ui.nodes, &[Group::Default], &keys);
            assert_eq!(ui.nodes, expected, "len {len}");
        }
    }
}

#[test]
fn sort_orders_unknown_groups_first_and_method_last() {
    let mut ui = UiContainer::new("a");
    ui.add_node(UiNode::input(
        "method",
        Some(json!("password")),
        Group::Password,
        InputType::Submit,
    ));
    ui.add_node(UiNode::input("zzz", None, Group::Password, InputType::Text));
    ui.add_node(UiNode::input(
        "identifier",
        None,
        Group::IdentifierFirst,
        InputType::Text,
    ));
    ui.add_node(UiNode::input(
        "password",
        None,
        Group::Password,
        InputType::Password,
    ));
    ui.add_node(csrf_node("t"));
    ui.add_node(UiNode::input(
        "lookup_secret",
        None,
        Group::LookupSecret,
        InputType::Text,
    ));
    ui.add_node(UiNode::input("code", None, Group::Code, InputType::Text));
    ui.sort_login();
    assert_eq!(
        names(&ui),
        [
            "identifier",
            "csrf_token",
            "code",
            "password",
            "zzz",
            "method",
            "lookup_secret"
        ]
    );
}

#[test]
fn registration_after_failed_submit_matches_golden_bytes() {
    let flow: Value =
        serde_json::from_str(include_str!("testdata/registration_flow.json")).unwrap();
    let golden = serde_json::to_string(&flow["ui"]).unwrap();
    let submitted = json!({"email": "ada@example.com", "name": {"first": "Ada"}, "age": 17, "newsletter": true});
    let mut ui = UiContainer::password_registration(
        "http://127.0.0.1:4433/self-service/registration?flow=9b2f6a0e-2b6d-4c8e-9f3a-1d2e3f4a5b77",
        TOKEN,
        &schema(),
    );
    ui.set_values_from_json("traits", &submitted);
    ui.set_value("password", json!("hunter2"));
    ui.add_field_messages(&schema().validate_traits(&submitted).unwrap_err());
    ui.add_message(text::validation_duplicate_credentials());
    assert_eq!(serde_json::to_string(&ui).unwrap(), golden);
    let back: UiContainer = serde_json::from_value(flow["ui"].clone()).unwrap();
    assert_eq!(back, ui);
}
