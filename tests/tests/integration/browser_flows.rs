//! Browser (HTML) and SPA (JSON) login, registration and logout: the status matrix of Kratos' reference §14,
//! CSRF, `return_to`, refresh and the built-in pages.

use serde_json::{json, Value};
use tests::browser::{csrf_of, message_ids, Browser};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    html_register_sign_out_and_sign_in,
    spa_status_matrix,
    expired_and_unknown_browser_flows,
    refresh_reauthenticates,
    csrf_attacks,
    return_to_is_allow_listed,
    api_flows_refuse_browsers,
    hostile_bodies,
    ui_pages_handle_foreign_and_cookieless_browsers,
);

const SESSION_HOOK: &str =
    r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"}]}"#;
const PASSWORD: &str = "correct horse battery staple";

fn flow_id_of(location: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "flow")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no flow id in {location}"))
}

/// Starts a browser flow the way a browser does and returns the flow JSON.
async fn start_html(env: &TestEnv, b: &mut Browser, kind: &str, query: &str) -> Value {
    let page = b
        .get(&env.public_url(&format!("self-service/{kind}/browser{query}")))
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    let location = page.location().to_owned();
    assert!(
        location.starts_with(&env.public_url(&format!("ui/{kind}?flow="))),
        "{location}"
    );
    let ui = b.get(&location).await;
    assert_eq!(ui.status, 200, "{}", ui.text);
    assert!(ui.text.contains("name=\"csrf_token\""), "{}", ui.text);
    let id = flow_id_of(&location);
    let res = b
        .get(&env.public_url(&format!("self-service/{kind}/flows?id={id}")))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

async fn start_spa(env: &TestEnv, b: &mut Browser, kind: &str, query: &str) -> Value {
    let res = b
        .get(&env.public_url(&format!("self-service/{kind}/browser{query}")))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

fn action(flow: &Value) -> String {
    flow["ui"]["action"].as_str().unwrap().to_owned()
}

async fn register_html(env: &TestEnv, b: &mut Browser, email: &str) -> String {
    let flow = start_html(env, b, "registration", "").await;
    let csrf = csrf_of(&flow);
    let res = b
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf),
                ("traits.email", email),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    res.location().to_owned()
}

async fn whoami(env: &TestEnv, b: &mut Browser) -> u16 {
    b.get(&env.public_url("sessions/whoami")).await.status
}

async fn html_register_sign_out_and_sign_in(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let mut b = Browser::html();
    let landed = register_html(&env, &mut b, "html@example.com").await;
    assert_eq!(
        landed,
        env.public_url("ui/welcome"),
        "the default return URL"
    );
    assert!(b.cookie("ory_kratos_session").is_some(), "{:?}", b.jar);
    let welcome = b.get(&landed).await;
    assert_eq!(welcome.status, 200);
    assert!(
        welcome.text.contains("html@example.com"),
        "{}",
        welcome.text
    );
    assert_eq!(whoami(&env, &mut b).await, 200);

    // Sign out: logout URL, then the GET that revokes.
    let urls = b
        .get(&env.public_url("self-service/logout/browser"))
        .await
        .json();
    let token = urls["logout_token"].as_str().unwrap();
    assert!(token.starts_with("ory_lo_"), "{urls}");
    let logout_url = urls["logout_url"].as_str().unwrap().to_owned();
    assert!(logout_url.contains(token));
    let again = b
        .get(&env.public_url("self-service/logout/browser"))
        .await
        .json();
    assert_eq!(again["logout_token"], token, "logout tokens are stable");
    // Another session's token (or a forged one) signs nobody out.
    let forged = logout_url.replace(token, "ory_lo_forged");
    let res = b.get(&forged).await;
    assert_eq!(res.status, 303, "browsers see the error page: {}", res.text);
    let id = res.location().split("id=").nth(1).unwrap().to_owned();
    let stored = b
        .get(&env.public_url(&format!("self-service/errors?id={id}")))
        .await
        .json();
    assert_eq!(stored["error"]["code"], 403, "{stored}");
    assert_eq!(whoami(&env, &mut b).await, 200, "still signed in");
    let res = b.get(&logout_url).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(res.location(), env.public_url("ui/welcome"));
    assert!(b.cookie("ory_kratos_session").is_none(), "{:?}", b.jar);
    assert_eq!(whoami(&env, &mut b).await, 401);
    let res = b.get(&env.public_url("ui/welcome")).await;
    assert_eq!(res.status, 303, "signed-out visitors are sent to sign in");
    assert!(res.location().contains("self-service/login/browser"));

    // A wrong password sends the browser back to the same flow with the message.
    let flow = start_html(&env, &mut b, "login", "").await;
    let csrf = csrf_of(&flow);
    let res = b
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf),
                ("identifier", "html@example.com"),
                ("password", "wrong password!"),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(flow_id_of(res.location()), flow["id"].as_str().unwrap());
    let page = b.get(res.location()).await;
    assert!(
        page.text.contains("The provided credentials are invalid"),
        "{}",
        page.text
    );
    let res = b
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf),
                ("identifier", "html@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(res.location(), env.public_url("ui/welcome"));
    assert_eq!(whoami(&env, &mut b).await, 200);

    // Signed in: init redirects to the return URL; the logout page offers a form.
    let res = b.get(&env.public_url("self-service/login/browser")).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), env.public_url("ui/welcome"));
    let page = b.get(&env.public_url("ui/logout")).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("name=\"token\""), "{}", page.text);
}

