//! Self-service endpoints: login and registration (browser, SPA and native), logout and the error store. This
//! module holds what they share: content negotiation, CSRF cookies, `return_to` and the browser error path.

pub mod challenge;
pub mod errors;
pub mod init;
pub mod login;
pub mod logout;
pub mod outcome;
pub mod registration;
pub mod request;
pub mod settings;

use crate::error::ApiError;
use crate::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use flows::security::ReturnToPolicy;
use flows::security::{CsrfToken, CSRF_COOKIE_MAX_AGE_SECS};
use flows::{flow_json, Flow, FlowError, FlowKind, FlowType};
use serde_json::{json, Value};

/// How a browser client wants answers: redirects and HTML pages, or JSON (SPAs send `Accept: application/json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Redirects (303) to the UI.
    Html,
    /// JSON bodies and status codes.
    Json,
}

/// Picks one of `offers` for the `Accept` header as Go's `httputil.NegotiateContentType` does (which Kratos uses):
/// highest q wins, then the more specific match, then the earlier offer; without a usable header, `offers[0]`.
fn negotiate<'a>(headers: &HeaderMap, offers: &[&'a str]) -> &'a str {
    let default = offers.first().copied().unwrap_or("text/html");
    let mut specs: Vec<(String, f32)> = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut it = part.split(';');
            let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            let mut q = 1.0f32;
            for param in it {
                if let Some(v) = param.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            specs.push((media, q));
        }
    }
    let (mut best, mut best_q, mut best_wild) = (default, -1.0f32, 3u8);
    for offer in offers {
        for (media, q) in &specs {
            let q = *q;
            if q <= 0.0 || q < best_q {
                continue;
            }
            let wild = if media == "*/*" {
                2
            } else if let Some(prefix) = media.strip_suffix('*') {
                if !offer.starts_with(prefix) {
                    continue;
                }
                1
            } else if media == offer {
                0
            } else {
                continue;
            };
            if q > best_q || best_wild > wild {
                best = offer;
                best_q = q;
                best_wild = wild;
            }
        }
    }
    best
}

/// Init endpoints and "already signed in" answers: JSON only when `Accept` prefers it to HTML.
pub fn init_client(headers: &HeaderMap) -> Client {
    if negotiate(headers, &["text/html", "application/json"]) == "application/json" {
        Client::Json
    } else {
        Client::Html
    }
}

/// Submits and errors: JSON when the body is JSON or `Accept` prefers JSON.
pub fn submit_client(headers: &HeaderMap) -> Client {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let accept = negotiate(headers, &["text/html", "text/*", "*/*", "application/json"]);
    if json_body || accept == "application/json" {
        Client::Json
    } else {
        Client::Html
    }
}

/// The value of a request cookie.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// Request cookies other than Cloudflare's, which Kratos tolerates on API flows.
fn has_foreign_cookies(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('=').map(|(k, _)| k.trim()))
        .any(|k| {
            !(k.is_empty() || k.starts_with("__cf") || k.starts_with("_cf") || k.starts_with("cf_"))
        })
}

/// Whether a request may not submit an API flow: Kratos refuses API flows that carry an `Origin` header or cookies,
/// because those are browsers that must use browser flows (and their CSRF protection).
pub fn browser_on_api_flow(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN) || has_foreign_cookies(headers)
}

/// The CSRF token of the request's cookie, if it carries a valid one.
pub fn csrf_of_request(state: &AppState, headers: &HeaderMap) -> Option<CsrfToken> {
    request_cookie(headers, &state.csrf_cookie).and_then(|v| CsrfToken::from_cookie(&v))
}

/// The request's CSRF token, or a new one with the `Set-Cookie` that stores it.
pub fn ensure_csrf(state: &AppState, headers: &HeaderMap) -> (CsrfToken, Option<HeaderValue>) {
    match csrf_of_request(state, headers) {
        Some(t) => (t, None),
        None => {
            let t = CsrfToken::generate();
            let cookie = csrf_set_cookie(state, &t);
            (t, cookie)
        }
    }
}

fn cookie_secure(state: &AppState) -> bool {
    state.config.cookies.secure.unwrap_or(!state.config.dev)
}

