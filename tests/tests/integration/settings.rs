//! The settings flow end to end: profile and password changes for native, SPA and HTML clients, privileged
//! changes after `privileged_session_max_age` (paused across the refresh sign-in in a continuity container),
//! identity mismatch, sessions, hooks and verification of new addresses.

use crate::recovery::{
    env_with_mail, flow_param, html_flow, html_login, mail_to, native_login, person, PASSWORD,
};
use serde_json::{json, Value};
use tests::browser::{csrf_of, message_ids, Browser};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    native_profile_and_password,
    privileged_changes_need_a_fresh_sign_in,
    flows_belong_to_their_identity,
    spa_and_html_settings,
    changed_address_is_verified_again_and_hooks_run,
    stale_change_completes_after_the_refresh_sign_in,
    paused_changes_stay_with_their_browser_identity_and_lifespan,
);

const NEW_PASSWORD: &str = "a brand new passphrase 42";

async fn native_settings(env: &TestEnv, token: &str) -> Value {
    let res = env
        .http
        .get(env.public_url("self-service/settings/api"))
        .header("x-session-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn submit(env: &TestEnv, token: &str, flow: &Value, body: Value) -> (u16, Value) {
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .header("x-session-token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn native_profile_and_password(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = person(&env, "ann@example.com").await;
    let token = native_login(&env, "ann@example.com", PASSWORD)
        .await
        .unwrap();
    let flow = native_settings(&env, &token).await;
    assert_eq!(flow["state"], "show_form");
    assert_eq!(flow["type"], "api");
    assert_eq!(flow["identity"]["id"], id);
    assert!(flow["identity"].get("credentials").is_none());
    let names: Vec<&str> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["attributes"]["name"].as_str())
        .collect();
    for n in [
        "csrf_token",
        "traits.email",
        "traits.name.first",
        "password",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    let email_node = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "traits.email")
        .unwrap();
    assert_eq!(email_node["attributes"]["value"], "ann@example.com");
    assert_eq!(email_node["group"], "profile");
    // One save button per method, each after its own inputs.
    let buttons: Vec<(String, String, usize)> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, n)| n["attributes"]["name"] == "method")
        .map(|(i, n)| {
            (
                n["group"].as_str().unwrap().to_owned(),
                n["attributes"]["value"].as_str().unwrap().to_owned(),
                i,
            )
        })
        .collect();
    assert_eq!(buttons.len(), 2, "{buttons:?}");
    assert_eq!(
        (buttons[0].0.as_str(), buttons[0].1.as_str()),
        ("profile", "profile")
    );
    assert_eq!(
        (buttons[1].0.as_str(), buttons[1].1.as_str()),
        ("password", "password")
    );
    let password_at = names.iter().position(|n| *n == "password").unwrap();
    assert!(password_at < buttons[1].2, "{names:?}");

    // Profile: validated against the schema, then saved.
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "not-an-email"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(!message_ids(&body).is_empty());
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "ann@example.com", "name": {"first": "Ann"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "success");
    assert!(message_ids(&body).contains(&1_050_001));
    assert_eq!(body["identity"]["traits"]["name"]["first"], "Ann");
    // Cached sessions show the change at once.
    let who: Value = env.whoami(&token).await.json().await.unwrap();
    assert_eq!(who["identity"]["traits"]["name"]["first"], "Ann");

    // Password: the policy, not the old one, then saved.
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "password", "password": "short"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message_ids(&body).contains(&4_000_032), "{body}");
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "password", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message_ids(&body).contains(&4_000_039), "{body}");
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "password", "password": ""}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message_ids(&body).contains(&4_000_002), "{body}");
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "password", "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], "password");
    assert!(!body.to_string().contains(NEW_PASSWORD));
    assert_eq!(
        native_login(&env, "ann@example.com", PASSWORD).await,
        Err(400)
    );
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_ok());

    // Unknown methods, bad bodies, browsers on API flows, no session.
    let (status, _) = submit(&env, &token, &flow, json!({"method": "totp"})).await;
    assert_eq!(status, 400);
    let (status, _) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "profile", "traits": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .header("x-session-token", &token)
        .header("origin", "https://evil.example")
        .json(&json!({"method": "password", "password": "another new passphrase 7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = env
        .http
        .get(env.public_url("self-service/settings/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["id"], "session_inactive");
    let res = env
        .http
        .get(env.public_url(&format!(
            "self-service/settings/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Expired flows: 410 with a replacement.
    env.clock.advance(time::Duration::minutes(61));
    let token = env.login(&id).await;
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "ann@example.com"}}),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    let replacement = body["use_flow_id"].as_str().unwrap();
    let res = env
        .http
        .get(env.public_url(&format!("self-service/settings/flows?id={replacement}")))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn privileged_changes_need_a_fresh_sign_in(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("selfservice.flows.settings.privileged_session_max_age=15m")
        .start()
        .await;
    let id = person(&env, "ann@example.com").await;
    let token = env.login(&id).await;
    env.clock.advance(time::Duration::minutes(20));
    let flow = native_settings(&env, &token).await;

    // Harmless traits may still change.
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "ann@example.com", "name": {"last": "Lee"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The password, and the identifier, may not.
    for change in [
        json!({"method": "password", "password": NEW_PASSWORD}),
        json!({"method": "profile", "traits": {"email": "mallory@example.com"}}),
    ] {
        let (status, body) = submit(&env, &token, &flow, change).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["id"], "session_refresh_required");
        let to = body["redirect_browser_to"].as_str().unwrap();
        let expected_back = format!(
            "{}self-service/settings?flow={}",
            env.public,
            flow["id"].as_str().unwrap()
        );
        let url = url::Url::parse(to).unwrap();
        assert_eq!(url.path(), "/self-service/login/browser");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["refresh"], "true");
        assert_eq!(q["return_to"], expected_back);
    }
    assert!(native_login(&env, "ann@example.com", PASSWORD)
        .await
        .is_ok());
    assert!(native_login(&env, "mallory@example.com", PASSWORD)
        .await
        .is_err());

    // HTML: refresh sign-in, then back to the settings flow, where the paused change goes through.
    let mut b = Browser::html();
    let res = html_login(&env, &mut b, "ann@example.com", PASSWORD).await;
    assert_eq!(res.status, 303);
    let sflow = html_flow(&env, &mut b, "settings").await;
    let sid = sflow["id"].as_str().unwrap().to_owned();
    env.clock.advance(time::Duration::minutes(20));
    let res = b
        .post_form(
            sflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&sflow)),
                ("password", NEW_PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let back = refresh_sign_in(&env, &mut b, res.location(), "ann@example.com", PASSWORD).await;
    assert_eq!(
        back,
        format!("{}self-service/settings?flow={sid}", env.public)
    );
    let res = b.get(&back).await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/settings?flow={sid}"))
    );
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Your changes have been saved!"),
        "{}",
        page.text
    );
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_ok());
    // The flow stays usable (the refresh rotated the CSRF cookie; the flow shows the current token).
    let sflow = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={sid}")))
        .await
        .json();
    let res = b
        .post_form(
            sflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&sflow)),
                ("traits.email", "ann@example.com"),
                ("traits.name.first", "Ann"),
                ("method", "profile"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let sflow = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={sid}")))
        .await
        .json();
    assert_eq!(sflow["identity"]["traits"]["name"]["first"], "Ann");
}

/// Follows a refresh sign-in from the `…/login/browser?refresh=true` URL that a settings submit redirected to:
/// the login page, then the password form. Returns where the login sends the browser back to.
async fn refresh_sign_in(
    env: &TestEnv,
    b: &mut Browser,
    refresh: &str,
    identifier: &str,
    password: &str,
) -> String {
    assert!(
        refresh.starts_with(&env.public_url("self-service/login/browser?refresh=true")),
        "{refresh}"
    );
    let res = b.get(refresh).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let rflow = b
        .get(&env.public_url(&format!(
            "self-service/login/flows?id={}",
            flow_param(res.location())
        )))
        .await
        .json();
    assert_eq!(rflow["refresh"], true);
    let res = b
        .post_form(
            rflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&rflow)),
                ("identifier", identifier),
                ("password", password),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    res.location().to_owned()
}

