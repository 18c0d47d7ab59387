//! The settings flow over HTTP: init (browser and API), `GET …/flows`, and submit (`profile`, `password`), with
//! Kratos' status matrix, `session_refresh_required` for privileged changes, and verification of new addresses.
//! A browser's privileged change with a stale session is paused in a continuity container (its cookie is set with
//! the redirect to the refresh sign-in) and completed when the browser comes back with `GET …/settings?flow=`.

use super::outcome::{continuity_set_cookie, map_outcome, respond};
use super::request::{current_session, hook_request, request_url, Submission};
use super::{
    body_of, browser_on_api_flow, check_csrf, csrf_of_request, ensure_csrf, fail, flow_error,
    init_client, request_cookie, see_other, submit_client, ui_url, validate_return_to,
    with_cookies, with_query, Client,
};
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::continuity;
use flows::settings::{SettingsActor, SettingsInit};
use flows::{flow_json, Flow, FlowKind, FlowType, SubmitContext};
use identity::session::SessionSnapshot;
use identity::Identity;
use serde_json::{json, Value};
use std::sync::Arc;

/// The settings flow as the API shows it: the flow plus its identity.
pub fn settings_json(state: &AppState, flow: &Flow, identity: &Identity) -> Value {
    let mut v = flow_json(flow);
    v["identity"] = identity::view::public_identity(identity, &state.public_base);
    v
}

/// A browser settings flow shown to its own session carries the CSRF token of this browser's current cookie: a
/// refresh sign-in in the middle of the flow rotates the cookie, and the flow must stay usable afterwards. (The
/// flow is bound to its identity by the session; CSRF still protects every submit.)
pub fn with_current_csrf(
    state: &AppState,
    headers: &HeaderMap,
    flow: &Flow,
    mut v: Value,
) -> Value {
    if flow.flow_type != FlowType::Browser {
        return v;
    }
    let Some(token) = csrf_of_request(state, headers) else {
        return v;
    };
    if let Some(nodes) = v["ui"]["nodes"].as_array_mut() {
        for n in nodes {
            if n["attributes"]["name"] == "csrf_token" {
                n["attributes"]["value"] = json!(token.masked());
            }
        }
    }
    v
}

/// Kratos' 401 when a settings request has no session.
fn no_session() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED)
        .with_id("session_inactive")
        .with_reason("No active session was found in this request.")
        .with_message("request does not have a valid authentication session")
}

/// Where a browser without a session goes: the login flow, then back to `back_to`.
fn login_redirect(state: &AppState, back_to: &str) -> Response {
    let login = format!("{}self-service/login/browser", state.public_base);
    see_other(&with_query(&login, "return_to", back_to), &[])
}

async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<SessionSnapshot>>, ApiError> {
    current_session(state, headers).await
}

/// When the session last authenticated.
async fn authenticated_at(
    state: &AppState,
    session: &SessionSnapshot,
) -> Result<time::OffsetDateTime, ApiError> {
    Ok(state
        .sessions
        .pool()
        .get_session(session.session_id)
        .await?
        .authenticated_at)
}

/// `GET /self-service/settings/api`.
pub async fn init_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let session = session_of(&state, &headers).await?.ok_or_else(no_session)?;
    let pairs = query_pairs(raw.as_deref());
    let return_to = validate_return_to(
        &state,
        Some(FlowKind::Settings),
        query_get(&pairs, "return_to"),
    )?;
    let flow = state
        .settings_flows
        .init(SettingsInit {
            flow_type: FlowType::Api,
            request_url: request_url(&state, &req),
            return_to,
            csrf_token: String::new(),
            identity_id: session.identity_id,
            session_id: session.session_id,
        })
        .await
        .map_err(flow_error)?;
    let identity = state
        .settings_flows
        .identity_of(&flow)
        .await
        .map_err(flow_error)?;
    Ok(Json(settings_json(&state, &flow, &identity)).into_response())
}

