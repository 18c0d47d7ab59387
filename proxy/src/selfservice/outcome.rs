//! The response side of the self-service handlers: flow errors mapped once to Kratos' envelopes, and a
//! [`FlowOutcome`] mapped once to HTTP for browsers (303s and the form again), SPAs (JSON with 200/400/422) and
//! native apps (`session_token`, `continue_with`); settings outcomes (a change saved, a refresh sign-in needed)
//! included.

use super::request::Submission;
use super::settings::settings_json;
use super::{
    completion_target, csrf_of_request, csrf_set_cookie, default_return, fail, flow_error, retry,
    see_other, session_already_available, ui_url, with_cookies, with_query, Client,
};
use crate::error::ApiError;
use crate::sessions::session_set_cookie;
use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::challenge::ChallengeInit;
use flows::continuity::{self, CookieUpdate};
use flows::security::CsrfToken;
use flows::{flow_json, Flow, FlowError, FlowKind, FlowOutcome, FlowType};
use identity::session::manager::IssuedSession;
use identity::Identity;
use serde_json::{json, Value};

/// A new flow's answer: browsers go to the flow's page, SPAs and native apps get the flow.
pub fn created(
    state: &AppState,
    client: Client,
    flow: &Flow,
    set_cookie: Option<HeaderValue>,
) -> Response {
    match client {
        Client::Html => see_other(
            &with_query(&ui_url(state, flow.kind), "flow", &flow.id.to_string()),
            &[set_cookie],
        ),
        Client::Json => with_cookies(Json(flow_json(flow)).into_response(), &[set_cookie]),
    }
}

/// The answer to a submit: the outcome mapped to HTTP, or the error (an expired flow sends browsers to its
/// replacement).
pub async fn respond(
    state: &AppState,
    s: &Submission,
    result: Result<FlowOutcome, FlowError>,
) -> Response {
    let outcome = match result {
        Ok(o) => o,
        Err(FlowError::Expired { replacement, .. }) if s.client == Client::Html => {
            return see_other(
                &with_query(
                    &ui_url(state, replacement.kind),
                    "flow",
                    &replacement.id.to_string(),
                ),
                &[],
            )
        }
        Err(e) => return fail(state, s.client, flow_error(e)).await,
    };
    match map_outcome(state, s, outcome).await {
        Ok(r) => r,
        Err(e) => fail(state, s.client, e).await,
    }
}

/// The outcome mapped to HTTP for `s`'s client.
pub(super) async fn map_outcome(
    state: &AppState,
    s: &Submission,
    outcome: FlowOutcome,
) -> Result<Response, ApiError> {
    let client = s.client;
    match outcome {
        FlowOutcome::Form(flow) if flow.kind == FlowKind::Settings && client == Client::Json => {
            settings_form(state, &flow).await
        }
        FlowOutcome::Form(flow) => Ok(retry(state, client, &flow)),
        FlowOutcome::Throttled { flow, retry_after } => {
            if client == Client::Html {
                return Ok(retry(state, client, &flow));
            }
            Ok(throttled(&flow, retry_after))
        }
        FlowOutcome::AlreadySignedIn(flow) => match (flow.kind, client) {
            (FlowKind::Login, Client::Html) => {
                Ok(see_other(&default_return(state, Some(flow.kind)), &[]))
            }
            (FlowKind::Login, Client::Json) => Ok(retry(state, client, &flow)),
            (_, Client::Html) => Ok(see_other(
                &completion_target(state, Some(flow.kind), flow.return_to.as_deref())?,
                &[],
            )),
            (_, Client::Json) => Err(session_already_available()),
        },
        FlowOutcome::SignedIn {
            flow,
            session,
            identity,
        } => Ok(signed_in(state, client, &flow, &session, &identity)?),
        FlowOutcome::AddressNotVerified { flow, identity } => {
            address_not_verified(state, s, &flow, &identity).await
        }
        FlowOutcome::Registered {
            flow,
            identity,
            session,
        } => registered(state, s, &flow, &identity, session).await,
        FlowOutcome::Continue(flow) => Ok(match client {
            Client::Html => see_other(
                &with_query(&ui_url(state, flow.kind), "flow", &flow.id.to_string()),
                &[],
            ),
            Client::Json => Json(flow_json(&flow)).into_response(),
        }),
        FlowOutcome::Recovered(r) => Ok(recovered(state, client, &r)),
        FlowOutcome::SettingsSaved {
            flow,
            identity,
            new_addresses,
        } => settings_saved(state, s, flow, &identity, &new_addresses).await,
        FlowOutcome::RefreshRequired {
            flow,
            continuity_cookie,
        } => Ok(refresh_required(state, client, &flow, continuity_cookie)),
    }
}

