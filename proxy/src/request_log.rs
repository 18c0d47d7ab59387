//! One structured log line per request on the public, admin and api listeners: request id, listener, method, path
//! (never the query, which can carry tokens and codes), status and latency. Health probes and `/decisions` (which
//! a front proxy calls for every request) log at debug; everything else at info. The edge proxy logs its own
//! requests, with the rule and decision, in `gateway`.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument as _;

/// The request id: the client's `X-Request-Id` when it is safe to keep, else a new one (a per-process prefix and a
/// counter: no system call per request). Sent back on the response.
fn request_id(req: &Request) -> String {
    static IDS: std::sync::OnceLock<crate::gateway::headers::RequestIds> =
        std::sync::OnceLock::new();
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::gateway::headers::valid_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| IDS.get_or_init(Default::default).next_id())
}

/// The middleware, for `axum::middleware::from_fn_with_state(listener_name, log)`.
pub async fn log(
    axum::extract::State(listener): axum::extract::State<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = crate::telemetry::enabled().then(|| {
        // Named by the route (`/admin/identities/{id}`), not the path, to keep span names few.
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str);
        let span = tracing::info_span!(
            target: "portcullis::span",
            "request",
            otel.name = %format!("{method} {route}").trim_end(),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = route,
            url.path = path.as_str(),
            http.response.status_code = tracing::field::Empty,
            portcullis.listener = listener,
            portcullis.request_id = id.as_str(),
        );
        crate::telemetry::adopt_parent(&span, req.headers());
        span
    });
    let mut res = match &span {
        Some(span) => next.run(req).instrument(span.clone()).await,
        None => next.run(req).await,
    };
    let status = res.status().as_u16();
    if let Some(span) = &span {
        crate::telemetry::record_outcome(span, status, false);
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let quiet = path.ends_with("/health/alive")
        || path.ends_with("/health/ready")
        || path.starts_with("/decisions");
    if quiet {
        tracing::debug!(request_id = %id, listener, %method, path, status, latency_ms, "request");
    } else {
        tracing::info!(request_id = %id, listener, %method, path, status, latency_ms, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().entry("x-request-id").or_insert(v);
    }
    res
}
