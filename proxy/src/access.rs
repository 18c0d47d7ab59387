//! Access decisions: the compiled rule set with each rule's pipeline, hot-reloaded from its repositories, and the
//! one function both the edge proxy and the decisions API call.

use crate::config::Config;
use crate::metrics::{Metrics, RuleSeries};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use rules::pipeline::errors::{handle, ErrorHandler, ErrorResponse};
use rules::pipeline::{
    HttpClient, InboundResponse, OutboundRequest, Pipeline, PipelineConfig, PipelineError,
    RequestInfo, Services, SessionLookup, SessionView,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What a rule-set version keeps per rule, so that a request only looks things up.
#[derive(Debug)]
pub struct RulePipeline {
    /// The rule id with its request counters.
    pub series: Arc<RuleSeries>,
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The client headers to strip when it allows a request.
    pub strip: Arc<rules::StripSet>,
    /// The rule's upstream, parsed once (`None`: the rule names none, `proxy.upstream` applies).
    pub upstream: Option<Arc<RuleUpstream>>,
}

/// A rule's `upstream`, parsed when the rule set is compiled instead of on every request.
#[derive(Debug)]
pub struct RuleUpstream {
    /// The URL (`None`: not a URL; such a rule answers 500, as `rules validate` does not check it).
    pub url: Option<Arc<url::Url>>,
    /// Send the client's `Host`.
    pub preserve_host: bool,
    /// Removed from the front of the path (`None` when empty).
    pub strip_path: Option<String>,
}

impl RuleUpstream {
    fn parse(u: &rules::Upstream) -> Option<Arc<Self>> {
        (!u.url.is_empty()).then(|| {
            Arc::new(Self {
                url: url::Url::parse(&u.url).ok().map(Arc::new),
                preserve_host: u.preserve_host,
                strip_path: Some(u.strip_path.clone()).filter(|s| !s.is_empty()),
            })
        })
    }
}

/// One compiled rule-set version.
pub struct Compiled {
    /// The matcher.
    pub rules: rules::RuleSet,
    /// Pipelines by rule id (with the id shared, for metric labels), each with the client headers to strip when
    /// it allows a request: [`Compiled::strip`], or (when the rule sets a standard field such as `Authorization`)
    /// that plus the field.
    pub pipelines: HashMap<String, RulePipeline>,
    /// Identity headers no client may send on any rule: every name any rule or preset sets, in every spelling.
    pub strip: Arc<rules::StripSet>,
    /// `errors.fallback`.
    pub fallback: Vec<ErrorHandler>,
    /// The rules as loaded (for `GET /rules`).
    pub source: Vec<rules::Rule>,
    /// The public keys of every `id_token` mutator (`/.well-known/jwks.json`).
    pub jwks: serde_json::Value,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Verdict {
    /// Let it through to `upstream` with these header changes.
    Allow {
        /// The rule's upstream (`None`: `proxy.upstream`).
        upstream: Option<Arc<RuleUpstream>>,
        /// Client headers to drop first: any name in this set, in any spelling.
        strip: Arc<rules::StripSet>,
        /// Headers for the upstream (or the decisions response).
        set: Vec<(String, String)>,
        /// The matched rule.
        rule: Arc<RuleSeries>,
    },
    /// Answer the client.
    Deny {
        /// The error handler's response.
        response: ErrorResponse,
        /// The matched rule, if any.
        rule: Option<Arc<RuleSeries>>,
    },
}

/// The access engine.
pub struct Access {
    current: ArcSwap<Compiled>,
    config: PipelineConfig,
    services: Services,
    strategy: rules::Strategy,
    repositories: Vec<String>,
    /// Successful and failed reloads.
    pub reloads: std::sync::atomic::AtomicU64,
    /// Failed reloads.
    pub reload_failures: std::sync::atomic::AtomicU64,
    /// Per-rule counters and the pipeline latency.
    metrics: Arc<Metrics>,
    /// `proxy.upstream`, or the `--dev` demo upstream.
    pub default_upstream: Option<Arc<url::Url>>,
    /// Wakes [`watch`] to reload at once (SIGHUP).
    reload_now: tokio::sync::Notify,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("repositories", &self.repositories)
            .finish_non_exhaustive()
    }
}

/// The pipeline config from `authenticators`, `authorizers`, `mutators` and `errors`.
pub fn pipeline_config(config: &Config, public_base: &str) -> PipelineConfig {
    let mut errors = config.errors.handlers.to_map();
    // The redirect handler goes to our login page unless told otherwise.
    if let Some(r) = errors.get_mut("redirect") {
        let default_to = serde_json::json!({
            "to": format!("{public_base}self-service/login/browser"),
            "return_to_query_param": "return_to",
        });
        r.config = Some(match &r.config {
            Some(c) => rules::pipeline::merge(&default_to, c),
            None => default_to,
        });
    }
    PipelineConfig {
        authenticators: config.authenticators.to_map(),
        authorizers: config.authorizers.to_map(),
        mutators: config.mutators.to_map(),
        error_handlers: errors,
        error_fallback: config.errors.fallback.clone(),
    }
}

impl Access {
    /// Loads every repository and compiles; any error fails start-up.
    pub fn load(
        config: &Config,
        public_base: &str,
        services: Services,
        extra_rules: Vec<rules::Rule>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let strategy = match config.access_rules.matching_strategy.as_str() {
            "regexp" | "" => rules::Strategy::Regexp,
            "glob" => rules::Strategy::Glob,
            other => anyhow::bail!(
                "access_rules.matching_strategy must be regexp or glob, not {other:?}"
            ),
        };
        let pipeline = pipeline_config(config, public_base);
        let repositories = config.access_rules.repositories.clone();
        let compiled = compile(
            &repositories,
            extra_rules.clone(),
            strategy,
            &pipeline,
            &services,
            &metrics,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            current: ArcSwap::from_pointee(compiled),
            config: pipeline,
            services,
            strategy,
            repositories,
            reloads: Default::default(),
            reload_failures: Default::default(),
            metrics,
            default_upstream: None,
            reload_now: tokio::sync::Notify::new(),
        })
    }

    /// Asks the watcher to reload the rule files now, changed or not (what SIGHUP does).
    pub fn request_reload(&self) {
        self.reload_now.notify_one();
    }

    /// The current rule set.
    pub fn current(&self) -> Arc<Compiled> {
        self.current.load_full()
    }

    /// Reloads the repositories; on any error the old rule set stays and the error is returned.
    pub fn reload(&self, extra_rules: Vec<rules::Rule>) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        match compile(
            &self.repositories,
            extra_rules,
            self.strategy,
            &self.config,
            &self.services,
            &self.metrics,
        ) {
            Ok(c) => {
                self.current.store(Arc::new(c));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The repository files to watch.
    pub fn watched_files(&self) -> Vec<std::path::PathBuf> {
        self.repositories
            .iter()
            .filter_map(|r| r.strip_prefix("file://"))
            .map(std::path::PathBuf::from)
            .collect()
    }

    /// Matches the request and runs the rule's pipeline.
    pub async fn evaluate(&self, req: &RequestInfo) -> Verdict {
        let started = std::time::Instant::now();
        let verdict = self.decide(req).await;
        crate::metrics::observe(&self.metrics.pipeline_latency, started.elapsed());
        verdict
    }

    async fn decide(&self, req: &RequestInfo) -> Verdict {
        let compiled = self.current.load_full();
        let matched = compiled
            .rules
            .find(&req.method, &req.scheme, &req.host, &req.path);
        let (rule, captures) = match matched {
            Ok(m) => (m.rule, m.captures),
            Err(rules::MatchError::NoMatch) => {
                let err = PipelineError::new(
                    rules::pipeline::ErrorKind::NotFound,
                    "Requested url does not match any rules",
                );
                return Verdict::Deny {
                    response: handle(&err, req, &[], &compiled.fallback),
                    rule: None,
                };
            }
            Err(
                e @ (rules::MatchError::InvalidPath(_)
                | rules::MatchError::InvalidScheme
                | rules::MatchError::InvalidHost),
            ) => {
                let err = PipelineError::new(rules::pipeline::ErrorKind::BadRequest, e.to_string());
                return Verdict::Deny {
                    response: handle(&err, req, &[], &compiled.fallback),
                    rule: None,
                };
            }
            Err(rules::MatchError::Multiple(ids)) => {
                let err = PipelineError::internal(format!(
                    "Expected exactly one rule but found multiple rules: {}",
                    ids.join(", ")
                ));
                return Verdict::Deny {
                    response: handle(&err, req, &[], &compiled.fallback),
                    rule: None,
                };
            }
        };
        let Some(entry) = compiled.pipelines.get(rule.id()) else {
            let err = PipelineError::internal("the matched rule has no pipeline");
            return Verdict::Deny {
                response: handle(&err, req, &[], &compiled.fallback),
                rule: None,
            };
        };
        match entry.pipeline.run(req, captures).await {
            Ok(granted) => Verdict::Allow {
                upstream: entry.upstream.clone(),
                strip: entry.strip.clone(),
                set: granted.session.header,
                rule: entry.series.clone(),
            },
            Err(err) => {
                tracing::debug!(rule = %entry.series.id(), kind = err.kind.name(), reason = %err.reason, "request denied");
                Verdict::Deny {
                    response: handle(&err, req, &entry.pipeline.errors, &compiled.fallback),
                    rule: Some(entry.series.clone()),
                }
            }
        }
    }
}

/// Checks rule repositories offline (`portcullis rules validate`): parses them and builds every matcher, template and
/// handler against `config`'s handler settings, exactly as `serve` would. Returns the rules on success.
pub fn validate(config: &Config, repositories: &[String]) -> Result<Vec<rules::Rule>, String> {
    let strategy = match config.access_rules.matching_strategy.as_str() {
        "regexp" | "" => rules::Strategy::Regexp,
        "glob" => rules::Strategy::Glob,
        other => {
            return Err(format!(
                "access_rules.matching_strategy must be regexp or glob, not {other:?}"
            ))
        }
    };
    let public_base = config
        .serve
        .public
        .base_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:4433/".into());
    let services = Services {
        http: Arc::new(ReqwestClient::new(Duration::from_secs(5))),
        sessions: Some(Arc::new(Offline)),
        clock: Arc::new(identity::SystemClock),
    };
    let pipeline = pipeline_config(config, &public_base);
    let metrics = Metrics::new();
    let rules = compile(
        repositories,
        Vec::new(),
        strategy,
        &pipeline,
        &services,
        &metrics,
    )?
    .source;
    // A disabled handler compiles (Oathkeeper answers 500 at request time), but it is surely a mistake.
    for r in &rules {
        let used = r
            .authenticators
            .iter()
            .map(|h| ("authenticator", &pipeline.authenticators, h))
            .chain(std::iter::once((
                "authorizer",
                &pipeline.authorizers,
                &r.authorizer,
            )))
            .chain(
                r.mutators
                    .iter()
                    .map(|h| ("mutator", &pipeline.mutators, h)),
            )
            .chain(
                r.errors
                    .iter()
                    .map(|h| ("error handler", &pipeline.error_handlers, h)),
            );
        for (kind, settings, h) in used {
            if settings.get(&h.handler).is_some_and(|s| !s.enabled) {
                return Err(format!(
                    "rule {:?}: {kind} {:?} is disabled in the configuration; requests would get 500",
                    r.id, h.handler
                ));
            }
        }
    }
    Ok(rules)
}

/// Sessions for offline validation: nothing is ever looked up.
struct Offline;

#[async_trait]
impl SessionLookup for Offline {
    fn cookie_name(&self) -> &str {
        "ory_kratos_session"
    }

    fn open_cookie(&self, _value: &str) -> Option<String> {
        None
    }

    async fn lookup(&self, _token: &str) -> Result<Option<SessionView>, String> {
        Ok(None)
    }
}

fn compile(
    repositories: &[String],
    extra: Vec<rules::Rule>,
    strategy: rules::Strategy,
    config: &PipelineConfig,
    services: &Services,
    metrics: &Metrics,
) -> Result<Compiled, String> {
    let mut all = extra;
    for repo in repositories {
        all.extend(rules::load_repository(repo).map_err(|e| e.to_string())?);
    }
    let mut built = Vec::with_capacity(all.len());
    for r in &all {
        built.push((
            r.id.clone(),
            Arc::new(Pipeline::build(r, config, services)?),
            RuleUpstream::parse(&r.upstream),
        ));
    }
    let strip = Arc::new(rules::StripSet::build(
        built
            .iter()
            .flat_map(|(_, p, _)| p.stripped_headers())
            .map(String::as_str),
    ));
    let mut pipelines = HashMap::with_capacity(built.len());
    for (id, pipeline, upstream) in built {
        let own = strip
            .with_rule(pipeline.stripped_headers().iter().map(String::as_str))
            .map_or_else(|| strip.clone(), Arc::new);
        let entry = RulePipeline {
            series: metrics.rule(&id),
            pipeline,
            strip: own,
            upstream,
        };
        pipelines.insert(id, entry);
    }
    let fallback = config
        .error_fallback
        .iter()
        .map(|name| ErrorHandler::build(name, None, config))
        .collect::<Result<Vec<_>, _>>()?;
    let jwks = rules::pipeline::jwt::id_token_public_keys(
        config,
        all.iter()
            .flat_map(|r| r.mutators.iter())
            .filter(|m| m.handler == "id_token")
            .map(|m| m.config.as_ref()),
    )?;
    let source = all.clone();
    let rules = rules::RuleSet::compile(all, strategy).map_err(|e| e.to_string())?;
    Ok(Compiled {
        rules,
        pipelines,
        strip,
        fallback,
        source,
        jwks,
    })
}

/// Polls the repository files every `every` and reloads when one changes. A bad file keeps the old rule set (and
/// says why in the log); a later good version is picked up.
pub async fn watch(
    access: Arc<Access>,
    extra: Vec<rules::Rule>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let files = access.watched_files();
    let prints = |files: &[std::path::PathBuf]| -> Vec<Option<rules::Fingerprint>> {
        files.iter().map(|f| rules::fingerprint(f)).collect()
    };
    let mut last = prints(&files);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick(), if !files.is_empty() => false,
            _ = access.reload_now.notified() => true,
            _ = stop.wait_for(|s| *s) => return,
        };
        let files2 = files.clone();
        let now = match tokio::task::spawn_blocking(move || {
            files2
                .iter()
                .map(|f| rules::fingerprint(f))
                .collect::<Vec<_>>()
        })
        .await
        {
            Ok(n) => n,
            Err(_) => continue,
        };
        if now == last && !forced {
            continue;
        }
        last = now;
        match access.reload(extra.clone()) {
            Ok(()) => tracing::info!("access rules reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "access rules not reloaded; keeping the previous rule set")
            }
        }
    }
}

