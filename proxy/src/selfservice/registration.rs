//! Registration over HTTP: init (browser and API), `GET …/flows`, and submit. Adapters around
//! [`flows::registration`].

use super::flow_error;
use super::init::{api_answer, browser_init, get_flow_of, Start};
use super::outcome::respond;
use super::request::{current_session, request_url, Submission};
use super::validate_return_to;
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs};
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use flows::registration::RegistrationInit;
use flows::{FlowError, FlowKind, FlowType};

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
    let kind = Some(FlowKind::Registration);
    let return_to = validate_return_to(state, kind, query_get(&pairs, "return_to"))?;
    if !state.registration_flows.enabled() {
        return Err(flow_error(FlowError::RegistrationDisabled));
    }
    if current_session(state, headers).await?.is_some() {
        return Ok(Start::SignedIn(return_to));
    }
    let flow = state
        .registration_flows
        .init(RegistrationInit {
            flow_type,
            request_url,
            return_to,
            csrf_token,
        })
        .await
        .map_err(flow_error)?;
    Ok(Start::Flow(Box::new(flow)))
}

/// `GET /self-service/registration/api`.
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

/// `GET /self-service/registration/browser`.
pub async fn init_browser(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let url = request_url(&state, &req);
    browser_init(&state, &headers, FlowKind::Registration, |csrf| {
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

/// `GET /self-service/registration/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    get_flow_of(&state, FlowKind::Registration, &headers, raw.as_deref()).await
}

/// `POST /self-service/registration?flow=`.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let kind = FlowKind::Registration;
    let s = match Submission::read(&state, kind, client_ip, raw.as_deref(), req).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let result = state
        .registration_flows
        .submit(s.flow.clone(), &s.body, s.ctx.clone())
        .await;
    respond(&state, &s, result).await
}
