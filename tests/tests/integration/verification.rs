//! Address verification end to end: sent automatically after registration (SPA, HTML and native), asked for by
//! hand, by code or link, `require_verified_address` at login, and the address states pending → sent → completed.

use crate::recovery::{
    env_with_mail, exhaust_code, flow_param, html_flow, html_login, mail_to, native_flow,
    native_login, node_value, person, post, PASSWORD,
};
use serde_json::{json, Value};
use tests::browser::{csrf_of, message_ids, Browser};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    registration_sends_a_code_that_verifies,
    html_registration_and_the_link_in_the_mail,
    verification_on_request_never_reveals_addresses,
    link_method_verifies,
    require_verified_address_at_login,
    codes_are_limited_used_once_and_expire,
    link_opened_in_another_browser,
);

const VERIFICATION_ON: &str = "selfservice.flows.verification.enabled=true";
const SESSION_HOOK: &str =
    r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"}]}"#;

async fn address_of(env: &TestEnv, email: &str) -> Value {
    let list: Value = env
        .http
        .get(env.admin_url(&format!("admin/identities?credentials_identifier={email}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list[0]["verifiable_addresses"][0].clone()
}

async fn registration_sends_a_code_that_verifies(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[VERIFICATION_ON, SESSION_HOOK]).await;

    // Native registration: continue_with names the verification flow that already sent its code.
    let flow: Value = env
        .http
        .get(env.public_url("self-service/registration/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "password", "traits": {"email": "ann@example.com"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let items = body["continue_with"].as_array().unwrap();
    let show = items
        .iter()
        .find(|i| i["action"] == "show_verification_ui")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(show["flow"]["verifiable_address"], "ann@example.com");
    assert!(items.iter().any(|i| i["action"] == "set_ory_session_token"));
    let vid = show["flow"]["id"].as_str().unwrap().to_owned();
    assert!(show["flow"]["url"]
        .as_str()
        .unwrap()
        .starts_with(&env.public_url("ui/verification?flow=")));
    let mail = mail_to(&mut sink, "ann@example.com").await;
    let code = mail.find_code().unwrap();
    assert_eq!(address_of(&env, "ann@example.com").await["status"], "sent");

    let vflow: Value = env
        .http
        .get(env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vflow["state"], "sent_email");
    assert_eq!(vflow["type"], "api");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = post(&env, &vflow, json!({"method": "code", "code": wrong})).await;
    assert_eq!(status, 200);
    assert!(message_ids(&body).contains(&4_070_006), "{body}");
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    let (status, body) = post(&env, &vflow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "passed_challenge");
    assert!(message_ids(&body).contains(&1_080_002));
    let cont = body["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["id"] == "continue")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(cont["type"], "a");
    let address = address_of(&env, "ann@example.com").await;
    assert_eq!(address["verified"], true);
    assert_eq!(address["status"], "completed");
    assert!(address["verified_at"].is_string());

    // SPA registration: the verification flow is a browser flow of the same browser.
    let mut b = Browser::spa();
    let flow = b
        .get(&env.public_url("self-service/registration/browser"))
        .await
        .json();
    let res = b
        .post_json(
            flow["ui"]["action"].as_str().unwrap(),
            &json!({
                "method": "password",
                "traits": {"email": "bob@example.com"},
                "password": PASSWORD,
                "csrf_token": csrf_of(&flow),
            }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    let items = body["continue_with"].as_array().unwrap();
    assert_eq!(items[0]["action"], "show_verification_ui");
    assert_eq!(items.last().unwrap()["action"], "redirect_browser_to");
    let vid = items[0]["flow"]["id"].as_str().unwrap();
    let code = mail_to(&mut sink, "bob@example.com")
        .await
        .find_code()
        .unwrap();
    let vflow = b
        .get(&env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .await;
    assert_eq!(
        vflow.status, 200,
        "the flow carries the rotated CSRF token: {}",
        vflow.text
    );
    let vflow = vflow.json();
    let res = b
        .post_json(
            vflow["ui"]["action"].as_str().unwrap(),
            &json!({"method": "code", "code": code, "csrf_token": csrf_of(&vflow)}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["state"], "passed_challenge");
    assert_eq!(address_of(&env, "bob@example.com").await["verified"], true);
}

async fn html_registration_and_the_link_in_the_mail(backend: Backend) {
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            VERIFICATION_ON,
            r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"},{"hook":"show_verification_ui"}]}"#,
        ],
    )
    .await;
    let mut b = Browser::html();
    let start = b
        .get(&env.public_url("self-service/registration/browser"))
        .await;
    b.get(start.location()).await;
    let flow = b
        .get(&env.public_url(&format!(
            "self-service/registration/flows?id={}",
            flow_param(start.location())
        )))
        .await
        .json();
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("traits.email", "ann@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    // show_verification_ui: the browser goes to the verification page.
    assert!(
        res.location()
            .starts_with(&env.public_url("ui/verification?flow=")),
        "{}",
        res.location()
    );
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("name=\"code\""), "{}", page.text);

    // Issue 14, finding 4: clicking the link in the mail (in another browser, as a mail app would) only opens the
    // page with the code filled in; a mail scanner's GET or a tampered code verifies and uses up nothing.
    let mail = mail_to(&mut sink, "ann@example.com").await;
    let link = mail.find_url().expect("a link");
    assert!(
        link.contains("self-service/verification?flow=") && link.contains("&code="),
        "{link}"
    );
    let vid = flow_param(&link);
    assert_eq!(env.http.get(&link).send().await.unwrap().status(), 303);
    let tampered = link.replace("code=", "code=9");
    let mut other = Browser::html();
    let res = other.get(&tampered).await;
    assert_eq!(res.status, 303);
    let res = other.get(&link).await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/verification?flow={vid}"))
    );
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    let page = other.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let code = link.rsplit("code=").next().unwrap().to_owned();
    assert_eq!(code.len(), 6, "{link}");
    assert!(
        page.text.contains(&format!("value=\"{code}\"")),
        "the code is pre-filled: {}",
        page.text
    );
    // The page's button: a POST with the CSRF token of the browser that opened the link.
    let vflow = other
        .get(&env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .await
        .json();
    assert_eq!(node_value(&vflow, "code"), json!(code));
    let res = other
        .post_form(
            vflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&vflow)),
                ("code", &code),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(res
        .location()
        .starts_with(&env.public_url("ui/verification?flow=")));
    let address = address_of(&env, "ann@example.com").await;
    assert_eq!(address["verified"], true);
    assert_eq!(other.cookie("ory_kratos_session"), None);
    // The page in the first browser now shows the success and a way on.
    let page = b
        .get(&env.public_url(&format!("ui/verification?flow={}", flow_param(&link))))
        .await;
    assert!(page.text.contains("successfully verified"), "{}", page.text);
    // The session sees the new state.
    let who = b.get(&env.public_url("sessions/whoami")).await.json();
    assert_eq!(who["identity"]["verifiable_addresses"][0]["verified"], true);
}

async fn verification_on_request_never_reveals_addresses(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[VERIFICATION_ON]).await;
    person(&env, "ann@example.com").await;
    assert_eq!(
        address_of(&env, "ann@example.com").await["status"],
        "pending"
    );
    let unknown: Value = env
        .http
        .get(env.public_url("self-service/verification/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["state"], "choose_method");
    let (s1, a) = post(
        &env,
        &unknown,
        json!({"method": "code", "email": "nobody@example.com"}),
    )
    .await;
    let known: Value = env
        .http
        .get(env.public_url("self-service/verification/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (s2, b) = post(
        &env,
        &known,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a["state"], b["state"]);
    assert_eq!(message_ids(&a), message_ids(&b));
    assert!(message_ids(&a).contains(&1_080_003));
    mail_to(&mut sink, "ann@example.com").await;
    assert_eq!(address_of(&env, "ann@example.com").await["status"], "sent");

    // Missing address, and the browser flow's CSRF protection.
    let (status, body) = post(&env, &known, json!({"method": "code"})).await;
    assert_eq!(status, 400);
    assert!(message_ids(&body).contains(&4_000_002), "{body}");
    let mut spa = Browser::spa();
    let flow = spa
        .get(&env.public_url("self-service/verification/browser"))
        .await
        .json();
    let res = spa
        .post_json(
            flow["ui"]["action"].as_str().unwrap(),
            &json!({"method": "code", "email": "ann@example.com"}),
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["error"]["id"], "security_csrf_violation");
    // Verification works signed in too.
    let id = crate::recovery::person(&env, "bob@example.com").await;
    let token = env.login(&id).await;
    let res = env
        .http
        .get(env.public_url("self-service/verification/api"))
        .header("x-session-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn link_method_verifies(backend: Backend) {
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            VERIFICATION_ON,
            "selfservice.flows.verification.use=link",
            "selfservice.methods.link.enabled=true",
        ],
    )
    .await;
    person(&env, "ann@example.com").await;
    let flow: Value = env
        .http
        .get(env.public_url("self-service/verification/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "link", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(message_ids(&body).contains(&1_080_001), "{body}");
    let link = mail_to(&mut sink, "ann@example.com")
        .await
        .find_url()
        .unwrap();
    assert!(link.contains("&token="), "{link}");
    let res = env.http.get(format!("{link}0")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    // Issue 14, finding 4: the GET (a mail scanner's, or the person's) verifies nothing by itself.
    let res = env.http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    // A browser that opens the link gets a confirmation page; its Continue (a POST with its own CSRF token)
    // verifies, although a native app started the flow.
    let mut b = Browser::html();
    let res = b.get(&link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("name=\"token\""), "{}", page.text);
    let vflow = b
        .get(&env.public_url(&format!(
            "self-service/verification/flows?id={}",
            flow_param(&link)
        )))
        .await
        .json();
    assert!(message_ids(&vflow).contains(&1_080_000), "{vflow}");
    // Without the CSRF token a browser's POST is refused.
    let res = b
        .post_form(
            vflow["ui"]["action"].as_str().unwrap(),
            &[
                ("token", node_value(&vflow, "token").as_str().unwrap()),
                ("method", "link"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(res.location().starts_with(&env.public_url("ui/error?id=")));
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    let res = b
        .post_form(
            vflow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&vflow)),
                ("token", node_value(&vflow, "token").as_str().unwrap()),
                ("method", "link"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(res
        .location()
        .starts_with(&env.public_url("ui/verification?flow=")));
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], true);
}

async fn require_verified_address_at_login(backend: Backend) {
    let hook =
        r#"selfservice.flows.login.after.password={"hooks":[{"hook":"require_verified_address"}]}"#;
    let (env, mut sink) = env_with_mail(backend, &[VERIFICATION_ON, hook]).await;
    person(&env, "ann@example.com").await;

    // Native: 403 with the verification flow to show; no session.
    let flow: Value = env
        .http
        .get(env.public_url("self-service/login/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "password", "identifier": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["id"], "session_verified_address_required");
    let item = &body["error"]["details"]["continue_with"][0];
    assert_eq!(item["action"], "show_verification_ui", "{body}");
    assert!(!body.to_string().contains("ory_st_"));
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    let vid = item["flow"]["id"].as_str().unwrap();
    let res = env
        .http
        .post(env.public_url(&format!("self-service/verification?flow={vid}")))
        .json(&json!({"method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(native_login(&env, "ann@example.com", PASSWORD)
        .await
        .is_ok());

    // HTML: straight to the verification page, without a session cookie.
    person(&env, "bob@example.com").await;
    let mut b = Browser::html();
    let res = html_login(&env, &mut b, "bob@example.com", PASSWORD).await;
    assert_eq!(res.status, 303);
    assert!(
        res.location()
            .starts_with(&env.public_url("ui/verification?flow=")),
        "{}",
        res.location()
    );
    assert_eq!(b.get(&env.public_url("sessions/whoami")).await.status, 401);
    mail_to(&mut sink, "bob@example.com").await;
    drop(env);

    // The legacy error: a 400 flow with 4000010.
    let (env, _sink) = env_with_mail(
        backend,
        &[
            VERIFICATION_ON,
            hook,
            "feature_flags.legacy_require_verified_login_error=true",
        ],
    )
    .await;
    person(&env, "ann@example.com").await;
    let flow: Value = env
        .http
        .get(env.public_url("self-service/login/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "password", "identifier": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message_ids(&body).contains(&4_000_010), "{body}");
}

async fn codes_are_limited_used_once_and_expire(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[VERIFICATION_ON]).await;
    person(&env, "ann@example.com").await;
    let send = |flow: Value| {
        let env = &env;
        async move {
            let (status, body) = post(
                env,
                &flow,
                json!({"method": "code", "email": "ann@example.com"}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };

    // Five wrong codes void the code: the right one is refused too, and the address stays unverified.
    let flow = native_flow(&env, "verification").await;
    send(flow.clone()).await;
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    exhaust_code(&env, &flow, &code, 4_070_006).await;
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);

    // A resend gives a fresh code that works once.
    send(flow.clone()).await;
    let fresh = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": fresh})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "passed_challenge");
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], true);
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": fresh})).await;
    assert_eq!(status, 400, "a used code passes again: {body}");
    assert!(message_ids(&body).contains(&4_070_002), "{body}");
    // Nor does it work in another flow.
    let other = native_flow(&env, "verification").await;
    send(other.clone()).await;
    mail_to(&mut sink, "ann@example.com").await;
    let (_, body) = post(&env, &other, json!({"method": "code", "code": fresh})).await;
    assert!(message_ids(&body).contains(&4_070_006), "{body}");

    // An expired flow is replaced: 410 with the id of a new one.
    let late = native_flow(&env, "verification").await;
    send(late.clone()).await;
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    env.clock.advance(time::Duration::minutes(61));
    let (status, body) = post(&env, &late, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    assert!(body["use_flow_id"].is_string(), "{body}");
}

/// A verification link opened in a browser without any cookies (another device than the one that asked for the
/// mail): the GET uses nothing, gives that browser a CSRF cookie and sends it to the page; the flow is readable by
/// that browser and carries the code and that browser's CSRF token; its POST verifies the address.
async fn link_opened_in_another_browser(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[VERIFICATION_ON]).await;
    person(&env, "ann@example.com").await;
    let mut asking = Browser::html();
    let flow = html_flow(&env, &mut asking, "verification").await;
    let res = asking
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("email", "ann@example.com"),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let mail = mail_to(&mut sink, "ann@example.com").await;
    let link = mail.find_url().expect("a link");
    let vid = flow_param(&link);
    assert_eq!(vid, flow["id"].as_str().unwrap());
    let code = url::Url::parse(&link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("the link carries the code");

    let mut other = Browser::html();
    assert!(other.jar.is_empty());
    let res = other.get(&link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/verification?flow={vid}"))
    );
    assert!(
        res.set_cookies()
            .iter()
            .any(|c| c.starts_with("csrf_token_")),
        "a CSRF cookie for this browser: {:?}",
        res.set_cookies()
    );
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    let read = other
        .get(&env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    let vflow = read.json();
    assert_eq!(node_value(&vflow, "code"), json!(code));
    let token = csrf_of(&vflow);
    assert!(!token.is_empty());
    // The token is this browser's: the asking browser's token does not pass with this browser's cookie.
    let theirs = asking
        .get(&env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .await
        .json();
    let res = other
        .post_json(
            vflow["ui"]["action"].as_str().unwrap(),
            &json!({"method": "code", "code": code, "csrf_token": csrf_of(&theirs)}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert_eq!(res.json()["error"]["id"], "security_csrf_violation");
    assert_eq!(address_of(&env, "ann@example.com").await["verified"], false);
    // The code was not used up by any of that: this browser's POST verifies.
    let res = other
        .post_form(
            vflow["ui"]["action"].as_str().unwrap(),
            &[("csrf_token", &token), ("code", &code), ("method", "code")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let done = other
        .get(&env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .await
        .json();
    assert_eq!(done["state"], "passed_challenge", "{done}");
    let address = address_of(&env, "ann@example.com").await;
    assert_eq!(address["verified"], true);
    assert_eq!(address["status"], "completed");
}
