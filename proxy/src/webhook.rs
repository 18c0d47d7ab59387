//! The Kratos `web_hook` self-service hook: calls an operator-configured HTTP endpoint after a
//! flow step and, in parse mode, lets its answer interrupt the flow or patch the identity.
//!
//! Config keys: `url` (http/https), `method` (default `POST`; `GET` sends no body, others send
//! JSON with `Content-Type: application/json` unless `headers` sets one), `headers`, `body`,
//! `auth` (`basic_auth` {`user`, `password`} or `api_key` {`name`, `value`, `in: header|cookie`}),
//! `response.ignore` (fire and forget: failures are only logged),
//! `response.parse` or its deprecated alias `can_interrupt` (a 4xx answer's `messages` interrupt
//! the flow; a 2xx answer's `identity.traits`, `.metadata_public` and `.metadata_admin` patch
//! the identity).
//!
//! **Body templates.** Kratos uses Jsonnet; Portcullis uses JSON templates. `body` is
//! `file://<path>` (read at startup), `base64://<JSON>` or, as an extension, inline JSON (a
//! value, or a string holding a JSON document); without `body` the whole context is sent. A
//! template string that is exactly `{{ <path> }}` becomes the JSON value at that path, whatever
//! its type; placeholders among other text are interpolated (strings as-is, other values as
//! compact JSON). A path is `ctx` followed by dot-separated object keys or array indexes
//! (`ctx.identity.verifiable_addresses.0.value`); a missing path yields `null`. Everything else,
//! object keys included, is copied literally.
//!
//! **Differences from Kratos:** no Jsonnet and no `http(s)://` bodies; no retries; any 2xx may
//! patch, and only the three identity keys above are honoured; 5xx answers, timeouts (10 s in
//! all) and transport errors are [`WebHookError::Upstream`]; response bodies are capped at
//! 1 MiB; `ignore` together with `parse` is a config error.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};
use url::Url;

const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const CONTINUE: WebHookOutcome = WebHookOutcome::Continue {
    identity_patch: None,
};
const PATCH_KEYS: [&str; 3] = ["traits", "metadata_public", "metadata_admin"];

/// A parsed `web_hook` config, ready to call.
#[derive(Clone)]
pub struct WebHook {
    url: Url,
    method: Method,
    /// Configured headers plus the auth header (marked sensitive).
    headers: HeaderMap,
    body: Option<Value>,
    ignore: bool,
    parse: bool,
    /// Total time allowed for one call: connecting, sending and reading the response.
    pub timeout: Duration,
}

impl fmt::Debug for WebHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values (auth included) and the body template may hold secrets: names only.
        let headers: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("WebHook")
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field("ignore", &self.ignore)
            .field("parse", &self.parse)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebHookError {
    #[error("invalid web_hook config: {0}")]
    Config(String),
    #[error("web hook {url} failed: {reason}")]
    Upstream { url: String, reason: String },
}

/// One UI message from a hook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookMessage {
    /// JSON pointer of the field (`#/traits/email`); `#` or empty for flow-level messages.
    pub instance_ptr: String,
    pub id: i64,
    pub text: String,
    /// `info`, `error` or `success`.
    pub kind: String,
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebHookOutcome {
    /// Go on; with an identity patch when the hook returned one (parse mode).
    /// The patch is `{"traits"?: ..., "metadata_public"?: ..., "metadata_admin"?: ...}`.
    Continue { identity_patch: Option<Value> },
    /// The hook refused (parse mode, 4xx): show these messages and stop the flow.
    Interrupted(Vec<HookMessage>),
}