/// `Set-Cookie` for the CSRF cookie: `cookies.*` attributes, one year, `HttpOnly`; `SameSite=None` needs `Secure`,
/// so it falls back to `Lax` on insecure cookies as in Kratos.
pub fn csrf_set_cookie(state: &AppState, token: &CsrfToken) -> Option<HeaderValue> {
    let c = &state.config.cookies;
    let secure = cookie_secure(state);
    let same_site = if !secure && c.same_site.eq_ignore_ascii_case("none") {
        "Lax"
    } else {
        c.same_site.as_str()
    };
    let mut out = format!(
        "{}={}; Path={}; Max-Age={CSRF_COOKIE_MAX_AGE_SECS}; HttpOnly",
        state.csrf_cookie,
        token.cookie_value(),
        c.path
    );
    if let Some(d) = c.domain.as_deref().filter(|d| !d.is_empty()) {
        out.push_str(&format!("; Domain={d}"));
    }
    if secure {
        out.push_str("; Secure");
    }
    out.push_str(&format!("; SameSite={same_site}"));
    HeaderValue::from_str(&out).ok()
}

/// `Set-Cookie` that removes the session cookie.
pub fn session_clear_cookie(state: &AppState) -> Option<HeaderValue> {
    let c = &state.config.session.cookie;
    let mut out = format!(
        "{}=; Path={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly",
        c.name,
        c.path.as_deref().unwrap_or(&state.config.cookies.path)
    );
    if let Some(d) = c
        .domain
        .as_ref()
        .or(state.config.cookies.domain.as_ref())
        .filter(|d| !d.is_empty())
    {
        out.push_str(&format!("; Domain={d}"));
    }
    if c.secure
        .or(state.config.cookies.secure)
        .unwrap_or(!state.config.dev)
    {
        out.push_str("; Secure");
    }
    HeaderValue::from_str(&out).ok()
}

/// Kratos' 403 for a failed CSRF check.
pub fn csrf_violation(reject_reason: &str, hint: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN)
        .with_id("security_csrf_violation")
        .with_message("the request was rejected to protect you from Cross-Site-Request-Forgery")
        .with_reason(
            "Please retry the flow and optionally clear your cookies. The request was rejected to protect you \
             from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal \
             information, and other serious security issues.",
        )
        .with_details(json!({
            "docs": "https://www.ory.sh/kratos/docs/debug/csrf",
            "hint": hint,
            "reject_reason": reject_reason,
        }))
}

/// The 403 for a browser flow fetched without the cookie of the browser that started it.
pub fn foreign_flow() -> ApiError {
    csrf_violation(
        "The flow's anti-CSRF token does not match the anti-CSRF cookie of this request; the flow was \
         started in another browser or the cookie was removed.",
        "Forward the browser's Cookie header when fetching a browser flow, or start a new flow.",
    )
}

/// The 410 of `GET /self-service/<flow>/flows` for an expired flow: browsers get where to start again
/// (`details.redirect_to`), API clients `details.api`. Kratos sends no error id for settings.
pub fn expired_flow(state: &AppState, flow: &flows::Flow) -> ApiError {
    let kind = flow.kind.as_str();
    let mut details = serde_json::Map::new();
    if flow.flow_type == flows::FlowType::Browser {
        let mut redirect = format!("{}self-service/{kind}/browser", state.public_base);
        if let Some(r) = &flow.return_to {
            redirect = with_query(&redirect, "return_to", r);
            details.insert("return_to".into(), json!(r));
        }
        details.insert("redirect_to".into(), json!(redirect));
    } else {
        details.insert("api".into(), json!(true));
    }
    let err = ApiError::new(StatusCode::GONE)
        .with_reason(format!(
            "The {kind} flow has expired. Redirect the user to the {kind} flow init endpoint to initialize a new one."
        ))
        .with_message("self-service flow expired")
        .with_details(Value::Object(details));
    if flow.kind == FlowKind::Settings {
        err
    } else {
        err.with_id("self_service_flow_expired")
    }
}

