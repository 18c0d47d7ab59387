//! Portcullis: the composition root. Loads config, wires the domain crates, serves the listeners.
//!
//! [`start`] boots the whole product in-process and returns a [`Running`] handle, so tests run the real thing
//! on free ports.

pub mod access;
pub mod admin;
pub mod api;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod courier;
pub mod demo;
pub mod edge;
pub mod error;
mod extract;
pub mod gateway;
pub mod hibp;
pub mod hooks;
pub mod listener;
pub mod metrics;
pub mod pagination;
pub mod public;
mod request_log;
pub mod selfservice;
pub mod sessions;
pub mod telemetry;
pub mod ui;
pub mod webhook;

use anyhow::Context;
use axum::Router;
use config::Config;
use identity::cache::SessionCache;
use identity::hash::{Argon2Params, BcryptParams, Hasher, HasherConfig};
use identity::schema::{SchemaRegistry, SchemaSource};
use identity::session::cookie::CookieCodec;
use identity::session::manager::{SessionManager, SessionSettings};
use identity::tokenize::Tokenizer;
use identity::{Db, IdentityManager, SharedClock, SystemClock};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// Identity operations.
    pub identities: IdentityManager,
    /// The database.
    pub db: Db,
    /// Configuration.
    pub config: Arc<Config>,
    /// Public base URL, with a trailing slash.
    pub public_base: String,
    /// Admin base URL, with a trailing slash.
    pub admin_base: String,
    /// Time.
    pub clock: SharedClock,
    /// Sessions.
    pub sessions: SessionManager,
    /// Seals and opens session cookies.
    pub cookie: CookieCodec,
    /// Session-to-JWT templates.
    pub tokenizer: Arc<Tokenizer>,
    /// Loads and saves flows of any kind.
    pub flow_repo: flows::engine::FlowRepo,
    /// The login flow.
    pub login_flows: flows::login::LoginFlows,
    /// The registration flow.
    pub registration_flows: flows::registration::RegistrationFlows,
    /// The settings flow.
    pub settings_flows: flows::settings::SettingsFlows,
    /// Recovery and verification.
    pub challenges: flows::challenge::ChallengeFlows,
    /// Logout.
    pub logout_flows: flows::logout::LogoutFlows,
    /// The configured flow hooks.
    pub hooks: Arc<hooks::ConfiguredHooks>,
    /// Stored self-service errors.
    pub errors: Arc<dyn flows::ErrorPool>,
    /// The CSRF cookie's name (`csrf_token_<sha256 of the public base URL>`).
    pub csrf_cookie: String,
    /// Secrets that seal cookies and derive logout tokens, newest first.
    pub cookie_secrets: Arc<Vec<String>>,
    /// Access rules and their pipelines (the proxy and the decisions API).
    pub access: Option<Arc<access::Access>>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The e-mail outbox.
    pub courier: Arc<flows::courier::Courier>,
    /// What readiness has already seen work (checked once, then remembered).
    pub readiness: Arc<Readiness>,
}

/// Conditions of `/health/ready` that, once met, stay met.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Every migration the binary knows is applied.
    pub migrated: std::sync::atomic::AtomicBool,
    /// Redis answered (the invalidation listener subscribed) at least once.
    pub redis_seen: std::sync::atomic::AtomicBool,
}

/// Things tests (and embedders) may replace.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clock.
    pub clock: SharedClock,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}

/// A running instance.
pub struct Running {
    /// Where the public listener is.
    pub public_addr: Option<SocketAddr>,
    /// Where the admin listener is.
    pub admin_addr: Option<SocketAddr>,
    /// Where the api listener (decisions, rules, JWKS) is.
    pub api_addr: Option<SocketAddr>,
    /// Where the edge proxy listens.
    pub proxy_addr: Option<SocketAddr>,
    /// Public base URL (trailing slash).
    pub public_url: String,
    /// Admin base URL (trailing slash).
    pub admin_url: String,
    /// The database (tests inspect it).
    pub db: Db,
    /// Shared state (tests issue sessions and seal cookies with it).
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    shutdown_timeout: std::time::Duration,
    tasks: JoinSet<std::io::Result<()>>,
    gateway: Option<gateway::Gateway>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("public_url", &self.public_url)
            .field("admin_url", &self.admin_url)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The edge proxy, when it runs.
    pub fn gateway(&self) -> Option<&gateway::Gateway> {
        self.gateway.as_ref()
    }

