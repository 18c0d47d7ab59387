//! Recovery and verification over HTTP (browser, SPA and native), and the admin recovery endpoints
//! (`POST /admin/recovery/code`, `POST /admin/recovery/link`).

use super::flow_error;
use super::request::{current_session, request_url};
use super::request::{flow_to_show, submit_context, Submission};
use super::{
    body_of, browser_on_api_flow, check_csrf, completion_target, csrf_of_request, ensure_csrf,
    fail, init_client, see_other, submit_client, ui_url, validate_return_to, with_cookies,
    with_query, Client,
};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use flows::challenge::{ChallengeFlows, ChallengeInit};
use flows::security::CsrfToken;
use flows::FlowError;
use flows::SubmitContext;
use flows::{flow_json, Flow, FlowKind, FlowType};
use serde_json::{json, Value};

fn session_already_available() -> ApiError {
    ApiError::bad_request("A valid session was detected and thus recovery is not possible.")
        .with_id("session_already_available")
        .with_message("A valid session was detected and thus recovery is not possible.")
}

/// `GET /self-service/{recovery,verification}/api`.
pub async fn init_api(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    if kind == FlowKind::Recovery && current_session(&state, &headers).await?.is_some() {
        return Err(session_already_available());
    }
    let return_to = validate_return_to(&state, Some(kind), query_get(&pairs, "return_to"))?;
    let flow = state
        .challenges
        .init(ChallengeInit {
            kind,
            flow_type: FlowType::Api,
            request_url: request_url(&state, &req),
            return_to,
            csrf_token: String::new(),
        })
        .await
        .map_err(flow_error)?;
    Ok(Json(flow_json(&flow)).into_response())
}

/// `GET /self-service/{recovery,verification}/browser`.
pub async fn init_browser(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let client = init_client(&headers);
    let url = request_url(&state, &req);
    let result = async {
        let pairs = query_pairs(raw.as_deref());
        let return_to = validate_return_to(&state, Some(kind), query_get(&pairs, "return_to"))?;
        if !state.challenges.enabled(kind) {
            return Err(flow_error(FlowError::Disabled(kind.as_str())));
        }
        if kind == FlowKind::Recovery && current_session(&state, &headers).await?.is_some() {
            return match client {
                Client::Html => Ok(see_other(
                    &completion_target(&state, Some(kind), return_to.as_deref())?,
                    &[],
                )),
                Client::Json => Err(session_already_available()),
            };
        }
        let (csrf, set_cookie) = ensure_csrf(&state, &headers);
        let flow = state
            .challenges
            .init(ChallengeInit {
                kind,
                flow_type: FlowType::Browser,
                request_url: url.clone(),
                return_to,
                csrf_token: csrf.masked(),
            })
            .await
            .map_err(flow_error)?;
        Ok(match client {
            Client::Html => see_other(
                &with_query(&ui_url(&state, kind), "flow", &flow.id.to_string()),
                &[set_cookie],
            ),
            Client::Json => with_cookies(Json(flow_json(&flow)).into_response(), &[set_cookie]),
        })
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
    }
}

/// Whether any browser may complete the flow with its own CSRF cookie (double submit) rather than only the browser
/// that started it: verification flows (a mail is often opened on another device than the one that registered, and
/// verifying an address signs nobody in) and recovery flows an administrator created (no browser started them).
/// A browser-started recovery flow is bound to its browser: completing it signs in, so someone else's link must
/// not be able to do that in a victim's browser (login CSRF).
pub fn unbound(flow: &Flow) -> bool {
    flow.kind == FlowKind::Verification || ChallengeFlows::is_admin_flow(flow)
}

/// Whether this browser may see and complete the flow (API flows and unbound flows belong to whoever has the link).
pub fn flow_matches(state: &AppState, headers: &HeaderMap, flow: &Flow) -> bool {
    flow.flow_type == FlowType::Api
        || unbound(flow)
        || super::request::flow_matches_cookie(state, headers, flow)
}

