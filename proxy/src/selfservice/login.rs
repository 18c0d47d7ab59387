//! What starting a login flow over HTTP checks (`return_to`, `refresh`, `aal`, a current session) before
//! [`flows::login`] creates it. The routes are the shared adapters in [`super::init`].

use super::init::Start;
use super::request::{current_session, refresh_param};
use super::{flow_error, validate_return_to};
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs};
use crate::AppState;
use axum::http::{HeaderMap, StatusCode};
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

/// Starts a login flow of `flow_type` for the request.
pub(super) async fn start(
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
