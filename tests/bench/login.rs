//! Login throughput against the raw cost of verifying one password, with the default argon2id parameters
//! (128 MB, 1 iteration, parallelism 2 × cores as in Kratos).
//!
//! Run it pinned to one core, so "per core" figures are what they claim:
//!
//! ```text
//! taskset -c 0 cargo bench -p tests --bench login            # BENCH_LOGINS=40 for a longer run
//! ```
//!
//! It prints the raw verify rate (argon2id in a loop, no server), the end-to-end rate of native logins through
//! the real server (flow init + submit over HTTP, SQLite, session issue), and the gap between them, which is
//! Portcullis' own overhead per login.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::time::Instant;
use tests::{Backend, TestEnv};

const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let logins: usize = std::env::var("BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallelism = 2 * cores;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let env = TestEnv::builder(Backend::Sqlite)
            .set("hashers.algorithm=argon2")
            .set("hashers.argon2.memory=128MB")
            .set("hashers.argon2.iterations=1")
            .set(format!("hashers.argon2.parallelism={parallelism}"))
            .set("security.brute_force.enabled=false")
            .set("log.level=error")
            .start()
            .await;
        let hasher = env.running.as_ref().unwrap().state.identities.hasher().clone();

        // Raw: hash once, verify in a loop on this thread.
        let config = hasher.config().clone();
        let hash = tokio::task::spawn_blocking(move || {
            identity::hash::hash_blocking(PASSWORD.as_bytes(), &config).unwrap()
        })
        .await
        .unwrap();
        println!("cores: {cores}; hash: {}", &hash[..hash.find("$").map_or(0, |_| 40.min(hash.len()))]);
        let h = hash.clone();
        let raw = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            for _ in 0..logins {
                assert!(identity::hash::verify_blocking(PASSWORD.as_bytes(), &h).unwrap());
            }
            start.elapsed()
        })
        .await
        .unwrap();
        let raw_rate = logins as f64 / raw.as_secs_f64();

        env.create_identity(json!({
            "schema_id": "default",
            "traits": {"email": "bench@example.com"},
            "credentials": {"password": {"config": {"hashed_password": hash}}},
        }))
        .await;
        let login = |env: &TestEnv| {
            let http = env.http.clone();
            let init = env.public_url("self-service/login/api");
            async move {
                let flow: Value = http.get(init).send().await.unwrap().json().await.unwrap();
                let res = http
                    .post(flow["ui"]["action"].as_str().unwrap())
                    .json(&json!({"method": "password", "identifier": "bench@example.com", "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
        };
        login(&env).await; // warm-up
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..logins {
            tasks.spawn(login(&env));
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let total = start.elapsed();
        let login_rate = logins as f64 / total.as_secs_f64();
        println!("raw argon2id verify: {raw_rate:8.2}/s  ({:.1} ms each, {logins} verifies)", 1000.0 / raw_rate);
        println!("native logins:       {login_rate:8.2}/s  ({:.1} ms each, {logins} logins, all started at once)", 1000.0 / login_rate);
        println!(
            "overhead: {:.1}% of the raw verify rate ({:.1} ms per login)",
            100.0 * (1.0 - login_rate / raw_rate),
            1000.0 / login_rate - 1000.0 / raw_rate
        );
    });
}
