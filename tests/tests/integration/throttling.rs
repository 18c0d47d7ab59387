//! Brute-force protection: failed logins per identifier and per client IP within a sliding window.

use serde_json::{json, Value};
use tests::browser::{csrf_of, message_ids, Browser};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    throttling_kicks_in_and_lifts,
    throttling_counts_per_ip,
    concurrent_guesses_cost_at_most_the_limit,
    concurrent_guesses_on_two_replicas_cost_at_most_the_limit,
);

const PASSWORD: &str = "correct horse battery staple";

async fn identity(env: &TestEnv, email: &str) {
    env.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PASSWORD}}},
    }))
    .await;
}

async fn api_login(env: &TestEnv, identifier: &str, password: &str) -> reqwest::Response {
    let flow: Value = env
        .http
        .get(env.public_url("self-service/login/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    env.http
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({"method": "password", "identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `portcullis_password_verifications_total` from the admin metrics.
async fn verifications(env: &TestEnv) -> u64 {
    let metrics = env.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_password_verifications_total "))
        .unwrap_or_else(|| panic!("no verification counter in {metrics}"))
        .parse()
        .unwrap()
}

/// `n` wrong passwords for `identifier`, submitted all at once, round robin over `envs` (each on a flow of its
/// own, created beforehand): the statuses, sorted.
async fn concurrent_guesses(envs: &[&TestEnv], identifier: &str, n: usize) -> Vec<u16> {
    let mut actions = Vec::new();
    for i in 0..n {
        let env = envs[i % envs.len()];
        let flow: Value = env
            .http
            .get(env.public_url("self-service/login/api"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        actions.push((
            env.http.clone(),
            flow["ui"]["action"].as_str().unwrap().to_owned(),
        ));
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (http, action)) in actions.into_iter().enumerate() {
        let barrier = barrier.clone();
        let body = json!({"method": "password", "identifier": identifier, "password": format!("guess number {i}")});
        tasks.spawn(async move {
            barrier.wait().await;
            http.post(action)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort_unstable();
    statuses
}

/// 40 wrong passwords at once against a limit of 5: exactly 5 are hashed (and answered 400), the others are
/// refused before any hashing. Before the fix, every guess that arrived before the first failure was recorded
/// got hashed.
async fn concurrent_guesses_cost_at_most_the_limit(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("security.brute_force.max_failures_per_identifier=5")
        .start()
        .await;
    identity(&env, "target@example.com").await;
    let before = verifications(&env).await;
    let statuses = concurrent_guesses(&[&env], "target@example.com", 40).await;
    let hashed = verifications(&env).await - before;
    assert_eq!(
        hashed, 5,
        "password verifications for 40 concurrent guesses"
    );
    let mut expected = vec![400; 5];
    expected.extend([429; 35]);
    assert_eq!(statuses, expected);
    // The guesses were counted: even the right password waits for the window.
    let res = api_login(&env, "target@example.com", PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert_eq!(verifications(&env).await - before, 5);
}

/// The same across two replicas sharing one database and one Redis: 5 verifications in all.
async fn concurrent_guesses_on_two_replicas_cost_at_most_the_limit(backend: Backend) {
    if tests::redis_url().is_none() {
        return;
    }
    let prefix = format!(
        "security.brute_force.redis_prefix=concurrent-{}:",
        uuid::Uuid::new_v4()
    );
    // A loaded test machine can take longer than the production 250 ms to answer; a timeout would let a replica
    // fall back to its own counters, which is the outage behaviour, not what this test is about.
    let a = TestEnv::builder(backend)
        .test_redis()
        .set(&*prefix)
        .set("security.brute_force.max_failures_per_identifier=5")
        .set("security.brute_force.redis_timeout=10s")
        .start()
        .await;
    let b = TestEnv::builder(backend)
        .dsn(&a.dsn)
        .test_redis()
        .set(&*prefix)
        .set("security.brute_force.max_failures_per_identifier=5")
        .set("security.brute_force.redis_timeout=10s")
        .start()
        .await;
    identity(&a, "shared-target@example.com").await;
    let before = verifications(&a).await + verifications(&b).await;
    let statuses = concurrent_guesses(&[&a, &b], "shared-target@example.com", 40).await;
    let hashed = verifications(&a).await + verifications(&b).await - before;
    assert_eq!(
        hashed, 5,
        "password verifications on both replicas together"
    );
    let mut expected = vec![400; 5];
    expected.extend([429; 35]);
    assert_eq!(statuses, expected);
    for env in [&a, &b] {
        let res = api_login(env, "shared-target@example.com", PASSWORD).await;
        assert_eq!(res.status(), 429);
    }
}

async fn throttling_kicks_in_and_lifts(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("security.brute_force.max_failures_per_identifier=3")
        .set("security.brute_force.window=60s")
        .start()
        .await;
    identity(&env, "victim@example.com").await;
    for _ in 0..3 {
        let res = api_login(&env, "victim@example.com", "guess guess guess").await;
        assert_eq!(res.status(), 400);
        env.clock.advance(time::Duration::seconds(10));
    }
    // Now even the right password is refused until the window slides.
    let res = api_login(&env, "Victim@Example.com ", PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry_after, 30,
        "the oldest failure leaves the window in 30 s"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["details"]["retry_after_seconds"], 30);

    // HTML clients see the message on the form instead.
    let mut b = Browser::html();
    let res = b.get(&env.public_url("self-service/login/browser")).await;
    let location = res.location().to_owned();
    let id = location.split("flow=").nth(1).unwrap().to_owned();
    let flow = b
        .get(&env.public_url(&format!("self-service/login/flows?id={id}")))
        .await
        .json();
    let res = b
        .post_form(
            flow["ui"]["action"].as_str().unwrap(),
            &[
                ("csrf_token", &csrf_of(&flow)),
                ("identifier", "victim@example.com"),
                ("password", PASSWORD),
                ("method", "password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = b.get(res.location()).await;
    assert!(
        page.text.contains("Too many failed sign-in attempts"),
        "{}",
        page.text
    );

    // Other accounts are unaffected.
    identity(&env, "bystander@example.com").await;
    assert_eq!(
        api_login(&env, "bystander@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    // The window slides: 30 s later one attempt is allowed again, and it succeeds.
    env.clock.advance(time::Duration::seconds(30));
    let res = api_login(&env, "victim@example.com", PASSWORD).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // A success clears the identifier's failures.
    let res = api_login(&env, "victim@example.com", "guess guess guess").await;
    assert_eq!(res.status(), 400);
    let flow: Value = res.json().await.unwrap();
    assert!(message_ids(&flow).contains(&4000006));
}

async fn throttling_counts_per_ip(backend: Backend) {
    let env = TestEnv::builder(backend)
        .set("security.brute_force.max_failures_per_ip=4")
        .start()
        .await;
    identity(&env, "real@example.com").await;
    for i in 0..4 {
        let res = api_login(&env, &format!("nobody{i}@example.com"), "guess guess").await;
        assert_eq!(res.status(), 400);
    }
    let res = api_login(&env, "real@example.com", PASSWORD).await;
    assert_eq!(res.status(), 429, "the address is over its limit");
    env.clock.advance(time::Duration::minutes(5));
    assert_eq!(
        api_login(&env, "real@example.com", PASSWORD).await.status(),
        200
    );
}

/// Two replicas on one database and one Redis count failures together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_shared_by_replicas_through_redis() {
    if tests::redis_url().is_none() {
        return;
    }
    let prefix = format!(
        "security.brute_force.redis_prefix=replicas-{}:",
        uuid::Uuid::new_v4()
    );
    let a = TestEnv::builder(Backend::Sqlite)
        .test_redis()
        .set(&*prefix)
        .set("security.brute_force.max_failures_per_identifier=2")
        .start()
        .await;
    let b = TestEnv::builder(Backend::Sqlite)
        .dsn(&a.dsn)
        .test_redis()
        .set(&*prefix)
        .set("security.brute_force.max_failures_per_identifier=2")
        .start()
        .await;
    identity(&a, "shared@example.com").await;
    assert_eq!(
        api_login(&a, "shared@example.com", "wrong one")
            .await
            .status(),
        400
    );
    assert_eq!(
        api_login(&b, "shared@example.com", "wrong two")
            .await
            .status(),
        400
    );
    assert_eq!(
        api_login(&a, "shared@example.com", PASSWORD).await.status(),
        429,
        "replica a counts replica b's failure"
    );
    assert_eq!(
        api_login(&b, "shared@example.com", PASSWORD).await.status(),
        429
    );
}
