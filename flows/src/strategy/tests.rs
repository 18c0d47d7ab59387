//! The registry: a method added with one line takes part in a login flow beside the built-in ones.

use super::{test_echo, Registry, StrategyDeps};
use crate::engine::{FlowOutcome, FlowRepo, SubmitContext};
use crate::flow::FlowType;
use crate::login::{LoginFlows, LoginInit, LoginSettings};
use identity::cache::{CacheConfig, SessionCache};
use identity::hash::{Argon2Params, Hasher, HasherConfig};
use identity::schema::{SchemaRegistry, SchemaSource};
use identity::session::manager::{SessionManager, SessionSettings};
use identity::throttle::{Throttle, ThrottleSettings};
use identity::{IdentityManager, ManualClock, SharedClock};
use serde_json::json;
use std::sync::Arc;
use time::Duration;

const SCHEMA: &str = r#"{"type":"object","properties":{"traits":{"type":"object","properties":{"email":{"type":"string","format":"email","ory.sh/kratos":{"credentials":{"password":{"identifier":true}}}}}}}}"#;

async fn login_flows(dir: &std::path::Path) -> (LoginFlows, IdentityManager) {
    let (db, _) = identity::store::testing::sqlite_file(dir).await.unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(
        time::macros::datetime!(2026-03-01 0:00 UTC),
    ));
    let schemas = SchemaRegistry::load(
        &[SchemaSource {
            id: "default".into(),
            url: SCHEMA.into(),
        }],
        "default",
    )
    .unwrap();
    let hasher = Hasher::new(HasherConfig {
        algorithm: identity::hash::Algorithm::Argon2,
        argon2: Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..Argon2Params::default()
        },
        bcrypt: Default::default(),
    });
    let identities = IdentityManager::new(
        Arc::new(db.clone()),
        Arc::new(schemas),
        hasher,
        clock.clone(),
    );
    let sessions = SessionManager::new(
        Arc::new(db.clone()),
        Arc::new(db.clone()),
        SessionCache::local_only(CacheConfig::default()),
        clock.clone(),
        SessionSettings {
            lifespan: Duration::hours(1),
            earliest_possible_extend: Duration::hours(1),
        },
        "http://127.0.0.1/".into(),
    );
    let deps = StrategyDeps {
        identities: identities.clone(),
        clock: clock.clone(),
        throttle: Throttle::in_process(
            ThrottleSettings {
                enabled: false,
                ..Default::default()
            },
            clock.clone(),
        ),
        breaches: None,
        password: Some(Default::default()),
        profile: true,
        challenges: None,
    };
    let mut registry = Registry::build(&deps);
    registry.add(test_echo::EchoStrategy::build(&deps));
    let flows = LoginFlows::new(
        FlowRepo::new(Arc::new(crate::SqlFlowPool::new(db)), clock),
        identities.clone(),
        sessions,
        registry.login,
        LoginSettings {
            public_base: "http://127.0.0.1/".into(),
            lifespan: Duration::hours(1),
            require_verified_address: false,
        },
    );
    (flows, identities)
}

#[tokio::test]
async fn a_method_is_one_file_and_one_registry_line() {
    let dir = tempfile::tempdir().unwrap();
    let (flows, identities) = login_flows(dir.path()).await;
    let identity = identities
        .create(identity::manager::CreateIdentity {
            schema_id: "default".into(),
            traits: json!({"email": "echo@example.com"}),
            state: None,
            metadata_public: None,
            metadata_admin: None,
            credentials: None,
            verifiable_addresses: None,
            recovery_addresses: None,
            organization_id: None,
            external_id: None,
        })
        .await
        .unwrap();
    let init = LoginInit {
        flow_type: FlowType::Api,
        request_url: "http://127.0.0.1/self-service/login/api".into(),
        return_to: None,
        csrf_token: String::new(),
        refresh_for: None,
    };
    let flow = flows.init(init).await.unwrap();
    let mut methods: Vec<_> = flow
        .ui
        .nodes
        .iter()
        .filter_map(|n| n.input_attributes())
        .filter(|a| a.name == "method")
        .filter_map(|a| a.value.clone())
        .collect();
    methods.sort_by_key(|v| v.to_string());
    assert_eq!(
        methods,
        vec![json!("echo"), json!("password")],
        "both methods render"
    );
    let outcome = flows
        .submit(
            flow.clone(),
            &json!({"method": "echo", "identity_id": identity.id}),
            SubmitContext::default(),
        )
        .await
        .unwrap();
    let FlowOutcome::SignedIn {
        flow: done,
        session,
        ..
    } = outcome
    else {
        panic!("echo signs in: {outcome:?}");
    };
    assert_eq!(done.active.as_deref(), Some("echo"));
    assert_eq!(session.session.identity_id, identity.id);
    assert_eq!(session.session.authentication_methods[0].method, "echo");
    // The same flow dispatches `password` to the password method, which knows nothing of this identity.
    let fresh = flows
        .init(LoginInit {
            flow_type: FlowType::Api,
            request_url: String::new(),
            return_to: None,
            csrf_token: String::new(),
            refresh_for: None,
        })
        .await
        .unwrap();
    let outcome = flows
        .submit(
            fresh,
            &json!({"method": "password", "identifier": "echo@example.com", "password": "x"}),
            SubmitContext::default(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, FlowOutcome::Form(_)), "{outcome:?}");
}
