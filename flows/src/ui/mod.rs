//! Kratos' UI container (`uiContainer`), nodes (`uiNode`) and their
//! builders, serialised byte-compatibly with Ory Kratos v25.4.0, plus form
//! decoding for `application/x-www-form-urlencoded` submissions.
//!
//! * [`UiContainer`] — `{action, method, nodes, messages?}` with the
//!   operations flows need: adding and upserting nodes, echoing values
//!   (never into password inputs), attaching messages to nodes (or
//!   appending a text input for them when the node does not exist) and
//!   ordering nodes as Kratos does for login and registration.
//! * [`UiNode`], [`Attributes`] and the enums [`NodeType`], [`Group`],
//!   [`InputType`], [`Autocomplete`], [`Trigger`] — the wire model; it
//!   deserialises too (flows are stored as JSON).
//! * [`csrf_node`], [`password_login_nodes`], [`password_registration_nodes`],
//!   [`nodes_from_schema`], [`identifier_label`] — the nodes Kratos' password
//!   and profile strategies emit.
//! * [`labels`] — the info messages used as node labels.
//! * [`decode_form`] — dotted form names to nested, schema-typed JSON.

mod form;
pub mod labels;
mod node;
mod nodes;
mod schema_paths;
mod sort;

#[cfg(test)]
mod tests;

use identity::schema::{FieldMessage, IdentitySchema};
use identity::text::UiText;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use form::{
    decode_form, decode_form_with_schema_json, FormError, MAX_FORM_DEPTH, MAX_FORM_FIELDS,
};
pub use node::{
    AnchorAttributes, Attributes, Autocomplete, DivAttributes, Group, ImgAttributes,
    InputAttributes, InputType, Meta, NodeType, ScriptAttributes, TextAttributes, Trigger, UiNode,
};
pub use nodes::{
    csrf_node, identifier_label, identifier_label_from_json, identifier_node,
    node_from_schema_path, nodes_from_schema, nodes_from_schema_json, password_login_nodes,
    password_node, password_registration_nodes, password_registration_nodes_from_json,
    password_submit, CSRF_TOKEN,
};
pub use schema_paths::{keys_in_order, list_paths, PathKind, SchemaPath};

/// A UI container (`uiContainer`): the form a flow renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiContainer {
    /// Where the form posts to.
    pub action: String,
    /// The form method (`POST`).
    pub method: String,
    /// The nodes, in display order.
    #[serde(default, deserialize_with = "node::null_as_default")]
    pub nodes: Vec<UiNode>,
    /// Form-level messages; omitted when empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "node::null_as_default"
    )]
    pub messages: Vec<UiText>,
}

impl UiContainer {
    /// An empty `POST` form for this action URL.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            method: "POST".to_owned(),
            nodes: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// The password login form as Kratos renders it for a fresh flow:
    /// `csrf_token`, `identifier`, `password`, `method=password`, sorted.
    pub fn password_login(
        action: impl Into<String>,
        csrf_token: &str,
        schema: Option<&IdentitySchema>,
    ) -> Self {
        let mut ui = Self::new(action);
        for node in password_login_nodes(schema) {
            ui.upsert_node(node);
        }
        ui.upsert_node(csrf_node(csrf_token));
        ui.sort_login();
        ui
    }

    /// The password registration form as Kratos renders it for a fresh
    /// flow: `csrf_token`, the traits, `password`, `method=password`, sorted
    /// (the password input follows the first trait).
    pub fn password_registration(
        action: impl Into<String>,
        csrf_token: &str,
        schema: &IdentitySchema,
    ) -> Self {
        let mut ui = Self::new(action);
        ui.upsert_node(csrf_node(csrf_token));
        for node in password_registration_nodes(schema) {
            ui.upsert_node(node);
        }
        ui.sort_registration(schema);
        ui
    }

    /// Appends a node.
    pub fn add_node(&mut self, node: UiNode) {
        self.nodes.push(node);
    }

    /// Replaces the first node with the same id, or appends (Kratos
    /// `SetNode` / `Upsert`).
    pub fn upsert_node(&mut self, node: UiNode) {
        match self.nodes.iter_mut().find(|n| n.id() == node.id()) {
            Some(existing) => *existing = node,
            None => self.nodes.push(node),
        }
    }

    /// Sets (or replaces) the CSRF node.
    pub fn set_csrf(&mut self, token: &str) {
        self.upsert_node(csrf_node(token));
    }

    /// The first node with this id (an input's name, otherwise its id).
    pub fn node(&self, name: &str) -> Option<&UiNode> {
        self.nodes.iter().find(|n| n.id() == name)
    }