impl WebHook {
    /// Parses a hook's `config` object. `file://` bodies are read here (at startup), not per call.
    pub fn from_config(config: &Value) -> Result<Self, WebHookError> {
        let config = config.as_object().ok_or_else(|| cfg("not an object"))?;
        let url = Url::parse(required(config, "url")?)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| cfg("\"url\" must be an absolute http or https URL"))?;
        let method = match string(config, "method")? {
            None => Method::POST,
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| cfg(format!("\"method\" {m:?} is not an HTTP method")))?,
        };
        let mut headers = HeaderMap::new();
        let empty = Map::new();
        for (name, value) in field(config, "headers", Value::as_object)?.unwrap_or(&empty) {
            let value = value.as_str().and_then(|v| HeaderValue::from_str(v).ok());
            let value = value.ok_or_else(|| cfg(format!("header {name:?} needs a valid value")))?;
            headers.append(header_name(name)?, value);
        }
        apply_auth(config, &mut headers)?;
        let body = field(config, "body", Some)?.map(load_body).transpose()?;
        let response = field(config, "response", Value::as_object)?.unwrap_or(&empty);
        let ignore = flag(response, "ignore")?;
        let parse = flag(response, "parse")? || flag(config, "can_interrupt")?;
        if ignore && parse {
            return Err(cfg("a response cannot be both ignored and parsed"));
        }
        let timeout = Duration::from_secs(10);
        Ok(Self {
            url,
            method,
            headers,
            body,
            ignore,
            parse,
            timeout,
        })
    }

    /// Whether the response may interrupt (parse / can_interrupt).
    pub fn can_interrupt(&self) -> bool {
        self.parse
    }

    /// Renders the body template for ctx (exposed for tests/`config check`).
    pub fn render_body(&self, ctx: &Value) -> Value {
        match &self.body {
            Some(template) => render(template, ctx),
            None => ctx.clone(),
        }
    }

    /// Calls the hook.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        ctx: &Value,
    ) -> Result<WebHookOutcome, WebHookError> {
        let mut request = client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if self.method != Method::GET {
            if !self.headers.contains_key(CONTENT_TYPE) {
                request =
                    request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            request = request.body(self.render_body(ctx).to_string());
        }
        let (url, timeout, parse) = (redact_url(&self.url), self.timeout, self.parse);
        let work = async move {
            let upstream = |reason| WebHookError::Upstream { url, reason };
            match exchange(request, timeout).await {
                Ok((status, body)) if parse => parse_response(status, &body).map_err(upstream),
                Ok((status, _)) if status.is_success() => Ok(CONTINUE),
                Ok((status, _)) => Err(upstream(format!("responded with status {status}"))),
                Err(reason) => Err(upstream(reason)),
            }
        };
        if !self.ignore {
            return work.await;
        }
        tokio::spawn(async move {
            if let Err(error) = work.await {
                tracing::warn!(%error, "ignored web hook failed");
            }
        });
        Ok(CONTINUE)
    }
}

fn cfg(message: impl Into<String>) -> WebHookError {
    WebHookError::Config(message.into())
}

/// The URL for logs and errors, without its password.
fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("REDACTED"));
    }
    url.to_string()
}

/// A config field of the type `cast` picks, `null` counting as absent.
fn field<'a, T>(
    obj: &'a Map<String, Value>,
    key: &str,
    cast: fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, WebHookError> {
    match obj.get(key).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => cast(v)
            .map(Some)
            .ok_or_else(|| cfg(format!("{key:?} has the wrong type"))),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, WebHookError> {
    field(obj, key, Value::as_str)
}

fn required<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, WebHookError> {
    string(obj, key)?.ok_or_else(|| cfg(format!("{key:?} is required")))
}

fn flag(obj: &Map<String, Value>, key: &str) -> Result<bool, WebHookError> {
    Ok(field(obj, key, Value::as_bool)?.unwrap_or(false))
}

fn header_name(name: &str) -> Result<HeaderName, WebHookError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| cfg(format!("invalid header name {name:?}")))
}