/// Checks a browser submit: the `csrf_token` field (or `X-CSRF-Token` header) must carry the cookie's token.
pub fn check_csrf(state: &AppState, headers: &HeaderMap, body: &Value) -> Result<(), ApiError> {
    if !headers.contains_key(header::COOKIE) {
        return Err(csrf_violation(
            "The HTTP Request Header included no cookies.",
            "Browser flows need the cookies set when the flow was created: send them along (in fetch, use \
             `credentials: 'include'`), and serve the UI from the same domain as Portcullis.",
        ));
    }
    let Some(real) = csrf_of_request(state, headers) else {
        return Err(csrf_violation(
            "The HTTP Cookie Header was set but did not include the anti-CSRF cookie.",
            "The anti-CSRF cookie is set when a browser flow is created: start the flow in this browser, and \
             check that cookies.domain and cookies.path cover the page that submits.",
        ));
    };
    let sent = match body.get("csrf_token").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    if sent.is_empty() {
        return Err(csrf_violation(
            "The anti-CSRF token was neither sent in the request body (csrf_token) nor in the X-CSRF-Token header.",
            "The anti-CSRF cookie was found but the CSRF token was not included in the HTTP request body \
             (csrf_token) nor in the HTTP Header (X-CSRF-Token).",
        ));
    }
    if !real.verify_masked(&sent) {
        return Err(csrf_violation(
            "The HTTP Cookie Header was set and a CSRF token was sent but they do not match. We recommend deleting \
             all cookies for this domain and retrying the flow.",
            "Send the csrf_token value of the flow that this browser started; tokens of other browsers or of \
             earlier sessions are refused.",
        ));
    }
    Ok(())
}

/// The configured UI page of a flow kind, or the built-in page.
pub fn ui_url(state: &AppState, kind: FlowKind) -> String {
    ui_url_for(&state.config, &state.public_base, kind)
}

/// [`ui_url`] before the application state exists.
pub fn ui_url_for(config: &crate::config::Config, public_base: &str, kind: FlowKind) -> String {
    let flows = &config.selfservice.flows;
    let configured = match kind {
        FlowKind::Login => &flows.login.ui_url,
        FlowKind::Registration => &flows.registration.ui_url,
        FlowKind::Settings => &flows.settings.ui_url,
        FlowKind::Recovery => &flows.recovery.ui_url,
        FlowKind::Verification => &flows.verification.ui_url,
    };
    match configured {
        Some(u) => u.clone(),
        None if config.ui.enabled => format!("{public_base}ui/{}", kind.as_str()),
        None => format!("https://www.ory.sh/kratos/docs/fallback/{}", kind.as_str()),
    }
}

/// The error page.
pub fn error_ui_url(state: &AppState) -> String {
    match &state.config.selfservice.flows.error.ui_url {
        Some(u) => u.clone(),
        None if state.config.ui.enabled => format!("{}ui/error", state.public_base),
        None => "https://www.ory.sh/kratos/docs/fallback/error".to_owned(),
    }
}

/// Appends `key=value` to a URL's query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{url}{sep}{key}={encoded}")
}

/// Where browsers go after a flow of `kind` (or after logout with `None`) when no `return_to` was given:
/// `after.password.default_browser_return_url`, `after.default_browser_return_url`,
/// `selfservice.default_browser_return_url`, then the built-in "signed in" page.
pub fn default_return(state: &AppState, kind: Option<FlowKind>) -> String {
    default_return_for(&state.config, &state.public_base, kind)
}

/// [`default_return`] before the application state exists.
pub fn default_return_for(
    config: &crate::config::Config,
    public_base: &str,
    kind: Option<FlowKind>,
) -> String {
    let s = &config.selfservice;
    let flow_after = match kind {
        Some(FlowKind::Login) => Some(&s.flows.login.after),
        Some(FlowKind::Registration) => Some(&s.flows.registration.after),
        Some(FlowKind::Settings) => Some(&s.flows.settings.after),
        Some(FlowKind::Recovery) => Some(&s.flows.recovery.after),
        Some(FlowKind::Verification) => Some(&s.flows.verification.after),
        None => None,
    };
    let specific = match kind {
        None => s.flows.logout.after.default_browser_return_url.clone(),
        Some(_) => flow_after.and_then(|a| {
            a.password
                .as_ref()
                .and_then(|p| p.default_browser_return_url.clone())
                .or_else(|| a.default_browser_return_url.clone())
        }),
    };
    specific
        .or_else(|| s.default_browser_return_url.clone())
        .unwrap_or_else(|| {
            if config.ui.enabled {
                format!("{public_base}ui/welcome")
            } else {
                public_base.to_owned()
            }
        })
}

