//! Login and registration: init (browser and API), `GET …/flows`, and submit, with Kratos' status matrix.

use super::{
    body_of, browser_on_api_flow, check_csrf, completion_target, csrf_of_request, csrf_set_cookie,
    ensure_csrf, fail, init_client, see_other, str_field, submit_client, ui_url,
    validate_return_to, with_cookies, with_query, Client,
};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::sessions::{device_info, request_token, session_set_cookie};
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::hooks::HookRequest;
use flows::password::{FlowError, InitRequest, Outcome, SubmitContext};
use flows::security::CsrfToken;
use flows::{flow_json, Flow, FlowKind, FlowType};
use identity::session::SessionSnapshot;
use serde_json::{json, Map, Value};
use std::sync::Arc;

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

fn kind_of(path: &str) -> FlowKind {
    if path.contains("/registration") {
        FlowKind::Registration
    } else {
        FlowKind::Login
    }
}

pub fn request_url(state: &AppState, req: &Request) -> String {
    format!(
        "{}{}",
        state.public_base.trim_end_matches('/'),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_default()
    )
}

pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<SessionSnapshot>>, ApiError> {
    match request_token(state, headers) {
        Some(token) => Ok(state.sessions.authenticate(&token).await?),
        None => Ok(None),
    }
}

fn session_already_available() -> ApiError {
    ApiError::bad_request("A valid session was detected and thus login is not possible.")
        .with_id("session_already_available")
        .with_message("A valid session was detected and thus login is not possible.")
}

/// `GET /self-service/{login,registration}/api`.
pub async fn init_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let kind = kind_of(req.uri().path());
    let pairs = query_pairs(raw.as_deref());
    if current_session(&state, &headers).await?.is_some() {
        return Err(session_already_available());
    }
    let return_to = validate_return_to(&state, Some(kind), query_get(&pairs, "return_to"))?;
    let flow = state
        .password_flows
        .init(InitRequest {
            kind,
            flow_type: FlowType::Api,
            request_url: request_url(&state, &req),
            return_to,
            csrf_token: String::new(),
            refresh_for: None,
        })
        .await
        .map_err(flow_error)?;
    Ok(Json(flow_json(&flow)).into_response())
}

/// `GET /self-service/{login,registration}/browser`.
pub async fn init_browser(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let client = init_client(&headers);
    let kind = kind_of(req.uri().path());
    let url = request_url(&state, &req);
    match init_browser_inner(&state, &headers, raw.as_deref(), kind, url, client).await {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
    }
}

async fn init_browser_inner(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    kind: FlowKind,
    request_url: String,
    client: Client,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw);
    let return_to = validate_return_to(state, Some(kind), query_get(&pairs, "return_to"))?;
    let refresh = match query_get(&pairs, "refresh") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "refresh must be true or false, not {other:?}"
            )))
        }
    };
    let session = current_session(state, headers).await?;
    match query_get(&pairs, "aal") {
        None | Some("") | Some("aal1") => {}
        Some("aal2") if session.is_none() => {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED)
                .with_id("session_aal1_required")
                .with_reason(
                    "You can not requested a higher AAL (AAL2/AAL3) without an active session.",
                )
                .with_message("aal1 is required"));
        }
        Some("aal2") => {
            return Err(ApiError::bad_request(
                "No second factor is enabled on this server, so aal2 cannot be reached.",
            ))
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unable to parse AuthenticationMethod Assurance Level (AAL): {other:?}"
            )))
        }
    }
    if kind == FlowKind::Registration
        && !state
            .config
            .selfservice
            .flows
            .registration
            .enabled
            .unwrap_or(true)
    {
        return Err(flow_error(FlowError::RegistrationDisabled));
    }
    if session.is_some() && (kind == FlowKind::Registration || !refresh) {
        return match client {
            Client::Html => Ok(see_other(
                &completion_target(state, Some(kind), return_to.as_deref())?,
                &[],
            )),
            Client::Json => Err(session_already_available()),
        };
    }
    let (csrf, set_cookie) = ensure_csrf(state, headers);
    let flow = state
        .password_flows
        .init(InitRequest {
            kind,
            flow_type: FlowType::Browser,
            request_url,
            return_to,
            csrf_token: csrf.masked(),
            refresh_for: session
                .filter(|_| refresh)
                .map(|s| (s.session_id, s.identity_id)),
        })
        .await
        .map_err(flow_error)?;
    Ok(match client {
        Client::Html => see_other(
            &with_query(&ui_url(state, kind), "flow", &flow.id.to_string()),
            &[set_cookie],
        ),
        Client::Json => with_cookies(Json(flow_json(&flow)).into_response(), &[set_cookie]),
    })
}

