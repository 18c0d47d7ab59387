//! Account recovery end to end: HTML, SPA and native clients, codes and links read from real mail, enumeration
//! safety, the wrong-code limit, single use, tampering, expiry, and the admin recovery endpoints.

use serde_json::{json, Value};
use tests::browser::{csrf_of, message_ids, Browser};
use tests::smtp_sink::{Mail, SmtpSink};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    html_recovery_by_code_then_new_password,
    spa_and_native_recovery_by_code,
    unknown_addresses_look_the_same,
    wrong_codes_are_limited_and_codes_work_once,
    link_method_and_tampered_links,
    admin_recovery_code_and_link,
    recovery_needs_to_be_enabled_and_signed_out,
    recovery_code_links_use_nothing_and_bind_to_the_browser,
    admin_recovery_refuses_lifespans_out_of_range,
    admin_recovery_code_refuses_a_flow_type_that_is_not_a_string,
    an_account_disabled_after_the_code_was_sent_is_not_recovered,
);

pub const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase 42";
pub const RECOVERY_ON: &str = "selfservice.flows.recovery.enabled=true";

/// The next mail, which must be for `to` (bounded wait: the worker delivers as soon as the message is queued).
pub async fn mail_to(sink: &mut SmtpSink, to: &str) -> Mail {
    let m = tokio::time::timeout(std::time::Duration::from_secs(20), sink.next_mail())
        .await
        .expect("the mail arrives")
        .expect("the sink is running");
    assert_eq!(m.to, [to], "{}", m.text_body());
    m
}

pub async fn env_with_mail(backend: Backend, extra: &[&str]) -> (TestEnv, SmtpSink) {
    let sink = SmtpSink::start().await.unwrap();
    let mut b =
        TestEnv::builder(backend).set(format!("courier.smtp.connection_uri={}", sink.uri()));
    for e in extra {
        b = b.set(*e);
    }
    (b.start().await, sink)
}

pub async fn person(env: &TestEnv, email: &str) -> String {
    let body = env
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PASSWORD}}},
        }))
        .await;
    body["id"].as_str().unwrap().to_owned()
}

/// A native password login; the session token, or the status on failure.
pub async fn native_login(env: &TestEnv, identifier: &str, password: &str) -> Result<String, u16> {
    let flow: Value = env
        .http
        .get(env.public_url("self-service/login/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({"method": "password", "identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    if status == 200 {
        Ok(body["session_token"].as_str().unwrap().to_owned())
    } else {
        Err(status)
    }
}

/// Starts a browser flow as a browser does (init, then the UI page) and returns the flow JSON.
pub async fn html_flow(env: &TestEnv, b: &mut Browser, kind: &str) -> Value {
    let start = b
        .get(&env.public_url(&format!("self-service/{kind}/browser")))
        .await;
    assert_eq!(start.status, 303, "{}", start.text);
    let page = b.get(start.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    b.get(&env.public_url(&format!(
        "self-service/{kind}/flows?id={}",
        flow_param(start.location())
    )))
    .await
    .json()
}

/// Signs a browser in through the HTML login form; returns the submit's answer.
pub async fn html_login(
    env: &TestEnv,
    b: &mut Browser,
    identifier: &str,
    password: &str,
) -> tests::browser::Page {
    let flow = html_flow(env, b, "login").await;
    b.post_form(
        flow["ui"]["action"].as_str().unwrap(),
        &[
            ("csrf_token", &csrf_of(&flow)),
            ("identifier", identifier),
            ("password", password),
            ("method", "password"),
        ],
    )
    .await
}

pub fn flow_param(location: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "flow")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no flow id in {location}"))
}

fn node_names(flow: &Value) -> Vec<String> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["attributes"]["name"].as_str().map(str::to_owned))
        .collect()
}

