//! Server-rendered HTML for the built-in self-service UI.
//!
//! Flows (login, registration, settings, recovery, verification) are rendered *generically* from the
//! flow's typed form ([`flows::ui::UiContainer`]: `action`, `method`, `nodes`, `messages`), so new methods
//! (OIDC buttons, TOTP, lookup secrets, ...) show up without new templates.
//!
//! Design constraints:
//! - Works without JavaScript: plain HTML forms posting to `ui.action` with `ui.method`; `script` nodes
//!   are dropped and `button` inputs become submit buttons.
//! - Strict-CSP friendly: no inline scripts and no `style` attributes. Note that TOTP QR codes are
//!   `data:image/png;base64,...` images, so the policy needs `img-src 'self' data:` for those to show.
//! - Everything taken from data is escaped with [`escape_html`]; URLs placed in `href`/`src`/`action`
//!   must be `http(s)://` or a relative path starting with `/` or `?` (otherwise `#` is rendered).
//!   `img` nodes may additionally use `data:image/png|jpeg;base64,` URLs; images with any other `src`
//!   are omitted.
//! - Accessible: every visible input has a `<label for>`, node messages are tied to their field with
//!   `aria-describedby` (+ `aria-invalid="true"` for errors), flow-level errors live in a
//!   `role="alert"` region and info/success messages in a `role="status"` region.
//!
//! Layout of a flow: nodes are split into one `<form>` per node group (in order of first appearance),
//! each carrying the hidden inputs of the `default` group (e.g. `csrf_token`). Visible `default`-group
//! nodes (e.g. `identifier`) go into the first non-social form. Separate forms keep `required` fields
//! of one method from blocking another method's submit button, and make Enter submit the right method.

use flows::ui::{
    AnchorAttributes, Attributes, Group, ImgAttributes, InputAttributes, InputType, TextAttributes,
    UiNode,
};
use flows::{Flow, FlowKind};
use identity::text::{UiText, UiTextType};
use serde_json::Value;
use std::collections::HashSet;

/// Product look.
#[derive(Debug, Clone)]
pub struct Branding {
    pub product_name: String,
    pub logo_url: Option<String>,
    /// URL of the stylesheet (e.g. "/ui/style.css" or an operator-supplied URL).
    pub stylesheet_url: String,
}

/// A link shown under the form, e.g. ("Create an account", "/self-service/registration/browser").
#[derive(Debug, Clone)]
pub struct Link {
    pub text: String,
    pub href: String,
}

/// What to render.
pub enum Page<'a> {
    /// A login/registration/settings/recovery/verification flow. `title` e.g. "Sign in"; the form is the flow's
    /// `ui`, with the CSRF token the page must show already in its `csrf_token` node.
    Flow {
        title: &'a str,
        flow: &'a Flow,
        links: Vec<Link>,
    },
    /// An error page; `error` is the Kratos error object {code, status, reason?, message, id?}.
    /// The self-service error container (`{"id": ..., "error": {...}}`) and the API error envelope
    /// (`{"error": {...}}`) are accepted too.
    Error { error: &'a Value, links: Vec<Link> },
    /// "Signed in as": `session` is the Kratos session JSON (has identity.traits, identity.id, authenticated_at,
    /// expires_at, authentication_methods). Show the best display name: traits.email, else traits.username, else
    /// the first string trait, else identity id. `logout_url` is a GET URL that signs out.
    Welcome {
        session: &'a Value,
        logout_url: &'a str,
        links: Vec<Link>,
    },
    /// Logout confirmation: a page with a "Sign out" button (a <form method="get"> to the logout URL with the token
    /// as a hidden input `token` and optional `return_to` hidden input) and a "Cancel" link.
    Logout {
        action: &'a str,
        token: &'a str,
        return_to: Option<&'a str>,
        cancel_href: &'a str,
    },
}

/// The default stylesheet served at /ui/style.css.
pub const STYLESHEET: &str = include_str!("style.css");

static NULL: Value = Value::Null;

/// The whole HTML document (<!doctype html> ... ), with <title>{title} · {product_name}</title>.
pub fn render(page: &Page<'_>, branding: &Branding) -> String {
    let mut ids = Ids::default();
    let mut main = String::with_capacity(4096);
    let title: String = match page {
        Page::Flow { title, flow, links } => {
            flow_body(&mut main, title, flow, links, &mut ids);
            (*title).to_string()
        }
        Page::Error { error, links } => error_body(&mut main, error, links),
        Page::Welcome {
            session,
            logout_url,
            links,
        } => {
            welcome_body(&mut main, session, logout_url, links);
            "Signed in".to_string()
        }
        Page::Logout {
            action,
            token,
            return_to,
            cancel_href,
        } => {
            logout_body(&mut main, action, token, *return_to, cancel_href);
            "Sign out".to_string()
        }
    };
    document(&title, branding, &main)
}

/// Escapes `& < > " '` so the result is safe both as element text and as a quoted attribute value.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    push_escaped(&mut out, s);
    out
}

/// The best human-readable name for a Kratos identity: `traits.email`, else `traits.username`, else the
/// first non-empty string trait (depth-first, in schema order), else the identity id.
pub fn display_name(identity: &Value) -> String {
    let traits = identity.get("traits").unwrap_or(&NULL);
    let non_empty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    non_empty(traits.get("email"))
        .or_else(|| non_empty(traits.get("username")))
        .or_else(|| first_string(traits, 0))
        .or_else(|| non_empty(identity.get("id")))
        .unwrap_or_default()
}

