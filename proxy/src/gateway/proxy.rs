//! The `ProxyHttp` implementation. Each phase is one call into a plain function below.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use super::headers::{self as h, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use super::resolve::{ResolveError, Resolver};
use super::respond;
use super::{Decider, Decision, GatewayRequest, Label, Outcome, UpstreamTimeouts};
use rules::cidr::{self, Cidr};

/// Shared, read-only state of the gateway.
pub(super) struct Edge {
    pub decider: Arc<dyn Decider>,
    pub identity_addr: SocketAddr,
    pub trusted: Vec<Cidr>,
    pub timeouts: UpstreamTimeouts,
    pub ids: h::RequestIds,
    pub resolver: Resolver,
    pub max_header_bytes: usize,
    /// Sent to the identity module with the client address (see [`h::X_PORTCULLIS_EDGE`]).
    pub identity_secret: Option<HeaderValue>,
}

/// Per-request state.
pub struct Ctx {
    request_id: String,
    peer: IpAddr,
    trusted_peer: bool,
    /// The peer, or the client named by a trusted proxy ([`h::client_ip`]).
    client_ip: IpAddr,
    scheme: &'static str,
    /// Host the client asked for (trusted `X-Forwarded-Host`, else `Host`).
    host: String,
    route: Route,
    label: Label,
    /// When the upstream was chosen, and how long until its response header.
    upstream_started: Option<std::time::Instant>,
    upstream_latency: Option<std::time::Duration>,
    /// When the request head was read.
    started: std::time::Instant,
    /// The request's span while trace export is on; it ends when the context is dropped.
    span: Option<tracing::Span>,
}

enum Route {
    Undecided,
    Identity,
    Forward(Box<Forward>),
}

struct Forward {
    upstream: Arc<url::Url>,
    preserve_host: bool,
    strip_path: Option<String>,
    path: Option<String>,
    remove_headers: Vec<HeaderName>,
    set_headers: Vec<(HeaderName, HeaderValue)>,
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            request_id: String::new(),
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            trusted_peer: false,
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            scheme: "http",
            host: String::new(),
            route: Route::Undecided,
            label: Label::default(),
            upstream_started: None,
            upstream_latency: None,
            started: std::time::Instant::now(),
            span: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        on_request(self, session, ctx).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        ctx.upstream_started = Some(std::time::Instant::now());
        pick_peer(self, ctx).await
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        edit_upstream_request(ctx, self.identity_secret.as_ref(), req)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.upstream_latency = ctx.upstream_started.map(|t| t.elapsed());
        edit_response(session, resp);
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        on_failure(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = log(session, e, ctx);
        self.decider.observe(&Outcome {
            label: &ctx.label,
            status,
            upstream_latency: ctx.upstream_latency,
        });
    }
}