    /// Stops accepting, drains in-flight requests and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        // The gateway first: its in-flight requests may still need the identity listeners.
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        let _ = self.shutdown.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(self.shutdown_timeout, drain).await;
        self.db.close().await;
    }

    /// Waits until a listener stops (only on error or after shutdown was triggered).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        match self.tasks.join_next().await {
            None => Ok(()),
            Some(done) => done
                .context("listener task panicked")?
                .context("listener failed"),
        }
    }

    /// A handle that triggers shutdown from elsewhere (signal handlers).
    pub fn shutdown_trigger(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Builds the hasher from config.
pub fn hasher(config: &Config) -> anyhow::Result<Hasher> {
    let a = &config.hashers.argon2;
    let defaults = Argon2Params::default();
    Ok(Hasher::new(HasherConfig {
        algorithm: config.hashers.algorithm,
        argon2: Argon2Params {
            memory_kib: a.memory_kib()?,
            iterations: a.iterations,
            parallelism: a.parallelism.unwrap_or(defaults.parallelism),
            salt_length: a.salt_length,
            key_length: a.key_length,
        },
        bcrypt: BcryptParams {
            cost: config.hashers.bcrypt.cost,
        },
    }))
}

/// Loads the identity schemas named in config.
pub fn schemas(config: &Config) -> anyhow::Result<SchemaRegistry> {
    let sources: Vec<SchemaSource> = config
        .identity
        .schemas
        .iter()
        .map(|s| SchemaSource {
            id: s.id.clone(),
            url: s.url.clone(),
        })
        .collect();
    SchemaRegistry::load(&sources, &config.identity.default_schema_id)
        .context("cannot load identity schemas")
}

/// The secrets that seal session cookies, newest first: `secrets.cookie`, else `secrets.default`. Without any,
/// a random secret is made for this process (sessions then do not survive a restart or span replicas).
pub fn cookie_secrets(config: &Config) -> Vec<String> {
    let configured = if config.secrets.cookie.is_empty() {
        &config.secrets.default
    } else {
        &config.secrets.cookie
    };
    if configured.is_empty() {
        tracing::warn!(
            "no secrets.cookie or secrets.default configured: using a random secret; session cookies will not \
             survive a restart or work across replicas"
        );
        return vec![identity::session::token::new_session_token()];
    }
    configured.iter().map(|s| s.expose().to_owned()).collect()
}

/// The Have I Been Pwned client, when the check is on.
fn breach_checker(config: &Config) -> Option<Arc<dyn flows::password_policy::BreachRange>> {
    let p = &config.selfservice.methods.password.config;
    p.haveibeenpwned_enabled.then(|| {
        Arc::new(hibp::HibpClient::new(
            &p.haveibeenpwned_host,
            std::time::Duration::from_secs(5),
        )) as Arc<dyn flows::password_policy::BreachRange>
    })
}

/// The password policy from `selfservice.methods.password.config`.
fn password_policy(config: &Config) -> flows::password_policy::PolicyConfig {
    let p = &config.selfservice.methods.password.config;
    flows::password_policy::PolicyConfig {
        min_length: p.min_password_length as usize,
        max_length: match config.hashers.algorithm {
            identity::hash::Algorithm::Bcrypt => 72,
            identity::hash::Algorithm::Argon2 => p.max_password_length as usize,
        },
        identifier_similarity_check: p.identifier_similarity_check_enabled,
        haveibeenpwned_enabled: p.haveibeenpwned_enabled,
        max_breaches: u64::from(p.max_breaches),
        ignore_network_errors: p.ignore_network_errors,
    }
}

/// Whether a flow's `after` hooks (for any method or the password method) include `hook`.
fn has_after_hook(after: &config::AfterHooks, hook: &str) -> bool {
    after
        .hooks
        .iter()
        .chain(after.password.iter().flat_map(|m| m.hooks.iter()))
        .any(|h| h.hook == hook)
}

/// Login flow settings from `selfservice.*`.
fn login_settings(config: &Config, public_base: &str) -> flows::login::LoginSettings {
    let login = &config.selfservice.flows.login;
    flows::login::LoginSettings {
        public_base: public_base.to_owned(),
        lifespan: login.lifespan.as_time(),
        require_verified_address: has_after_hook(&login.after, "require_verified_address"),
    }
}

/// Registration flow settings from `selfservice.*`.
fn registration_settings(
    config: &Config,
    public_base: &str,
) -> flows::registration::RegistrationSettings {
    let registration = &config.selfservice.flows.registration;
    flows::registration::RegistrationSettings {
        public_base: public_base.to_owned(),
        lifespan: registration.lifespan.as_time(),
        enabled: registration.enabled.unwrap_or(true),
        session_after_registration: has_after_hook(&registration.after, "session"),
    }
}

fn settings_flow_settings(
    config: &Config,
    public_base: &str,
) -> flows::settings::SettingsFlowSettings {
    let f = &config.selfservice.flows.settings;
    flows::settings::SettingsFlowSettings {
        public_base: public_base.to_owned(),
        lifespan: f.lifespan.as_time(),
        privileged_session_max_age: f
            .privileged_session_max_age
            .unwrap_or(config::Duration::secs(3600))
            .as_time(),
        settings_ui: selfservice::ui_url_for(config, public_base, flows::FlowKind::Settings),
    }
}

fn challenge_settings(
    config: &Config,
    public_base: &str,
    secrets: &[String],
) -> flows::challenge::ChallengeSettings {
    use flows::challenge::ChallengeKindSettings;
    use flows::FlowKind;
    let f = &config.selfservice.flows;
    let m = &config.selfservice.methods;
    let kind = |c: &config::FlowConfig, k: FlowKind| ChallengeKindSettings {
        enabled: c.enabled.unwrap_or(false),
        use_link: c.use_method.as_deref() == Some("link"),
        lifespan: c.lifespan.as_time(),
        notify_unknown_recipients: c.notify_unknown_recipients,
        ui_url: selfservice::ui_url_for(config, public_base, k),
    };
    let mut link_base = m
        .link
        .config
        .base_url
        .clone()
        .unwrap_or_else(|| public_base.to_owned());
    if !link_base.ends_with('/') {
        link_base.push('/');
    }
    flows::challenge::ChallengeSettings {
        public_base: public_base.to_owned(),
        link_base,
        recovery: kind(&f.recovery, FlowKind::Recovery),
        verification: kind(&f.verification, FlowKind::Verification),
        code_enabled: m.code.enabled,
        code_lifespan: m.code.config.lifespan.as_time(),
        max_submissions: m.code.config.max_submissions.max(1),
        link_enabled: m.link.enabled,
        link_lifespan: m.link.config.lifespan.as_time(),
        privileged_session_max_age: f
            .settings
            .privileged_session_max_age
            .unwrap_or(config::Duration::secs(3600))
            .as_time(),
        verification_return_url: selfservice::default_return_for(
            config,
            public_base,
            Some(FlowKind::Verification),
        ),
        // Codes are keyed by a secret of their own, derived from the first cookie secret.
        secret: format!(
            "portcullis one-time codes\0{}",
            secrets.first().map(String::as_str).unwrap_or("")
        )
        .into_bytes(),
    }
}

/// The access rules: `access_rules.repositories`, or in `--dev` without rules the demo rule in front of the demo
/// upstream.
async fn access_engine(
    config: &Config,
    public_base: &str,
    sessions: &SessionManager,
    cookie: &CookieCodec,
    stop: watch::Receiver<bool>,
    clock: SharedClock,
    metrics: Arc<metrics::Metrics>,
) -> anyhow::Result<(access::Access, Vec<rules::Rule>)> {
    let services = rules::pipeline::Services {
        clock,
        http: Arc::new(access::ReqwestClient::new(std::time::Duration::from_secs(
            5,
        ))),
        sessions: Some(Arc::new(access::CacheSessions {
            sessions: sessions.clone(),
            cookie: cookie.clone(),
            cookie_name: config.session.cookie.name.clone(),
        })),
    };
    let demo = config.dev
        && config.access_rules.repositories.is_empty()
        && config.access_rules.matching_strategy != "glob";
    let extra = if demo {
        demo::demo_rule().into_iter().collect()
    } else {
        Vec::new()
    };
    let mut engine = access::Access::load(config, public_base, services, extra.clone(), metrics)?;
    engine.default_upstream = match &config.proxy.upstream {
        Some(u) => Some(Arc::new(
            url::Url::parse(u).context("proxy.upstream is not a URL")?,
        )),
        None if demo => Some(Arc::new(url::Url::parse(&demo::start(stop).await?)?)),
        None => None,
    };
    Ok((engine, extra))
}

/// Parses the CIDR list of config key `key` (an address alone is one host).
pub(crate) fn cidrs(key: &str, list: &[String]) -> anyhow::Result<Vec<gateway::Cidr>> {
    list.iter()
        .map(|c| {
            c.parse::<gateway::Cidr>()
                .map_err(|e| anyhow::anyhow!("{key}: {c:?}: {e}"))
        })
        .collect()
}

/// Starts the edge proxy on `serve.proxy`, sending reserved paths to the public listener (with the client address
/// and `edge_secret` when that listener is ours).
async fn start_gateway(
    state: &AppState,
    public_addr: Option<SocketAddr>,
    edge_secret: Option<&client_ip::EdgeSecret>,
) -> anyhow::Result<gateway::Gateway> {
    let p = &state.config.serve.proxy;
    let listener = bind(&p.host, p.port).await?.into_std()?;
    let identity_addr = match public_addr {
        Some(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        Some(a) => a,
        None => SocketAddr::from(([127, 0, 0, 1], state.config.serve.public.port)),
    };
    let mut trusted = cidrs("serve.proxy.trusted_proxies", &p.trusted_proxies)?;
    if p.trust_forwarded_headers {
        trusted.extend(
            ["0.0.0.0/0", "::/0"]
                .iter()
                .filter_map(|c| c.parse::<gateway::Cidr>().ok()),
        );
    }
    let mut config = gateway::GatewayConfig::new(listener, identity_addr);
    config.trusted_proxies = trusted;
    config.shutdown_timeout = state.config.serve.shutdown_timeout.0;
    config.upstream_timeouts.connect = p.connect_timeout.0;
    config.upstream_timeouts.read = p.read_timeout.0;
    config.max_header_bytes = p.max_header_bytes;
    config.identity_secret = edge_secret.map(client_ip::EdgeSecret::header_value);
    // The decider uses our sqlx and Redis pools: run it on the application's runtime.
    config.runtime = gateway::GatewayRuntime::Shared(tokio::runtime::Handle::current());
    let g = gateway::Gateway::start(
        config,
        Arc::new(edge::EdgeDecider {
            state: state.clone(),
        }),
    )?;
    tracing::info!(addr = %g.local_addr(), "edge proxy listening");
    Ok(g)
}

/// The login throttle: in Redis when `cache.redis.url` is set (every replica counts together), else in-process.
pub async fn throttle(
    config: &Config,
    clock: SharedClock,
) -> anyhow::Result<identity::throttle::Throttle> {
    let b = &config.security.brute_force;
    let settings = identity::throttle::ThrottleSettings {
        enabled: b.enabled,
        window: b.window.as_time(),
        max_per_identifier: b.max_failures_per_identifier,
        max_per_ip: b.max_failures_per_ip,
        redis_timeout: b.redis_timeout.0,
    };
    Ok(match &config.cache.redis.url {
        Some(url) => {
            identity::throttle::Throttle::redis(settings, clock, url.expose(), &b.redis_prefix)
                .await
                .context("cannot use cache.redis.url for login throttling")?
        }
        None => identity::throttle::Throttle::in_process(settings, clock),
    })
}

/// `session.lifespan` and `session.earliest_possible_extend`.
pub fn session_settings(config: &Config) -> SessionSettings {
    SessionSettings {
        lifespan: config.session.lifespan.as_time(),
        earliest_possible_extend: config
            .session
            .earliest_possible_extend
            .unwrap_or(config.session.lifespan)
            .as_time(),
    }
}

/// Builds the session cache from `cache.*`.
pub async fn session_cache(config: &Config) -> anyhow::Result<SessionCache> {
    let c = &config.cache;
    let cache_config = identity::cache::CacheConfig {
        redis_url: c.redis.url.as_ref().map(|u| u.expose().to_owned()),
        ttl: c.ttl.0,
        local_capacity: c.local.capacity,
        local_ttl: c.local.ttl.0,
        ..Default::default()
    };
    Ok(match cache_config.redis_url {
        Some(_) => SessionCache::new(cache_config)
            .await
            .context("cannot set up the session cache")?,
        None => SessionCache::local_only(cache_config),
    })
}

/// Loads the session-to-JWT templates.
pub fn tokenizer(config: &Config) -> anyhow::Result<Tokenizer> {
    let templates = config
        .session
        .whoami
        .tokenizer
        .templates
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                identity::tokenize::TemplateConfig {
                    jwks_url: t.jwks_url.clone(),
                    claims_mapper_url: t.claims_mapper_url.clone(),
                    ttl: t.ttl.0,
                    subject_source: t.subject_source.clone(),
                },
            )
        })
        .collect();
    Tokenizer::load(&templates).context("cannot load session.whoami.tokenizer.templates")
}