fn first_string(v: &Value, depth: usize) -> Option<String> {
    if depth > 8 {
        return None;
    }
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(map) => map.values().find_map(|v| first_string(v, depth + 1)),
        Value::Array(items) => items.iter().find_map(|v| first_string(v, depth + 1)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Escaping and URL checks
// ---------------------------------------------------------------------------------------------

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
}

/// Appends ` name="escaped value"`.
fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

fn flag(out: &mut String, name: &str, on: bool) {
    if on {
        out.push(' ');
        out.push_str(name);
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `url` if it is `http(s)://...` or a relative reference starting with `/` or `?`, else `"#"`.
fn safe_url(url: &str) -> &str {
    if url.is_empty() || url.chars().any(char::is_control) {
        return "#";
    }
    if url.starts_with('/')
        || url.starts_with('?')
        || starts_with_ci(url, "http://")
        || starts_with_ci(url, "https://")
    {
        url
    } else {
        "#"
    }
}

/// A safe `src` for `<img>`: a safe URL, or a base64 PNG/JPEG data URL. `None` means "don't render".
fn safe_img_src(src: &str) -> Option<&str> {
    for prefix in ["data:image/png;base64,", "data:image/jpeg;base64,"] {
        if starts_with_ci(src, prefix) {
            let payload = src.get(prefix.len()..).unwrap_or("");
            let ok = !payload.is_empty()
                && payload
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            return ok.then_some(src);
        }
    }
    let url = safe_url(src);
    (url != "#").then_some(url)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens a `<form>`. Browsers drop the query string of a GET form's action, so for GET forms the
/// query parameters are moved into hidden inputs.
fn open_form(out: &mut String, class: &str, action: &str, get: bool) {
    let action = safe_url(action);
    out.push_str("<form");
    attr(out, "class", class);
    attr(out, "method", if get { "get" } else { "post" });
    match action.split_once('?') {
        Some((path, query)) if get => {
            attr(out, "action", if path.is_empty() { "?" } else { path });
            out.push_str(">\n");
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                hidden_input(out, &percent_decode(k), &percent_decode(v));
            }
        }
        _ => {
            attr(out, "action", action);
            out.push_str(">\n");
        }
    }
}

fn hidden_input(out: &mut String, name: &str, value: &str) {
    out.push_str("<input type=\"hidden\"");
    attr(out, "name", name);
    attr(out, "value", value);
    out.push_str(">\n");
}

// ---------------------------------------------------------------------------------------------
// Element ids
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Ids {
    used: HashSet<String>,
}

impl Ids {
    /// `prefix` + `raw` with every char outside `[A-Za-z0-9_-]` replaced by `-`, made unique.
    fn make(&mut self, prefix: &str, raw: &str) -> String {
        let mut base = String::with_capacity(prefix.len() + raw.len());
        base.push_str(prefix);
        if raw.is_empty() {
            base.push_str("node");
        }
        base.extend(raw.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        }));
        self.unique(base)
    }

    /// `base`, or `base-2`, `base-3`, ... if already taken.
    fn unique(&mut self, base: String) -> String {
        let mut candidate = base.clone();
        let mut n = 1u32;
        while self.used.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        self.used.insert(candidate.clone());
        candidate
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn message_class(kind: UiTextType) -> &'static str {
    match kind {
        UiTextType::Info => "msg msg-info",
        UiTextType::Error => "msg msg-error",
        UiTextType::Success => "msg msg-success",
    }
}

/// Flow-level messages: errors in a `role="alert"` region, info/success in a `role="status"` region.
fn render_alerts(out: &mut String, msgs: &[&UiText]) {
    let errors = || msgs.iter().filter(|m| m.kind == UiTextType::Error);
    let others = || msgs.iter().filter(|m| m.kind != UiTextType::Error);
    if errors().next().is_some() {
        out.push_str("<div class=\"pc-alert pc-alert-error\" role=\"alert\">\n");
        for m in errors() {
            message_p(out, None, m);
        }
        out.push_str("</div>\n");
    }
    if others().next().is_some() {
        let class = if others().all(|m| m.kind == UiTextType::Success) {
            "pc-alert pc-alert-success"
        } else {
            "pc-alert pc-alert-info"
        };
        out.push_str("<div");
        attr(out, "class", class);
        out.push_str(" role=\"status\">\n");
        for m in others() {
            message_p(out, None, m);
        }
        out.push_str("</div>\n");
    }
}

fn message_p(out: &mut String, id: Option<&str>, m: &UiText) {
    out.push_str("<p");
    if let Some(id) = id {
        attr(out, "id", id);
    }
    attr(out, "class", message_class(m.kind));
    out.push('>');
    push_escaped(out, &m.text);
    out.push_str("</p>\n");
}

// ---------------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------------

/// Whether the page shows this node: `script` (no JS in this UI) and `div` (JS mount points) are dropped.
fn is_shown(node: &UiNode) -> bool {
    !matches!(node.attributes, Attributes::Script(_) | Attributes::Div(_))
}

/// An input of this type.
fn input_of<'a>(node: &'a UiNode, types: &[InputType]) -> Option<&'a InputAttributes> {
    node.input_attributes().filter(|a| types.contains(&a.type_))
}

fn is_hidden(node: &UiNode) -> bool {
    input_of(node, &[InputType::Hidden]).is_some()
}

fn is_submit(node: &UiNode) -> bool {
    input_of(node, &[InputType::Submit, InputType::Button]).is_some()
}

/// An input the user types into or ticks (not hidden, not a button).
fn field_of(node: &UiNode) -> Option<&InputAttributes> {
    node.input_attributes().filter(|a| {
        !matches!(
            a.type_,
            InputType::Hidden | InputType::Submit | InputType::Button
        )
    })
}

fn is_focusable_field(node: &UiNode) -> bool {
    field_of(node).is_some_and(|a| !a.disabled)
}

fn is_text_like(node: &UiNode) -> bool {
    field_of(node).is_some_and(|a| !a.disabled && a.type_ != InputType::Checkbox)
}

/// The label: `meta.label`, else an input's own `label`, if not blank.
fn node_label(node: &UiNode) -> Option<&str> {
    node.meta
        .label
        .as_ref()
        .or_else(|| node.input_attributes().and_then(|a| a.label.as_ref()))
        .map(|l| l.text.as_str())
        .filter(|s| !s.trim().is_empty())
}

fn has_error(node: &UiNode) -> bool {
    node.messages.iter().any(|m| m.kind == UiTextType::Error)
}

/// An input's `value` as a string; `None` for absent, null, objects and arrays.
fn input_value(a: &InputAttributes) -> Option<String> {
    match a.value.as_ref()? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Section<'v> {
    group: Group,
    nodes: Vec<&'v UiNode>,
}

/// Groups whose forms hold only "sign in with provider" buttons; they never get the visible `default`-group
/// fields.
fn is_social(group: Group) -> bool {
    matches!(group, Group::Oidc | Group::Saml)
}

/// Splits nodes into per-group sections (see the module docs). Returns (shared hidden inputs, sections).
fn layout<'v>(nodes: &[&'v UiNode]) -> (Vec<&'v UiNode>, Vec<Section<'v>>) {
    let mut shared = Vec::new();
    let mut default_visible = Vec::new();
    let mut sections: Vec<Section<'v>> = Vec::new();
    for &node in nodes {
        if node.group == Group::Default {
            if is_hidden(node) {
                shared.push(node);
            } else {
                default_visible.push(node);
            }
            continue;
        }
        match sections.iter_mut().find(|s| s.group == node.group) {
            Some(section) => section.nodes.push(node),
            None => sections.push(Section {
                group: node.group,
                nodes: vec![node],
            }),
        }
    }
    if !default_visible.is_empty() {
        match sections.iter_mut().find(|s| !is_social(s.group)) {
            Some(primary) => {
                default_visible.append(&mut primary.nodes);
                primary.nodes = default_visible;
            }
            None => sections.push(Section {
                group: Group::Default,
                nodes: default_visible,
            }),
        }
    }
    if sections.is_empty() && !shared.is_empty() {
        // Only hidden inputs: still emit the form so nothing is silently lost.
        sections.push(Section {
            group: Group::Default,
            nodes: Vec::new(),
        });
    }
    (shared, sections)
}

fn group_heading(group: Group) -> String {
    let heading = match group {
        Group::Default => "Account",
        Group::Profile => "Profile",
        Group::Password => "Password",
        Group::Oidc => "Social sign-in",
        Group::Saml => "Single sign-on",
        Group::Totp => "Authenticator app",
        Group::LookupSecret => "Recovery codes",
        Group::Webauthn => "Security keys",
        Group::Passkey => "Passkeys",
        Group::Code => "Sign-in code",
        other => {
            let words = other.as_str().replace(['_', '-'], " ");
            let mut chars = words.chars();
            return match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => "Other".to_string(),
            };
        }
    };
    heading.to_string()
}

/// The form a section's inputs post with.
struct Form<'a> {
    action: &'a str,
    get: bool,
    /// The `default` group's hidden inputs (e.g. `csrf_token`), repeated in every form.
    shared: &'a [&'a UiNode],
    /// Settings pages head each section with its group's name; other pages divide sections by "or".
    settings: bool,
}

