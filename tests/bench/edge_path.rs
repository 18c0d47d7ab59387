//! The edge's per-request decision on a cache hit: `cargo bench -p tests --bench edge_path`.
//!
//! One `Access::evaluate` is what the gateway asks per proxied request: match the rule, open the sealed session
//! cookie, look the token up in the in-process session tier, run the `header` mutator. The product runs for real
//! (SQLite file, real session, real cookie); only the HTTP hops are left out, so regressions in this path show
//! here before they drown in loopback TCP noise in `tests/bench/run.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use proxy::access::Verdict;
use rules::pipeline::RequestInfo;
use serde_json::json;
use tests::TestEnv;

fn rules() -> String {
    json!([
        {
            "id": "cookie",
            "match": {"url": "http://app.test/cookie/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "cookie_session"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        },
        {
            "id": "anonymous",
            "match": {"url": "http://app.test/open/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "noop"}]
        }
    ])
    .to_string()
}

fn request(path: &str, cookie: Option<&str>) -> RequestInfo {
    let mut headers = vec![
        ("host".to_owned(), "app.test".to_owned()),
        ("user-agent".to_owned(), "bench/1.0".to_owned()),
        ("accept".to_owned(), "*/*".to_owned()),
    ];
    if let Some(c) = cookie {
        headers.push(("cookie".to_owned(), c.to_owned()));
    }
    RequestInfo {
        method: "GET".into(),
        scheme: "http".into(),
        host: "app.test".into(),
        path: path.into(),
        query: None,
        headers,
        client_ip: "127.0.0.1".parse().unwrap(),
        forwarded_for: None,
    }
}

fn edge_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (env, cookie) = rt.block_on(TestEnv::with_rules_and_session(&rules()));
    let access = env.running.as_ref().unwrap().state.access.clone().unwrap();

    let authenticated = request("/cookie/dashboard", Some(&cookie));
    let verdict = rt.block_on(access.evaluate(&authenticated));
    assert!(
        matches!(&verdict, Verdict::Allow { set, .. } if set.iter().any(|(k, _)| k == "X-User-Id")),
        "{verdict:?}"
    );
    let anonymous = request("/open/page", None);
    let denied = request("/cookie/dashboard", None);

    let mut g = c.benchmark_group("evaluate");
    g.bench_function("cookie_session_hit_header", |b| {
        b.iter(|| rt.block_on(access.evaluate(black_box(&authenticated))))
    });
    g.bench_function("anonymous_noop", |b| {
        b.iter(|| rt.block_on(access.evaluate(black_box(&anonymous))))
    });
    g.bench_function("no_cookie_401", |b| {
        b.iter(|| rt.block_on(access.evaluate(black_box(&denied))))
    });
    g.finish();
    drop(env);
}

criterion_group!(benches, edge_path);
criterion_main!(benches);