/// `GET /self-service/settings/browser`.
pub async fn init_browser(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let client = init_client(&headers);
    let url = request_url(&state, &req);
    let result = async {
        let pairs = query_pairs(raw.as_deref());
        let return_to = validate_return_to(
            &state,
            Some(FlowKind::Settings),
            query_get(&pairs, "return_to"),
        )?;
        let Some(session) = session_of(&state, &headers).await? else {
            return match client {
                Client::Html => Ok(login_redirect(&state, &url)),
                Client::Json => Err(no_session()),
            };
        };
        let (csrf, set_cookie) = ensure_csrf(&state, &headers);
        let flow = state
            .settings_flows
            .init(SettingsInit {
                flow_type: FlowType::Browser,
                request_url: url.clone(),
                return_to,
                csrf_token: csrf.masked(),
                identity_id: session.identity_id,
                session_id: session.session_id,
            })
            .await
            .map_err(flow_error)?;
        created(&state, client, &flow, set_cookie).await
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
    }
}

/// A new browser flow's answer: browsers go to the settings page, SPAs get the flow with the identity.
async fn created(
    state: &AppState,
    client: Client,
    flow: &Flow,
    set_cookie: Option<HeaderValue>,
) -> Result<Response, ApiError> {
    if client == Client::Html {
        return Ok(super::outcome::created(state, client, flow, set_cookie));
    }
    let identity = state
        .settings_flows
        .identity_of(flow)
        .await
        .map_err(flow_error)?;
    Ok(with_cookies(
        Json(settings_json(state, flow, &identity)).into_response(),
        &[set_cookie],
    ))
}

/// `GET /self-service/settings/flows?id=`.
pub async fn get_flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let id = super::flow_id_param(&pairs);
    let Some(session) = session_of(&state, &headers).await? else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED)
            .with_reason("A valid Ory Session Cookie or Ory Session Token is missing."));
    };
    let flow = state
        .settings_flows
        .load_for(id, session.identity_id)
        .await
        .map_err(flow_error)?;
    if flow.is_expired(state.clock.now()) {
        return Err(super::expired_flow(&state, &flow));
    }
    let identity = state
        .settings_flows
        .identity_of(&flow)
        .await
        .map_err(flow_error)?;
    let v = settings_json(&state, &flow, &identity);
    Ok(Json(with_current_csrf(&state, &headers, &flow, v)).into_response())
}

