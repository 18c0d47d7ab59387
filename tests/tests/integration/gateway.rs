//! The edge proxy (Pingora) end to end: rules, identity headers, spoofing and path tricks, edge whoami, the
//! identity module behind reserved paths, upstream failures, and replicas sharing Redis.

use serde_json::json;
use tests::hook_server::HookServer;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(proxy_injects_identity_and_blocks_bypasses);

fn rules(upstream: &str) -> String {
    json!([
        {
            "id": "app",
            "match": {"url": "http://<[^/]+>/app/<.*>", "methods": ["GET", "POST"]},
            "upstream": {"url": upstream},
            "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}, {"handler": "header", "config": {"preset": "oauth2_proxy"}}],
            "errors": [{"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}]
        },
        {
            "id": "open",
            "match": {"url": "http://<[^/]+>/open/<.*>", "methods": ["GET"]},
            "upstream": {"url": upstream},
            "authenticators": [{"handler": "anonymous"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "noop"}]
        }
    ])
    .to_string()
}

async fn proxy_injects_identity_and_blocks_bypasses(backend: Backend) {
    let mut upstream = HookServer::start().await;
    let env = TestEnv::builder(backend)
        .file("rules.json", &rules(&upstream.url))
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let get = |path: &str| {
        env.http
            .get(format!("{}{}", env.proxy, path.trim_start_matches('/')))
    };

    // Anonymous browsers are sent to sign in and back; API clients get 401.
    let res = get("/app/dashboard")
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("self-service/login/browser?return_to="),
        "{location}"
    );
    assert_eq!(get("/app/dashboard").send().await.unwrap().status(), 401);

    // Signed in: the upstream sees the verified identity, never the client's forgeries.
    let identity = env
        .create_identity(json!({"schema_id": "default", "traits": {"email": "proxy@example.com"},
            "verifiable_addresses": [{"value": "proxy@example.com", "via": "email", "verified": true}]}))
        .await;
    let id = identity["id"].as_str().unwrap().to_owned();
    let token = env.login(&id).await;
    let res = get("/app/dashboard?x=1")
        .header("Cookie", env.cookie_for(&token))
        .header("X-User-Id", "admin")
        .header("X-Auth-Request-Email", "boss@example.com")
        .header("X_User_Id", "admin")
        .header("Connection", "X-User-Id")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let seen = upstream.next().await;
    assert_eq!(seen.path, "/app/dashboard?x=1");
    assert_eq!(seen.header("x-user-id"), Some(id.as_str()));
    assert_eq!(seen.header("x-user-email"), Some("proxy@example.com"));
    assert_eq!(
        seen.header("x-auth-request-email"),
        Some("proxy@example.com")
    );
    assert_eq!(
        seen.headers
            .iter()
            .filter(|(k, _)| k == "x-user-id")
            .count(),
        1
    );
    assert!(
        seen.header("x_user_id").is_none(),
        "underscore aliases are dropped"
    );
    assert!(seen.header("x-forwarded-for").is_some());
    assert!(seen.header("x-request-id").is_some());

    // An anonymous rule still strips identity headers a client sends.
    let res = get("/open/page")
        .header("X-User-Id", "admin")
        .header("Remote-User", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = upstream.next().await;
    assert!(
        seen.header("x-user-id").is_none() && seen.header("remote-user").is_none(),
        "{:?}",
        seen.headers
    );

    // Path tricks are matched, and forwarded, as the normalised path.
    for trick in [
        "/open/../app/secret",
        "/open/%2e%2e/app/secret",
        "//app/secret",
    ] {
        let res = env
            .http
            .get(format!("{}{}", env.proxy.trim_end_matches('/'), trick))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{trick}");
    }
    assert!(
        upstream.try_next().is_none(),
        "no trick reached the upstream"
    );

    // Spoofed X-Forwarded-* from an untrusted peer do not change the match or reach the upstream.
    let res = get("/open/x")
        .header("X-Forwarded-For", "1.2.3.4")
        .header("X-Forwarded-Host", "evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = upstream.next().await;
    assert_ne!(seen.header("x-forwarded-for"), Some("1.2.3.4"));
    assert!(!seen
        .header("x-forwarded-host")
        .unwrap_or("")
        .contains("evil"));

    // Edge whoami: the same bytes as the public listener's.
    let edge = get("/sessions/whoami")
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    let public = env
        .http
        .get(env.public_url("sessions/whoami"))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(edge.status(), public.status());
    assert_eq!(
        edge.headers().get("x-kratos-authenticated-identity-id"),
        public.headers().get("x-kratos-authenticated-identity-id")
    );
    assert_eq!(edge.text().await.unwrap(), public.text().await.unwrap());
    assert_eq!(get("/sessions/whoami").send().await.unwrap().status(), 401);

    // Reserved paths reach the identity module.
    let res = get("/self-service/login/browser").send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(get("/ui/style.css")
        .send()
        .await
        .unwrap()
        .status()
        .is_success());

    // No rule: 404; upstream down: 502 in the envelope, quickly.
    assert_eq!(get("/nowhere").send().await.unwrap().status(), 404);

    // Requests are counted by rule, decision and status; upstream latency is recorded for forwarded ones. The
    // gateway counts a request in its logging phase, after the client has its answer: poll (bounded) for the last.
    let expected = [
        r#"portcullis_access_requests_total{decision="allow",rule="app",source="proxy",status="200"} 1"#,
        r#"portcullis_access_requests_total{decision="deny",rule="app",source="proxy",status="302"} 1"#,
        r#"portcullis_access_requests_total{decision="deny",rule="app",source="proxy",status="401"} 4"#,
        r#"portcullis_access_requests_total{decision="allow",rule="open",source="proxy",status="200"} 2"#,
        r#"portcullis_access_requests_total{decision="deny",rule="",source="proxy",status="404"} 1"#,
        r#"portcullis_access_requests_total{decision="whoami",rule="",source="proxy",status="200"} 1"#,
        r#"portcullis_access_requests_total{decision="whoami",rule="",source="proxy",status="401"} 1"#,
        r#"portcullis_access_requests_total{decision="identity",rule="",source="proxy",status="303"} 1"#,
        "portcullis_upstream_latency_seconds_count 3",
    ];
    let mut metrics = String::new();
    for _ in 0..1000 {
        metrics = env.metrics().await;
        if expected
            .iter()
            .all(|series| metrics.contains(&format!("{series}\n")))
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    for series in expected {
        assert!(
            metrics.contains(&format!("{series}\n")),
            "{series}\n{metrics}"
        );
    }

    drop(upstream);
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    std::fs::write(env.dir.path().join("rules.json"), rules(&dead_url)).unwrap();
    let access = env.running.as_ref().unwrap().state.access.clone().unwrap();
    access.reload(Vec::new()).unwrap();
    let res = get("/open/x").send().await.unwrap();
    assert_eq!(res.status(), 502);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 502);
}

/// Two proxies sharing a database and Redis: a logout through one is seen by the other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_through_one_replica_is_seen_by_the_other() {
    if tests::redis_url().is_none() {
        return;
    }
    let mut upstream = HookServer::start().await;
    let a = TestEnv::builder(Backend::Sqlite)
        .test_redis()
        .file("rules.json", &rules(&upstream.url))
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .set("secrets.cookie=[\"a-shared-cookie-secret-0123456789\"]")
        .start()
        .await;
    let rules_path = format!(
        r#"access_rules.repositories=["file://{}/rules.json"]"#,
        a.dir.path().display()
    );
    let b = TestEnv::builder(Backend::Sqlite)
        .dsn(&a.dsn)
        .test_redis()
        .set(rules_path)
        .set("secrets.cookie=[\"a-shared-cookie-secret-0123456789\"]")
        .start()
        .await;
    let identity = a
        .create_identity(
            json!({"schema_id": "default", "traits": {"email": "replica@example.com"}}),
        )
        .await;
    let token = a.login(identity["id"].as_str().unwrap()).await;
    let through = |env: &TestEnv| {
        env.http
            .get(format!("{}app/home", env.proxy))
            .header("Cookie", a.cookie_for(&token))
            .header("Accept", "text/html")
            .send()
    };
    assert_eq!(
        through(&b).await.unwrap().status(),
        200,
        "b accepts a's session"
    );
    upstream.next().await;
    let res = a
        .http
        .delete(a.public_url("self-service/logout/api"))
        .json(&json!({"session_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = through(&b).await.unwrap();
    assert_eq!(
        res.status(),
        302,
        "b sends the signed-out browser to log in"
    );
}
