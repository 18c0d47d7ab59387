//! The access pipeline of a rule, as in Oathkeeper: authenticators (first responsible one wins), one authorizer,
//! mutators (all must succeed) and error handlers chosen by `when` conditions.
//!
//! Handlers are built once per rule (global `<kind>.<handler>.config` merged under the rule's `config`), so a
//! request only runs prepared code. Anything that needs the network (remote session checks, `remote_json`) goes
//! through the [`HttpClient`] trait and anything that reads our sessions through [`SessionLookup`]; the proxy crate
//! supplies both, which keeps this crate free of HTTP servers and clients.

pub mod authn;
pub mod authz;
pub mod errors;
pub mod jwt;
pub mod mutate;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The request, as handlers see it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// `GET`, `POST`, …
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host (with port when not the default).
    pub host: String,
    /// The normalised path.
    pub path: String,
    /// The raw query, without `?`.
    pub query: Option<String>,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The address from `X-Forwarded-For` (first hop), when the peer may set it.
    pub forwarded_for: Option<IpAddr>,
}

impl RequestInfo {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every cookie of the request as `(name, value)`.
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
    }

    /// The value of one cookie.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `scheme://host/path?query`.
    pub fn url(&self) -> String {
        match &self.query {
            Some(q) if !q.is_empty() => format!("{}://{}{}?{q}", self.scheme, self.host, self.path),
            _ => format!("{}://{}{}", self.scheme, self.host, self.path),
        }
    }
}

/// What authentication established (Oathkeeper's `AuthenticationSession`).
#[derive(Debug, Clone, Default)]
pub struct AuthSession {
    /// Who.
    pub subject: String,
    /// Everything else known about them (for Kratos sessions: the session JSON, shared with the cache).
    pub extra: Arc<Value>,
    /// Headers the mutators set for the upstream, in order.
    pub header: Vec<(String, String)>,
    /// The `<...>` capture groups of the matched rule.
    pub captures: Vec<String>,
    /// Whether the subject's e-mail address is verified, as the authenticator established it (our sessions and
    /// remote whoami: `identity.traits.email` is a verified address; `jwt`: the `email_verified` claim is true).
    /// Templates read it as `.EmailVerified`; false unless an authenticator set it.
    pub email_verified: bool,
}

/// Kinds of pipeline failure, as `when.error` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 (a request no rule can be matched against).
    BadRequest,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404 (no rule).
    NotFound,
    /// 429 (propagated from a remote check).
    TooManyRequests,
    /// 500.
    InternalServerError,
    /// 502 (a remote check could not be reached).
    BadGateway,
}

impl ErrorKind {
    /// HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::TooManyRequests => 429,
            Self::InternalServerError => 500,
            Self::BadGateway => 502,
        }
    }

    /// The name used in `when.error`.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::TooManyRequests => "too_many_requests",
            Self::InternalServerError => "internal_server_error",
            Self::BadGateway => "bad_gateway",
        }
    }
}

/// A pipeline failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    /// What kind.
    pub kind: ErrorKind,
    /// Detail for logs and verbose error handlers.
    pub reason: String,
    /// Headers to pass on (`Retry-After` of a 429).
    pub headers: Vec<(String, String)>,
}

impl PipelineError {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
    /// 401.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, reason)
    }
    /// 403.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, reason)
    }
    /// 500.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalServerError, reason)
    }
}

/// An authenticator: `Ok(true)` authenticated, `Ok(false)` not responsible (try the next), `Err` stops the request.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Runs it.
    async fn authenticate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<bool, PipelineError>;
}

/// The authorizer.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Allows (`Ok`) or refuses.
    async fn authorize(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<(), PipelineError>;
    /// Request headers this authorizer may set for the upstream.
    fn sets_headers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A mutator: adds headers for the upstream.
#[async_trait]
pub trait Mutator: Send + Sync {
    /// Runs it.
    async fn mutate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<(), PipelineError>;
    /// Request headers this mutator may set: they are removed from the client's request first.
    fn sets_headers(&self) -> Vec<String>;
}

/// A request to another service.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Method.
    pub method: String,
    /// URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
}

