//! The edge proxy's transport: Pingora in front of apps and of the identity module.
//!
//! The gateway knows nothing of rules or sessions. Per request it builds a [`GatewayRequest`],
//! asks a [`Decider`] (rules + authn/authz/mutators, implemented elsewhere) and carries out the
//! [`Decision`]: proxy to the identity module, proxy to an upstream after editing headers, or
//! answer directly.
//!
//! What the gateway guarantees, whatever the decider does:
//! - hop-by-hop fields (RFC 7230 §6.1) and every field named in the client's `Connection`
//!   header are removed before the decider sees the request and before `set_headers` are added,
//!   so `Connection: X-User-Id` cannot delete a header the auth layer sets. A `Connection`
//!   header naming `Host` or a forwarding field is answered with 400;
//! - client fields spelled with `_` that alias a `remove_headers`/`set_headers` name
//!   (`X_User_Id`) or a forwarding field are removed too (CGI/WSGI/PHP/Rack merge them);
//! - `X-Forwarded-*` and `Forwarded`, the client-address fields (`X-Real-IP`, `True-Client-IP`,
//!   `Client-IP`, `CF-Connecting-IP`, `X-Client-IP`, …) and the path overrides (`X-Original-URL`,
//!   `X-Rewrite-URL`) are believed and kept only from `trusted_proxies`, and removed otherwise, in
//!   every spelling (`X_Real_IP`); `X-Forwarded-For/Proto/Host` and `X-Request-Id` are always set
//!   upstream;
//! - the client address is defined once, here ([`headers::client_ip`]: the peer, or the right-most
//!   address of `X-Forwarded-For` that is not a trusted proxy, as nginx's realip does). The identity
//!   module gets it in `X-Portcullis-Client-Ip` with the per-process `identity_secret` in
//!   `X-Portcullis-Edge`; a client's `X-Portcullis-*` fields are always removed, and apps never
//!   get them;
//! - `Keep-Alive` and fields named in the upstream's `Connection` never reach the client;
//! - upstream failures are answered with the JSON error envelope (502, or 504 on timeouts).
//!
//! Pingora is driven from our own accept loop (see `server.rs`), not from `pingora::Server`.

pub(crate) mod headers;
mod proxy;
mod resolve;
mod respond;
mod server;
mod stream;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pingora::server::configuration::ServerConf;
use tokio::sync::watch;

pub use headers::{is_reserved_path, RESERVED_PREFIXES};
pub use respond::error_body;
pub use rules::cidr::{Cidr, CidrParseError};

/// Request head budget by default: nginx's `large_client_header_buffers` (4 × 8k).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;

/// Whether this build can talk TLS to `https` upstreams.
const UPSTREAM_TLS: bool = false;

/// Timeouts towards upstreams (and the identity module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Longest wait for each read from the upstream, including between chunks of a streamed
    /// response and on an upgraded (WebSocket) connection: an idle WebSocket or SSE stream is
    /// closed after this long without upstream data.
    pub read: Duration,
    /// Longest wait for each write to the upstream (`None`: no limit).
    pub write: Option<Duration>,
    /// How long an idle pooled upstream connection is kept.
    pub pool_idle: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
            write: Some(Duration::from_secs(60)),
            pool_idle: Duration::from_secs(60),
        }
    }
}

/// Where the gateway's tasks run.
#[derive(Debug, Clone)]
pub enum GatewayRuntime {
    /// A runtime of its own with this many worker threads (0: one per core).
    Dedicated { threads: usize },
    /// An existing runtime, e.g. the application's, so that a decider using sqlx or Redis pools
    /// never opens connections on a runtime that dies before the pool does.
    Shared(tokio::runtime::Handle),
}

impl Default for GatewayRuntime {
    /// One thread, like Pingora's default: on a 2-core box shared with the app and an upstream,
    /// two work-stealing workers cost about twice the CPU per request for less throughput.
    fn default() -> Self {
        Self::Dedicated { threads: 1 }
    }
}

#[derive(Debug)]
pub struct GatewayConfig {
    /// Already bound; the gateway takes it over (port 0 is fine).
    pub listener: std::net::TcpListener,
    /// The identity module's listener (loopback); `Decision::Identity` is proxied there.
    pub identity_addr: SocketAddr,
    /// Peers whose `X-Forwarded-*`, `Forwarded` and `X-Request-Id` are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Longest time [`Gateway::shutdown`] waits for in-flight requests.
    pub shutdown_timeout: Duration,
    pub upstream_timeouts: UpstreamTimeouts,
    pub runtime: GatewayRuntime,
    /// A request whose target and header fields exceed this many bytes is answered 431.
    pub max_header_bytes: usize,
    /// Sent to the identity module in `X-Portcullis-Edge` with the client address, so that it can tell the
    /// edge from another process on the same host (`None`: the client address is sent alone). Mark it
    /// sensitive so that it never shows in debug output.
    pub identity_secret: Option<http::HeaderValue>,
}