fn flow_body(out: &mut String, title: &str, flow: &Flow, links: &[Link], ids: &mut Ids) {
    let ui = &flow.ui;
    let nodes: Vec<&UiNode> = ui.nodes.iter().filter(|n| is_shown(n)).collect();

    // Messages on hidden inputs (e.g. csrf_token) cannot be shown next to a field: lift them.
    let mut flow_msgs: Vec<&UiText> = ui.messages.iter().collect();
    for node in nodes.iter().filter(|n| is_hidden(n)) {
        flow_msgs.extend(node.messages.iter());
    }

    out.push_str("<h1>");
    push_escaped(out, title);
    out.push_str("</h1>\n");
    render_alerts(out, &flow_msgs);

    let (shared, sections) = layout(&nodes);
    let focus = autofocus(&sections);
    let form = Form {
        action: &ui.action,
        get: ui.method.eq_ignore_ascii_case("get"),
        shared: &shared,
        settings: flow.kind == FlowKind::Settings || ui.action.contains("/self-service/settings"),
    };
    for (i, section) in sections.iter().enumerate() {
        render_section(out, &form, section, i, focus, ids);
    }
    render_links(out, links);
}

/// The one field that gets `autofocus`: the first with an error, else the first required one still empty (after
/// a form-level error such as a wrong password the identifier is filled in), else the first text field.
fn autofocus<'v>(sections: &[Section<'v>]) -> Option<&'v UiNode> {
    let in_order = || sections.iter().flat_map(|s| s.nodes.iter().copied());
    in_order()
        .find(|n| is_focusable_field(n) && has_error(n))
        .or_else(|| {
            in_order().find(|n| {
                is_focusable_field(n)
                    && field_of(n).is_some_and(|a| a.required)
                    && field_of(n)
                        .and_then(input_value)
                        .is_none_or(|v| v.is_empty())
            })
        })
        .or_else(|| in_order().find(|n| is_text_like(n)))
}

fn render_section(
    out: &mut String,
    form: &Form<'_>,
    section: &Section<'_>,
    index: usize,
    focus: Option<&UiNode>,
    ids: &mut Ids,
) {
    let social = is_social(section.group);
    if index > 0 && !form.settings {
        out.push_str("<p class=\"pc-divider\"><span>or</span></p>\n");
    }
    open_section(out, section.group, form.settings, ids);
    let has_form = section.nodes.iter().any(|n| n.input_attributes().is_some())
        || (section.nodes.is_empty() && !form.shared.is_empty());
    if has_form {
        let class = if social {
            "pc-form pc-social"
        } else {
            "pc-form"
        };
        open_form(out, class, form.action, form.get);
        for node in form.shared {
            if let Some(a) = node.input_attributes() {
                render_hidden(out, a);
            }
        }
    }
    let mut primary_used = social;
    for &node in &section.nodes {
        let button_class = if social {
            "pc-btn pc-btn-social"
        } else if is_submit(node) && !primary_used {
            primary_used = true;
            "pc-btn pc-btn-primary"
        } else {
            "pc-btn pc-btn-secondary"
        };
        let autofocus = focus.is_some_and(|f| std::ptr::eq(f, node));
        render_node(out, node, ids, autofocus, button_class);
    }
    if has_form {
        out.push_str("</form>\n");
    }
    out.push_str("</section>\n");
}

/// Opens a section's `<section>`; on settings pages with a heading naming the group.
fn open_section(out: &mut String, group: Group, settings: bool, ids: &mut Ids) {
    let heading_id = settings.then(|| ids.make("section-", group.as_str()));
    out.push_str("<section");
    let class = format!("pc-section pc-group-{}", class_fragment(group.as_str()));
    attr(out, "class", &class);
    if let Some(hid) = &heading_id {
        attr(out, "aria-labelledby", hid);
    }
    out.push_str(">\n");
    if let Some(hid) = &heading_id {
        out.push_str("<h2");
        attr(out, "id", hid);
        out.push('>');
        push_escaped(out, &group_heading(group));
        out.push_str("</h2>\n");
    }
}

