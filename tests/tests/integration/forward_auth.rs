//! The Traefik ForwardAuth and Envoy ext_authz snippets of the deploy guide (`deploy/forward-auth/`), exercised:
//! the test reads each file, sends the decisions API exactly the request that proxy sends with that configuration
//! (Traefik's `writeHeader`, Envoy's check request: which client headers pass, which the proxy sets), and checks
//! that the headers the configuration copies carry the identity (and the sign-in redirect), and that a client's
//! forwarding headers cannot move the decision to another method, host or path. (nginx runs for real in
//! `nginx.rs`.)

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
    json!([
        {
            "id": "app",
            "match": {"url": "<https?>://app.test/app/<.*>", "methods": ["GET", "POST", "DELETE"]},
            "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}],
            "errors": [
                {"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}
            ]
        },
        {
            "id": "public",
            "match": {"url": "<https?>://app.test/public/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        },
        {
            "id": "other-host",
            "match": {"url": "<https?>://public.test/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        }
    ])
    .to_string()
}

/// A request as the client sends it to the proxy.
struct ClientRequest<'a> {
    method: &'a str,
    scheme: &'a str,
    host: &'a str,
    /// Path and query.
    uri: &'a str,
    headers: Vec<(&'a str, String)>,
    /// The client's address as the proxy sees it.
    remote: &'a str,
}

impl<'a> ClientRequest<'a> {
    fn get(uri: &'a str) -> Self {
        Self {
            method: "GET",
            scheme: "https",
            host: "app.test",
            uri,
            headers: Vec::new(),
            remote: "203.0.113.9",
        }
    }

    fn method(mut self, method: &'a str) -> Self {
        self.method = method;
        self
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn client_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The client forgeries every snippet must neutralise: each would turn a protected request into the public one
/// (or onto the public host) if the decisions API believed it.
fn forgeries() -> Vec<ClientRequest<'static>> {
    vec![
        ClientRequest::get("/app/data").header("X-Forwarded-Uri", "/public/x"),
        ClientRequest::get("/app/data").header("X-Forwarded-Host", "public.test"),
        ClientRequest::get("/public/x")
            .method("DELETE")
            .header("X-Forwarded-Method", "GET"),
        ClientRequest::get("/app/data").header("X-Original-URL", "https://app.test/public/x"),
        ClientRequest::get("/public/x")
            .method("DELETE")
            .header("X-Original-Method", "GET"),
        ClientRequest::get("/app/data").header("X_Forwarded_Uri", "/public/x"),
        ClientRequest::get("/app/data").header("X_Original_URL", "https://app.test/public/x"),
    ]
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

/// What Traefik's ForwardAuth (`writeHeader` in pkg/middlewares/auth/forward.go) sends for `client` with the
/// middleware `fa`: the client's headers (only those of `authRequestHeaders` when set), then X-Forwarded-For,
/// -Method, -Proto, -Host and -Uri set by Traefik, from the client's headers only with `trustForwardHeader`.
fn traefik_request(
    env: &TestEnv,
    fa: &serde_yaml::Value,
    client: &ClientRequest<'_>,
) -> reqwest::RequestBuilder {
    let address = url::Url::parse(fa["address"].as_str().unwrap()).unwrap();
    let endpoint = format!("{}{}", env.api, address.path().trim_start_matches('/'));
    let trust = fa["trustForwardHeader"].as_bool().unwrap_or(false);
    let allowed = fa.get("authRequestHeaders").map(strings);
    let mut headers: Vec<(String, String)> = client
        .headers
        .iter()
        .filter(|(k, _)| {
            allowed
                .as_ref()
                .is_none_or(|a| a.iter().any(|n| n.eq_ignore_ascii_case(k)))
        })
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut set = |name: &str, value: String| {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.push((name.to_owned(), value));
    };
    let forwarded_for = match client.client_header("X-Forwarded-For") {
        Some(prior) if trust => format!("{prior}, {}", client.remote),
        _ => client.remote.to_owned(),
    };
    set("X-Forwarded-For", forwarded_for);
    let pick = |name: &str, own: &str| match client.client_header(name) {
        Some(v) if trust && !v.is_empty() => v.to_owned(),
        _ => own.to_owned(),
    };
    set(
        "X-Forwarded-Method",
        pick("X-Forwarded-Method", client.method),
    );
    set(
        "X-Forwarded-Proto",
        pick("X-Forwarded-Proto", client.scheme),
    );
    set("X-Forwarded-Host", pick("X-Forwarded-Host", client.host));
    set("X-Forwarded-Uri", pick("X-Forwarded-Uri", client.uri));
    let mut req = env.http.get(endpoint);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req
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
    let copied = strings(&fa["authResponseHeaders"]);

    let (env, id, token) = env_and_user().await;
    let cookie = env.cookie_for(&token);
    let res = traefik_request(
        &env,
        fa,
        &ClientRequest::get("/app/page?x=1")
            .header("Cookie", cookie.clone())
            .header("X-User-Id", "admin"),
    )
    .send()
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
    let res = traefik_request(
        &env,
        fa,
        &ClientRequest::get("/app/page").header("Authorization", format!("Bearer {token}")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200, "the bearer token reaches the decision");

    // An anonymous browser: Traefik passes our redirect on.
    let res = traefik_request(
        &env,
        fa,
        &ClientRequest::get("/app/page?x=1").header("Accept", "text/html"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("return_to=https%3A%2F%2Fapp.test%2Fapp%2Fpage"),
        "{location}"
    );
    // An anonymous API client: 401, and nothing to copy.
    let res = traefik_request(&env, fa, &ClientRequest::get("/app/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for h in &copied {
        assert!(res.headers().get(h.as_str()).is_none());
    }
    // The public rule is open to anyone, so a forgery that moved the decision there would pass.
    let res = traefik_request(&env, fa, &ClientRequest::get("/public/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Through this middleware, every forgery is judged as the request Traefik received.
    for forged in forgeries() {
        let honest = ClientRequest {
            headers: Vec::new(),
            ..forged
        };
        let want = traefik_request(&env, fa, &honest).send().await.unwrap();
        let res = traefik_request(&env, fa, &forged).send().await.unwrap();
        assert_ne!(res.status(), 200, "{:?}", forged.headers);
        assert_eq!(res.status(), want.status(), "{:?}", forged.headers);
    }
}

/// What Envoy's ext_authz HTTP client sends for `client` with `service` (its `http_service`): the client's method,
/// `path_prefix` plus its path and query, Host, Authorization and the headers matching `allowed_headers`, then
/// `headers_to_add`, replacing values of the same name.
fn envoy_request(
    env: &TestEnv,
    service: &serde_yaml::Value,
    client: &ClientRequest<'_>,
) -> reqwest::RequestBuilder {
    let prefix = service["path_prefix"].as_str().unwrap();
    let request = &service["authorization_request"];
    let allowed = strings(&request["allowed_headers"]["patterns"]);
    let mut req = env
        .http
        .request(
            client.method.parse().unwrap(),
            format!(
                "{}{}{}",
                env.api,
                prefix.trim_start_matches('/'),
                client.uri
            ),
        )
        .header("Host", client.host);
    let added: Vec<(String, String)> = request
        .get("headers_to_add")
        .and_then(|h| h.as_sequence())
        .map(|list| {
            list.iter()
                .map(|h| {
                    let value = h["value"]
                        .as_str()
                        .unwrap()
                        .replace("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", client.remote);
                    assert!(!value.contains('%'), "{value}: not emulated");
                    (h["key"].as_str().unwrap().to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in &client.headers {
        let k = k.to_ascii_lowercase();
        let passes = k == "authorization" || allowed.contains(&k);
        if passes && !added.iter().any(|(a, _)| a.eq_ignore_ascii_case(&k)) {
            req = req.header(k, v);
        }
    }
    for (k, v) in added {
        req = req.header(k, v);
    }
    req
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
    let upstream =
        strings(&service["authorization_response"]["allowed_upstream_headers"]["patterns"]);
    let client = strings(&service["authorization_response"]["allowed_client_headers"]["patterns"]);

    let (env, id, token) = env_and_user().await;
    let envoy = |request: ClientRequest<'static>| envoy_request(&env, service, &request).send();
    let res = envoy(ClientRequest::get("/app/page?x=1").header("Cookie", env.cookie_for(&token)))
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
    let res =
        envoy(ClientRequest::get("/app/page").header("Authorization", format!("Bearer {token}")))
            .await
            .unwrap();
    assert_eq!(res.status(), 200);

    // Denied: the client gets our redirect through allowed_client_headers.
    let res = envoy(ClientRequest::get("/app/page?x=1").header("Accept", "text/html"))
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(client.iter().any(|c| c == "location"));
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("/self-service/login/browser?return_to="),
        "{location}"
    );
    let body: Value = envoy(ClientRequest::get("/app/page"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], 401, "{body}");
    // The public rule is open to anyone; every forgery is judged as the request Envoy received.
    assert_eq!(
        envoy(ClientRequest::get("/public/x"))
            .await
            .unwrap()
            .status(),
        200
    );
    for forged in forgeries() {
        let honest = ClientRequest {
            headers: Vec::new(),
            ..forged
        };
        let want = envoy_request(&env, service, &honest).send().await.unwrap();
        let res = envoy_request(&env, service, &forged).send().await.unwrap();
        assert_ne!(res.status(), 200, "{:?}", forged.headers);
        assert_eq!(res.status(), want.status(), "{:?}", forged.headers);
    }
}