/// The flow JSON for a browser: an unbound flow's form carries this browser's own (masked) CSRF token, which its
/// submit must send back.
pub fn flow_json_for(flow: &Flow, csrf: Option<&CsrfToken>) -> Value {
    let mut v = flow_json(flow);
    if let Some(token) = csrf.filter(|_| unbound(flow)) {
        if let Some(nodes) = v["ui"]["nodes"].as_array_mut() {
            for n in nodes {
                if n["attributes"]["name"] == "csrf_token" {
                    n["attributes"]["value"] = json!(token.masked());
                }
            }
        }
    }
    v
}

/// The answer to a recovery link opened in a browser other than the one that asked for it.
fn foreign_link() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN)
        .with_id("security_csrf_violation")
        .with_message("the request was rejected to protect you from Cross-Site-Request-Forgery")
        .with_reason(
            "This recovery link belongs to a recovery that was started in another browser. Open it in the browser \
             in which you asked for it, or start the recovery again in this browser. Nothing was used up.",
        )
        .with_details(json!({
            "reject_reason": "The flow's anti-CSRF token does not match the anti-CSRF cookie of this request.",
        }))
}

/// `GET /self-service/{recovery,verification}/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let flow = flow_to_show(&state, kind, raw.as_deref(), |f| {
        flow_matches(&state, &headers, f)
    })
    .await?;
    // A browser that opens an unbound browser flow without a CSRF cookie (an administrator's link in a fresh
    // browser) gets one, and its token in the form.
    let (csrf, set_csrf) = if unbound(&flow) && flow.flow_type == FlowType::Browser {
        let (t, c) = ensure_csrf(&state, &headers);
        (Some(t), c)
    } else {
        (csrf_of_request(&state, &headers), None)
    };
    Ok(with_cookies(
        Json(flow_json_for(&flow, csrf.as_ref())).into_response(),
        &[set_csrf],
    ))
}

/// `GET /self-service/{recovery,verification}?flow=&code=` (or `&token=`), the link in a message: it uses nothing.
/// The code or token is pre-filled into the flow ([`ChallengeFlows::prefill`]) and the browser goes to the flow's
/// page, where a POST with the CSRF token uses it. A mail scanner's GET therefore burns nothing, and a recovery
/// link opened in a browser that did not start the flow is refused without touching the flow.
async fn open_link(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    flow: Flow,
    code: Option<&str>,
    token: Option<&str>,
) -> Response {
    if !flow_matches(state, headers, &flow) {
        return fail(state, client, foreign_link()).await;
    }
    let (csrf, set_csrf) = if unbound(&flow) {
        let (t, c) = ensure_csrf(state, headers);
        (Some(t), c)
    } else {
        (None, None)
    };
    match state
        .challenges
        .prefill(flow.kind, flow.id, code, token)
        .await
    {
        Ok(f) => match client {
            Client::Html => see_other(
                &with_query(&ui_url(state, f.kind), "flow", &f.id.to_string()),
                &[set_csrf],
            ),
            Client::Json => with_cookies(
                Json(flow_json_for(&f, csrf.as_ref())).into_response(),
                &[set_csrf],
            ),
        },
        Err(FlowError::Expired { replacement, .. }) if client == Client::Html => see_other(
            &with_query(
                &ui_url(state, replacement.kind),
                "flow",
                &replacement.id.to_string(),
            ),
            &[set_csrf],
        ),
        Err(e) => fail(state, client, flow_error(e)).await,
    }
}

