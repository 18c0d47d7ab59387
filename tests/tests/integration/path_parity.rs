//! The edge and the decisions API judge every path alike: one table of raw targets, each sent to the edge and to
//! the decisions API in the three shapes proxies use (Envoy's request line, Traefik's X-Forwarded-Uri, nginx's
//! X-Original-URL), over raw TCP so that no client library cleans the target first. Both sides go through
//! `rules::normalize_path`; the table pins trailing slashes, repeated slashes, dot segments (also encoded),
//! encoded slashes, empty paths and bare `?`.

use serde_json::json;
use tests::hook_server::HookServer;
use tests::{Backend, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rules(upstream: &str) -> String {
    let rule = |id: &str, url: &str, authenticator: &str, authorizer: &str| {
        json!({
            "id": id,
            "match": {"url": url, "methods": ["GET"]},
            "upstream": {"url": upstream},
            "authenticators": [{"handler": authenticator}],
            "authorizer": {"handler": authorizer},
            "mutators": [{"handler": "noop"}]
        })
    };
    json!([
        rule("home", "http://app.test/", "anonymous", "allow"),
        rule("docs", "http://app.test/docs", "anonymous", "allow"),
        rule(
            "docs-dir",
            "http://app.test/docs/<.*>",
            "cookie_session",
            "allow"
        ),
        rule("admin", "http://app.test/admin", "anonymous", "deny"),
    ])
    .to_string()
}

/// Sends `GET target` with `headers` to `addr` and returns the status.
async fn status(addr: &str, target: &str, headers: &[(&str, String)]) -> u16 {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: app.test\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("no answer")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{target}: not an HTTP answer: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_and_decisions_normalise_paths_alike() {
    let app = HookServer::start().await;
    let env = TestEnv::builder(Backend::Sqlite)
        .file("rules.json", &rules(&app.url))
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let edge = env
        .proxy
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let api = env.api.trim_start_matches("http://").trim_end_matches('/');

    // (raw target at the edge, what both must answer). 200: home or docs (open), 401: docs-dir (needs a
    // session), 403: admin (denied), 404: no rule, 400: refused by the normaliser.
    let table: &[(&str, u16)] = &[
        ("/", 200),
        ("/?", 200),
        ("/?x=1", 200),
        ("/docs", 200),
        ("/docs?", 200),
        ("/docs?a=/docs/", 200),
        ("/docs/", 401),
        ("/docs/?", 401),
        ("/docs//", 401),
        ("//docs", 200),
        ("//docs/", 401),
        ("/docs/a", 401),
        ("/docs/./", 401),
        ("/./docs", 200),
        ("/x/../docs", 200),
        ("/x/%2e%2e/docs", 200),
        ("/x/%2E%2E/docs/", 401),
        ("/docs/..", 200),
        ("/docs/%2e%2e/", 200),
        ("/%64ocs", 200),
        ("/docs%2F", 404),
        ("/docs%2Fa", 404),
        ("/docs/%2F", 401),
        ("/docs/..%2Fadmin", 400),
        ("/admin", 403),
        ("/admin/", 404),
        ("//admin", 403),
        ("/admin/.", 404),
        ("/ADMIN", 404),
        ("/docs/%00", 400),
    ];
    for (target, want) in table {
        let at_edge = status(edge, target, &[]).await;
        assert_eq!(at_edge, *want, "edge: {target}");
        // Envoy: the prefix and the original target, Host as sent.
        let envoy = status(api, &format!("/decisions{target}"), &[]).await;
        assert_eq!(envoy, at_edge, "decisions (request line): {target}");
        // Traefik: the request URI in X-Forwarded-Uri.
        let traefik = status(
            api,
            "/decisions",
            &[
                ("X-Forwarded-Method", "GET".into()),
                ("X-Forwarded-Proto", "http".into()),
                ("X-Forwarded-Host", "app.test".into()),
                ("X-Forwarded-Uri", (*target).into()),
            ],
        )
        .await;
        assert_eq!(traefik, at_edge, "decisions (X-Forwarded-Uri): {target}");
        // nginx: $scheme://$http_host$request_uri.
        let nginx = status(
            api,
            "/decisions",
            &[
                ("X-Original-URL", format!("http://app.test{target}")),
                ("X-Original-Method", "GET".into()),
            ],
        )
        .await;
        assert_eq!(nginx, at_edge, "decisions (X-Original-URL): {target}");
    }
    // The empty path: `/decisions` alone, and an X-Original-URL without a path, are the edge's `/`.
    assert_eq!(status(api, "/decisions", &[]).await, 200);
    assert_eq!(status(api, "/decisions?", &[]).await, 200);
    let nginx = status(
        api,
        "/decisions",
        &[("X-Original-URL", "http://app.test".into())],
    )
    .await;
    assert_eq!(nginx, 200);
}
