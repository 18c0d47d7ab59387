//! Gateway tests: real servers on loopback, free ports, channels (not sleeps) for ordering.
//! Timeouts below are only guards against hangs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{AppendHeaders, IntoResponse};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::*;

const GUARD: Duration = Duration::from_secs(10);

async fn guard<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

// ---------------------------------------------------------------- decider

type DecideFn = dyn Fn(&GatewayRequest) -> Decision + Send + Sync;

struct TestDecider {
    f: Box<DecideFn>,
    seen: Mutex<Vec<GatewayRequest>>,
}

#[async_trait::async_trait]
impl Decider for TestDecider {
    async fn decide(&self, req: &GatewayRequest) -> Decision {
        self.seen.lock().unwrap().push(req.clone());
        (self.f)(req)
    }
}

fn decider(f: impl Fn(&GatewayRequest) -> Decision + Send + Sync + 'static) -> Arc<TestDecider> {
    Arc::new(TestDecider {
        f: Box::new(f),
        seen: Mutex::new(Vec::new()),
    })
}

fn forward(upstream: SocketAddr) -> Decision {
    forward_url(&format!("http://{upstream}"))
}

fn forward_url(url: &str) -> Decision {
    Decision::Forward {
        upstream: Arc::new(url::Url::parse(url).unwrap()),
        preserve_host: false,
        strip_path: None,
        path: None,
        remove_headers: vec![],
        set_headers: vec![],
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

fn hn(s: &'static str) -> HeaderName {
    HeaderName::from_static(s)
}

// ---------------------------------------------------------------- gateway

fn config(identity: SocketAddr) -> GatewayConfig {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = GatewayConfig::new(listener, identity);
    c.shutdown_timeout = Duration::from_secs(5);
    c.upstream_timeouts.connect = Duration::from_secs(2);
    c.upstream_timeouts.read = Duration::from_secs(5);
    c.runtime = GatewayRuntime::Dedicated { threads: 2 };
    c
}

fn start(d: Arc<TestDecider>, c: GatewayConfig) -> Gateway {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Gateway::start(c, d).unwrap()
}

/// An address nobody listens on (bound then released).
fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

// ---------------------------------------------------------------- echo upstream (axum)

struct Counting {
    inner: TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            if let Ok(conn) = self.inner.accept().await {
                self.accepted.fetch_add(1, Ordering::SeqCst);
                return conn;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Echoes the request as JSON: method, target, headers (in order), body length and hash.
/// `/cookies` also sets two cookies.
async fn echo(req: Request) -> impl IntoResponse {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(k, v)| serde_json::json!([k.as_str(), v.to_str().unwrap_or("<bin>")]))
        .collect();
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "target": parts.uri.to_string(),
        "headers": headers,
        "body_len": body.len(),
        "body_fnv": fnv(&body).to_string(),
    });
    let cookies = if parts.uri.path().ends_with("/cookies") {
        vec![
            (http::header::SET_COOKIE, "csrf=abc; Path=/; HttpOnly"),
            (http::header::SET_COOKIE, "session=xyz; Path=/; HttpOnly"),
        ]
    } else {
        vec![]
    };
    (
        AppendHeaders(cookies),
        [(http::header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}

struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn echo_server() -> Echo {
    let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = inner.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = Counting {
        inner,
        accepted: accepted.clone(),
    };
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Echo { addr, accepted }
}

struct Echoed(Value);

impl Echoed {
    fn parse(body: &[u8]) -> Self {
        Echoed(
            serde_json::from_slice(body)
                .unwrap_or_else(|_| panic!("not json: {}", String::from_utf8_lossy(body))),
        )
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|p| p[1].as_str().unwrap().to_owned())
            .collect()
    }
    fn one(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} repeated: {all:?}");
        all.into_iter().next()
    }
    fn target(&self) -> &str {
        self.0["target"].as_str().unwrap()
    }
}

// ---------------------------------------------------------------- raw upstream

/// Runs `handler` for every connection to a fresh loopback listener.
async fn raw_upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(BufReader<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(handler(BufReader::new(s)));
        }
    });
    addr
}

/// Reads a request or response head (up to the blank line).
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.unwrap();
        assert!(n > 0, "EOF inside head: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            return head;
        }
    }
}

fn head_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

// ---------------------------------------------------------------- raw client

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn echoed(&self) -> Echoed {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        Echoed::parse(&self.body)
    }
}