/// `POST /self-service/{recovery,verification}?flow=`, and the `GET` that a link in a message opens (`&code=` or
/// `&token=`, see [`open_link`]). Browser flows need the CSRF token of the browser's cookie; a browser-started
/// recovery flow also needs that browser ([`unbound`]). A browser may also complete an API verification flow
/// from a mail link, with its own CSRF token.
pub async fn submit(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    ClientIp(client_ip): ClientIp,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let url = request_url(&state, &req);
    let is_get = req.method() == Method::GET;
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
    let flow = match state.challenges.load(kind, id).await {
        Ok(f) => f,
        Err(e) => return fail(&state, client, flow_error(e)).await,
    };
    let via_browser = flow.flow_type == FlowType::Browser
        || (kind == FlowKind::Verification && browser_on_api_flow(&headers));
    if !via_browser && !is_get {
        client = Client::Json;
    }
    if is_get {
        let token = query_get(&pairs, "token");
        let code = query_get(&pairs, "code");
        if token.is_none() && code.is_none() {
            // A browser that came back to the flow: show it.
            return see_other(
                &with_query(&ui_url(&state, kind), "flow", &flow.id.to_string()),
                &[],
            );
        }
        return open_link(&state, &headers, client, flow, code, token).await;
    }
    let body = match body_of(&state, req).await {
        Ok(b) => b,
        Err(e) => return fail(&state, client, e).await,
    };
    let post = Post {
        flow,
        body,
        via_browser,
        client,
        client_ip,
        url,
    };
    match post.run(&state, &headers, &pairs).await {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
    }
}

/// A `POST` of a recovery or verification flow.
struct Post {
    flow: Flow,
    body: Value,
    via_browser: bool,
    client: Client,
    client_ip: Option<std::net::IpAddr>,
    url: String,
}

impl Post {
    async fn run(
        self,
        state: &AppState,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<Response, ApiError> {
        let (flow, body, client) = (self.flow, self.body, self.client);
        if !self.via_browser {
            if browser_on_api_flow(headers) {
                return Err(ApiError::bad_request(
                    "The request carried a cookie or an Origin header, so it comes from a browser; browsers \
                     must use the browser flow (…/browser) instead of the API flow.",
                ));
            }
        } else {
            check_csrf(state, headers, &body)?;
            if !flow_matches(state, headers, &flow) {
                return Err(foreign_link());
            }
        }
        let csrf_token = if flow.flow_type == FlowType::Browser {
            ensure_csrf(state, headers).0.masked()
        } else {
            String::new()
        };
        // A POST may name the secret in the query as Kratos' `?token=` (the SDK's `token` argument).
        let mut body = body;
        if let Value::Object(fields) = &mut body {
            for key in ["code", "token"] {
                if let (None, Some(v)) = (fields.get(key), query_get(pairs, key)) {
                    fields.insert(key.to_owned(), json!(v));
                }
            }
        }
        let ctx = SubmitContext {
            csrf_token,
            ..submit_context(state, headers, self.client_ip, self.url)
        };
        let result = state
            .challenges
            .submit(flow.kind, flow.id, &body, &ctx)
            .await;
        let s = Submission {
            client,
            flow,
            body,
            ctx,
            headers: headers.clone(),
        };
        Ok(super::outcome::respond(state, &s, result).await)
    }
}

/// The body of `POST /admin/recovery/{code,link}`.
fn admin_body(body: &Value) -> Result<(uuid::Uuid, Option<time::Duration>), ApiError> {
    let id = match body.get("identity_id") {
        Some(Value::String(s)) => uuid::Uuid::parse_str(s)
            .map_err(|_| ApiError::bad_request("identity_id must be a UUID"))?,
        _ => return Err(ApiError::bad_request("identity_id is required")),
    };
    let unparsable = |s: &str, why: &str| {
        ApiError::bad_request(format!(
            "Unable to parse \"expires_in\" as a duration string (e.g. \"1h\", \"1m30s\", \"500ms\"): {s}: {why}"
        ))
    };
    let expires_in = match body.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let d = identity::clock::parse_go_duration(s).map_err(|e| unparsable(s, &e))?;
            Some(time::Duration::try_from(d).map_err(|e| unparsable(s, &e.to_string()))?)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "expires_in must be a duration such as \"1h\"",
            ))
        }
    };
    Ok((id, expires_in))
}