async fn spa_status_matrix(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let mut b = Browser::spa();
    let flow = start_spa(&env, &mut b, "registration", "").await;
    assert_eq!(flow["type"], "browser");
    let csrf = csrf_of(&flow);
    assert_eq!(csrf.len(), 88, "a masked token");
    let cookie = b.cookie("csrf_token_").expect("a CSRF cookie");
    assert_ne!(cookie, csrf, "the node carries the masked form");

    // Validation error: 400 + flow.
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "traits": {"email": "not-an-email"}, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.json()["id"], flow["id"]);
    // Success: 200 {identity, session, continue_with} and a session cookie, no token.
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "traits": {"email": "spa@example.com"}, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["identity"]["traits"]["email"], "spa@example.com");
    assert_eq!(body["session"]["active"], true);
    assert!(body.get("session_token").is_none(), "{body}");
    assert_eq!(body["continue_with"][0]["action"], "redirect_browser_to");
    assert_eq!(
        body["continue_with"][0]["redirect_browser_to"],
        env.public_url("ui/welcome")
    );
    assert!(b.cookie("ory_kratos_session").is_some());
    assert_ne!(
        b.cookie("csrf_token_").unwrap(),
        cookie,
        "signing in rotates the CSRF cookie"
    );

    // Signed in: init answers 400 session_already_available for both kinds.
    for kind in ["login", "registration"] {
        let res = b
            .get(&env.public_url(&format!("self-service/{kind}/browser")))
            .await;
        assert_eq!(res.status, 400, "{kind}");
        assert_eq!(res.json()["error"]["id"], "session_already_available");
    }

    // A second browser signs in; wrong credentials are 400 + 4000006, success is 200 + continue_with.
    let mut other = Browser::spa();
    let flow = start_spa(&env, &mut other, "login", "").await;
    let csrf = csrf_of(&flow);
    let res = other
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "identifier": "spa@example.com", "password": "nope nope nope"}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(message_ids(&res.json()).contains(&4000006));
    let res = other
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "identifier": "spa@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(
        body["session"]["identity"]["traits"]["email"],
        "spa@example.com"
    );
    assert_eq!(body["continue_with"][0]["action"], "redirect_browser_to");

    // Submitting a login flow while signed in: 400 + flow with 4000001.
    let mut third = Browser::spa();
    let flow = start_spa(&env, &mut third, "login", "").await;
    third.jar.insert(
        "ory_kratos_session".into(),
        other.cookie("ory_kratos_session").unwrap(),
    );
    let res = third
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf_of(&flow), "identifier": "spa@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(message_ids(&res.json()).contains(&4000001));

    // Sign out as an SPA: 204.
    let urls = other
        .get(&env.public_url("self-service/logout/browser"))
        .await
        .json();
    let res = other.get(urls["logout_url"].as_str().unwrap()).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(whoami(&env, &mut other).await, 401);
    let res = other
        .get(&env.public_url("self-service/logout/browser"))
        .await;
    assert_eq!(res.status, 401, "no session, no logout URL");
}