/// The `return_to` policy for a flow kind: `selfservice.allowed_return_urls`, the public `/self-service` paths and,
/// with the built-in UI on, its pages.
pub fn return_policy(state: &AppState, kind: Option<FlowKind>) -> ReturnToPolicy {
    let mut allowed = state.config.selfservice.allowed_return_urls.clone();
    if state.config.ui.enabled {
        allowed.push(format!("{}ui/", state.public_base));
    }
    if state.config.dev && !state.config.serve.proxy.disabled {
        // `--dev`: the demo behind the edge proxy sends people back to it after signing in.
        let port = state.config.serve.proxy.port;
        allowed.push(format!("http://127.0.0.1:{port}/"));
        allowed.push(format!("http://localhost:{port}/"));
    }
    ReturnToPolicy {
        allowed,
        default: default_return(state, kind),
        public_base: state.public_base.clone(),
    }
}

/// Validates a requested `return_to` (400 `self_service_flow_return_to_forbidden`); `None` when none was asked for.
pub fn validate_return_to(
    state: &AppState,
    kind: Option<FlowKind>,
    requested: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match requested.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) => return_policy(state, kind)
            .validate(r)
            .map(|u| Some(u.to_string()))
            .map_err(|e| {
                ApiError::bad_request(e.reason().to_owned())
                    .with_id(flows::security::RETURN_TO_FORBIDDEN_ID)
                    .with_message("Requested return_to URL is not allowed.")
            }),
    }
}

/// Where a finished flow sends the browser: its `return_to`, checked again, or the default.
pub fn completion_target(
    state: &AppState,
    kind: Option<FlowKind>,
    return_to: Option<&str>,
) -> Result<String, ApiError> {
    Ok(validate_return_to(state, kind, return_to)?.unwrap_or_else(|| default_return(state, kind)))
}

/// A 303 to `location` with extra `Set-Cookie` headers.
pub fn see_other(location: &str, cookies: &[Option<HeaderValue>]) -> Response {
    let mut res = Redirect::to(location).into_response();
    for c in cookies.iter().flatten() {
        res.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    res
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut res: Response, cookies: &[Option<HeaderValue>]) -> Response {
    for c in cookies.iter().flatten() {
        res.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    res
}

/// An error for a browser client: JSON clients get the envelope; HTML clients are sent to the error UI with the
/// error stored for `GET /self-service/errors?id=`.
pub async fn fail(state: &AppState, client: Client, err: ApiError) -> Response {
    if client == Client::Json {
        return err.into_response();
    }
    match state
        .errors
        .create_error(&err.error_object(), state.clock.now())
        .await
    {
        Ok(id) => see_other(
            &with_query(&error_ui_url(state), "id", &id.to_string()),
            &[],
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not store a self-service error");
            err.into_response()
        }
    }
}

/// Reads a submit body: JSON, or a form with dotted names coerced to the schema's types.
pub async fn body_of(state: &AppState, req: axum::extract::Request) -> Result<Value, ApiError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let bytes = axum::body::to_bytes(req.into_body(), crate::extract::MAX_BODY)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE))?;
    if is_form {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(&bytes).into_owned().collect();
        flows::ui::decode_form(&pairs, Some(state.identities.schemas().default_schema()))
            .map_err(|e| ApiError::bad_request(e.to_string()))
    } else if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Default::default()))
    } else {
        crate::extract::parse_json(&bytes)
    }
}

/// A string field of a body (missing and `null` are empty).
pub fn str_field<'a>(body: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be a string"))),
    }
}

/// The `id` of `GET /self-service/<flow>/flows?id=`. Kratos reads it with `x.ParseUUID`: a missing or malformed
/// id is the nil UUID, which names no flow, so it ends in a 404 after the flow's other checks.
pub fn flow_id_param(pairs: &[(String, String)]) -> uuid::Uuid {
    crate::extract::query_get(pairs, "id")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .unwrap_or_default()
}

