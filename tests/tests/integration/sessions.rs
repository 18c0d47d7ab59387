//! Sessions: whoami, listing, revocation, expiry, AAL, cookies and the cache, on every backend.

use identity::session::Aal;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tests::{backend_tests, Backend, OwnRedis, TestEnv};

backend_tests!(
    whoami_accepts_token_cookie_and_bearer,
    whoami_rejects_exactly_like_kratos,
    malformed_credentials_are_401_never_500,
    expiry_and_extend_follow_the_clock,
    aal2_is_required_when_available,
    revocation_disabling_and_deletion_take_effect_at_once,
    my_sessions_can_be_listed_and_revoked,
    admin_sessions_list_get_and_filter,
    identity_sessions_admin_endpoints,
    cookie_secrets_rotate,
    revocation_reaches_other_replicas_through_redis,
    redis_outage_falls_back_to_sql,
    readiness_waits_for_redis_once,
);

async fn someone(env: &TestEnv, email: &str) -> String {
    env.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn whoami_accepts_token_cookie_and_bearer(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = someone(&env, "who@example.com").await;
    let token = env.login(&id).await;
    assert!(token.starts_with("ory_st_") && token.len() == 39);

    let res = env.whoami(&token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-kratos-authenticated-identity-id"],
        id.as_str()
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["identity"]["id"], id.as_str());
    assert_eq!(body["identity"]["traits"]["email"], "who@example.com");
    assert!(body["identity"].get("credentials").is_none());
    assert!(body["identity"].get("metadata_admin").is_none());
    assert_eq!(body["authenticator_assurance_level"], "aal1");
    assert_eq!(body["authentication_methods"][0]["method"], "password");
    assert_eq!(body["issued_at"], "2026-06-01T12:00:00Z");
    assert_eq!(
        body["expires_at"], "2026-06-02T12:00:00Z",
        "session.lifespan defaults to 24h"
    );
    assert_eq!(body["devices"][0]["ip_address"], "203.0.113.9");
    assert_eq!(body["devices"][0]["user_agent"], "integration-test");

    let url = env.public_url("sessions/whoami");
    for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let res = env
            .http
            .request(method.parse().unwrap(), &url)
            .header(
                "cookie",
                format!("other=1; {}; x=y", env.cookie_for(&token)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method} with a cookie");
    }
    let res = env.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200, "bearer");
    // X-Session-Token wins over a bad cookie.
    let res = env
        .http
        .get(&url)
        .header("x-session-token", &token)
        .header("cookie", "ory_kratos_session=garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The session survives a cache miss: SQL is the source of truth.
    env.running
        .as_ref()
        .unwrap()
        .state
        .sessions
        .cache()
        .clear_local();
    assert_eq!(env.whoami(&token).await.status(), 200);
}

async fn whoami_rejects_exactly_like_kratos(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let res = env
        .http
        .get(env.public_url("sessions/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res
        .headers()
        .get("x-kratos-authenticated-identity-id")
        .is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": 401, "status": "Unauthorized",
            "reason": "No valid session credentials found in the request.",
            "message": "The request could not be authorized"}})
    );
    let res = env.whoami("ory_st_doesnotexistdoesnotexistdoesnot").await;
    assert_eq!(res.status(), 401);
}

