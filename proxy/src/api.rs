//! The api listener (Oathkeeper's, default port 4456): the forward-auth decisions API, the rules and the JWKS.
//!
//! `/decisions/*` rebuilds the original request from the headers reverse proxies send: `X-Forwarded-Method`,
//! `-Proto`, `-Host`, `-Uri` (Traefik, Caddy, HAProxy), `X-Original-Method` and `X-Original-URL` (nginx), or the
//! path after `/decisions` (Envoy `ext_authz`). These headers are believed from every caller: the api listener
//! belongs on a private network, next to the proxy that calls it.

use crate::access::Verdict;
use crate::error::ApiError;
use crate::metrics::Source;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use rules::pipeline::RequestInfo;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The api router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/decisions", any(decisions))
        .route("/decisions/{*rest}", any(decisions))
        .route("/rules", get(list_rules))
        .route("/rules/{id}", get(get_rule))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/health/alive", get(crate::public::alive))
        .route("/health/ready", get(ready))
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

/// The original request behind a decisions call.
pub fn original_request(
    headers: &HeaderMap,
    method: &str,
    path_suffix: &str,
    peer: SocketAddr,
) -> Result<RequestInfo, ApiError> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let original_url = h("x-original-url").and_then(|u| url::Url::parse(u).ok());
    let method = h("x-forwarded-method")
        .or_else(|| h("x-original-method"))
        .unwrap_or(method)
        .to_ascii_uppercase();
    let scheme = h("x-forwarded-proto")
        .map(str::to_owned)
        .or_else(|| original_url.as_ref().map(|u| u.scheme().to_owned()))
        .unwrap_or_else(|| "http".into());
    let host = h("x-forwarded-host")
        .map(str::to_owned)
        .or_else(|| {
            original_url.as_ref().and_then(|u| {
                u.host_str().map(|host| match u.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_owned(),
                })
            })
        })
        .or_else(|| h("host").map(str::to_owned))
        .unwrap_or_default();
    let (raw_path, query) = match (h("x-forwarded-uri"), &original_url) {
        (Some(uri), _) => match uri.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (uri.to_owned(), None),
        },
        (None, Some(u)) => (u.path().to_owned(), u.query().map(str::to_owned)),
        (None, None) => (
            if path_suffix.is_empty() {
                "/".to_owned()
            } else {
                path_suffix.to_owned()
            },
            None,
        ),
    };
    let path = rules::normalize_path(&raw_path)
        .map_err(|e| ApiError::bad_request(format!("the request path is not acceptable: {e}")))?;
    let forwarded_for = h("x-forwarded-for")
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok());
    let headers = headers
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    Ok(RequestInfo {
        method,
        scheme,
        host,
        path,
        query,
        headers,
        client_ip: forwarded_for.unwrap_or(peer.ip()),
        forwarded_for,
    })
}

/// `ANY /decisions[/*]`.
async fn decisions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let Some(access) = state.access.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND)
            .with_reason("no access rules are configured")
            .into_response();
    };
    let suffix = req
        .uri()
        .path()
        .strip_prefix("/decisions")
        .unwrap_or("")
        .to_owned();
    let nginx = req.headers().contains_key("x-original-url")
        || req.headers().contains_key("x-original-method");
    let info = match original_request(req.headers(), req.method().as_str(), &suffix, peer) {
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
    let (res, rule, decision) = match access.evaluate(&info).await {
        Verdict::Allow { set, rule_id, .. } => {
            let mut res = StatusCode::OK.into_response();
            for (k, v) in set {
                if k.eq_ignore_ascii_case("content-length") {
                    continue;
                }
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    res.headers_mut().append(k, v);
                }
            }
            (res, Some(rule_id), "allow")
        }
        Verdict::Deny { response, rule_id } => {
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
            (res, rule_id, "deny")
        }
    };
    state.metrics.count_request(
        Source::Decisions,
        rule.as_ref(),
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
