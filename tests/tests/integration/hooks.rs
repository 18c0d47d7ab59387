//! `after` hooks of login and registration: `web_hook` (parse, plain, templates), `revoke_active_sessions`.

use serde_json::{json, Value};
use tests::browser::message_ids;
use tests::hook_server::HookServer;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    registration_web_hook_can_interrupt_or_patch,
    login_web_hook_and_revoke_active_sessions,
);

const PASSWORD: &str = "correct horse battery staple";

async fn init(env: &TestEnv, kind: &str) -> Value {
    env.http
        .get(env.public_url(&format!("self-service/{kind}/api")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn submit(env: &TestEnv, flow: &Value, body: Value) -> (u16, Value) {
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn identities(env: &TestEnv) -> Vec<Value> {
    env.http
        .get(env.admin_url("admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn registration_web_hook_can_interrupt_or_patch(backend: Backend) {
    let mut hook = HookServer::start().await;
    let config = json!({"hooks": [
        {"hook": "web_hook", "config": {
            "url": format!("{}/check", hook.url),
            "body": {"email": "{{ ctx.identity.traits.email }}", "flow": "{{ ctx.flow.id }}"},
            "auth": {"type": "api_key", "config": {"name": "X-Hook-Key", "value": "s3cret-value", "in": "header"}},
            "response": {"parse": true}
        }},
        {"hook": "session"}
    ]});
    let env = TestEnv::builder(backend)
        .set(format!(
            "selfservice.flows.registration.after.password={config}"
        ))
        .start()
        .await;

    // The hook refuses: the flow comes back with its message on the field, nothing is stored.
    hook.reply(
        409,
        r##"{"messages":[{"instance_ptr":"#/traits/email","messages":[{"id":4000099,"text":"This domain is not allowed.","type":"error","context":{}}]}]}"##,
    );
    let flow = init(&env, "registration").await;
    let (status, body) = submit(
        &env,
        &flow,
        json!({"method": "password", "traits": {"email": "blocked@example.com"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let email = body["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "traits.email")
        .unwrap();
    assert_eq!(email["messages"][0]["id"], 4000099, "{body}");
    let seen = hook.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/check");
    assert_eq!(seen.header("x-hook-key"), Some("s3cret-value"));
    assert_eq!(
        seen.json(),
        json!({"email": "blocked@example.com", "flow": flow["id"]})
    );
    assert!(
        identities(&env).await.is_empty(),
        "an interrupted registration stores nothing"
    );

    // The hook patches metadata: the identity is stored with it.
    hook.reply(
        200,
        r#"{"identity":{"metadata_public":{"plan":"free"},"state":"inactive"}}"#,
    );
    let (status, body) = submit(
        &env,
        &flow,
        json!({"method": "password", "traits": {"email": "ok@example.com"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"]["metadata_public"], json!({"plan": "free"}));
    assert_eq!(
        body["identity"]["state"], "active",
        "only traits and metadata are patched"
    );
    hook.next().await;

    // A failing hook server is a 502, and nothing is stored.
    hook.reply(500, "oops");
    let flow = init(&env, "registration").await;
    let (status, body) = submit(
        &env,
        &flow,
        json!({"method": "password", "traits": {"email": "later@example.com"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(identities(&env).await.len(), 1);
}

async fn login_web_hook_and_revoke_active_sessions(backend: Backend) {
    let mut hook = HookServer::start().await;
    let config = json!({"hooks": [
        {"hook": "revoke_active_sessions"},
        {"hook": "web_hook", "config": {
            "url": format!("{}/logged-in", hook.url),
            "auth": {"type": "basic_auth", "config": {"user": "portcullis", "password": "hook-password"}}
        }}
    ]});
    let env = TestEnv::builder(backend)
        .set(format!("selfservice.flows.login.after={config}"))
        .start()
        .await;
    let created = env
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": "hooked@example.com"},
            "credentials": {"password": {"config": {"password": PASSWORD}}},
        }))
        .await;
    let login = || async {
        let flow = init(&env, "login").await;
        submit(
            &env,
            &flow,
            json!({"method": "password", "identifier": "hooked@example.com", "password": PASSWORD}),
        )
        .await
    };
    let (status, first) = login().await;
    assert_eq!(status, 200, "{first}");
    // Without a body template the hook gets the whole context.
    let seen = hook.next().await;
    assert_eq!(seen.path, "/logged-in");
    assert!(seen.header("authorization").unwrap().starts_with("Basic "));
    let ctx = seen.json();
    assert_eq!(ctx["identity"]["id"], created["id"]);
    assert_eq!(ctx["session"]["id"], first["session"]["id"]);
    assert_eq!(ctx["request_method"], "POST");
    assert!(ctx["flow"]["id"].is_string());

    let (status, second) = login().await;
    assert_eq!(status, 200);
    hook.next().await;
    let sessions: Value = env
        .http
        .get(env.admin_url(&format!(
            "admin/identities/{}/sessions",
            created["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let active: Vec<&Value> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["active"] == true)
        .collect();
    assert_eq!(active.len(), 1, "{sessions}");
    assert_eq!(active[0]["id"], second["session"]["id"]);
    let res = env.whoami(first["session_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 401, "the earlier session was revoked");

    // A plain (non-parse) hook that fails does not undo a login.
    hook.reply(500, "down");
    let (status, _) = login().await;
    assert_eq!(status, 200);
    let _ = message_ids;
}
