//! Native (API) registration, login and logout with the password method.

use serde_json::{json, Value};
use tests::browser::message_ids;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    native_registration_login_and_logout,
    native_login_failures_look_alike,
    registration_validates_traits_and_password,
    expired_and_unknown_flows,
);

const SESSION_HOOK: &str =
    r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"}]}"#;

async fn init(env: &TestEnv, kind: &str) -> Value {
    let res = env
        .http
        .get(env.public_url(&format!("self-service/{kind}/api")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
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

async fn native_registration_login_and_logout(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let flow = init(&env, "registration").await;
    assert_eq!(flow["type"], "api");
    assert_eq!(flow["state"], "choose_method");
    assert_eq!(flow["organization_id"], Value::Null);
    let id = flow["id"].as_str().unwrap();
    assert_eq!(
        flow["ui"]["action"],
        env.public_url(&format!("self-service/registration?flow={id}"))
    );
    let (status, body) = submit(
        &env,
        &flow,
        json!({"method": "password", "traits": {"email": "Native@Example.com"}, "password": "correct horse battery staple"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["session_token"].as_str().unwrap().to_owned();
    assert_eq!(body["continue_with"][0]["action"], "set_ory_session_token");
    assert_eq!(
        body["continue_with"][0]["ory_session_token"],
        token.as_str()
    );
    assert_eq!(body["identity"]["traits"]["email"], "Native@Example.com");
    assert!(body["identity"].get("credentials").is_none());
    assert_eq!(env.whoami(&token).await.status(), 200);
    let (status, _) = submit(&env, &flow, json!({"method": "password", "traits": {"email": "x@example.com"}, "password": "correct horse battery staple"})).await;
    assert_eq!(status, 400, "a completed flow cannot be reused");

    // Init while signed in.
    let res = env
        .http
        .get(env.public_url("self-service/login/api"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["id"], "session_already_available");

    // Login with the identifier in another case, form-encoded.
    let flow = init(&env, "login").await;
    assert_eq!(flow["requested_aal"], "aal1");
    assert_eq!(flow["refresh"], false);
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .form(&[
            ("method", "password"),
            ("identifier", " NATIVE@example.com"),
            ("password", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["continue_with"], Value::Null);
    assert_eq!(
        body["session"]["authentication_methods"][0]["method"],
        "password"
    );
    let login_token = body["session_token"].as_str().unwrap().to_owned();
    assert_ne!(login_token, token);
    let flow_after: Value = env
        .http
        .get(env.public_url(&format!(
            "self-service/login/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flow_after["state"], "passed_challenge");

    // Logout.
    let res = env
        .http
        .delete(env.public_url("self-service/logout/api"))
        .json(&json!({"session_token": login_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(env.whoami(&login_token).await.status(), 401);
    assert_eq!(
        env.whoami(&token).await.status(),
        200,
        "only that session ended"
    );
    let res = env
        .http
        .delete(env.public_url("self-service/logout/api"))
        .json(&json!({"session_token": login_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "logging out twice is fine, as in Kratos");
    let res = env
        .http
        .delete(env.public_url("self-service/logout/api"))
        .json(&json!({"session_token": "ory_st_unknownunknownunknownunknownun"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = env
        .http
        .delete(env.public_url("self-service/logout/api"))
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

async fn native_login_failures_look_alike(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": "known@example.com"},
        "credentials": {"password": {"config": {"password": "the right password"}}}
    }))
    .await;
    let flow = init(&env, "login").await;
    let (status, wrong) = submit(&env, &flow, json!({"method": "password", "identifier": "known@example.com", "password": "the wrong password"})).await;
    assert_eq!(status, 400);
    let (status, unknown) = submit(&env, &flow, json!({"method": "password", "identifier": "nobody@example.com", "password": "the wrong password"})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&wrong), vec![4000006]);
    assert_eq!(
        wrong["ui"]["messages"], unknown["ui"]["messages"],
        "unknown users and wrong passwords are indistinguishable"
    );
    let identifier = unknown["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "identifier")
        .unwrap();
    assert_eq!(
        identifier["attributes"]["value"], "nobody@example.com",
        "the identifier is echoed"
    );
    let password = unknown["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "password")
        .unwrap();
    assert!(
        password["attributes"].get("value").is_none(),
        "passwords are never echoed"
    );
    // A method this server does not offer gets the flow back with Kratos' "no strategy" message.
    let (status, body) = submit(&env, &flow, json!({"method": "totp", "totp_code": "1"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["id"], flow["id"], "{body}");
    assert_eq!(message_ids(&body), vec![4010002]);
    let (status, _) = submit(
        &env,
        &flow,
        json!({"method": "password", "identifier": 5, "password": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    // A disabled identity cannot sign in, even with the right password.
    let list: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    env.http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/state", "value": "inactive"}]))
        .send()
        .await
        .unwrap();
    let (status, body) = submit(&env, &flow, json!({"method": "password", "identifier": "known@example.com", "password": "the right password"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        message_ids(&body),
        vec![4010011],
        "Kratos' \"account disabled\", not \"address not verified\": {body}"
    );
}

async fn registration_validates_traits_and_password(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let flow = init(&env, "registration").await;
    let (status, body) = submit(&env, &flow, json!({"method": "password", "traits": {"email": "not-an-email"}, "password": "correct horse battery staple"})).await;
    assert_eq!(status, 400);
    let email = body["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "traits.email")
        .unwrap();
    assert_eq!(email["messages"][0]["id"], 4000001);
    assert_eq!(email["attributes"]["value"], "not-an-email");
    let (status, body) = submit(&env, &flow, json!({"method": "password", "traits": {"email": "short@example.com"}, "password": "short"})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&body), vec![4000032]);
    let (status, body) = submit(&env, &flow, json!({"method": "password", "traits": {"email": "similar@example.com"}, "password": "similar@example.com1"})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&body), vec![4000031]);
    let (status, body) = submit(&env, &flow, json!({"method": "password", "traits": {"email": "ok@example.com"}, "password": "correct horse battery staple"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("session_token").is_none(),
        "no session without the session hook"
    );
    assert_eq!(body["continue_with"], Value::Null);
    let flow = init(&env, "registration").await;
    let (status, body) = submit(&env, &flow, json!({"method": "password", "traits": {"email": "OK@example.com"}, "password": "another good passphrase"})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&body), vec![4000007], "duplicate");
    // Registration can be turned off.
    let off = TestEnv::builder(backend)
        .dsn(&env.dsn)
        .set("selfservice.flows.registration.enabled=false")
        .start()
        .await;
    let res = off
        .http
        .get(off.public_url("self-service/registration/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["id"], "self_service_flow_disabled");
}

async fn expired_and_unknown_flows(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let flow = init(&env, "login").await;
    env.clock.advance(time::Duration::minutes(61));
    let (status, body) = submit(
        &env,
        &flow,
        json!({"method": "password", "identifier": "a@example.com", "password": "x"}),
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    let new_id = body["use_flow_id"].as_str().unwrap();
    assert_ne!(new_id, flow["id"].as_str().unwrap());
    let res = env
        .http
        .get(env.public_url(&format!("self-service/login/flows?id={new_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the replacement flow works");
    let res = env
        .http
        .get(env.public_url(&format!(
            "self-service/login/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let res = env
        .http
        .get(env.public_url(&format!("self-service/registration/flows?id={new_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a login flow is not a registration flow");
    let res = env
        .http
        .get(env.public_url("self-service/login/flows?id=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "Kratos reads a malformed id as the nil UUID"
    );
    let res = env
        .http
        .post(env.public_url(&format!("self-service/login?flow={}", uuid::Uuid::new_v4())))
        .json(&json!({"method": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
