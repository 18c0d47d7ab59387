//! Logout: browser (logout URL, then `GET /self-service/logout?token=`) and native (`DELETE …/logout/api`).

use super::{
    csrf_set_cookie, fail, init_client, session_clear_cookie, submit_client, validate_return_to,
    with_cookies, with_query, Client,
};
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs};
use crate::sessions::request_token;
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::logout::LogoutError;
use flows::security::CsrfToken;
use serde_json::json;

/// The logout token of a session ([`flows::logout::LogoutFlows::token`]).
pub fn logout_token(state: &AppState, session_id: uuid::Uuid) -> String {
    state.logout_flows.token(session_id)
}

/// The URL that signs a browser out.
pub fn logout_url(state: &AppState, session_id: uuid::Uuid, return_to: Option<&str>) -> String {
    let mut url = with_query(
        &format!("{}self-service/logout", state.public_base),
        "token",
        &logout_token(state, session_id),
    );
    if let Some(r) = return_to {
        url = with_query(&url, "return_to", r);
    }
    url
}

/// Kratos' answer to each [`LogoutError`].
fn logout_error(e: LogoutError) -> ApiError {
    match e {
        LogoutError::NoSession => ApiError::new(StatusCode::UNAUTHORIZED)
            .with_id("session_inactive")
            .with_reason("No active session was found in this request.")
            .with_message("request does not have a valid authentication session"),
        LogoutError::TokenMismatch => ApiError::new(StatusCode::FORBIDDEN).with_reason(
            "Unable to log out because the logout token in the URL query does not match the session cookie.",
        ),
        LogoutError::UnknownToken => ApiError::new(StatusCode::FORBIDDEN).with_reason(
            "The provided Ory Session Token could not be found, is invalid, or otherwise malformed.",
        ),
        LogoutError::Store(e) => e.into(),
    }
}

/// `GET /self-service/logout/browser?return_to=`: `{logout_url, logout_token}` for the signed-in browser.
pub async fn logout_browser(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let client = init_client(&headers);
    let pairs = query_pairs(raw.as_deref());
    let result = async {
        let return_to = validate_return_to(&state, None, query_get(&pairs, "return_to"))?;
        let token = request_token(&state, &headers);
        let session_id = state
            .logout_flows
            .session_of(token.as_deref())
            .await
            .map_err(logout_error)?;
        Ok::<_, ApiError>(Json(json!({
            "logout_url": logout_url(&state, session_id, return_to.as_deref()),
            "logout_token": logout_token(&state, session_id),
        })))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => fail(&state, client, e).await,
    }
}

/// `GET /self-service/logout?token=&return_to=`: revokes the browser's session (everywhere, through the cache),
/// clears its cookie and rotates the CSRF cookie. HTML: 303 to `return_to` or the logout default; JSON: 204.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let client = submit_client(&headers);
    let pairs = query_pairs(raw.as_deref());
    let result = async {
        let given = query_get(&pairs, "token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::bad_request("Please include a token in the URL query."))?;
        let return_to = validate_return_to(&state, None, query_get(&pairs, "return_to"))?;
        let token = request_token(&state, &headers);
        state
            .logout_flows
            .browser(token.as_deref(), given)
            .await
            .map_err(logout_error)?;
        Ok::<_, ApiError>(return_to)
    }
    .await;
    match result {
        Ok(return_to) => {
            let cookies = [
                session_clear_cookie(&state),
                csrf_set_cookie(&state, &CsrfToken::generate()),
            ];
            match client {
                Client::Json => with_cookies(StatusCode::NO_CONTENT.into_response(), &cookies),
                Client::Html => {
                    let target = return_to.unwrap_or_else(|| super::default_return(&state, None));
                    super::see_other(&target, &cookies)
                }
            }
        }
        Err(e) => fail(&state, client, e).await,
    }
}

/// `DELETE /self-service/logout/api` with `{"session_token": "..."}`.
pub async fn logout_api(
    State(state): State<AppState>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), crate::extract::MAX_BODY)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE))?;
    let body: serde_json::Value = crate::extract::parse_json(&bytes)?;
    let token = super::str_field(&body, "session_token")?;
    state.logout_flows.api(token).await.map_err(logout_error)?;
    Ok(StatusCode::NO_CONTENT)
}