/// `request_filter`: sanitise the client request, ask the [`Decider`], answer or route.
async fn on_request(edge: &Edge, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical());
    ctx.peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    ctx.trusted_peer = peer.is_some_and(|ip| cidr::any_contains(&edge.trusted, ip));
    if crate::telemetry::enabled() {
        ctx.span = Some(request_span(session.req_header()));
    }

    let head = session.req_header();
    if h::head_size(head.raw_path(), &head.headers) > edge.max_header_bytes {
        ctx.request_id = edge.ids.next_id();
        let status = http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        let reason = "The request header fields are too large.";
        session.set_keepalive(None);
        respond::write_error(session, status, reason, &ctx.request_id).await?;
        return Ok(true);
    }
    let request = match sanitize(edge, session.req_header_mut(), ctx) {
        Ok(request) => request,
        Err(reason) => {
            ctx.request_id = edge.ids.next_id();
            let status = http::StatusCode::BAD_REQUEST;
            respond::write_error(session, status, reason, &ctx.request_id).await?;
            return Ok(true);
        }
    };
    let (decision, label) = edge.decider.decide_labelled(&request).await;
    if let Some(span) = &ctx.span {
        // Named by the rule (or route) that decided; an OpenTelemetry span can only be renamed before it
        // starts, which is when the upstream request takes its `traceparent`.
        let name = label.rule.as_deref().map_or(label.decision, |r| r.id());
        span.record("otel.name", format!("{} {name}", request.method).as_str());
    }
    ctx.label = label;
    ctx.request_id = request.request_id;
    ctx.client_ip = request.client_ip;
    ctx.scheme = request.scheme;
    ctx.host = request.host;
    match decision {
        Decision::Identity => ctx.route = Route::Identity,
        Decision::Forward {
            upstream,
            preserve_host,
            strip_path,
            path,
            remove_headers,
            set_headers,
        } => {
            ctx.route = Route::Forward(Box::new(Forward {
                upstream,
                preserve_host,
                strip_path,
                path,
                remove_headers,
                set_headers,
            }))
        }
        Decision::Respond {
            status,
            headers,
            body,
        } => {
            drain_small_body(session).await;
            close_if_shutting_down(session);
            respond::write(session, status, &headers, body, &ctx.request_id).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// The span of one proxied request; [`log`] fills in the outcome.
fn request_span(head: &RequestHeader) -> tracing::Span {
    let span = tracing::info_span!(
        target: "portcullis::span",
        "edge request",
        otel.name = %head.method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %head.method,
        url.path = head.uri.path(),
        http.response.status_code = tracing::field::Empty,
        portcullis.rule = tracing::field::Empty,
        portcullis.decision = tracing::field::Empty,
        portcullis.request_id = tracing::field::Empty,
    );
    crate::telemetry::adopt_parent(&span, &head.headers);
    span
}

/// Request bodies up to this size are read and dropped before a direct answer, so the client
/// connection can be reused; larger ones make Pingora close it after the answer.
const DRAIN_LIMIT: usize = 64 * 1024;

async fn drain_small_body(session: &mut Session) {
    if session.is_body_empty() || session.is_body_done() {
        return;
    }
    let small = session
        .req_header()
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|len| len <= DRAIN_LIMIT);
    if small {
        if let Err(e) = session.drain_request_body().await {
            tracing::debug!(error = %e, "could not drain request body");
        }
    }
}

/// Cleans the downstream request in place (so the decider and the upstream see the same thing)
/// and builds the [`GatewayRequest`]:
/// - fields named in `Connection` are removed (a `Connection` naming `Host` or a forwarding field
///   is refused), and so are method overrides (`X-HTTP-Method-Override` and kin) and our private
///   `X-Portcullis-*` fields;
/// - `X-Forwarded-*` / `Forwarded`, client-address fields (`X-Real-IP`, `True-Client-IP`, …) and
///   path overrides (`X-Original-URL`, `X-Rewrite-URL`) from an untrusted peer are removed, in
///   every spelling;
/// - an absolute-form target becomes origin-form with its authority in `Host`;
/// - `X-Request-Id` is replaced unless a trusted peer sent a sane one.
fn sanitize(
    edge: &Edge,
    req: &mut RequestHeader,
    ctx: &Ctx,
) -> std::result::Result<GatewayRequest, &'static str> {
    let nominated = h::connection_nominations(&req.headers).map_err(|e| match e {
        h::BadConnection::Protected(_) => "The Connection header names a protected field.",
        h::BadConnection::Malformed => "The Connection header is malformed.",
    })?;
    for name in nominated
        .iter()
        .chain(&h::untrusted_fields(&req.headers, ctx.trusted_peer))
    {
        req.remove_header(name);
    }

    let target = h::split_target(req.raw_path()).ok_or("The request target is not valid.")?;
    let (path, query) = (target.path.to_owned(), target.query.map(str::to_owned));
    if let Some(authority) = target.authority.map(str::to_owned) {
        let origin = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        req.set_raw_path(origin.as_bytes())
            .map_err(|_| "The request target is not valid.")?;
        req.insert_header(header::HOST, authority)
            .map_err(|_| "The request target is not valid.")?;
    }

    let trusted = ctx.trusted_peer;
    let forwarded = |name: &HeaderName| {
        if trusted {
            h::first_token(&req.headers, name)
        } else {
            None
        }
    };
    let scheme = match forwarded(&X_FORWARDED_PROTO) {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = forwarded(&X_FORWARDED_HOST)
        .or_else(|| req.headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .unwrap_or_default()
        .to_owned();
    let request_id = match forwarded(&X_REQUEST_ID) {
        Some(id) if h::valid_request_id(id) => id.to_owned(),
        _ => edge.ids.next_id(),
    };
    req.insert_header(h::wire::X_REQUEST_ID, request_id.as_str())
        .map_err(|_| "The request id is not valid.")?;
    let client_ip = h::client_ip(ctx.peer, &req.headers, &edge.trusted);
    let mut headers = req.headers.clone();
    h::strip_hop_by_hop(&mut headers, &[]);

    Ok(GatewayRequest {
        method: req.method.clone(),
        scheme,
        host,
        path,
        query,
        headers,
        client_ip,
        request_id,
    })
}

/// `upstream_peer`: the identity listener or the decided upstream, with our timeouts.
async fn pick_peer(edge: &Edge, ctx: &Ctx) -> Result<Box<HttpPeer>> {
    let (addr, tls, sni) = match &ctx.route {
        Route::Identity => (edge.identity_addr, false, String::new()),
        Route::Forward(f) => {
            let upstream_error = |kind: &'static str| {
                Error::explain(ErrorType::Custom(kind), f.upstream.to_string()).into_up()
            };
            let tls = match f.upstream.scheme() {
                "http" | "ws" => false,
                "https" | "wss" if super::UPSTREAM_TLS => true,
                "https" | "wss" => return Err(upstream_error(respond::UPSTREAM_TLS_UNSUPPORTED)),
                _ => return Err(upstream_error(respond::UPSTREAM_BAD_URL)),
            };
            let addr = edge.resolver.resolve(&f.upstream).await.map_err(|e| {
                upstream_error(match e {
                    ResolveError::BadUrl => respond::UPSTREAM_BAD_URL,
                    ResolveError::NotFound => respond::UPSTREAM_UNRESOLVED,
                })
            })?;
            let sni = match tls {
                true => f.upstream.host_str().unwrap_or_default().to_owned(),
                false => String::new(),
            };
            (addr, tls, sni)
        }
        Route::Undecided => {
            return Err(Error::explain(ErrorType::InternalError, "no route decided"));
        }
    };
    Ok(Box::new(peer_for(edge, addr, tls, sni)))
}

/// A peer with our timeouts. Pooled connections are keyed by address, TLS and SNI.
pub(super) fn peer_for(edge: &Edge, addr: SocketAddr, tls: bool, sni: String) -> HttpPeer {
    let t = &edge.timeouts;
    let mut peer = HttpPeer::new(addr, tls, sni);
    peer.options.connection_timeout = Some(t.connect);
    peer.options.total_connection_timeout = Some(t.connect.saturating_mul(2));
    peer.options.read_timeout = Some(t.read);
    peer.options.write_timeout = t.write;
    peer.options.idle_timeout = Some(t.pool_idle);
    peer
}

/// `upstream_request_filter`. Pingora has already removed hop-by-hop fields and the fields named
/// in the client's `Connection` header (its default `HttpUpstreamRequestPolicy`, applied just
/// before this phase); `sanitize` removed the named ones earlier still. Then, in this order:
/// forwarding headers, then for the identity module the client address
/// ([`h::X_PORTCULLIS_CLIENT_IP`] and [`h::X_PORTCULLIS_EDGE`]), for an app `remove_headers`, target
/// and `Host`, `set_headers` (which win).
fn edit_upstream_request(
    ctx: &Ctx,
    edge_secret: Option<&HeaderValue>,
    req: &mut RequestHeader,
) -> Result<()> {
    let xff = h::forwarded_for(ctx.trusted_peer.then_some(&req.headers), ctx.peer);
    req.insert_header(h::wire::X_FORWARDED_FOR, xff)?;
    req.insert_header(
        h::wire::X_FORWARDED_PROTO,
        HeaderValue::from_static(ctx.scheme),
    )?;
    if !ctx.host.is_empty() {
        req.insert_header(h::wire::X_FORWARDED_HOST, ctx.host.as_str())?;
    }
    // The upstream's spans (and the identity module's) continue this request's trace.
    if let Some(span) = &ctx.span {
        req.remove_header("tracestate");
        for (name, value) in crate::telemetry::propagation_headers(span) {
            req.insert_header(name, value)?;
        }
    }
    let f = match &ctx.route {
        Route::Forward(f) => f,
        Route::Identity => {
            // The one client address the identity module believes (with the secret that proves it is ours).
            req.insert_header(h::wire::X_PORTCULLIS_CLIENT_IP, h::ip_string(ctx.client_ip))?;
            if let Some(secret) = edge_secret {
                req.insert_header(h::wire::X_PORTCULLIS_EDGE, secret.clone())?;
            }
            return Ok(());
        }
        Route::Undecided => return Ok(()),
    };
    for name in &f.remove_headers {
        req.remove_header(name);
    }
    // `X_User_Id` reaches CGI/WSGI-style apps as the same variable as `X-User-Id`.
    for name in h::underscore_aliases(&req.headers, &f.remove_headers, &f.set_headers) {
        req.remove_header(&name);
    }
    let target = h::split_target(req.raw_path())
        .ok_or_else(|| Error::explain(ErrorType::InternalError, "unparsable target"))?;
    let (base, strip) = (f.upstream.path(), f.strip_path.as_deref());
    let path = f.path.as_deref().unwrap_or(target.path);
    if path != target.path || h::target_changes(base, strip, path) {
        let rebuilt = h::upstream_target(base, strip, path, target.query);
        req.set_raw_path(rebuilt.as_bytes())?;
    }
    if !f.preserve_host {
        let authority = h::url_authority(&f.upstream)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "upstream has no host"))?;
        req.insert_header(header::HOST, authority)?;
    }
    let mut seen: Vec<&HeaderName> = Vec::with_capacity(f.set_headers.len());
    for (name, value) in &f.set_headers {
        if seen.contains(&name) {
            req.append_header(name.clone(), value.clone())?;
        } else {
            req.insert_header(name.clone(), value.clone())?;
            seen.push(name);
        }
    }
    Ok(())
}

