//! The settings flow over HTTP: init (browser and API), `GET …/flows`, and submit (`profile`, `password`), with
//! Kratos' status matrix, `session_refresh_required` for privileged changes, and verification of new addresses.
//! A browser's privileged change with a stale session is paused in a continuity container (its cookie is set with
//! the redirect to the refresh sign-in) and completed when the browser comes back with `GET …/settings?flow=`.

use super::outcome::show_verification_ui;
use super::request::{current_session, hook_request, request_url};
use super::{
    body_of, browser_on_api_flow, check_csrf, csrf_of_request, ensure_csrf, fail, init_client,
    request_cookie, see_other, submit_client, ui_url, validate_return_to, with_cookies, with_query,
    Client,
};
use super::{flow_error, retry};
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::challenge::ChallengeInit;
use flows::continuity::{self, CookieUpdate};
use flows::settings::{SettingsActor, SettingsInit, SettingsOutcome};
use flows::FlowError;
use flows::{flow_json, Flow, FlowKind, FlowType};
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

/// `Set-Cookie` for the continuity cookie (`cookies.*` attributes, `HttpOnly`, living as long as the containers it
/// names), or the one that removes it; nothing to keep it.
fn continuity_set_cookie(state: &AppState, update: &CookieUpdate) -> Option<HeaderValue> {
    let (value, max_age) = match update {
        CookieUpdate::Keep => return None,
        CookieUpdate::Set(c) => (
            c.value.as_str(),
            (c.expires_at - state.clock.now()).whole_seconds().max(1),
        ),
        CookieUpdate::Clear => ("", 0),
    };
    let c = &state.config.cookies;
    let secure = c.secure.unwrap_or(!state.config.dev);
    let same_site = if !secure && c.same_site.eq_ignore_ascii_case("none") {
        "Lax"
    } else {
        c.same_site.as_str()
    };
    let mut out = format!(
        "{}={value}; Path={}; Max-Age={max_age}; HttpOnly",
        continuity::COOKIE_NAME,
        c.path
    );
    if max_age == 0 {
        out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    if let Some(d) = c.domain.as_deref().filter(|d| !d.is_empty()) {
        out.push_str(&format!("; Domain={d}"));
    }
    if secure {
        out.push_str("; Secure");
    }
    out.push_str(&format!("; SameSite={same_site}"));
    HeaderValue::from_str(&out).ok()
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
    let session = match session_of(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) if client == Client::Html => return login_redirect(&state, &url),
        Ok(None) => return no_session().into_response(),
        Err(e) => return fail(&state, client, e).await,
    };
    let flow = match state.settings_flows.load_for(id, session.identity_id).await {
        Ok(f) => f,
        Err(e) => return fail(&state, client, flow_error(e)).await,
    };
    if flow.flow_type == FlowType::Api {
        client = Client::Json;
    }
    if is_get {
        return match on_get(&state, &headers, &flow, &session, url, client).await {
            Ok(r) => r,
            Err(e) => fail(&state, client, e).await,
        };
    }
    let body = match body_of(&state, req).await {
        Ok(b) => b,
        Err(e) => return fail(&state, client, e).await,
    };
    match submit_inner(&state, &headers, flow, session, body, url, client).await {
        Ok(r) => r,
        Err(e) => fail(&state, client, e).await,
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
/// [`flows::settings::SettingsFlows::resume`]); otherwise, or after it, the browser goes to the form.
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
    let Some(cookie) = request_cookie(headers, continuity::COOKIE_NAME) else {
        return Ok(see_other(&form, &[]));
    };
    let actor = SettingsActor {
        identity_id: session.identity_id,
        session_id: session.session_id,
        authenticated_at: authenticated_at(state, session).await?,
        request: hook_request(state, headers, "GET", url),
        continuity_cookie: Some(cookie),
    };
    let resumed = state
        .settings_flows
        .resume(flow.id, actor)
        .await
        .map_err(flow_error)?;
    let set_cookie = continuity_set_cookie(state, &resumed.continuity_cookie);
    let res = match resumed.outcome {
        Some(outcome) => respond(state, headers, Client::Html, outcome).await?,
        None => see_other(&form, &[]),
    };
    Ok(with_cookies(res, &[set_cookie]))
}

async fn submit_inner(
    state: &AppState,
    headers: &HeaderMap,
    flow: Flow,
    session: Arc<SessionSnapshot>,
    body: Value,
    url: String,
    client: Client,
) -> Result<Response, ApiError> {
    if flow.flow_type == FlowType::Api {
        if browser_on_api_flow(headers) {
            return Err(ApiError::bad_request(
                "The request carried a cookie or an Origin header, so it comes from a browser; browsers must use \
                 the browser flow (…/browser) instead of the API flow.",
            ));
        }
    } else {
        check_csrf(state, headers, &body)?;
    }
    let actor = SettingsActor {
        identity_id: session.identity_id,
        session_id: session.session_id,
        authenticated_at: authenticated_at(state, &session).await?,
        request: hook_request(state, headers, "POST", url),
        continuity_cookie: request_cookie(headers, continuity::COOKIE_NAME),
    };
    let outcome = match state.settings_flows.submit(flow.id, actor, &body).await {
        Ok(o) => o,
        Err(FlowError::Expired { replacement, .. }) if client == Client::Html => {
            return Ok(see_other(
                &with_query(
                    &ui_url(state, FlowKind::Settings),
                    "flow",
                    &replacement.id.to_string(),
                ),
                &[],
            ))
        }
        Err(e) => return Err(flow_error(e)),
    };
    respond(state, headers, client, outcome).await
}

/// The answer to a settings change, submitted or resumed.
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    outcome: SettingsOutcome,
) -> Result<Response, ApiError> {
    match outcome {
        SettingsOutcome::Retry(flow) => {
            if client == Client::Html {
                return Ok(retry(state, client, &flow));
            }
            let identity = state
                .settings_flows
                .identity_of(&flow)
                .await
                .map_err(flow_error)?;
            Ok((
                StatusCode::BAD_REQUEST,
                Json(settings_json(state, &flow, &identity)),
            )
                .into_response())
        }
        SettingsOutcome::RefreshRequired {
            flow,
            continuity_cookie,
        } => Ok(refresh_required(state, client, &flow, continuity_cookie)),
        SettingsOutcome::Saved {
            flow,
            identity,
            new_addresses,
        } => saved(state, headers, client, flow, &identity, &new_addresses).await,
    }
}

