//! `security.account_enumeration.mitigate`: Kratos' flag only changes identifier-first login, which Portcullis
//! does not have, so `true` is refused with an error naming the key instead of being accepted and ignored. What
//! the product answers about existing accounts is pinned here: login hides it, registration names a taken
//! identifier (as Kratos does, flag or not).

use clap::Parser;
use proxy::cli::{execute, Cli};
use serde_json::{json, Value};
use tests::browser::message_ids;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(login_answers_unknown_identifiers_and_wrong_passwords_alike);

async fn config_check(file: &std::path::Path) -> anyhow::Result<()> {
    let argv = ["portcullis", "config", "check", file.to_str().unwrap()];
    execute(Cli::try_parse_from(argv)?).await
}

#[tokio::test]
async fn mitigate_true_is_refused_with_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let on = dir.path().join("on.yml");
    std::fs::write(
        &on,
        "dsn: memory\nsecurity:\n  account_enumeration:\n    mitigate: true\n",
    )
    .unwrap();
    let err = format!("{:#}", config_check(&on).await.unwrap_err());
    assert!(
        err.contains("security.account_enumeration.mitigate"),
        "{err}"
    );
    assert!(err.contains("not supported"), "{err}");

    // The default, spelled out as Kratos configs do, still loads.
    let off = dir.path().join("off.yml");
    std::fs::write(
        &off,
        "dsn: memory\nsecurity:\n  account_enumeration:\n    mitigate: false\n",
    )
    .unwrap();
    config_check(&off).await.unwrap();

    // The environment spelling is refused too.
    let sources = proxy::config::Sources {
        files: Vec::new(),
        overrides: Vec::new(),
        dev: true,
        use_env: false,
    };
    let vars = [(
        "SECURITY_ACCOUNT_ENUMERATION_MITIGATE".to_owned(),
        "true".to_owned(),
    )];
    let err = proxy::config::Config::load_with_env(&sources, &vars)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("security.account_enumeration.mitigate"),
        "{err}"
    );
}

async fn login(env: &TestEnv, identifier: &str, password: &str) -> (u16, Value) {
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
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The form messages, as the client sees them.
fn messages(flow: &Value) -> Value {
    flow["ui"]["messages"].clone()
}

async fn verifications(env: &TestEnv) -> u64 {
    let metrics = env.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_password_verifications_total "))
        .unwrap()
        .parse()
        .unwrap()
}

async fn login_answers_unknown_identifiers_and_wrong_passwords_alike(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": "known@example.com"},
        "credentials": {"password": {"config": {"password": "correct horse battery staple"}}},
    }))
    .await;
    // Warm the dummy hash, so both attempts below cost exactly one verification.
    login(&env, "warm-up@example.com", "some password").await;

    let before = verifications(&env).await;
    let (s1, unknown) = login(&env, "nobody@example.com", "some password").await;
    let mid = verifications(&env).await;
    let (s2, wrong) = login(&env, "known@example.com", "some password").await;
    let after = verifications(&env).await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(messages(&unknown), messages(&wrong));
    assert_eq!(message_ids(&unknown), vec![4000006]);
    assert_eq!(
        (mid - before, after - mid),
        (1, 1),
        "the same hashing work either way"
    );

    // Registration names a taken identifier, as Kratos does with or without its flag.
    let flow: Value = env
        .http
        .get(env.public_url("self-service/registration/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = env
        .http
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({"method": "password", "traits": {"email": "KNOWN@example.com"}, "password": "another good passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(message_ids(&body), vec![4000007]);
}