/// A CSS class fragment from a group name.
fn class_fragment(group: &str) -> String {
    group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn render_hidden(out: &mut String, a: &InputAttributes) {
    hidden_input(out, &a.name, input_value(a).as_deref().unwrap_or(""));
}

/// Renders node messages with ids `<base_id>-msg-<n>` (for nodes that are not form controls).
fn node_messages(out: &mut String, node: &UiNode, base_id: &str, ids: &mut Ids) {
    for (n, m) in node.messages.iter().enumerate() {
        let id = ids.unique(format!("{base_id}-msg-{}", n + 1));
        message_p(out, Some(&id), m);
    }
}

/// Pre-computes message ids (in the same order [`node_messages`] will use) so the input can
/// reference them. Ids are reserved immediately.
fn message_ids(node: &UiNode, base_id: &str, ids: &mut Ids) -> Vec<String> {
    (1..=node.messages.len())
        .map(|n| ids.unique(format!("{base_id}-msg-{n}")))
        .collect()
}

fn push_messages(out: &mut String, node: &UiNode, msg_ids: &[String]) {
    for (m, id) in node.messages.iter().zip(msg_ids) {
        message_p(out, Some(id), m);
    }
}

fn describedby(out: &mut String, msg_ids: &[String], invalid: bool) {
    if !msg_ids.is_empty() {
        attr(out, "aria-describedby", &msg_ids.join(" "));
    }
    if invalid {
        out.push_str(" aria-invalid=\"true\"");
    }
}

fn render_node(
    out: &mut String,
    node: &UiNode,
    ids: &mut Ids,
    autofocus: bool,
    button_class: &str,
) {
    match &node.attributes {
        Attributes::Input(a) => match a.type_ {
            InputType::Hidden => render_hidden(out, a),
            InputType::Submit | InputType::Button => {
                render_button(out, node, a, ids, button_class);
            }
            _ => render_field(out, node, a, ids, autofocus),
        },
        Attributes::Text(t) => render_text(out, node, t, ids),
        Attributes::Img(i) => render_img(out, node, i, ids),
        Attributes::A(a) => render_anchor(out, node, a, ids),
        Attributes::Script(_) | Attributes::Div(_) => {}
    }
}

fn render_field(
    out: &mut String,
    node: &UiNode,
    a: &InputAttributes,
    ids: &mut Ids,
    autofocus: bool,
) {
    let name = a.name.as_str();
    let id = ids.make("field-", name);
    let msg_ids = message_ids(node, &id, ids);
    let label = node_label(node).unwrap_or(if name.is_empty() { "Field" } else { name });
    let checkbox = a.type_ == InputType::Checkbox;

    out.push_str(if checkbox {
        "<div class=\"pc-field pc-check\">\n"
    } else {
        "<div class=\"pc-field\">\n"
    });
    if !checkbox {
        field_label(out, &id, label);
    }
    out.push_str("<input");
    attr(out, "id", &id);
    attr(out, "name", name);
    input_type_and_value(out, a);
    input_constraints(out, a);
    describedby(out, &msg_ids, has_error(node));
    flag(out, "autofocus", autofocus);
    out.push_str(">\n");
    if checkbox {
        field_label(out, &id, label);
    }
    push_messages(out, node, &msg_ids);
    out.push_str("</div>\n");
}

fn field_label(out: &mut String, id: &str, label: &str) {
    out.push_str("<label");
    attr(out, "for", id);
    out.push('>');
    push_escaped(out, label);
    out.push_str("</label>\n");
}

/// ` type=".." value=".."` of a field; a checkbox is checked when its value is true, and a password is never
/// echoed back into the page.
fn input_type_and_value(out: &mut String, a: &InputAttributes) {
    match a.type_ {
        InputType::Checkbox => {
            attr(out, "type", "checkbox");
            attr(out, "value", "true");
            let checked = match &a.value {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            flag(out, "checked", checked);
        }
        InputType::Password => attr(out, "type", "password"),
        t => {
            attr(out, "type", t.as_str());
            if let Some(v) = input_value(a) {
                attr(out, "value", &v);
            }
        }
    }
}

/// `required`, `disabled`, `autocomplete` and, for text-like fields, `pattern` and `maxlength`.
fn input_constraints(out: &mut String, a: &InputAttributes) {
    flag(out, "required", a.required);
    flag(out, "disabled", a.disabled);
    match a.autocomplete {
        Some(ac) => attr(out, "autocomplete", ac.as_str()),
        // Password managers pair the sign-in identifier with the password.
        None if a.name == "identifier" => attr(out, "autocomplete", "username"),
        None => {}
    }
    if a.type_ == InputType::Checkbox {
        return;
    }
    if let Some(p) = a.pattern.as_deref().filter(|s| !s.is_empty()) {
        attr(out, "pattern", p);
    }
    if let Some(ml) = a.maxlength {
        attr(out, "maxlength", &ml.to_string());
    }
}

fn render_button(out: &mut String, node: &UiNode, a: &InputAttributes, ids: &mut Ids, class: &str) {
    let name = a.name.as_str();
    let id = ids.make("field-", name);
    let msg_ids = message_ids(node, &id, ids);
    let value = input_value(a);
    let label = node_label(node)
        .or(value.as_deref().filter(|v| !v.trim().is_empty()))
        .unwrap_or("Submit");
    out.push_str("<button type=\"submit\"");
    attr(out, "class", class);
    attr(out, "id", &id);
    if !name.is_empty() {
        attr(out, "name", name);
        if let Some(v) = &value {
            attr(out, "value", v);
        }
    }
    flag(out, "disabled", a.disabled);
    describedby(out, &msg_ids, false);
    out.push('>');
    push_escaped(out, label);
    out.push_str("</button>\n");
    push_messages(out, node, &msg_ids);
}

fn render_text(out: &mut String, node: &UiNode, t: &TextAttributes, ids: &mut Ids) {
    let id = ids.make("node-", &t.id);
    out.push_str("<div class=\"pc-field pc-textnode\"");
    attr(out, "id", &id);
    out.push_str(">\n");
    if let Some(label) = node_label(node) {
        out.push_str("<p class=\"pc-text-label\">");
        push_escaped(out, label);
        out.push_str("</p>\n");
    }
    // Lookup secrets carry the individual codes in context.secrets.
    let secrets: Vec<&str> = t
        .text
        .context
        .as_ref()
        .and_then(|c| c.get("secrets"))
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|m| m.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if secrets.is_empty() {
        out.push_str("<p class=\"pc-text\">");
        push_escaped(out, &t.text.text);
        out.push_str("</p>\n");
    } else {
        out.push_str("<ul class=\"pc-codes\">\n");
        for code in secrets {
            out.push_str("<li><code>");
            push_escaped(out, code);
            out.push_str("</code></li>\n");
        }
        out.push_str("</ul>\n");
    }
    node_messages(out, node, &id, ids);
    out.push_str("</div>\n");
}

fn render_img(out: &mut String, node: &UiNode, img: &ImgAttributes, ids: &mut Ids) {
    let Some(src) = safe_img_src(&img.src) else {
        return;
    };
    let id = ids.make("node-", &img.id);
    out.push_str("<div class=\"pc-field pc-imgnode\">\n<img class=\"pc-img\"");
    attr(out, "id", &id);
    attr(out, "src", src);
    attr(out, "alt", node_label(node).unwrap_or(""));
    for (dim, n) in [("width", img.width), ("height", img.height)] {
        if let Ok(n) = u64::try_from(n) {
            attr(out, dim, &n.to_string());
        }
    }
    out.push_str(">\n");
    node_messages(out, node, &id, ids);
    out.push_str("</div>\n");
}

fn render_anchor(out: &mut String, node: &UiNode, a: &AnchorAttributes, ids: &mut Ids) {
    let id = ids.make("node-", &a.id);
    let text = Some(a.title.text.as_str())
        .filter(|s| !s.trim().is_empty())
        .or(node_label(node))
        .unwrap_or("Continue");
    out.push_str("<p class=\"pc-field\"><a class=\"pc-btn pc-btn-primary\"");
    attr(out, "id", &id);
    attr(out, "href", safe_url(&a.href));
    out.push('>');
    push_escaped(out, text);
    out.push_str("</a></p>\n");
    node_messages(out, node, &id, ids);
}

// ---------------------------------------------------------------------------------------------
// Other pages
// ---------------------------------------------------------------------------------------------

fn render_links(out: &mut String, links: &[Link]) {
    if links.is_empty() {
        return;
    }
    out.push_str("<nav class=\"pc-links\" aria-label=\"More options\">\n<ul>\n");
    for link in links {
        out.push_str("<li><a");
        attr(out, "href", safe_url(&link.href));
        out.push('>');
        push_escaped(out, &link.text);
        out.push_str("</a></li>\n");
    }
    out.push_str("</ul>\n</nav>\n");
}

/// Returns the page title.
fn error_body(out: &mut String, error: &Value, links: &[Link]) -> String {
    // Accept the self-service error container / API envelope as well as the bare error object.
    let inner = error
        .get("error")
        .filter(|e| e.is_object())
        .unwrap_or(error);
    let text = |k: &str| {
        inner
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let title = text("status").unwrap_or("Error").to_string();
    let code = match inner.get("code") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let id = text("id").or_else(|| error.get("id").and_then(Value::as_str));

    out.push_str("<h1>");
    push_escaped(out, &title);
    out.push_str("</h1>\n<div class=\"pc-alert pc-alert-error\" role=\"alert\">\n<p class=\"msg msg-error\">");
    push_escaped(out, text("message").unwrap_or("An error occurred."));
    out.push_str("</p>\n</div>\n");
    if let Some(reason) = text("reason") {
        out.push_str("<p class=\"pc-reason\">");
        push_escaped(out, reason);
        out.push_str("</p>\n");
    }
    if code.is_some() || id.is_some() {
        out.push_str("<dl class=\"pc-details\">\n");
        if let Some(code) = &code {
            out.push_str("<dt>Error code</dt><dd>");
            push_escaped(out, code);
            out.push_str("</dd>\n");
        }
        if let Some(id) = id {
            out.push_str("<dt>Reference</dt><dd><code>");
            push_escaped(out, id);
            out.push_str("</code></dd>\n");
        }
        out.push_str("</dl>\n");
    }
    render_links(out, links);
    title
}

/// "2024-05-01T12:34:56.789Z" -> "2024-05-01 12:34 UTC"; anything unexpected is shown as is.
fn pretty_time(s: &str) -> String {
    let (Some(date), Some(b'T'), Some(hm)) = (s.get(..10), s.as_bytes().get(10), s.get(11..16))
    else {
        return s.to_string();
    };
    let zone = if s.ends_with('Z') || s.ends_with('z') {
        "UTC".to_string()
    } else {
        match s.len().checked_sub(6).and_then(|i| s.get(i..)) {
            Some(off) if off.starts_with('+') || off.starts_with('-') => format!("UTC{off}"),
            _ => String::new(),
        }
    };
    format!("{date} {hm} {zone}").trim_end().to_string()
}

fn time_row(out: &mut String, label: &str, value: Option<&str>) {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return;
    };
    out.push_str("<dt>");
    push_escaped(out, label);
    out.push_str("</dt><dd><time");
    attr(out, "datetime", value);
    out.push('>');
    push_escaped(out, &pretty_time(value));
    out.push_str("</time></dd>\n");
}

fn welcome_body(out: &mut String, session: &Value, logout_url: &str, links: &[Link]) {
    let identity = session.get("identity").unwrap_or(&NULL);
    let name = display_name(identity);
    out.push_str("<h1>You are signed in</h1>\n<p class=\"pc-lead\">Signed in as <strong class=\"pc-identity\">");
    push_escaped(
        out,
        if name.is_empty() {
            "unknown user"
        } else {
            &name
        },
    );
    out.push_str("</strong></p>\n");

    let mut methods: Vec<&str> = Vec::new();
    if let Some(items) = session
        .get("authentication_methods")
        .and_then(Value::as_array)
    {
        for m in items
            .iter()
            .filter_map(|m| m.get("method").and_then(Value::as_str))
        {
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }
    let authenticated_at = session.get("authenticated_at").and_then(Value::as_str);
    let expires_at = session.get("expires_at").and_then(Value::as_str);
    if authenticated_at.is_some() || expires_at.is_some() || !methods.is_empty() {
        out.push_str("<dl class=\"pc-details\">\n");
        time_row(out, "Signed in at", authenticated_at);
        time_row(out, "Session expires", expires_at);
        if !methods.is_empty() {
            out.push_str("<dt>Methods</dt><dd>");
            push_escaped(out, &methods.join(", "));
            out.push_str("</dd>\n");
        }
        out.push_str("</dl>\n");
    }
    out.push_str("<p class=\"pc-actions\"><a class=\"pc-btn pc-btn-secondary\"");
    attr(out, "href", safe_url(logout_url));
    out.push_str(">Sign out</a></p>\n");
    render_links(out, links);
}

fn logout_body(
    out: &mut String,
    action: &str,
    token: &str,
    return_to: Option<&str>,
    cancel_href: &str,
) {
    out.push_str("<h1>Sign out</h1>\n<p class=\"pc-lead\">Do you want to sign out?</p>\n");
    open_form(out, "pc-form", action, true);
    hidden_input(out, "token", token);
    if let Some(rt) = return_to.filter(|r| !r.is_empty()) {
        hidden_input(out, "return_to", rt);
    }
    out.push_str("<div class=\"pc-actions\">\n<button type=\"submit\" class=\"pc-btn pc-btn-primary\">Sign out</button>\n<a class=\"pc-btn pc-btn-secondary\"");
    attr(out, "href", safe_url(cancel_href));
    out.push_str(">Cancel</a>\n</div>\n</form>\n");
}

// ---------------------------------------------------------------------------------------------
// Document shell
// ---------------------------------------------------------------------------------------------

fn document(title: &str, branding: &Branding, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 1024);
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<meta name=\"color-scheme\" content=\"light dark\">\n",
        "<meta name=\"robots\" content=\"noindex, nofollow\">\n<title>"
    ));
    push_escaped(&mut out, title);
    out.push_str(" \u{b7} ");
    push_escaped(&mut out, &branding.product_name);
    // An empty icon: browsers stop asking for /favicon.ico.
    out.push_str("</title>\n<link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\"");
    attr(&mut out, "href", safe_url(&branding.stylesheet_url));
    out.push_str(">\n</head>\n<body>\n<div class=\"pc-page\">\n<header class=\"pc-brand\">\n");
    if let Some(src) = branding.logo_url.as_deref().and_then(safe_img_src) {
        out.push_str("<img class=\"pc-logo\"");
        attr(&mut out, "src", src);
        out.push_str(" alt=\"\">\n");
    }
    out.push_str("<span class=\"pc-product\">");
    push_escaped(&mut out, &branding.product_name);
    out.push_str("</span>\n</header>\n<main class=\"pc-card\">\n");
    out.push_str(main);
    out.push_str("</main>\n</div>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flows::FlowType;
    use serde_json::json;

    fn branding() -> Branding {
        Branding {
            product_name: "Acme".into(),
            logo_url: Some("/ui/logo.png".into()),
            stylesheet_url: "/ui/style.css".into(),
        }
    }

    fn login_flow() -> Value {
        json!({
            "id": "f1",
            "type": "browser",
            "state": "choose_method",
            "ui": {
                "action": "https://auth.example.com/self-service/login?flow=f1",
                "method": "POST",
                "messages": [],
                "nodes": [
                    {"type":"input","group":"default","attributes":{"name":"csrf_token","type":"hidden","value":"CSRF123","required":true,"disabled":false,"node_type":"input"},"messages":[],"meta":{}},
                    {"type":"input","group":"default","attributes":{"name":"identifier","type":"text","value":"","required":true,"disabled":false,"node_type":"input"},"messages":[{"id":4000002,"text":"Property identifier is missing.","type":"error","context":{"property":"identifier"}}],"meta":{"label":{"id":1070004,"text":"ID","type":"info"}}},
                    {"type":"input","group":"oidc","attributes":{"name":"provider","type":"submit","value":"google","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1010002,"text":"Sign in with google","type":"info"}}},
                    {"type":"input","group":"password","attributes":{"name":"password","type":"password","value":"hunter2","required":true,"autocomplete":"current-password","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070001,"text":"Password","type":"info"}}},
                    {"type":"input","group":"password","attributes":{"name":"method","type":"submit","value":"password","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1010001,"text":"Sign in","type":"info","context":{}}}},
                    {"type":"script","group":"webauthn","attributes":{"src":"https://example.com/webauthn.js","id":"webauthn_script","node_type":"script"},"messages":[],"meta":{}}
                ]
            }
        })
    }

    /// The typed flow for flow JSON as the API shows it: a settings flow when it has an identity.
    fn typed(v: &Value) -> Flow {
        let kind = if v.get("identity").is_some() {
            FlowKind::Settings
        } else {
            FlowKind::Login
        };
        let mut flow = Flow::new(
            kind,
            FlowType::Browser,
            String::new(),
            time::OffsetDateTime::UNIX_EPOCH,
            time::Duration::hours(1),
        );
        flow.ui = serde_json::from_value(v["ui"].clone()).expect("a valid ui container");
        flow
    }

    fn render_flow(flow: &Value) -> String {
        render(
            &Page::Flow {
                title: "Sign in",
                flow: &typed(flow),
                links: vec![Link {
                    text: "Create an account".into(),
                    href: "/self-service/registration/browser".into(),
                }],
            },
            &branding(),
        )
    }

    fn flow_with_nodes(nodes: Value) -> Value {
        json!({"id":"f","ui":{"action":"/self-service/login?flow=f","method":"POST","nodes":nodes,"messages":[]}})
    }

    /// The opening tag of the element carrying `id="<id>"`.
    fn tag_with_id<'a>(html: &'a str, id: &str) -> &'a str {
        let needle = format!("id=\"{id}\"");
        let pos = html.find(&needle).unwrap();
        let start = html[..pos].rfind('<').unwrap();
        let end = pos + html[pos..].find('>').unwrap();
        &html[start..=end]
    }

    #[test]
    fn document_shell() {
        let html = render_flow(&login_flow());
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("<title>Sign in \u{b7} Acme</title>"));
        assert!(html.contains("<link rel=\"stylesheet\" href=\"/ui/style.css\">"));
        assert!(html.contains("<img class=\"pc-logo\" src=\"/ui/logo.png\" alt=\"\">"));
        assert!(html.contains("<h1>Sign in</h1>"));
        assert!(!html.contains("style="));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn labels_are_tied_to_inputs() {
        let html = render_flow(&login_flow());
        assert!(html.contains("<label for=\"field-identifier\">ID</label>"));
        assert!(html.contains("<label for=\"field-password\">Password</label>"));
        assert!(tag_with_id(&html, "field-identifier").starts_with("<input"));
        assert!(tag_with_id(&html, "field-password").contains("type=\"password\""));
        assert!(tag_with_id(&html, "field-identifier").contains("autocomplete=\"username\""));
        assert!(tag_with_id(&html, "field-identifier").contains(" required"));
    }

    #[test]
    fn node_errors_are_described_and_invalid() {
        let html = render_flow(&login_flow());
        let input = tag_with_id(&html, "field-identifier");
        assert!(input.contains("aria-describedby=\"field-identifier-msg-1\""));
        assert!(input.contains("aria-invalid=\"true\""));
        assert!(input.contains(" autofocus"));
        assert!(html.contains(
            "<p id=\"field-identifier-msg-1\" class=\"msg msg-error\">Property identifier is missing.</p>"
        ));
        // Only one autofocus.
        assert_eq!(html.matches(" autofocus").count(), 1);
        assert!(!tag_with_id(&html, "field-password").contains("aria-invalid"));
    }

    #[test]
    fn autofocus_falls_back_to_first_text_input() {
        let mut flow = login_flow();
        flow["ui"]["nodes"][1]["messages"] = json!([]);
        let html = render_flow(&flow);
        assert!(tag_with_id(&html, "field-identifier").contains(" autofocus"));
        assert_eq!(html.matches(" autofocus").count(), 1);
    }

    #[test]
    fn password_value_never_rendered() {
        let html = render_flow(&login_flow());
        assert!(!html.contains("hunter2"));
        assert!(!tag_with_id(&html, "field-password").contains("value="));
    }

    #[test]
    fn hidden_csrf_in_every_form() {
        let html = render_flow(&login_flow());
        let csrf = "<input type=\"hidden\" name=\"csrf_token\" value=\"CSRF123\">";
        assert_eq!(html.matches("<form").count(), 2);
        assert_eq!(html.matches(csrf).count(), 2);
        assert!(html.contains("action=\"https://auth.example.com/self-service/login?flow=f1\""));
        assert!(html.contains("method=\"post\""));
    }

    #[test]
    fn groups_become_forms_in_order() {
        let html = render_flow(&login_flow());
        let google = html.find("value=\"google\"").unwrap();
        let ident = html.find("id=\"field-identifier\"").unwrap();
        let pass = html.find("id=\"field-password\"").unwrap();
        // OIDC buttons first (node order), then the identifier joins the password form.
        assert!(google < ident && ident < pass);
        let password_form_start = html[..ident].rfind("<form").unwrap();
        assert!(password_form_start > google);
        assert!(html.contains("<p class=\"pc-divider\"><span>or</span></p>"));
        assert!(html.contains("class=\"pc-form pc-social\""));
    }

    #[test]
    fn submit_buttons_carry_name_and_value() {
        let html = render_flow(&login_flow());
        assert!(html.contains(
            "<button type=\"submit\" class=\"pc-btn pc-btn-primary\" id=\"field-method\" name=\"method\" value=\"password\">Sign in</button>"
        ));
        assert!(html.contains(
            "<button type=\"submit\" class=\"pc-btn pc-btn-social\" id=\"field-provider\" name=\"provider\" value=\"google\">Sign in with google</button>"
        ));
    }

    #[test]
    fn duplicate_names_get_unique_ids() {
        let flow = flow_with_nodes(json!([
            {"type":"input","group":"password","attributes":{"name":"method","type":"submit","value":"password"},"messages":[],"meta":{"label":{"id":0,"text":"Sign in","type":"info"}}},
            {"type":"input","group":"code","attributes":{"name":"method","type":"button","value":"code"},"messages":[],"meta":{"label":{"id":0,"text":"Email me a code","type":"info"}}},
            {"type":"input","group":"code","attributes":{"name":"method","type":"submit","value":"code2"},"messages":[],"meta":{}},
            {"type":"input","group":"profile","attributes":{"name":"traits.email","type":"email","value":"a@b.c"},"messages":[],"meta":{"label":{"id":0,"text":"E-Mail","type":"info"}}}
        ]));
        let html = render_flow(&flow);
        assert!(html.contains("id=\"field-method\""));
        assert!(html.contains(
            "id=\"field-method-2\" name=\"method\" value=\"code\">Email me a code</button>"
        ));
        assert!(
            html.contains("id=\"field-method-3\" name=\"method\" value=\"code2\">code2</button>")
        );
        assert!(html.contains("<label for=\"field-traits-email\">E-Mail</label>"));
        assert!(tag_with_id(&html, "field-traits-email").contains("value=\"a@b.c\""));
        assert!(tag_with_id(&html, "field-traits-email").contains("type=\"email\""));
    }

    #[test]
    fn links_from_mail_render_as_forms_that_post() {
        // A code from a link: the code field is filled in, the button posts it with the CSRF token.
        let flow = flow_with_nodes(json!([
            {"type":"input","group":"default","attributes":{"name":"csrf_token","type":"hidden","value":"CSRF123"},"messages":[],"meta":{}},
            {"type":"input","group":"code","attributes":{"name":"code","type":"text","value":"123456"},"messages":[],"meta":{"label":{"id":1070010,"text":"Recovery code","type":"info"}}},
            {"type":"input","group":"code","attributes":{"name":"method","type":"submit","value":"code"},"messages":[],"meta":{"label":{"id":0,"text":"Submit","type":"info"}}}
        ]));
        let html = render_flow(&flow);
        assert!(tag_with_id(&html, "field-code").contains("value=\"123456\""));
        assert!(html.contains("method=\"post\"") || html.contains("method=\"POST\""));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf_token\" value=\"CSRF123\">"));
        assert!(!html.contains("<script"));
        // A link token: a confirmation with the token hidden and a Continue button in the same form.
        let flow = flow_with_nodes(json!([
            {"type":"input","group":"default","attributes":{"name":"csrf_token","type":"hidden","value":"CSRF123"},"messages":[],"meta":{}},
            {"type":"input","group":"link","attributes":{"name":"token","type":"hidden","value":"Tok3n"},"messages":[],"meta":{}},
            {"type":"input","group":"link","attributes":{"name":"method","type":"submit","value":"link"},"messages":[],"meta":{"label":{"id":1070009,"text":"Continue","type":"info"}}}
        ]));
        let html = render_flow(&flow);
        let form = &html[html.find("<form").unwrap()..html.find("</form>").unwrap()];
        assert!(
            form.contains("<input type=\"hidden\" name=\"token\" value=\"Tok3n\">"),
            "{form}"
        );
        assert!(
            form.contains("<input type=\"hidden\" name=\"csrf_token\" value=\"CSRF123\">"),
            "{form}"
        );
        assert!(
            form.contains("name=\"method\" value=\"link\">Continue</button>"),
            "{form}"
        );
    }

    #[test]
    fn hostile_text_is_escaped() {
        let flow = flow_with_nodes(json!([
            {"type":"input","group":"default","attributes":{"name":"\"><img src=x onerror=alert(1)>","type":"text","value":"\"><img src=x onerror=alert(1)>"},"messages":[{"id":1,"text":"<script>alert(1)</script>","type":"error"}],"meta":{"label":{"id":0,"text":"<script>alert('l')</script>","type":"info"}}}
        ]));
        let mut flow = flow;
        flow["ui"]["messages"] = json!([{"id":2,"text":"<b>bold</b> & 'q'","type":"info"}]);
        let html = render(
            &Page::Flow {
                title: "<script>t</script>",
                flow: &typed(&flow),
                links: vec![Link {
                    text: "<i>x</i>".into(),
                    href: "/a?b=\"c\"".into(),
                }],
            },
            &Branding {
                product_name: "A\"<b>".into(),
                logo_url: None,
                stylesheet_url: "/s.css\"><script>".into(),
            },
        );
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<i>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("value=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""));
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;q&#x27;"));
        assert!(html.contains("href=\"/a?b=&quot;c&quot;\""));
        assert!(
            html.contains("<title>&lt;script&gt;t&lt;/script&gt; \u{b7} A&quot;&lt;b&gt;</title>")
        );
        // The generated id only contains safe characters.
        assert!(html.contains("id=\"field----img-src-x-onerror-alert-1--\""));
    }

    #[test]
    fn escape_html_covers_all_specials() {
        assert_eq!(escape_html("&<>\"'x"), "&amp;&lt;&gt;&quot;&#x27;x");
        assert_eq!(escape_html("plain ü"), "plain ü");
    }

    #[test]
    fn unsafe_urls_become_hash() {
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>",
            "vbscript:x",
            "java\nscript:alert(1)",
            "",
        ] {
            assert_eq!(safe_url(bad), "#", "{bad:?}");
        }
        for good in ["/a/b", "?flow=1", "http://x.test/", "HTTPS://x.test/p?q=1"] {
            assert_eq!(safe_url(good), good);
        }
        let mut flow = flow_with_nodes(json!([
            {"type":"a","group":"code","attributes":{"href":"javascript:alert(1)","title":{"id":1070011,"text":"Continue","type":"info"},"id":"continue","node_type":"a"},"messages":[],"meta":{}},
            {"type":"input","group":"default","attributes":{"name":"x","type":"text"},"messages":[],"meta":{}}
        ]));
        flow["ui"]["action"] = json!("javascript:alert(1)");
        let html = render(
            &Page::Flow {
                title: "T",
                flow: &typed(&flow),
                links: vec![Link {
                    text: "l".into(),
                    href: "javascript:alert(2)".into(),
                }],
            },
            &branding(),
        );
        assert!(!html.to_ascii_lowercase().contains("javascript:"));
        assert!(html.contains("action=\"#\""));
        assert!(html.contains(
            "<a class=\"pc-btn pc-btn-primary\" id=\"node-continue\" href=\"#\">Continue</a>"
        ));
        assert!(html.contains("<li><a href=\"#\">l</a></li>"));
    }

    #[test]
    fn data_images_only_png_or_jpeg_base64() {
        assert!(safe_img_src("data:image/png;base64,iVBORw0KGgo=").is_some());
        assert!(safe_img_src("data:image/jpeg;base64,/9j/4AAQ").is_some());
        assert!(safe_img_src("data:image/svg+xml;base64,PHN2Zz4=").is_none());
        assert!(safe_img_src("data:text/html;base64,PHNjcmlwdD4=").is_none());
        assert!(safe_img_src("data:image/png;base64,\"><script>").is_none());
        assert!(safe_img_src("data:image/png,rawdata").is_none());
        assert!(safe_img_src("javascript:alert(1)").is_none());
        assert_eq!(safe_img_src("/logo.png"), Some("/logo.png"));

        let flow = flow_with_nodes(json!([
            {"type":"img","group":"totp","attributes":{"src":"data:image/png;base64,iVBORw0KGgo=","id":"totp_qr","width":256,"height":256,"node_type":"img"},"messages":[],"meta":{"label":{"id":0,"text":"QR code","type":"info"}}},
            {"type":"img","group":"totp","attributes":{"src":"data:image/svg+xml;base64,PHN2Zz4=","id":"evil","node_type":"img"},"messages":[],"meta":{}},
            {"type":"text","group":"totp","attributes":{"text":{"id":1050006,"text":"ABCD","type":"info"},"id":"totp_secret_key","node_type":"text"},"messages":[],"meta":{"label":{"id":0,"text":"Secret","type":"info"}}}
        ]));
        let html = render_flow(&flow);
        assert!(html.contains(
            "<img class=\"pc-img\" id=\"node-totp_qr\" src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"QR code\" width=\"256\" height=\"256\">"
        ));
        assert!(!html.contains("svg"));
        assert!(!html.contains("node-evil"));
        assert!(html.contains("<p class=\"pc-text\">ABCD</p>"));
        assert!(html.contains("<p class=\"pc-text-label\">Secret</p>"));
    }

    #[test]
    fn script_and_div_nodes_are_dropped() {
        let flow = flow_with_nodes(json!([
            {"type":"script","group":"webauthn","attributes":{"src":"/x.js","id":"s","node_type":"script","integrity":"x"},"messages":[],"meta":{}},
            {"type":"div","group":"webauthn","attributes":{"id":"d","node_type":"div"},"messages":[],"meta":{}}
        ]));
        let html = render_flow(&flow);
        assert!(!html.contains("<script"));
        assert!(!html.contains("x.js"));
        assert!(!html.contains("id=\"d\""));
    }

    #[test]
    fn flow_messages_use_live_regions() {
        let mut flow = login_flow();
        flow["ui"]["messages"] = json!([
            {"id":4000006,"text":"The provided credentials are invalid.","type":"error"},
            {"id":1010003,"text":"Please confirm this action.","type":"info"}
        ]);
        let html = render_flow(&flow);
        let alert = html.find("role=\"alert\"").unwrap();
        let err = html.find("The provided credentials are invalid.").unwrap();
        let status = html.find("role=\"status\"").unwrap();
        let info = html.find("Please confirm this action.").unwrap();
        assert!(alert < err && err < status && status < info);
        assert!(info < html.find("<form").unwrap());
    }

    #[test]
    fn checkbox_and_value_types() {
        let flow = flow_with_nodes(json!([
            {"type":"input","group":"profile","attributes":{"name":"traits.newsletter","type":"checkbox","value":true},"messages":[],"meta":{"label":{"id":0,"text":"Newsletter","type":"info"}}},
            {"type":"input","group":"profile","attributes":{"name":"traits.age","type":"number","value":42,"maxlength":3,"pattern":"[0-9]+"},"messages":[],"meta":{"label":{"id":0,"text":"Age","type":"info"}}},
            {"type":"input","group":"profile","attributes":{"name":"traits.born","type":"datetime-local","disabled":true},"messages":[],"meta":{}}
        ]));
        let html = render_flow(&flow);
        let cb = tag_with_id(&html, "field-traits-newsletter");
        assert!(cb.contains("type=\"checkbox\" value=\"true\" checked"));
        assert!(html.contains("<label for=\"field-traits-newsletter\">Newsletter</label>"));
        let age = tag_with_id(&html, "field-traits-age");
        assert!(age.contains("type=\"number\" value=\"42\""));
        assert!(age.contains("pattern=\"[0-9]+\" maxlength=\"3\""));
        let born = tag_with_id(&html, "field-traits-born");
        assert!(born.contains("type=\"datetime-local\""));
        assert!(born.contains(" disabled"));
        assert!(html.contains("<label for=\"field-traits-born\">traits.born</label>"));
    }

    #[test]
    fn settings_sections_get_headings() {
        let flow = json!({
            "id":"s","identity":{"id":"i"},
            "ui":{"action":"/self-service/settings?flow=s","method":"POST","messages":[{"id":1050001,"text":"Your changes have been saved!","type":"success"}],"nodes":[
                {"type":"input","group":"default","attributes":{"name":"csrf_token","type":"hidden","value":"C"},"messages":[],"meta":{}},
                {"type":"input","group":"profile","attributes":{"name":"traits.email","type":"email","value":"a@b.c","required":true},"messages":[],"meta":{"label":{"id":0,"text":"E-Mail","type":"info"}}},
                {"type":"input","group":"profile","attributes":{"name":"method","type":"submit","value":"profile"},"messages":[],"meta":{"label":{"id":0,"text":"Save","type":"info"}}},
                {"type":"input","group":"password","attributes":{"name":"password","type":"password","required":true},"messages":[],"meta":{"label":{"id":0,"text":"Password","type":"info"}}},
                {"type":"input","group":"password","attributes":{"name":"method","type":"submit","value":"password"},"messages":[],"meta":{"label":{"id":0,"text":"Save","type":"info"}}},
                {"type":"text","group":"lookup_secret","attributes":{"id":"lookup_secret_codes","text":{"id":1050015,"text":"aaaa, bbbb","type":"info","context":{"secrets":[{"id":1050009,"text":"aaaa"},{"id":1050009,"text":"bbbb"}]}}},"messages":[],"meta":{}}
            ]}
        });
        let html = render(
            &Page::Flow {
                title: "Account settings",
                flow: &typed(&flow),
                links: vec![],
            },
            &branding(),
        );
        assert!(html.contains("<h2 id=\"section-profile\">Profile</h2>"));
        assert!(html.contains("aria-labelledby=\"section-password\""));
        assert!(html.contains("<div class=\"pc-alert pc-alert-success\" role=\"status\">"));
        assert!(html.contains("<li><code>aaaa</code></li>"));
        assert!(!html.contains("pc-divider"));
        assert_eq!(html.matches("<form").count(), 2);
        assert!(!html.contains("pc-links"));
    }

    #[test]
    fn malformed_flow_does_not_panic() {
        // A malformed form, or an input type HTML forms cannot take, does not make a typed flow (loading it
        // fails), so no page renders it; an empty form still makes a whole page.
        for ui in [
            json!(null),
            json!(5),
            json!({"nodes":[1, "x", {"type":"input"}, {}]}),
            json!({"action":"/a","method":"POST","nodes":[
                {"type":"input","group":"profile","attributes":{"name":"weird","type":"file"},"messages":[],"meta":{}}
            ]}),
        ] {
            assert!(serde_json::from_value::<flows::ui::UiContainer>(ui).is_err());
        }
        let html = render_flow(&json!({"ui":{"action":"","method":"POST","nodes":[]}}));
        assert!(html.contains("</html>"));
    }

    #[test]
    fn error_page() {
        let error = json!({"code":404,"status":"Not Found","reason":"The flow <b>expired</b>","message":"The requested resource could not be found","id":"not_found"});
        let html = render(
            &Page::Error {
                error: &error,
                links: vec![Link {
                    text: "Back to sign in".into(),
                    href: "/self-service/login/browser".into(),
                }],
            },
            &branding(),
        );
        assert!(html.contains("<title>Not Found \u{b7} Acme</title>"));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("The requested resource could not be found"));
        assert!(html.contains("The flow &lt;b&gt;expired&lt;/b&gt;"));
        assert!(html.contains("<dd>404</dd>"));
        assert!(html.contains("<a href=\"/self-service/login/browser\">Back to sign in</a>"));

        let wrapped = json!({"id":"e-1","error":{"code":500,"message":"boom"}});
        let html = render(
            &Page::Error {
                error: &wrapped,
                links: vec![],
            },
            &branding(),
        );
        assert!(html.contains("<h1>Error</h1>"));
        assert!(html.contains("boom"));
        assert!(html.contains("<code>e-1</code>"));
    }

    #[test]
    fn display_name_preference() {
        assert_eq!(
            display_name(&json!({"id":"i","traits":{"username":"u","email":"e@x"}})),
            "e@x"
        );
        assert_eq!(
            display_name(&json!({"id":"i","traits":{"name":{"first":"Ann"},"username":"u"}})),
            "u"
        );
        assert_eq!(
            display_name(&json!({"id":"i","traits":{"age":3,"name":{"first":"Ann"}}})),
            "Ann"
        );
        assert_eq!(display_name(&json!({"id":"i","traits":{"email":""}})), "i");
        assert_eq!(display_name(&json!(null)), "");
    }

    #[test]
    fn welcome_page() {
        let session = json!({
            "id":"s","active":true,
            "authenticated_at":"2024-05-01T12:34:56.789Z",
            "expires_at":"2024-05-02T12:34:56+02:00",
            "authentication_methods":[{"method":"password"},{"method":"totp"},{"method":"password"}],
            "identity":{"id":"i","traits":{"email":"alice@example.com"}}
        });
        let html = render(
            &Page::Welcome {
                session: &session,
                logout_url: "/self-service/logout?token=abc",
                links: vec![Link {
                    text: "Account settings".into(),
                    href: "/self-service/settings/browser".into(),
                }],
            },
            &branding(),
        );
        assert!(html.contains("<strong class=\"pc-identity\">alice@example.com</strong>"));
        assert!(html.contains("href=\"/self-service/logout?token=abc\""));
        assert!(html
            .contains("<time datetime=\"2024-05-01T12:34:56.789Z\">2024-05-01 12:34 UTC</time>"));
        assert!(html.contains(">2024-05-02 12:34 UTC+02:00</time>"));
        assert!(html.contains("<dd>password, totp</dd>"));
        assert!(html.contains("Account settings</a>"));
    }

    #[test]
    fn logout_page() {
        let html = render(
            &Page::Logout {
                action: "https://auth.example.com/self-service/logout",
                token: "tok\"en",
                return_to: Some("https://app.example.com/"),
                cancel_href: "/",
            },
            &branding(),
        );
        assert!(html.contains(
            "<form class=\"pc-form\" method=\"get\" action=\"https://auth.example.com/self-service/logout\">"
        ));
        assert!(html.contains("<input type=\"hidden\" name=\"token\" value=\"tok&quot;en\">"));
        assert!(html.contains(
            "<input type=\"hidden\" name=\"return_to\" value=\"https://app.example.com/\">"
        ));
        assert!(html
            .contains("<button type=\"submit\" class=\"pc-btn pc-btn-primary\">Sign out</button>"));
        assert!(html.contains("href=\"/\">Cancel</a>"));
    }

    #[test]
    fn get_form_moves_query_into_hidden_inputs() {
        let html = render(
            &Page::Logout {
                action: "/self-service/logout?a=1&b=x%20y+z",
                token: "t",
                return_to: None,
                cancel_href: "javascript:history.back()",
            },
            &branding(),
        );
        assert!(html.contains("method=\"get\" action=\"/self-service/logout\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"a\" value=\"1\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"b\" value=\"x y z\">"));
        assert!(!html.contains("return_to"));
        assert!(html.contains("href=\"#\">Cancel</a>"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%BC"), "ü");
    }
}