async fn expired_and_unknown_browser_flows(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut spa = Browser::spa();
    let flow = start_spa(&env, &mut spa, "login", "?return_to=/self-service/x").await;
    env.clock.advance(time::Duration::minutes(61));
    let res = spa
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf_of(&flow), "identifier": "a@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 410, "{}", res.text);
    let body = res.json();
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    let new_id = body["use_flow_id"].as_str().unwrap().to_owned();
    let res = spa
        .get(&env.public_url(&format!("self-service/login/flows?id={new_id}")))
        .await;
    assert_eq!(
        res.status, 200,
        "the replacement belongs to this browser: {}",
        res.text
    );
    assert_eq!(res.json()["return_to"], flow["return_to"]);
    let res = spa
        .get(&env.public_url(&format!(
            "self-service/login/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(res.status, 410);
    assert!(res.json()["error"]["details"]["redirect_to"]
        .as_str()
        .unwrap()
        .contains("self-service/login/browser?return_to="));

    // HTML: an expired flow sends the browser to a fresh one.
    let mut html = Browser::html();
    let flow = start_html(&env, &mut html, "login", "").await;
    env.clock.advance(time::Duration::minutes(61));
    let res = html
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("identifier", "a@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(res
        .location()
        .starts_with(&env.public_url("ui/login?flow=")));
    assert_ne!(flow_id_of(res.location()), flow["id"].as_str().unwrap());

    // Unknown flows: 404 for JSON, the error page for HTML (stored for /self-service/errors).
    let ghost = env.public_url(&format!("self-service/login?flow={}", uuid::Uuid::new_v4()));
    let res = spa.post_json(&ghost, &json!({"method": "password"})).await;
    assert_eq!(res.status, 404);
    let res = html.post_form(&ghost, &[("method", "password")]).await;
    assert_eq!(res.status, 303);
    let location = res.location().to_owned();
    assert!(
        location.starts_with(&env.public_url("ui/error?id=")),
        "{location}"
    );
    let id = location.split("id=").nth(1).unwrap();
    let res = html
        .get(&env.public_url(&format!("self-service/errors?id={id}")))
        .await;
    assert_eq!(res.status, 200);
    let stored = res.json();
    assert_eq!(stored["id"], id);
    assert_eq!(stored["error"]["code"], 404);
    let page = html.get(&location).await;
    assert_eq!(page.status, 404);
    assert!(page.text.contains("Back to sign in"), "{}", page.text);
    let res = html
        .get(&env.public_url(&format!("self-service/errors?id={}", uuid::Uuid::new_v4())))
        .await;
    assert_eq!(res.status, 404);
    let res = html
        .get(&env.public_url("self-service/errors?id=stub:500"))
        .await;
    assert_eq!(res.json()["error"]["code"], 500);
}

async fn refresh_reauthenticates(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let mut b = Browser::spa();
    let flow = start_spa(&env, &mut b, "registration", "").await;
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf_of(&flow), "traits": {"email": "refresh@example.com"}, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200);
    let first = res.json()["session"]["id"].as_str().unwrap().to_owned();
    env.clock.advance(time::Duration::minutes(5));
    let flow = start_spa(&env, &mut b, "login", "?refresh=true").await;
    assert_eq!(flow["refresh"], true);
    assert!(message_ids(&flow).contains(&1010003), "{flow}");
    let identifier = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "identifier")
        .unwrap();
    assert_eq!(identifier["attributes"]["type"], "hidden");
    assert_eq!(identifier["attributes"]["value"], "refresh@example.com");
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf_of(&flow), "identifier": "refresh@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let session = &res.json()["session"];
    assert_ne!(session["id"], first.as_str());
    let who = b.get(&env.public_url("sessions/whoami")).await.json();
    assert_eq!(who["id"], session["id"]);
    assert_eq!(who["authenticated_at"], session["authenticated_at"]);
    let old = env
        .http
        .get(env.admin_url(&format!("admin/sessions/{first}")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        old["active"], false,
        "the refreshed session replaced the old one"
    );
}

async fn csrf_attacks(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let mut victim = Browser::spa();
    let flow = start_spa(&env, &mut victim, "registration", "").await;
    let body = json!({"method": "password", "traits": {"email": "csrf@example.com"}, "password": PASSWORD});

    // No token at all.
    let res = victim.post_json(&action(&flow), &body).await;
    assert_eq!(res.status, 403, "{}", res.text);
    let err = res.json();
    assert_eq!(err["error"]["id"], "security_csrf_violation");
    assert!(err["error"]["details"]["reject_reason"]
        .as_str()
        .unwrap()
        .contains("neither sent"));

    // A token from another browser's session.
    let mut attacker = Browser::spa();
    let theirs = start_spa(&env, &mut attacker, "registration", "").await;
    let mut forged = body.clone();
    forged["csrf_token"] = json!(csrf_of(&theirs));
    let res = victim.post_json(&action(&flow), &forged).await;
    assert_eq!(res.status, 403);
    assert!(res.json()["error"]["details"]["reject_reason"]
        .as_str()
        .unwrap()
        .contains("do not match"));

    // No cookies (a cross-site form post without the victim's cookie).
    let mut bare = Browser::spa();
    let mut with_token = body.clone();
    with_token["csrf_token"] = json!(csrf_of(&flow));
    let res = bare.post_json(&action(&flow), &with_token).await;
    assert_eq!(res.status, 403);
    assert!(res.json()["error"]["details"]["reject_reason"]
        .as_str()
        .unwrap()
        .contains("no cookies"));

    // Another browser cannot read the flow either.
    let res = attacker
        .get(&env.public_url(&format!(
            "self-service/registration/flows?id={}",
            flow["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(res.status, 403);

    // HTML clients are sent to the error page instead.
    let mut html = Browser::html();
    html.jar = victim.jar.clone();
    let res = html
        .post_form(
            &action(&flow),
            &[("method", "password"), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        res.location().contains("ui/error?id="),
        "{}",
        res.location()
    );

    // The header form is accepted; the flow completes.
    let res = victim
        .post_json_with(&action(&flow), &body, &[("X-CSRF-Token", &csrf_of(&flow))])
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    // After logout the CSRF cookie is rotated: a token captured before no longer works.
    // nosurf accepts the unmasked token too: the cookie's current value is a valid token until logout.
    let stale = victim.cookie("csrf_token_").unwrap();
    let urls = victim
        .get(&env.public_url("self-service/logout/browser"))
        .await
        .json();
    assert_eq!(
        victim
            .get(urls["logout_url"].as_str().unwrap())
            .await
            .status,
        204
    );
    let flow = start_spa(&env, &mut victim, "login", "").await;
    let res = victim
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": stale, "identifier": "csrf@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 403, "a replayed token is refused: {}", res.text);
}

async fn return_to_is_allow_listed(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set(SESSION_HOOK)
        .set(r#"selfservice.allowed_return_urls=["https://app.example.com/dashboard","https://*.example.org/"]"#)
        .start()
        .await;
    let mut spa = Browser::spa();
    for bad in [
        "https://evil.com/",
        "//evil.com/",
        "javascript:alert(1)",
        "https://app.example.com.evil.com/dashboard",
        "https://app.example.com/other",
        "https://user@app.example.com/dashboard",
    ] {
        let q: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let res = spa
            .get(&env.public_url(&format!("self-service/login/browser?return_to={q}")))
            .await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
        assert_eq!(
            res.json()["error"]["id"],
            "self_service_flow_return_to_forbidden",
            "{bad}"
        );
    }
    let mut html = Browser::html();
    let res = html
        .get(&env.public_url("self-service/login/browser?return_to=https%3A%2F%2Fevil.com%2F"))
        .await;
    assert_eq!(res.status, 303);
    assert!(res.location().contains("ui/error?id="));

    // Allowed: exact prefix and wildcard subdomain; completion goes there.
    let flow = start_html(
        &env,
        &mut html,
        "registration",
        "?return_to=https%3A%2F%2Fapp.example.com%2Fdashboard%2Fteam",
    )
    .await;
    assert_eq!(flow["return_to"], "https://app.example.com/dashboard/team");
    let res = html
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("traits.email", "ret@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "https://app.example.com/dashboard/team");
    let urls = html
        .get(&env.public_url(
            "self-service/logout/browser?return_to=https%3A%2F%2Fshop.example.org%2Fbye",
        ))
        .await
        .json();
    let res = html.get(urls["logout_url"].as_str().unwrap()).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "https://shop.example.org/bye");
}

async fn api_flows_refuse_browsers(backend: Backend) {
    let env = TestEnv::start(backend).await;
    for (name, value) in [
        ("Cookie", "tracking=1"),
        ("Origin", "https://app.example.com"),
    ] {
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
            .post(action(&flow))
            .header(name, value)
            .json(
                &json!({"method": "password", "identifier": "a@example.com", "password": PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{name}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["id"], flow["id"], "a 400 flow, not an error envelope");
        assert!(message_ids(&body).contains(&4000001), "{body}");
    }
}

async fn hostile_bodies(backend: Backend) {
    let env = TestEnv::builder(backend).set(SESSION_HOOK).start().await;
    let mut b = Browser::spa();
    let flow = start_spa(&env, &mut b, "registration", "").await;
    let csrf = csrf_of(&flow);
    // Arrays where strings belong.
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "traits": {"email": "x@example.com"}, "password": ["a", "b"]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    // The flow comes back with the decoding problem as a form message, as Kratos answers.
    let answer = res.json();
    assert_eq!(answer["id"], flow["id"], "{answer}");
    assert_eq!(message_ids(&answer), vec![4000001], "{answer}");
    assert!(answer["ui"]["messages"][0]["text"]
        .as_str()
        .unwrap()
        .contains("sequence"));
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "traits": ["x"], "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    // Unknown traits: the schema refuses them as flow messages.
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "traits": {"email": "x@example.com", "admin": true}, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.json()["id"], flow["id"]);
    // A 1 MB password: refused by the policy, not hashed.
    let huge = "a".repeat(1024 * 1024);
    let res = b
        .post_json(
            &action(&flow),
            &json!({"method": "password", "csrf_token": csrf, "traits": {"email": "x@example.com"}, "password": huge}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(
        message_ids(&res.json()).contains(&4000033),
        "{}",
        &res.text[..300.min(res.text.len())]
    );
    // Forms with unknown fields and a missing method.
    let mut html = Browser::html();
    html.jar = b.jar.clone();
    let res = html
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf),
                ("nonsense[]", "1"),
                ("traits.email", "y@example.com"),
            ],
        )
        .await;
    assert_eq!(
        res.status, 303,
        "no method: back to the form, with a message"
    );
    assert!(
        res.location().contains("ui/registration?flow="),
        "{}",
        res.location()
    );
    let res = html
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf),
                ("nonsense[]", "1"),
                ("traits.nonsense", "2"),
                ("traits.email", "y@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(
        res.status, 303,
        "unknown traits send the browser back to the form"
    );
    assert!(
        res.location().contains("ui/registration?flow="),
        "{}",
        res.location()
    );
    let res = html
        .post_form(
            &action(&flow),
            &[
                ("csrf_token", &csrf),
                ("nonsense[]", "1"),
                ("traits.email", "y@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "unknown top-level fields are ignored");
    assert_eq!(res.location(), env.public_url("ui/welcome"));
    b.jar.clear();
    // A login with a 1 MB password answers like any wrong password.
    let login = start_spa(&env, &mut b, "login", "").await;
    let res = b
        .post_json(
            &action(&login),
            &json!({"method": "password", "csrf_token": csrf_of(&login), "identifier": "x@example.com", "password": huge}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(message_ids(&res.json()).contains(&4000006));
    // Non-JSON garbage with a JSON content type.
    let res = b
        .post_json_with(
            &action(&login),
            &json!("just a string"),
            &[("X-CSRF-Token", &csrf_of(&login))],
        )
        .await;
    assert_eq!(res.status, 400);
}

async fn ui_pages_handle_foreign_and_cookieless_browsers(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut owner = Browser::html();
    let flow = start_html(&env, &mut owner, "login", "").await;
    let page = env.public_url(&format!("ui/login?flow={}", flow["id"].as_str().unwrap()));
    // Another browser (with a CSRF cookie of its own) gets a fresh flow instead of someone else's.
    let mut other = Browser::html();
    start_html(&env, &mut other, "registration", "").await;
    let res = other.get(&page).await;
    assert_eq!(res.status, 303);
    assert!(
        res.location().contains("self-service/login/browser"),
        "{}",
        res.location()
    );
    // A browser that refuses cookies is told so, rather than redirected in circles.
    let mut cookieless = Browser::html();
    let res = cookieless.get(&page).await;
    assert_eq!(res.status, 400);
    assert!(res.text.contains("Allow cookies"), "{}", res.text);
    // The pages are locked down: no scripts, no framing.
    let res = owner.get(&page).await;
    assert_eq!(res.status, 200);
    let csp = res.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(res.headers["x-frame-options"], "DENY");
    let css = owner.get(&env.public_url("ui/style.css")).await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}
