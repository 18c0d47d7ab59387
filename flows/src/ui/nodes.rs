//! Node builders: the CSRF node, the password method's login and
//! registration nodes, and form nodes generated from an identity schema
//! (Kratos `NewCSRFNode`, `password.NewPasswordNode`,
//! `container.NodesFromJSONSchema` / `node.NewInputFieldFromSchema`).

use identity::schema::IdentitySchema;
use identity::text::UiText;
use serde_json::Value;

use super::labels;
use super::node::{Attributes, Autocomplete, Group, InputAttributes, InputType, Meta, UiNode};
use super::schema_paths::{list_paths, PathKind, SchemaPath};

/// The CSRF token's node name.
pub const CSRF_TOKEN: &str = "csrf_token";

/// The hidden, required `csrf_token` input (group `default`). API flows
/// carry it too, with the value `""`.
pub fn csrf_node(token: &str) -> UiNode {
    UiNode::input(
        CSRF_TOKEN,
        Some(Value::from(token)),
        Group::Default,
        InputType::Hidden,
    )
    .required()
}

/// The identifier label Kratos derives from an identity schema
/// (`login.GetIdentifierLabelFromSchema`): when exactly one path is marked
/// as an identifier (password, webauthn or code identifier, passkey display
/// name, TOTP account name) and it has a `title`, 1070002 with context
/// `{"name": "<path, e.g. traits.email>", "title": <title>}`; otherwise
/// 1070004 "ID".
pub fn identifier_label(schema: &IdentitySchema) -> UiText {
    identifier_label_from_json(schema.raw())
}

/// [`identifier_label`] for a raw schema document.
pub fn identifier_label_from_json(schema: &Value) -> UiText {
    let marked: Vec<SchemaPath> = list_paths(schema)
        .into_iter()
        .filter(SchemaPath::is_identifier)
        .collect();
    match marked.as_slice() {
        [only] => match &only.title {
            Some(title) => labels::node_generated(title, &only.name),
            None => labels::node_id(),
        },
        _ => labels::node_id(),
    }
}

/// The `identifier` text input of the password login form (value `""`,
/// required, group `default`) with this label.
pub fn identifier_node(label: UiText) -> UiNode {
    UiNode::input(
        "identifier",
        Some(Value::from("")),
        Group::Default,
        InputType::Text,
    )
    .required()
    .with_label(label)
}

/// The required `password` input (group `password`, label 1070001):
/// `current-password` for login, `new-password` for registration and
/// settings.
pub fn password_node(autocomplete: Autocomplete) -> UiNode {
    UiNode::input("password", None, Group::Password, InputType::Password)
        .required()
        .with_autocomplete(autocomplete)
        .with_label(labels::node_password())
}

/// The submit button `method=password` with this label.
pub fn password_submit(label: UiText) -> UiNode {
    UiNode::input(
        "method",
        Some(Value::from("password")),
        Group::Password,
        InputType::Submit,
    )
    .with_label(label)
}

/// The password method's login nodes in the order Kratos adds them:
/// `identifier` (label from the schema, see [`identifier_label`]; 1070004
/// "ID" without a schema), `password` (`current-password`) and the submit
/// button (1010022 "Sign in with password"). The CSRF node is separate
/// ([`csrf_node`]).
pub fn password_login_nodes(schema: Option<&IdentitySchema>) -> Vec<UiNode> {
    let label = schema.map_or_else(labels::node_id, identifier_label);
    vec![
        identifier_node(label),
        password_node(Autocomplete::CurrentPassword),
        password_submit(labels::login_password()),
    ]
}

/// The password method's registration nodes: the trait inputs generated
/// from the schema (group `default`, as the profile strategy adds them in
/// Kratos v25), `password` (`new-password`) and the submit button (1040001
/// "Sign up"). The CSRF node is separate ([`csrf_node`]).
pub fn password_registration_nodes(schema: &IdentitySchema) -> Vec<UiNode> {
    password_registration_nodes_from_json(schema.raw())
}

/// [`password_registration_nodes`] for a raw schema document.
pub fn password_registration_nodes_from_json(schema: &Value) -> Vec<UiNode> {
    let mut nodes = nodes_from_schema_json(schema, Group::Default);
    nodes.push(password_node(Autocomplete::NewPassword));
    nodes.push(password_submit(labels::registration()));
    nodes
}

/// Form inputs for every leaf of an identity schema (`traits.email`,
/// `traits.name.first`, …), sorted by name, in this group. See
/// [`node_from_schema_path`] for the mapping.
pub fn nodes_from_schema(schema: &IdentitySchema, group: Group) -> Vec<UiNode> {
    nodes_from_schema_json(schema.raw(), group)
}

/// [`nodes_from_schema`] for a raw schema document.
pub fn nodes_from_schema_json(schema: &Value, group: Group) -> Vec<UiNode> {
    list_paths(schema)
        .iter()
        .filter(|p| !p.kind.is_json())
        .map(|p| node_from_schema_path(p, group))
        .collect()
}

/// One form input for a schema path (Kratos `NewInputFieldFromSchema`):
///
/// * type: `csrf_token` → `hidden`, a root `password` → `password`,
///   number/integer → `number`, boolean → `checkbox`, else `text`; then
///   `format` decides: `email` → `email` (+ autocomplete `email`), `tel` →
///   `tel` (+ `tel`), `date` → `date`, `date-time` → `datetime-local`,
///   `uri` → `url` (+ `url`), `regex` → `text`;
/// * `pattern` is copied, `maxLength` becomes `maxlength`;
/// * `required` when the parent's `required` lists the property;
/// * `disabled` when `"ory.sh/kratos": {"disabled": true}`;
/// * a `title` becomes the label 1070002 with context `{name, title}`.
pub fn node_from_schema_path(path: &SchemaPath, group: Group) -> UiNode {
    let mut type_ = match path.name.as_str() {
        CSRF_TOKEN => InputType::Hidden,
        "password" => InputType::Password,
        _ => match path.kind {
            PathKind::Number | PathKind::Integer => InputType::Number,
            PathKind::Boolean => InputType::Checkbox,
            _ => InputType::Text,
        },
    };
    let mut autocomplete = None;
    match path.format.as_deref() {
        Some("date-time") => type_ = InputType::DatetimeLocal,
        Some("email") => {
            type_ = InputType::Email;
            autocomplete = Some(Autocomplete::Email);
        }
        Some("tel") => {
            type_ = InputType::Tel;
            autocomplete = Some(Autocomplete::Tel);
        }
        Some("date") => type_ = InputType::Date,
        Some("uri") => {
            type_ = InputType::Url;
            autocomplete = Some(Autocomplete::Url);
        }
        Some("regex") => type_ = InputType::Text,
        _ => {}
    }
    let mut attributes = InputAttributes::new(path.name.clone(), type_);
    attributes.required = path.required;
    attributes.autocomplete = autocomplete;
    attributes.pattern = path.pattern.clone().filter(|p| !p.is_empty());
    attributes.maxlength = path
        .max_length
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| *m > 0);
    attributes.disabled = path.is_disabled();
    UiNode {
        type_: super::node::NodeType::Input,
        group,
        attributes: Attributes::Input(attributes),
        messages: Vec::new(),
        meta: Meta {
            label: path
                .title
                .as_deref()
                .map(|title| labels::node_generated(title, &path.name)),
        },
    }
}