/// Its answer.
#[derive(Debug, Clone)]
pub struct InboundResponse {
    /// Status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl InboundResponse {
    /// A header's first value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Outgoing HTTP, supplied by the proxy.
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends a request; `Err` for transport failures and timeouts.
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, String>;
}

/// A signed-in session as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The identity id.
    pub subject: String,
    /// The whoami body (session JSON with the identity), shared with the session cache.
    pub extra: Arc<Value>,
    /// Whether the identity's e-mail trait is a verified address (`identity::session::email_verified`).
    pub email_verified: bool,
}

/// Our own sessions, supplied by the proxy (the session cache).
#[async_trait]
pub trait SessionLookup: Send + Sync {
    /// The session cookie's name.
    fn cookie_name(&self) -> &str;
    /// The token sealed in a session cookie value.
    fn open_cookie(&self, value: &str) -> Option<String>;
    /// The active session of a token; `Err` when the lookup itself failed.
    async fn lookup(&self, token: &str) -> Result<Option<SessionView>, String>;
}

/// What handlers may use.
#[derive(Clone)]
pub struct Services {
    /// Outgoing HTTP.
    pub http: Arc<dyn HttpClient>,
    /// Our sessions (absent when the identity module is off).
    pub sessions: Option<Arc<dyn SessionLookup>>,
    /// The time (JWT expiry, JWKS and ID token caches).
    pub clock: identity::SharedClock,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// `<kind>.<handler>` in the global config: `{enabled, config}`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HandlerSettings {
    /// Whether rules may use it.
    pub enabled: bool,
    /// Defaults for every rule.
    pub config: Option<Value>,
}

/// The global pipeline config: `authenticators`, `authorizers`, `mutators`, `errors.handlers` and
/// `errors.fallback`.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// `authenticators.<name>`.
    pub authenticators: BTreeMap<String, HandlerSettings>,
    /// `authorizers.<name>`.
    pub authorizers: BTreeMap<String, HandlerSettings>,
    /// `mutators.<name>`.
    pub mutators: BTreeMap<String, HandlerSettings>,
    /// `errors.handlers.<name>`.
    pub error_handlers: BTreeMap<String, HandlerSettings>,
    /// `errors.fallback`.
    pub error_fallback: Vec<String>,
}

/// Deep merge: `over` wins; objects merge key by key.
pub fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out: Map<String, Value> = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) => merge(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, Value::Null) => base.clone(),
        _ => over.clone(),
    }
}

/// The effective config of a handler: its global config merged under the rule's.
pub(crate) fn effective(global: Option<&HandlerSettings>, rule: Option<&Value>) -> Value {
    let base = global
        .and_then(|g| g.config.clone())
        .unwrap_or(Value::Object(Map::new()));
    match rule {
        Some(r) => merge(&base, r),
        None => base,
    }
}

/// Reads a typed handler config, naming the handler on error.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    kind: &str,
    name: &str,
    config: Value,
) -> Result<T, String> {
    serde_json::from_value(config).map_err(|e| format!("{kind} {name:?}: invalid config: {e}"))
}

/// A stage whose handler is disabled globally: Oathkeeper fails such requests with a 500.
pub(crate) struct Disabled(pub String);

impl Disabled {
    fn error(&self) -> PipelineError {
        PipelineError::internal(format!(
            "the pipeline handler {:?} is disabled or misconfigured",
            self.0
        ))
    }
}

#[async_trait]
impl Authenticator for Disabled {
    async fn authenticate(
        &self,
        _: &RequestInfo,
        _: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        Err(self.error())
    }
}

#[async_trait]
impl Authorizer for Disabled {
    async fn authorize(&self, _: &RequestInfo, _: &mut AuthSession) -> Result<(), PipelineError> {
        Err(self.error())
    }
}

#[async_trait]
impl Mutator for Disabled {
    async fn mutate(&self, _: &RequestInfo, _: &mut AuthSession) -> Result<(), PipelineError> {
        Err(self.error())
    }
    fn sets_headers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Identity headers no client may send, whatever the rule: oauth2-proxy's and Authelia's, and our own `X-User-*`.
pub const ALWAYS_STRIPPED_PREFIXES: &[&str] = &["x-user-", "x-auth-request-", "remote-"];
/// Exact names stripped on every request.
pub const ALWAYS_STRIPPED: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
];

