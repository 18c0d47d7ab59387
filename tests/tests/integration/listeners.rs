//! The axum listeners (public, admin, api) against slow and greedy clients, and what their answers let caches
//! keep: a half-sent head is closed after `timeout.read`, a silent connection after `timeout.idle`, connections
//! beyond `max_connections` wait, and personal answers carry `Cache-Control: private, no-store`.

use std::time::Duration;
use tests::{Backend, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `host:port` of a listener's base URL.
fn authority(base: &str) -> String {
    let url = url::Url::parse(base).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

/// Reads until the server closes the connection, returning what it sent; fails after `guard`.
async fn read_to_close(s: &mut TcpStream, guard: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(guard, s.read_to_end(&mut out))
        .await
        .expect("the server should have closed the connection")
        .unwrap_or_default();
    out
}

/// Reads one whole response head (and a `Content-Length` body) from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

async fn half_sent_heads_and_silent_connections_are_closed(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("serve.public.timeout.read=300ms")
        .set("serve.admin.timeout.read=300ms")
        .set("serve.api.timeout.read=300ms")
        .set("serve.public.timeout.idle=400ms")
        .start()
        .await;
    for (base, alive) in [
        (&env.public, "/health/alive"),
        (&env.admin, "/admin/health/alive"),
        (&env.api, "/health/alive"),
    ] {
        // Slowloris: a head that never ends.
        let mut s = TcpStream::connect(authority(base)).await.unwrap();
        s.write_all(format!("GET {alive} HTTP/1.1\r\nHost: x\r\nX-Slow: ").as_bytes())
            .await
            .unwrap();
        let answer = read_to_close(&mut s, Duration::from_secs(20)).await;
        assert!(
            !String::from_utf8_lossy(&answer).contains("200 OK"),
            "{base}: a half-sent request is never served"
        );
        // A kept-alive connection that sends nothing more is closed too.
        let mut s = TcpStream::connect(authority(base)).await.unwrap();
        s.write_all(format!("GET {alive} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let first = read_response(&mut s).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{base}: {first}");
        read_to_close(&mut s, Duration::from_secs(20)).await;
    }
    // A connection that sends nothing at all is closed after `timeout.idle` at the latest.
    let mut s = TcpStream::connect(authority(&env.public)).await.unwrap();
    read_to_close(&mut s, Duration::from_secs(20)).await;
}

async fn connections_beyond_the_limit_wait_for_a_free_slot(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("serve.public.max_connections=2")
        .start()
        .await;
    let request = b"GET /health/alive HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(authority(&env.public)).await.unwrap();
        s.write_all(request).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // The kernel accepts the third connection, but the server does not serve it while two are open.
    let mut third = TcpStream::connect(authority(&env.public)).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond max_connections");
    drop(held.pop());
    let answer = tokio::time::timeout(Duration::from_secs(20), read_response(&mut third))
        .await
        .expect("served once a slot is free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn personal_answers_are_not_cached(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let identity = env
        .create_identity(serde_json::json!({
            "schema_id": "default",
            "traits": {"email": "nocache@example.com"}
        }))
        .await;
    let id = identity["id"].as_str().unwrap();
    let token = env.login(id).await;
    let check = |res: reqwest::Response, what: &str| {
        assert_eq!(
            res.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("private, no-store"),
            "{what}: {:?}",
            res.headers()
        );
    };
    check(env.whoami(&token).await, "whoami on the public listener");
    let res = env
        .http
        .get(format!("{}sessions/whoami", env.proxy))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check(res, "whoami at the edge");
    let res = env
        .http
        .get(env.public_url("self-service/login/api"))
        .send()
        .await
        .unwrap();
    check(res, "a login flow");
    let res = env
        .http
        .get(env.admin_url(&format!("admin/identities/{id}")))
        .send()
        .await
        .unwrap();
    check(res, "an identity");
    let res = env
        .http
        .get(env.public_url("sessions/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    check(res, "an error");
}

tests::backend_tests!(
    half_sent_heads_and_silent_connections_are_closed,
    connections_beyond_the_limit_wait_for_a_free_slot,
    personal_answers_are_not_cached,
);

/// Without config, the admin API and the decisions API listen on loopback only.
#[test]
fn admin_and_decisions_default_to_loopback() {
    let c = proxy::config::Config::default();
    assert_eq!(c.serve.admin.host, "127.0.0.1");
    assert_eq!(c.serve.api.host, "127.0.0.1");
    assert_eq!(
        c.serve.public.host, "",
        "the public API stays on every interface"
    );
    assert_eq!(c.serve.proxy.host, "", "the edge stays on every interface");
}
