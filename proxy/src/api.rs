//! The api listener (Oathkeeper's, default port 4456): the forward-auth decisions API, the rules and the JWKS.
//!
//! # Which request `/decisions` judges
//!
//! A decisions call describes the original request in one of three ways, and only a peer in
//! `serve.api.trusted_proxies` (default: loopback) may use the first two:
//!
//! 1. `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` (Traefik ForwardAuth, Caddy, HAProxy);
//! 2. `X-Original-URL` and `X-Original-Method` (nginx `auth_request`);
//! 3. the decisions request itself: its method, the path after `/decisions`, its query and `Host`
//!    (Envoy `ext_authz`), with the scheme `http`.
//!
//! A call from any other peer is judged on its own request line (3), whatever headers it carries:
//! such a peer can only ask about the request it is making. From a trusted peer, the headers of one
//! family are read and what that family does not say comes from (3). A call carrying both families,
//! or one of those headers twice, is refused with 400: a client that adds `X-Forwarded-Uri` to a
//! request nginx forwards, or `X-Original-URL` to one Traefik forwards, can then only break its own
//! request. The proxy in front must still set or clear every header of the family it uses (the
//! snippets in `deploy/forward-auth/` do).
//!
//! The client address is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy,
//! as at the edge; `X-Forwarded-For` from an untrusted peer is ignored.
//!
//! The path is the raw one received (before the listener's trailing-slash handling) and goes through
//! [`rules::normalize_path`], the function the edge uses, so `/decisions/docs/` and `GET /docs/` at
//! the edge are judged alike.

use crate::access::Verdict;
use crate::error::ApiError;
use crate::metrics::Source;
use crate::AppState;
use axum::extract::{ConnectInfo, OriginalUri, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use rules::cidr::{self, Cidr};
use rules::pipeline::RequestInfo;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// Peers whose forwarding headers describe the original request (`serve.api.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedPeers(pub Arc<[Cidr]>);

/// The api router.
pub fn router(state: AppState, trusted: TrustedPeers) -> Router {
    Router::new()
        .route("/decisions", any(decisions))
        .route("/decisions/{*rest}", any(decisions))
        .route("/rules", get(list_rules))
        .route("/rules/{id}", get(get_rule))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/health/alive", get(crate::public::alive))
        .route("/health/ready", get(ready))
        .layer(Extension(trusted))
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> Response {
    crate::public::readiness(&state, false).await
}

/// Headers a proxy adds for us or that describe the hop, never part of the original request.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-original-method",
    "x-original-url",
];

/// Traefik's family (also Caddy's and HAProxy's).
const FORWARDED: [&str; 4] = [
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
];

/// nginx's family.
const ORIGINAL: [&str; 2] = ["x-original-url", "x-original-method"];

/// Where the original request was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Described {
    /// The decisions request itself (Envoy; every untrusted peer).
    Itself,
    /// `X-Forwarded-Method/-Proto/-Host/-Uri` from a trusted peer.
    Forwarded,
    /// `X-Original-URL/-Method` from a trusted peer (nginx).
    Original,
}

/// The decisions request as received, before any forwarding header is read.
#[derive(Debug, Clone, Copy)]
pub struct OwnRequest<'a> {
    /// Its method.
    pub method: &'a str,
    /// The raw path after `/decisions` (empty for `/decisions` itself).
    pub path: &'a str,
    /// Its raw query.
    pub query: Option<&'a str>,
    /// Its `Host`.
    pub host: &'a str,
    /// The TCP peer.
    pub peer: SocketAddr,
}

/// The one family of forwarding headers a trusted peer sent (see the module docs).
fn family(headers: &HeaderMap) -> Result<Described, ApiError> {
    let (mut forwarded, mut original) = (None, None);
    for name in FORWARDED.iter().chain(ORIGINAL.iter()) {
        let mut values = headers.get_all(*name).iter();
        if values.next().is_none() {
            continue;
        }
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "the forwarding header {name} is given more than once"
            )));
        }
        let seen = if ORIGINAL.contains(name) {
            &mut original
        } else {
            &mut forwarded
        };
        seen.get_or_insert(*name);
    }
    match (forwarded, original) {
        (Some(f), Some(o)) => Err(ApiError::bad_request(format!(
            "the request carries both {o} and {f}: the proxy in front must clear the forwarding headers it does not set"
        ))),
        (Some(_), None) => Ok(Described::Forwarded),
        (None, Some(_)) => Ok(Described::Original),
        (None, None) => Ok(Described::Itself),
    }
}

/// A forwarding header's value: absent, or visible ASCII and not empty.
fn forwarding<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        _ => Err(ApiError::bad_request(format!(
            "the forwarding header {name} is empty or not visible ASCII"
        ))),
    }
}

