//! UI nodes (`uiNode`) and their attributes, serialised exactly as Kratos
//! v25.4.0 does (`ui/node/node.go`, `ui/node/attributes.go`).

use std::collections::BTreeMap;
use std::fmt;

use identity::text::UiText;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in the order Kratos declares them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Parses a wire value.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// A node's type (`uiNode.type`, mirrored in `attributes.node_type`).
    pub enum NodeType {
        /// `input`
        Input => "input",
        /// `text`
        Text => "text",
        /// `img`
        Img => "img",
        /// `a`
        A => "a",
        /// `script`
        Script => "script",
        /// `div`
        Div => "div",
    }
}

string_enum! {
    /// The group (method) a node belongs to.
    pub enum Group {
        /// `default`
        Default => "default",
        /// `password`
        Password => "password",
        /// `oidc`
        Oidc => "oidc",
        /// `profile`
        Profile => "profile",
        /// `link`
        Link => "link",
        /// `code`
        Code => "code",
        /// `totp`
        Totp => "totp",
        /// `lookup_secret`
        LookupSecret => "lookup_secret",
        /// `webauthn`
        Webauthn => "webauthn",
        /// `passkey`
        Passkey => "passkey",
        /// `identifier_first`
        IdentifierFirst => "identifier_first",
        /// `captcha`
        Captcha => "captcha",
        /// `saml`
        Saml => "saml",
    }
}

string_enum! {
    /// An input's `type`.
    pub enum InputType {
        /// `text`
        Text => "text",
        /// `password`
        Password => "password",
        /// `number`
        Number => "number",
        /// `checkbox`
        Checkbox => "checkbox",
        /// `hidden`
        Hidden => "hidden",
        /// `email`
        Email => "email",
        /// `tel`
        Tel => "tel",
        /// `submit`
        Submit => "submit",
        /// `button`
        Button => "button",
        /// `datetime-local`
        DatetimeLocal => "datetime-local",
        /// `date`
        Date => "date",
        /// `url`
        Url => "url",
    }
}

string_enum! {
    /// An input's `autocomplete`.
    pub enum Autocomplete {
        /// `email`
        Email => "email",
        /// `tel`
        Tel => "tel",
        /// `url`
        Url => "url",
        /// `current-password`
        CurrentPassword => "current-password",
        /// `new-password`
        NewPassword => "new-password",
        /// `one-time-code`
        OneTimeCode => "one-time-code",
        /// `username webauthn`
        UsernameWebauthn => "username webauthn",
    }
}

string_enum! {
    /// A WebAuthn / passkey trigger (`onclickTrigger`, `onloadTrigger`).
    pub enum Trigger {
        /// `oryWebAuthnRegistration`
        WebAuthnRegistration => "oryWebAuthnRegistration",
        /// `oryWebAuthnLogin`
        WebAuthnLogin => "oryWebAuthnLogin",
        /// `oryPasskeyLogin`
        PasskeyLogin => "oryPasskeyLogin",
        /// `oryPasskeyLoginAutocompleteInit`
        PasskeyLoginAutocompleteInit => "oryPasskeyLoginAutocompleteInit",
        /// `oryPasskeyRegistration`
        PasskeyRegistration => "oryPasskeyRegistration",
        /// `oryPasskeySettingsRegistration`
        PasskeySettingsRegistration => "oryPasskeySettingsRegistration",
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_absent_value(value: &Option<Value>) -> bool {
    matches!(value, None | Some(Value::Null))
}

fn is_empty_str(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

fn is_zero(value: &Option<u32>) -> bool {
    matches!(value, None | Some(0))
}

/// `null` and a missing field both mean "empty" (Go writes a nil slice as
/// `null`, Kratos always writes `[]`).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Attributes of an `input` node (`uiNodeInputAttributes`).
///
/// Field order is Kratos' (`name, type, value, required, autocomplete, label,
/// pattern, disabled, onclick, onclickTrigger, onload, onloadTrigger,
/// maxlength`, then `node_type`). Omit-empty fields are left out exactly when
/// Go's `omitempty` would leave them out: `value` when absent or `null` (an
/// empty string is written), `required` when false, `pattern` and the
/// JavaScript strings when empty, `maxlength` when 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputAttributes {
    /// The input's name (the node id).
    #[serde(default)]
    pub name: String,
    /// The input's type.
    #[serde(rename = "type")]
    pub type_: InputType,
    /// The input's value.
    #[serde(default, skip_serializing_if = "is_absent_value")]
    pub value: Option<Value>,
    /// Whether the input is required.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// The autocomplete hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocomplete: Option<Autocomplete>,
    /// The input's label (rarely used; labels normally live in `meta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<UiText>,
    /// An HTML `pattern`.
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub pattern: Option<String>,
    /// Whether the input is disabled (always written).
    #[serde(default)]
    pub disabled: bool,
    /// Deprecated JavaScript run on click.
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub onclick: Option<String>,
    /// Trigger run on click.
    #[serde(
        default,
        rename = "onclickTrigger",
        skip_serializing_if = "Option::is_none"
    )]
    pub onclick_trigger: Option<Trigger>,
    /// Deprecated JavaScript run on load.
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub onload: Option<String>,
    /// Trigger run on load.
    #[serde(
        default,
        rename = "onloadTrigger",
        skip_serializing_if = "Option::is_none"
    )]
    pub onload_trigger: Option<Trigger>,
    /// The input's maximum length.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub maxlength: Option<u32>,
}