/// The continuity containers' payloads as stored.
async fn stored_payloads(env: &TestEnv) -> Vec<String> {
    let db = env.running.as_ref().unwrap().db.clone();
    identity::on_pool!(&db, pool, {
        sqlx::query_scalar::<_, String>("SELECT CAST(payload AS TEXT) FROM continuity_containers")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

/// Kratos keeps a privileged change that needs a refresh sign-in in a continuity container and completes it when
/// the browser comes back: registration, an old session, a new password, the refresh sign-in, and the password is
/// changed without submitting it again.
async fn stale_change_completes_after_the_refresh_sign_in(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("selfservice.flows.settings.privileged_session_max_age=15m")
        .set(r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"}]}"#)
        .start()
        .await;
    let mut b = Browser::html();
    let reg = html_flow(&env, &mut b, "registration").await;
    let res = b
        .post_form(
            reg["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&reg)),
                ("traits.email", "ann@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(b.cookie("ory_kratos_session").is_some());
    env.clock.advance(time::Duration::minutes(20));

    // The password change needs a fresh sign-in; the browser gets the container's cookie with the redirect.
    let sflow = html_flow(&env, &mut b, "settings").await;
    let sid = sflow["id"].as_str().unwrap().to_owned();
    let res = b
        .post_form(
            sflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&sflow)),
                ("password", NEW_PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let refresh = res.location().to_owned();
    let url = url::Url::parse(&refresh).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["refresh"], "true");
    assert_eq!(
        q["return_to"],
        format!("{}self-service/settings?flow={sid}", env.public)
    );
    let set = res
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("ory_kratos_continuity="))
        .expect("the continuity cookie is set");
    assert!(set.contains("HttpOnly"), "{set}");
    let cookie = b.cookie("ory_kratos_continuity").unwrap();
    assert!(!cookie.contains(&sid), "the cookie is sealed: {cookie}");
    // The paused password is stored sealed, never in clear.
    let payloads = stored_payloads(&env).await;
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    assert!(!payloads[0].contains(NEW_PASSWORD), "{}", payloads[0]);
    assert!(payloads[0].contains("sealed"), "{}", payloads[0]);
    // Nothing changed yet, and coming back without signing in again changes nothing either.
    assert!(native_login(&env, "ann@example.com", PASSWORD)
        .await
        .is_ok());
    let res = b
        .get(&env.public_url(&format!("self-service/settings?flow={sid}")))
        .await;
    assert_eq!(res.status, 303);
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_err());
    assert_eq!(stored_payloads(&env).await.len(), 1, "it still waits");

    // The refresh sign-in sends the browser back to the flow, which completes the change.
    let back = refresh_sign_in(&env, &mut b, &refresh, "ann@example.com", PASSWORD).await;
    assert_eq!(
        back,
        format!("{}self-service/settings?flow={sid}", env.public)
    );
    let res = b.get(&back).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/settings?flow={sid}"))
    );
    assert_eq!(
        b.cookie("ory_kratos_continuity"),
        None,
        "the cookie is removed"
    );
    assert!(
        stored_payloads(&env).await.is_empty(),
        "the container is used up"
    );
    let sflow = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={sid}")))
        .await;
    assert_eq!(sflow.status, 200, "{}", sflow.text);
    let sflow = sflow.json();
    assert_eq!(sflow["state"], "success");
    assert_eq!(sflow["active"], "password");
    assert!(message_ids(&sflow).contains(&1_050_001), "{sflow}");
    assert!(!sflow.to_string().contains(NEW_PASSWORD));
    let page = b.get(res.location()).await;
    assert!(
        page.text.contains("Your changes have been saved!"),
        "{}",
        page.text
    );
    assert_eq!(
        native_login(&env, "ann@example.com", PASSWORD).await,
        Err(400)
    );
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_ok());
    // The session that signed in again still works.
    let who = b.get(&env.public_url("sessions/whoami")).await;
    assert_eq!(who.status, 200);

    // A paused identifier change completes the same way.
    env.clock.advance(time::Duration::minutes(20));
    let sflow = html_flow(&env, &mut b, "settings").await;
    let sid = sflow["id"].as_str().unwrap().to_owned();
    let res = b
        .post_form(
            sflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&sflow)),
                ("traits.email", "ann@new.example"),
                ("method", "profile"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let back = refresh_sign_in(
        &env,
        &mut b,
        res.location(),
        "ann@example.com",
        NEW_PASSWORD,
    )
    .await;
    let res = b.get(&back).await;
    assert_eq!(res.status, 303);
    let sflow = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={sid}")))
        .await
        .json();
    assert_eq!(sflow["state"], "success");
    assert_eq!(sflow["active"], "profile");
    assert_eq!(sflow["identity"]["traits"]["email"], "ann@new.example");
    assert!(native_login(&env, "ann@new.example", NEW_PASSWORD)
        .await
        .is_ok());
    assert_eq!(
        native_login(&env, "ann@example.com", NEW_PASSWORD).await,
        Err(400)
    );
}

/// Submits a new password with an old session and returns the refresh URL; the browser now holds a container.
async fn pause_password(b: &mut Browser, flow: &Value, password: &str) -> String {
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(flow)),
                ("password", password),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(b.cookie("ory_kratos_continuity").is_some());
    res.location().to_owned()
}

async fn settings_state(env: &TestEnv, b: &mut Browser, sid: &str) -> Value {
    let res = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={sid}")))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["state"].clone()
}

/// A paused change is resumed only by the browser that paused it, for its identity, within its lifespan.
async fn paused_changes_stay_with_their_browser_identity_and_lifespan(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("selfservice.flows.settings.privileged_session_max_age=15m")
        .start()
        .await;
    person(&env, "ann@example.com").await;
    person(&env, "bob@example.com").await;
    let mut a = Browser::html();
    assert_eq!(
        html_login(&env, &mut a, "ann@example.com", PASSWORD)
            .await
            .status,
        303
    );
    env.clock.advance(time::Duration::minutes(20));
    let flow = html_flow(&env, &mut a, "settings").await;
    let sid = flow["id"].as_str().unwrap().to_owned();
    let refresh = pause_password(&mut a, &flow, NEW_PASSWORD).await;
    let back = format!("{}self-service/settings?flow={sid}", env.public);

    // Another browser of Ann's, freshly signed in, has no container: coming to the flow changes nothing.
    let mut other = Browser::html();
    assert_eq!(
        html_login(&env, &mut other, "ann@example.com", PASSWORD)
            .await
            .status,
        303
    );
    let res = other.get(&back).await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/settings?flow={sid}"))
    );
    assert_eq!(settings_state(&env, &mut other, &sid).await, "show_form");
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_err());
    // Nor with a forged container cookie, which is removed.
    other
        .jar
        .insert("ory_kratos_continuity".into(), "forged-value".into());
    let res = other.get(&back).await;
    assert_eq!(res.status, 303);
    assert_eq!(
        other.cookie("ory_kratos_continuity"),
        None,
        "a forged cookie is removed"
    );
    assert_eq!(settings_state(&env, &mut other, &sid).await, "show_form");

    // Bob, signed in in the browser that paused Ann's change, resumes nothing.
    let mut shared = a.clone();
    shared.jar.retain(|k, _| k == "ory_kratos_continuity");
    assert_eq!(
        html_login(&env, &mut shared, "bob@example.com", PASSWORD)
            .await
            .status,
        303
    );
    let res = shared.get(&back).await;
    assert_eq!(res.status, 303);
    assert!(
        res.location().starts_with(&env.public_url("ui/error")),
        "another identity's flow: {}",
        res.location()
    );
    assert!(native_login(&env, "bob@example.com", PASSWORD)
        .await
        .is_ok());
    assert!(native_login(&env, "bob@example.com", NEW_PASSWORD)
        .await
        .is_err());
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_err());

    // The browser that paused it, after Ann's refresh sign-in, still completes it.
    let res_back = refresh_sign_in(&env, &mut a, &refresh, "ann@example.com", PASSWORD).await;
    assert_eq!(res_back, back);
    assert_eq!(a.get(&back).await.status, 303);
    assert_eq!(settings_state(&env, &mut a, &sid).await, "success");
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_ok());

    // A container older than its 15 minutes is ignored: the change is dropped, the cookie removed.
    env.clock.advance(time::Duration::minutes(20));
    let flow = html_flow(&env, &mut a, "settings").await;
    let sid = flow["id"].as_str().unwrap().to_owned();
    let refresh = pause_password(&mut a, &flow, "a third passphrase 99").await;
    env.clock.advance(time::Duration::minutes(16));
    let back = refresh_sign_in(&env, &mut a, &refresh, "ann@example.com", NEW_PASSWORD).await;
    let res = a.get(&back).await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/settings?flow={sid}"))
    );
    assert_eq!(a.cookie("ory_kratos_continuity"), None);
    assert_eq!(settings_state(&env, &mut a, &sid).await, "show_form");
    assert!(
        native_login(&env, "ann@example.com", "a third passphrase 99")
            .await
            .is_err()
    );
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_ok());

    // A change superseded by a later submit of the flow is not resumed over it.
    env.clock.advance(time::Duration::minutes(20));
    let flow = html_flow(&env, &mut a, "settings").await;
    let sid = flow["id"].as_str().unwrap().to_owned();
    let refresh = pause_password(&mut a, &flow, "a fourth passphrase 77").await;
    let _ = refresh_sign_in(&env, &mut a, &refresh, "ann@example.com", NEW_PASSWORD).await;
    let flow = a
        .get(&env.public_url(&format!("self-service/settings/flows?id={sid}")))
        .await
        .json();
    let res = a
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("password", "a fifth passphrase 55"),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        native_login(&env, "ann@example.com", "a fifth passphrase 55")
            .await
            .is_ok()
    );
    assert_eq!(a.get(&back_of(&env, &sid)).await.status, 303);
    assert!(
        native_login(&env, "ann@example.com", "a fifth passphrase 55")
            .await
            .is_ok()
    );
    assert!(
        native_login(&env, "ann@example.com", "a fourth passphrase 77")
            .await
            .is_err()
    );
}