    /// The first node with this id, mutably.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut UiNode> {
        self.nodes.iter_mut().find(|n| n.id() == name)
    }

    /// Removes every node with this id.
    pub fn remove_node(&mut self, name: &str) {
        self.nodes.retain(|n| n.id() != name);
    }

    /// Sets the value of the input named `name` (`null` clears it).
    /// Password inputs are never given a value: submitted passwords are not
    /// echoed. Returns whether a value was set.
    pub fn set_value(&mut self, name: &str, value: Value) -> bool {
        let Some(attributes) = self.node_mut(name).and_then(UiNode::input_attributes_mut) else {
            return false;
        };
        if attributes.type_ == InputType::Password {
            return false;
        }
        attributes.value = (!value.is_null()).then_some(value);
        true
    }

    /// Echoes submitted values into existing inputs: `value` is flattened
    /// to dotted names (`{"name": {"first": "A"}}` under prefix `traits`
    /// sets `traits.name.first`; array items get their index) and each
    /// existing non-password input with that name gets its value. Unlike
    /// Kratos, no nodes are created for names the form does not have.
    pub fn set_values_from_json(&mut self, prefix: &str, value: &Value) {
        let mut stack: Vec<(String, &Value)> = vec![(prefix.to_owned(), value)];
        while let Some((name, value)) = stack.pop() {
            let join = |key: &str| {
                if name.is_empty() {
                    key.to_owned()
                } else {
                    format!("{name}.{key}")
                }
            };
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        stack.push((join(key), child));
                    }
                }
                Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        stack.push((join(&index.to_string()), child));
                    }
                }
                leaf => {
                    self.set_value(&name, leaf.clone());
                }
            }
        }
    }

    /// Clears every input value except those named in `keep` (and all
    /// messages), as Kratos `Reset` does.
    pub fn reset(&mut self, keep: &[&str]) {
        self.messages.clear();
        for node in &mut self.nodes {
            node.messages.clear();
            if keep.contains(&node.id()) {
                continue;
            }
            if let Some(attributes) = node.input_attributes_mut() {
                attributes.value = None;
            }
        }
    }

    /// Adds a form-level message.
    pub fn add_message(&mut self, message: UiText) {
        self.messages.push(message);
    }

    /// Adds a message to the node named `name`. A blank name means the
    /// form itself. When no such node exists, a text input of that name
    /// (group `default`, no value) carrying the message is appended, as
    /// Kratos does.
    pub fn add_message_to_node(&mut self, name: &str, message: UiText) {
        if name.trim().is_empty() {
            self.messages.push(message);
            return;
        }
        if let Some(node) = self.node_mut(name) {
            node.messages.push(message);
            return;
        }
        let mut node = UiNode::input(name, None, Group::Default, InputType::Text);
        node.messages.push(message);
        self.nodes.push(node);
    }

    /// Attaches schema validation messages: each to its node (see
    /// [`UiContainer::add_message_to_node`]), root messages (`""`) to the
    /// form.
    pub fn add_field_messages(&mut self, messages: &[FieldMessage]) {
        for message in messages {
            self.add_message_to_node(&message.node, message.message.clone());
        }
    }

    /// Removes the form's and every node's messages.
    pub fn reset_messages(&mut self) {
        self.messages.clear();
        for node in &mut self.nodes {
            node.messages.clear();
        }
    }

    /// Orders the nodes as Kratos orders a login form: groups `oidc,
    /// default, webauthn, passkey, code, password, totp, lookup_secret`
    /// (others first), and within a group (or across `default`/`password`)
    /// `csrf_token`, `identifier`, `password`, the rest, `method` last.
    pub fn sort_login(&mut self) {
        let keys: Vec<String> = ["csrf_token", "identifier", "password"]
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        sort::sort_nodes(&mut self.nodes, sort::LOGIN_GROUPS, &keys);
    }

    /// Orders the nodes as Kratos orders a registration form: groups
    /// `oidc, saml, default, webauthn, passkey, code, password, captcha,
    /// profile` (others first), and within a group (or across
    /// `default`/`password`) `csrf_token`, the first schema property,
    /// `password`, the other properties in schema order, WebAuthn nodes,
    /// the rest, `method` last.
    pub fn sort_registration(&mut self, schema: &IdentitySchema) {
        self.sort_registration_json(schema.raw());
    }

    /// [`UiContainer::sort_registration`] for a raw schema document.
    pub fn sort_registration_json(&mut self, schema: &Value) {
        let mut keys = sort::password_login_order(keys_in_order(schema));
        keys.extend(
            [
                "webauthn_remove",
                "webauthn_register_displayname",
                "webauthn_register",
            ]
            .iter()
            .map(|k| (*k).to_owned()),
        );
        sort::sort_nodes(&mut self.nodes, sort::REGISTRATION_GROUPS, &keys);
    }
}