impl InputAttributes {
    /// An input with only a name and a type.
    pub fn new(name: impl Into<String>, type_: InputType) -> Self {
        Self {
            name: name.into(),
            type_,
            value: None,
            required: false,
            autocomplete: None,
            label: None,
            pattern: None,
            disabled: false,
            onclick: None,
            onclick_trigger: None,
            onload: None,
            onload_trigger: None,
            maxlength: None,
        }
    }
}

/// Attributes of a `text` node (`uiNodeTextAttributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAttributes {
    /// The text.
    pub text: UiText,
    /// The node id.
    #[serde(default)]
    pub id: String,
}

/// Attributes of an `img` node (`uiNodeImageAttributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImgAttributes {
    /// The image source (URL or data URI).
    #[serde(default)]
    pub src: String,
    /// The node id.
    #[serde(default)]
    pub id: String,
    /// Width in pixels.
    #[serde(default)]
    pub width: i64,
    /// Height in pixels.
    #[serde(default)]
    pub height: i64,
}

/// Attributes of an `a` node (`uiNodeAnchorAttributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorAttributes {
    /// The link target.
    #[serde(default)]
    pub href: String,
    /// The link title.
    pub title: UiText,
    /// The node id.
    #[serde(default)]
    pub id: String,
}

/// Attributes of a `script` node (`uiNodeScriptAttributes`); every field is
/// always written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptAttributes {
    /// The script URL.
    #[serde(default)]
    pub src: String,
    /// `async`.
    #[serde(default, rename = "async")]
    pub async_: bool,
    /// `referrerpolicy`.
    #[serde(default)]
    pub referrerpolicy: String,
    /// `crossorigin`.
    #[serde(default)]
    pub crossorigin: String,
    /// Subresource integrity hash.
    #[serde(default)]
    pub integrity: String,
    /// The MIME type.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// The node id.
    #[serde(default)]
    pub id: String,
    /// CSP nonce.
    #[serde(default)]
    pub nonce: String,
}

impl ScriptAttributes {
    /// A script as Kratos creates it (`text/javascript`, async,
    /// `no-referrer`, `anonymous`).
    pub fn new(
        id: impl Into<String>,
        src: impl Into<String>,
        integrity: impl Into<String>,
        nonce: impl Into<String>,
    ) -> Self {
        Self {
            src: src.into(),
            async_: true,
            referrerpolicy: "no-referrer".to_owned(),
            crossorigin: "anonymous".to_owned(),
            integrity: integrity.into(),
            type_: "text/javascript".to_owned(),
            id: id.into(),
            nonce: nonce.into(),
        }
    }
}

/// Attributes of a `div` node (`uiNodeDivisionAttributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DivAttributes {
    /// A class name, omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The node id.
    #[serde(default)]
    pub id: String,
    /// `data-*` values, omitted when `None` (keys written sorted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// A node's attributes, by node type. Serialises as the inner attributes