/// Whether a browser flow belongs to this browser: its stored token must match the CSRF cookie.
pub fn flow_matches_cookie(state: &AppState, headers: &HeaderMap, flow: &Flow) -> bool {
    match csrf_of_request(state, headers) {
        Some(real) => real.verify_masked(&flow.csrf_token),
        None => false,
    }
}

/// `GET /self-service/{login,registration}/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let kind = kind_of(req.uri().path());
    let pairs = query_pairs(raw.as_deref());
    let id = query_get(&pairs, "id")
        .ok_or_else(|| ApiError::bad_request("the id query parameter is required"))?;
    let flow = state
        .password_flows
        .load(kind, uuid(id)?)
        .await
        .map_err(flow_error)?;
    if flow.flow_type == FlowType::Browser && !flow_matches_cookie(&state, &headers, &flow) {
        return Err(super::foreign_flow());
    }
    if flow.is_expired(state.clock.now()) {
        return Err(super::expired_flow(&state, &flow));
    }
    Ok(Json(flow_json(&flow)).into_response())
}

/// Headers web hooks may see (`ctx.request_headers`), as Kratos allow-lists them.
const HOOK_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "content-length",
    "content-type",
    "origin",
    "priority",
    "referer",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "true-client-ip",
    "user-agent",
    "x-forwarded-for",
    "cf-ipcountry",
    "cf-ipcity",
];

pub fn hook_request(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    url: String,
) -> HookRequest {
    let mut hs = Map::new();
    for name in HOOK_HEADERS {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            hs.insert((*name).to_owned(), json!(v));
        }
    }
    let mut cookies = Map::new();
    for pair in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
    {
        if let Some((k, v)) = pair.trim().split_once('=') {
            // Our own credentials never leave the server.
            if k != state.config.session.cookie.name && k != state.csrf_cookie {
                cookies.insert(k.to_owned(), json!(v));
            }
        }
    }
    HookRequest {
        headers: hs,
        method: method.to_owned(),
        url,
        cookies,
    }
}

/// The message Kratos puts on a login flow submitted while signed in.
fn already_signed_in_message() -> identity::text::UiText {
    identity::text::validation_generic(
        "A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?",
    )
}

/// `POST /self-service/{login,registration}?flow=`: password method, browser and API flows.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let kind = kind_of(req.uri().path());
    let url = request_url(&state, &req);
    let mut client = submit_client(&headers);
    let pairs = query_pairs(raw.as_deref());
    let id = match query_get(&pairs, "flow").map(uuid) {
        Some(Ok(id)) => id,
        Some(Err(e)) => return fail(&state, client, e).await,
        None => {
            let e = ApiError::bad_request("the flow query parameter is required");
            return fail(&state, client, e).await;
        }
    };
    let flow = match state.password_flows.load(kind, id).await {
        Ok(f) => f,
        Err(e) => return fail(&state, client, flow_error(e)).await,
    };
    let api = flow.flow_type == FlowType::Api;
    if api {
        client = Client::Json;
    }
    let body = match body_of(&state, req).await {
        Ok(b) => b,
        Err(e) => return fail(&state, client, e).await,
    };
    let device = device_info(client_ip, &headers);
    let ctx = SubmitContext {
        client_ip: device.ip_address.as_deref().and_then(|ip| ip.parse().ok()),
        device,
        request: hook_request(&state, &headers, "POST", url),
    };
    match submit_inner(&state, &headers, kind, flow, body, ctx, client).await {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
    }
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

