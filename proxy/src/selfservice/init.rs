//! What the login and registration adapters share: how an init ends, the browser init, and `GET …/flows?id=`.

use super::outcome::created;
use super::request::flow_matches_cookie;
use super::{
    completion_target, ensure_csrf, fail, flow_error, init_client, see_other,
    session_already_available, Client,
};
use crate::error::ApiError;
use crate::extract::query_pairs;
use crate::AppState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
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
pub async fn browser_init<F, Fut>(
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
pub fn api_answer(start: Start) -> Result<Response, ApiError> {
    match start {
        Start::Flow(flow) => Ok(Json(flow_json(&flow)).into_response()),
        Start::SignedIn(_) => Err(session_already_available()),
    }
}

/// An init while signed in: browsers go where the flow would have sent them, others get
/// `session_already_available`.
pub fn signed_in(
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

/// `GET /self-service/{login,registration}/flows?id=` for `kind`.
pub async fn get_flow_of(
    state: &AppState,
    kind: FlowKind,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw);
    let flow = state
        .flow_repo
        .load(kind, super::flow_id_param(&pairs))
        .await
        .map_err(flow_error)?;
    if flow.flow_type == FlowType::Browser && !flow_matches_cookie(state, headers, &flow) {
        return Err(super::foreign_flow());
    }
    if flow.is_expired(state.clock.now()) {
        return Err(super::expired_flow(state, &flow));
    }
    Ok(Json(flow_json(&flow)).into_response())
}
