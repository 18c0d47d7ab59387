//! Session endpoints: `/sessions/whoami`, `/sessions` on the public listener and `/admin/sessions` on the admin
//! listener.

use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::pagination::{self, OffsetPage};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use identity::session::{Aal, Session, SessionSnapshot};
use serde_json::{json, Value};
use std::sync::Arc;

/// Finds the session token of a request, in Kratos' order: `X-Session-Token`, the session cookie,
/// `Authorization: Bearer`.
pub fn request_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("x-session-token").and_then(|v| v.to_str().ok()) {
        if !t.is_empty() {
            return Some(t.trim().to_owned());
        }
    }
    let name = state.config.session.cookie.name.as_str();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    if let Some(token) = state.cookie.open(v.trim_matches('"')) {
                        return Some(token);
                    }
                }
            }
        }
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Kratos' 401 for a missing or invalid session.
pub fn unauthorized(reason: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED).with_reason(reason)
}

const NO_CREDENTIALS: &str = "No valid session credentials found in the request.";

/// The session of a request, or Kratos' 401.
async fn current(
    state: &AppState,
    headers: &HeaderMap,
    reason: &str,
) -> Result<Arc<SessionSnapshot>, ApiError> {
    let Some(token) = request_token(state, headers) else {
        return Err(unauthorized(reason));
    };
    state
        .sessions
        .authenticate(&token)
        .await?
        .ok_or_else(|| unauthorized(reason))
}

/// 403 when `session.whoami.required_aal` is `highest_available` and the identity could do better.
fn check_aal(state: &AppState, snapshot: &SessionSnapshot) -> Result<(), ApiError> {
    let highest = state.config.session.whoami.required_aal == "highest_available";
    if highest && snapshot.identity_has_aal2 && snapshot.aal < Aal::Aal2 {
        let redirect = format!("{}self-service/login/browser?aal=aal2", state.public_base);
        return Err(ApiError::new(StatusCode::FORBIDDEN)
            .with_id("session_aal2_required")
            .with_reason("An active session was found but it does not fulfill the Authenticator Assurance Level, implying that the session must first be authenticated with a second factor.")
            .with_message("aal2 is required")
            .with_details(json!({ "redirect_browser_to": redirect }))
            .with_redirect(redirect));
    }
    Ok(())
}

/// The answer to `/sessions/whoami`, serialised once for both places that send it: the public handler
/// ([`whoami`]) and the edge proxy, which answers from the session cache without going through axum.
#[derive(Debug)]
pub struct Whoami {
    /// The session JSON (shared with the cached snapshot when not tokenized: no copy).
    pub body: bytes::Bytes,
    /// `X-Kratos-Authenticated-Identity-Id`.
    pub identity_id: Option<HeaderValue>,
}

/// The whoami JSON's content type.
pub const WHOAMI_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("application/json; charset=utf-8");
/// The header that names the session's identity.
pub const X_KRATOS_AUTHENTICATED_IDENTITY_ID: header::HeaderName =
    header::HeaderName::from_static("x-kratos-authenticated-identity-id");

impl Whoami {
    /// The response headers (without framing), in the order both senders use.
    pub fn headers(&self) -> impl Iterator<Item = (header::HeaderName, HeaderValue)> + '_ {
        std::iter::once((header::CONTENT_TYPE, WHOAMI_CONTENT_TYPE)).chain(
            self.identity_id
                .iter()
                .map(|v| (X_KRATOS_AUTHENTICATED_IDENTITY_ID, v.clone())),
        )
    }
}

/// A cached snapshot's whoami body as bytes, without copying it.
struct SnapshotBody(Arc<SessionSnapshot>);

impl AsRef<[u8]> for SnapshotBody {
    fn as_ref(&self) -> &[u8] {
        self.0.body.as_bytes()
    }
}

