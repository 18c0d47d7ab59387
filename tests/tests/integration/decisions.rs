//! The forward-auth decisions API with access rules: Traefik, nginx and Envoy request shapes, every outcome.

use serde_json::{json, Value};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(decisions_follow_the_rules, rules_reload_atomically);

fn rules() -> String {
    json!([
        {
            "id": "public",
            "match": {"url": "http://app.test/public/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"headers": {"X-User": "{{ print .Subject }}", "X-Part": "{{ printIndex .MatchContext.RegexpCaptureGroups 0 }}"}}}]
        },
        {
            "id": "private",
            "match": {"url": "http://app.test/private/<.*>", "methods": ["GET", "POST"]},
            "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}],
            "errors": [{"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}]
        },
        {
            "id": "closed",
            "match": {"url": "http://app.test/closed", "methods": ["GET"]},
            "authenticators": [{"handler": "noop"}],
            "authorizer": {"handler": "deny"},
            "mutators": [{"handler": "noop"}]
        }
    ])
    .to_string()
}

async fn decide(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = env.http.get(format!("{}{path}", env.api));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn traefik<'a>(uri: &'a str, accept: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "app.test"),
        ("X-Forwarded-Uri", uri),
        ("Accept", accept),
    ]
}

async fn decisions_follow_the_rules(backend: Backend) {
    let env = TestEnv::builder(backend)
        .file("rules.json", &rules())
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    // Traefik: anonymous access with templated headers.
    let res = decide(&env, "decisions", &traefik("/public/docs?x=1", "*/*")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-user"], "guest");
    assert_eq!(res.headers()["x-part"], "docs");
    // No session: JSON clients get 401, browsers a redirect to the login page with return_to.
    let res = decide(
        &env,
        "decisions",
        &traefik("/private/a", "application/json"),
    )
    .await;
    assert_eq!(res.status(), 401);
    let types: Vec<_> = res.headers().get_all("content-type").iter().collect();
    assert_eq!(types, ["application/json"], "one content type");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    let res = decide(&env, "decisions", &traefik("/private/a", "text/html")).await;
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&env.public_url("self-service/login/browser?return_to=")),
        "{location}"
    );
    assert!(
        location.contains("http%3A%2F%2Fapp.test%2Fprivate%2Fa"),
        "{location}"
    );
    // With a session token: the identity headers.
    let identity = env
        .create_identity(json!({"schema_id": "default", "traits": {"email": "edge@example.com"},
            "verifiable_addresses": [{"value": "edge@example.com", "via": "email", "verified": true}]}))
        .await;
    let id = identity["id"].as_str().unwrap();
    let token = env.login(id).await;
    let bearer = format!("Bearer {token}");
    let mut h = traefik("/private/a", "text/html");
    h.push(("Authorization", &bearer));
    let res = decide(&env, "decisions", &h).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-user-id"], id);
    assert_eq!(res.headers()["x-user-email"], "edge@example.com");
    // And with the session cookie.
    let cookie = env.cookie_for(&token);
    let mut h = traefik("/private/b", "text/html");
    h.push(("Cookie", &cookie));
    assert_eq!(decide(&env, "decisions", &h).await.status(), 200);
    // nginx: X-Original-URL; a redirect becomes 401 with the Location nginx can use.
    let res = decide(
        &env,
        "decisions",
        &[
            ("X-Original-URL", "http://app.test/private/x"),
            ("X-Original-Method", "GET"),
            ("Accept", "text/html"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("self-service/login/browser"));
    // Envoy: the original path after /decisions, the Host header as is.
    let res = decide(&env, "decisions/public/y", &[("Host", "app.test")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-part"], "y");
    // Path tricks cannot reach a rule they should not.
    for trick in [
        "/public/../private/a",
        "/public/%2e%2e/private/a",
        "//private/a",
    ] {
        let res = decide(&env, "decisions", &traefik(trick, "application/json")).await;
        assert!(
            res.status() == 401 || res.status() == 404 || res.status() == 400,
            "{trick}: {}",
            res.status()
        );
        assert!(
            !res.headers().contains_key("x-user"),
            "{trick} reached the public rule"
        );
    }
    // Deny, no match, wrong method.
    assert_eq!(
        decide(&env, "decisions", &traefik("/closed", "*/*"))
            .await
            .status(),
        403
    );
    assert_eq!(
        decide(&env, "decisions", &traefik("/elsewhere", "*/*"))
            .await
            .status(),
        404
    );
    let mut post = traefik("/public/docs", "*/*");
    post[0] = ("X-Forwarded-Method", "DELETE");
    assert_eq!(decide(&env, "decisions", &post).await.status(), 404);

    // Every decision was counted by rule, decision and status.
    let metrics = env.metrics().await;
    for series in [
        r#"portcullis_access_requests_total{decision="allow",rule="public",source="decisions",status="200"} 2"#,
        r#"portcullis_access_requests_total{decision="deny",rule="private",source="decisions",status="302"} 1"#,
        r#"portcullis_access_requests_total{decision="allow",rule="private",source="decisions",status="200"} 2"#,
        r#"portcullis_access_requests_total{decision="deny",rule="closed",source="decisions",status="403"} 1"#,
        r#"portcullis_access_requests_total{decision="deny",rule="",source="decisions",status="404"} 2"#,
        "portcullis_access_rules 3",
    ] {
        assert!(
            metrics.contains(&format!("{series}\n")),
            "{series}\n{metrics}"
        );
    }
    assert!(metrics.contains(
        r#"portcullis_access_requests_total{decision="deny",rule="private",source="decisions",status="401"} "#
    ));
    assert!(metrics.contains("portcullis_pipeline_latency_seconds_count "));
    // The rules API.
    let all: Value = env
        .http
        .get(format!("{}rules", env.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let one: Value = env
        .http
        .get(format!("{}rules/private", env.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "private");
    let missing = env
        .http
        .get(format!("{}rules/nope", env.api))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Waits (bounded) until `check` holds, polling; the watcher runs on its own schedule.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn rules_reload_atomically(backend: Backend) {
    let env = TestEnv::builder(backend)
        .file("rules.json", &rules())
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let path = env.dir.path().join("rules.json");
    assert_eq!(
        decide(&env, "decisions", &traefik("/new", "*/*"))
            .await
            .status(),
        404
    );
    // Requests keep flowing while the rules are swapped; none may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (http, url, stop) = (
            env.http.clone(),
            format!("{}decisions", env.api),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = http
                    .get(&url)
                    .header("X-Forwarded-Host", "app.test")
                    .header("X-Forwarded-Uri", "/public/a")
                    .header("X-Forwarded-Method", "GET")
                    .send()
                    .await
                    .unwrap();
                statuses.push(res.status().as_u16());
            }
            statuses
        })
    };
    let mut more: Value = serde_json::from_str(&rules()).unwrap();
    more.as_array_mut().unwrap().push(json!({
        "id": "new",
        "match": {"url": "http://app.test/new", "methods": ["GET"]},
        "authenticators": [{"handler": "anonymous"}],
        "authorizer": {"handler": "allow"},
        "mutators": [{"handler": "noop"}]
    }));
    std::fs::write(&path, more.to_string()).unwrap();
    eventually("the new rule", || async {
        decide(&env, "decisions", &traefik("/new", "*/*"))
            .await
            .status()
            == 200
    })
    .await;
    let access = env.running.as_ref().unwrap().state.access.clone().unwrap();
    let failures_before = access
        .reload_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    std::fs::write(&path, "[{\"id\": \"broken\", \"match\": ").unwrap();
    eventually("the bad file to be noticed", || async {
        access
            .reload_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            > failures_before
    })
    .await;
    assert_eq!(
        decide(&env, "decisions", &traefik("/new", "*/*"))
            .await
            .status(),
        200,
        "a bad file keeps the old rule set"
    );
    assert_eq!(
        decide(&env, "decisions", &traefik("/public/a", "*/*"))
            .await
            .status(),
        200
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = hammer.await.unwrap();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

fn peer_rules() -> String {
    json!([
        {
            "id": "public",
            "match": {"url": "http://app.test/public/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"headers": {"X-User": "{{ print .Subject }}"}}}]
        },
        {
            "id": "home",
            "match": {"url": "http://app.test/", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"headers": {"X-User": "{{ print .Subject }}"}}}]
        },
        {
            "id": "private",
            "match": {"url": "http://app.test/private/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "cookie_session"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "noop"}],
            // Shows which client address the decision saw: 302 for 203.0.113.0/24, the JSON 401 otherwise.
            "errors": [{"handler": "redirect", "config": {"to": "http://ip.test/documentation", "when": [
                {"error": ["unauthorized"], "request": {"remote_ip": {"match": ["203.0.113.0/24"], "respect_forwarded_for_header": true}}}
            ]}}]
        }
    ])
    .to_string()
}

/// Only a peer in `serve.api.trusted_proxies` may describe the original request with forwarding headers; any
/// other peer is judged on its own request line. From a trusted peer one family is read, both together or a
/// header twice are refused, and the client address is the right-most untrusted `X-Forwarded-For` hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_count_only_from_trusted_peers() {
    let env = TestEnv::builder(Backend::Sqlite)
        .file("rules.json", &peer_rules())
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        // 127.0.0.2 is the proxy; the test's own 127.0.0.1 is not.
        .set(r#"serve.api.trusted_proxies=["127.0.0.2"]"#)
        .start()
        .await;
    let proxy = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let stranger = &env.http;
    let send = |client: &reqwest::Client, method: &str, path: &str, headers: &[(&str, &str)]| {
        let mut req = client
            .request(method.parse().unwrap(), format!("{}{path}", env.api))
            .header("Host", "app.test");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let public = [
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "app.test"),
        ("X-Forwarded-Uri", "/public/x"),
    ];

    // A stranger's forwarding headers are ignored: its own method and path are judged.
    let res = send(stranger, "GET", "decisions/private/a", &public)
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(!res.headers().contains_key("x-user"));
    let res = send(stranger, "GET", "decisions", &public).await.unwrap();
    assert_eq!(res.status(), 200, "judged as / (the home rule)");
    let res = send(
        stranger,
        "DELETE",
        "decisions/public/x",
        &[("X-Forwarded-Method", "GET")],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 404, "DELETE has no rule");
    for original in [
        vec![("X-Original-URL", "http://app.test/public/x")],
        vec![
            ("X-Original-URL", "http://app.test/public/x"),
            ("X-Original-Method", "GET"),
        ],
    ] {
        let res = send(stranger, "GET", "decisions/private/a", &original)
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{original:?}");
    }
    let res = send(
        stranger,
        "DELETE",
        "decisions/public/x",
        &[("X-Original-Method", "GET")],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    // Its own request line works (as Envoy sends it), and its X-Forwarded-For is not its address.
    let res = send(stranger, "GET", "decisions/public/x", &[])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-user"], "guest");
    let res = send(
        stranger,
        "GET",
        "decisions/private/a",
        &[("X-Forwarded-For", "203.0.113.5")],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401, "the stranger's address is 127.0.0.1");

    // The trusted proxy describes the request with either family.
    let res = send(&proxy, "GET", "decisions", &public).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-user"], "guest");
    let res = send(&proxy, "DELETE", "decisions/private/a", &public)
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the proxy's X-Forwarded-Method and -Uri");
    let nginx = [
        ("X-Original-URL", "http://app.test/public/x"),
        ("X-Original-Method", "GET"),
    ];
    let res = send(&proxy, "GET", "decisions", &nginx).await.unwrap();
    assert_eq!(res.status(), 200);
    // Underscore spellings are not forwarding headers: the request line is judged.
    let res = send(
        &proxy,
        "GET",
        "decisions/private/a",
        &[("X_Forwarded_Uri", "/public/x")],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401);

    // Both families, one header twice, or an X-Original-URL that is not an absolute URL: refused, never guessed.
    let refused: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("X-Original-URL", "http://app.test/private/a"),
            ("X-Forwarded-Uri", "/public/x"),
        ],
        vec![
            ("X-Original-URL", "http://app.test/private/a"),
            ("X-Forwarded-Host", "app.test"),
        ],
        vec![
            ("X-Original-Method", "DELETE"),
            ("X-Forwarded-Method", "GET"),
        ],
        vec![
            ("X-Forwarded-Uri", "/public/x"),
            ("X-Forwarded-Uri", "/private/a"),
        ],
        vec![("X-Original-URL", "/public/x")],
        vec![("X-Original-URL", "http://app.test?x/private/a")],
        vec![("X-Original-URL", "http://guest@app.test/private/a")],
        vec![("X-Forwarded-Uri", "")],
    ];
    for headers in refused {
        let res = send(&proxy, "GET", "decisions/private/a", &headers)
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{headers:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 400, "{headers:?}");
    }

    // The client address: the right-most X-Forwarded-For entry that is not a trusted proxy.
    for (xff, redirected) in [
        ("203.0.113.5", true),
        ("198.51.100.1, 203.0.113.5", true),
        ("203.0.113.5, 127.0.0.2", true),
        ("203.0.113.5, 198.51.100.1", false),
    ] {
        let mut headers = public.to_vec();
        headers[3].1 = "/private/a";
        headers.push(("X-Forwarded-For", xff));
        let res = send(&proxy, "GET", "decisions", &headers).await.unwrap();
        assert_eq!(res.status(), if redirected { 302 } else { 401 }, "{xff}");
        // The same X-Forwarded-For from a stranger counts for nothing.
        let res = send(
            stranger,
            "GET",
            "decisions/private/a",
            &[("X-Forwarded-For", xff)],
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 401, "{xff}");
    }
}