/// followed by `node_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Attributes {
    /// `input`
    Input(InputAttributes),
    /// `text`
    Text(TextAttributes),
    /// `img`
    Img(ImgAttributes),
    /// `a`
    A(AnchorAttributes),
    /// `script`
    Script(ScriptAttributes),
    /// `div`
    Div(DivAttributes),
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(flatten)]
    inner: &'a T,
    node_type: NodeType,
}

impl Attributes {
    /// The node type these attributes belong to.
    pub fn node_type(&self) -> NodeType {
        match self {
            Attributes::Input(_) => NodeType::Input,
            Attributes::Text(_) => NodeType::Text,
            Attributes::Img(_) => NodeType::Img,
            Attributes::A(_) => NodeType::A,
            Attributes::Script(_) => NodeType::Script,
            Attributes::Div(_) => NodeType::Div,
        }
    }

    /// The node id: an input's `name`, otherwise `id`.
    pub fn id(&self) -> &str {
        match self {
            Attributes::Input(a) => &a.name,
            Attributes::Text(a) => &a.id,
            Attributes::Img(a) => &a.id,
            Attributes::A(a) => &a.id,
            Attributes::Script(a) => &a.id,
            Attributes::Div(a) => &a.id,
        }
    }

    /// Decodes attributes for a known node type (Kratos picks the attribute
    /// struct from the node's `type` and ignores `node_type` when reading).
    fn from_value(node_type: NodeType, value: Value) -> Result<Self, serde_json::Error> {
        Ok(match node_type {
            NodeType::Input => Attributes::Input(serde_json::from_value(value)?),
            NodeType::Text => Attributes::Text(serde_json::from_value(value)?),
            NodeType::Img => Attributes::Img(serde_json::from_value(value)?),
            NodeType::A => Attributes::A(serde_json::from_value(value)?),
            NodeType::Script => Attributes::Script(serde_json::from_value(value)?),
            NodeType::Div => Attributes::Div(serde_json::from_value(value)?),
        })
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let node_type = self.node_type();
        match self {
            Attributes::Input(inner) => Tagged { inner, node_type }.serialize(serializer),
            Attributes::Text(inner) => Tagged { inner, node_type }.serialize(serializer),
            Attributes::Img(inner) => Tagged { inner, node_type }.serialize(serializer),
            Attributes::A(inner) => Tagged { inner, node_type }.serialize(serializer),
            Attributes::Script(inner) => Tagged { inner, node_type }.serialize(serializer),
            Attributes::Div(inner) => Tagged { inner, node_type }.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Attributes {
    /// Standalone attributes are told apart by `node_type`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let node_type = value
            .get("node_type")
            .and_then(Value::as_str)
            .ok_or_else(|| D::Error::custom("node attributes without a node_type"))?;
        let node_type = NodeType::parse(node_type)
            .ok_or_else(|| D::Error::custom(format!("unexpected node type: {node_type}")))?;
        Attributes::from_value(node_type, value).map_err(D::Error::custom)
    }
}

/// A node's meta information (`uiNodeMeta`); written as `{}` when empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The node's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<UiText>,
}

/// A UI node (`uiNode`).
#[derive(Debug, Clone, PartialEq)]
pub struct UiNode {
    /// The node type; always equal to `attributes.node_type()` (enforced
    /// when (de)serialising: the attributes decide).
    pub type_: NodeType,
    /// The group (method) the node belongs to.
    pub group: Group,
    /// The attributes.
    pub attributes: Attributes,
    /// Messages for this node (always written, `[]` when empty).
    pub messages: Vec<UiText>,
    /// Meta information (always written, `{}` when empty).
    pub meta: Meta,
}

#[derive(Serialize)]
struct NodeOut<'a> {
    #[serde(rename = "type")]
    type_: NodeType,
    group: Group,
    attributes: &'a Attributes,
    messages: &'a [UiText],
    meta: &'a Meta,
}

#[derive(Deserialize)]
struct NodeIn {
    #[serde(rename = "type")]
    type_: NodeType,
    group: Group,
    #[serde(default)]
    attributes: Value,
    #[serde(default, deserialize_with = "null_as_default")]
    messages: Vec<UiText>,
    #[serde(default, deserialize_with = "null_as_default")]
    meta: Meta,
}