/// The whoami answer for a request's headers and raw query (`tokenize_as`), or the API error to send.
pub async fn whoami_answer(
    state: &AppState,
    headers: &HeaderMap,
    raw_query: Option<&str>,
) -> Result<Whoami, ApiError> {
    let snapshot = current(state, headers, NO_CREDENTIALS).await?;
    check_aal(state, &snapshot)?;
    let pairs = query_pairs(raw_query);
    let identity_id = {
        let mut buf = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(snapshot.identity_id.hyphenated().encode_lower(&mut buf)).ok()
    };
    let body = match query_get(&pairs, "tokenize_as").filter(|t| !t.is_empty()) {
        None => bytes::Bytes::from_owner(SnapshotBody(snapshot)),
        Some(template) => {
            let mut session: Value =
                serde_json::from_str(&snapshot.body).map_err(|e| ApiError::internal(&e))?;
            let jwt = state
                .tokenizer
                .tokenize(
                    template,
                    &session,
                    state.public_base.trim_end_matches('/'),
                    state.clock.now(),
                )
                .map_err(tokenize_error)?;
            session["tokenized"] = json!(jwt);
            session.to_string().into()
        }
    };
    Ok(Whoami { body, identity_id })
}

/// `/sessions/whoami` on every method.
pub async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let answer = whoami_answer(&state, &headers, raw.as_deref()).await?;
    let mut res = Response::new(axum::body::Body::empty());
    res.headers_mut().extend(answer.headers());
    *res.body_mut() = axum::body::Body::from(answer.body);
    Ok(res)
}

fn tokenize_error(e: identity::tokenize::TokenizeError) -> ApiError {
    use identity::tokenize::TokenizeError as T;
    match e {
        T::UnknownTemplate(name) => ApiError::bad_request(format!(
            "Unable to find a tokenizer template named {name:?} in session.whoami.tokenizer.templates"
        )),
        // Kratos answers 400 when a session cannot be tokenized (for example a missing external id).
        T::Mapper(reason) => ApiError::bad_request(format!("Unable to tokenize the session: {reason}")),
        T::Sign(_) | T::Config { .. } => ApiError::internal(&e),
    }
}

async fn render_all(
    state: &AppState,
    sessions: &[Session],
    identity: bool,
    devices: bool,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(sessions.len());
    for s in sessions {
        let ident = if identity {
            match state.sessions.identity_of(s).await {
                Ok(i) => Some(i),
                Err(identity::StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        out.push(state.sessions.render(s, ident.as_ref(), devices));
    }
    Ok(out)
}

/// `GET /sessions`: the caller's other active sessions.
pub async fn list_mine(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let me = current(&state, &headers, "No valid session cookie found.").await?;
    check_aal(&state, &me)?;
    let pairs = query_pairs(raw.as_deref());
    let page = OffsetPage::from_query(&pairs, 250, 1000)?;
    let filter = state.sessions.active_filter(Some(true));
    let (others, total) = state
        .sessions
        .pool()
        .list_identity_sessions(
            me.identity_id,
            filter,
            Some(me.session_id),
            page.offset(),
            page.per_page,
        )
        .await?;
    let body = render_all(&state, &others, true, true).await?;
    let headers = page.headers(&format!("{}sessions", state.public_base), &pairs, total);
    Ok((headers, Json(body)).into_response())
}

/// `DELETE /sessions`: revoke every other session of the caller.
pub async fn revoke_mine(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let me = current(&state, &headers, NO_CREDENTIALS).await?;
    check_aal(&state, &me)?;
    let count = state
        .sessions
        .revoke_others(me.identity_id, Some(me.session_id))
        .await?;
    Ok(Json(json!({ "count": count })))
}

/// `DELETE /sessions/{id}`: revoke one other session of the caller (a no-op for sessions of others).
pub async fn revoke_one_of_mine(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid(&id)?;
    let me = current(&state, &headers, NO_CREDENTIALS).await?;
    check_aal(&state, &me)?;
    if id == me.session_id {
        return Err(ApiError::bad_request(
            "You tried to revoke the session you are currently using. Use the logout flow instead.",
        ));
    }
    match state.sessions.pool().get_session(id).await {
        Ok(s) if s.identity_id == me.identity_id => state.sessions.revoke(id).await?,
        Ok(_) | Err(identity::StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `expand=identity|devices`.
fn expand(pairs: &[(String, String)]) -> Result<(bool, bool), ApiError> {
    let mut identity = false;
    let mut devices = false;
    for (k, v) in pairs.iter().filter(|(k, _)| k == "expand") {
        match v.as_str() {
            "identity" => identity = true,
            "devices" => devices = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "{k}={other:?}: expand takes identity or devices"
                )))
            }
        }
    }
    Ok((identity, devices))
}

fn active_param(pairs: &[(String, String)]) -> Result<Option<bool>, ApiError> {
    query_get(pairs, "active")
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<bool>().map_err(|_| {
                ApiError::bad_request(format!("active must be true or false, got {v:?}"))
            })
        })
        .transpose()
}

