//! The edge's whole per-request path without the client socket: `cargo bench -p tests --bench edge_request`.
//!
//! A keep-alive client talks HTTP/1.1 to the real gateway of a running product over an in-memory pipe
//! (`Gateway::connect_in_memory`): Pingora parses the request, the gateway sanitises it, the decider matches the rule
//! and runs the pipeline, the request goes to the upstream over a pooled loopback connection (Pingora only connects
//! over sockets; the upstream below answers `200 hello` without parsing more than the head), the response comes back,
//! and logging and metrics run. What `tests/bench/run.sh` adds on top of this is the client's TCP and the load
//! generator; what `edge_path` leaves out of it is everything but `Access::evaluate`.
//!
//! Scenarios: `anonymous_noop` (S4), `cookie_session_header` (S5), `whoami` (S8, answered at the edge) and
//! `no_cookie_401` (the pipeline denies; no upstream hop).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tests::TestEnv;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn rules(upstream: &str) -> String {
    json!([
        {
            "id": "cookie",
            "upstream": {"url": upstream},
            "match": {"url": "http://app.test/cookie/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "cookie_session"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        },
        {
            "id": "anonymous",
            "upstream": {"url": upstream},
            "match": {"url": "http://app.test/open/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "noop"}]
        }
    ])
    .to_string()
}

/// An upstream that answers every request head on a keep-alive connection with `200 hello`.
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(4096);
                loop {
                    while find(&buf, b"\r\n\r\n").is_none() {
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = find(&buf, b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n";
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends one request and reads its whole response (head plus `Content-Length` body); returns the status.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> u16 {
    conn.write_all(request).await.unwrap();
    buf.clear();
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .unwrap()
        .to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    status
}

fn request(path: &str, cookie: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n"
    );
    if let Some(c) = cookie {
        r.push_str(&format!("Cookie: {c}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

fn edge_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (env, cookie) = rt.block_on(async {
        let upstream = upstream().await;
        TestEnv::with_rules_and_session(&rules(&upstream)).await
    });
    let gateway = env
        .running
        .as_ref()
        .unwrap()
        .gateway()
        .expect("the edge proxy runs");

    let scenarios = [
        ("anonymous_noop", request("/open/page", None), 200),
        (
            "cookie_session_header",
            request("/cookie/dashboard", Some(&cookie)),
            200,
        ),
        ("whoami", request("/sessions/whoami", Some(&cookie)), 200),
        ("no_cookie_401", request("/cookie/dashboard", None), 401),
    ];
    let mut g = c.benchmark_group("edge_request");
    for (name, req, expected) in scenarios {
        let mut conn = gateway.connect_in_memory();
        let mut buf = Vec::with_capacity(16 * 1024);
        // The first answer proves the scenario does what it is named for (and warms the upstream pool).
        let status = rt.block_on(exchange(&mut conn, &req, &mut buf));
        assert_eq!(
            status,
            expected,
            "{name}: {}",
            String::from_utf8_lossy(&buf)
        );
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(exchange(&mut conn, &req, &mut buf)))
        });
    }
    g.finish();
    drop(env);
}

criterion_group!(benches, edge_request);
criterion_main!(benches);