impl GatewayConfig {
    /// Defaults: no trusted proxies, 15 s shutdown, default timeouts, a one-thread runtime, 32 KiB
    /// of request head, no identity secret.
    pub fn new(listener: std::net::TcpListener, identity_addr: SocketAddr) -> Self {
        Self {
            listener,
            identity_addr,
            trusted_proxies: Vec::new(),
            shutdown_timeout: Duration::from_secs(15),
            upstream_timeouts: UpstreamTimeouts::default(),
            runtime: GatewayRuntime::default(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            identity_secret: None,
        }
    }
}

/// What the gateway asks per request (implemented elsewhere: rules + authn/authz/mutators).
///
/// `decide` runs on the gateway's runtime (see [`GatewayRuntime`]). With a dedicated runtime,
/// do not let pooled I/O (sqlx, Redis) open connections from here: use
/// [`GatewayRuntime::Shared`], or spawn the lookup onto the application's runtime.
#[async_trait::async_trait]
pub trait Decider: Send + Sync + 'static {
    async fn decide(&self, req: &GatewayRequest) -> Decision;

    /// [`Decider::decide`] plus a label the gateway hands back to [`Decider::observe`].
    async fn decide_labelled(&self, req: &GatewayRequest) -> (Decision, Label) {
        (self.decide(req).await, Label::default())
    }

    /// Called once per request when it is over (answered, proxied or failed): for metrics.
    fn observe(&self, _outcome: &Outcome<'_>) {}
}

/// What a decider says about a request for its own accounting (e.g. the matched rule).
#[derive(Debug, Clone, Default)]
pub struct Label {
    /// The rule that decided, with its request counters.
    pub rule: Option<Arc<crate::metrics::RuleSeries>>,
    /// A short, bounded word for the decision (`allow`, `deny`, …).
    pub decision: &'static str,
}

/// A finished request, as [`Decider::observe`] sees it.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub label: &'a Label,
    /// Status sent to the client (0: none was sent).
    pub status: u16,
    /// From choosing the upstream to its response header, when one answered.
    pub upstream_latency: Option<Duration>,
}

/// The client request as the decider sees it.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub method: http::Method,
    /// `"http"`, or `"https"` when a trusted proxy says so in `X-Forwarded-Proto`.
    pub scheme: &'static str,
    /// Trusted `X-Forwarded-Host`, else `Host` (or the authority of an absolute-form target).
    pub host: String,
    /// Raw path as received (percent-encoding untouched, no normalisation of `.`/`..`).
    pub path: String,
    pub query: Option<String>,
    /// End-to-end headers: without hop-by-hop fields, fields named in `Connection`, and
    /// (from untrusted peers) `X-Forwarded-*` / `Forwarded`. `X-Request-Id` is the one below.
    pub headers: http::HeaderMap,
    /// The peer, or the client named by `X-Forwarded-For` through trusted proxies.
    pub client_ip: IpAddr,
    pub request_id: String,
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// Send to the identity module (reserved paths, see [`is_reserved_path`]).
    Identity,
    /// Proxy to an upstream after editing headers.
    Forward {
        /// `http://host:port[/base]` (`https` needs a TLS-enabled build). Shared: a decider parses each
        /// upstream once, not per request.
        upstream: Arc<url::Url>,
        /// Send the client's `Host` (else the upstream's authority).
        preserve_host: bool,
        /// Removed from the front of the path (at a segment boundary) before the base path of
        /// `upstream` is prepended.
        strip_path: Option<String>,
        /// Path to send instead of the one received (e.g. the normalised path the rules
        /// matched, so the upstream serves exactly what was authorised); origin-form, starting
        /// with `/`, percent-encoded. `strip_path` and the base path apply to it. The query is
        /// kept.
        path: Option<String>,
        /// Removed from the client request before `set_headers` are added.
        remove_headers: Vec<http::HeaderName>,
        /// Set last (replacing any client value); a repeated name adds another value.
        set_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    },
    /// Answer directly (errors, redirects, edge whoami). The connection stays reusable.
    Respond {
        status: http::StatusCode,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        body: bytes::Bytes,
    },
}