struct Client {
    s: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            s: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    async fn send(&mut self, raw: &[u8]) {
        self.s.get_mut().write_all(raw).await.unwrap();
    }

    async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let head = read_head(&mut self.s).await;
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        (status, headers)
    }

    /// One chunk of a chunked body (`None` at the last chunk).
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        let mut size = String::new();
        self.s.read_line(&mut size).await.unwrap();
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
        let mut data = vec![0; size];
        self.s.read_exact(&mut data).await.unwrap();
        let mut crlf = [0; 2];
        self.s.read_exact(&mut crlf).await.unwrap();
        (size > 0).then_some(data)
    }

    async fn response(&mut self) -> Resp {
        let (status, headers) = self.head().await;
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let body = if status == 101 || status == 204 || status == 304 {
            vec![]
        } else if let Some(len) = get("content-length") {
            let mut b = vec![0; len.parse().unwrap()];
            self.s.read_exact(&mut b).await.unwrap();
            b
        } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            let mut b = vec![];
            while let Some(c) = self.chunk().await {
                b.extend(c);
            }
            b
        } else {
            let mut b = vec![];
            self.s.read_to_end(&mut b).await.unwrap();
            b
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn request(&mut self, raw: &[u8]) -> Resp {
        self.send(raw).await;
        guard("response", self.response()).await
    }

    /// Whether the server closed the connection (EOF on read).
    async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(guard("eof", self.s.read(&mut b)).await, Ok(0) | Err(_))
    }
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app.example\r\n{extra}\r\n").into_bytes()
}

async fn get_once(gw: &Gateway, path: &str, extra: &str) -> Resp {
    Client::connect(gw.local_addr())
        .await
        .request(&get(path, extra))
        .await
}

// ================================================================ 1. pooling

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_and_reuses_one_upstream_connection() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let gw = start(d.clone(), config(dead_addr()));

    // Sequential requests on one client connection, then on fresh client connections.
    let mut c = Client::connect(gw.local_addr()).await;
    for i in 0..5 {
        let r = c.request(&get(&format!("/n/{i}?q={i}"), "")).await;
        assert_eq!(r.echoed().target(), format!("/n/{i}?q={i}"));
    }
    for i in 0..5 {
        let r = get_once(&gw, &format!("/m/{i}"), "").await;
        assert_eq!(r.echoed().target(), format!("/m/{i}"));
    }
    assert_eq!(
        echo.accepted.load(Ordering::SeqCst),
        1,
        "upstream connection reused"
    );
    assert_eq!(d.seen.lock().unwrap().len(), 10);
    gw.shutdown().await;
}

