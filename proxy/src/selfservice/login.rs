//! Login over HTTP: init (browser and API), `GET …/flows`, and submit. Adapters around [`flows::login`].

use super::init::{api_answer, browser_init, get_flow_of, Start};
use super::outcome::respond;
use super::request::{current_session, refresh_param, request_url, Submission};
use super::{flow_error, validate_return_to};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs};
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use flows::login::LoginInit;
use flows::{FlowKind, FlowType};

/// `?aal=`: only `aal1` can be reached while no second factor exists.
fn check_aal(pairs: &[(String, String)], signed_in: bool) -> Result<(), ApiError> {
    match query_get(pairs, "aal") {
        None | Some("") | Some("aal1") => Ok(()),
        Some("aal2") if !signed_in => Err(ApiError::new(StatusCode::UNAUTHORIZED)
            .with_id("session_aal1_required")
            .with_reason(
                "You can not requested a higher AAL (AAL2/AAL3) without an active session.",
            )
            .with_message("aal1 is required")),
        Some("aal2") => Err(ApiError::bad_request(
            "No second factor is enabled on this server, so aal2 cannot be reached.",
        )),
        Some(other) => Err(ApiError::bad_request(format!(
            "Unable to parse AuthenticationMethod Assurance Level (AAL): {other:?}"
        ))),
    }
}

/// Starts a flow of `flow_type` for the request.
async fn start(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    flow_type: FlowType,
    request_url: String,
    csrf_token: String,
) -> Result<Start, ApiError> {
    let pairs = query_pairs(raw);
    let return_to =
        validate_return_to(state, Some(FlowKind::Login), query_get(&pairs, "return_to"))?;
    let refresh = refresh_param(&pairs)?;
    let session = current_session(state, headers).await?;
    check_aal(&pairs, session.is_some())?;
    if session.is_some() && !refresh {
        return Ok(Start::SignedIn(return_to));
    }
    let flow = state
        .login_flows
        .init(LoginInit {
            flow_type,
            request_url,
            return_to,
            csrf_token,
            refresh_for: session.map(|s| (s.session_id, s.identity_id)),
        })
        .await
        .map_err(flow_error)?;
    Ok(Start::Flow(Box::new(flow)))
}

/// `GET /self-service/login/api`. With a session, only `refresh=true` starts a flow (re-authentication).
pub async fn init_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let url = request_url(&state, &req);
    start(
        &state,
        &headers,
        raw.as_deref(),
        FlowType::Api,
        url,
        String::new(),
    )
    .await
    .and_then(api_answer)
}

/// `GET /self-service/login/browser`.
pub async fn init_browser(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let url = request_url(&state, &req);
    browser_init(&state, &headers, FlowKind::Login, |csrf| {
        start(
            &state,
            &headers,
            raw.as_deref(),
            FlowType::Browser,
            url,
            csrf,
        )
    })
    .await
}

/// `GET /self-service/login/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    get_flow_of(&state, FlowKind::Login, &headers, raw.as_deref()).await
}

/// `POST /self-service/login?flow=`.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let s = match Submission::read(&state, FlowKind::Login, client_ip, raw.as_deref(), req).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let result = state
        .login_flows
        .submit(s.flow.clone(), &s.body, s.ctx.clone())
        .await;
    respond(&state, &s, result).await
}