/// A privileged change with a stale session: browsers go to the refresh sign-in (with the continuity cookie of
/// the paused change), others get 403 `session_refresh_required`.
fn refresh_required(
    state: &AppState,
    client: Client,
    flow: &Flow,
    continuity_cookie: Option<continuity::SealedCookie>,
) -> Response {
    let set_cookie =
        continuity_cookie.and_then(|c| continuity_set_cookie(state, &CookieUpdate::Set(c)));
    let back = format!(
        "{}self-service/settings?flow={}",
        state.public_base, flow.id
    );
    let login = with_query(
        &format!(
            "{}self-service/login/browser?refresh=true",
            state.public_base
        ),
        "return_to",
        &back,
    );
    if client == Client::Html {
        return see_other(&login, &[set_cookie]);
    }
    let e = ApiError::new(StatusCode::FORBIDDEN)
        .with_id("session_refresh_required")
        .with_reason(
            "The login session is too old and thus not allowed to update these fields. Please re-authenticate.",
        )
        .with_message("The requested action was forbidden")
        .with_redirect(login);
    with_cookies(e.into_response(), &[set_cookie])
}

/// A saved change: new addresses get verification flows, and the flow records where to continue.
async fn saved(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    mut flow: Flow,
    identity: &Identity,
    new_addresses: &[(uuid::Uuid, String)],
) -> Result<Response, ApiError> {
    let mut continue_with = Vec::new();
    let verification = state.challenges.enabled(FlowKind::Verification);
    for (_, address) in new_addresses.iter().filter(|_| verification) {
        let csrf = match flow.flow_type {
            FlowType::Browser => csrf_of_request(state, headers)
                .map(|t| t.masked())
                .unwrap_or_default(),
            FlowType::Api => String::new(),
        };
        let init = ChallengeInit {
            kind: FlowKind::Verification,
            flow_type: flow.flow_type,
            request_url: flow.request_url.clone(),
            return_to: flow.return_to.clone(),
            csrf_token: csrf,
        };
        let v = state
            .challenges
            .send_verification(identity, address, init)
            .await
            .map_err(flow_error)?;
        continue_with.push(show_verification_ui(state, &v, address));
    }
    let target = match flow.return_to.as_deref() {
        Some(r) => super::completion_target(state, Some(FlowKind::Settings), Some(r))?,
        None => settings_return(state, &flow),
    };
    if flow.flow_type == FlowType::Browser {
        continue_with.push(json!({"action": "redirect_browser_to", "redirect_browser_to": target}));
    }
    if !continue_with.is_empty() {
        state
            .settings_flows
            .set_continue_with(&mut flow, continue_with)
            .await
            .map_err(flow_error)?;
    }
    if client == Client::Html {
        return Ok(see_other(&target, &[]));
    }
    Ok(Json(settings_json(state, &flow, identity)).into_response())
}

/// Where a browser goes after saving settings without `return_to`: `settings.after[.<method>]`'s URL, else the
/// settings page again (showing "saved").
fn settings_return(state: &AppState, flow: &Flow) -> String {
    let after = &state.config.selfservice.flows.settings.after;
    let method = match flow.active.as_deref() {
        Some("password") => after.password.as_ref(),
        Some("profile") => after.profile.as_ref(),
        _ => None,
    };
    method
        .and_then(|m| m.default_browser_return_url.clone())
        .or_else(|| after.default_browser_return_url.clone())
        .unwrap_or_else(|| {
            with_query(
                &ui_url(state, FlowKind::Settings),
                "flow",
                &flow.id.to_string(),
            )
        })
}
