//! The integration-test harness: boots the whole product in-process on free ports against a real database.
//!
//! Every test gets its own database: a SQLite file in a temp dir, or (for the PostgreSQL variant, when
//! `TEST_DATABASE_URL` is set) its own schema. A set but unreachable `TEST_DATABASE_URL` fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod hook_server;
pub mod smtp_sink;

use identity::ManualClock;
use proxy::config::{Config, Sources};
use proxy::Running;
use serde_json::Value;
use std::sync::Arc;

/// Which SQL backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// PostgreSQL from `TEST_DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// The PostgreSQL URL for tests, if configured.
    pub fn postgres_url() -> Option<String> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
    }
}

/// A running product plus what tests need to talk to it.
pub struct TestEnv {
    /// The running instance.
    pub running: Option<Running>,
    /// Public base URL (trailing slash).
    pub public: String,
    /// Admin base URL (trailing slash).
    pub admin: String,
    /// Api listener base URL (decisions, rules; trailing slash).
    pub api: String,
    /// Edge proxy base URL (trailing slash).
    pub proxy: String,
    /// An HTTP client that does not follow redirects.
    pub http: reqwest::Client,
    /// The injected clock.
    pub clock: ManualClock,
    /// The DSN in use.
    pub dsn: String,
    /// Backend.
    pub backend: Backend,
    /// Temp dir holding the SQLite file and config files.
    pub dir: tempfile::TempDir,
}

/// Builder for a [`TestEnv`].
pub struct TestEnvBuilder {
    backend: Backend,
    overrides: Vec<String>,
    files: Vec<(String, String)>,
    dsn: Option<String>,
}

impl TestEnv {
    /// A builder for `backend`.
    pub fn builder(backend: Backend) -> TestEnvBuilder {
        TestEnvBuilder {
            backend,
            overrides: Vec::new(),
            files: Vec::new(),
            dsn: None,
        }
    }

    /// Boots with test defaults.
    pub async fn start(backend: Backend) -> Self {
        Self::builder(backend).start().await
    }

    /// `GET` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path.trim_start_matches('/'))
    }

    /// `GET` on the public listener.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.public, path.trim_start_matches('/'))
    }

    /// Creates an identity through the admin API and returns the response body (panics unless 201).
    pub async fn create_identity(&self, body: Value) -> Value {
        let res = self
            .http
            .post(self.admin_url("admin/identities"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "create failed: {body}");
        body
    }

    /// Issues a session for an identity (as a login would) and returns its token and id.
    pub async fn issue_session(
        &self,
        identity_id: &str,
        methods: &[(&str, identity::session::Aal)],
    ) -> (String, String) {
        let state = &self.running.as_ref().unwrap().state;
        let identity =
            identity::IdentityPool::get_identity(&state.db, identity_id.parse().unwrap(), false)
                .await
                .unwrap();
        let now = identity::Clock::now(&self.clock);
        let methods = methods
            .iter()
            .map(|(m, aal)| identity::session::AuthenticationMethod {
                method: (*m).to_owned(),
                aal: *aal,
                completed_at: now,
                provider: None,
                organization: None,
            })
            .collect();
        let issued = state
            .sessions
            .issue(
                &identity,
                methods,
                identity::session::manager::DeviceInfo {
                    ip_address: Some("203.0.113.9".into()),
                    user_agent: Some("integration-test".into()),
                    location: None,
                },
            )
            .await
            .unwrap();
        (issued.token, issued.session.id.to_string())
    }

    /// A password session (aal1).
    pub async fn login(&self, identity_id: &str) -> String {
        self.issue_session(identity_id, &[("password", identity::session::Aal::Aal1)])
            .await
            .0
    }

    /// The session cookie for a token, sealed with this instance's secrets.
    pub fn cookie_for(&self, token: &str) -> String {
        let state = &self.running.as_ref().unwrap().state;
        format!(
            "{}={}",
            state.config.session.cookie.name,
            state.cookie.seal(token).unwrap()
        )
    }

    /// A SQLite instance with these access rules (`rules.json`), quiet logs, and one identity's session cookie: what
    /// the edge benchmarks run against.
    pub async fn with_rules_and_session(rules: &str) -> (TestEnv, String) {
        let env = TestEnv::builder(Backend::Sqlite)
            .file("rules.json", rules)
            .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
            .set("log.level=error")
            .start()
            .await;
        let identity = env
            .create_identity(
                serde_json::json!({"schema_id": "default", "traits": {"email": "bench@example.com"}}),
            )
            .await;
        let token = env.login(identity["id"].as_str().unwrap()).await;
        let cookie = env.cookie_for(&token);
        (env, cookie)
    }

    /// The Prometheus text from `/admin/metrics/prometheus`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.admin_url("admin/metrics/prometheus"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET /sessions/whoami` with `X-Session-Token`.
    pub async fn whoami(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.public_url("sessions/whoami"))
            .header("x-session-token", token)
            .send()
            .await
            .unwrap()
    }

    /// Stops the product and waits for it to drain.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