/// Adds the (sensitive) auth header described by `config.auth`.
fn apply_auth(config: &Map<String, Value>, headers: &mut HeaderMap) -> Result<(), WebHookError> {
    let Some(auth) = field(config, "auth", Value::as_object)? else {
        return Ok(());
    };
    let empty = Map::new();
    let params = field(auth, "config", Value::as_object)?.unwrap_or(&empty);
    let param = |key| required(params, key);
    let (name, value) = match (required(auth, "type")?, string(params, "in")?) {
        ("basic_auth", _) => {
            let credentials = STANDARD.encode(format!("{}:{}", param("user")?, param("password")?));
            (AUTHORIZATION, format!("Basic {credentials}"))
        }
        ("api_key", None | Some("header")) => {
            (header_name(param("name")?)?, param("value")?.to_owned())
        }
        ("api_key", Some("cookie")) => {
            let existing = headers.get(COOKIE).and_then(|c| c.to_str().ok());
            let existing = existing.map(|c| format!("{c}; ")).unwrap_or_default();
            (
                COOKIE,
                format!("{existing}{}={}", param("name")?, param("value")?),
            )
        }
        (kind, place) => {
            return Err(cfg(format!(
                "unsupported auth type {kind:?} (in: {place:?})"
            )));
        }
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| cfg("invalid auth value"))?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

/// Loads the body template from its source and checks its placeholders.
fn load_body(body: &Value) -> Result<Value, WebHookError> {
    let Value::String(source) = body else {
        validate(body)?;
        return Ok(body.clone());
    };
    let text = if let Some(path) = source.strip_prefix("file://") {
        std::fs::read_to_string(path)
            .map_err(|e| cfg(format!("cannot read body {source:?}: {e}")))?
    } else if let Some(encoded) = source.strip_prefix("base64://") {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|e| cfg(format!("the base64:// body is not valid base64: {e}")))?;
        String::from_utf8(bytes).map_err(|_| cfg("the base64:// body is not UTF-8"))?
    } else {
        source.clone()
    };
    let template = serde_json::from_str(&text).map_err(|e| {
        cfg(format!(
            "\"body\" must be file://, base64:// or a JSON template (no Jsonnet, no URLs): {e}"
        ))
    })?;
    validate(&template)?;
    Ok(template)
}