// ================================================================ 2. hop-by-hop

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_nominated_fields_cannot_drop_auth_headers() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| Decision::Forward {
        upstream: Arc::new(url::Url::parse(&format!("http://{up}")).unwrap()),
        preserve_host: false,
        strip_path: None,
        path: None,
        remove_headers: vec![hn("authorization"), hn("x-user-email")],
        set_headers: vec![
            (hn("x-user-id"), hv("alice")),
            (hn("x-secret"), hv("from-auth")),
            (hn("x-multi"), hv("1")),
            (hn("x-multi"), hv("2")),
        ],
    });
    let gw = start(d.clone(), config(dead_addr()));

    let r = get_once(
        &gw,
        "/",
        "Connection: keep-alive, X-User-Id, X-Secret, X-Client-Only\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\
         Upgrade: h2c\r\nX-User-Id: mallory\r\nX_User_Id: mallory\r\nX-Secret: client\r\n\
         X-Client-Only: 1\r\n\
         Authorization: Bearer t\r\nX-User-Email: m@evil\r\nCookie: a=b\r\nAccept: */*\r\n",
    )
    .await;
    let e = r.echoed();
    // Decision headers survive although the client nominated them.
    assert_eq!(e.one("x-user-id").as_deref(), Some("alice"));
    assert_eq!(e.one("x-secret").as_deref(), Some("from-auth"));
    assert_eq!(e.all("x-multi"), vec!["1", "2"]);
    // Nominated-only and hop-by-hop fields are gone; remove_headers applied; others kept.
    for gone in [
        "x_user_id",
        "x-client-only",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
        "authorization",
        "x-user-email",
    ] {
        assert_eq!(e.one(gone), None, "{gone} should not reach the upstream");
    }
    assert_eq!(e.one("connection"), None);
    assert_eq!(e.one("cookie").as_deref(), Some("a=b"));
    assert_eq!(e.one("accept").as_deref(), Some("*/*"));

    // The decider saw neither the nominated fields nor hop-by-hop ones.
    let seen = d.seen.lock().unwrap()[0].clone();
    for gone in [
        "x-user-id",
        "x-secret",
        "x-client-only",
        "te",
        "keep-alive",
        "connection",
    ] {
        assert!(!seen.headers.contains_key(gone), "decider saw {gone}");
    }
    assert!(seen.headers.contains_key("authorization"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_overrides_never_reach_the_upstream() {
    let echo = echo_server().await;
    let d = decider(move |_| forward(echo.addr));
    let gw = start(d.clone(), config(dead_addr()));
    let r = get_once(
        &gw,
        "/x",
        "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: PUT\r\n\
         X-Method-Override: PATCH\r\nX_HTTP_Method_Override: DELETE\r\n",
    )
    .await;
    let e = r.echoed();
    assert_eq!(e.0["method"], "GET");
    for gone in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x_http_method_override",
    ] {
        assert_eq!(e.one(gone), None, "{gone} reached the upstream");
    }
    let seen = d.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.method, http::Method::GET);
    assert!(!seen.headers.contains_key("x-http-method-override"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused() {
    let echo = echo_server().await;
    let d = decider(move |_| forward(echo.addr));
    let mut c = config(dead_addr());
    c.max_header_bytes = 8 * 1024;
    let gw = start(d.clone(), c);

    // Just under the budget passes.
    let fits = format!("X-Big: {}\r\n", "a".repeat(6 * 1024));
    assert_eq!(get_once(&gw, "/ok", &fits).await.status, 200);

    // One big field, a long target, or many small fields over the budget: 431, decider not asked.
    let big = format!("X-Big: {}\r\n", "a".repeat(9 * 1024));
    let r = get_once(&gw, "/big", &big).await;
    assert_eq!(r.status, 431, "{}", String::from_utf8_lossy(&r.body));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"]["code"], 431);
    let long = format!("/{}", "p".repeat(9 * 1024));
    assert_eq!(get_once(&gw, &long, "").await.status, 431);
    let many: String = (0..200)
        .map(|i| format!("X-F{i}: {}\r\n", "v".repeat(40)))
        .collect();
    assert_eq!(get_once(&gw, "/many", &many).await.status, 431);
    assert_eq!(
        d.seen.lock().unwrap().len(),
        1,
        "only the small request was decided"
    );

    // More fields than the parser takes (256): refused before anything is decided.
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    let flood: String = (0..300).map(|i| format!("X-{i}: 1\r\n")).collect();
    s.write_all(&get("/flood", &flood)).await.unwrap();
    let mut answer = Vec::new();
    let _ = guard("flood answer", s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    assert_eq!(d.seen.lock().unwrap().len(), 1);
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_hop_by_hop_fields_are_dropped() {
    let up = raw_upstream(|mut s| async move {
        read_head(&mut s).await;
        s.get_mut()
            .write_all(
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\n\
                  X-Internal: secret\r\nX-App: 1\r\nContent-Length: 2\r\n\r\nok",
            )
            .await
            .unwrap();
    })
    .await;
    let d = decider(move |_| forward(up));
    let gw = start(d, config(dead_addr()));
    let r = get_once(&gw, "/", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    assert_eq!(r.header("x-app"), Some("1"));
    assert_eq!(r.header("x-internal"), None);
    assert_eq!(r.header("keep-alive"), None);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_naming_protected_fields_is_refused() {
    let d = decider(|_| forward(dead_addr()));
    let gw = start(d.clone(), config(dead_addr()));
    for bad in ["X-Forwarded-For", "host", "\"x-user-id\""] {
        let r = get_once(&gw, "/", &format!("Connection: {bad}\r\n")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["error"]["code"], 400);
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
    }
    assert!(d.seen.lock().unwrap().is_empty(), "decider not consulted");
    gw.shutdown().await;
}

// ================================================================ 3. forwarding headers

const SPOOFED: &str = "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\
    X_Forwarded_For: 6.6.6.6\r\n\
    X-Forwarded-Host: login.example\r\nX-Forwarded-User: admin\r\nForwarded: for=6.6.6.6\r\n\
    X-Request-Id: client-chosen\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_untrusted_peers_are_replaced() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let gw = start(d.clone(), config(dead_addr()));

    let e = get_once(&gw, "/", SPOOFED).await.echoed();
    assert_eq!(e.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(e.one("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(e.one("x-forwarded-host").as_deref(), Some("app.example"));
    assert_eq!(e.one("x-forwarded-user"), None);
    assert_eq!(e.one("x_forwarded_for"), None);
    assert_eq!(e.one("forwarded"), None);
    let rid = e.one("x-request-id").unwrap();
    assert_ne!(rid, "client-chosen");

    let seen = d.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.client_ip.to_string(), "127.0.0.1");
    assert_eq!(seen.scheme, "http");
    assert_eq!(seen.host, "app.example");
    assert_eq!(seen.request_id, rid);
    assert!(!seen.headers.contains_key("x-forwarded-user"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_trusted_peers_are_kept() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let mut c = config(dead_addr());
    c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let gw = start(d.clone(), c);

    let e = get_once(&gw, "/", SPOOFED).await.echoed();
    assert_eq!(
        e.one("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(e.one("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(e.one("x-forwarded-host").as_deref(), Some("login.example"));
    assert_eq!(e.one("x-forwarded-user").as_deref(), Some("admin"));
    assert_eq!(e.one("x_forwarded_for").as_deref(), Some("6.6.6.6"));
    assert_eq!(e.one("x-request-id").as_deref(), Some("client-chosen"));

    let seen = d.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.client_ip.to_string(), "203.0.113.9");
    assert_eq!(seen.scheme, "https");
    assert_eq!(seen.host, "login.example");
    assert_eq!(seen.request_id, "client-chosen");
    gw.shutdown().await;
}

// ================================================================ 4. host and path

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preserve_host_and_strip_path() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |req| Decision::Forward {
        upstream: Arc::new(url::Url::parse(&format!("http://{up}/base/")).unwrap()),
        preserve_host: req.path.starts_with("/keep"),
        strip_path: Some("/api".into()),
        path: req
            .path
            .starts_with("/api/a/..")
            .then(|| "/api/b".to_owned()),
        remove_headers: vec![],
        set_headers: vec![],
    });
    let gw = start(d, config(dead_addr()));

    let e = get_once(&gw, "/api/users/%2F1?x=1&y=%20", "")
        .await
        .echoed();
    assert_eq!(e.target(), "/base/users/%2F1?x=1&y=%20");
    assert_eq!(e.one("host").as_deref(), Some(up.to_string().as_str()));

    // The decider's path (e.g. normalised) replaces the received one; the query stays.
    let e = get_once(&gw, "/api/a/../b?z=1", "").await.echoed();
    assert_eq!(e.target(), "/base/b?z=1");

    let e = get_once(&gw, "/keep/a", "").await.echoed();
    assert_eq!(e.target(), "/base/keep/a");
    assert_eq!(e.one("host").as_deref(), Some("app.example"));

    // Absolute-form target: its authority is the host.
    let mut c = Client::connect(gw.local_addr()).await;
    let r = c
        .request(b"GET http://other.example/keep/z?q HTTP/1.1\r\nHost: other.example\r\n\r\n")
        .await;
    let e = r.echoed();
    assert_eq!(e.target(), "/base/keep/z?q");
    assert_eq!(e.one("host").as_deref(), Some("other.example"));
    gw.shutdown().await;
}

// ================================================================ 5. failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upstream_is_a_quick_502_envelope() {
    let down = dead_addr();
    let d = decider(move |_| forward(down));
    let gw = start(d, config(dead_addr()));
    let t0 = Instant::now();
    let r = get_once(&gw, "/", "").await;
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(r.status, 502);
    let j = r.json();
    assert_eq!(j["error"]["code"], 502);
    assert_eq!(j["error"]["status"], "Bad Gateway");
    assert_eq!(j["error"]["reason"], "The upstream refused the connection.");
    assert!(j["error"]["message"].is_string());
    assert!(
        !String::from_utf8_lossy(&r.body).contains("127.0.0.1"),
        "no internal addresses"
    );
    assert!(r.header("x-request-id").is_some());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstream_hits_the_read_timeout() {
    let (held_tx, mut held_rx) = mpsc::unbounded_channel::<TcpStream>();
    let up = raw_upstream(move |mut s| {
        let held = held_tx.clone();
        async move {
            read_head(&mut s).await;
            let _ = held.send(s.into_inner()); // keep it open, never answer
        }
    })
    .await;
    let d = decider(move |_| forward(up));
    let mut c = config(dead_addr());
    c.upstream_timeouts.read = Duration::from_millis(300);
    let gw = start(d, c);
    let t0 = Instant::now();
    let r = get_once(&gw, "/", "").await;
    assert_eq!(r.status, 504);
    assert_eq!(
        r.json()["error"]["reason"],
        "The upstream did not respond in time."
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert!(held_rx.recv().await.is_some());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_and_tls_upstreams_are_502() {
    let d = decider(|req| match req.path.as_str() {
        "/tls" => forward_url("https://127.0.0.1:1/"),
        "/ftp" => forward_url("ftp://127.0.0.1/"),
        _ => forward_url("http://no-such-host.invalid:8080/"),
    });
    let gw = start(d, config(dead_addr()));
    let r = get_once(&gw, "/", "").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["error"]["reason"],
        "The upstream host name could not be resolved."
    );
    let r = get_once(&gw, "/ftp", "").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["error"]["reason"],
        "The upstream URL cannot be used."
    );
    if !UPSTREAM_TLS {
        let r = get_once(&gw, "/tls", "").await;
        assert_eq!(r.status, 502);
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaccepting_upstream_hits_the_connect_timeout() {
    // Backlog 0 plus one unaccepted connection fills the accept queue: Linux then drops SYNs,
    // so the gateway's connect() hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(0).unwrap();
    let up = full.local_addr().unwrap();
    let _filler = TcpStream::connect(up).await.unwrap();
    let d = decider(move |_| forward(up));
    let mut c = config(dead_addr());
    c.upstream_timeouts.connect = Duration::from_millis(300);
    let gw = start(d, c);
    let t0 = Instant::now();
    let r = get_once(&gw, "/", "").await;
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["error"]["reason"],
        "The upstream did not accept the connection in time."
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    drop(full);
    gw.shutdown().await;
}

#[tokio::test]
async fn peers_carry_the_configured_timeouts() {
    let timeouts = UpstreamTimeouts {
        connect: Duration::from_millis(123),
        read: Duration::from_millis(456),
        write: None,
        pool_idle: Duration::from_secs(7),
    };
    let edge = proxy::Edge {
        decider: decider(|_| Decision::Identity),
        identity_addr: "127.0.0.1:4433".parse().unwrap(),
        trusted: vec![],
        timeouts,
        ids: headers::RequestIds::new(),
        resolver: resolve::Resolver::default(),
        max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        identity_secret: None,
    };
    let peer = proxy::peer_for(&edge, "127.0.0.1:80".parse().unwrap(), false, String::new());
    assert_eq!(peer.options.connection_timeout, Some(timeouts.connect));
    assert_eq!(peer.options.read_timeout, Some(timeouts.read));
    assert_eq!(peer.options.write_timeout, None);
    assert_eq!(peer.options.idle_timeout, Some(timeouts.pool_idle));
}

// ================================================================ 6. streaming

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through() {
    let up = raw_upstream(|mut s| async move {
        let head = read_head(&mut s).await;
        assert_eq!(head_value(&head, "upgrade").as_deref(), Some("websocket"));
        assert!(head_value(&head, "connection").unwrap().eq_ignore_ascii_case("upgrade"));
        assert!(head_value(&head, "sec-websocket-key").is_some());
        assert_eq!(head_value(&head, "x-user-id").as_deref(), Some("alice"));
        s.get_mut()
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            )
            .await
            .unwrap();
        // Echo raw bytes until the client goes away.
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if s.get_mut().write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    let d = decider(move |_| Decision::Forward {
        upstream: Arc::new(url::Url::parse(&format!("http://{up}")).unwrap()),
        preserve_host: true,
        strip_path: None,
        path: None,
        remove_headers: vec![],
        set_headers: vec![(hn("x-user-id"), hv("alice"))],
    });
    let gw = start(d, config(dead_addr()));

    // KNOWN ISSUE: once, under heavy CI load, the echo read hit an early EOF. Until that is understood, a
    // connection that drops is retried (at most twice more); a WebSocket path that never works still fails.
    let mut attempts = 0;
    'attempt: loop {
        attempts += 1;
        let mut c = Client::connect(gw.local_addr()).await;
        c.send(
            b"GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await;
        let (status, headers) = guard("101", c.head()).await;
        assert_eq!(status, 101);
        assert!(headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("upgrade") && v == "websocket"));
        for msg in [&b"hello"[..], b"\x81\x05world", &[7u8; 10_000]] {
            c.send(msg).await;
            let mut back = vec![0; msg.len()];
            match guard("echo", c.s.read_exact(&mut back)).await {
                Ok(_) => assert_eq!(back, msg),
                Err(e) if attempts < 3 => {
                    eprintln!("websocket attempt {attempts} dropped: {e}");
                    continue 'attempt;
                }
                Err(e) => panic!("websocket echo failed {attempts} times: {e}"),
            }
        }
        break;
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_chunks_stream_before_the_upstream_finishes() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let up = raw_upstream(move |mut s| {
        let release = release.lock().unwrap().take();
        async move {
            read_head(&mut s).await;
            let w = s.get_mut();
            w.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                  Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await
            .unwrap();
            w.write_all(b"d\r\ndata: first\n\n\r\n").await.unwrap();
            w.flush().await.unwrap();
            release.unwrap().await.unwrap();
            w.write_all(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
                .await
                .unwrap();
        }
    })
    .await;
    let d = decider(move |_| forward(up));
    let gw = start(d, config(dead_addr()));

    let mut c = Client::connect(gw.local_addr()).await;
    c.send(&get("/events", "Accept: text/event-stream\r\n"))
        .await;
    let (status, headers) = guard("head", c.head()).await;
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "text/event-stream"));
    // The first event arrives while the upstream is still holding the stream open.
    assert_eq!(guard("first", c.chunk()).await.unwrap(), b"data: first\n\n");
    release_tx.send(()).unwrap();
    let mut rest = vec![];
    while let Some(chunk) = guard("rest", c.chunk()).await {
        rest.extend(chunk);
    }
    assert_eq!(rest, b"data: second\n\n");
    gw.shutdown().await;
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_arrives_intact() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let gw = start(d, config(dead_addr()));
    let body = payload(20 << 20);

    let mut c = Client::connect(gw.local_addr()).await;
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: app.example\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes()).await;
    guard("upload", c.send(&body)).await;
    let e = guard("response", c.response()).await.echoed();
    assert_eq!(e.0["body_len"], body.len());
    assert_eq!(e.0["body_fnv"], fnv(&body).to_string());

    // Chunked upload of the same body.
    let mut c = Client::connect(gw.local_addr()).await;
    c.send(b"POST /upload HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    for part in body.chunks(1 << 20) {
        c.send(format!("{:x}\r\n", part.len()).as_bytes()).await;
        c.send(part).await;
        c.send(b"\r\n").await;
    }
    c.send(b"0\r\n\r\n").await;
    let e = guard("response", c.response()).await.echoed();
    assert_eq!(e.0["body_len"], body.len());
    assert_eq!(e.0["body_fnv"], fnv(&body).to_string());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_is_streamed_not_buffered() {
    const TOTAL: usize = 20 << 20;
    const FIRST: usize = 2 << 20;
    // The upstream reports once it has 1 MiB of body, while the client still holds back 18 MiB.
    let (got_tx, got_rx) = oneshot::channel::<()>();
    let got = Arc::new(Mutex::new(Some(got_tx)));
    let up = raw_upstream(move |mut s| {
        let got = got.lock().unwrap().take();
        async move {
            read_head(&mut s).await;
            let mut buf = vec![0u8; 64 << 10];
            let mut n = 0;
            let mut got = got;
            while n < TOTAL {
                let r = s.read(&mut buf).await.unwrap();
                assert!(r > 0, "EOF after {n}");
                n += r;
                if n >= 1 << 20 {
                    if let Some(tx) = got.take() {
                        tx.send(()).unwrap();
                    }
                }
            }
            s.get_mut()
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{n}",
                        n.to_string().len()
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
        }
    })
    .await;
    let d = decider(move |_| forward(up));
    let gw = start(d, config(dead_addr()));

    let body = payload(TOTAL);
    let mut c = Client::connect(gw.local_addr()).await;
    c.send(format!("PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: {TOTAL}\r\n\r\n").as_bytes())
        .await;
    c.send(&body[..FIRST]).await;
    guard(
        "upstream saw the first MiB before the client finished",
        got_rx,
    )
    .await
    .unwrap();
    c.send(&body[FIRST..]).await;
    let r = guard("response", c.response()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, TOTAL.to_string().as_bytes());
    gw.shutdown().await;
}

// ================================================================ 7. identity

async fn identity_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, axum::Router::new().fallback(echo))
            .await
            .unwrap()
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_decision_proxies_to_the_identity_module() {
    let identity = identity_server().await;
    let d = decider(|req| {
        if is_reserved_path(&req.path) {
            Decision::Identity
        } else {
            forward(dead_addr())
        }
    });
    let gw = start(d, config(identity));

    let r = get_once(
        &gw,
        "/self-service/login/browser/cookies?return_to=%2Fapp&refresh=true",
        "Cookie: csrf=1; ory_session=abc\r\nAccept: text/html\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.all("set-cookie"),
        vec![
            "csrf=abc; Path=/; HttpOnly",
            "session=xyz; Path=/; HttpOnly"
        ]
    );
    let e = Echoed::parse(&r.body);
    assert_eq!(
        e.target(),
        "/self-service/login/browser/cookies?return_to=%2Fapp&refresh=true"
    );
    assert_eq!(e.one("cookie").as_deref(), Some("csrf=1; ory_session=abc"));
    assert_eq!(e.one("host").as_deref(), Some("app.example"));
    assert_eq!(e.one("accept").as_deref(), Some("text/html"));
    assert_eq!(e.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(e.one("x-forwarded-host").as_deref(), Some("app.example"));
    assert!(e.one("x-request-id").is_some());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_module_gets_the_client_address_and_apps_never_do() {
    let identity = identity_server().await;
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |req| {
        if is_reserved_path(&req.path) {
            Decision::Identity
        } else {
            forward(up)
        }
    });
    let mut c = config(identity);
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let mut secret = hv("s3cret");
    secret.set_sensitive(true);
    c.identity_secret = Some(secret);
    let gw = start(d, c);
    let forged = "X-Forwarded-For: 6.6.6.6, 198.51.100.23\r\nTrue-Client-IP: 6.6.6.1\r\n\
        X-Portcullis-Client-Ip: 6.6.6.2\r\nX_Portcullis_Client_Ip: 6.6.6.3\r\n\
        X-Portcullis-Edge: guess\r\nx_portcullis_edge: guess\r\n";

    let e = get_once(&gw, "/self-service/login/api", forged)
        .await
        .echoed();
    assert_eq!(
        e.one("x-portcullis-client-ip").as_deref(),
        Some("198.51.100.23"),
        "the right-most untrusted hop, set by the edge alone"
    );
    assert_eq!(e.one("x-portcullis-edge").as_deref(), Some("s3cret"));
    assert_eq!(e.one("x_portcullis_client_ip"), None);
    assert_eq!(e.one("x_portcullis_edge"), None);

    let e = get_once(&gw, "/app", forged).await.echoed();
    for name in [
        "x-portcullis-client-ip",
        "x_portcullis_client_ip",
        "x-portcullis-edge",
        "x_portcullis_edge",
    ] {
        assert_eq!(e.one(name), None, "{name} reached an app");
    }
    // From a trusted proxy, its client-address fields stay.
    assert_eq!(e.one("true-client-ip").as_deref(), Some("6.6.6.1"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_and_path_override_fields_from_untrusted_peers_are_removed() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let gw = start(d.clone(), config(dead_addr()));
    let sent = [
        "X-Real-IP",
        "True-Client-IP",
        "Client-IP",
        "CF-Connecting-IP",
        "X-Client-IP",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X_Real_IP",
        "True_Client_IP",
        "CF_Connecting_IP",
        "X_Original_URL",
        "X_Rewrite_URL",
    ];
    let extra: String = sent.iter().map(|n| format!("{n}: 6.6.6.6\r\n")).collect();
    let e = get_once(&gw, "/", &extra).await.echoed();
    for name in sent {
        assert_eq!(e.one(name), None, "{name} reached the app");
    }
    let seen = d.seen.lock().unwrap()[0].clone();
    assert!(!seen.headers.contains_key("x-real-ip"));
    assert_eq!(seen.client_ip.to_string(), "127.0.0.1");
    gw.shutdown().await;
}

// ================================================================ 8. respond

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_decision_writes_the_answer_and_keeps_the_connection() {
    let d = decider(|req| match req.path.as_str() {
        "/login" => Decision::Respond {
            status: StatusCode::FOUND,
            headers: vec![
                (http::header::LOCATION, hv("/ui/login?return_to=%2Fapp")),
                (http::header::SET_COOKIE, hv("a=1")),
                (http::header::SET_COOKIE, hv("b=2")),
                (http::header::CONTENT_LENGTH, hv("999")),
            ],
            body: Bytes::new(),
        },
        _ => Decision::Respond {
            status: StatusCode::UNAUTHORIZED,
            headers: vec![(http::header::CONTENT_TYPE, hv("application/json"))],
            body: error_body(StatusCode::UNAUTHORIZED, "m", "no session"),
        },
    });
    let gw = start(d, config(dead_addr()));
    let mut c = Client::connect(gw.local_addr()).await;
    let r = c.request(&get("/login", "")).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/ui/login?return_to=%2Fapp"));
    assert_eq!(r.all("set-cookie"), vec!["a=1", "b=2"]);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.header("x-request-id").is_some());

    // Same connection, with a request body the gateway never reads.
    let r = c
        .request(b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"]["reason"], "no session");

    let r = c.request(&get("/login", "")).await;
    assert_eq!(r.status, 302, "connection still usable");

    // A large unread body is not drained: the answer closes the connection.
    let big = format!(
        "POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    );
    let r = c.request(big.as_bytes()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("connection"), Some("close"));
    gw.shutdown().await;
}

// ================================================================ 9. shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_with_an_idle_keepalive_client() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let mut cfg = config(dead_addr());
    cfg.shutdown_timeout = Duration::from_secs(5);
    let gw = start(d, cfg);
    let addr = gw.local_addr();

    let mut idle = Client::connect(addr).await;
    assert_eq!(idle.request(&get("/", "")).await.status, 200);
    let mut silent = Client::connect(addr).await; // never sends a byte

    let t0 = Instant::now();
    guard("shutdown", gw.shutdown()).await;
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert!(idle.closed().await);
    assert!(silent.closed().await);
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    let (arrived_tx, mut arrived_rx) = mpsc::unbounded_channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let up = raw_upstream(move |mut s| {
        let (arrived, release) = (arrived_tx.clone(), release.lock().unwrap().take());
        async move {
            read_head(&mut s).await;
            arrived.send(()).unwrap();
            release.unwrap().await.unwrap();
            s.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
                .await
                .unwrap();
        }
    })
    .await;
    let d = decider(move |_| forward(up));
    let gw = start(d, config(dead_addr()));
    let addr = gw.local_addr();

    let mut c = Client::connect(addr).await;
    c.send(&get("/slow", "")).await;
    guard("request reached upstream", arrived_rx.recv())
        .await
        .unwrap();

    let shutdown = tokio::spawn(gw.shutdown());
    // New connections are refused once the listener is gone.
    guard("listener closes", async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(!shutdown.is_finished(), "waits for the in-flight request");

    release_tx.send(()).unwrap();
    let r = guard("response", c.response()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"done");
    assert_eq!(r.header("connection"), Some("close"));
    guard("shutdown", shutdown).await.unwrap();
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_stuck_requests_at_the_timeout() {
    let (arrived_tx, mut arrived_rx) = mpsc::unbounded_channel::<TcpStream>();
    let up = raw_upstream(move |mut s| {
        let arrived = arrived_tx.clone();
        async move {
            read_head(&mut s).await;
            arrived.send(s.into_inner()).unwrap(); // never answers
        }
    })
    .await;
    let d = decider(move |_| forward(up));
    let mut cfg = config(dead_addr());
    cfg.shutdown_timeout = Duration::from_millis(300);
    let gw = start(d, cfg);

    let mut c = Client::connect(gw.local_addr()).await;
    c.send(&get("/stuck", "")).await;
    let _held = guard("request reached upstream", arrived_rx.recv())
        .await
        .unwrap();
    let t0 = Instant::now();
    guard("shutdown", gw.shutdown()).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_a_shared_runtime() {
    let echo = echo_server().await;
    let up = echo.addr;
    let d = decider(move |_| forward(up));
    let mut cfg = config(dead_addr());
    cfg.runtime = GatewayRuntime::Shared(tokio::runtime::Handle::current());
    let gw = start(d, cfg);
    let mut idle = Client::connect(gw.local_addr()).await;
    assert_eq!(idle.request(&get("/", "")).await.status, 200);
    guard("shutdown", gw.shutdown()).await;
    assert!(idle.closed().await);
}

#[test]
fn starts_outside_a_runtime() {
    let d = decider(|_| Decision::Identity);
    let gw = start(d, config(dead_addr()));
    assert_ne!(gw.local_addr().port(), 0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(gw.shutdown());
}