fn back_of(env: &TestEnv, sid: &str) -> String {
    format!("{}self-service/settings?flow={sid}", env.public)
}

async fn flows_belong_to_their_identity(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let ann = person(&env, "ann@example.com").await;
    let bob = person(&env, "bob@example.com").await;
    let ann_token = env.login(&ann).await;
    let bob_token = env.login(&bob).await;
    let flow = native_settings(&env, &ann_token).await;
    let (status, body) = submit(
        &env,
        &bob_token,
        &flow,
        json!({"method": "password", "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["id"], "security_identity_mismatch");
    let res = env
        .http
        .get(env.public_url(&format!(
            "self-service/settings/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .header("x-session-token", &bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(native_login(&env, "ann@example.com", PASSWORD)
        .await
        .is_ok());
    // The built-in page of Ann's flow does not show it to Bob.
    let mut b = Browser::html();
    b.get(&env.public_url("self-service/login/browser")).await;
    let page = b
        .get_with(
            &env.public_url(&format!(
                "ui/settings?flow={}",
                flow["id"].as_str().unwrap()
            )),
            &[("cookie", &env.cookie_for(&bob_token))],
        )
        .await;
    assert_eq!(page.status, 303);
}

async fn spa_and_html_settings(backend: Backend) {
    let env = TestEnv::start(backend).await;
    person(&env, "ann@example.com").await;

    // No session: HTML goes to sign in and back; SPA gets 401.
    let mut html = Browser::html();
    let res = html
        .get(&env.public_url("self-service/settings/browser"))
        .await;
    assert_eq!(res.status, 303);
    assert!(
        res.location()
            .contains("self-service/login/browser?return_to="),
        "{}",
        res.location()
    );
    let mut spa = Browser::spa();
    let res = spa
        .get(&env.public_url("self-service/settings/browser"))
        .await;
    assert_eq!(res.status, 401);

    // SPA sign-in, then settings as JSON.
    let flow = spa
        .get(&env.public_url("self-service/login/browser"))
        .await
        .json();
    let res = spa
        .post_json(
            flow["ui"]["action"].as_str().unwrap(),
            &json!({"method": "password", "identifier": "ann@example.com", "password": PASSWORD, "csrf_token": csrf_of(&flow)}),
        )
        .await;
    assert_eq!(res.status, 200);
    let flow = spa
        .get(&env.public_url("self-service/settings/browser"))
        .await;
    assert_eq!(flow.status, 200, "{}", flow.text);
    let flow = flow.json();
    assert_eq!(flow["type"], "browser");
    let res = spa
        .post_json(
            flow["ui"]["action"].as_str().unwrap(),
            &json!({"method": "profile", "traits": {"email": "ann@example.com", "name": {"first": "Ann"}}}),
        )
        .await;
    assert_eq!(res.status, 403, "no CSRF token: {}", res.text);
    let res = spa
        .post_json(
            flow["ui"]["action"].as_str().unwrap(),
            &json!({"method": "profile", "traits": {"email": "ann@example.com", "name": {"first": "Ann"}}, "csrf_token": csrf_of(&flow)}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["state"], "success");
    let redirect = body["continue_with"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "redirect_browser_to")
        .unwrap();
    assert!(redirect["redirect_browser_to"]
        .as_str()
        .unwrap()
        .starts_with(&env.public_url("ui/settings?flow=")));

    // HTML: form posts redirect back to the page, which shows the saved values.
    let mut b = Browser::html();
    html_login(&env, &mut b, "ann@example.com", PASSWORD).await;
    let welcome = b.get(&env.public_url("ui/welcome")).await;
    assert!(
        welcome.text.contains("Account settings"),
        "{}",
        welcome.text
    );
    let start = b
        .get(&env.public_url("self-service/settings/browser"))
        .await;
    let page = b.get(start.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("value=\"Ann\""), "{}", page.text);
    let sflow = b
        .get(&env.public_url(&format!(
            "self-service/settings/flows?id={}",
            flow_param(start.location())
        )))
        .await
        .json();
    let res = b
        .post_form(
            sflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&sflow)),
                ("traits.email", "ann@example.com"),
                ("traits.name.first", "Annie"),
                ("method", "profile"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = b.get(res.location()).await;
    assert!(
        page.text.contains("Your changes have been saved!"),
        "{}",
        page.text
    );
    assert!(page.text.contains("value=\"Annie\""), "{}", page.text);
    let res = b
        .post_form(
            sflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&sflow)),
                ("password", "x"),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = b.get(res.location()).await;
    assert!(
        page.text.contains("at least"),
        "the policy message is shown: {}",
        page.text
    );
}

async fn changed_address_is_verified_again_and_hooks_run(backend: Backend) {
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            "selfservice.flows.verification.enabled=true",
            r#"selfservice.flows.settings.after.hooks=[{"hook":"revoke_active_sessions"}]"#,
        ],
    )
    .await;
    let id = person(&env, "ann@example.com").await;
    let token = env.login(&id).await;
    let other = env.login(&id).await;
    let flow = native_settings(&env, &token).await;
    let (status, body) = submit(
        &env,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "ann@new.example"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let show = &body["continue_with"][0];
    assert_eq!(show["action"], "show_verification_ui", "{body}");
    assert_eq!(show["flow"]["verifiable_address"], "ann@new.example");
    let code = mail_to(&mut sink, "ann@new.example")
        .await
        .find_code()
        .unwrap();
    let addresses = body["identity"]["verifiable_addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 1);
    assert_eq!(addresses[0]["value"], "ann@new.example");
    assert_eq!(addresses[0]["verified"], false);
    // revoke_active_sessions: the other session is gone, this one stays.
    assert_eq!(env.whoami(&token).await.status(), 200);
    assert_eq!(env.whoami(&other).await.status(), 401);
    // The new e-mail is the login identifier now.
    assert!(native_login(&env, "ann@new.example", PASSWORD)
        .await
        .is_ok());
    assert_eq!(
        native_login(&env, "ann@example.com", PASSWORD).await,
        Err(400)
    );
    let vid = show["flow"]["id"].as_str().unwrap();
    let res = env
        .http
        .post(env.public_url(&format!("self-service/verification?flow={vid}")))
        .json(&json!({"method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let who: Value = env.whoami(&token).await.json().await.unwrap();
    assert_eq!(who["identity"]["verifiable_addresses"][0]["verified"], true);
}