/// Connects to the database and applies migrations where `serve` may (`--dev` or SQLite); otherwise refuses
/// to start with pending migrations.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(config.dsn())
        .await
        .context("cannot connect to the database")?;
    if config.dev || db.backend() == identity::store::Backend::Sqlite {
        db.migrate().await.context("cannot apply migrations")?;
    } else {
        let pending = db.pending_migrations().await?;
        if !pending.is_empty() {
            // Serve, but not ready: a migration Job may be running right now (see /health/ready).
            tracing::warn!(
                pending = pending.len(),
                "the database has pending migrations; not ready until `portcullis migrate sql --yes` has run"
            );
        }
    }
    Ok(db)
}

async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))
}

fn base_url(configured: &Option<String>, addr: SocketAddr, host: &str) -> String {
    let mut url = configured.clone().unwrap_or_else(|| {
        let h = if host.is_empty() || host == "0.0.0.0" || host == "::" {
            "127.0.0.1".to_owned()
        } else {
            host.to_owned()
        };
        format!("http://{h}:{}/", addr.port())
    });
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

/// Boots every configured listener.
pub async fn start(config: Config, options: Options) -> anyhow::Result<Running> {
    let db = open_db(&config).await?;
    let schemas = Arc::new(schemas(&config)?);
    let hasher = hasher(&config)?;

    let public_listener = if config.serve.public.disabled {
        None
    } else {
        Some(bind(&config.serve.public.host, config.serve.public.port).await?)
    };
    let admin_listener = if config.serve.admin.disabled {
        None
    } else {
        Some(bind(&config.serve.admin.host, config.serve.admin.port).await?)
    };
    let public_addr = public_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let api_trusted = api::TrustedPeers(
        cidrs(
            "serve.api.trusted_proxies",
            &config.serve.api.trusted_proxies,
        )?
        .into(),
    );
    let api_listener = if config.serve.api.disabled {
        None
    } else {
        Some(bind(&config.serve.api.host, config.serve.api.port).await?)
    };
    let api_addr = api_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let admin_addr = admin_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let unbound = SocketAddr::from(([127, 0, 0, 1], config.serve.public.port));
    let public_base = base_url(
        &config.serve.public.base_url,
        public_addr.unwrap_or(unbound),
        &config.serve.public.host,
    );
    let admin_base = base_url(
        &config.serve.admin.base_url,
        admin_addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], config.serve.admin.port))),
        &config.serve.admin.host,
    );

    let cache = session_cache(&config).await?;
    let sessions = SessionManager::new(
        Arc::new(db.clone()),
        Arc::new(db.clone()),
        cache,
        options.clock.clone(),
        session_settings(&config),
        public_base.clone(),
    );
    let (shutdown, rx) = watch::channel(false);
    let secrets = Arc::new(cookie_secrets(&config));
    let cookie = CookieCodec::new(&secrets);
    let tokenizer = Arc::new(tokenizer(&config)?);
    let identities =
        IdentityManager::new(Arc::new(db.clone()), schemas, hasher, options.clock.clone());
    let flow_pool = Arc::new(flows::SqlFlowPool::new(db.clone()));
    let flow_pool_for_sweep = flow_pool.clone();
    let hooks: Arc<hooks::ConfiguredHooks> =
        Arc::new(hooks::ConfiguredHooks::from_config(&config)?);
    let flow_repo = flows::engine::FlowRepo::new(flow_pool.clone(), options.clock.clone());
    let courier = Arc::new(courier::build(&config, &db, options.clock.clone())?);
    courier::spawn_worker(&courier, &config, rx.clone())?;
    let challenges = flows::challenge::Challenges::new(
        flow_repo.clone(),
        Arc::new(flows::codes::SqlCodePool::new(db.clone())),
        Arc::new(flows::outbox::SqlOutbox::new(db.clone())),
        courier.clone(),
        identities.clone(),
        sessions.clone(),
        challenge_settings(&config, &public_base, &secrets),
    );
    let registry = flows::strategy::Registry::build(&flows::strategy::StrategyDeps {
        identities: identities.clone(),
        clock: options.clock.clone(),
        throttle: throttle(&config, options.clock.clone()).await?,
        breaches: breach_checker(&config),
        password: config
            .selfservice
            .methods
            .password
            .enabled
            .then(|| password_policy(&config)),
        profile: config.selfservice.methods.profile.enabled,
        challenges: Some(challenges.clone()),
    });
    let login_flows = flows::login::LoginFlows::new(
        flow_repo.clone(),
        identities.clone(),
        sessions.clone(),
        registry.login,
        login_settings(&config, &public_base),
    )
    .with_hooks(hooks.clone());
    let registration_flows = flows::registration::RegistrationFlows::new(
        flow_repo.clone(),
        identities.clone(),
        sessions.clone(),
        registry.registration,
        registration_settings(&config, &public_base),
    )
    .with_hooks(hooks.clone());
    let metrics = Arc::new(metrics::Metrics::new());
    let (access, extra_rules) = access_engine(
        &config,
        &public_base,
        &sessions,
        &cookie,
        rx.clone(),
        options.clock.clone(),
        metrics.clone(),
    )
    .await?;
    let access = Arc::new(access);
    tokio::spawn(access::watch(
        access.clone(),
        extra_rules,
        std::time::Duration::from_secs(1),
        rx.clone(),
    ));
    let csrf_cookie = flows::security::csrf_cookie_name(
        config
            .serve
            .public
            .base_url
            .as_deref()
            .unwrap_or(&public_base),
    );
    let continuity = flows::continuity::Continuity::new(
        Arc::new(flows::continuity::SqlContinuityPool::new(db.clone())),
        cookie.clone(),
        options.clock.clone(),
    );
    let settings_flows = flows::settings::SettingsFlows::new(
        flow_pool.clone(),
        identities.clone(),
        sessions.clone(),
        registry.settings,
        options.clock.clone(),
        settings_flow_settings(&config, &public_base),
    )
    .with_hooks(hooks.clone())
    .with_continuity(continuity.clone());
    let continuity_for_sweep = continuity;
    let challenges = flows::challenge::ChallengeFlows::new(
        flows::recovery::RecoveryFlows::new(
            registry.recovery,
            challenges.clone(),
            settings_flows.clone(),
        )
        .with_hooks(hooks.clone()),
        flows::verification::VerificationFlows::new(registry.verification, challenges.clone())
            .with_hooks(hooks.clone()),
        challenges,
    );
    let state = AppState {
        readiness: Arc::default(),
        courier,
        errors: flow_pool,
        access: Some(access),
        metrics,
        csrf_cookie,
        cookie_secrets: secrets.clone(),
        identities,
        flow_repo,
        login_flows,
        registration_flows,
        settings_flows,
        challenges,
        logout_flows: flows::logout::LogoutFlows::new(sessions.clone(), secrets),
        hooks,
        sessions,
        cookie,
        tokenizer,
        db: db.clone(),
        config: Arc::new(config),
        public_base: public_base.clone(),
        admin_base: admin_base.clone(),
        clock: options.clock,
    };

    state.metrics.register_services(&state);
    let state_for_running = state.clone();
    // The edge proves itself to our public listener with a secret of this process; another process's listener
    // (public disabled here) never sees it.
    let edge_secret = public_addr.map(|_| client_ip::EdgeSecret::random());
    let serve_config = &state.config.serve;
    let client_ips = |listener: &str, l: &config::Listener, edge: Option<client_ip::EdgeSecret>| {
        client_ip::ClientIpPolicy::new(listener, &l.trusted_proxies, edge).map(Arc::new)
    };
    let public_ips = client_ips("public", &serve_config.public, edge_secret.clone())?;
    let admin_ips = client_ips("admin", &serve_config.admin, None)?;
    let api_ips = client_ips("api", &serve_config.api, None)?;
    let with_client_ip = |router: Router, policy: Arc<client_ip::ClientIpPolicy>| {
        router.layer(axum::middleware::from_fn_with_state(
            policy,
            client_ip::layer,
        ))
    };
    let gateway = if state.config.serve.proxy.disabled {
        None
    } else {
        Some(start_gateway(&state, public_addr, edge_secret.as_ref()).await?)
    };
    let proxy_addr = gateway.as_ref().map(gateway::Gateway::local_addr);
    tokio::spawn(sweep_expired(
        flow_pool_for_sweep,
        continuity_for_sweep,
        state.clock.clone(),
        rx.clone(),
    ));
    let shutdown_timeout = state.config.serve.shutdown_timeout.0;
    let mut tasks = JoinSet::new();
    if let Some(l) = public_listener {
        tasks.spawn(serve(
            l,
            "public",
            with_client_ip(public::router(state.clone()), public_ips),
            limits(&state.config.serve.public),
            rx.clone(),
        ));
        tracing::info!(url = %public_base, "public API listening");
    }
    if let Some(l) = api_listener {
        tasks.spawn(serve(
            l,
            "api",
            with_client_ip(api::router(state.clone(), api_trusted), api_ips),
            limits(&state.config.serve.api),
            rx.clone(),
        ));
        tracing::info!(addr = ?api_addr, "api (decisions, rules) listening");
    }
    if let Some(l) = admin_listener {
        tasks.spawn(serve(
            l,
            "admin",
            with_client_ip(admin::router(state.clone()), admin_ips),
            limits(&state.config.serve.admin),
            rx.clone(),
        ));
        tracing::info!(url = %admin_base, "admin API listening");
    }
    Ok(Running {
        public_addr,
        admin_addr,
        api_addr,
        proxy_addr,
        gateway,
        public_url: public_base,
        admin_url: admin_base,
        db,
        state: state_for_running,
        shutdown,
        shutdown_timeout,
        tasks,
    })
}

