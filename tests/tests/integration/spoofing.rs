//! Headers a client forges: the client address (session devices and the per-IP login limit), client-address and
//! path-override headers on their way to an app, and identity headers in every spelling on every rule, including
//! one that a hot-reloaded rule adds.

use serde_json::{json, Value};
use tests::hook_server::{HookServer, Received};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    the_edge_defines_the_client_address_of_logins,
    spoofed_addresses_do_not_escape_the_per_ip_limit,
    the_public_listener_believes_only_the_edge_and_its_trusted_proxies,
    client_address_and_path_override_headers_never_reach_an_app,
    identity_headers_are_stripped_in_every_spelling_on_every_rule,
);

const PASSWORD: &str = "correct horse battery staple";

/// Client-address headers as they come from clients and CDNs.
const SPOOFS: [(&str, &str); 5] = [
    ("True-Client-IP", "6.6.6.1"),
    ("X-Real-IP", "6.6.6.2"),
    ("Client-IP", "6.6.6.3"),
    ("CF-Connecting-IP", "6.6.6.4"),
    ("X-Client-IP", "6.6.6.5"),
];

async fn identity(env: &TestEnv, email: &str) {
    env.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PASSWORD}}},
    }))
    .await;
}

/// An API login whose requests go to `base` (the edge or the public listener) with `headers` added.
async fn login_via(
    env: &TestEnv,
    base: &str,
    identifier: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let with = |mut b: reqwest::RequestBuilder| {
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b
    };
    let flow: Value = with(env.http.get(format!("{base}self-service/login/api")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = flow["id"].as_str().unwrap();
    with(env.http.post(format!("{base}self-service/login?flow={id}")))
        .json(&json!({"method": "password", "identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The address recorded on the session a successful login made.
async fn device_address(env: &TestEnv, res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = body["session_token"].as_str().unwrap();
    let whoami: Value = env.whoami(token).await.json().await.unwrap();
    let devices = whoami["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{whoami}");
    devices[0]["ip_address"].as_str().unwrap().to_owned()
}

async fn the_edge_defines_the_client_address_of_logins(backend: Backend) {
    // The edge trusts a proxy on loopback: the client is the right-most X-Forwarded-For entry that is not one.
    let env = TestEnv::builder(backend)
        .set(r#"serve.proxy.trusted_proxies=["127.0.0.1"]"#)
        .start()
        .await;
    identity(&env, "edge@example.com").await;
    let mut headers = SPOOFS.to_vec();
    headers.push(("X-Forwarded-For", "6.6.6.6, 198.51.100.23"));
    let res = login_via(&env, &env.proxy, "edge@example.com", PASSWORD, &headers).await;
    assert_eq!(
        device_address(&env, res).await,
        "198.51.100.23",
        "neither the left-most hop nor True-Client-IP/X-Real-IP"
    );
    // A forged private header (any spelling) is dropped by the edge, which sends its own.
    let mut forged = headers.clone();
    forged.push(("X-Portcullis-Client-Ip", "6.6.6.7"));
    forged.push(("X_Portcullis_Client_Ip", "6.6.6.8"));
    let res = login_via(&env, &env.proxy, "edge@example.com", PASSWORD, &forged).await;
    assert_eq!(device_address(&env, res).await, "198.51.100.23");
    let mut env = env;
    env.stop().await;

    // Trusting nobody, the edge's peer is the client, whatever the client says.
    let env = TestEnv::start(backend).await;
    identity(&env, "edge@example.com").await;
    let res = login_via(&env, &env.proxy, "edge@example.com", PASSWORD, &headers).await;
    assert_eq!(device_address(&env, res).await, "127.0.0.1");
}

async fn spoofed_addresses_do_not_escape_the_per_ip_limit(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("security.brute_force.max_failures_per_ip=3")
        .start()
        .await;
    identity(&env, "real@example.com").await;
    // Each guess claims another address, in every header a client could use.
    for i in 0..3 {
        let spoofed: Vec<(&str, String)> = SPOOFS
            .iter()
            .map(|(k, _)| (*k, format!("203.0.113.{}", 10 + i)))
            .chain([("X-Forwarded-For", format!("203.0.113.{}", 50 + i))])
            .collect();
        let headers: Vec<(&str, &str)> = spoofed.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = login_via(
            &env,
            &env.proxy,
            &format!("nobody{i}@example.com"),
            "guess guess",
            &headers,
        )
        .await;
        assert_eq!(res.status(), 400);
    }
    let res = login_via(
        &env,
        &env.proxy,
        "real@example.com",
        PASSWORD,
        &[
            ("True-Client-IP", "203.0.113.99"),
            ("X-Real-IP", "203.0.113.99"),
        ],
    )
    .await;
    assert_eq!(
        res.status(),
        429,
        "the real client is over its limit whatever it claims"
    );
}

async fn the_public_listener_believes_only_the_edge_and_its_trusted_proxies(backend: Backend) {
    // A process on the same host talks to the public listener from loopback with forged headers.
    let env = TestEnv::start(backend).await;
    identity(&env, "direct@example.com").await;
    let forged = [
        ("X-Portcullis-Client-Ip", "203.0.113.77"),
        ("X-Portcullis-Edge", "0123456789abcdef0123456789abcdef"),
        ("True-Client-IP", "6.6.6.1"),
        ("X-Real-IP", "6.6.6.2"),
        ("X-Forwarded-For", "6.6.6.3"),
    ];
    let res = login_via(&env, &env.public, "direct@example.com", PASSWORD, &forged).await;
    assert_eq!(device_address(&env, res).await, "127.0.0.1");
    let mut env = env;
    env.stop().await;

    // A configured trusted proxy's X-Forwarded-For is believed, right-most untrusted hop first.
    let env = TestEnv::builder(backend)
        .set(r#"serve.public.trusted_proxies=["127.0.0.1", "10.0.0.0/8"]"#)
        .start()
        .await;
    identity(&env, "direct@example.com").await;
    let res = login_via(
        &env,
        &env.public,
        "direct@example.com",
        PASSWORD,
        &[
            ("X-Forwarded-For", "6.6.6.6, 198.51.100.40, 10.1.2.3"),
            ("True-Client-IP", "6.6.6.1"),
        ],
    )
    .await;
    assert_eq!(device_address(&env, res).await, "198.51.100.40");
}

fn open_rules(upstream: &str, extra: &[Value]) -> String {
    let mut rules = vec![
        json!({
            "id": "open",
            "match": {"url": "http://<[^/]+>/open/<.*>", "methods": ["GET"]},
            "upstream": {"url": upstream},
            "authenticators": [{"handler": "anonymous"}, {"handler": "noop"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "noop"}]
        }),
        json!({
            "id": "mail",
            "match": {"url": "http://<[^/]+>/mail/<.*>", "methods": ["GET"]},
            "upstream": {"url": upstream},
            "authenticators": [{"handler": "anonymous"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"headers": {"X-Email": "{{ print .Subject }}"}}}]
        }),
    ];
    rules.extend(extra.iter().cloned());
    Value::Array(rules).to_string()
}

/// The request the upstream got for `path` sent through the edge with `headers`.
async fn through_edge(
    env: &TestEnv,
    upstream: &mut HookServer,
    path: &str,
    headers: &[(&str, &str)],
) -> Received {
    let mut b = env.http.get(format!("{}{}", env.proxy, path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = b.send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    upstream.next().await
}

fn absent(seen: &Received, names: &[&str]) {
    for name in names {
        let lower = name.to_ascii_lowercase();
        assert!(
            seen.header(&lower).is_none(),
            "{name} reached the app: {:?}",
            seen.headers
        );
    }
}

async fn client_address_and_path_override_headers_never_reach_an_app(backend: Backend) {
    let mut upstream = HookServer::start().await;
    let env = TestEnv::builder(backend)
        .file("rules.json", &open_rules(&upstream.url, &[]))
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let sent = [
        ("X-Real-IP", "6.6.6.1"),
        ("True-Client-IP", "6.6.6.2"),
        ("Client-IP", "6.6.6.3"),
        ("CF-Connecting-IP", "6.6.6.4"),
        ("X-Client-IP", "6.6.6.5"),
        ("X-Original-URL", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X_Real_IP", "6.6.6.6"),
        ("True_Client_IP", "6.6.6.7"),
        ("CF_Connecting_IP", "6.6.6.8"),
        ("X_Original_URL", "/admin"),
        ("x_rewrite_url", "/admin"),
        ("X-Portcullis-Client-Ip", "6.6.6.9"),
        ("X-Portcullis-Edge", "guess"),
    ];
    let seen = through_edge(&env, &mut upstream, "open/page", &sent).await;
    let names: Vec<&str> = sent.iter().map(|(k, _)| *k).collect();
    absent(&seen, &names);
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.path, "/open/page");
}

async fn identity_headers_are_stripped_in_every_spelling_on_every_rule(backend: Backend) {
    let mut upstream = HookServer::start().await;
    let env = TestEnv::builder(backend)
        .file("rules.json", &open_rules(&upstream.url, &[]))
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let forged = [
        ("X_User_Id", "admin"),
        ("X-User-Id", "admin"),
        ("X_User_Email", "boss@example.com"),
        ("Remote_User", "root"),
        ("Remote-Groups", "admins"),
        ("X-Forwarded-User", "root"),
        ("X_Forwarded_Email", "boss@example.com"),
        ("X-Auth-Request-User", "root"),
        ("X-Email", "boss@example.com"),
        ("x_email", "boss@example.com"),
    ];
    let names: Vec<&str> = forged.iter().map(|(k, _)| *k).collect();
    // A `noop` rule: nothing is injected, and nothing forged gets through.
    let seen = through_edge(&env, &mut upstream, "open/page", &forged).await;
    absent(&seen, &names);
    // The rule that injects X-Email: only its own value arrives.
    let seen = through_edge(&env, &mut upstream, "mail/page", &forged).await;
    absent(
        &seen,
        &["x_email", "X_User_Id", "Remote_User", "X_User_Email"],
    );
    let emails: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(k, _)| k == "x-email")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(emails, ["anonymous"]);
    // Standard fields are left alone.
    let seen = through_edge(
        &env,
        &mut upstream,
        "open/page",
        &[("Authorization", "Bearer mine"), ("X-Tenant-Role", "owner")],
    )
    .await;
    assert_eq!(seen.header("authorization"), Some("Bearer mine"));
    assert_eq!(
        seen.header("x-tenant-role"),
        Some("owner"),
        "not yet set by any rule"
    );

    // A hot reload adds a rule that injects X-Tenant-Role: from then on no client may send it, on any rule.
    let extra = json!({
        "id": "tenant",
        "match": {"url": "http://<[^/]+>/tenant/<.*>", "methods": ["GET"]},
        "upstream": {"url": upstream.url},
        "authenticators": [{"handler": "anonymous"}],
        "authorizer": {"handler": "allow"},
        "mutators": [{"handler": "header", "config": {"headers": {"X-Tenant-Role": "guest"}}}]
    });
    std::fs::write(
        env.dir.path().join("rules.json"),
        open_rules(&upstream.url, &[extra]),
    )
    .unwrap();
    let access = env.running.as_ref().unwrap().state.access.clone().unwrap();
    access.reload(Vec::new()).unwrap();
    let seen = through_edge(
        &env,
        &mut upstream,
        "open/page",
        &[
            ("X-Tenant-Role", "owner"),
            ("X_Tenant_Role", "owner"),
            ("Authorization", "Bearer mine"),
        ],
    )
    .await;
    absent(&seen, &["X-Tenant-Role", "X_Tenant_Role"]);
    assert_eq!(seen.header("authorization"), Some("Bearer mine"));
    let seen = through_edge(
        &env,
        &mut upstream,
        "tenant/x",
        &[("X_Tenant_Role", "owner")],
    )
    .await;
    absent(&seen, &["X_Tenant_Role"]);
    assert_eq!(seen.header("x-tenant-role"), Some("guest"));
}
