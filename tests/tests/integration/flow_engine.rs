//! The flow engine's shared behaviour, whatever the method: dispatch on `method`, bodies that do not decode, native
//! re-authentication and disabled accounts.

use serde_json::{json, Value};
use tests::browser::message_ids;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    a_method_without_a_strategy_gets_the_flow_back,
    settings_dispatch_on_method_too,
    a_body_that_does_not_decode_gets_the_flow_back,
    native_apps_can_re_authenticate,
    a_disabled_account_is_told_so,
    every_flow_records_the_url_it_was_started_with,
);

const SESSION_HOOK: &str =
    r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"}]}"#;
const PASSWORD: &str = "correct horse battery staple";

async fn init(env: &TestEnv, kind: &str, token: Option<&str>, query: &str) -> (u16, Value) {
    let mut req = env
        .http
        .get(env.public_url(&format!("self-service/{kind}/api{query}")));
    if let Some(t) = token {
        req = req.header("x-session-token", t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn submit(env: &TestEnv, flow: &Value, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = env.http.post(flow["ui"]["action"].as_str().unwrap());
    if let Some(t) = token {
        req = req.header("x-session-token", t);
    }
    let res = req.json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Registers `email` through the API with the session hook on; returns the session token.
async fn register(env: &TestEnv, email: &str) -> String {
    let (_, flow) = init(env, "registration", None, "").await;
    let (status, body) = submit(
        env,
        &flow,
        None,
        json!({"method": "password", "traits": {"email": email}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["session_token"].as_str().unwrap().to_owned()
}

async fn a_method_without_a_strategy_gets_the_flow_back(backend: Backend) {
    let env = TestEnv::start(backend).await;
    for (kind, id) in [("login", 4010002), ("registration", 4010003)] {
        let (_, flow) = init(&env, kind, None, "").await;
        for body in [
            json!({"method": "carrier-pigeon"}),
            json!({"method": "webauthn"}),
            json!({"method": 7}),
            json!({"password": PASSWORD}),
        ] {
            let (status, answer) = submit(&env, &flow, None, body.clone()).await;
            assert_eq!(status, 400, "{kind} {body}: {answer}");
            assert_eq!(
                answer["id"], flow["id"],
                "the flow itself comes back: {answer}"
            );
            assert_eq!(message_ids(&answer), vec![id], "{kind} {body}");
        }
        // The flow still works afterwards, and the message does not stick.
        let (status, answer) = submit(
            &env,
            &flow,
            None,
            json!({"method": "password", "identifier": "", "password": ""}),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            !message_ids(&answer).contains(&id),
            "the earlier message is gone: {answer}"
        );
    }
}

async fn settings_dispatch_on_method_too(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let token = register(&env, "settle@example.com").await;
    let (status, flow) = init(&env, "settings", Some(&token), "").await;
    assert_eq!(status, 200, "{flow}");
    for body in [
        json!({"method": "totp", "totp_code": "1"}),
        json!({"traits": {"email": "settle@example.com"}}),
    ] {
        let (status, answer) = submit(&env, &flow, Some(&token), body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["id"], flow["id"], "{answer}");
        assert_eq!(message_ids(&answer), vec![4010004], "{body}");
    }
    let (status, answer) = submit(
        &env,
        &flow,
        Some(&token),
        json!({"method": "profile", "traits": "settle@example.com"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(message_ids(&answer), vec![4000001], "{answer}");
    // Each method is still dispatched to its strategy.
    let (status, answer) = submit(
        &env,
        &flow,
        Some(&token),
        json!({"method": "password", "password": "a fresh and long passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"], "success");
    assert_eq!(answer["active"], "password");
}

async fn a_body_that_does_not_decode_gets_the_flow_back(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (_, flow) = init(&env, "login", None, "").await;
    let (status, answer) = submit(
        &env,
        &flow,
        None,
        json!({"method": "password", "identifier": ["a"], "password": 5}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["id"], flow["id"], "{answer}");
    assert_eq!(message_ids(&answer), vec![4000001], "{answer}");
    let (_, flow) = init(&env, "registration", None, "").await;
    let (status, answer) = submit(
        &env,
        &flow,
        None,
        json!({"method": "password", "traits": "me@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["id"], flow["id"], "{answer}");
    assert_eq!(message_ids(&answer), vec![4000001], "{answer}");
    let listed: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty(), "nothing was created: {listed:?}");
}

async fn native_apps_can_re_authenticate(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let token = register(&env, "again@example.com").await;
    // Without refresh, a signed-in app cannot start a login.
    let (status, err) = init(&env, "login", Some(&token), "").await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["id"], "session_already_available");
    // With refresh it gets a refresh flow that asks only for the password.
    let (status, flow) = init(&env, "login", Some(&token), "?refresh=true").await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["refresh"], true);
    assert_eq!(message_ids(&flow), vec![1010003]);
    let identifier = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "identifier")
        .unwrap();
    assert_eq!(identifier["attributes"]["type"], "hidden");
    assert_eq!(identifier["attributes"]["value"], "again@example.com");
    // A wrong password does not re-authenticate.
    let (status, answer) = submit(
        &env,
        &flow,
        Some(&token),
        json!({"method": "password", "identifier": "again@example.com", "password": "not it"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(message_ids(&answer), vec![4000006]);
    let (status, answer) = submit(
        &env,
        &flow,
        Some(&token),
        json!({"method": "password", "identifier": "again@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let fresh = answer["session_token"].as_str().unwrap();
    assert_ne!(fresh, token);
    assert_eq!(env.whoami(fresh).await.status(), 200);
    assert_eq!(
        env.whoami(&token).await.status(),
        401,
        "the re-authenticated session is replaced"
    );
}

async fn a_disabled_account_is_told_so(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    register(&env, "gone@example.com").await;
    let listed: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = listed[0]["id"].as_str().unwrap();
    let res = env
        .http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/state", "value": "inactive"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, flow) = init(&env, "login", None, "").await;
    let (status, answer) = submit(
        &env,
        &flow,
        None,
        json!({"method": "password", "identifier": "gone@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(message_ids(&answer), vec![4010011], "{answer}");
    assert!(answer.get("session_token").is_none());
    // The wrong password still gets the usual answer: being disabled is only told to whoever knows the password.
    let (_, answer) = submit(
        &env,
        &flow,
        None,
        json!({"method": "password", "identifier": "gone@example.com", "password": "not it"}),
    )
    .await;
    assert_eq!(message_ids(&answer), vec![4000006], "{answer}");
}

/// A flow's `request_url` is the whole URL of the init request, though the routes of each flow kind are nested
/// under `/self-service/<kind>` (a nested router sees only its own part of the path).
async fn every_flow_records_the_url_it_was_started_with(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("selfservice.flows.recovery.enabled=true")
        .set("selfservice.flows.verification.enabled=true")
        .start()
        .await;
    for kind in ["login", "registration", "recovery", "verification"] {
        let (status, flow) = init(&env, kind, None, "?foo=bar").await;
        assert_eq!(status, 200, "{flow}");
        assert_eq!(
            flow["request_url"],
            json!(env.public_url(&format!("self-service/{kind}/api?foo=bar"))),
            "{kind}"
        );
    }
}
