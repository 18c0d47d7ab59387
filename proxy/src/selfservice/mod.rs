//! Self-service endpoints. Native (API) login and registration with the password method so far; browser flows,
//! CSRF and the built-in UI come next.

use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::sessions::{device_info, request_token};
use crate::AppState;
use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::password::{FlowError, Outcome};
use flows::{flow_json, FlowKind};
use serde_json::{json, Value};
use std::net::SocketAddr;

fn flow_error(e: FlowError) -> ApiError {
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
                .with_details(json!({"api": true, "use_flow_id": replacement.id}))
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
        FlowError::BadRequest(reason) => ApiError::bad_request(reason),
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

/// `GET /self-service/{login,registration}/api`.
pub async fn init_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    let kind = kind_of(req.uri().path());
    if let Some(token) = request_token(&state, &headers) {
        if state.sessions.authenticate(&token).await?.is_some() {
            return Err(ApiError::bad_request(
                "A valid session was detected and thus login is not possible.",
            )
            .with_id("session_already_available")
            .with_message("A valid session was detected and thus login is not possible."));
        }
    }
    let url = format!(
        "{}{}",
        state.public_base.trim_end_matches('/'),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_default()
    );
    let flow = state
        .password_flows
        .init_api(kind, url)
        .await
        .map_err(flow_error)?;
    Ok(Json(flow_json(&flow)).into_response())
}

/// `GET /self-service/{login,registration}/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let kind = kind_of(req.uri().path());
    let pairs = query_pairs(raw.as_deref());
    let id = query_get(&pairs, "id")
        .ok_or_else(|| ApiError::bad_request("the id query parameter is required"))?;
    let flow = state
        .password_flows
        .get(kind, uuid(id)?)
        .await
        .map_err(flow_error)?;
    Ok(Json(flow_json(&flow)).into_response())
}

/// Reads a submit body: JSON, or a form with dotted names.
async fn body_of(state: &AppState, req: Request) -> Result<Value, ApiError> {
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
    } else {
        crate::extract::parse_json(&bytes)
    }
}

fn str_field<'a>(body: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be a string"))),
    }
}

/// `POST /self-service/{login,registration}?flow=` (native flows, `method: password`).
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let kind = kind_of(req.uri().path());
    let pairs = query_pairs(raw.as_deref());
    let id = uuid(
        query_get(&pairs, "flow")
            .ok_or_else(|| ApiError::bad_request("the flow query parameter is required"))?,
    )?;
    let device = device_info(Some(peer.ip()), req.headers());
    let body = body_of(&state, req).await?;
    let method = str_field(&body, "method")?;
    if method != "password" {
        let flow = state
            .password_flows
            .get(kind, id)
            .await
            .map_err(flow_error)?;
        return Err(ApiError::bad_request(format!(
            "Could not find a strategy to handle method {method:?}; this server supports \"password\"."
        ))
        .with_details(json!({"flow": flow.id})));
    }
    let password = str_field(&body, "password")?;
    let outcome = match kind {
        FlowKind::Registration => {
            let traits = body
                .get("traits")
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            state
                .password_flows
                .register(id, traits, password, device)
                .await
        }
        _ => {
            let identifier = match str_field(&body, "identifier")? {
                "" => str_field(&body, "password_identifier")?,
                i => i,
            };
            state
                .password_flows
                .login(id, identifier, password, device)
                .await
        }
    }
    .map_err(flow_error)?;
    Ok(match outcome {
        Outcome::Retry(flow) => (StatusCode::BAD_REQUEST, Json(flow_json(&flow))).into_response(),
        Outcome::LoggedIn { session, identity } => Json(json!({
            "session": state.sessions.render(&session.session, Some(&identity), true),
            "session_token": session.token,
            "continue_with": Value::Null,
        }))
        .into_response(),
        Outcome::Registered { identity, session } => {
            let mut body = json!({ "identity": identity::view::public_identity(&identity, &state.public_base) });
            match session {
                Some(s) => {
                    body["session"] = state.sessions.render(&s.session, Some(&identity), true);
                    body["session_token"] = json!(s.token);
                    body["continue_with"] =
                        json!([{"action": "set_ory_session_token", "ory_session_token": s.token}]);
                }
                None => body["continue_with"] = Value::Null,
            }
            Json(body).into_response()
        }
    })
}

/// `DELETE /self-service/logout/api` with `{"session_token": "..."}`.
pub async fn logout_api(
    State(state): State<AppState>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), crate::extract::MAX_BODY)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE))?;
    let body: Value = crate::extract::parse_json(&bytes)?;
    let token = str_field(&body, "session_token")?;
    // As Kratos: any session the token names is revoked (again, if need be); unknown tokens are 403.
    let forbidden = || {
        ApiError::new(StatusCode::FORBIDDEN).with_reason(
            "The provided Ory Session Token could not be found, is invalid, or otherwise malformed.",
        )
    };
    if token.is_empty() || token.len() > identity::session::token::MAX_TOKEN_LEN {
        return Err(forbidden());
    }
    let hash = identity::session::TokenHash::of(token);
    let session = match state.sessions.pool().get_session_by_token(&hash).await {
        Ok(s) => s,
        Err(identity::StoreError::NotFound) => return Err(forbidden()),
        Err(e) => return Err(e.into()),
    };
    state.sessions.revoke(session.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