/// Outgoing HTTP for remote session checks and authorizers.
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    http: reqwest::Client,
}

impl ReqwestClient {
    /// A client with a total timeout per call.
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, String> {
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut b = self.http.request(method, &req.url);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(body) = req.body {
            b = b.body(body);
        }
        let res = b.send().await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = res.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(InboundResponse {
            status,
            headers,
            body,
        })
    }
}

/// Our sessions for `cookie_session` and `bearer_token`: the session cache.
pub struct CacheSessions {
    /// Session manager.
    pub sessions: identity::session::manager::SessionManager,
    /// Cookie codec.
    pub cookie: identity::session::cookie::CookieCodec,
    /// Cookie name.
    pub cookie_name: String,
}

#[async_trait]
impl SessionLookup for CacheSessions {
    fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    fn open_cookie(&self, value: &str) -> Option<String> {
        self.cookie.open(value)
    }

    async fn lookup(&self, token: &str) -> Result<Option<SessionView>, String> {
        let Some(snapshot) = self
            .sessions
            .authenticate(token)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let extra = snapshot.body_json().map_err(|e| e.to_string())?;
        Ok(Some(SessionView {
            subject: snapshot.identity_id.to_string(),
            extra,
            email_verified: snapshot.is_email_verified(),
        }))
    }
}