/// `POST /self-service/settings?flow=` (and `GET`, which brings a browser back to the form, as after the
/// re-authentication that a privileged change asked for).
pub async fn submit(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let url = request_url(&state, &req);
    let mut client = submit_client(&headers);
    let (flow, session) = match open(&state, &headers, raw.as_deref(), client, &url).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if flow.flow_type == FlowType::Api {
        client = Client::Json;
    }
    let result = if req.method() == Method::GET {
        on_get(&state, &headers, &flow, &session, url, client).await
    } else {
        match body_of(&state, req).await {
            Ok(body) => submit_inner(&state, headers, flow, &session, body, url, client).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
    }
}

/// The flow that `?flow=` names, with the request's session. Without a session, browsers go to the login flow and
/// others get 401; anything else that goes wrong is already the response.
async fn open(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    client: Client,
    url: &str,
) -> Result<(Flow, Arc<SessionSnapshot>), Response> {
    let pairs = query_pairs(raw);
    let id = match query_get(&pairs, "flow").map(uuid) {
        Some(Ok(id)) => id,
        Some(Err(e)) => return Err(fail(state, client, e).await),
        None => {
            let e = ApiError::bad_request("the flow query parameter is required");
            return Err(fail(state, client, e).await);
        }
    };
    let session = match session_of(state, headers).await {
        Ok(Some(s)) => s,
        Ok(None) if client == Client::Html => return Err(login_redirect(state, url)),
        Ok(None) => return Err(no_session().into_response()),
        Err(e) => return Err(fail(state, client, e).await),
    };
    match state.settings_flows.load_for(id, session.identity_id).await {
        Ok(f) => Ok((f, session)),
        Err(e) => Err(fail(state, client, flow_error(e)).await),
    }
}

/// Who changes settings: the session, when it last authenticated, the request as hooks see it and the browser's
/// continuity cookie.
async fn actor(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionSnapshot,
    method: &str,
    url: String,
) -> Result<SettingsActor, ApiError> {
    Ok(SettingsActor {
        identity_id: session.identity_id,
        session_id: session.session_id,
        authenticated_at: authenticated_at(state, session).await?,
        request: hook_request(state, headers, method, url),
        continuity_cookie: request_cookie(headers, continuity::COOKIE_NAME),
    })
}

/// A settings request as the outcome mapping sees it.
fn submission(
    client: Client,
    flow: Flow,
    body: Value,
    actor: &SettingsActor,
    headers: HeaderMap,
) -> Submission {
    Submission {
        client,
        flow,
        body,
        ctx: SubmitContext {
            request: actor.request.clone(),
            session: Some((actor.session_id, actor.identity_id)),
            ..SubmitContext::default()
        },
        headers,
    }
}

/// `GET /self-service/settings?flow=`: a browser resumes its paused change (or goes to the form); JSON clients must
/// POST.
async fn on_get(
    state: &AppState,
    headers: &HeaderMap,
    flow: &Flow,
    session: &SessionSnapshot,
    url: String,
    client: Client,
) -> Result<Response, ApiError> {
    match client {
        Client::Html if flow.flow_type == FlowType::Browser => {
            resume(state, headers, flow, session, url).await
        }
        Client::Html => Ok(see_other(
            &with_query(
                &ui_url(state, FlowKind::Settings),
                "flow",
                &flow.id.to_string(),
            ),
            &[],
        )),
        Client::Json => Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED)
            .with_reason("Submit the settings flow with POST.")),
    }
}

/// A browser back on its settings flow: the change it paused for a refresh sign-in is completed now (see
/// [`flows::settings::SettingsFlows::resume`]) and answered as a submit; otherwise the browser goes to the form.
async fn resume(
    state: &AppState,
    headers: &HeaderMap,
    flow: &Flow,
    session: &SessionSnapshot,
    url: String,
) -> Result<Response, ApiError> {
    let form = with_query(
        &ui_url(state, FlowKind::Settings),
        "flow",
        &flow.id.to_string(),
    );
    if request_cookie(headers, continuity::COOKIE_NAME).is_none() {
        return Ok(see_other(&form, &[]));
    }
    let actor = actor(state, headers, session, "GET", url).await?;
    let s = submission(
        Client::Html,
        flow.clone(),
        Value::Null,
        &actor,
        headers.clone(),
    );
    let resumed = state
        .settings_flows
        .resume(flow.id, actor)
        .await
        .map_err(flow_error)?;
    let set_cookie = continuity_set_cookie(state, &resumed.continuity_cookie);
    let res = match resumed.outcome {
        Some(outcome) => map_outcome(state, &s, outcome).await?,
        None => see_other(&form, &[]),
    };
    Ok(with_cookies(res, &[set_cookie]))
}

/// A change submitted to the flow, answered as every flow's submit ([`respond`]).
async fn submit_inner(
    state: &AppState,
    headers: HeaderMap,
    flow: Flow,
    session: &SessionSnapshot,
    body: Value,
    url: String,
    client: Client,
) -> Result<Response, ApiError> {
    if flow.flow_type == FlowType::Api {
        if browser_on_api_flow(&headers) {
            return Err(ApiError::bad_request(
                "The request carried a cookie or an Origin header, so it comes from a browser; browsers must use \
                 the browser flow (…/browser) instead of the API flow.",
            ));
        }
    } else {
        check_csrf(state, &headers, &body)?;
    }
    let actor = actor(state, &headers, session, "POST", url).await?;
    let s = submission(client, flow, body, &actor, headers);
    let result = state.settings_flows.submit(s.flow.id, actor, &s.body).await;
    Ok(respond(state, &s, result).await)
}