/// Maps flow errors to Kratos envelopes (JSON and API clients).
pub fn flow_error(e: FlowError) -> ApiError {
    match e {
        FlowError::NotFound => ApiError::not_found(),
        FlowError::Expired {
            expired,
            replacement,
        } => {
            let since = (replacement.issued_at - expired.expires_at)
                .whole_nanoseconds()
                .max(0);
            ApiError::new(StatusCode::GONE)
                .with_id("self_service_flow_expired")
                .with_reason("The self-service flow expired, please start a new one.")
                .with_message("self-service flow expired")
                .with_details(json!({"api": expired.flow_type == FlowType::Api, "use_flow_id": replacement.id}))
                .with_extra("use_flow_id", json!(replacement.id))
                .with_extra("expired_at", identity::view::timestamp(expired.expires_at))
                .with_extra("since", json!(since))
        }
        FlowError::Completed => {
            ApiError::bad_request("This flow was already completed; start a new one.")
        }
        FlowError::RegistrationDisabled => {
            ApiError::bad_request("Registration is not allowed because it was disabled.")
                .with_id("self_service_flow_disabled")
                .with_message("registration flow disabled")
        }
        FlowError::Disabled(what) if what.starts_with("the ") => {
            ApiError::new(StatusCode::NOT_FOUND).with_reason(format!(
                "This endpoint was disabled by system administrator: {what} is not enabled."
            ))
        }
        FlowError::Disabled(what) => ApiError::bad_request(format!(
            "The {what} flow is not allowed because it was disabled (selfservice.flows.{what}.enabled)."
        )),
        FlowError::IdentityMismatch => ApiError::new(StatusCode::FORBIDDEN)
            .with_id("security_identity_mismatch")
            .with_reason("The flow belongs to another identity than the session of this request.")
            .with_message("Requested identity does not match the identity of the flow"),
        FlowError::BadRequest(reason) => ApiError::bad_request(reason),
        FlowError::Hook(reason) => {
            tracing::warn!(%reason, "a self-service hook failed");
            ApiError::new(StatusCode::BAD_GATEWAY)
                .with_id("upstream_error")
                .with_reason("A web hook of this flow could not be called.")
        }
        FlowError::Store(e) => e.into(),
        FlowError::Identity(e) => e.into(),
    }
}

/// Kratos' 400 for a flow that cannot start or continue while signed in.
pub fn session_already_available() -> ApiError {
    ApiError::bad_request("A valid session was detected and thus login is not possible.")
        .with_id("session_already_available")
        .with_message("A valid session was detected and thus login is not possible.")
}

/// A flow that needs another try: HTML clients go back to the form, others get 400 + flow.
pub fn retry(state: &AppState, client: Client, flow: &Flow) -> Response {
    if client == Client::Html {
        see_other(
            &with_query(&ui_url(state, flow.kind), "flow", &flow.id.to_string()),
            &[],
        )
    } else {
        (StatusCode::BAD_REQUEST, Json(flow_json(flow))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn negotiation_follows_go_httputil() {
        assert_eq!(init_client(&HeaderMap::new()), Client::Html);
        assert_eq!(init_client(&accept("*/*")), Client::Html);
        assert_eq!(init_client(&accept("application/json")), Client::Json);
        assert_eq!(
            init_client(&accept("text/html,application/json")),
            Client::Html
        );
        assert_eq!(init_client(&accept("application/json, */*")), Client::Json);
        assert_eq!(
            init_client(&accept("text/html;q=0.5, application/json")),
            Client::Json
        );
        assert_eq!(
            init_client(&accept(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Client::Html,
            "what browsers send"
        );
        assert_eq!(submit_client(&accept("application/json")), Client::Json);
        assert_eq!(submit_client(&accept("*/*")), Client::Html);
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(
            submit_client(&h),
            Client::Json,
            "a JSON body means a JSON client"
        );
    }

    #[test]
    fn api_flows_refuse_browsers_but_tolerate_cloudflare_cookies() {
        let mut h = HeaderMap::new();
        assert!(!browser_on_api_flow(&h));
        h.insert(header::COOKIE, "__cf_bm=1; cf_clearance=2".parse().unwrap());
        assert!(!browser_on_api_flow(&h));
        h.insert(header::COOKIE, "__cf_bm=1; session=2".parse().unwrap());
        assert!(browser_on_api_flow(&h));
        let mut o = HeaderMap::new();
        o.insert(header::ORIGIN, "https://app.example".parse().unwrap());
        assert!(browser_on_api_flow(&o));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a_b=1; a=\"2\"".parse().unwrap());
        assert_eq!(request_cookie(&h, "a").as_deref(), Some("2"));
        assert_eq!(request_cookie(&h, "b"), None);
    }
}