/// The lifespan of an admin recovery flow: it must be positive and `now + lifespan` must be a timestamp (Kratos: 400
/// "must result to a future time"). The flows add it to the current time unchecked. A parsed `expires_in` is at
/// most Go's largest duration (about 292 years), so this guards the configured defaults as much as the body.
fn admin_lifespan(state: &AppState, lifespan: time::Duration) -> Result<time::Duration, ApiError> {
    let future = lifespan.is_positive() && state.clock.now().checked_add(lifespan).is_some();
    if !future {
        return Err(ApiError::bad_request(format!(
            "Value from \"expires_in\" must result to a future time: {lifespan}"
        )));
    }
    Ok(lifespan)
}

fn admin_url(state: &AppState, path: &str) -> String {
    format!("{}{}", state.admin_base, path.trim_start_matches('/'))
}

/// `POST /admin/recovery/code`.
pub async fn admin_code(
    State(state): State<AppState>,
    crate::extract::JsonBody(body): crate::extract::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (identity_id, expires_in) = admin_body(&body)?;
    // As Kratos decodes the body into an optional string: null means browser, another type is a 400.
    let flow_type = match body.get("flow_type") {
        None | Some(Value::Null) => FlowType::Browser,
        Some(Value::String(s)) if s == "browser" => FlowType::Browser,
        Some(Value::String(s)) if s == "api" => FlowType::Api,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Value from \"flow_type\" is not valid: {other}; use \"browser\" or \"api\""
            )))
        }
    };
    let expires_in = admin_lifespan(
        &state,
        expires_in.unwrap_or(state.challenges.settings().code_lifespan),
    )?;
    let (flow, code) = match state
        .challenges
        .admin_code(
            identity_id,
            expires_in,
            flow_type,
            admin_url(&state, "admin/recovery/code"),
        )
        .await
    {
        Ok(x) => x,
        Err(FlowError::Store(identity::StoreError::NotFound)) => {
            return Err(ApiError::not_found().with_reason("The identity does not exist."))
        }
        Err(e) => return Err(flow_error(e)),
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "recovery_link": with_query(state.challenges.ui_url(FlowKind::Recovery), "flow", &flow.id.to_string()),
            "recovery_code": code,
            "expires_at": identity::view::timestamp(flow.expires_at),
        })),
    )
        .into_response())
}

/// `POST /admin/recovery/link`.
pub async fn admin_link(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    crate::extract::JsonBody(body): crate::extract::JsonBody<Value>,
) -> Result<Response, ApiError> {
    if !state.challenges.settings().link_enabled {
        return Err(flow_error(FlowError::Disabled("the link method")));
    }
    let (identity_id, expires_in) = admin_body(&body)?;
    let pairs = query_pairs(raw.as_deref());
    let return_to = validate_return_to(
        &state,
        Some(FlowKind::Recovery),
        query_get(&pairs, "return_to"),
    )?;
    let expires_in = admin_lifespan(
        &state,
        expires_in.unwrap_or(state.challenges.settings().link_lifespan),
    )?;
    let (flow, token) = match state
        .challenges
        .admin_link(
            identity_id,
            expires_in,
            return_to,
            admin_url(&state, "admin/recovery/link"),
        )
        .await
    {
        Ok(x) => x,
        Err(FlowError::Store(identity::StoreError::NotFound)) => {
            return Err(ApiError::bad_request("The identity does not exist."))
        }
        Err(e) => return Err(flow_error(e)),
    };
    let link = format!(
        "{}self-service/recovery?flow={}&token={token}",
        state.challenges.settings().link_base,
        flow.id
    );
    Ok(Json(json!({
        "recovery_link": link,
        "expires_at": identity::view::timestamp(flow.expires_at),
    }))
    .into_response())
}