/// Deletes flows that expired a day ago, errors older than a day and expired continuity containers, every ten
/// minutes, until shutdown.
async fn sweep_expired(
    pool: Arc<flows::SqlFlowPool>,
    continuity: flows::continuity::Continuity,
    clock: SharedClock,
    mut stop: watch::Receiver<bool>,
) {
    use flows::{ErrorPool, FlowPool};
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let cutoff = clock.now() - time::Duration::days(1);
        match pool.delete_expired_flows(cutoff).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "deleted expired self-service flows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not delete expired self-service flows"),
        }
        if let Err(e) = pool.delete_old_errors(cutoff).await {
            tracing::warn!(error = %e, "could not delete old self-service errors");
        }
        if let Err(e) = continuity.delete_expired().await {
            tracing::warn!(error = %e, "could not delete expired continuity containers");
        }
    }
}

fn limits(listener: &config::Listener) -> listener::Limits {
    listener::Limits {
        read: listener.timeout.read.0,
        write: listener.timeout.write.0,
        idle: listener.timeout.idle.0,
        max_connections: listener.max_connections,
    }
}

async fn serve(
    listener: TcpListener,
    name: &'static str,
    router: Router,
    limits: listener::Limits,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let router = router
        .layer(axum::middleware::from_fn(listener::no_store))
        .layer(axum::middleware::from_fn_with_state(name, request_log::log));
    // Every route answers with and without a trailing slash, as in Kratos. Handlers that judge the
    // path itself (the decisions API) read the target as received from `OriginalUri`.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router);
    let app = tower::util::MapRequestLayer::new(|mut req: axum::extract::Request| {
        let uri = req.uri().clone();
        req.extensions_mut().insert(axum::extract::OriginalUri(uri));
        req
    })
    .layer(app);
    listener::serve(
        listener,
        name,
        Router::new().fallback_service(app),
        limits,
        stop,
    )
    .await
}