/// A recovered account: browsers go to the settings flow with the new session; SPAs and native apps get
/// `continue_with` (or 422 `browser_location_change_required` without `use_continue_with_transitions`).
fn recovered(state: &AppState, client: Client, r: &flows::challenge::Recovered) -> Response {
    let settings_url = with_query(
        &ui_url(state, FlowKind::Settings),
        "flow",
        &r.settings_flow.id.to_string(),
    );
    let api = r.flow.flow_type == FlowType::Api;
    let mut cookies = Vec::new();
    if !api {
        let left = (r.session.session.expires_at - state.clock.now()).whole_seconds();
        cookies.push(
            session_set_cookie(&state.config, &state.cookie, &r.session.token, left)
                .and_then(|c| HeaderValue::from_str(&c).ok()),
        );
    }
    if client == Client::Html && !api {
        return see_other(&settings_url, &cookies);
    }
    let res = if state.config.feature_flags.use_continue_with_transitions {
        let mut body = flow_json(&r.flow);
        let mut items = Vec::new();
        if api {
            items.push(
                json!({"action": "set_ory_session_token", "ory_session_token": r.session.token}),
            );
        }
        items.push(json!({
            "action": "show_settings_ui",
            "flow": {"id": r.settings_flow.id, "url": settings_url},
        }));
        body["continue_with"] = Value::Array(items);
        Json(body).into_response()
    } else {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY)
            .with_id("browser_location_change_required")
            .with_reason(
                "In order to complete this flow please redirect the browser to: the settings flow of the recovered \
                 account.",
            )
            .with_message("browser location change required")
            .with_redirect(settings_url)
            .into_response()
    };
    with_cookies(res, &cookies)
}

