//! The `portcullis` command line.

use crate::config::{Config, Sources};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Portcullis: login, sessions and an authenticating reverse proxy for apps that have none.
/// Wire-compatible with the Ory Kratos API.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (public and admin APIs).
    Serve(ServeArgs),
    /// Database migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage identities through the admin API.
    Identities(IdentitiesArgs),
    /// Password hasher tools.
    #[command(subcommand)]
    Hashers(HashersCommand),
    /// Session tools that work on the database directly.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Access rule tools.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// The e-mail courier.
    #[command(subcommand)]
    Courier(CourierCommand),
}

/// `courier …`.
#[derive(Debug, Subcommand)]
pub enum CourierCommand {
    /// Deliver queued e-mails until SIGTERM, without serving HTTP (`serve` runs the same worker when
    /// `courier.smtp.connection_uri` is set; several workers may share one database).
    Watch {
        /// Configuration (DSN and `courier.*`).
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// `rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Check rule files offline: syntax, unique ids, patterns, templates and handler configs (merged with the
    /// global handler config, as `serve` would). Exits non-zero with the reason when a file is invalid.
    Validate {
        /// Rule files (JSON or YAML) or repository URLs (`file://…`, `inline://…`).
        #[arg(required = true)]
        files: Vec<String>,
        /// Configuration (handler settings and the matching strategy).
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// `sessions …`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Issue a session for an identity (support and testing: acts as that user until it expires or is revoked).
    /// Prints `{"session_id", "session_token"}`.
    Issue {
        /// Identity id.
        identity_id: String,
        /// The authentication method to record.
        #[arg(long, default_value = "password")]
        method: String,
        /// Configuration (for the DSN and session lifespan).
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Where configuration comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// YAML or JSON config file; repeat to merge several (later ones win).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Override one key: `--set serve.admin.port=4434` (applied after files and environment).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Development mode: SQLite in ./portcullis.db, cookies without Secure, generated secrets.
    #[arg(long)]
    pub dev: bool,
}

impl ConfigArgs {
    /// Loads the configuration these flags name.
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&Sources {
            files: self.config.clone(),
            overrides: self.set.clone(),
            dev: self.dev,
            use_env: true,
        })?)
    }
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `migrate …`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply SQL migrations. The DSN comes from the argument, or else from config and the DSN variable.
    Sql {
        /// Database to migrate (`postgres://…`, `sqlite://…`).
        dsn: Option<String>,
        /// Apply without asking.
        #[arg(short, long)]
        yes: bool,
        /// Read the DSN from the DSN environment variable (Kratos compatibility; the default anyway).
        #[arg(short = 'e', long = "read-from-env")]
        read_from_env: bool,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// `config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate config files; exits non-zero with the reason when they are invalid.
    Check {
        /// Files to check (merged, as `serve --config` would, with the environment on top).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check as `serve --dev` would load them (a local SQLite database when no DSN is set).
        #[arg(long)]
        dev: bool,
    },
    /// Print every key with its default value as YAML.
    Defaults,
}

/// `identities …`.
#[derive(Debug, Args)]
pub struct IdentitiesArgs {
    /// Admin API base URL (default: from config, else http://127.0.0.1:4434).
    #[arg(short, long, global = true, env = "PORTCULLIS_ADMIN_URL")]
    pub endpoint: Option<String>,
    /// Configuration (to find the admin URL).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: IdentitiesCommand,
}

/// Identity subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Import identities from JSON files (one createIdentityBody or an array of them per file).
    Import {
        /// Files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List identities (all pages).
    List {
        /// Page size.
        #[arg(long, default_value_t = 250)]
        page_size: u32,
    },
    /// Show one identity.
    Get {
        /// Identity id.
        id: String,
        /// Include credential config of these types.
        #[arg(long)]
        include_credential: Vec<String>,
    },
    /// Delete identities.
    Delete {
        /// Identity ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `hashers …`.
#[derive(Debug, Subcommand)]
pub enum HashersCommand {
    /// Argon2 tools.
    #[command(subcommand)]
    Argon2(Argon2Command),
}

/// `hashers argon2 …`.
#[derive(Debug, Subcommand)]
pub enum Argon2Command {
    /// Find argon2id parameters that take about the target duration on this machine.
    Calibrate {
        /// Target time per hash, e.g. 500ms.
        #[arg(default_value = "500ms")]
        target: String,
        /// Lanes (default: twice the CPU count).
        #[arg(long)]
        parallelism: Option<u32>,
        /// Largest memory to try, e.g. 1GB.
        #[arg(long, default_value = "1GB")]
        max_memory: String,
    },
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(MigrateCommand::Sql {
            dsn, yes, config, ..
        }) => migrate(dsn, yes, config).await,
        Command::Config(ConfigCommand::Check { files, dev }) => config_check(files, dev),
        Command::Config(ConfigCommand::Defaults) => config_defaults(),
        Command::Identities(args) => identities(args).await,
        Command::Hashers(HashersCommand::Argon2(Argon2Command::Calibrate {
            target,
            parallelism,
            max_memory,
        })) => calibrate(&target, parallelism, &max_memory).await,
        Command::Sessions(SessionsCommand::Issue {
            identity_id,
            method,
            config,
        }) => issue_session(&identity_id, &method, config).await,
        Command::Rules(RulesCommand::Validate { files, config }) => rules_validate(files, config),
        Command::Courier(CourierCommand::Watch { config }) => courier_watch(config).await,
    }
}

async fn courier_watch(config: ConfigArgs) -> anyhow::Result<()> {
    let config = config.load()?;
    init_logging(&config)?;
    if crate::courier::smtp_settings(&config).is_none() {
        anyhow::bail!("courier.smtp.connection_uri is required to deliver e-mails");
    }
    let db = crate::open_db(&config).await?;
    let clock: identity::SharedClock = std::sync::Arc::new(identity::SystemClock);
    let courier = crate::courier::build(&config, &db, clock)?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = crate::courier::spawn_worker(&courier, &config, rx)?;
    shutdown_signal().await;
    tracing::info!("courier stopping");
    let _ = stop.send(true);
    if let Some(w) = worker {
        let _ = w.await;
    }
    db.close().await;
    Ok(())
}

fn rules_validate(files: Vec<String>, mut config: ConfigArgs) -> anyhow::Result<()> {
    // Validation opens no database: any DSN will do.
    config.set.push("dsn=memory".into());
    let config = config.load()?;
    let repositories: Vec<String> = files
        .iter()
        .map(|f| {
            if f.contains("://") {
                f.clone()
            } else {
                format!("file://{f}")
            }
        })
        .collect();
    let rules = crate::access::validate(&config, &repositories).map_err(anyhow::Error::msg)?;
    println!(
        "{} rule(s) in {} file(s): ok",
        rules.len(),
        repositories.len()
    );
    for r in rules {
        println!("  {}\t{}", r.id, r.r#match.url);
    }
    Ok(())
}

/// Sets up logging (JSON in production, readable text in `--dev`) and, with `tracing.provider: otel`, span
/// export (see [`crate::telemetry`]).
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    // Pingora's proxy logs every client that hangs up early at ERROR; the gateway's own per-request
    // log already reports failures (warn) and abandoned requests (debug). Name `pingora_proxy` in
    // `log.level` (or RUST_LOG) to see its lines again.
    let level = if config.log.level.contains("pingora") {
        config.log.level.clone()
    } else {
        format!("{},pingora_proxy=off", config.log.level)
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pingora_proxy=off"));
    // Pingora prints whole request and response heads (session cookies, tokens) at debug level, so its
    // targets stay at info or quieter whatever `log.level` or RUST_LOG ask for.
    // The hint keeps the combined filter's hint that of `filter` (a filter without one makes the whole
    // subscriber's `None`, that is TRACE, and every disabled event and `log` record is then asked about).
    let filter = filter.and(
        tracing_subscriber::filter::filter_fn(|meta| {
            !meta.target().starts_with("pingora") || *meta.level() <= tracing::Level::INFO
        })
        .with_max_level_hint(tracing::level_filters::LevelFilter::TRACE),
    );
    let json = match config.log.format.as_deref() {
        Some("json") => true,
        Some(_) => false,
        None => !config.dev,
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    // Spans are exported whatever the log level; the request spans are only made while export is on.
    // Only the request spans (target `portcullis::span`) are exported, not other crates' spans or log events.
    let otel = crate::telemetry::layer(&config.tracing)?.map(|layer| {
        layer.with_filter(
            tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target() == "portcullis::span"
            })
            .with_max_level_hint(tracing::level_filters::LevelFilter::INFO),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    // `try_init` lets every `log` record through to the subscriber (Pingora logs with `log`, several records per
    // request at debug and trace): let through only the levels the subscriber can enable.
    log::set_max_level(log_level(tracing::level_filters::LevelFilter::current()));
    Ok(())
}

/// The `log` crate's filter for a `tracing` one.
fn log_level(level: tracing::level_filters::LevelFilter) -> log::LevelFilter {
    use tracing::level_filters::LevelFilter as L;
    match level {
        L::OFF => log::LevelFilter::Off,
        L::ERROR => log::LevelFilter::Error,
        L::WARN => log::LevelFilter::Warn,
        L::INFO => log::LevelFilter::Info,
        L::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.config.load()?;
    init_logging(&config)?;
    for key in config.ignored_kratos_keys() {
        tracing::warn!(
            key,
            "this Kratos config key is accepted but has no effect in Portcullis"
        );
    }
    for method in config.unimplemented_methods() {
        tracing::warn!(method, "{}", Config::unimplemented_method_warning(method));
    }
    if config.dev {
        tracing::warn!("running in --dev mode: do not use this in production");
        if config.sign_in_after_registration_by_default() {
            tracing::info!("--dev: signing users in after registration (the `session` hook)");
        }
    }
    let mut running = crate::start(config, crate::Options::default()).await?;
    #[cfg(unix)]
    if let Some(access) = running.state.access.clone() {
        // SIGHUP reloads the access rules at once (the files are also watched).
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the access rules");
                    access.request_reload();
                }
            });
        }
    }
    let trigger = running.shutdown_trigger();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = trigger.send(true);
    });
    running.wait().await?;
    running.shutdown().await;
    // The spans of the last requests are still queued for export.
    let _ = tokio::task::spawn_blocking(crate::telemetry::shutdown).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn migrate(dsn: Option<String>, yes: bool, config: ConfigArgs) -> anyhow::Result<()> {
    let dsn = match dsn {
        Some(d) => d,
        None => config.load()?.dsn().to_owned(),
    };
    let db = identity::Db::connect(&dsn)
        .await
        .context("cannot connect to the database")?;
    let pending = db.pending_migrations().await?;
    if pending.is_empty() {
        println!("The database is up to date.");
        return Ok(());
    }
    println!("Pending migrations: {pending:?}");
    if !yes {
        anyhow::bail!("not applied: re-run with --yes to apply them");
    }
    db.migrate().await?;
    println!("Applied {} migration(s).", pending.len());
    db.close().await;
    Ok(())
}

fn config_check(files: Vec<PathBuf>, dev: bool) -> anyhow::Result<()> {
    for line in check_config(files, dev)? {
        println!("{line}");
    }
    Ok(())
}

/// `portcullis config check`: loads the files as `serve` would and returns the report, one line each: a warning per
/// enabled method that is not implemented, then `<file>: ok` per file. Errors name the offending key or file.
pub fn check_config(files: Vec<PathBuf>, dev: bool) -> anyhow::Result<Vec<String>> {
    let config = Config::load(&Sources {
        files: files.clone(),
        overrides: Vec::new(),
        dev,
        use_env: true,
    })?;
    crate::schemas(&config)?;
    crate::hasher(&config)?;
    let mut report: Vec<String> = config
        .unimplemented_methods()
        .into_iter()
        .map(|m| format!("warning: {}", Config::unimplemented_method_warning(m)))
        .collect();
    report.extend(files.iter().map(|f| format!("{}: ok", f.display())));
    Ok(report)
}

fn config_defaults() -> anyhow::Result<()> {
    print!("{}", serde_yaml::to_string(&Config::default())?);
    Ok(())
}

async fn identities(args: IdentitiesArgs) -> anyhow::Result<()> {
    let endpoint = match args.endpoint {
        Some(e) => e,
        None => {
            let c = if args.config.config.is_empty() {
                None
            } else {
                Some(args.config.load()?)
            };
            match c.and_then(|c| c.serve.admin.base_url) {
                Some(u) => u,
                None => "http://127.0.0.1:4434".into(),
            }
        }
    };
    let base = format!("{}/admin/identities", endpoint.trim_end_matches('/'));
    let http = reqwest::Client::new();
    match args.command {
        IdentitiesCommand::Import { files } => {
            let mut failed = 0;
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                let value: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not valid JSON", f.display()))?;
                let bodies = match value {
                    Value::Array(list) => list,
                    other => vec![other],
                };
                for body in bodies {
                    let res = http.post(&base).json(&body).send().await?;
                    let status = res.status();
                    let answer: Value = res.json().await.unwrap_or(Value::Null);
                    if status.is_success() {
                        println!(
                            "{}\t{}",
                            answer["id"].as_str().unwrap_or_default(),
                            f.display()
                        );
                    } else {
                        failed += 1;
                        eprintln!("{}: {status}: {}", f.display(), answer["error"]);
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} identities could not be imported");
            }
        }
        IdentitiesCommand::List { page_size } => {
            let mut token: Option<String> = None;
            loop {
                let mut req = http
                    .get(&base)
                    .query(&[("page_size", page_size.to_string())]);
                if let Some(t) = &token {
                    req = req.query(&[("page_token", t)]);
                }
                let res = checked(req.send().await?).await?;
                let next = res
                    .headers()
                    .get(reqwest::header::LINK)
                    .and_then(|v| v.to_str().ok())
                    .and_then(next_page_token);
                let list: Vec<Value> = res.json().await?;
                for i in &list {
                    println!(
                        "{}\t{}\t{}",
                        i["id"].as_str().unwrap_or_default(),
                        i["state"].as_str().unwrap_or_default(),
                        i["traits"]
                    );
                }
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        IdentitiesCommand::Get {
            id,
            include_credential,
        } => {
            let query: Vec<(&str, &str)> = include_credential
                .iter()
                .map(|t| ("include_credential", t.as_str()))
                .collect();
            let res = checked(
                http.get(format!("{base}/{id}"))
                    .query(&query)
                    .send()
                    .await?,
            )
            .await?;
            let v: Value = res.json().await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        IdentitiesCommand::Delete { ids } => {
            for id in ids {
                checked(http.delete(format!("{base}/{id}")).send().await?).await?;
                println!("{id}");
            }
        }
    }
    Ok(())
}

async fn checked(res: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if res.status().is_success() {
        return Ok(res);
    }
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    anyhow::bail!("{status}: {}", body["error"])
}

/// The `page_token` of the `rel="next"` link of a `Link` header.
pub fn next_page_token(link: &str) -> Option<String> {
    link.split(',')
        .find(|l| l.contains("rel=\"next\""))
        .and_then(|l| {
            let url = l
                .split(';')
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let parsed = url::Url::parse(url).ok()?;
            parsed
                .query_pairs()
                .find(|(k, _)| k == "page_token")
                .map(|(_, v)| v.into_owned())
        })
}

async fn calibrate(target: &str, parallelism: Option<u32>, max_memory: &str) -> anyhow::Result<()> {
    let target = crate::config::parse_duration(target).map_err(anyhow::Error::msg)?;
    let max_kib = identity::hash::parse_byte_size(max_memory)? / 1024;
    let parallelism = parallelism.unwrap_or(identity::hash::Argon2Params::default().parallelism);
    let max_kib = u32::try_from(max_kib).unwrap_or(u32::MAX);
    println!("Calibrating argon2id for {target:?} per hash with {parallelism} lanes …");
    let params = tokio::task::spawn_blocking(move || {
        identity::hash::calibrate(target, parallelism, 32, 16, max_kib)
    })
    .await?;
    let started = std::time::Instant::now();
    let config = identity::hash::HasherConfig {
        algorithm: identity::hash::Algorithm::Argon2,
        argon2: params,
        bcrypt: identity::hash::BcryptParams::default(),
    };
    let hash =
        tokio::task::spawn_blocking(move || identity::hash::hash_blocking(b"calibration", &config))
            .await??;
    let hash_time = started.elapsed();
    let started = std::time::Instant::now();
    identity::hash::verify_blocking(b"calibration", &hash)?;
    let verify_time = started.elapsed();
    println!(
        "hashers:\n  algorithm: argon2\n  argon2:\n    memory: {}KB\n    iterations: {}\n    parallelism: {}\n    salt_length: {}\n    key_length: {}\n# one hash took {hash_time:?}, one verify took {verify_time:?}",
        params.memory_kib, params.iterations, params.parallelism, params.salt_length, params.key_length
    );
    Ok(())
}

async fn issue_session(identity_id: &str, method: &str, config: ConfigArgs) -> anyhow::Result<()> {
    use identity::session::manager::{DeviceInfo, SessionManager};
    use identity::session::{Aal, AuthenticationMethod};
    use identity::IdentityPool;
    use std::sync::Arc;

    let config = config.load()?;
    let id = uuid::Uuid::parse_str(identity_id).context("the identity id must be a UUID")?;
    let kind: identity::CredentialType = method
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown method {method:?}"))?;
    let db = crate::open_db(&config).await?;
    let identity = db
        .get_identity(id, false)
        .await
        .context("cannot load the identity")?;
    let clock: identity::SharedClock = Arc::new(identity::SystemClock);
    let manager = SessionManager::new(
        Arc::new(db.clone()),
        Arc::new(db.clone()),
        identity::cache::SessionCache::local_only(identity::cache::CacheConfig::default()),
        clock.clone(),
        crate::session_settings(&config),
        String::new(),
    );
    let issued = manager
        .issue(
            &identity,
            vec![AuthenticationMethod {
                method: kind.as_str().to_owned(),
                aal: Aal::Aal1,
                completed_at: clock.now(),
                provider: None,
                organization: None,
            }],
            DeviceInfo {
                user_agent: Some("portcullis-cli".into()),
                ..Default::default()
            },
        )
        .await?;
    println!(
        "{}",
        serde_json::json!({"session_id": issued.session.id, "session_token": issued.token})
    );
    db.close().await;
    Ok(())
}
