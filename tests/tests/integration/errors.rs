//! The error envelope, redirects between listeners, body limits and health.

use serde_json::{json, Value};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    malformed_bodies_get_the_kratos_envelope,
    listeners_redirect_like_kratos,
    health_and_version,
    self_service_errors_without_an_id_are_not_found,
    token_exchange_answers_with_the_kratos_envelope,
    malformed_flow_ids_are_not_found,
);

async fn malformed_bodies_get_the_kratos_envelope(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let url = env.admin_url("admin/identities");
    let res = env
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert!(res.headers().contains_key("ory-error-id"));
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], 400);
    assert_eq!(err["error"]["status"], "Bad Request");
    assert_eq!(
        err["error"]["message"],
        "The request was malformed or contained invalid parameters"
    );
    assert!(err["error"]["reason"].as_str().unwrap().contains("JSON"));

    let res = env
        .http
        .post(&url)
        .json(&json!({"schema_id": "default", "traits": {"email": "a@example.com"}, "favourite_colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("favourite_colour"),
        "{err}"
    );

    let res = env
        .http
        .post(&url)
        .json(&json!({"schema_id": "default", "traits": {"email": "a@example.com"}, "credentials": {"password": {"config": {"pasword": "x"}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("credentials.password.config"),
        "{err}"
    );

    // An oversized body is refused from its Content-Length, before it is read. A raw connection sends only the
    // headers, so the answer does not race the upload.
    let addr = env.running.as_ref().unwrap().admin_addr.unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /admin/identities HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        6 * 1024 * 1024
    );
    tokio::io::AsyncWriteExt::write_all(&mut conn, head.as_bytes())
        .await
        .unwrap();
    // Read until the JSON body is complete; the server may keep the socket open for the upload we never send.
    let mut answer = String::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !answer.ends_with("}}") {
            let n = tokio::io::AsyncReadExt::read(&mut conn, &mut buf)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            answer.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("no answer to an oversized body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":413"), "{answer}");

    // Nothing was created by any of these.
    let list: Vec<Value> = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.is_empty());
}

async fn listeners_redirect_like_kratos(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let res = env
        .http
        .get(env.admin_url("identities?page_size=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(res.headers()["location"], "/admin/identities?page_size=2");
    let res = env
        .http
        .get(env.public_url("admin/identities"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        env.admin_url("admin/identities")
    );
    let res = env
        .http
        .get(env.public_url("identities/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        env.admin_url("admin/identities/x")
    );
    let res = env
        .http
        .get(env.admin_url("admin/schemas/default"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        env.public_url("schemas/default")
    );
    // Trailing slashes are accepted.
    let res = env
        .http
        .get(env.admin_url("admin/identities/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = env
        .http
        .get(env.public_url("nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], 404);
}

async fn health_and_version(backend: Backend) {
    let mut env = TestEnv::start(backend).await;
    for url in [
        env.admin_url("admin/health/alive"),
        env.admin_url("admin/health/ready"),
        env.public_url("health/alive"),
        env.public_url("health/ready"),
    ] {
        let res = env.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
    let v: Value = env
        .http
        .get(env.admin_url("admin/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"], concat!("v", env!("CARGO_PKG_VERSION")));
    // When the database goes away, readiness fails and liveness does not.
    env.running.as_ref().unwrap().db.close().await;
    let res = env
        .http
        .get(env.admin_url("admin/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"]["reason"].is_string(),
        "the admin listener says why"
    );
    let res = env
        .http
        .get(env.public_url("health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"].get("reason").is_none(),
        "the public listener does not"
    );
    let res = env
        .http
        .get(env.admin_url("admin/health/alive"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    env.stop().await;
}

/// Issue 15: Kratos reads the id of `GET /self-service/errors` with `x.ParseUUID`, so a missing, empty or malformed
/// id is a 404 as for an unknown one (Portcullis answered 400 without an id). `error=` wins over `id=`.
async fn self_service_errors_without_an_id_are_not_found(backend: Backend) {
    let env = TestEnv::start(backend).await;
    for query in ["", "?id=", "?error=", "?id=not-a-uuid", "?other=1"] {
        let res = env
            .http
            .get(env.public_url(&format!("self-service/errors{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{query}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], 404, "{err}");
        assert_eq!(err["error"]["status"], "Not Found", "{err}");
    }
    let res = env
        .http
        .get(env.public_url(&format!(
            "self-service/errors?error=stub:500&id={}",
            uuid::Uuid::new_v4()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 500, "{body}");
}

/// Issue 15: `GET /sessions/token-exchange` answered 405 without a body. Portcullis issues no exchange codes (no
/// native OIDC yet), so it answers as Kratos does for missing parameters (400) and for a code without a session
/// (404), in the error envelope.
async fn token_exchange_answers_with_the_kratos_envelope(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let res = env
        .http
        .get(env.public_url("sessions/token-exchange"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], 400, "{err}");
    assert!(
        err["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("\"init_code\" and \"return_to_code\""),
        "{err}"
    );
    let res = env
        .http
        .get(env.public_url("sessions/token-exchange?init_code=abc&return_to_code=def"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], 404, "{err}");
    let reason = err["error"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no session yet for this \"code\"") && reason.contains("not implement"),
        "{err}"
    );
    // `DELETE` is still `DELETE /sessions/{id}` with an id that is not a UUID.
    let res = env
        .http
        .delete(env.public_url("sessions/token-exchange"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// Issue 15: Kratos reads `…/flows?id=` with `x.ParseUUID`: a missing or malformed id names no flow, a 404 like an
/// unknown id (Portcullis answered 400).
async fn malformed_flow_ids_are_not_found(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("selfservice.flows.recovery.enabled=true")
        .set("selfservice.flows.verification.enabled=true")
        .start()
        .await;
    let created = env
        .create_identity(json!({"schema_id": "default", "traits": {"email": "flows@example.com"}}))
        .await;
    let token = env.login(created["id"].as_str().unwrap()).await;
    for kind in [
        "login",
        "registration",
        "settings",
        "recovery",
        "verification",
    ] {
        for query in ["?id=not-a-uuid", "", "?id=", "?id=not-a-uuid&return_to=x"] {
            let res = env
                .http
                .get(env.public_url(&format!("self-service/{kind}/flows{query}")))
                .header("x-session-token", &token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 404, "{kind}{query}");
            let err: Value = res.json().await.unwrap();
            assert_eq!(err["error"]["code"], 404, "{kind}{query}: {err}");
        }
    }
}