impl TestEnvBuilder {
    /// Sets a config key (`key.path=value`).
    pub fn set(mut self, kv: impl Into<String>) -> Self {
        self.overrides.push(kv.into());
        self
    }

    /// Uses an existing database (to run several instances on one database, like replicas).
    pub fn dsn(mut self, dsn: &str) -> Self {
        self.dsn = Some(dsn.to_owned());
        self
    }

    /// Uses the Redis of `TEST_REDIS_URL` for the session cache (panics if unset).
    pub fn test_redis(self) -> Self {
        let url = redis_url().expect("TEST_REDIS_URL");
        // Login throttle counters get their own namespace, so tests never count each other's failures.
        self.set(format!("cache.redis.url={url}")).set(format!(
            "security.brute_force.redis_prefix=test-{}:",
            uuid::Uuid::new_v4()
        ))
    }

    /// Writes a file into the env's temp dir before boot; `{dir}` in config values refers to that dir.
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.to_owned(), contents.to_owned()));
        self
    }

    /// Boots the product.
    pub async fn start(self) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).unwrap();
        }
        let dsn = match (self.dsn.clone(), self.backend) {
            (Some(dsn), _) => dsn,
            (None, Backend::Sqlite) => {
                format!("sqlite://{}/portcullis.db?mode=rwc", dir.path().display())
            }
            (None, Backend::Postgres) => {
                let url = Backend::postgres_url()
                    .expect("the PostgreSQL variant needs TEST_DATABASE_URL");
                let (db, dsn) = identity::store::testing::isolated_postgres(&url)
                    .await
                    .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
                db.close().await;
                dsn
            }
        };
        let mut overrides = vec![
            "serve.public.host=127.0.0.1".to_owned(),
            "serve.public.port=0".to_owned(),
            "serve.admin.host=127.0.0.1".to_owned(),
            "serve.admin.port=0".to_owned(),
            "serve.api.host=127.0.0.1".to_owned(),
            "serve.api.port=0".to_owned(),
            "serve.proxy.host=127.0.0.1".to_owned(),
            "serve.proxy.port=0".to_owned(),
            "hashers.argon2.memory=1MB".to_owned(),
            "hashers.argon2.parallelism=1".to_owned(),
            "hashers.bcrypt.cost=4".to_owned(),
            "log.level=warn".to_owned(),
            // No network in tests: the breach check is tested against a local range server.
            "selfservice.methods.password.config.haveibeenpwned_enabled=false".to_owned(),
        ];
        let dir_str = dir.path().display().to_string();
        overrides.extend(self.overrides.iter().map(|o| o.replace("{dir}", &dir_str)));
        let mut config = Config::load_with_env(
            &Sources {
                files: Vec::new(),
                overrides,
                // Dev mode allows the cheap hasher settings above; the DSN is set explicitly.
                dev: true,
                use_env: false,
            },
            &[("DSN".to_owned(), dsn.clone())],
        )
        .unwrap();
        config.dev = true;
        let clock = ManualClock::new(time::macros::datetime!(2026-06-01 12:00 UTC));
        let running = proxy::start(
            config,
            proxy::Options {
                clock: Arc::new(clock.clone()),
            },
        )
        .await
        .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestEnv {
            public: running.public_url.clone(),
            admin: running.admin_url.clone(),
            proxy: running
                .proxy_addr
                .map(|a| format!("http://{a}/"))
                .unwrap_or_default(),
            api: running
                .api_addr
                .map(|a| format!("http://{a}/"))
                .unwrap_or_default(),
            running: Some(running),
            http,
            clock,
            dsn,
            backend: self.backend,
            dir,
        }
    }
}

/// Generates one test per backend from an `async fn(Backend)`: `<name>_sqlite` always runs,
/// `<name>_postgres` runs when `TEST_DATABASE_URL` is set.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[allow(non_snake_case)]
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::Backend::postgres_url().is_some() {
                        super::$name($crate::Backend::Postgres).await;
                    }
                }
            }
        )*
    };
}

/// A DSN for an empty, unmigrated database: a SQLite file in `dir`, or a fresh PostgreSQL schema.
pub async fn empty_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!(
            "sqlite://{}/{}.db?mode=rwc",
            dir.display(),
            uuid::Uuid::new_v4().simple()
        ),
        Backend::Postgres => {
            let url = Backend::postgres_url().expect("TEST_DATABASE_URL");
            identity::store::testing::empty_postgres(&url)
                .await
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"))
        }
    }
}

/// The Redis URL for tests, if configured. A set but unreachable URL fails the tests that use it.
pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A `redis-server` of the test's own on a free port, killed on drop (for outage tests).
pub struct OwnRedis {
    /// `redis://127.0.0.1:<port>/`.
    pub url: String,
    /// The port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts one and waits until it answers.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = OwnRedis {
            url: format!("redis://127.0.0.1:{port}/"),
            port,
            child: None,
        };
        r.restart();
        r
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