/// `response_filter`: drop the upstream's hop-by-hop fields; once shutdown has begun,
/// in-flight responses end their connection.
fn edit_response(session: &mut Session, resp: &mut ResponseHeader) {
    for name in h::response_hop_by_hop(&resp.headers) {
        resp.remove_header(&name);
    }
    close_if_shutting_down(session);
}

fn close_if_shutting_down(session: &mut Session) {
    if session.is_process_shutting_down() {
        session.set_keepalive(None);
    }
}

/// `fail_to_proxy`: our JSON envelope instead of Pingora's empty error page.
async fn on_failure(session: &mut Session, e: &Error, ctx: &Ctx) -> FailToProxy {
    let error_code = match respond::classify(e) {
        Some((status, reason)) => {
            if let Err(we) = respond::write_error(session, status, reason, &ctx.request_id).await {
                tracing::debug!(request_id = %ctx.request_id, error = %we, "could not write error response");
            }
            status.as_u16()
        }
        None => 0,
    };
    FailToProxy {
        error_code,
        can_reuse_downstream: false,
    }
}

/// `logging`: one line per request (debug), or per failure (warn), with the request id, rule, decision, status
/// and latencies (never headers, cookies or tokens). Returns the status sent.
fn log(session: &Session, e: Option<&Error>, ctx: &Ctx) -> u16 {
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let route = match ctx.route {
        Route::Undecided => "edge",
        Route::Identity => "identity",
        Route::Forward(_) => "forward",
    };
    let method = &session.req_header().method;
    let rule = ctx.label.rule.as_deref().map_or("", |r| r.id());
    let decision = ctx.label.decision;
    let latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    let upstream_ms = ctx.upstream_latency.map(|d| d.as_secs_f64() * 1000.0);
    if let Some(span) = &ctx.span {
        span.record("portcullis.rule", rule);
        span.record("portcullis.decision", decision);
        span.record("portcullis.request_id", ctx.request_id.as_str());
        let failed = e.is_some_and(|e| respond::classify(e).is_some());
        crate::telemetry::record_outcome(span, status, failed);
    }
    match e {
        // The client went away: not worth a warning.
        Some(e) if respond::classify(e).is_none() => tracing::debug!(
            request_id = %ctx.request_id, %method, status, route, rule, decision, latency_ms, upstream_ms,
            error = %e, "gateway request abandoned by the client"
        ),
        Some(e) => tracing::warn!(
            request_id = %ctx.request_id, %method, status, route, rule, decision, latency_ms, upstream_ms,
            error = %e, "gateway request failed"
        ),
        None => tracing::debug!(
            request_id = %ctx.request_id, %method, status, route, rule, decision, latency_ms, upstream_ms,
            "gateway request"
        ),
    }
    status
}