async fn submit_inner(
    state: &AppState,
    headers: &HeaderMap,
    kind: FlowKind,
    flow: Flow,
    body: Value,
    ctx: SubmitContext,
    client: Client,
) -> Result<Response, ApiError> {
    let api = flow.flow_type == FlowType::Api;
    if api {
        if browser_on_api_flow(headers) {
            let flow = state
                .password_flows
                .with_message(
                    flow,
                    identity::text::validation_generic(
                        "The request carried a cookie or an Origin header, so it comes from a browser; browsers \
                         must use the browser flow (…/browser) instead of the API flow.",
                    ),
                )
                .await
                .map_err(flow_error)?;
            return Ok(retry(state, client, &flow));
        }
    } else {
        check_csrf(state, headers, &body)?;
    }
    let session = current_session(state, headers).await?;
    if session.is_some() {
        if kind == FlowKind::Registration {
            return match client {
                Client::Html => Ok(see_other(
                    &completion_target(state, Some(kind), flow.return_to.as_deref())?,
                    &[],
                )),
                Client::Json => Err(session_already_available()),
            };
        }
        if !flow.refresh {
            if client == Client::Html {
                return Ok(see_other(&super::default_return(state, Some(kind)), &[]));
            }
            let flow = state
                .password_flows
                .with_message(flow, already_signed_in_message())
                .await
                .map_err(flow_error)?;
            return Ok(retry(state, client, &flow));
        }
    }
    let method = str_field(&body, "method")?;
    if method != "password" {
        return Err(ApiError::bad_request(format!(
            "Could not find a strategy to handle method {method:?}; this server supports \"password\"."
        ))
        .with_details(json!({"flow": flow.id})));
    }
    let password = str_field(&body, "password")?;
    let outcome = match kind {
        FlowKind::Registration => {
            let traits = match body.get("traits") {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(t @ Value::Object(_)) => t.clone(),
                Some(_) => return Err(ApiError::bad_request("traits must be an object")),
            };
            state
                .password_flows
                .register(flow.id, traits, password, ctx)
                .await
        }
        _ => {
            let identifier = match str_field(&body, "identifier")? {
                "" => str_field(&body, "password_identifier")?,
                i => i,
            };
            state
                .password_flows
                .login(flow.id, identifier, password, ctx)
                .await
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(FlowError::Expired { replacement, .. }) if client == Client::Html => {
            return Ok(see_other(
                &with_query(&ui_url(state, kind), "flow", &replacement.id.to_string()),
                &[],
            ))
        }
        Err(e) => return Err(flow_error(e)),
    };
    match outcome {
        Outcome::Retry(flow) => Ok(retry(state, client, &flow)),
        Outcome::Throttled { flow, retry_after } => {
            if client == Client::Html {
                return Ok(retry(state, client, &flow));
            }
            let secs = retry_after.as_secs().max(1);
            let mut res = ApiError::new(StatusCode::TOO_MANY_REQUESTS)
                .with_id("self_service_flow_throttled")
                .with_reason(format!(
                    "Too many failed sign-in attempts. Please try again in {secs} seconds."
                ))
                .with_details(json!({"retry_after_seconds": secs, "flow": flow.id}))
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
        }
        Outcome::LoggedIn {
            session: issued,
            identity,
        } => {
            if api {
                return Ok(Json(json!({
                    "session": state.sessions.render(&issued.session, Some(&identity), true),
                    "session_token": issued.token,
                    "continue_with": Value::Null,
                }))
                .into_response());
            }
            if let Some(old) = session.filter(|s| s.session_id != issued.session.id) {
                // A refresh login replaces the session it re-authenticated.
                state.sessions.revoke(old.session_id).await?;
            }
            let target = completion_target(state, Some(kind), flow.return_to.as_deref())?;
            let cookies = browser_cookies(state, &issued);
            Ok(match client {
                Client::Html => see_other(&target, &cookies),
                Client::Json => with_cookies(
                    Json(json!({
                        "session": state.sessions.render(&issued.session, Some(&identity), true),
                        "continue_with": [{"action": "redirect_browser_to", "redirect_browser_to": target}],
                    }))
                    .into_response(),
                    &cookies,
                ),
            })
        }
        Outcome::AddressNotVerified { flow, identity } => {
            if state
                .config
                .feature_flags
                .legacy_require_verified_login_error
            {
                return Ok(retry(state, client, &flow));
            }
            let csrf = if api {
                String::new()
            } else {
                csrf_of_request(state, headers)
                    .map(|t| t.masked())
                    .unwrap_or_default()
            };
            let verification = send_verifications(state, &identity, &flow, csrf).await?;
            let Some(first) = verification.first() else {
                return Ok(retry(state, client, &flow));
            };
            if client == Client::Html {
                return Ok(see_other(
                    &with_query(
                        &ui_url(state, FlowKind::Verification),
                        "flow",
                        &first.0.id.to_string(),
                    ),
                    &[],
                ));
            }
            let items: Vec<Value> = verification
                .iter()
                .map(|(f, a)| super::settings::show_verification_ui(state, f, a))
                .collect();
            Err(ApiError::new(StatusCode::FORBIDDEN)
                .with_id("session_verified_address_required")
                .with_reason(
                    "Your account's email or phone address are not verified yet. Please check your email or \
                     phone inbox or re-request verification.",
                )
                .with_message("Your email or phone address is not yet verified.")
                .with_details(json!({"continue_with": items})))
        }
        Outcome::Registered {
            identity,
            session: issued,
        } => {
            let mut body = json!({ "identity": identity::view::public_identity(&identity, &state.public_base) });
            // A session rotates the CSRF token; verification flows started now must carry the new one.
            let fresh = CsrfToken::generate();
            let csrf = match (&issued, api) {
                (_, true) => String::new(),
                (Some(_), false) => fresh.masked(),
                (None, false) => csrf_of_request(state, headers)
                    .map(|t| t.masked())
                    .unwrap_or_default(),
            };
            let verification = send_verifications(state, &identity, &flow, csrf).await?;
            let mut continue_with: Vec<Value> = verification
                .iter()
                .map(|(f, a)| super::settings::show_verification_ui(state, f, a))
                .collect();
            if api {
                if let Some(s) = issued {
                    body["session"] = state.sessions.render(&s.session, Some(&identity), true);
                    body["session_token"] = json!(s.token);
                    continue_with.push(
                        json!({"action": "set_ory_session_token", "ory_session_token": s.token}),
                    );
                }
                body["continue_with"] = if continue_with.is_empty() {
                    Value::Null
                } else {
                    Value::Array(continue_with)
                };
                return Ok(Json(body).into_response());
            }
            let mut target = completion_target(state, Some(kind), flow.return_to.as_deref())?;
            if state.hooks.show_verification_ui(FlowKind::Registration) {
                if let Some((v, _)) = verification.first() {
                    target = with_query(
                        &ui_url(state, FlowKind::Verification),
                        "flow",
                        &v.id.to_string(),
                    );
                }
            }
            let cookies = match &issued {
                Some(s) => {
                    body["session"] = state.sessions.render(&s.session, Some(&identity), true);
                    browser_cookies_with(state, s, &fresh)
                }
                None => Vec::new(),
            };
            continue_with
                .push(json!({"action": "redirect_browser_to", "redirect_browser_to": target}));
            body["continue_with"] = Value::Array(continue_with);
            Ok(match client {
                Client::Html => see_other(&target, &cookies),
                Client::Json => with_cookies(Json(body).into_response(), &cookies),
            })
        }
    }
}

/// With verification on, a verification flow per unverified address of `identity`, each having sent its
/// message: `(flow, address)`.
async fn send_verifications(
    state: &AppState,
    identity: &identity::Identity,
    flow: &Flow,
    csrf: String,
) -> Result<Vec<(Flow, String)>, ApiError> {
    let mut out = Vec::new();
    if !state.challenges.enabled(FlowKind::Verification) {
        return Ok(out);
    }
    for a in identity
        .verifiable_addresses
        .iter()
        .filter(|a| !a.verified && a.via == "email")
    {
        let v = state
            .challenges
            .send_verification(
                identity,
                &a.value,
                flows::challenge::ChallengeInit {
                    kind: FlowKind::Verification,
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: csrf.clone(),
                },
            )
            .await
            .map_err(flow_error)?;
        out.push((v, a.value.clone()));
    }
    Ok(out)
}

/// The session cookie, plus a fresh CSRF cookie: a new identity gets a new token, so tokens planted before
/// signing in are worthless afterwards.
pub fn browser_cookies(
    state: &AppState,
    issued: &identity::session::manager::IssuedSession,
) -> Vec<Option<HeaderValue>> {
    browser_cookies_with(state, issued, &CsrfToken::generate())
}

/// [`browser_cookies`] with a given new CSRF token.
pub fn browser_cookies_with(
    state: &AppState,
    issued: &identity::session::manager::IssuedSession,
    csrf: &CsrfToken,
) -> Vec<Option<HeaderValue>> {
    let left = (issued.session.expires_at - state.clock.now()).whole_seconds();
    vec![
        session_set_cookie(&state.config, &state.cookie, &issued.token, left)
            .and_then(|c| HeaderValue::from_str(&c).ok()),
        csrf_set_cookie(state, csrf),
    ]
}
