//! The HTTP adapters of the login and registration flows: init (browser and API), `GET …/flows?id=` and submit.
//! The router gives the kind (`Extension<FlowKind>`); what starting each flow checks is in [`super::login`] and
//! [`super::registration`].

use super::outcome::{created, respond};
use super::request::{flow_matches_cookie, flow_to_show, request_url, Submission};
use super::{
    completion_target, ensure_csrf, fail, init_client, see_other, session_already_available, Client,
};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use flows::{flow_json, FlowKind, FlowType};

/// What an init request led to.
pub enum Start {
    /// A new flow.
    Flow(Box<flows::Flow>),
    /// The caller is signed in (and does not re-authenticate): no flow; the validated `return_to`.
    SignedIn(Option<String>),
}

/// A browser init of `kind`: `start` gets the masked CSRF token of this browser (a new cookie is set with the
/// flow when it has none); browsers go to the flow's page (or, signed in, where the flow would end), SPAs get JSON.
async fn browser_init<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    kind: FlowKind,
    start: F,
) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<Start, ApiError>>,
{
    let client = init_client(headers);
    let (csrf, set_cookie) = ensure_csrf(state, headers);
    let result = match start(csrf.masked()).await {
        Ok(Start::Flow(flow)) => Ok(created(state, client, &flow, set_cookie)),
        Ok(Start::SignedIn(return_to)) => signed_in(state, client, kind, return_to),
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => r,
        Err(e) => fail(state, client, e).await,
    }
}

/// A native app's init: the flow, or `session_already_available` for a caller that is signed in.
fn api_answer(start: Start) -> Result<Response, ApiError> {
    match start {
        Start::Flow(flow) => Ok(Json(flow_json(&flow)).into_response()),
        Start::SignedIn(_) => Err(session_already_available()),
    }
}

/// An init while signed in: browsers go where the flow would have sent them, others get
/// `session_already_available`.
fn signed_in(
    state: &AppState,
    client: Client,
    kind: FlowKind,
    return_to: Option<String>,
) -> Result<Response, ApiError> {
    match client {
        Client::Html => completion_target(state, Some(kind), return_to.as_deref())
            .map(|target| see_other(&target, &[])),
        Client::Json => Err(session_already_available()),
    }
}

/// `GET /self-service/{login,registration}/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let flow = flow_to_show(&state, kind, raw.as_deref(), |f| {
        f.flow_type == FlowType::Api || flow_matches_cookie(&state, &headers, f)
    })
    .await?;
    Ok(Json(flow_json(&flow)).into_response())
}

/// Starts a flow of `kind` for the request.
async fn start(
    kind: FlowKind,
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    flow_type: FlowType,
    request_url: String,
    csrf_token: String,
) -> Result<Start, ApiError> {
    if kind == FlowKind::Login {
        super::login::start(state, headers, raw, flow_type, request_url, csrf_token).await
    } else {
        super::registration::start(state, headers, raw, flow_type, request_url, csrf_token).await
    }
}

/// `GET /self-service/{login,registration}/api`. A signed-in caller gets `session_already_available`, except a
/// login with `refresh=true` (re-authentication).
pub async fn init_api(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let url = request_url(&state, &req);
    let raw = raw.as_deref();
    start(
        kind,
        &state,
        &headers,
        raw,
        FlowType::Api,
        url,
        String::new(),
    )
    .await
    .and_then(api_answer)
}

/// `GET /self-service/{login,registration}/browser`.
pub async fn init_browser(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let url = request_url(&state, &req);
    let raw = raw.as_deref();
    browser_init(&state, &headers, kind, |csrf| {
        start(kind, &state, &headers, raw, FlowType::Browser, url, csrf)
    })
    .await
}

/// `POST /self-service/{login,registration}?flow=`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(kind): Extension<FlowKind>,
    ClientIp(client_ip): ClientIp,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let s = match Submission::read(&state, kind, client_ip, raw.as_deref(), req).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (flow, ctx) = (s.flow.clone(), s.ctx.clone());
    let result = if kind == FlowKind::Login {
        state.login_flows.submit(flow, &s.body, ctx).await
    } else {
        state.registration_flows.submit(flow, &s.body, ctx).await
    };
    respond(&state, &s, result).await
}