/// `GET /sessions/token-exchange?init_code=&return_to_code=`: exchanges the codes of a native OIDC flow for its
/// session. Portcullis has no OIDC flows yet, so no code is ever issued: the answers are Kratos' for missing
/// parameters (400) and for codes with no session (404).
pub async fn token_exchange(RawQuery(raw): RawQuery) -> ApiError {
    let pairs = query_pairs(raw.as_deref());
    let given = |k: &str| query_get(&pairs, k).is_some_and(|v| !v.is_empty());
    if !given("init_code") || !given("return_to_code") {
        return ApiError::bad_request(
            r#""init_code" and "return_to_code" query params must be set"#,
        );
    }
    ApiError::new(StatusCode::NOT_FOUND).with_reason(
        r#"no session yet for this "code": Portcullis does not implement native OIDC sign-in yet, so it never issues session token exchange codes"#,
    )
}

/// `GET /admin/sessions`.
pub async fn admin_list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let (with_identity, with_devices) = expand(&pairs)?;
    let active = active_param(&pairs)?;
    let size = crate::pagination::keyset_size(&pairs, "page_size", 250, 1000)?;
    let after = query_get(&pairs, "page_token")
        .filter(|t| !t.is_empty())
        .map(|t| uuid(t).map_err(|_| ApiError::bad_request("the page_token is invalid")))
        .transpose()?;
    let mut list = state
        .sessions
        .pool()
        .list_sessions(state.sessions.active_filter(active), after, size + 1)
        .await?;
    let has_next = list.len() > size as usize;
    list.truncate(size as usize);
    let body = render_all(&state, &list, with_identity, with_devices).await?;
    let next = list.last().filter(|_| has_next).map(|s| s.id.to_string());
    let headers = pagination::keyset_headers(
        &format!("{}admin/sessions", state.admin_base),
        &pairs,
        size,
        next,
    );
    Ok((headers, Json(body)).into_response())
}

/// `GET /admin/sessions/{id}`.
pub async fn admin_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (with_identity, with_devices) = expand(&query_pairs(raw.as_deref()))?;
    let session = state.sessions.pool().get_session(uuid(&id)?).await?;
    let body = render_all(
        &state,
        std::slice::from_ref(&session),
        with_identity,
        with_devices,
    )
    .await?;
    Ok(Json(body.into_iter().next().unwrap_or(Value::Null)))
}