/// The original request behind a decisions call (see the module docs), and where it was read from.
pub fn original_request(
    headers: &HeaderMap,
    own: &OwnRequest<'_>,
    trusted: &[Cidr],
) -> Result<(RequestInfo, Described), ApiError> {
    let trusted_peer = cidr::any_contains(trusted, own.peer.ip());
    let described = if trusted_peer {
        family(headers)?
    } else {
        Described::Itself
    };
    let (method, scheme, host, raw_path, query) = match described {
        Described::Itself => (own.method, "http", own.host, own.path, own.query),
        Described::Forwarded => {
            let (path, query) = match forwarding(headers, "x-forwarded-uri")? {
                Some(uri) => rules::normalize::split_path_query(uri),
                None => (own.path, own.query),
            };
            (
                forwarding(headers, "x-forwarded-method")?.unwrap_or(own.method),
                forwarding(headers, "x-forwarded-proto")?.unwrap_or("http"),
                forwarding(headers, "x-forwarded-host")?.unwrap_or(own.host),
                path,
                query,
            )
        }
        Described::Original => {
            let method = forwarding(headers, "x-original-method")?.unwrap_or(own.method);
            match forwarding(headers, "x-original-url")? {
                Some(url) => {
                    let u = rules::normalize::split_absolute_url(url).ok_or_else(|| {
                        ApiError::bad_request("X-Original-URL is not an absolute URL")
                    })?;
                    (method, u.scheme, u.authority, u.path, u.query)
                }
                None => (method, "http", own.host, own.path, own.query),
            }
        }
    };
    let path = rules::normalize_path(raw_path)
        .map_err(|e| ApiError::bad_request(format!("the request path is not acceptable: {e}")))?;
    // The edge's definition of the client address, with this listener's trusted peers.
    let client_ip = crate::gateway::headers::client_ip(own.peer.ip(), headers, trusted);
    let forwarded_for =
        (trusted_peer && headers.contains_key("x-forwarded-for")).then_some(client_ip);
    let headers = headers
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let info = RequestInfo {
        method: method.to_owned(),
        scheme: scheme.to_owned(),
        host: host.to_owned(),
        path,
        query: query.map(str::to_owned),
        headers,
        client_ip,
        forwarded_for,
    };
    Ok((info, described))
}

/// `ANY /decisions[/*]`.
async fn decisions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(trusted): Extension<TrustedPeers>,
    OriginalUri(raw): OriginalUri,
    req: Request,
) -> Response {
    let Some(access) = state.access.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND)
            .with_reason("no access rules are configured")
            .into_response();
    };
    // The target as received: the listener trims trailing slashes (and a leading `//`) for routing.
    let uri = if raw.path().starts_with("/decisions") {
        &raw
    } else {
        req.uri()
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let own = OwnRequest {
        method: req.method().as_str(),
        path: uri.path().strip_prefix("/decisions").unwrap_or(""),
        query: uri.query(),
        host,
        peer,
    };
    let (info, described) = match original_request(req.headers(), &own, &trusted.0) {
        Ok(i) => i,
        Err(e) => {
            let res = e.into_response();
            let status = res.status().as_u16();
            state
                .metrics
                .count_request(Source::Decisions, None, "invalid", status);
            return res;
        }
    };
    let nginx = described == Described::Original;
    let (res, rule, decision) = match access.evaluate(&info).await {
        Verdict::Allow { set, rule, .. } => {
            let mut res = StatusCode::OK.into_response();
            for (k, v) in set {
                if k.eq_ignore_ascii_case("content-length") {
                    continue;
                }
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    res.headers_mut().append(k, v);
                }
            }
            (res, Some(rule), "allow")
        }
        Verdict::Deny { response, rule } => {
            let mut status =
                StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // nginx's auth_request only understands 2xx, 401 and 403: a redirect becomes a 401 whose Location the
            // nginx config sends the browser to (`auth_request_set $login $upstream_http_location`).
            if nginx && status.is_redirection() {
                status = StatusCode::UNAUTHORIZED;
            }
            // The handler's headers only (no default content type from the body's type).
            let mut res = Response::new(axum::body::Body::from(response.body));
            *res.status_mut() = status;
            for (k, v) in response.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    res.headers_mut().append(k, v);
                }
            }
            (res, rule, "deny")
        }
    };
    state.metrics.count_request(
        Source::Decisions,
        rule.as_deref(),
        decision,
        res.status().as_u16(),
    );
    res
}

async fn list_rules(State(state): State<AppState>) -> Json<Value> {
    let rules: Vec<Value> = match &state.access {
        Some(a) => a
            .current()
            .source
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect(),
        None => Vec::new(),
    };
    Json(Value::Array(rules))
}

async fn get_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = state.access.as_ref().ok_or_else(ApiError::not_found)?;
    access
        .current()
        .source
        .iter()
        .find(|r| r.id == id)
        .and_then(|r| serde_json::to_value(r).ok())
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

async fn jwks(State(state): State<AppState>) -> Response {
    let keys = match &state.access {
        Some(a) => a.current().jwks.clone(),
        None => json!({"keys": []}),
    };
    let mut res = Json(keys).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    res
}
