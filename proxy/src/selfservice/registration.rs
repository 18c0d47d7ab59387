//! What starting a registration flow over HTTP checks (`return_to`, the flow being on, a current session) before
//! [`flows::registration`] creates it. The routes are the shared adapters in [`super::init`].

use super::flow_error;
use super::init::Start;
use super::request::current_session;
use super::validate_return_to;
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs};
use crate::AppState;
use axum::http::HeaderMap;
use flows::registration::RegistrationInit;
use flows::{FlowError, FlowKind, FlowType};

/// Starts a registration flow of `flow_type` for the request.
pub(super) async fn start(
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