pub async fn native_flow(env: &TestEnv, kind: &str) -> Value {
    let res = env
        .http
        .get(env.public_url(&format!("self-service/{kind}/api")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn post(env: &TestEnv, flow: &Value, body: Value) -> (u16, Value) {
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Submits five wrong codes to `flow`, each refused with the `invalid_id` message, then shows that this voided
/// `code` too: the right code now gets 4000001 ("request another code") and the flow still waits for one.
pub async fn exhaust_code(env: &TestEnv, flow: &Value, code: &str, invalid_id: u64) {
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, body) = post(env, flow, json!({"method": "code", "code": wrong})).await;
        assert_eq!(status, 200);
        assert!(message_ids(&body).contains(&invalid_id), "{body}");
    }
    let (status, body) = post(env, flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200);
    assert!(message_ids(&body).contains(&4_000_001), "{body}");
    assert_eq!(body["state"], "sent_email", "{body}");
}

async fn html_recovery_by_code_then_new_password(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    person(&env, "ann@example.com").await;
    let mut b = Browser::html();

    // The sign-in page offers recovery.
    let login = b.get(&env.public_url("self-service/login/browser")).await;
    let page = b.get(login.location()).await;
    assert!(page.text.contains("Forgot your password?"), "{}", page.text);

    let start = b
        .get(&env.public_url("self-service/recovery/browser"))
        .await;
    assert_eq!(start.status, 303);
    assert!(start
        .location()
        .starts_with(&env.public_url("ui/recovery?flow=")));
    let id = flow_param(start.location());
    let page = b.get(start.location()).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("name=\"email\""), "{}", page.text);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert_eq!(flow["state"], "choose_method");
    let csrf = csrf_of(&flow);
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();

    let sent = b
        .post_form(
            &action,
            &[
                ("csrf_token", &csrf),
                ("email", "Ann@Example.com"),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303);
    assert_eq!(
        sent.location(),
        env.public_url(&format!("ui/recovery?flow={id}"))
    );
    let mail = mail_to(&mut sink, "ann@example.com").await;
    let code = mail.find_code().expect("a six-digit code");
    let page = b.get(sent.location()).await;
    assert!(page.text.contains("name=\"code\""), "{}", page.text);

    // A wrong code goes back to the form with 4060006; the flow keeps waiting for the right one.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = b
        .post_form(
            &action,
            &[("csrf_token", &csrf), ("code", wrong), ("method", "code")],
        )
        .await;
    assert_eq!(res.status, 303);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert_eq!(flow["state"], "sent_email");
    assert!(message_ids(&flow).contains(&4_060_006), "{flow}");

    // Without the CSRF token the right code is refused and not used up.
    let res = b
        .post_form(&action, &[("code", &code), ("method", "code")])
        .await;
    assert_eq!(res.status, 303);
    assert!(
        res.location().starts_with(&env.public_url("ui/error")),
        "{}",
        res.location()
    );

    let res = b
        .post_form(
            &action,
            &[("csrf_token", &csrf), ("code", &code), ("method", "code")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.location()
            .starts_with(&env.public_url("ui/settings?flow=")),
        "{}",
        res.location()
    );
    let who = b.get(&env.public_url("sessions/whoami")).await;
    assert_eq!(who.status, 200);
    let who = who.json();
    assert_eq!(who["authentication_methods"][0]["method"], "code_recovery");
    // Proving control of the address verified it.
    assert_eq!(who["identity"]["verifiable_addresses"][0]["verified"], true);
    assert_eq!(
        who["identity"]["verifiable_addresses"][0]["status"],
        "completed"
    );

    // The settings page says what happened and takes the new password.
    let settings_id = flow_param(res.location());
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("successfully recovered"),
        "{}",
        page.text
    );
    let settings = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={settings_id}")))
        .await
        .json();
    assert!(message_ids(&settings).contains(&1_060_001));
    let res = b
        .post_form(
            settings["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&settings)),
                ("password", NEW_PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let settings = b
        .get(&env.public_url(&format!("self-service/settings/flows?id={settings_id}")))
        .await
        .json();
    assert_eq!(settings["state"], "success");
    assert_eq!(
        native_login(&env, "ann@example.com", PASSWORD).await,
        Err(400)
    );
    assert!(native_login(&env, "ann@example.com", NEW_PASSWORD)
        .await
        .is_ok());

    // The used code does nothing more.
    let res = b
        .post_form(
            &action,
            &[("csrf_token", &csrf), ("code", &code), ("method", "code")],
        )
        .await;
    assert_eq!(res.status, 303);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert_eq!(flow["state"], "passed_challenge");
}

async fn spa_and_native_recovery_by_code(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    person(&env, "ann@example.com").await;

    // SPA: 200 flows, then 422 pointing at the settings page, with the session cookie.
    let mut b = Browser::spa();
    let flow = b
        .get(&env.public_url("self-service/recovery/browser"))
        .await
        .json();
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let csrf = csrf_of(&flow);
    let sent = b
        .post_json(
            &action,
            &json!({"method": "code", "email": "ann@example.com", "csrf_token": csrf}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let sent = sent.json();
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(sent["active"], "code");
    assert!(message_ids(&sent).contains(&1_060_003));
    assert_eq!(node_names(&sent), ["csrf_token", "code", "method", "email"]);
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    let res = b
        .post_json(
            &action,
            &json!({"method": "code", "code": code, "csrf_token": csrf}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text);
    let body = res.json();
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    let to = body["redirect_browser_to"].as_str().unwrap();
    assert!(to.starts_with(&env.public_url("ui/settings?flow=")), "{to}");
    assert_eq!(b.get(&env.public_url("sessions/whoami")).await.status, 200);
    // The settings flow belongs to this browser's new session.
    let settings = b
        .get(&env.public_url(&format!(
            "self-service/settings/flows?id={}",
            flow_param(to)
        )))
        .await;
    assert_eq!(settings.status, 200, "{}", settings.text);
    assert_eq!(
        settings.json()["identity"]["traits"]["email"],
        "ann@example.com"
    );

    // Native, without continue_with transitions: 422 too, and no token for the app.
    let flow = native_flow(&env, "recovery").await;
    let (status, sent) = post(
        &env,
        &flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sent["state"], "sent_email");
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    drop(env);

    // Native with transitions: 200, a session token and the settings flow.
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            RECOVERY_ON,
            "feature_flags.use_continue_with_transitions=true",
        ],
    )
    .await;
    person(&env, "ann@example.com").await;
    let flow = native_flow(&env, "recovery").await;
    post(
        &env,
        &flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "passed_challenge");
    let items = body["continue_with"].as_array().unwrap();
    assert_eq!(items[0]["action"], "set_ory_session_token");
    assert_eq!(items[1]["action"], "show_settings_ui");
    let token = items[0]["ory_session_token"].as_str().unwrap();
    assert_eq!(env.whoami(token).await.status(), 200);
    let settings_id = items[1]["flow"]["id"].as_str().unwrap();
    let res = env
        .http
        .get(env.public_url(&format!("self-service/settings/flows?id={settings_id}")))
        .header("x-session-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The stored flow does not keep the token.
    let stored = env
        .http
        .get(env.public_url(&format!(
            "self-service/recovery/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!stored.contains(token), "{stored}");
}

async fn unknown_addresses_look_the_same(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    person(&env, "ann@example.com").await;
    let shape = |v: &Value| {
        let mut v = v.clone();
        for k in ["id", "expires_at", "issued_at", "request_url"] {
            v[k] = Value::Null;
        }
        v["ui"]["action"] = Value::Null;
        for n in v["ui"]["nodes"].as_array_mut().unwrap() {
            n["attributes"]["value"] = Value::Null;
        }
        v
    };
    let unknown_flow = native_flow(&env, "recovery").await;
    let (s1, unknown) = post(
        &env,
        &unknown_flow,
        json!({"method": "code", "email": "nobody@example.com"}),
    )
    .await;
    let known_flow = native_flow(&env, "recovery").await;
    let (s2, known) = post(
        &env,
        &known_flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(shape(&unknown), shape(&known));
    // The first mail the worker delivers is Ann's: nothing was queued for the unknown address before it.
    mail_to(&mut sink, "ann@example.com").await;
    let listed: Value = env
        .http
        .get(env.admin_url("admin/courier/messages?recipient=nobody@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    // A code for the unknown address cannot exist: every guess fails the same way.
    let (status, body) = post(
        &env,
        &unknown_flow,
        json!({"method": "code", "code": "123456"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(message_ids(&body).contains(&4_060_006));
    drop(env);

    // With notify_unknown_recipients the unknown address is told that it has no account.
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            RECOVERY_ON,
            "selfservice.flows.recovery.notify_unknown_recipients=true",
        ],
    )
    .await;
    let flow = native_flow(&env, "recovery").await;
    let (status, _) = post(
        &env,
        &flow,
        json!({"method": "code", "email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    let mail = mail_to(&mut sink, "nobody@example.com").await;
    assert_eq!(mail.find_code(), None, "{}", mail.text_body());
    let listed: Value = env
        .http
        .get(env.admin_url("admin/courier/messages?recipient=nobody@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["template_type"], "recovery_code_invalid");
}

async fn wrong_codes_are_limited_and_codes_work_once(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    person(&env, "ann@example.com").await;

    // Five wrong codes, then even the right one is refused until a new code is requested.
    let flow = native_flow(&env, "recovery").await;
    post(
        &env,
        &flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    exhaust_code(&env, &flow, &code, 4_060_006).await;
    // A resend starts over with a fresh code; the old one stays dead.
    let (status, _) = post(
        &env,
        &flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    let fresh = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    if fresh != code {
        let (_, body) = post(&env, &flow, json!({"method": "code", "code": code})).await;
        assert!(message_ids(&body).contains(&4_060_006), "{body}");
    }
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": fresh})).await;
    assert_eq!(status, 422, "{body}");
    // Used once: a second submit finds the flow completed.
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": fresh})).await;
    assert_eq!(status, 400, "{body}");
    assert!(message_ids(&body).contains(&4_060_001), "{body}");

    // A code only works in the flow that sent it.
    let a = native_flow(&env, "recovery").await;
    let b = native_flow(&env, "recovery").await;
    post(
        &env,
        &a,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    let code_a = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    post(
        &env,
        &b,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    mail_to(&mut sink, "ann@example.com").await;
    let (status, body) = post(&env, &b, json!({"method": "code", "code": code_a})).await;
    assert_eq!(status, 200);
    assert!(message_ids(&body).contains(&4_060_006), "{body}");

    // Codes expire with selfservice.methods.code.config.lifespan (1h), before the flow would.
    env.clock.advance(time::Duration::minutes(61));
    let (status, body) = post(&env, &a, json!({"method": "code", "code": code_a})).await;
    // The flow lived for an hour too, so it is replaced: 410 with the new flow's id.
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    assert!(body["use_flow_id"].is_string());
    drop(env);

    let (env, mut sink) = env_with_mail(
        backend,
        &[RECOVERY_ON, "selfservice.methods.code.config.lifespan=10m"],
    )
    .await;
    person(&env, "ann@example.com").await;
    let flow = native_flow(&env, "recovery").await;
    post(
        &env,
        &flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    env.clock.advance(time::Duration::minutes(11));
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "the flow is still open, the code is not");
    assert!(message_ids(&body).contains(&4_060_006), "{body}");

    // Hostile input is refused without touching anything.
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "code", "email": "not an address"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(message_ids(&body).contains(&4_000_004), "{body}");
    let (status, _) = post(&env, &flow, json!({"method": "code", "code": ["1"]})).await;
    assert_eq!(status, 400);
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "sms", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // The link method is off by default: like an unknown one, the flow comes back with Kratos' message.
    let (status, body) = post(
        &env,
        &flow,
        json!({"method": "link", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["id"], flow["id"], "{body}");
    assert_eq!(tests::browser::message_ids(&body), vec![4010005], "{body}");
}

async fn link_method_and_tampered_links(backend: Backend) {
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            RECOVERY_ON,
            "selfservice.flows.recovery.use=link",
            "selfservice.methods.link.enabled=true",
        ],
    )
    .await;
    person(&env, "ann@example.com").await;
    let mut b = Browser::html();
    let start = b
        .get(&env.public_url("self-service/recovery/browser"))
        .await;
    let id = flow_param(start.location());
    b.get(start.location()).await;
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("email", "ann@example.com"),
                ("method", "link"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert_eq!(flow["state"], "sent_email");
    assert!(message_ids(&flow).contains(&1_060_002));
    let mail = mail_to(&mut sink, "ann@example.com").await;
    let link = mail.find_url().expect("a link");
    assert!(
        link.starts_with(&env.public_url(&format!("self-service/recovery?flow={id}&token="))),
        "{link}"
    );

    // Issue 14, finding 4: a link opened in a browser other than the one that asked (a victim's, if the link is an
    // attacker's own) signs nobody in and uses nothing up; neither does a mail scanner's GET.
    let mut other = Browser::html();
    let res = other.get(&link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.location().starts_with(&env.public_url("ui/error?id=")),
        "{}",
        res.location()
    );
    assert_eq!(other.cookie("ory_kratos_session"), None);
    assert_eq!(
        other.get(&env.public_url("sessions/whoami")).await.status,
        401
    );
    let res = env.http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);

    // In the browser that asked, a tampered token opens the confirmation, is refused on submit, and says so.
    let tampered = format!("{}x", link);
    let res = b.get(&tampered).await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/recovery?flow={id}"))
    );
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("token", node_value(&flow, "token").as_str().unwrap()),
                ("method", "link"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(b.get(&env.public_url("sessions/whoami")).await.status, 401);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert!(message_ids(&flow).contains(&4_060_004), "{flow}");
    assert_eq!(node_value(&flow, "token"), Value::Null, "{flow}");

    // The real link shows a confirmation page (the token in a hidden input, a Continue button); the GET alone
    // signs nothing in.
    let res = b.get(&link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/recovery?flow={id}"))
    );
    assert_eq!(b.get(&env.public_url("sessions/whoami")).await.status, 401);
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("type=\"hidden\" name=\"token\""),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("name=\"method\" value=\"link\""),
        "{}",
        page.text
    );
    assert!(!page.text.contains("name=\"email\""), "{}", page.text);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert!(message_ids(&flow).contains(&1_060_000), "{flow}");
    let token = node_value(&flow, "token");
    assert!(link.ends_with(token.as_str().unwrap()), "{flow}");
    // Continue (a POST with this browser's CSRF token) signs in and goes to the settings page.
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("token", token.as_str().unwrap()),
                ("method", "link"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.location()
            .starts_with(&env.public_url("ui/settings?flow=")),
        "{}",
        res.location()
    );
    let who = b.get(&env.public_url("sessions/whoami")).await.json();
    assert_eq!(who["authentication_methods"][0]["method"], "link_recovery");
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("name=\"password\""));

    // Once.
    let mut third = Browser::html();
    let res = third.get(&link).await;
    assert_eq!(res.status, 303);
    assert!(res.location().starts_with(&env.public_url("ui/error?id=")));
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    let res = b
        .post_json(
            flow["ui"]["action"].as_str().unwrap(),
            &json!({"csrf_token": csrf_of(&flow), "token": token, "method": "link"}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(
        message_ids(&res.json()).contains(&4_060_001),
        "{}",
        res.text
    );
    assert_eq!(
        third.get(&env.public_url("sessions/whoami")).await.status,
        401
    );
}

async fn admin_recovery_code_and_link(backend: Backend) {
    let (env, _sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    let id = person(&env, "ann@example.com").await;
    let admin = |path: &str, body: Value| env.http.post(env.admin_url(path)).json(&body).send();

    let res = admin(
        "admin/recovery/code",
        json!({"identity_id": id, "expires_in": "15m"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let code = body["recovery_code"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    let link = body["recovery_link"].as_str().unwrap();
    assert!(
        link.starts_with(&env.public_url("ui/recovery?flow=")),
        "{link}"
    );
    let expires: time::OffsetDateTime = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        expires - identity::Clock::now(&env.clock),
        time::Duration::minutes(15)
    );

    // The person opens the link in a browser that has never been here: the page gives it a CSRF cookie.
    let mut b = Browser::html();
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("name=\"code\""));
    let flow = b
        .get(&env.public_url(&format!(
            "self-service/recovery/flows?id={}",
            flow_param(link)
        )))
        .await
        .json();
    assert_eq!(flow["state"], "sent_email");
    // Issue 14, finding 4: no browser started an administrator's flow, but its submit still needs the CSRF token
    // of the submitting browser's own cookie, so a page elsewhere cannot post the code from a victim's browser.
    let forged = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .header("accept", "application/json")
        .header("cookie", "unrelated=1")
        .form(&[("code", code), ("method", "code")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("ory_kratos_session")));
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("code", code),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(res
        .location()
        .starts_with(&env.public_url("ui/settings?flow=")));
    let who = b.get(&env.public_url("sessions/whoami")).await;
    assert_eq!(who.status, 200);
    // An administrator's code proves nothing about the address: it stays unverified (as in Kratos).
    assert_eq!(
        who.json()["identity"]["verifiable_addresses"][0]["verified"],
        false
    );
    let settings = b.get(res.location()).await;
    assert_eq!(settings.status, 200, "{}", settings.text);

    // API-type admin flows for native apps.
    let body: Value = admin(
        "admin/recovery/code",
        json!({"identity_id": id, "flow_type": "api"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let flow_id = flow_param(body["recovery_link"].as_str().unwrap());
    let res = env
        .http
        .post(env.public_url(&format!("self-service/recovery?flow={flow_id}")))
        .json(&json!({"method": "code", "code": body["recovery_code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // Bad requests.
    for (body, status) in [
        (json!({}), 400),
        (json!({"identity_id": "nope"}), 400),
        (json!({"identity_id": id, "expires_in": "soon"}), 400),
        (json!({"identity_id": id, "expires_in": "0s"}), 400),
        (
            json!({"identity_id": id, "flow_type": "carrier-pigeon"}),
            400,
        ),
        (json!({"identity_id": uuid::Uuid::new_v4()}), 404),
    ] {
        let res = admin("admin/recovery/code", body.clone()).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{body}");
        let e: Value = res.json().await.unwrap();
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    // Links need the link method.
    let res = admin("admin/recovery/link", json!({"identity_id": id}))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    drop(env);

    let (env, _sink) = env_with_mail(
        backend,
        &[RECOVERY_ON, "selfservice.methods.link.enabled=true"],
    )
    .await;
    let id = person(&env, "ann@example.com").await;
    let res = env
        .http
        .post(env.admin_url("admin/recovery/link"))
        .json(&json!({"identity_id": id, "expires_in": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let link = body["recovery_link"].as_str().unwrap();
    assert!(
        link.contains("self-service/recovery?flow=") && link.contains("&token="),
        "{link}"
    );
    // A mail scanner's GET uses nothing; a page elsewhere cannot post the token without the browser's CSRF token.
    assert_eq!(env.http.get(link).send().await.unwrap().status(), 303);
    let flow_id = flow_param(link);
    let action = env.public_url(&format!("self-service/recovery?flow={flow_id}"));
    let token = link.rsplit("token=").next().unwrap();
    let forged = env
        .http
        .post(&action)
        .header("cookie", "unrelated=1")
        .form(&[("token", token), ("method", "link")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 303);
    assert!(forged
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&env.public_url("ui/error?id=")));
    // The first browser that opens the link gets a CSRF cookie and the confirmation page; Continue signs in.
    let mut b = Browser::html();
    let res = b.get(link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/recovery?flow={flow_id}"))
    );
    assert_eq!(b.get(&env.public_url("sessions/whoami")).await.status, 401);
    let page = b.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("name=\"token\""), "{}", page.text);
    let flow = b
        .get(&env.public_url(&format!("self-service/recovery/flows?id={flow_id}")))
        .await
        .json();
    let res = b
        .post_form(
            &action,
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("token", node_value(&flow, "token").as_str().unwrap()),
                ("method", "link"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(res
        .location()
        .starts_with(&env.public_url("ui/settings?flow=")));
    assert_eq!(b.get(&env.public_url("sessions/whoami")).await.status, 200);
    let res = env
        .http
        .post(env.admin_url("admin/recovery/link"))
        .json(&json!({"identity_id": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

async fn recovery_needs_to_be_enabled_and_signed_out(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let res = env
        .http
        .get(env.public_url("self-service/recovery/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let mut b = Browser::spa();
    assert_eq!(
        b.get(&env.public_url("self-service/recovery/browser"))
            .await
            .status,
        400
    );
    drop(env);

    let (env, _sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    let id = person(&env, "ann@example.com").await;
    let token = env.login(&id).await;
    let res = env
        .http
        .get(env.public_url("self-service/recovery/api"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["id"], "session_already_available");
    let res = env
        .http
        .get(env.public_url("self-service/recovery/browser"))
        .header("cookie", env.cookie_for(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        303,
        "a signed-in browser goes where it came from"
    );
    // Unknown flows.
    let res = env
        .http
        .get(env.public_url(&format!(
            "self-service/recovery/flows?id={}",
            uuid::Uuid::new_v4()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = env
        .http
        .post(env.public_url("self-service/recovery?flow=not-a-uuid"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// The value of the input named `name` in a flow.
pub fn node_value(flow: &Value, name: &str) -> Value {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == name)
        .map(|n| n["attributes"]["value"].clone())
        .unwrap_or(Value::Null)
}

/// Issue 14, finding 4 (login CSRF): someone who starts recovery for their own account and gets a victim's browser
/// to open `GET /self-service/recovery?flow=F&code=C` must not sign that browser in. A link only pre-fills the
/// code; using it needs a POST with the CSRF token of the browser that started the flow. GETs (a mail scanner's
/// too) use up nothing and do not count as wrong codes.
async fn recovery_code_links_use_nothing_and_bind_to_the_browser(backend: Backend) {
    let (env, mut sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    person(&env, "mallory@example.com").await;
    let mut attacker = Browser::html();
    let flow = html_flow(&env, &mut attacker, "recovery").await;
    let id = flow["id"].as_str().unwrap().to_owned();
    let res = attacker
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("email", "mallory@example.com"),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let code = mail_to(&mut sink, "mallory@example.com")
        .await
        .find_code()
        .unwrap();
    let link = env.public_url(&format!("self-service/recovery?flow={id}&code={code}"));

    // The victim's browser opens the attacker's link: no session, no settings flow, an error page.
    let mut victim = Browser::html();
    let res = victim.get(&link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.location().starts_with(&env.public_url("ui/error?id=")),
        "{}",
        res.location()
    );
    assert_eq!(victim.cookie("ory_kratos_session"), None);
    assert_eq!(
        victim.get(&env.public_url("sessions/whoami")).await.status,
        401
    );
    let page = victim.get(res.location()).await;
    assert!(page.text.contains("another browser"), "{}", page.text);
    // An SPA in the victim's browser gets the CSRF error.
    let mut spa = Browser::spa();
    let res = spa.get(&link).await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert_eq!(res.json()["error"]["id"], "security_csrf_violation");
    assert_eq!(spa.cookie("ory_kratos_session"), None);
    // Nor can the victim's browser POST the code with its own valid CSRF token: the flow is not its own.
    let own = html_flow(&env, &mut victim, "recovery").await;
    let res = victim
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&own)),
                ("code", &code),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.location().starts_with(&env.public_url("ui/error?id=")),
        "{}",
        res.location()
    );
    assert_eq!(victim.cookie("ory_kratos_session"), None);
    assert_eq!(
        victim.get(&env.public_url("sessions/whoami")).await.status,
        401
    );

    // A mail scanner's GETs (no cookies) use up nothing, whatever the code.
    for url in [link.clone(), link.replace("code=", "code=9")] {
        let res = env.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(res
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("ory_kratos_session")));
    }

    // The browser that asked: wrong codes in links are no attempts (six GETs would have voided the code).
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..6 {
        let res = attacker
            .get(&env.public_url(&format!("self-service/recovery?flow={id}&code={wrong}")))
            .await;
        assert_eq!(res.status, 303, "{}", res.text);
    }
    // Its own link only shows the page with the code filled in.
    let res = attacker.get(&link).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.location(),
        env.public_url(&format!("ui/recovery?flow={id}"))
    );
    assert_eq!(
        attacker
            .get(&env.public_url("sessions/whoami"))
            .await
            .status,
        401
    );
    let page = attacker.get(res.location()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains(&format!("value=\"{code}\"")),
        "the code is pre-filled: {}",
        page.text
    );
    let flow = attacker
        .get(&env.public_url(&format!("self-service/recovery/flows?id={id}")))
        .await
        .json();
    assert_eq!(flow["state"], "sent_email");
    assert_eq!(node_value(&flow, "code"), json!(code));
    // The POST with the flow's CSRF token signs in.
    let res = attacker
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("code", &code),
                ("method", "code"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.location()
            .starts_with(&env.public_url("ui/settings?flow=")),
        "{}",
        res.location()
    );
    let who = attacker.get(&env.public_url("sessions/whoami")).await;
    assert_eq!(who.status, 200);
    assert_eq!(
        who.json()["identity"]["traits"]["email"],
        "mallory@example.com"
    );
    assert_eq!(
        victim.get(&env.public_url("sessions/whoami")).await.status,
        401
    );
}

/// Issue 15: an `expires_in` whose expiry is past the last representable timestamp panicked the handler; Kratos
/// (Go) refuses a duration over 2562047h, and one that is not positive, with a 400. The largest one works.
async fn admin_recovery_refuses_lifespans_out_of_range(backend: Backend) {
    let (env, _sink) = env_with_mail(
        backend,
        &[RECOVERY_ON, "selfservice.methods.link.enabled=true"],
    )
    .await;
    let id = person(&env, "range@example.com").await;
    for path in ["admin/recovery/code", "admin/recovery/link"] {
        for expires_in in [
            "690249975h",
            "2562048h",
            "9999999999999999999999s",
            "0s",
            "-1h",
        ] {
            let res = env
                .http
                .post(env.admin_url(path))
                .json(&json!({"identity_id": id, "expires_in": expires_in}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{path} {expires_in}");
            let e: Value = res.json().await.unwrap();
            assert_eq!(e["error"]["code"], 400, "{e}");
            assert!(
                e["error"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("\"expires_in\""),
                "{e}"
            );
        }
        // The server is still up, and Go's largest duration is a valid lifespan.
        let res = env
            .http
            .post(env.admin_url(path))
            .json(&json!({"identity_id": id, "expires_in": "2562047h"}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let body: Value = res.json().await.unwrap();
        let expires = time::OffsetDateTime::parse(
            body["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(
            expires - identity::Clock::now(&env.clock),
            time::Duration::hours(2_562_047)
        );
    }
}

/// Issue 15: Kratos decodes `flow_type` as an optional string: a number, array, object, boolean or an empty string
/// is a 400 (Portcullis ignored wrong types and made a browser flow); `null` is the default browser flow.
async fn admin_recovery_code_refuses_a_flow_type_that_is_not_a_string(backend: Backend) {
    let (env, _sink) = env_with_mail(backend, &[RECOVERY_ON]).await;
    let id = person(&env, "type@example.com").await;
    for flow_type in [
        json!(["api"]),
        json!(1),
        json!({"type": "api"}),
        json!(true),
        json!(""),
    ] {
        let res = env
            .http
            .post(env.admin_url("admin/recovery/code"))
            .json(&json!({"identity_id": id, "flow_type": flow_type}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{flow_type}");
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"]["code"], 400, "{e}");
        assert!(
            e["error"]["reason"].as_str().unwrap().contains("flow_type"),
            "{e}"
        );
    }
    let res = env
        .http
        .post(env.admin_url("admin/recovery/code"))
        .json(&json!({"identity_id": id, "flow_type": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let flow: Value = env
        .http
        .get(env.public_url(&format!(
            "self-service/recovery/flows?id={}",
            flow_param(body["recovery_link"].as_str().unwrap())
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flow["type"], "browser", "{flow}");
}

/// The code was sent while the account was active; an administrator disables it before the code is used. The code
/// proves the address, but nobody is signed in: the flow comes back with the reason and no session exists.
async fn an_account_disabled_after_the_code_was_sent_is_not_recovered(backend: Backend) {
    let (env, mut sink) = env_with_mail(
        backend,
        &[
            RECOVERY_ON,
            "feature_flags.use_continue_with_transitions=true",
        ],
    )
    .await;
    let id = person(&env, "ann@example.com").await;
    let flow = native_flow(&env, "recovery").await;
    post(
        &env,
        &flow,
        json!({"method": "code", "email": "ann@example.com"}),
    )
    .await;
    let code = mail_to(&mut sink, "ann@example.com")
        .await
        .find_code()
        .unwrap();
    let res = env
        .http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/state", "value": "inactive"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = post(&env, &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("continue_with").is_none(), "{body}");
    assert!(
        body["ui"]["messages"].to_string().contains("disabled"),
        "{body}"
    );
    let sessions = env
        .http
        .get(env.admin_url(&format!("admin/identities/{id}/sessions")))
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.status(), 200);
    assert_eq!(sessions.json::<Value>().await.unwrap(), json!([]));
}