/// One rule's prepared pipeline.
pub struct Pipeline {
    /// Rule id.
    pub rule_id: String,
    authenticators: Vec<Arc<dyn Authenticator>>,
    authorizer: Arc<dyn Authorizer>,
    mutators: Vec<Arc<dyn Mutator>>,
    /// The rule's error handlers.
    pub errors: Vec<errors::ErrorHandler>,
    strip: Vec<String>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("rule_id", &self.rule_id)
            .finish_non_exhaustive()
    }
}

/// A request that may go on.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The session the pipeline established.
    pub session: AuthSession,
}

impl Pipeline {
    /// Builds the pipeline of a rule.
    pub fn build(
        rule: &crate::Rule,
        config: &PipelineConfig,
        services: &Services,
    ) -> Result<Self, String> {
        if rule.authenticators.is_empty() {
            return Err(format!(
                "rule {:?}: at least one authenticator is required",
                rule.id
            ));
        }
        let named = |e: String| format!("rule {:?}: {e}", rule.id);
        let authenticators = rule
            .authenticators
            .iter()
            .map(|h| authn::build(&h.handler, h.config.as_ref(), config, services))
            .collect::<Result<Vec<_>, _>>()
            .map_err(named)?;
        let authorizer = authz::build(
            &rule.authorizer.handler,
            rule.authorizer.config.as_ref(),
            config,
            services,
        )
        .map_err(named)?;
        let mutators = rule
            .mutators
            .iter()
            .map(|h| mutate::build(&h.handler, h.config.as_ref(), config, &services.clock))
            .collect::<Result<Vec<_>, _>>()
            .map_err(named)?;
        if mutators.is_empty() {
            return Err(named("at least one mutator is required (use noop)".into()));
        }
        let errors = rule
            .errors
            .iter()
            .map(|h| errors::ErrorHandler::build(&h.handler, h.config.as_ref(), config))
            .collect::<Result<Vec<_>, _>>()
            .map_err(named)?;
        let mut strip: Vec<String> = mutators
            .iter()
            .flat_map(|m| m.sets_headers())
            .chain(authorizer.sets_headers())
            .map(|h| h.to_ascii_lowercase())
            .collect();
        strip.sort();
        strip.dedup();
        Ok(Self {
            rule_id: rule.id.clone(),
            authenticators,
            authorizer,
            mutators,
            errors,
            strip,
        })
    }

    /// Request headers removed before the mutators' headers are set (lower-case), besides those of the
    /// rule-set's [`crate::strip::StripSet`].
    pub fn stripped_headers(&self) -> &[String] {
        &self.strip
    }

    /// Runs authenticators, the authorizer and the mutators.
    pub async fn run(
        &self,
        req: &RequestInfo,
        captures: Vec<String>,
    ) -> Result<Granted, PipelineError> {
        let mut session = AuthSession {
            captures,
            extra: Arc::new(Value::Object(Map::new())),
            ..Default::default()
        };
        let mut authenticated = false;
        for a in &self.authenticators {
            if a.authenticate(req, &mut session).await? {
                authenticated = true;
                break;
            }
        }
        if !authenticated {
            return Err(PipelineError::unauthorized(
                "no authenticator was responsible for this request",
            ));
        }
        self.authorizer.authorize(req, &mut session).await?;
        for m in &self.mutators {
            m.mutate(req, &mut session).await?;
        }
        Ok(Granted { session })
    }
}

/// The template context of a session and request.
pub(crate) fn template_context<'a>(
    req: &'a RequestInfo,
    session: &'a AuthSession,
) -> crate::template::TemplateContext<'a> {
    crate::template::TemplateContext {
        subject: &session.subject,
        extra: &session.extra,
        email_verified: session.email_verified,
        header: &req.headers,
        match_context: crate::template::MatchContext {
            regexp_capture_groups: &session.captures,
            method: &req.method,
            scheme: &req.scheme,
            host: &req.host,
            path: &req.path,
            raw_query: req.query.as_deref().unwrap_or(""),
            header: &req.headers,
        },
    }
}

#[cfg(test)]
mod tests;