impl Serialize for UiNode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NodeOut {
            // The attributes decide, as Kratos' MarshalJSON does.
            type_: self.attributes.node_type(),
            group: self.group,
            attributes: &self.attributes,
            messages: &self.messages,
            meta: &self.meta,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for UiNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = NodeIn::deserialize(deserializer)?;
        let attributes = match raw.attributes {
            Value::Null => Value::Object(serde_json::Map::new()),
            other => other,
        };
        let attributes = Attributes::from_value(raw.type_, attributes).map_err(D::Error::custom)?;
        Ok(UiNode {
            type_: raw.type_,
            group: raw.group,
            attributes,
            messages: raw.messages,
            meta: raw.meta,
        })
    }
}

impl UiNode {
    /// A node with these attributes, no messages and no label.
    pub fn new(group: Group, attributes: Attributes) -> Self {
        Self {
            type_: attributes.node_type(),
            group,
            attributes,
            messages: Vec::new(),
            meta: Meta::default(),
        }
    }

    /// An input node (Kratos `NewInputField`).
    pub fn input(
        name: impl Into<String>,
        value: Option<Value>,
        group: Group,
        type_: InputType,
    ) -> Self {
        let mut attributes = InputAttributes::new(name, type_);
        attributes.value = value.filter(|v| !v.is_null());
        Self::new(group, Attributes::Input(attributes))
    }

    /// A text node (Kratos `NewTextField`).
    pub fn text(id: impl Into<String>, text: UiText, group: Group) -> Self {
        Self::new(
            group,
            Attributes::Text(TextAttributes {
                text,
                id: id.into(),
            }),
        )
    }

    /// An image node (Kratos `NewImageField`).
    pub fn img(
        id: impl Into<String>,
        src: impl Into<String>,
        width: i64,
        height: i64,
        group: Group,
    ) -> Self {
        Self::new(
            group,
            Attributes::Img(ImgAttributes {
                src: src.into(),
                id: id.into(),
                width,
                height,
            }),
        )
    }

    /// An anchor node (Kratos `NewAnchorField`).
    pub fn anchor(
        id: impl Into<String>,
        href: impl Into<String>,
        title: UiText,
        group: Group,
    ) -> Self {
        Self::new(
            group,
            Attributes::A(AnchorAttributes {
                href: href.into(),
                title,
                id: id.into(),
            }),
        )
    }

    /// A script node.
    pub fn script(attributes: ScriptAttributes, group: Group) -> Self {
        Self::new(group, Attributes::Script(attributes))
    }

    /// A division node (Kratos `NewDivisionField`).
    pub fn div(id: impl Into<String>, group: Group) -> Self {
        Self::new(
            group,
            Attributes::Div(DivAttributes {
                class: None,
                id: id.into(),
                data: None,
            }),
        )
    }

    /// Sets the label (`meta.label`).
    #[must_use]
    pub fn with_label(mut self, label: UiText) -> Self {
        self.meta.label = Some(label);
        self
    }

    /// Marks an input as required (no effect on other nodes).
    #[must_use]
    pub fn required(mut self) -> Self {
        if let Attributes::Input(a) = &mut self.attributes {
            a.required = true;
        }
        self
    }

    /// Sets an input's autocomplete hint (no effect on other nodes).
    #[must_use]
    pub fn with_autocomplete(mut self, autocomplete: Autocomplete) -> Self {
        if let Attributes::Input(a) = &mut self.attributes {
            a.autocomplete = Some(autocomplete);
        }
        self
    }

    /// The node id: an input's `name`, otherwise the attributes' `id`.
    pub fn id(&self) -> &str {
        self.attributes.id()
    }

    /// The input attributes, when this is an input node.
    pub fn input_attributes(&self) -> Option<&InputAttributes> {
        match &self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }

    /// The input attributes, mutably, when this is an input node.
    pub fn input_attributes_mut(&mut self) -> Option<&mut InputAttributes> {
        match &mut self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }

    /// An input's value (`None` for other nodes and inputs without value).
    pub fn value(&self) -> Option<&Value> {
        self.input_attributes().and_then(|a| a.value.as_ref())
    }
}