/// 429 with `Retry-After`, for JSON clients.
fn throttled(flow: &Flow, retry_after: std::time::Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut res = ApiError::new(StatusCode::TOO_MANY_REQUESTS)
        .with_id("self_service_flow_throttled")
        .with_reason(format!(
            "Too many failed sign-in attempts. Please try again in {secs} seconds."
        ))
        .with_details(json!({"retry_after_seconds": secs, "flow": flow.id}))
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn signed_in(
    state: &AppState,
    client: Client,
    flow: &Flow,
    issued: &IssuedSession,
    identity: &Identity,
) -> Result<Response, ApiError> {
    let session = state.sessions.render(&issued.session, Some(identity), true);
    if flow.flow_type == FlowType::Api {
        return Ok(Json(json!({
            "session": session,
            "session_token": issued.token,
            "continue_with": Value::Null,
        }))
        .into_response());
    }
    let target = completion_target(state, Some(flow.kind), flow.return_to.as_deref())?;
    let cookies = browser_cookies(state, issued);
    Ok(match client {
        Client::Html => see_other(&target, &cookies),
        Client::Json => with_cookies(
            Json(json!({
                "session": session,
                "continue_with": [{"action": "redirect_browser_to", "redirect_browser_to": target}],
            }))
            .into_response(),
            &cookies,
        ),
    })
}

async fn address_not_verified(
    state: &AppState,
    s: &Submission,
    flow: &Flow,
    identity: &Identity,
) -> Result<Response, ApiError> {
    if state
        .config
        .feature_flags
        .legacy_require_verified_login_error
    {
        return Ok(retry(state, s.client, flow));
    }
    let csrf = match flow.flow_type {
        FlowType::Api => String::new(),
        FlowType::Browser => csrf_of_request(state, &s.headers)
            .map(|t| t.masked())
            .unwrap_or_default(),
    };
    let verification = send_verifications(state, identity, flow, csrf).await?;
    let Some(first) = verification.first() else {
        return Ok(retry(state, s.client, flow));
    };
    if s.client == Client::Html {
        return Ok(see_other(
            &with_query(
                &ui_url(state, FlowKind::Verification),
                "flow",
                &first.0.id.to_string(),
            ),
            &[],
        ));
    }
    let items: Vec<Value> = verification
        .iter()
        .map(|(f, a)| show_verification_ui(state, f, a))
        .collect();
    Err(ApiError::new(StatusCode::FORBIDDEN)
        .with_id("session_verified_address_required")
        .with_reason(
            "Your account's email or phone address are not verified yet. Please check your email or phone inbox \
             or re-request verification.",
        )
        .with_message("Your email or phone address is not yet verified.")
        .with_details(json!({"continue_with": items})))
}

async fn registered(
    state: &AppState,
    s: &Submission,
    flow: &Flow,
    identity: &Identity,
    issued: Option<IssuedSession>,
) -> Result<Response, ApiError> {
    let api = flow.flow_type == FlowType::Api;
    let mut body =
        json!({ "identity": identity::view::public_identity(identity, &state.public_base) });
    // A session rotates the CSRF token; verification flows started now must carry the new one.
    let fresh = CsrfToken::generate();
    let csrf = match (&issued, api) {
        (_, true) => String::new(),
        (Some(_), false) => fresh.masked(),
        (None, false) => csrf_of_request(state, &s.headers)
            .map(|t| t.masked())
            .unwrap_or_default(),
    };
    let verification = send_verifications(state, identity, flow, csrf).await?;
    let mut continue_with: Vec<Value> = verification
        .iter()
        .map(|(f, a)| show_verification_ui(state, f, a))
        .collect();
    if api {
        if let Some(s) = issued {
            body["session"] = state.sessions.render(&s.session, Some(identity), true);
            body["session_token"] = json!(s.token);
            continue_with
                .push(json!({"action": "set_ory_session_token", "ory_session_token": s.token}));
        }
        body["continue_with"] = if continue_with.is_empty() {
            Value::Null
        } else {
            Value::Array(continue_with)
        };
        return Ok(Json(body).into_response());
    }
    let mut target = completion_target(state, Some(flow.kind), flow.return_to.as_deref())?;
    if state.hooks.show_verification_ui(FlowKind::Registration) {
        if let Some((v, _)) = verification.first() {
            target = with_query(
                &ui_url(state, FlowKind::Verification),
                "flow",
                &v.id.to_string(),
            );
        }
    }
    let cookies = match &issued {
        Some(s) => {
            body["session"] = state.sessions.render(&s.session, Some(identity), true);
            browser_cookies_with(state, s, &fresh)
        }
        None => Vec::new(),
    };
    continue_with.push(json!({"action": "redirect_browser_to", "redirect_browser_to": target}));
    body["continue_with"] = Value::Array(continue_with);
    Ok(match s.client {
        Client::Html => see_other(&target, &cookies),
        Client::Json => with_cookies(Json(body).into_response(), &cookies),
    })
}

/// A `continue_with` item that sends the user to a verification flow.
pub fn show_verification_ui(state: &AppState, flow: &Flow, address: &str) -> Value {
    json!({
        "action": "show_verification_ui",
        "flow": {
            "id": flow.id,
            "verifiable_address": address,
            "url": with_query(&ui_url(state, FlowKind::Verification), "flow", &flow.id.to_string()),
        },
    })
}

/// With verification on, a verification flow per unverified address of `identity`, each having sent its
/// message: `(flow, address)`.
pub async fn send_verifications(
    state: &AppState,
    identity: &Identity,
    flow: &Flow,
    csrf: String,
) -> Result<Vec<(Flow, String)>, ApiError> {
    let mut out = Vec::new();
    if !state.challenges.enabled(FlowKind::Verification) {
        return Ok(out);
    }
    for a in identity
        .verifiable_addresses
        .iter()
        .filter(|a| !a.verified && a.via == "email")
    {
        let v = state
            .challenges
            .send_verification(
                identity,
                &a.value,
                flows::challenge::ChallengeInit {
                    kind: FlowKind::Verification,
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: csrf.clone(),
                },
            )
            .await
            .map_err(flow_error)?;
        out.push((v, a.value.clone()));
    }
    Ok(out)
}

/// The session cookie, plus a fresh CSRF cookie: a new identity gets a new token, so tokens planted before
/// signing in are worthless afterwards.
pub fn browser_cookies(state: &AppState, issued: &IssuedSession) -> Vec<Option<HeaderValue>> {
    browser_cookies_with(state, issued, &CsrfToken::generate())
}

/// [`browser_cookies`] with a given new CSRF token.
pub fn browser_cookies_with(
    state: &AppState,
    issued: &IssuedSession,
    csrf: &CsrfToken,
) -> Vec<Option<HeaderValue>> {
    let left = (issued.session.expires_at - state.clock.now()).whole_seconds();
    vec![
        session_set_cookie(&state.config, &state.cookie, &issued.token, left)
            .and_then(|c| HeaderValue::from_str(&c).ok()),
        csrf_set_cookie(state, csrf),
    ]
}

/// A settings flow's form again, for JSON clients: the flow with its identity (HTTP 400).
async fn settings_form(state: &AppState, flow: &Flow) -> Result<Response, ApiError> {
    let identity = state
        .settings_flows
        .identity_of(flow)
        .await
        .map_err(flow_error)?;
    Ok((
        StatusCode::BAD_REQUEST,
        Json(settings_json(state, flow, &identity)),
    )
        .into_response())
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

/// Saved settings: new addresses get verification flows, and the flow records where to continue.
async fn settings_saved(
    state: &AppState,
    s: &Submission,
    mut flow: Flow,
    identity: &Identity,
    new_addresses: &[(uuid::Uuid, String)],
) -> Result<Response, ApiError> {
    let mut continue_with = verify_new_addresses(state, s, &flow, identity, new_addresses).await?;
    let target = match flow.return_to.as_deref() {
        Some(r) => completion_target(state, Some(FlowKind::Settings), Some(r))?,
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
    if s.client == Client::Html {
        return Ok(see_other(&target, &[]));
    }
    Ok(Json(settings_json(state, &flow, identity)).into_response())
}

/// With verification on, a verification flow for each address new in a settings change, each having sent its
/// message: their `continue_with` items.
async fn verify_new_addresses(
    state: &AppState,
    s: &Submission,
    flow: &Flow,
    identity: &Identity,
    new_addresses: &[(uuid::Uuid, String)],
) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let verification = state.challenges.enabled(FlowKind::Verification);
    for (_, address) in new_addresses.iter().filter(|_| verification) {
        let csrf = match flow.flow_type {
            FlowType::Browser => csrf_of_request(state, &s.headers)
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
        items.push(show_verification_ui(state, &v, address));
    }
    Ok(items)
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

/// `Set-Cookie` for the continuity cookie (`cookies.*` attributes, `HttpOnly`, living as long as the containers it
/// names), or the one that removes it; nothing to keep it.
pub fn continuity_set_cookie(state: &AppState, update: &CookieUpdate) -> Option<HeaderValue> {
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