/// `DELETE /admin/sessions/{id}`: deactivate.
pub async fn admin_revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.sessions.revoke(uuid(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /admin/sessions/{id}/extend`.
pub async fn admin_extend(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = state.sessions.extend(uuid(&id)?).await?;
    if state.config.feature_flags.faster_session_extend {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let body = render_all(&state, std::slice::from_ref(&session), true, false).await?;
    Ok(Json(body.into_iter().next().unwrap_or(Value::Null)).into_response())
}

/// `GET /admin/identities/{id}/sessions`.
pub async fn admin_identity_sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = uuid(&id)?;
    let pairs = query_pairs(raw.as_deref());
    let active = active_param(&pairs)?;
    let page = OffsetPage::from_query(&pairs, 250, 1000)?;
    let (list, total) = state
        .sessions
        .pool()
        .list_identity_sessions(
            id,
            state.sessions.active_filter(active),
            None,
            page.offset(),
            page.per_page,
        )
        .await?;
    let body = render_all(&state, &list, true, true).await?;
    let headers = page.headers(
        &format!("{}admin/identities/{id}/sessions", state.admin_base),
        &pairs,
        total,
    );
    Ok((headers, Json(body)).into_response())
}

/// `DELETE /admin/identities/{id}/sessions`: hard-delete all; 404 when there were none.
pub async fn admin_delete_identity_sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let n = state.sessions.delete_identity_sessions(uuid(&id)?).await?;
    if n == 0 {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Where a request comes from, for session devices: `client_ip` is the request's [`crate::client_ip::ClientIp`]
/// (the one definition of the client address; no forwarding header is read here). The location comes from CDN
/// headers (`Cf-Ipcity`, `Cf-Ipcountry`).
pub fn device_info(
    client_ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> identity::session::manager::DeviceInfo {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let location = match (header("cf-ipcity"), header("cf-ipcountry")) {
        (Some(city), Some(country)) => Some(format!("{city}, {country}")),
        (None, Some(country)) => Some(country.to_owned()),
        (Some(city), None) => Some(city.to_owned()),
        (None, None) => None,
    };
    identity::session::manager::DeviceInfo {
        ip_address: client_ip.map(|i| i.to_string()),
        user_agent: header("user-agent").map(|u| u.chars().take(512).collect()),
        location,
    }
}

/// The `Set-Cookie` value that carries a session: sealed with `secrets.cookie`, attributes from `session.cookie.*`
/// falling back to `cookies.*`; `Secure` unless `--dev` (or configured); `Max-Age` until expiry when persistent.
pub fn session_set_cookie(
    config: &crate::config::Config,
    codec: &identity::session::cookie::CookieCodec,
    token: &str,
    seconds_left: i64,
) -> Option<String> {
    let c = &config.session.cookie;
    let value = codec.seal(token)?;
    let mut out = format!(
        "{}={value}; Path={}",
        c.name,
        c.path.as_deref().unwrap_or(&config.cookies.path)
    );
    if let Some(domain) = c
        .domain
        .as_ref()
        .or(config.cookies.domain.as_ref())
        .filter(|d| !d.is_empty())
    {
        out.push_str(&format!("; Domain={domain}"));
    }
    if c.persistent {
        out.push_str(&format!("; Max-Age={}", seconds_left.max(0)));
    }
    out.push_str("; HttpOnly");
    if c.secure.or(config.cookies.secure).unwrap_or(!config.dev) {
        out.push_str("; Secure");
    }
    let same_site = c.same_site.as_deref().unwrap_or(&config.cookies.same_site);
    out.push_str(&format!("; SameSite={same_site}"));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{device_info, session_set_cookie};
    use axum::http::HeaderMap;

    #[test]
    fn the_device_address_is_the_resolved_client_address_whatever_the_headers_say() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.7, 10.0.0.1".parse().unwrap());
        h.insert("true-client-ip", "6.6.6.6".parse().unwrap());
        h.insert("x-real-ip", "6.6.6.6".parse().unwrap());
        h.insert("user-agent", "curl/8".parse().unwrap());
        h.insert("cf-ipcity", "Berlin".parse().unwrap());
        h.insert("cf-ipcountry", "DE".parse().unwrap());
        let device = device_info(Some("127.0.0.1".parse().unwrap()), &h);
        assert_eq!(device.ip_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(device.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(device.location.as_deref(), Some("Berlin, DE"));
        assert_eq!(device_info(None, &h).ip_address, None);
    }

    use crate::config::{Config, Sources};
    use identity::session::cookie::CookieCodec;

    fn config(dev: bool, sets: &[&str]) -> Config {
        Config::load_with_env(
            &Sources {
                overrides: sets.iter().map(|s| (*s).to_owned()).collect(),
                dev,
                ..Default::default()
            },
            &[("DSN".into(), "memory".into())],
        )
        .unwrap()
    }

    #[test]
    fn cookie_attributes_follow_config() {
        let codec = CookieCodec::new(&["a-cookie-secret-0123456789"]);
        let prod = session_set_cookie(&config(false, &[]), &codec, "ory_st_x", 3600).unwrap();
        assert!(prod.starts_with("ory_kratos_session="), "{prod}");
        assert!(
            prod.contains("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"),
            "{prod}"
        );
        let value = prod.split(';').next().unwrap().split_once('=').unwrap().1;
        assert_eq!(codec.open(value).as_deref(), Some("ory_st_x"));

        let dev = session_set_cookie(&config(true, &[]), &codec, "ory_st_x", 10).unwrap();
        assert!(!dev.contains("Secure"), "{dev}");

        let custom = session_set_cookie(
            &config(
                false,
                &[
                    "session.cookie.name=sid",
                    "cookies.domain=example.com",
                    "session.cookie.same_site=Strict",
                    "session.cookie.persistent=false",
                    "session.cookie.path=/app",
                ],
            ),
            &codec,
            "ory_st_x",
            10,
        )
        .unwrap();
        assert!(custom.starts_with("sid="), "{custom}");
        assert!(
            custom.contains("; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Strict"),
            "{custom}"
        );
        assert!(!custom.contains("Max-Age"));
    }
}