/// A running gateway.
pub struct Gateway {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    abort: watch::Sender<bool>,
    app: Arc<server::App>,
    tracker: Arc<server::Tracker>,
    accept: tokio::task::JoinHandle<()>,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown_timeout: Duration,
}

impl Gateway {
    /// Starts serving `config.listener`. Callable from inside or outside a tokio runtime.
    pub fn start(config: GatewayConfig, decider: Arc<dyn Decider>) -> anyhow::Result<Gateway> {
        let GatewayConfig {
            listener,
            identity_addr,
            trusted_proxies,
            shutdown_timeout,
            upstream_timeouts,
            runtime,
            max_header_bytes,
            identity_secret,
        } = config;
        let local_addr = listener
            .local_addr()
            .context("gateway listener has no address")?;
        listener
            .set_nonblocking(true)
            .context("gateway listener cannot be made non-blocking")?;

        let (handle, runtime, threads) = match runtime {
            GatewayRuntime::Shared(handle) => {
                let threads = handle.metrics().num_workers();
                (handle, None, threads)
            }
            GatewayRuntime::Dedicated { threads } => {
                let threads = if threads == 0 {
                    std::thread::available_parallelism().map_or(1, usize::from)
                } else {
                    threads
                };
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("gateway")
                    .enable_all()
                    .build()
                    .context("cannot build the gateway runtime")?;
                (rt.handle().clone(), Some(rt), threads)
            }
        };

        let conf = Arc::new(ServerConf {
            threads: threads.max(1),
            ..ServerConf::default()
        });
        let edge = proxy::Edge {
            decider,
            identity_addr,
            trusted: trusted_proxies,
            timeouts: upstream_timeouts,
            ids: headers::RequestIds::new(),
            resolver: resolve::Resolver::default(),
            max_header_bytes,
            identity_secret,
        };
        let app = Arc::new(pingora::proxy::http_proxy(&conf, edge));
        let tracker = Arc::new(server::Tracker::default());
        let (stop, stop_rx) = watch::channel(false);
        let (abort, abort_rx) = watch::channel(false);

        let listener = {
            let _enter = handle.enter();
            tokio::net::TcpListener::from_std(listener)
                .context("cannot register the gateway listener")?
        };
        let accept = handle.spawn(server::accept_loop(
            listener,
            app.clone(),
            tracker.clone(),
            stop_rx,
            abort_rx,
        ));
        tracing::info!(%local_addr, threads, "gateway listening");
        Ok(Gateway {
            local_addr,
            stop,
            abort,
            app,
            tracker,
            accept,
            handle,
            runtime,
            shutdown_timeout,
        })
    }

    /// Serves one client connection over an in-memory pipe and returns the client's end: every per-request step
    /// (Pingora's HTTP/1 parsing, the decider, the upstream hop, the response, logging and metrics) without the
    /// client socket. The peer address is unknown, as for a Unix socket. For benchmarks and tests.
    pub fn connect_in_memory(&self) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let _enter = self.handle.enter();
        server::spawn_connection(
            &self.app,
            &self.tracker,
            &self.stop.subscribe(),
            &self.abort.subscribe(),
            Box::new(server),
        );
        client
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Graceful: stop accepting, close idle keep-alive connections, let in-flight requests
    /// finish (their connections close afterwards) for up to `shutdown_timeout`, then drop
    /// whatever is left. Must be awaited on a tokio runtime (not the gateway's own).
    pub async fn shutdown(mut self) {
        let deadline = crate::listener::deadline_after(self.shutdown_timeout);
        self.stop.send_replace(true);
        // Raises Pingora's shutdown flag: connections parked between requests close now, and
        // responses still in flight are sent with `Connection: close` (see `response_filter`).
        pingora::apps::ServerApp::cleanup(self.app.as_ref()).await;
        if tokio::time::timeout_at(deadline, &mut self.accept)
            .await
            .is_err()
        {
            self.accept.abort();
        }
        let drained = tokio::time::timeout_at(deadline, self.tracker.wait_idle())
            .await
            .is_ok();
        if !drained {
            tracing::warn!(
                connections = self.tracker.live(),
                "gateway shutdown timeout: dropping connections"
            );
        }
        self.abort.send_replace(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        tracing::info!(drained, "gateway stopped");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.abort.send_replace(true);
        // Dropping a runtime inside async code panics; this never blocks.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
