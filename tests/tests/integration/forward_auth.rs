//! The Traefik ForwardAuth and Envoy ext_authz snippets of the deploy guide (`deploy/forward-auth/`), exercised:
//! the test reads each file, sends the decisions API exactly the request that proxy sends with that configuration,
//! and checks that the headers the configuration copies carry the identity (and the sign-in redirect), so the
//! snippet and the API cannot drift apart. (nginx runs for real in `nginx.rs`.)

use serde_json::{json, Value};
use tests::{Backend, TestEnv};

fn snippet(name: &str) -> serde_yaml::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/forward-auth")
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .or_else(|| s.get("exact").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap()
        })
        .collect()
}

fn rules() -> String {
    json!([{
        "id": "app",
        "match": {"url": "<https?>://<[^/]+>/app/<.*>", "methods": ["GET", "POST"]},
        "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
        "authorizer": {"handler": "allow"},
        "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}],
        "errors": [
            {"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}
        ]
    }])
    .to_string()
}

async fn env_and_user() -> (TestEnv, String, String) {
    let env = TestEnv::builder(Backend::Sqlite)
        .file("rules.json", &rules())
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let identity = env
        .create_identity(json!({"schema_id": "default", "traits": {"email": "edge@example.com"},
            "verifiable_addresses": [{"value": "edge@example.com", "via": "email", "verified": true}]}))
        .await;
    let id = identity["id"].as_str().unwrap().to_owned();
    let token = env.login(&id).await;
    (env, id, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth_snippet() {
    let conf = snippet("traefik.yml");
    let fa = &conf["http"]["middlewares"]["portcullis"]["forwardAuth"];
    let address = url::Url::parse(fa["address"].as_str().unwrap()).unwrap();
    assert_eq!(
        address.port(),
        Some(4456),
        "the api listener's default port"
    );
    assert_eq!(fa["trustForwardHeader"].as_bool(), Some(true));
    let copied = strings(&fa["authResponseHeaders"]);

    let (env, id, token) = env_and_user().await;
    let endpoint = format!("{}{}", env.api, address.path().trim_start_matches('/'));
    // What Traefik sends for a request to https://app.test/app/page?x=1.
    let traefik = |extra: &[(&str, &str)]| {
        let mut req = env
            .http
            .get(&endpoint)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "app.test")
            .header("X-Forwarded-Uri", "/app/page?x=1")
            .header("X-Forwarded-For", "203.0.113.9");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let cookie = env.cookie_for(&token);
    let res = traefik(&[("Cookie", &cookie), ("X-User-Id", "admin")])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(got(&copied[0]), Some(id.clone()), "{copied:?}");
    assert_eq!(got(&copied[1]).as_deref(), Some("edge@example.com"));
    assert_eq!(got(&copied[2]).as_deref(), Some("true"), "{copied:?}");

    // An anonymous browser: Traefik passes our redirect on.
    let res = traefik(&[("Accept", "text/html")]).await.unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("return_to=https%3A%2F%2Fapp.test%2Fapp%2Fpage"),
        "{location}"
    );
    // An anonymous API client: 401, and nothing to copy.
    let res = traefik(&[]).await.unwrap();
    assert_eq!(res.status(), 401);
    for h in &copied {
        assert!(res.headers().get(h.as_str()).is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_ext_authz_snippet() {
    let conf = snippet("envoy.yaml");
    let filter = conf["http_filters"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.ext_authz")
        .unwrap();
    let service = &filter["typed_config"]["http_service"];
    let server = url::Url::parse(service["server_uri"]["uri"].as_str().unwrap()).unwrap();
    assert_eq!(server.port(), Some(4456));
    let prefix = service["path_prefix"].as_str().unwrap();
    let allowed = strings(&service["authorization_request"]["allowed_headers"]["patterns"]);
    let upstream =
        strings(&service["authorization_response"]["allowed_upstream_headers"]["patterns"]);
    let client = strings(&service["authorization_response"]["allowed_client_headers"]["patterns"]);

    let (env, id, token) = env_and_user().await;
    // What Envoy sends for GET http://app.test/app/page?x=1: the same method, prefix + path, the original Host and
    // only the allowed headers.
    let envoy = |headers: Vec<(&str, String)>| {
        let mut req = env
            .http
            .get(format!(
                "{}{}/app/page?x=1",
                env.api,
                prefix.trim_start_matches('/')
            ))
            .header("Host", "app.test");
        for (k, v) in headers {
            assert!(
                allowed.iter().any(|a| a == k),
                "{k} is not forwarded by the snippet"
            );
            req = req.header(k, v);
        }
        req.send()
    };
    let res = envoy(vec![("cookie", env.cookie_for(&token))])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()[upstream[0].as_str()].to_str().unwrap(),
        id,
        "{upstream:?}"
    );
    assert_eq!(res.headers()[upstream[1].as_str()], "edge@example.com");
    assert_eq!(res.headers()[upstream[2].as_str()], "true", "{upstream:?}");
    let res = envoy(vec![("authorization", format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Denied: the client gets our redirect through allowed_client_headers.
    let res = envoy(vec![("accept", "text/html".into())]).await.unwrap();
    assert_eq!(res.status(), 302);
    assert!(client.iter().any(|c| c == "location"));
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("/self-service/login/browser?return_to="),
        "{location}"
    );
    let body: Value = envoy(vec![])
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], 401, "{body}");
}
