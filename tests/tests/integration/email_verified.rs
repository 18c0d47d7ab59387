//! Issue 14, finding 6: an unverified e-mail address is not injected as if it were trusted. The presets send
//! `X-User-Email-Verified`, send the e-mail headers empty until the address is verified (`require_verified_email`,
//! on by default; a client's copy never passes), and verifying or un-verifying the address reaches the edge at once, through the session cache
//! (also on a second replica sharing Redis).

use crate::recovery::{mail_to, post, PASSWORD};
use serde_json::{json, Value};
use tests::hook_server::{HookServer, Received};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(unverified_email_is_withheld_until_verified);

fn rules(upstream: &str) -> String {
    let rule = |id: &str, mutators: Value| {
        json!({
            "id": id,
            "match": {"url": format!("http://<[^/]+>/{id}/<.*>"), "methods": ["GET"]},
            "upstream": {"url": upstream},
            "authenticators": [{"handler": "bearer_token"}],
            "authorizer": {"handler": "allow"},
            "mutators": mutators,
        })
    };
    json!([
        rule("strict", json!([{"handler": "header", "config": {"preset": "portcullis"}}])),
        rule(
            "proxy",
            json!([{"handler": "header", "config": {"preset": "oauth2_proxy"}}])
        ),
        rule(
            "loose",
            json!([{"handler": "header", "config": {"preset": "portcullis", "require_verified_email": false}}])
        ),
    ])
    .to_string()
}

/// A request through `env`'s edge to `/<rule>/page` with a forged `X-User-Email*`; what the upstream saw.
async fn through(env: &TestEnv, upstream: &mut HookServer, rule: &str, token: &str) -> Received {
    let res = env
        .http
        .get(format!("{}{rule}/page", env.proxy))
        .bearer_auth(token)
        .header("X-User-Email", "forged@corp.example")
        .header("X-User-Email-Verified", "true")
        .header("X-Auth-Request-Email", "forged@corp.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let seen = upstream.next().await;
    assert_eq!(seen.path, format!("/{rule}/page"));
    seen
}

/// Asserts what the app sees on every rule, for an address that is (or is not) verified.
async fn app_sees(
    env: &TestEnv,
    upstream: &mut HookServer,
    token: &str,
    id: &str,
    email: &str,
    verified: bool,
) {
    let flag = if verified { "true" } else { "false" };
    let strict = through(env, upstream, "strict", token).await;
    assert_eq!(strict.header("x-user-id"), Some(id));
    assert_eq!(strict.header("x-user-email-verified"), Some(flag));
    // The e-mail only once verified; before, the header is empty (never the client's forgery).
    let shown = if verified { email } else { "" };
    assert_eq!(strict.header("x-user-email"), Some(shown));
    let proxy = through(env, upstream, "proxy", token).await;
    assert_eq!(proxy.header("x-auth-request-user"), Some(id));
    assert_eq!(proxy.header("x-auth-request-email"), Some(shown));
    assert_eq!(proxy.header("x-forwarded-email"), Some(shown));
    assert_eq!(proxy.header("x-user-email-verified"), Some(flag));
    // With the option off, the address is sent either way, marked for what it is.
    let loose = through(env, upstream, "loose", token).await;
    assert_eq!(loose.header("x-user-email"), Some(email));
    assert_eq!(loose.header("x-user-email-verified"), Some(flag));
    for seen in [&strict, &proxy, &loose] {
        for name in [
            "x-user-email",
            "x-user-email-verified",
            "x-auth-request-email",
        ] {
            assert!(
                seen.headers.iter().filter(|(k, _)| k == name).count() <= 1,
                "{name} once: {:?}",
                seen.headers
            );
        }
    }
}

async fn unverified_email_is_withheld_until_verified(backend: Backend) {
    let mut upstream = HookServer::start().await;
    let redis = tests::redis_url().is_some();
    let (env, mut sink) = {
        let sink = tests::smtp_sink::SmtpSink::start().await.unwrap();
        let mut b = TestEnv::builder(backend)
            .set(format!("courier.smtp.connection_uri={}", sink.uri()))
            .set("selfservice.flows.verification.enabled=true")
            .set(r#"selfservice.flows.registration.after.password={"hooks":[{"hook":"session"}]}"#)
            .file("rules.json", &rules(&upstream.url))
            .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#);
        if redis {
            b = b.test_redis();
        }
        (b.start().await, sink)
    };
    // With Redis, a second replica on the same database serves the edge: it must hear of the change too.
    let replica = if redis {
        Some(
            TestEnv::builder(backend)
                .dsn(&env.dsn)
                .test_redis()
                .set(format!(
                    r#"access_rules.repositories=["file://{}/rules.json"]"#,
                    env.dir.path().display()
                ))
                .start()
                .await,
        )
    } else {
        None
    };
    let edges: Vec<&TestEnv> = std::iter::once(&env).chain(replica.as_ref()).collect();

    // Anyone can register any address and is signed in at once.
    let email = "ceo@corp.example";
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
        json!({"method": "password", "traits": {"email": email}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["session_token"].as_str().unwrap().to_owned();
    let id = body["identity"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        body["identity"]["verifiable_addresses"][0]["verified"],
        false
    );
    let vid = body["continue_with"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "show_verification_ui")
        .unwrap_or_else(|| panic!("{body}"))["flow"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Unverified: no e-mail header, and the app is told why. Twice, so the snapshot is cached everywhere.
    for edge in &edges {
        for _ in 0..2 {
            app_sees(edge, &mut upstream, &token, &id, email, false).await;
        }
    }

    // The owner proves control of the address with the code from the mail.
    let code = mail_to(&mut sink, email).await.find_code().unwrap();
    let vflow: Value = env
        .http
        .get(env.public_url(&format!("self-service/verification/flows?id={vid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = post(&env, &vflow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "passed_challenge", "{body}");

    // The same session now carries the address, on every replica, without waiting for a cache to expire.
    for edge in &edges {
        app_sees(edge, &mut upstream, &token, &id, email, true).await;
    }

    // An administrator marks it unverified again (admin API): withheld again at once.
    let res = env
        .http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(
            &json!([{"op": "replace", "path": "/verifiable_addresses/0/verified", "value": false}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    for edge in &edges {
        app_sees(edge, &mut upstream, &token, &id, email, false).await;
    }

    // And verified again through the admin API.
    let res = env
        .http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(
            &json!([{"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    for edge in &edges {
        app_sees(edge, &mut upstream, &token, &id, email, true).await;
    }
}