async fn malformed_credentials_are_401_never_500(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let url = env.public_url("sessions/whoami");
    let long = "x".repeat(100_000);
    let many_cookies: String = (0..10_000).map(|i| format!("c{i}=v{i}; ")).collect();
    let cases: Vec<(&str, String)> = vec![
        ("cookie", "ory_kratos_session=garbage".into()),
        ("cookie", "ory_kratos_session=".into()),
        ("cookie", "ory_kratos_session=\"quoted\"".into()),
        ("cookie", format!("ory_kratos_session={long}")),
        ("cookie", many_cookies),
        ("x-session-token", long.clone()),
        ("authorization", format!("Bearer {long}")),
        ("authorization", "Basic dXNlcjpwYXNz".into()),
        ("authorization", "Bearer".into()),
    ];
    for (name, value) in cases {
        let res = env
            .http
            .get(&url)
            .header(name, value.as_str())
            .send()
            .await
            .unwrap();
        assert!(
            res.status() == 401 || res.status() == 431,
            "{name}: {} for {}…",
            res.status(),
            &value[..value.len().min(40)]
        );
    }
    // Non-ASCII bytes in a token header.
    let res = env
        .http
        .get(&url)
        .header(
            "x-session-token",
            reqwest::header::HeaderValue::from_bytes(b"ory_st_\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn expiry_and_extend_follow_the_clock(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("session.earliest_possible_extend=1h")
        .start()
        .await;
    let id = someone(&env, "clock@example.com").await;
    let (token, sid) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    let extend = || {
        let http = env.http.clone();
        let url = env.admin_url(&format!("admin/sessions/{sid}/extend"));
        async move { http.patch(url).send().await.unwrap() }
    };
    // Too early to extend: a silent no-op.
    let res = extend().await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_at"], "2026-06-02T12:00:00Z");
    assert_eq!(body["identity"]["id"], id.as_str());
    assert_eq!(body["devices"], Value::Null);
    // 23h30m later the window is open: extend to now + 24h.
    env.clock.advance(time::Duration::minutes(23 * 60 + 30));
    assert_eq!(env.whoami(&token).await.status(), 200);
    let body: Value = extend().await.json().await.unwrap();
    assert_eq!(body["expires_at"], "2026-06-03T11:30:00Z");
    // Past the original expiry the session still works; past the new one it does not.
    env.clock.advance(time::Duration::hours(2));
    assert_eq!(env.whoami(&token).await.status(), 200);
    env.clock.advance(time::Duration::hours(22));
    assert_eq!(
        env.whoami(&token).await.status(),
        401,
        "expired, even if cached"
    );
    let res = env
        .http
        .patch(env.admin_url(&format!("admin/sessions/{}/extend", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn aal2_is_required_when_available(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = someone(&env, "mfa@example.com").await;
    // Give the identity a TOTP credential, as a settings flow would.
    let state = &env.running.as_ref().unwrap().state;
    let mut identity = identity::IdentityPool::get_identity(&state.db, id.parse().unwrap(), true)
        .await
        .unwrap();
    identity.set_credential_identifiers(
        identity::CredentialType::Totp,
        vec![id.clone()],
        identity::Clock::now(&env.clock),
    );
    identity::IdentityPool::update_identity(&state.db, &identity)
        .await
        .unwrap();

    let aal1 = env.login(&id).await;
    let res = env.whoami(&aal1).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_aal2_required");
    let redirect = env.public_url("self-service/login/browser?aal=aal2");
    assert_eq!(body["redirect_browser_to"], redirect.as_str());
    assert_eq!(
        body["error"]["details"]["redirect_browser_to"],
        redirect.as_str()
    );

    let (aal2, _) = env
        .issue_session(&id, &[("password", Aal::Aal1), ("totp", Aal::Aal2)])
        .await;
    let res = env.whoami(&aal2).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["authenticator_assurance_level"], "aal2");

    // With required_aal: aal1 the first session is fine.
    let relaxed = TestEnv::builder(backend)
        .dsn(&env.dsn)
        .set("session.whoami.required_aal=aal1")
        .start()
        .await;
    assert_eq!(relaxed.whoami(&aal1).await.status(), 200);
}

async fn revocation_disabling_and_deletion_take_effect_at_once(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = someone(&env, "revoke@example.com").await;
    let (token, sid) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    assert_eq!(env.whoami(&token).await.status(), 200, "now cached");
    let res = env
        .http
        .delete(env.admin_url(&format!("admin/sessions/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(env.whoami(&token).await.status(), 401);
    let got: Value = env
        .http
        .get(env.admin_url(&format!("admin/sessions/{sid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["active"], false, "the row is kept, inactive");
    assert_eq!(
        env.http
            .delete(env.admin_url(&format!("admin/sessions/{}", uuid::Uuid::new_v4())))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        env.http
            .delete(env.admin_url("admin/sessions/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Disabling the identity.
    let token = env.login(&id).await;
    assert_eq!(env.whoami(&token).await.status(), 200);
    let res = env
        .http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/state", "value": "inactive"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(env.whoami(&token).await.status(), 401);
    // Enabling it again brings the session back (it was never revoked).
    env.http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/state", "value": "active"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(env.whoami(&token).await.status(), 200);
    // Trait changes show up in whoami at once.
    env.http
        .patch(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "add", "path": "/traits/name", "value": {"first": "Rev"}}]))
        .send()
        .await
        .unwrap();
    let body: Value = env.whoami(&token).await.json().await.unwrap();
    assert_eq!(body["identity"]["traits"]["name"]["first"], "Rev");
    // Deleting the identity.
    env.http
        .delete(env.admin_url(&format!("admin/identities/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(env.whoami(&token).await.status(), 401);
}

async fn my_sessions_can_be_listed_and_revoked(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = someone(&env, "mine@example.com").await;
    let other_person = someone(&env, "other@example.com").await;
    let (me, my_sid) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    let (second, second_sid) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    let (third, _) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    let (theirs, their_sid) = env
        .issue_session(&other_person, &[("password", Aal::Aal1)])
        .await;

    let res = env
        .http
        .get(env.public_url("sessions"))
        .header("x-session-token", &me)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "2");
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 2, "the current session is not listed");
    assert!(list
        .iter()
        .all(|s| s["id"] != my_sid.as_str() && s["identity"]["id"] == id.as_str()));
    assert!(list[0]["devices"].is_array());

    let del = |sid: String, token: String| {
        let http = env.http.clone();
        let url = env.public_url(&format!("sessions/{sid}"));
        async move {
            http.delete(url)
                .header("x-session-token", token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        del(my_sid.clone(), me.clone()).await,
        400,
        "use logout for the current session"
    );
    assert_eq!(del("nope".into(), me.clone()).await, 400);
    assert_eq!(
        del(their_sid.clone(), me.clone()).await,
        204,
        "another identity's session: no-op"
    );
    assert_eq!(env.whoami(&theirs).await.status(), 200);
    assert_eq!(del(second_sid.clone(), me.clone()).await, 204);
    assert_eq!(env.whoami(&second).await.status(), 401);

    let res = env
        .http
        .delete(env.public_url("sessions"))
        .header("x-session-token", &me)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["count"], 1);
    assert_eq!(env.whoami(&third).await.status(), 401);
    assert_eq!(env.whoami(&me).await.status(), 200);
    let res = env
        .http
        .get(env.public_url("sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "No valid session cookie found.");
}

async fn admin_sessions_list_get_and_filter(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = someone(&env, "adminlist@example.com").await;
    let mut sids = Vec::new();
    for _ in 0..5 {
        env.clock.advance(time::Duration::seconds(1));
        sids.push(env.issue_session(&id, &[("password", Aal::Aal1)]).await.1);
    }
    env.http
        .delete(env.admin_url(&format!("admin/sessions/{}", sids[0])))
        .send()
        .await
        .unwrap();
    // Newest first, pages of 2 via the Link header.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = env
            .http
            .get(env.admin_url("admin/sessions"))
            .query(&[("page_size", "2")]);
        if let Some(t) = &token {
            req = req.query(&[("page_token", t)]);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        token = res
            .headers()
            .get("link")
            .and_then(|l| proxy::cli::next_page_token(l.to_str().unwrap()));
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(
            page.iter()
                .all(|s| s["identity"].is_null() && s["devices"].is_null()),
            "not expanded"
        );
        seen.extend(page.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        if token.is_none() {
            break;
        }
    }
    let mut newest_first = sids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let active: Vec<Value> = env
        .http
        .get(env.admin_url("admin/sessions?active=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active.len(), 4);
    let inactive: Vec<Value> = env
        .http
        .get(env.admin_url("admin/sessions?active=false"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive.len(), 1);
    assert_eq!(inactive[0]["id"], sids[0].as_str());
    let got: Value = env
        .http
        .get(env.admin_url(&format!(
            "admin/sessions/{}?expand=identity&expand=devices",
            sids[1]
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["identity"]["id"], id.as_str());
    assert_eq!(got["devices"][0]["user_agent"], "integration-test");
    for bad in [
        "admin/sessions?expand=everything",
        "admin/sessions?active=maybe",
        "admin/sessions?page_token=x",
        "admin/sessions/not-a-uuid",
    ] {
        assert_eq!(
            env.http
                .get(env.admin_url(bad))
                .send()
                .await
                .unwrap()
                .status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(
        env.http
            .get(env.admin_url(&format!("admin/sessions/{}", uuid::Uuid::new_v4())))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn identity_sessions_admin_endpoints(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let id = someone(&env, "ids@example.com").await;
    let (t1, s1) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    let (t2, _) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    env.http
        .delete(env.admin_url(&format!("admin/sessions/{s1}")))
        .send()
        .await
        .unwrap();
    let res = env
        .http
        .get(env.admin_url(&format!("admin/identities/{id}/sessions")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "2");
    let all: Vec<Value> = res.json().await.unwrap();
    assert!(all
        .iter()
        .all(|s| s["identity"]["id"] == id.as_str() && s["devices"].is_array()));
    let active: Vec<Value> = env
        .http
        .get(env.admin_url(&format!("admin/identities/{id}/sessions?active=true")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    let url = env.admin_url(&format!("admin/identities/{id}/sessions"));
    assert_eq!(env.http.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(env.whoami(&t2).await.status(), 401);
    assert_eq!(env.whoami(&t1).await.status(), 401);
    assert_eq!(
        env.http.delete(&url).send().await.unwrap().status(),
        404,
        "nothing left to delete"
    );
    assert_eq!(
        env.http
            .delete(env.admin_url("admin/identities/x/sessions"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    // The public listener sends admin paths to the admin listener.
    let res = env
        .http
        .delete(env.public_url(&format!("identities/{id}/sessions")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
}

async fn cookie_secrets_rotate(backend: Backend) {
    let old = "old-cookie-secret-0123456789";
    let new = "new-cookie-secret-0123456789";
    let a = TestEnv::builder(backend)
        .set(format!("secrets.cookie={old}"))
        .start()
        .await;
    let id = someone(&a, "rotate@example.com").await;
    let token = a.login(&id).await;
    let cookie = a.cookie_for(&token);
    let whoami = |env: &TestEnv| {
        let http = env.http.clone();
        let url = env.public_url("sessions/whoami");
        let cookie = cookie.clone();
        async move {
            http.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(whoami(&a).await, 200);
    let rotated = TestEnv::builder(backend)
        .dsn(&a.dsn)
        .set(format!("secrets.cookie={new},{old}"))
        .start()
        .await;
    assert_eq!(
        whoami(&rotated).await,
        200,
        "old cookies still work after adding a new first secret"
    );
    let fresh = rotated.cookie_for(&token);
    assert!(!fresh.ends_with(cookie.split('=').nth(1).unwrap()));
    let removed = TestEnv::builder(backend)
        .dsn(&a.dsn)
        .set(format!("secrets.cookie={new}"))
        .start()
        .await;
    assert_eq!(
        whoami(&removed).await,
        401,
        "old cookies stop working once the old secret is removed"
    );
    let res = removed
        .http
        .get(removed.public_url("sessions/whoami"))
        .header("cookie", fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "cookies sealed with the new secret work");
}

async fn revocation_reaches_other_replicas_through_redis(backend: Backend) {
    let Some(_) = tests::redis_url() else {
        return; // runs when TEST_REDIS_URL is set (CI always sets it)
    };
    // Long local TTL: only the revocation message can evict B's copy in time.
    let a = TestEnv::builder(backend)
        .test_redis()
        .set("cache.local.ttl=1h")
        .start()
        .await;
    let b = TestEnv::builder(backend)
        .dsn(&a.dsn)
        .test_redis()
        .set("cache.local.ttl=1h")
        .start()
        .await;
    let id = someone(&a, "replicas@example.com").await;
    let (token, sid) = a.issue_session(&id, &[("password", Aal::Aal1)]).await;
    assert_eq!(a.whoami(&token).await.status(), 200);
    assert_eq!(b.whoami(&token).await.status(), 200, "B has it cached now");
    let res = a
        .http
        .delete(a.admin_url(&format!("admin/sessions/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let returned = Instant::now();
    let deadline = returned + Duration::from_secs(2);
    loop {
        if b.whoami(&token).await.status() == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica B still accepts a revoked session"
        );
    }
    // How fast is a benchmark's question, not a test's: the hour-long local TTL already proves that only the
    // revocation message can have evicted B's copy.
    println!(
        "revocation reached replica B {:?} after the revoke call returned",
        returned.elapsed()
    );
}

/// With `cache.redis.url`, a replica is not ready before Redis has answered once (its cache could not hear about
/// revocations); a later outage does not make it unready (it falls back to SQL).
async fn readiness_waits_for_redis_once(backend: Backend) {
    let mut redis = OwnRedis::start();
    redis.kill();
    let env = TestEnv::builder(backend)
        .set(format!("cache.redis.url={}", redis.url))
        .start()
        .await;
    let ready = || async {
        let res = env
            .http
            .get(env.admin_url("admin/health/ready"))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Redis"), "{body}");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = ready().await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.kill();
    assert_eq!(
        ready().await.0,
        200,
        "a Redis outage later keeps the replica ready"
    );
}

async fn redis_outage_falls_back_to_sql(backend: Backend) {
    let mut redis = OwnRedis::start();
    let env = TestEnv::builder(backend)
        .set(format!("cache.redis.url={}", redis.url))
        .set("cache.local.ttl=0s")
        .start()
        .await;
    let id = someone(&env, "outage@example.com").await;
    let token = env.login(&id).await;
    let metrics = || {
        env.running
            .as_ref()
            .unwrap()
            .state
            .sessions
            .cache()
            .metrics()
            .redis_hits()
    };
    assert_eq!(env.whoami(&token).await.status(), 200);
    assert_eq!(env.whoami(&token).await.status(), 200);
    let hits_before = metrics();
    assert!(hits_before >= 1, "the second lookup is a Redis hit");

    redis.kill();
    for _ in 0..3 {
        let res = env.whoami(&token).await;
        assert_eq!(res.status(), 200, "answered from SQL while Redis is down");
    }
    assert_eq!(
        env.whoami("ory_st_unknownunknownunknownunknownunk")
            .await
            .status(),
        401
    );
    assert!(
        env.running
            .as_ref()
            .unwrap()
            .state
            .sessions
            .cache()
            .metrics()
            .redis_errors()
            >= 1
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics() <= hits_before {
        assert_eq!(env.whoami(&token).await.status(), 200);
        assert!(
            Instant::now() < deadline,
            "the cache did not use Redis again after it came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

backend_tests!(whoami_tokenizes_sessions_as_jwt);

const EC_JWK: &str = r#"{"kty": "EC", "kid": "ec-key-1", "crv": "P-256", "x": "0zm5fD9vcq5Zxq03vWkHn-uEeIWBwhc-Uf_jtELp1TI", "y": "xkkw0lpWg0dfcuxqkA1hAAVETDdW48VNGSCqX-OJZHc", "d": "CUHSMI_91zs8PrbwMwWw9gMU67N1in6pLEH_De-sNAM"}"#;

async fn whoami_tokenizes_sessions_as_jwt(backend: Backend) {
    use base64::Engine;
    use p256::ecdsa::signature::Verifier;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let env = TestEnv::builder(backend)
        .file("jwks.json", &format!(r#"{{"keys": [{EC_JWK}]}}"#))
        .file("mapper.json", r#"{"claims": {"email": "{{ session.identity.traits.email }}", "tier": "gold"}}"#)
        .set(r#"session.whoami.tokenizer.templates={"api": {"jwks_url": "file://{dir}/jwks.json", "claims_mapper_url": "file://{dir}/mapper.json", "ttl": "10m"}}"#)
        .start()
        .await;
    let id = someone(&env, "jwt@example.com").await;
    let (token, sid) = env.issue_session(&id, &[("password", Aal::Aal1)]).await;
    let res = env
        .http
        .get(env.public_url("sessions/whoami?tokenize_as=api"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], sid.as_str());
    let jwt = body["tokenized"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], "ec-key-1");
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["email"], "jwt@example.com");
    assert_eq!(claims["tier"], "gold");
    assert_eq!(claims["iss"], env.public.trim_end_matches('/'));
    let iat = time::macros::datetime!(2026-06-01 12:00 UTC).unix_timestamp();
    assert_eq!(claims["iat"], iat, "the injected clock");
    assert_eq!(claims["exp"], iat + 600);
    // The signature verifies with the public key alone.
    let jwk: Value = serde_json::from_str(EC_JWK).unwrap();
    let mut point = vec![4u8];
    point.extend(b64.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(b64.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&b64.decode(parts[2]).unwrap()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();

    let res = env
        .http
        .get(env.public_url("sessions/whoami?tokenize_as=nope"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