/// Literal text and `{{ path }}` placeholders of a template string.
enum Piece<'a> {
    Text(&'a str),
    Path(&'a str),
}

fn pieces(mut rest: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    while let Some((before, after)) = rest.split_once("{{") {
        let Some((inner, tail)) = after.split_once("}}") else {
            break;
        };
        if !before.is_empty() {
            out.push(Piece::Text(before));
        }
        out.push(Piece::Path(inner.trim()));
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn valid_path(path: &str) -> bool {
    let mut segments = path.split('.').map(str::trim);
    segments.next() == Some("ctx") && segments.all(|s| !s.is_empty())
}

/// Checks that every placeholder of the template is a `ctx` path.
fn validate(template: &Value) -> Result<(), WebHookError> {
    match template {
        Value::String(s) => pieces(s).iter().try_for_each(|piece| match piece {
            Piece::Path(path) if !valid_path(path) => Err(cfg(format!(
                "invalid placeholder in {s:?}: paths are ctx.<key or index>..."
            ))),
            _ => Ok(()),
        }),
        Value::Array(items) => items.iter().try_for_each(validate),
        Value::Object(obj) => obj.values().try_for_each(validate),
        _ => Ok(()),
    }
}

fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.').map(str::trim);
    if segments.next() != Some("ctx") {
        return None;
    }
    segments.try_fold(ctx, |current, segment| match current {
        Value::Object(obj) => obj.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn render(template: &Value, ctx: &Value) -> Value {
    match template {
        Value::String(s) => {
            let pieces = pieces(s);
            if let [Piece::Path(path)] = pieces.as_slice() {
                return lookup(ctx, path).cloned().unwrap_or(Value::Null);
            }
            let mut out = String::with_capacity(s.len());
            for piece in pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Path(path) => match lookup(ctx, path) {
                        Some(Value::String(value)) => out.push_str(value),
                        Some(value) => out.push_str(&value.to_string()),
                        None => out.push_str("null"),
                    },
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| render(i, ctx)).collect()),
        Value::Object(obj) => Value::Object(
            obj.iter()
                .map(|(key, value)| (key.clone(), render(value, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Sends the request and reads the (capped) response body within `timeout`.
async fn exchange(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(StatusCode, Vec<u8>), String> {
    let work = async {
        let mut response = request.send().await.map_err(describe)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("response body exceeds {MAX_RESPONSE_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((response.status(), body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
}

/// A transport error with its causes (`... Connection refused`), without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source());
    chain
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn parse_response(status: StatusCode, body: &[u8]) -> Result<WebHookOutcome, String> {
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(CONTINUE);
        }
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| format!("responded with a body that is not JSON: {e}"))?;
        let identity = doc.get("identity").and_then(Value::as_object);
        let patch: Map<String, Value> = PATCH_KEYS
            .iter()
            .filter_map(|key| Some(((*key).to_owned(), identity?.get(*key)?.clone())))
            .collect();
        let identity_patch = (!patch.is_empty()).then_some(Value::Object(patch));
        return Ok(WebHookOutcome::Continue { identity_patch });
    }
    if status.is_client_error() {
        let messages = hook_messages(body).unwrap_or_else(|| {
            vec![HookMessage {
                instance_ptr: String::new(),
                id: 4_000_001,
                text: "The web hook rejected the request.".to_owned(),
                kind: "error".to_owned(),
                context: None,
            }]
        });
        return Ok(WebHookOutcome::Interrupted(messages));
    }
    Err(format!("responded with status {status}"))
}

/// The messages of a Kratos-style 4xx body; `None` when it is malformed or has none.
fn hook_messages(body: &[u8]) -> Option<Vec<HookMessage>> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    for entry in doc.get("messages")?.as_array()? {
        let instance_ptr = entry.get("instance_ptr").and_then(Value::as_str);
        for message in entry.get("messages")?.as_array()? {
            let kind = message.get("type").and_then(Value::as_str);
            let kind = kind.filter(|k| matches!(*k, "error" | "success"));
            out.push(HookMessage {
                instance_ptr: instance_ptr.unwrap_or_default().to_owned(),
                id: message.get("id").and_then(Value::as_i64).unwrap_or(0),
                text: message.get("text")?.as_str()?.to_owned(),
                kind: kind.unwrap_or("info").to_owned(),
                context: message.get("context").and_then(Value::as_object).cloned(),
            });
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Request;
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    use tokio::sync::{mpsc, oneshot};

    /// What the hook server saw: method, headers, body.
    type Seen = (Method, HeaderMap, Vec<u8>);
    type Outcome = Result<WebHookOutcome, WebHookError>;

    /// Starts a hook server answering `status` and `body`, after `gate` opens when there is one.
    async fn serve(
        status: u16,
        body: &str,
        gate: Option<oneshot::Receiver<()>>,
    ) -> (String, mpsc::UnboundedReceiver<Seen>) {
        let (seen, rx) = mpsc::unbounded_channel();
        let reply = (StatusCode::from_u16(status).unwrap(), body.to_owned());
        let gate = Arc::new(Mutex::new(gate));
        let app = axum::Router::new().fallback(move |request: Request| async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let _ = seen.send((parts.method, parts.headers, body.to_vec()));
            let gate = gate.lock().unwrap().take();
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            reply
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, rx)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    fn ctx() -> Value {
        json!({
            "flow": {"id": "f1", "type": "browser"},
            "identity": {"traits": {"email": "a@b.c", "name": "Ann", "age": 42},
                         "verifiable_addresses": [{"value": "a@b.c"}]},
            "session": null, "request_headers": {"Accept": ["*/*"]}, "request_method": "POST",
            "request_url": "http://localhost/self-service/registration", "request_cookies": {}
        })
    }

    /// Calls a hook configured by `config` (plus the server's url) against a server answering
    /// `status` and `body`; returns the outcome and the request the server saw.
    async fn run(mut config: Value, status: u16, body: &str) -> (Outcome, Seen) {
        let (url, mut seen) = serve(status, body, None).await;
        config["url"] = json!(url);
        let hook = WebHook::from_config(&config).unwrap();
        let outcome = hook.call(&client(), &ctx()).await;
        (outcome, seen.recv().await.unwrap())
    }

    async fn outcome(config: Value, status: u16, body: &str) -> Outcome {
        run(config, status, body).await.0
    }

    fn hook(config: Value) -> WebHook {
        WebHook::from_config(&config).unwrap()
    }

    fn upstream(outcome: Outcome, expected: &str) {
        let Err(WebHookError::Upstream { reason, .. }) = outcome else {
            panic!("expected an upstream error, got {outcome:?}");
        };
        assert!(reason.contains(expected), "{reason}");
    }

    fn json_of(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    fn message(instance_ptr: &str, id: i64, text: &str, kind: &str) -> HookMessage {
        let (instance_ptr, text, kind) = (instance_ptr.into(), text.into(), kind.into());
        let context = None;
        HookMessage {
            instance_ptr,
            id,
            text,
            kind,
            context,
        }
    }

    #[test]
    fn renders_body_templates() {
        let body = json!({
            "email": "{{ ctx.identity.traits.email }}", "age": "{{ctx.identity.traits.age}}",
            "traits": "{{ ctx.identity.traits }}",
            "first": "{{ ctx.identity.verifiable_addresses.0.value }}",
            "hello": "Hi {{ ctx.identity.traits.name }} ({{ctx.identity.traits.age}}) {{ ctx.x }}",
            "missing": "{{ ctx.identity.traits.phone }}", "through_null": "{{ ctx.session.id }}",
            "list": ["{{ ctx.request_method }}", 1, "plain {{", {"{{ ctx.flow.id }}": true}],
        });
        let expected = json!({
            "email": "a@b.c", "age": 42, "traits": {"email": "a@b.c", "name": "Ann", "age": 42},
            "first": "a@b.c", "hello": "Hi Ann (42) null", "missing": null, "through_null": null,
            "list": ["POST", 1, "plain {{", {"{{ ctx.flow.id }}": true}],
        });
        let rendered = hook(json!({"url": "http://h/", "body": body})).render_body(&ctx());
        assert_eq!(rendered, expected);
        assert_eq!(hook(json!({"url": "http://h/"})).render_body(&ctx()), ctx());
    }

    #[test]
    fn body_sources_and_redacted_debug() {
        let template = json!({"id": "{{ ctx.flow.id }}"});
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), template.to_string()).unwrap();
        let file = format!("file://{}", file.path().display());
        let encoded = format!("base64://{}", STANDARD.encode(template.to_string()));
        let inline = template.to_string();
        for body in [json!(file), json!(encoded), json!(inline), template] {
            let rendered = hook(json!({"url": "http://h/", "body": body})).render_body(&ctx());
            assert_eq!(rendered, json!({"id": "f1"}));
        }
        let hook = hook(json!({
            "url": "http://user:pw-secret@h/", "headers": {"X-Token": "hdr-secret"},
            "auth": {"type": "api_key", "config": {"name": "K", "value": "key-secret"}},
            "can_interrupt": true,
        }));
        assert!(hook.can_interrupt());
        let debug = format!("{hook:?}");
        assert!(debug.contains("x-token"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn config_errors() {
        let api_key =
            json!({"type": "api_key", "config": {"name": "k", "value": "v", "in": "query"}});
        let invalid = [
            json!({"url": "ftp://h/x"}),
            json!({"url": "/relative"}),
            json!({"method": "POST"}),
            json!({"url": "http://h/", "method": "NOT A METHOD"}),
            json!({"url": "http://h/", "headers": {"bad header": "v"}}),
            json!({"url": "http://h/", "headers": {"X-Number": 1}}),
            json!({"url": "http://h/", "auth": {"type": "oauth", "config": {}}}),
            json!({"url": "http://h/", "auth": {"type": "basic_auth", "config": {"user": "u"}}}),
            json!({"url": "http://h/", "auth": api_key}),
            json!({"url": "http://h/", "body": "function(ctx) { id: ctx.flow.id }"}),
            json!({"url": "http://h/", "body": {"id": "{{ identity.id }}"}}),
            json!({"url": "http://h/", "body": "base64://%%%"}),
            json!({"url": "http://h/", "body": "file:///nonexistent/portcullis/body.json"}),
            json!({"url": "http://h/", "response": {"ignore": true, "parse": true}}),
            json!({"url": "http://h/", "response": {"parse": "yes"}}),
        ];
        for config in invalid {
            let error = WebHook::from_config(&config).unwrap_err();
            assert!(matches!(error, WebHookError::Config(_)), "{config}");
        }
    }

    #[tokio::test]
    async fn sends_ctx_headers_and_auth() {
        let auth = json!({"type": "basic_auth", "config": {"user": "u", "password": "p"}});
        let config = json!({"headers": {"X-Custom": "value"}, "auth": auth});
        let (outcome, (method, headers, body)) = run(config, 200, "").await;
        assert_eq!((outcome.unwrap(), method), (CONTINUE, Method::POST));
        assert_eq!(headers["x-custom"], "value");
        assert_eq!(headers["authorization"], "Basic dTpw");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(json_of(&body), ctx());

        let auth =
            json!({"type": "api_key", "config": {"name": "X-Key", "value": "k1", "in": "header"}});
        let (outcome, (method, headers, body)) =
            run(json!({"method": "get", "auth": auth}), 204, "").await;
        assert_eq!((outcome.unwrap(), method), (CONTINUE, Method::GET));
        assert_eq!(headers["x-key"], "k1");
        assert!(body.is_empty() && !headers.contains_key("content-type"));

        let auth =
            json!({"type": "api_key", "config": {"name": "sid", "value": "k2", "in": "cookie"}});
        let body = json!({"e": "{{ ctx.identity.traits.email }}"});
        let config =
            json!({"method": "PUT", "headers": {"Cookie": "a=1"}, "auth": auth, "body": body});
        let (_, (method, headers, body)) = run(config, 200, "").await;
        assert_eq!(
            (method, json_of(&body)),
            (Method::PUT, json!({"e": "a@b.c"}))
        );
        assert_eq!(headers["cookie"], "a=1; sid=k2");
    }

    #[tokio::test]
    async fn parse_mode_responses() {
        let parse = || json!({"response": {"parse": true}});
        let patch = r#"{"identity": {"traits": {"email": "x@y.z"}, "metadata_admin": {"a": 1},
            "state": "inactive", "schema_id": "other"}, "extra": 1}"#;
        let identity_patch =
            Some(json!({"traits": {"email": "x@y.z"}, "metadata_admin": {"a": 1}}));
        let expected = WebHookOutcome::Continue { identity_patch };
        assert_eq!(outcome(parse(), 200, patch).await.unwrap(), expected);
        for body in ["", "{\"ok\": true}", "{\"identity\": null}"] {
            let outcome = outcome(parse(), 200, body).await;
            assert_eq!(outcome.unwrap(), CONTINUE, "{body}");
        }

        let messages = r##"{"messages": [{"instance_ptr": "#/traits/email", "messages":
            [{"id": 123, "text": "Taken", "type": "error", "context": {"k": "v"}}]},
            {"instance_ptr": "#", "messages": [{"id": 5, "text": "Note"}]}]}"##;
        let mut taken = message("#/traits/email", 123, "Taken", "error");
        taken.context = json!({"k": "v"}).as_object().cloned();
        let expected = WebHookOutcome::Interrupted(vec![taken, message("#", 5, "Note", "info")]);
        assert_eq!(outcome(parse(), 409, messages).await.unwrap(), expected);
        let text = "The web hook rejected the request.";
        let generic = WebHookOutcome::Interrupted(vec![message("", 4_000_001, text, "error")]);
        for body in ["garbage", "{\"messages\": []}"] {
            let outcome = outcome(json!({"can_interrupt": true}), 400, body).await;
            assert_eq!(outcome.unwrap(), generic, "{body}");
        }

        upstream(outcome(parse(), 500, messages).await, "500");
        upstream(outcome(parse(), 200, "not json").await, "not JSON");
        let huge = " ".repeat(MAX_RESPONSE_BYTES + 1);
        upstream(outcome(parse(), 200, &huge).await, "exceeds");
        // Without parse, a 4xx is a failure, not an interruption.
        upstream(outcome(json!({}), 400, messages).await, "400");
    }

    #[tokio::test]
    async fn transport_failures_are_upstream_errors() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let free = free.unwrap();
        let hook = hook(json!({"url": format!("http://{free}/"), "response": {"parse": true}}));
        upstream(hook.call(&client(), &ctx()).await, "onnect");

        let (_release, gate) = oneshot::channel();
        let (url, _seen) = serve(200, "", Some(gate)).await;
        let mut hook = WebHook::from_config(&json!({"url": url})).unwrap();
        hook.timeout = Duration::from_millis(200);
        upstream(hook.call(&client(), &ctx()).await, "timed out");
        // An https URL against a plain-HTTP server: the TLS handshake fails.
        hook.url.set_scheme("https").unwrap();
        upstream(hook.call(&client(), &ctx()).await, "");
    }

    #[tokio::test]
    async fn ignore_mode_does_not_wait() {
        let (release, gate) = oneshot::channel();
        let (url, mut seen) = serve(500, "", Some(gate)).await;
        let hook = hook(json!({"url": url, "response": {"ignore": true}}));
        // The server cannot answer before `release`: returning proves the call was not awaited.
        let (client, ctx) = (client(), ctx());
        let call = tokio::time::timeout(Duration::from_secs(10), hook.call(&client, &ctx));
        assert_eq!(call.await.unwrap().unwrap(), CONTINUE);
        release.send(()).unwrap();
        let (method, _, body) = seen.recv().await.unwrap();
        assert_eq!((method, json_of(&body)), (Method::POST, ctx));
    }
}
