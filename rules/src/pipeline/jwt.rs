//! The `jwt` authenticator and the `id_token` mutator, with Oathkeeper's config keys.
//!
//! `jwt` verifies a bearer JWT against the JSON Web Key Sets of `jwks_urls` (`http(s)://` through
//! [`Services::http`], `file://` and `base64://` read locally), then checks `target_audience` (every one must be in
//! `aud`), `trusted_issuers` (`iss` must be one of them) and `required_scope` (read from `scp`, `scope` or `scopes`
//! as an array or a space-separated string, and matched with `scope_strategy`). The session's subject is `sub`
//! and its extra is every claim, with the scope normalised to a `scp` array as Oathkeeper does; its
//! `email_verified` (`.EmailVerified` in templates) is the OpenID Connect claim of that name. It is responsible
//! only for tokens of three dot-separated parts, so `bearer_token` can follow it for opaque tokens.
//!
//! Every verification failure, a missing scope included, is a 401 as in Oathkeeper (its verifier wraps them all in
//! `ErrUnauthorized`). Unlike Oathkeeper, a JWKS that cannot be obtained at all is a 502 (remote) or a 500 (local
//! file) rather than a 401, so that error handlers do not send users to log in again because the IdP is down.
//!
//! Verified tokens are cached by their SHA-256 (at most 10,000) until their `exp`, and only while the key sets
//! they were verified with are current: a refetch (every `jwks_ttl`) re-verifies them. Tokens without `exp` are
//! verified every time.
//!
//! Key sets are cached for `jwks_ttl`. There is no background refresh: the first request that finds the cache
//! stale refetches (the others keep verifying with the stale keys meanwhile), and a token whose `kid` is unknown
//! triggers a refetch too. Refetches start at most once per `jwks_max_wait`, so a flood of tokens with made-up
//! `kid`s cannot hammer the IdP; when a refetch fails the stale keys stay in use.
//!
//! `id_token` signs a JWT with the one private key of `jwks_url` (`file://` or `base64://`): the `claims` template
//! rendered over the session and parsed as a JSON object, then `iss` (`issuer_url`), `sub`, `exp` (now + `ttl`),
//! `iat`, `nbf` and `jti`, which always win over the template's (a template that adds `email` should add
//! `"email_verified": {{ .EmailVerified }}` with it). It sets `Authorization: Bearer <jwt>`. Tokens are
//! cached per (subject, rendered claims) until 10% of their lifetime remains. [`id_token_public_keys`] gives the
//! public keys for `/.well-known/jwks.json`.

use super::{
    effective, template_context, typed, AuthSession, Authenticator, Disabled, ErrorKind,
    HttpClient, Mutator, OutboundRequest, PipelineConfig, PipelineError, RequestInfo, Services,
};
use crate::template::Template;
use async_trait::async_trait;
use identity::jws::{self, Algorithm, JwsError, PublicKeySet, Signer};
use identity::SharedClock;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::{Duration, OffsetDateTime};

/// Clock skew tolerated on `exp`, `nbf` and `iat`: none, as in Oathkeeper.
const LEEWAY: Duration = Duration::ZERO;
/// Largest JWKS document accepted from a remote.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most ID tokens kept in one mutator's cache.
const MAX_CACHED_TOKENS: usize = 10_000;
/// Rendered claims larger than this are not cached (the key would be large).
const MAX_CACHED_CLAIMS_BYTES: usize = 16 * 1024;

/// Builds the `jwt` authenticator of a rule.
pub fn build_authenticator(
    rule_config: Option<&Value>,
    config: &PipelineConfig,
    services: &Services,
    clock: SharedClock,
) -> Result<Arc<dyn Authenticator>, String> {
    let global = config.authenticators.get("jwt");
    if !global.is_some_and(|g| g.enabled) {
        return Ok(Arc::new(Disabled("authenticators.jwt".into())));
    }
    let cfg: JwtConfig = typed("authenticator", "jwt", effective(global, rule_config))?;
    let jwt = Jwt::new(cfg, services, clock).map_err(|e| format!("authenticator \"jwt\": {e}"))?;
    Ok(Arc::new(jwt))
}

/// Builds the `id_token` mutator of a rule.
pub fn build_id_token(
    rule_config: Option<&Value>,
    config: &PipelineConfig,
    clock: SharedClock,
) -> Result<Arc<dyn Mutator>, String> {
    let global = config.mutators.get("id_token");
    if !global.is_some_and(|g| g.enabled) {
        return Ok(Arc::new(Disabled("mutators.id_token".into())));
    }
    let cfg: IdTokenConfig = typed("mutator", "id_token", effective(global, rule_config))?;
    let m = IdToken::new(cfg, clock).map_err(|e| format!("mutator \"id_token\": {e}"))?;
    Ok(Arc::new(m))
}

/// The public keys of every `id_token` signing key, as `GET /.well-known/jwks.json` serves them: the global
/// `mutators.id_token.config.jwks_url` and that of every rule-level `id_token` config in `rule_configs` (the
/// `config` of each rule's `id_token` mutator, `None` when the rule has none). Keys are listed once each. Reads the
/// key files, so call it when rules are (re)loaded, not per request. `{"keys": []}` when `id_token` is disabled.
pub fn id_token_public_keys<'a>(
    config: &PipelineConfig,
    rule_configs: impl IntoIterator<Item = Option<&'a Value>>,
) -> Result<Value, String> {
    let global = config.mutators.get("id_token");
    let mut keys: Vec<Value> = Vec::new();
    if global.is_some_and(|g| g.enabled) {
        let global_url = global
            .and_then(|g| g.config.as_ref())
            .and_then(|c| c.get("jwks_url"))
            .is_some();
        // The global config alone (when it names a key), then each rule's merged over it.
        let configs = global_url.then_some(None).into_iter().chain(rule_configs);
        for rule in configs {
            let cfg: IdTokenConfig = typed("mutator", "id_token", effective(global, rule))?;
            let url = cfg
                .jwks_url
                .ok_or_else(|| "mutator \"id_token\": jwks_url is required".to_owned())?;
            let jwk = load_signer(&url)
                .map_err(|e| format!("mutator \"id_token\": {e}"))?
                .public_jwk();
            if !keys.contains(&jwk) {
                keys.push(jwk);
            }
        }
    }
    Ok(serde_json::json!({ "keys": keys }))
}

/// Where the authenticator reads the token (one of the three, or `Authorization: Bearer`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFrom {
    header: Option<String>,
    query_parameter: Option<String>,
    cookie: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtConfig {
    #[serde(default)]
    jwks_urls: Vec<String>,
    #[serde(default)]
    allowed_algorithms: Vec<String>,
    #[serde(default)]
    required_scope: Vec<String>,
    #[serde(default)]
    target_audience: Vec<String>,
    #[serde(default)]
    trusted_issuers: Vec<String>,
    #[serde(default)]
    scope_strategy: Option<String>,
    #[serde(default)]
    token_from: Option<TokenFrom>,
    #[serde(default)]
    jwks_max_wait: Option<String>,
    #[serde(default)]
    jwks_ttl: Option<String>,
}

/// Oathkeeper's (fosite's) scope strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeStrategy {
    None,
    Exact,
    Hierarchic,
    Wildcard,
}

impl ScopeStrategy {
    fn parse(s: Option<&str>) -> Result<Self, String> {
        Ok(match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("none") => Self::None,
            Some("exact") => Self::Exact,
            Some("hierarchic") => Self::Hierarchic,
            Some("wildcard") => Self::Wildcard,
            Some(other) => {
                return Err(format!(
                    "unknown scope_strategy {other:?} (use none, exact, hierarchic or wildcard)"
                ))
            }
        })
    }

    /// Whether the granted scopes include `needle`.
    fn grants(self, granted: &[String], needle: &str) -> bool {
        match self {
            Self::None => false,
            Self::Exact => granted.iter().any(|g| g == needle),
            Self::Hierarchic => granted.iter().any(|g| hierarchic(g, needle)),
            Self::Wildcard => granted.iter().any(|g| wildcard(g, needle)),
        }
    }
}

/// `foo` grants `foo` and `foo.bar`, not `foobar`; `foo.bar` does not grant `foo`.
fn hierarchic(granted: &str, needle: &str) -> bool {
    if granted == needle {
        return true;
    }
    if granted.len() > needle.len() {
        return false;
    }
    let have: Vec<&str> = granted.split('.').collect();
    for (k, part) in needle.split('.').enumerate() {
        match have.get(k) {
            None => return true,
            Some(h) if *h != part => return false,
            Some(_) => {}
        }
    }
    false
}

/// `foo.*` grants `foo.bar` and `foo.bar.baz`; `*` matches one non-empty segment, or the rest when last.
fn wildcard(granted: &str, needle: &str) -> bool {
    let want: Vec<&str> = needle.split('.').collect();
    let have: Vec<&str> = granted.split('.').collect();
    if have.len() > want.len() {
        return false;
    }
    have.iter().enumerate().all(|(k, part)| {
        let last = k + 1 == have.len();
        if last && have.len() != want.len() && *part != "*" {
            return false;
        }
        let w = want.get(k).copied().unwrap_or_default();
        (*part == "*" && !w.is_empty()) || *part == w
    })
}

/// The scopes of a token and the claim they came from (`scp`, `scope` or `scopes`, first present wins).
fn scopes(claims: &Map<String, Value>) -> (Vec<String>, Option<&'static str>) {
    for key in ["scp", "scope", "scopes"] {
        let Some(v) = claims.get(key) else { continue };
        let list = match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_owned())
                .collect(),
            Value::String(s) if s.is_empty() => Vec::new(),
            Value::String(s) => s.split(' ').map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        return (list, Some(key));
    }
    (Vec::new(), None)
}

/// A string or an array of strings, as `aud` may be.
fn string_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A Go duration (`1s`, `1h30m`, `250ms`; `0` alone), with the config key in errors.
fn go_duration(key: &str, s: &str) -> Result<Duration, String> {
    let d = identity::clock::parse_go_duration(s).map_err(|e| format!("{key}: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("{key}: invalid duration {s:?}: too large"))
}

/// Where a key set comes from.
#[derive(Debug, Clone)]
enum JwksSource {
    Http(String),
    Local(String),
}

impl JwksSource {
    fn parse(u: &str) -> Result<Self, String> {
        let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => url::Url::parse(u)
                .map(|_| Self::Http(u.to_owned()))
                .map_err(|e| format!("jwks_urls: {u:?} is not a URL: {e}")),
            Some("file" | "base64") => Ok(Self::Local(u.to_owned())),
            _ => Err(format!(
                "jwks_urls: {u:?} is not supported; use http://, https://, file:// or base64:// URLs"
            )),
        }
    }
}

struct Fetched {
    at: OffsetDateTime,
    keys: PublicKeySet,
}

#[derive(Default)]
struct JwksState {
    /// Per source, the last key set fetched.
    fetched: Vec<Option<Fetched>>,
    /// Every key of `fetched`.
    merged: Arc<PublicKeySet>,
    /// When the last refetch started.
    last_attempt: Option<OffsetDateTime>,
    /// Bumped by every refetch.
    generation: u64,
    /// Why the last refetch failed, if it did.
    last_error: Option<PipelineError>,
}

impl JwksState {
    fn is_stale(&self, index: usize, now: OffsetDateTime, ttl: Duration) -> bool {
        match self.fetched.get(index) {
            Some(Some(f)) => now - f.at > ttl,
            _ => true,
        }
    }

    fn result(&self) -> Result<(Arc<PublicKeySet>, u64), PipelineError> {
        if self.merged.is_empty() {
            return Err(self.last_error.clone().unwrap_or_else(|| {
                PipelineError::internal("no JSON Web Key Set of jwks_urls could be loaded")
            }));
        }
        Ok((self.merged.clone(), self.generation))
    }
}

/// The key sets of `jwks_urls`, cached for `jwks_ttl`.
struct Jwks {
    sources: Vec<JwksSource>,
    ttl: Duration,
    min_refetch: Duration,
    clock: SharedClock,
    http: Arc<dyn HttpClient>,
    state: Mutex<JwksState>,
    /// Held by the one request that refetches.
    fetching: tokio::sync::Mutex<()>,
}

impl Jwks {
    fn state(&self) -> MutexGuard<'_, JwksState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys to verify with and their generation.
    /// The generation of the key sets when they are loaded and none is stale (no fetching).
    fn fresh_generation(&self, now: OffsetDateTime) -> Option<u64> {
        let st = self.state();
        let stale = (0..self.sources.len()).any(|i| st.is_stale(i, now, self.ttl));
        (!stale && !st.merged.is_empty()).then_some(st.generation)
    }

    async fn current(&self) -> Result<(Arc<PublicKeySet>, u64), PipelineError> {
        let now = self.clock.now();
        let (keys, generation, stale) = {
            let st = self.state();
            let stale = (0..self.sources.len()).any(|i| st.is_stale(i, now, self.ttl));
            (st.merged.clone(), st.generation, stale)
        };
        if !stale {
            return Ok((keys, generation));
        }
        if keys.is_empty() {
            // Nothing to verify with: wait for the refetch (ours or another request's).
            let guard = self.fetching.lock().await;
            return self.refetch(guard, generation, false).await;
        }
        match self.fetching.try_lock() {
            Ok(guard) => self.refetch(guard, generation, false).await,
            // Another request is refetching: go on with the stale keys rather than wait.
            Err(_) => Ok((keys, generation)),
        }
    }

    /// Refetches every set because a token names a key none of them has (key rotation at the IdP).
    async fn refetch_for_unknown_key(
        &self,
        seen: u64,
    ) -> Result<(Arc<PublicKeySet>, u64), PipelineError> {
        let guard = self.fetching.lock().await;
        self.refetch(guard, seen, true).await
    }

    async fn refetch(
        &self,
        _guard: tokio::sync::MutexGuard<'_, ()>,
        seen: u64,
        all: bool,
    ) -> Result<(Arc<PublicKeySet>, u64), PipelineError> {
        let started = self.clock.now();
        let todo: Vec<usize> = {
            let mut st = self.state();
            if st.generation != seen {
                // Another request refetched while this one waited.
                return st.result();
            }
            if st
                .last_attempt
                .is_some_and(|t| started - t < self.min_refetch)
            {
                return st.result();
            }
            st.last_attempt = Some(started);
            (0..self.sources.len())
                .filter(|&i| all || st.is_stale(i, started, self.ttl))
                .collect()
        };
        let mut results = Vec::with_capacity(todo.len());
        for i in todo {
            if let Some(source) = self.sources.get(i) {
                results.push((i, self.fetch(source).await));
            }
        }
        let at = self.clock.now();
        let mut st = self.state();
        if st.fetched.len() != self.sources.len() {
            st.fetched.resize_with(self.sources.len(), || None);
        }
        let mut errors = Vec::new();
        for (i, result) in results {
            match result {
                Ok(keys) => {
                    if let Some(slot) = st.fetched.get_mut(i) {
                        *slot = Some(Fetched { at, keys });
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        let merged = PublicKeySet::merged(st.fetched.iter().flatten().map(|f| &f.keys));
        st.merged = Arc::new(merged);
        st.generation += 1;
        st.last_error = errors.into_iter().reduce(|mut a, b| {
            a.reason = format!("{}; {}", a.reason, b.reason);
            a
        });
        st.result()
    }

    async fn fetch(&self, source: &JwksSource) -> Result<PublicKeySet, PipelineError> {
        match source {
            JwksSource::Local(u) => {
                let doc = jws::load_local_document(u)
                    .map_err(|e| PipelineError::internal(format!("jwks_urls {u:?}: {e}")))?;
                PublicKeySet::from_jwks(&doc)
                    .map_err(|e| PipelineError::internal(format!("jwks_urls {u:?}: {e}")))
            }
            JwksSource::Http(u) => {
                let gateway = |why: String| {
                    PipelineError::new(
                        ErrorKind::BadGateway,
                        format!("unable to fetch the JSON Web Key Set {u:?}: {why}"),
                    )
                };
                let res = self
                    .http
                    .send(OutboundRequest {
                        method: "GET".into(),
                        url: u.clone(),
                        headers: vec![("Accept".into(), "application/json".into())],
                        body: None,
                    })
                    .await
                    .map_err(gateway)?;
                if !(200..300).contains(&res.status) {
                    return Err(gateway(format!("it answered {}", res.status)));
                }
                if res.body.len() > MAX_JWKS_BYTES {
                    return Err(gateway(format!("it is larger than {MAX_JWKS_BYTES} bytes")));
                }
                PublicKeySet::from_jwks(&res.body).map_err(|e| gateway(e.to_string()))
            }
        }
    }
}

/// Verified tokens kept at most (each entry is a hash, a subject and the shared claims).
const VERIFIED_CAPACITY: usize = 10_000;

/// A token that passed verification and the claim checks, valid until `exp` while the key sets it was
/// verified with are current.
struct Verified {
    subject: String,
    extra: Arc<Value>,
    expires: OffsetDateTime,
    generation: u64,
}

struct Jwt {
    /// Verified tokens by SHA-256, so a client repeating its token costs a lookup, not a signature check.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    token_from: TokenFrom,
    algorithms: Vec<String>,
    required_scope: Vec<String>,
    target_audience: Vec<String>,
    trusted_issuers: Vec<String>,
    scope_strategy: ScopeStrategy,
    clock: SharedClock,
    jwks: Jwks,
}

impl Jwt {
    fn new(c: JwtConfig, services: &Services, clock: SharedClock) -> Result<Self, String> {
        if c.jwks_urls.is_empty() {
            return Err("jwks_urls is required".into());
        }
        let sources = c
            .jwks_urls
            .iter()
            .map(|u| JwksSource::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let algorithms = if c.allowed_algorithms.is_empty() {
            vec!["RS256".to_owned()]
        } else {
            c.allowed_algorithms
        };
        for a in &algorithms {
            if Algorithm::from_name(a).is_none() {
                return Err(format!(
                    "allowed_algorithms: {a:?} is not supported (supported: {})",
                    jws::SUPPORTED_ALGORITHMS.join(", ")
                ));
            }
        }
        let scope_strategy = ScopeStrategy::parse(c.scope_strategy.as_deref())?;
        if scope_strategy == ScopeStrategy::None && !c.required_scope.is_empty() {
            return Err(
                "required_scope needs a scope_strategy (exact, hierarchic or wildcard); it is \"none\"".into(),
            );
        }
        let token_from = c.token_from.unwrap_or_default();
        let locations = [
            token_from.header.is_some(),
            token_from.query_parameter.is_some(),
            token_from.cookie.is_some(),
        ];
        if locations.iter().filter(|set| **set).count() > 1 {
            return Err("token_from: set only one of header, query_parameter and cookie".into());
        }
        let ttl = go_duration("jwks_ttl", c.jwks_ttl.as_deref().unwrap_or("30s"))?;
        let min_refetch = go_duration("jwks_max_wait", c.jwks_max_wait.as_deref().unwrap_or("1s"))?;
        Ok(Self {
            verified: Mutex::new(HashMap::new()),
            token_from,
            algorithms,
            required_scope: c.required_scope,
            target_audience: c.target_audience,
            trusted_issuers: c.trusted_issuers,
            scope_strategy,
            clock: clock.clone(),
            jwks: Jwks {
                sources,
                ttl,
                min_refetch,
                clock,
                http: services.http.clone(),
                state: Mutex::new(JwksState::default()),
                fetching: tokio::sync::Mutex::new(()),
            },
        })
    }

    fn token(&self, req: &RequestInfo) -> Option<String> {
        let from = &self.token_from;
        let bearer = || {
            req.header("authorization").and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_owned())
            })
        };
        let token = match (&from.header, &from.query_parameter, &from.cookie) {
            (Some(h), _, _) if h.eq_ignore_ascii_case("authorization") => bearer(),
            (Some(h), _, _) => req.header(h).map(|v| v.trim().to_owned()),
            (None, Some(q), _) => req.query_param(q),
            (None, None, Some(c)) => req.cookie(c).map(str::to_owned),
            (None, None, None) => bearer(),
        }?;
        (!token.is_empty()).then_some(token)
    }

    /// Verifies the signature and times; returns the claims and the key-set generation that verified them.
    async fn verify(&self, token: &str) -> Result<(Map<String, Value>, u64), PipelineError> {
        let invalid = |e: JwsError| {
            PipelineError::unauthorized(format!("the JSON Web Token is invalid: {e}"))
        };
        // Refuse what no key could verify before touching the key sets.
        let header = jws::decode_header(token).map_err(invalid)?;
        if Algorithm::from_name(&header.alg).is_none() {
            return Err(invalid(JwsError::UnsupportedAlgorithm(header.alg)));
        }
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(JwsError::AlgorithmNotAllowed(header.alg)));
        }
        let (keys, mut generation) = self.jwks.current().await?;
        let verified = match jws::verify(token, &keys, &self.algorithms, self.clock.now(), LEEWAY) {
            Err(JwsError::UnknownKey { .. }) => {
                let (keys, refetched) = self.jwks.refetch_for_unknown_key(generation).await?;
                generation = refetched;
                jws::verify(token, &keys, &self.algorithms, self.clock.now(), LEEWAY)
            }
            other => other,
        };
        Ok((verified.map_err(invalid)?.0, generation))
    }

    /// Audience, issuer and scope; returns the subject and the extra.
    fn check(&self, mut claims: Map<String, Value>) -> Result<(String, Value), PipelineError> {
        let aud = string_list(claims.get("aud"));
        if let Some(missing) = self
            .target_audience
            .iter()
            .find(|want| !aud.contains(&want.as_str()))
        {
            return Err(PipelineError::unauthorized(format!(
                "the token's audience {aud:?} does not include {missing:?}"
            )));
        }
        if !self.trusted_issuers.is_empty() {
            let iss = claims
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !self.trusted_issuers.iter().any(|t| t == iss) {
                return Err(PipelineError::unauthorized(format!(
                    "the token's issuer {iss:?} is not one of the trusted issuers"
                )));
            }
        }
        let (granted, from) = scopes(&claims);
        if let Some(missing) = self
            .required_scope
            .iter()
            .find(|want| !self.scope_strategy.grants(&granted, want))
        {
            return Err(PipelineError::unauthorized(format!(
                "the token is missing the required scope {missing:?}"
            )));
        }
        if let Some(key) = from.filter(|k| *k != "scp") {
            claims.remove(key);
        }
        claims.insert(
            "scp".to_owned(),
            Value::Array(granted.into_iter().map(Value::String).collect()),
        );
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok((subject, Value::Object(claims)))
    }
}

#[async_trait]
impl Authenticator for Jwt {
    async fn authenticate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        let Some(token) = self.token(req) else {
            return Ok(false);
        };
        // Not a JWT: leave it to the next authenticator (bearer_token, …).
        if token.split('.').count() != 3 {
            return Ok(false);
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now();
        // Only while the key sets are fresh: a stale set is refetched by the verification below.
        if let Some(generation) = self.jwks.fresh_generation(now) {
            if let Some(hit) = self.cached(&digest, generation, now) {
                session.subject = hit.0;
                session.email_verified = email_verified_claim(&hit.1);
                session.extra = hit.1;
                return Ok(true);
            }
        }
        let (claims, generation) = self.verify(&token).await?;
        let expires = claims
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok());
        let (subject, extra) = self.check(claims)?;
        let extra = Arc::new(extra);
        if let Some(expires) = expires {
            self.remember(digest, &subject, &extra, expires, generation, now);
        }
        session.subject = subject;
        session.email_verified = email_verified_claim(&extra);
        session.extra = extra;
        Ok(true)
    }
}

/// The OpenID Connect `email_verified` claim: true only when it is `true` (or the string `"true"`, which some
/// providers send).
fn email_verified_claim(claims: &Value) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl Jwt {
    fn verified(&self) -> MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A verified token still good at `now` under key-set `generation`.
    fn cached(
        &self,
        digest: &[u8; 32],
        generation: u64,
        now: OffsetDateTime,
    ) -> Option<(String, Arc<Value>)> {
        let map = self.verified();
        let v = map.get(digest)?;
        (v.generation == generation && now < v.expires)
            .then(|| (v.subject.clone(), v.extra.clone()))
    }

    fn remember(
        &self,
        digest: [u8; 32],
        subject: &str,
        extra: &Arc<Value>,
        expires: OffsetDateTime,
        generation: u64,
        now: OffsetDateTime,
    ) {
        let mut map = self.verified();
        if map.len() >= VERIFIED_CAPACITY {
            map.retain(|_, v| v.generation == generation && now < v.expires);
            if map.len() >= VERIFIED_CAPACITY {
                map.clear();
            }
        }
        map.insert(
            digest,
            Verified {
                subject: subject.to_owned(),
                extra: extra.clone(),
                expires,
                generation,
            },
        );
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdTokenConfig {
    #[serde(default)]
    issuer_url: Option<String>,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    claims: Option<String>,
}

fn load_signer(url: &str) -> Result<Signer, String> {
    let doc = jws::load_local_document(url).map_err(|e| format!("jwks_url {url:?}: {e}"))?;
    Signer::from_private_jwks(&doc).map_err(|e| format!("jwks_url {url:?}: {e}"))
}

/// The first JSON value of the rendered claims, which must be an object (trailing text is ignored, as Go's
/// `json.Decoder.Decode` in Oathkeeper does).
fn claims_object(rendered: &str) -> Result<Map<String, Value>, PipelineError> {
    let bad = |why: String| PipelineError::internal(format!("id_token claims: {why}"));
    match serde_json::Deserializer::from_str(rendered)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(Value::Object(m))) => Ok(m),
        Some(Ok(_)) => Err(bad("the template did not render a JSON object".into())),
        Some(Err(e)) => Err(bad(format!("the template did not render valid JSON: {e}"))),
        None => Err(bad("the template rendered nothing".into())),
    }
}

struct CachedToken {
    token: String,
    expires_at: OffsetDateTime,
}

struct IdToken {
    issuer: String,
    ttl: Duration,
    claims: Option<Template>,
    signer: Signer,
    clock: SharedClock,
    cache: Mutex<HashMap<(String, String), CachedToken>>,
}

impl IdToken {
    fn new(c: IdTokenConfig, clock: SharedClock) -> Result<Self, String> {
        let issuer = c
            .issuer_url
            .filter(|i| !i.is_empty())
            .ok_or("issuer_url is required")?;
        let jwks_url = c
            .jwks_url
            .filter(|u| !u.is_empty())
            .ok_or("jwks_url is required")?;
        let ttl = go_duration("ttl", c.ttl.as_deref().unwrap_or("15m"))?;
        if ttl < Duration::SECOND {
            return Err("ttl must be at least 1s".into());
        }
        let claims = match c.claims.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(src) => Some(Template::compile(src).map_err(|e| format!("claims: {e}"))?),
        };
        Ok(Self {
            issuer,
            ttl,
            claims,
            signer: load_signer(&jwks_url)?,
            clock,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<(String, String), CachedToken>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached token that still has more than 10% of its lifetime left.
    fn cached(&self, key: &(String, String), now: OffsetDateTime) -> Option<String> {
        let mut cache = self.cache();
        let entry = cache.get(key)?;
        if entry.expires_at - now >= self.ttl / 10 {
            return Some(entry.token.clone());
        }
        cache.remove(key);
        None
    }

    fn remember(
        &self,
        key: (String, String),
        token: String,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) {
        if key.1.len() > MAX_CACHED_CLAIMS_BYTES {
            return;
        }
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED_TOKENS {
            let keep = self.ttl / 10;
            cache.retain(|_, e| e.expires_at - now >= keep);
            if cache.len() >= MAX_CACHED_TOKENS {
                cache.clear();
            }
        }
        cache.insert(key, CachedToken { token, expires_at });
    }

    fn mint(
        &self,
        subject: &str,
        mut claims: Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<(String, OffsetDateTime), PipelineError> {
        let iat = now.unix_timestamp();
        let exp = (now + self.ttl).unix_timestamp();
        claims.insert("exp".into(), exp.into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        claims.insert("iat".into(), iat.into());
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("nbf".into(), iat.into());
        claims.insert("sub".into(), subject.into());
        let token = self
            .signer
            .sign(&claims)
            .map_err(|e| PipelineError::internal(format!("id_token: {e}")))?;
        let expires_at = OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now + self.ttl);
        Ok((token, expires_at))
    }
}

#[async_trait]
impl Mutator for IdToken {
    async fn mutate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<(), PipelineError> {
        let (claims, rendered) = match &self.claims {
            Some(t) => {
                let rendered = t
                    .render(&template_context(req, session))
                    .map_err(|e| PipelineError::internal(format!("id_token claims: {e}")))?;
                (claims_object(&rendered)?, rendered)
            }
            None => (Map::new(), String::new()),
        };
        let now = self.clock.now();
        let key = (session.subject.clone(), rendered);
        let token = match self.cached(&key, now) {
            Some(token) => token,
            None => {
                let (token, expires_at) = self.mint(&session.subject, claims, now)?;
                self.remember(key, token.clone(), expires_at, now);
                token
            }
        };
        session
            .header
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        session
            .header
            .push(("Authorization".into(), format!("Bearer {token}")));
        Ok(())
    }

    fn sets_headers(&self) -> Vec<String> {
        vec!["Authorization".into()]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::{HandlerSettings, InboundResponse};
    use super::*;
    use identity::{Clock as _, ManualClock};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::macros::datetime;

    // The session tokenizer's RSA fixture (identity/src/tokenize/tests.rs).
    const RSA_JWK: &str = r#"{"kty": "RSA", "kid": "rsa-key-1", "alg": "RS256", "use": "sig", "n": "rUjhC3r9pR4GtxXmZmATvoVAKo2_mQCUiZjGRqcMhyGND9fQ7iyE5-IwtYNIujJYk8VQty8qUjshtoeX6yx_wcA7UBVpOlmesgap3JWXTnD6BpFuPBs-30v9oeAXiThYuK8hh-QnCAnOX8ktyTbwUq8slWa9ihuqyZEj_O3FuF6070WqRibSxEHfREatAIg53n4Hw52gjhU8zU9JKu-nI4xH_PDUHfE6hv3eENDz6jlj1KhBfUHohMuWN19Lhd-7565491hFKeNsjDR_iHmXGuVzjhxMaO1LLVJv3xIZdPm1WFY0hdySe6zeiOQ7mZpFHd7y2kPNn_ya6Y1DadOj1w", "e": "AQAB", "d": "AvjRA0VkvEQ7kUBK506WiBn488Him1krMwDvxZ5v1JF6vd7RsoQI84EpnLNXt_nNExu7OqkQbMCe32aL8Hie6E_HtKPpXhrTYfJDT4kxQyMk5p_v6A__kAzZmMEjJjNVMjWuuYnsMXMZmwL0ShMrI__lH9rXPVskHrjiiR_62CKgdenX7aX_XsVSlI_sd5oVlaa9Gn7SnejT_jyDj3zYJciiD3Dd0awkl9QD1HRFHWp_fB4i5XkdIwugs9QB2JzxISgG-BiXJNcffNsFfyiSO2s6ODO_m5zYqHUWFMlfq5sUYCrX25GobSWDkg28OChwagb1LlkGehAJ6EzVAAAg4Q", "p": "1tvb4-YaM3GMe2A8TQpzsLQpzH5wEoQR4PmLB06vp0BB9sF9iE6A8xCganoBUnj28HR6RHynA1QET4hOkJYUSmJZnjsS1TdFSRt3DRFbOLGjd57EBHt19B5urO-Ipyf8MUlpaw7YiL6Fy4mqKhvjqUNVvPY1X4VkwHIcNR9XPiM", "q": "zncaGHvaSJmcfA8zIwe4QFfOl-oXb87sJkoV10TtLcB-SBrlzJk9qAnQUcYpdyakoxCM9c2VvuQT3DeO-3qML3LY7O2ROd74QYJjoVesLE6BYhm3ElJ8vp5ve3LZg2MjyI6luIRWCDBpao32Il6Wl6XW1Bzy6U0JvTyC-vg8bL0"}"#;
    const JWKS_URL: &str = "https://idp.test/.well-known/jwks.json";
    const START: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

    /// An identity provider serving a JWKS and counting the fetches.
    #[derive(Default)]
    struct FakeIdp {
        /// The served set; `None` makes fetches fail.
        jwks: Mutex<Option<Value>>,
        fetches: AtomicUsize,
    }

    impl FakeIdp {
        fn serving(signers: &[&Signer]) -> Arc<Self> {
            let idp = Arc::new(Self::default());
            idp.serve(signers);
            idp
        }
        fn serve(&self, signers: &[&Signer]) {
            let keys: Vec<Value> = signers.iter().map(|s| s.public_jwk()).collect();
            *self.jwks.lock().unwrap() = Some(json!({ "keys": keys }));
        }
        fn go_down(&self) {
            *self.jwks.lock().unwrap() = None;
        }
        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl HttpClient for FakeIdp {
        async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, String> {
            assert_eq!((req.method.as_str(), req.url.as_str()), ("GET", JWKS_URL));
            self.fetches.fetch_add(1, Ordering::SeqCst);
            // Let concurrent requests pile up behind this fetch.
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            let doc = self.jwks.lock().unwrap().clone();
            doc.map(|d| InboundResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: d.to_string().into_bytes(),
            })
            .ok_or_else(|| "connection refused".to_owned())
        }
    }

    /// A file removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(contents: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("portcullis-jwt-{}.json", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
        fn url(&self) -> String {
            format!("file://{}", self.0.display())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn rsa_signer() -> Signer {
        Signer::from_private_jwks(format!("{{\"keys\": [{RSA_JWK}]}}").as_bytes()).unwrap()
    }

    fn private_jwks(alg: Algorithm, kid: &str) -> Value {
        jws::generate_private_jwks(alg, kid).unwrap()
    }

    fn ec_signer(kid: &str) -> Signer {
        Signer::from_private_jwks(private_jwks(Algorithm::Es256, kid).to_string().as_bytes())
            .unwrap()
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let now = START.unix_timestamp();
        let mut c = json!({
            "sub": "alice",
            "iss": "https://idp.test/",
            "aud": ["api", "billing"],
            "iat": now,
            "exp": now + 300,
            "scope": "read write",
            "email": "alice@example.com",
        })
        .as_object()
        .unwrap()
        .clone();
        c.extend(extra.as_object().unwrap().clone());
        c
    }

    fn token(signer: &Signer, extra: Value) -> String {
        signer.sign(&claims(extra)).unwrap()
    }

    fn enabled(config: Value) -> HandlerSettings {
        HandlerSettings {
            enabled: true,
            config: Some(config),
        }
    }

    fn pipeline_config(jwt: Value, id_token: Value) -> PipelineConfig {
        let mut c = PipelineConfig::default();
        c.authenticators.insert("jwt".into(), enabled(jwt));
        c.mutators.insert("id_token".into(), enabled(id_token));
        c
    }

    fn services(idp: &Arc<FakeIdp>, clock: &ManualClock) -> Services {
        Services {
            http: idp.clone(),
            sessions: None,
            clock: Arc::new(clock.clone()),
        }
    }

    fn try_jwt(
        idp: &Arc<FakeIdp>,
        clock: &ManualClock,
        rule: Value,
    ) -> Result<Arc<dyn Authenticator>, String> {
        let config = pipeline_config(json!({ "jwks_urls": [JWKS_URL] }), json!({}));
        build_authenticator(
            Some(&rule),
            &config,
            &services(idp, clock),
            Arc::new(clock.clone()),
        )
    }

    fn jwt(idp: &Arc<FakeIdp>, clock: &ManualClock, rule: Value) -> Arc<dyn Authenticator> {
        try_jwt(idp, clock, rule).unwrap()
    }

    fn request(headers: &[(&str, &str)], query: Option<&str>) -> RequestInfo {
        RequestInfo {
            method: "GET".into(),
            scheme: "https".into(),
            host: "app.test".into(),
            path: "/orders/7".into(),
            query: query.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            client_ip: "10.1.2.3".parse().unwrap(),
            forwarded_for: None,
        }
    }

    fn bearer(token: &str) -> RequestInfo {
        request(&[("Authorization", &format!("Bearer {token}"))], None)
    }

    async fn run(
        a: &Arc<dyn Authenticator>,
        req: &RequestInfo,
    ) -> Result<(bool, AuthSession), PipelineError> {
        let mut session = AuthSession::default();
        let ok = a.authenticate(req, &mut session).await?;
        Ok((ok, session))
    }

    async fn kind_of(a: &Arc<dyn Authenticator>, req: &RequestInfo) -> ErrorKind {
        run(a, req).await.map(|_| ()).unwrap_err().kind
    }

    #[tokio::test]
    async fn jwt_sets_subject_and_every_claim_as_extra() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({}));
        let (ok, session) = run(&a, &bearer(&token(&signer, json!({})))).await.unwrap();
        assert!(ok);
        assert_eq!(session.subject, "alice");
        assert_eq!(session.extra["email"], "alice@example.com");
        assert!(!session.email_verified, "no email_verified claim");
        assert_eq!(session.extra["aud"], json!(["api", "billing"]));
        // The scope is normalised to a `scp` array, as Oathkeeper does.
        assert_eq!(session.extra["scp"], json!(["read", "write"]));
        assert!(session.extra.get("scope").is_none());
        assert_eq!(idp.fetches(), 1);

        // No `sub`: an empty subject, as Oathkeeper.
        let (_, session) = run(&a, &bearer(&signer.sign(&Map::new()).unwrap()))
            .await
            .unwrap();
        assert_eq!(session.subject, "");
        assert_eq!(session.extra["scp"], json!([]));
    }

    #[tokio::test]
    async fn jwt_email_verified_is_the_claim() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({}));
        for (claim, want) in [
            (json!(true), true),
            (json!("true"), true),
            (json!(false), false),
            (json!("yes"), false),
            (json!(1), false),
        ] {
            let t = token(&signer, json!({"email_verified": claim}));
            // Twice: verified, then from the cache of verified tokens.
            for _ in 0..2 {
                let (_, session) = run(&a, &bearer(&t)).await.unwrap();
                assert_eq!(session.email_verified, want, "{claim}");
            }
        }
    }

    #[tokio::test]
    async fn verified_tokens_are_cached_until_exp_or_a_key_set_change() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({"jwks_ttl": "30s"}));
        let t = token(&signer, json!({}));
        let (_, first) = run(&a, &bearer(&t)).await.unwrap();
        let (_, second) = run(&a, &bearer(&t)).await.unwrap();
        assert!(
            Arc::ptr_eq(&first.extra, &second.extra),
            "the second request is answered from the verified-token cache"
        );
        assert_eq!(second.subject, "alice");
        // Another token is verified on its own.
        let (_, other) = run(
            &a,
            &bearer(&token(&signer, json!({"email": "b@example.com"}))),
        )
        .await
        .unwrap();
        assert_eq!(other.extra["email"], "b@example.com");

        // The IdP drops the key: once the key sets are refetched, the cached token no longer passes.
        let successor = ec_signer("successor");
        idp.serve(&[&successor]);
        clock.advance(Duration::seconds(31));
        assert_eq!(kind_of(&a, &bearer(&t)).await, ErrorKind::Unauthorized);

        // A cached token expires with its `exp`.
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({"jwks_ttl": "1h"}));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        clock.advance(Duration::seconds(299));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        clock.advance(Duration::seconds(1));
        assert_eq!(kind_of(&a, &bearer(&t)).await, ErrorKind::Unauthorized);
    }

    #[tokio::test]
    async fn jwt_is_responsible_only_for_three_part_tokens() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({}));
        for req in [
            request(&[], None),
            request(&[("Authorization", "Bearer")], None),
            request(&[("Authorization", "Bearer ")], None),
            request(&[("Authorization", "Basic YWxpY2U6c2VjcmV0")], None),
            bearer("ory_st_opaque"),
            bearer("a.b"),
            bearer("a.b.c.d"),
        ] {
            assert!(!run(&a, &req).await.unwrap().0, "{:?}", req.headers);
        }
        assert_eq!(idp.fetches(), 0, "not-responsible requests fetch nothing");

        // Three parts but garbage: responsible, and refused without fetching keys.
        for garbage in [
            "a.b.c",
            "..",
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
        ] {
            assert_eq!(
                kind_of(&a, &bearer(garbage)).await,
                ErrorKind::Unauthorized,
                "{garbage}"
            );
        }
        assert_eq!(idp.fetches(), 0);
    }

    #[tokio::test]
    async fn jwt_refuses_invalid_tokens_with_401() {
        let signer = rsa_signer();
        let ec = ec_signer("ec-1");
        let idp = FakeIdp::serving(&[&signer, &ec]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({}));
        let good = token(&signer, json!({}));

        // Tampered payload.
        let parts: Vec<&str> = good.split('.').collect();
        let other = token(&signer, json!({"sub": "mallory"}));
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            other.split('.').nth(1).unwrap(),
            parts[2]
        );
        assert_eq!(kind_of(&a, &bearer(&forged)).await, ErrorKind::Unauthorized);

        // ES256 is not allowed by default (allowed_algorithms: [RS256]).
        let es = token(&ec, json!({}));
        let err = run(&a, &bearer(&es)).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(err.reason.contains("not allowed"), "{}", err.reason);
        // Allowed when listed.
        let both = jwt(
            &idp,
            &clock,
            json!({"allowed_algorithms": ["RS256", "ES256"]}),
        );
        assert!(run(&both, &bearer(&es)).await.unwrap().0);

        // Not yet valid, then valid, then expired: the injected clock decides.
        let later = token(&signer, json!({"nbf": START.unix_timestamp() + 60}));
        assert_eq!(kind_of(&a, &bearer(&later)).await, ErrorKind::Unauthorized);
        clock.advance(Duration::seconds(60));
        assert!(run(&a, &bearer(&later)).await.unwrap().0);
        assert!(run(&a, &bearer(&good)).await.unwrap().0);
        clock.advance(Duration::seconds(240));
        let err = run(&a, &bearer(&good)).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(err.reason.contains("expired"), "{}", err.reason);
    }

    #[tokio::test]
    async fn jwks_are_cached_for_jwks_ttl() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({"jwks_ttl": "30s"}));
        let t = token(&signer, json!({}));
        for _ in 0..5 {
            assert!(run(&a, &bearer(&t)).await.unwrap().0);
        }
        assert_eq!(idp.fetches(), 1);
        clock.advance(Duration::seconds(30));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        assert_eq!(idp.fetches(), 1, "still fresh at exactly the TTL");
        clock.advance(Duration::seconds(1));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        assert_eq!(idp.fetches(), 2, "refetched after the TTL");
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        assert_eq!(idp.fetches(), 2);
    }

    #[tokio::test]
    async fn unknown_kids_refetch_at_most_once_per_jwks_max_wait() {
        let old = rsa_signer();
        let rotated = ec_signer("rotated");
        let idp = FakeIdp::serving(&[&old]);
        let clock = ManualClock::new(START);
        let a = jwt(
            &idp,
            &clock,
            json!({"allowed_algorithms": ["RS256", "ES256"], "jwks_max_wait": "1s", "jwks_ttl": "1h"}),
        );
        assert!(run(&a, &bearer(&token(&old, json!({})))).await.unwrap().0);
        assert_eq!(idp.fetches(), 1);

        // A flood of made-up kids within one second: no refetch (the first fetch was just now).
        for i in 0..20 {
            let stranger = ec_signer(&format!("made-up-{i}"));
            assert_eq!(
                kind_of(&a, &bearer(&token(&stranger, json!({})))).await,
                ErrorKind::Unauthorized
            );
        }
        assert_eq!(idp.fetches(), 1);

        // After a second: one refetch for the whole flood.
        clock.advance(Duration::milliseconds(1001));
        for i in 0..20 {
            let stranger = ec_signer(&format!("made-up-{i}"));
            let err = run(&a, &bearer(&token(&stranger, json!({}))))
                .await
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unauthorized);
            assert!(err.reason.contains("made-up"), "{}", err.reason);
        }
        assert_eq!(idp.fetches(), 2);

        // The IdP rotates its key: a token of the new key refetches (once the interval passed) and verifies.
        idp.serve(&[&old, &rotated]);
        clock.advance(Duration::seconds(2));
        assert!(
            run(&a, &bearer(&token(&rotated, json!({}))))
                .await
                .unwrap()
                .0
        );
        assert_eq!(idp.fetches(), 3);
        assert!(
            run(&a, &bearer(&token(&rotated, json!({}))))
                .await
                .unwrap()
                .0
        );
        assert!(run(&a, &bearer(&token(&old, json!({})))).await.unwrap().0);
        assert_eq!(idp.fetches(), 3);
    }

    #[tokio::test]
    async fn stale_keys_keep_working_while_the_idp_is_down() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(
            &idp,
            &clock,
            json!({"jwks_ttl": "30s", "jwks_max_wait": "5s"}),
        );
        let t = token(&signer, json!({}));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        idp.go_down();
        clock.advance(Duration::seconds(31));
        for _ in 0..10 {
            assert!(run(&a, &bearer(&t)).await.unwrap().0);
        }
        assert_eq!(
            idp.fetches(),
            2,
            "one failed refetch, then none within jwks_max_wait"
        );
        clock.advance(Duration::seconds(5));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        assert_eq!(idp.fetches(), 3);
    }

    #[tokio::test]
    async fn an_unreachable_jwks_without_cached_keys_is_a_502() {
        let idp = Arc::new(FakeIdp::default());
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({}));
        let t = token(&rsa_signer(), json!({}));
        let err = run(&a, &bearer(&t)).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadGateway);
        assert!(err.reason.contains("connection refused"), "{}", err.reason);
        assert_eq!(kind_of(&a, &bearer(&t)).await, ErrorKind::BadGateway);
        assert_eq!(idp.fetches(), 1, "no second attempt within jwks_max_wait");
        idp.serve(&[&rsa_signer()]);
        clock.advance(Duration::seconds(1));
        assert!(run(&a, &bearer(&t)).await.unwrap().0);
        assert_eq!(idp.fetches(), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({}));
        let req = bearer(&token(&signer, json!({})));
        // Cold: everyone waits for the one fetch.
        let (r1, r2, r3, r4) =
            tokio::join!(run(&a, &req), run(&a, &req), run(&a, &req), run(&a, &req));
        for r in [r1, r2, r3, r4] {
            assert!(r.unwrap().0);
        }
        assert_eq!(idp.fetches(), 1);
        // Stale: one request refetches, the others go on with the stale keys.
        clock.advance(Duration::seconds(31));
        let (r1, r2, r3) = tokio::join!(run(&a, &req), run(&a, &req), run(&a, &req));
        for r in [r1, r2, r3] {
            assert!(r.unwrap().0);
        }
        assert_eq!(idp.fetches(), 2);
    }

    #[tokio::test]
    async fn jwks_urls_may_be_files() {
        let signer = rsa_signer();
        let file = TempFile::new(&signer.public_jwks().to_string());
        let idp = Arc::new(FakeIdp::default());
        let clock = ManualClock::new(START);
        let a = jwt(&idp, &clock, json!({"jwks_urls": [file.url()]}));
        assert!(
            run(&a, &bearer(&token(&signer, json!({}))))
                .await
                .unwrap()
                .0
        );
        assert_eq!(idp.fetches(), 0);

        // Several URLs: the keys of all of them.
        let ec = ec_signer("ec-1");
        let second = TempFile::new(&ec.public_jwks().to_string());
        let a = jwt(
            &idp,
            &clock,
            json!({"jwks_urls": [file.url(), second.url()], "allowed_algorithms": ["RS256", "ES256"]}),
        );
        assert!(
            run(&a, &bearer(&token(&signer, json!({}))))
                .await
                .unwrap()
                .0
        );
        assert!(run(&a, &bearer(&token(&ec, json!({})))).await.unwrap().0);

        // A missing file is a 500 (configuration), not a 401.
        let a = jwt(
            &idp,
            &clock,
            json!({"jwks_urls": ["file:///nonexistent/portcullis/jwks.json"]}),
        );
        assert_eq!(
            kind_of(&a, &bearer(&token(&signer, json!({})))).await,
            ErrorKind::InternalServerError
        );
    }

    #[tokio::test]
    async fn audience_and_issuer_are_checked() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let check = |rule: Value, extra: Value| {
            let a = jwt(&idp, &clock, rule);
            let req = bearer(&token(&signer, extra));
            async move { run(&a, &req).await.map(|(ok, _)| ok) }
        };
        // Every target audience must be in aud.
        assert!(
            check(json!({"target_audience": ["api", "billing"]}), json!({}))
                .await
                .unwrap()
        );
        let err = check(json!({"target_audience": ["api", "admin"]}), json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(err.reason.contains("admin"), "{}", err.reason);
        // aud as a single string.
        assert!(
            check(json!({"target_audience": ["api"]}), json!({"aud": "api"}))
                .await
                .unwrap()
        );
        assert!(
            check(json!({"target_audience": ["api"]}), json!({"aud": null}))
                .await
                .is_err()
        );
        // Any trusted issuer must equal iss.
        let issuers = json!({"trusted_issuers": ["https://other/", "https://idp.test/"]});
        assert!(check(issuers.clone(), json!({})).await.unwrap());
        let err = check(issuers.clone(), json!({"iss": "https://evil/"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(check(issuers, json!({"iss": 7})).await.is_err());
    }

    #[tokio::test]
    async fn required_scopes_follow_the_scope_strategy() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let check = |strategy: &str, required: Value, extra: Value| {
            let a = jwt(
                &idp,
                &clock,
                json!({"scope_strategy": strategy, "required_scope": required}),
            );
            let req = bearer(&token(&signer, extra));
            async move {
                run(&a, &req)
                    .await
                    .map(|(ok, s)| (ok, s.extra["scp"].clone()))
            }
        };
        // From `scope` (space-separated), `scp` (array) or `scopes`.
        assert!(check("exact", json!(["read", "write"]), json!({}))
            .await
            .is_ok());
        let (_, scp) = check(
            "exact",
            json!(["orders"]),
            json!({"scp": ["orders", "users"], "scope": "x"}),
        )
        .await
        .unwrap();
        assert_eq!(scp, json!(["orders", "users"]));
        assert!(
            check(
                "exact",
                json!(["a"]),
                json!({"scope": null, "scopes": ["a"]})
            )
            .await
            .is_err(),
            "scope present first, even null"
        );
        let err = check("exact", json!(["admin"]), json!({}))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Unauthorized,
            "Oathkeeper answers 401 for a missing scope"
        );
        assert!(err.reason.contains("admin"), "{}", err.reason);

        // hierarchic: `orders` grants `orders.read`.
        let extra = json!({"scope": "orders users.read"});
        assert!(check("hierarchic", json!(["orders.read"]), extra.clone())
            .await
            .is_ok());
        assert!(check("hierarchic", json!(["users"]), extra.clone())
            .await
            .is_err());
        assert!(check("exact", json!(["orders.read"]), extra.clone())
            .await
            .is_err());
        // wildcard: `orders.*` grants `orders.read`.
        let extra = json!({"scp": ["orders.*"]});
        assert!(check("wildcard", json!(["orders.read"]), extra.clone())
            .await
            .is_ok());
        assert!(check("wildcard", json!(["orders"]), extra.clone())
            .await
            .is_err());
        // Case-insensitive strategy names; `none` ignores scopes when none are required.
        assert!(check("Exact", json!(["read"]), json!({})).await.is_ok());
        assert!(check("none", json!([]), json!({"scope": "x"}))
            .await
            .is_ok());
    }

    #[test]
    fn scope_strategies_match_fosite() {
        let h = |have: &[&str], want: &str| {
            ScopeStrategy::Hierarchic.grants(
                &have.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                want,
            )
        };
        let w = |have: &[&str], want: &str| {
            ScopeStrategy::Wildcard.grants(
                &have.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                want,
            )
        };
        assert!(!h(&[], "foo"));
        let have = [
            "foo.bar",
            "bar.baz",
            "baz.baz.1",
            "baz.baz.2",
            "baz.baz.baz",
        ];
        assert!(h(&have, "foo.bar.baz"));
        assert!(h(&have, "baz.baz.baz"));
        assert!(h(&have, "foo.bar"));
        assert!(h(&have, "bar.baz.zad"));
        assert!(!h(&have, "foo"));
        assert!(!h(&have, "bar"));
        assert!(!h(&have, "baz"));
        let have = ["hydra", "openid", "offline"];
        assert!(h(&have, "hydra"));
        assert!(h(&have, "hydra.bar"));
        assert!(h(&have, "offline.baz.bar.baz"));
        assert!(!h(&have, "hydrax"));
        assert!(!h(&have, "foo.bar"));

        assert!(!w(&["*"], ""));
        assert!(w(&["*"], "asdf"));
        assert!(w(&["*"], "asdf.asdf"));
        assert!(!w(&["foo"], "*"));
        assert!(!w(&["foo"], "foo.*"));
        assert!(w(&["foo"], "foo"));
        assert!(!w(&["foo*"], "foo"));
        assert!(!w(&["foo*"], "fooa"));
        assert!(w(&["foo.*"], "foo.bar"));
        assert!(w(&["foo.*"], "foo.bar.baz"));
        assert!(!w(&["foo.*"], "foo"));
        assert!(w(&["foo.*.baz"], "foo.bar.baz"));
        assert!(!w(&["foo.*.baz"], "foo..baz"));
        assert!(!w(&["foo.*.baz"], "foo.bar.bar"));
        assert!(w(&["foo.*.bar.*"], "foo.baz.bar.bar.bar"));
        assert!(!w(&["foo.*.bar.*"], "foo.baz.baz.bar.baz"));
        assert!(!w(&["foo.*.bar.*"], "foo.baz.bar"));

        assert!(ScopeStrategy::Exact.grants(&["a.b".to_string()], "a.b"));
        assert!(!ScopeStrategy::Exact.grants(&["a".to_string()], "a.b"));
        assert!(!ScopeStrategy::None.grants(&["a".to_string()], "a"));
    }

    #[tokio::test]
    async fn the_token_can_come_from_a_header_a_query_parameter_or_a_cookie() {
        let signer = rsa_signer();
        let idp = FakeIdp::serving(&[&signer]);
        let clock = ManualClock::new(START);
        let t = token(&signer, json!({}));

        let a = jwt(
            &idp,
            &clock,
            json!({"token_from": {"header": "X-Api-Token"}}),
        );
        assert!(
            run(&a, &request(&[("X-Api-Token", &t)], None))
                .await
                .unwrap()
                .0
        );
        assert!(
            !run(&a, &bearer(&t)).await.unwrap().0,
            "only the configured location"
        );

        let a = jwt(
            &idp,
            &clock,
            json!({"token_from": {"header": "Authorization"}}),
        );
        assert!(
            run(&a, &bearer(&t)).await.unwrap().0,
            "Authorization keeps the Bearer scheme"
        );

        let a = jwt(
            &idp,
            &clock,
            json!({"token_from": {"query_parameter": "access_token"}}),
        );
        assert!(
            run(&a, &request(&[], Some(&format!("x=1&access_token={t}"))))
                .await
                .unwrap()
                .0
        );
        assert!(!run(&a, &request(&[], Some("x=1"))).await.unwrap().0);

        let a = jwt(&idp, &clock, json!({"token_from": {"cookie": "jwt"}}));
        assert!(
            run(&a, &request(&[("Cookie", &format!("a=b; jwt={t}"))], None))
                .await
                .unwrap()
                .0
        );
        assert!(
            !run(&a, &request(&[("Cookie", "a=b")], None))
                .await
                .unwrap()
                .0
        );
    }

    #[test]
    fn invalid_jwt_configs_are_refused_at_build_time() {
        let idp = Arc::new(FakeIdp::default());
        let clock = ManualClock::new(START);
        let err = |rule: Value| match try_jwt(&idp, &clock, rule) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
        assert!(err(json!({"jwks_urls": []})).contains("jwks_urls is required"));
        assert!(err(json!({"jwks_urls": ["s3://bucket/jwks.json"]})).contains("not supported"));
        assert!(err(json!({"jwks_urls": ["/etc/jwks.json"]})).contains("not supported"));
        assert!(err(json!({"jwks_urls": ["https://"]})).contains("not a URL"));
        for alg in ["none", "HS256", "PS256", "rs256"] {
            assert!(
                err(json!({"allowed_algorithms": [alg]})).contains("not supported"),
                "{alg}"
            );
        }
        assert!(err(json!({"required_scope": ["read"]})).contains("scope_strategy"));
        assert!(err(json!({"scope_strategy": "regexp"})).contains("unknown scope_strategy"));
        assert!(err(json!({"token_from": {"header": "A", "cookie": "b"}})).contains("only one"));
        assert!(err(json!({"token_from": {"body": "a"}})).contains("unknown field"));
        assert!(err(json!({"jwks_ttl": "30"})).contains("jwks_ttl"));
        assert!(err(json!({"jwks_max_wait": "-1s"})).contains("jwks_max_wait"));
        assert!(err(json!({"jwks_urlz": []})).contains("unknown field"));
    }

    #[tokio::test]
    async fn disabled_handlers_fail_with_500() {
        let idp = Arc::new(FakeIdp::default());
        let clock = ManualClock::new(START);
        let mut config = pipeline_config(json!({"jwks_urls": [JWKS_URL]}), json!({}));
        config.authenticators.get_mut("jwt").unwrap().enabled = false;
        config.mutators.get_mut("id_token").unwrap().enabled = false;
        let a = build_authenticator(
            None,
            &config,
            &services(&idp, &clock),
            Arc::new(clock.clone()),
        )
        .unwrap();
        assert_eq!(
            kind_of(&a, &bearer("a.b.c")).await,
            ErrorKind::InternalServerError
        );
        let m = build_id_token(None, &config, Arc::new(clock.clone())).unwrap();
        let err = m
            .mutate(&request(&[], None), &mut AuthSession::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InternalServerError);
        assert_eq!(
            id_token_public_keys(&config, [None]).unwrap(),
            json!({"keys": []})
        );
        // Absent from the config altogether: disabled too.
        let none = PipelineConfig::default();
        let a = build_authenticator(
            None,
            &none,
            &services(&idp, &clock),
            Arc::new(clock.clone()),
        )
        .unwrap();
        assert_eq!(
            kind_of(&a, &bearer("a.b.c")).await,
            ErrorKind::InternalServerError
        );
    }

    fn id_token(
        jwks: &TempFile,
        rule: Value,
        clock: &ManualClock,
    ) -> Result<Arc<dyn Mutator>, String> {
        let config = pipeline_config(
            json!({}),
            json!({"issuer_url": "https://portcullis.test/", "jwks_url": jwks.url()}),
        );
        build_id_token(Some(&rule), &config, Arc::new(clock.clone()))
    }

    fn session(subject: &str) -> AuthSession {
        AuthSession {
            subject: subject.into(),
            extra: Arc::new(json!({"email": "alice@example.com"})),
            header: vec![("Authorization".into(), "Bearer client-sent".into())],
            captures: Vec::new(),
            email_verified: false,
        }
    }

    async fn mint(m: &Arc<dyn Mutator>, subject: &str) -> String {
        let mut s = session(subject);
        m.mutate(&request(&[], None), &mut s).await.unwrap();
        let auth: Vec<&(String, String)> = s
            .header
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .collect();
        assert_eq!(auth.len(), 1, "replaces any Authorization");
        auth[0].1.strip_prefix("Bearer ").unwrap().to_owned()
    }

    fn public_keys(jwks: &TempFile) -> PublicKeySet {
        let config = pipeline_config(
            json!({}),
            json!({"issuer_url": "x", "jwks_url": jwks.url()}),
        );
        let doc = id_token_public_keys(&config, []).unwrap();
        PublicKeySet::from_jwks(doc.to_string().as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn id_token_mints_a_verifiable_token_whose_reserved_claims_win() {
        let jwks = TempFile::new(&private_jwks(Algorithm::Es256, "idt-1").to_string());
        let clock = ManualClock::new(START);
        let m = id_token(
            &jwks,
            json!({"ttl": "5m", "claims": r#"{"aud": ["orders"], "iss": "evil", "sub": "evil", "exp": 1, "jti": "x", "nested": {"a": 1} }"#}),
            &clock,
        )
        .unwrap();
        assert_eq!(m.sets_headers(), vec!["Authorization".to_owned()]);
        let t = mint(&m, "alice").await;
        let c = jws::verify(&t, &public_keys(&jwks), &["ES256"], START, Duration::ZERO)
            .unwrap()
            .0;
        let now = START.unix_timestamp();
        assert_eq!(c["iss"], "https://portcullis.test/");
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["aud"], json!(["orders"]));
        assert_eq!(c["nested"], json!({"a": 1}));
        assert_eq!(c["iat"], now);
        assert_eq!(c["nbf"], now);
        assert_eq!(c["exp"], now + 300);
        assert_eq!(c["jti"].as_str().unwrap().len(), 36);
        assert_eq!(
            jws::decode_header(&t).unwrap().kid.as_deref(),
            Some("idt-1")
        );

        // Default ttl: 15 minutes; no claims template: only the reserved claims.
        let m = id_token(&jwks, json!({}), &clock).unwrap();
        let c = jws::verify(
            &mint(&m, "bob").await,
            &public_keys(&jwks),
            &["ES256"],
            START,
            Duration::ZERO,
        )
        .unwrap()
        .0;
        assert_eq!(c["exp"], now + 900);
        let mut names: Vec<&str> = c.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["exp", "iat", "iss", "jti", "nbf", "sub"]);
    }

    #[tokio::test]
    async fn id_tokens_are_cached_until_ten_percent_of_the_ttl_remains() {
        let jwks = TempFile::new(&private_jwks(Algorithm::EdDsa, "idt-ed").to_string());
        let clock = ManualClock::new(START);
        let m = id_token(
            &jwks,
            json!({"ttl": "10m", "claims": r#"{"aud": ["orders"]}"#}),
            &clock,
        )
        .unwrap();
        let first = mint(&m, "alice").await;
        let bob = mint(&m, "bob").await;
        assert_ne!(first, bob, "per subject");
        clock.advance(Duration::seconds(540));
        assert_eq!(
            mint(&m, "alice").await,
            first,
            "60s of 600s left: still cached"
        );
        clock.advance(Duration::seconds(1));
        let second = mint(&m, "alice").await;
        assert_ne!(second, first, "less than 10% left: a new token");
        let c = jws::verify(
            &second,
            &public_keys(&jwks),
            &["EdDSA"],
            clock.now(),
            Duration::ZERO,
        )
        .unwrap()
        .0;
        assert_eq!(c["iat"], START.unix_timestamp() + 541);
        assert_eq!(mint(&m, "alice").await, second);
        // Every mutator instance has its own cache, and a subject in the template changes the rendering.
        let per_subject = id_token(
            &jwks,
            json!({"claims": r#"{"name": "{{ print .Subject }}"}"#}),
            &clock,
        )
        .unwrap();
        let t = mint(&per_subject, "carol").await;
        let c = jws::verify(
            &t,
            &public_keys(&jwks),
            &["EdDSA"],
            clock.now(),
            Duration::ZERO,
        )
        .unwrap()
        .0;
        assert_eq!(c["name"], "carol");
    }

    #[tokio::test]
    async fn id_token_claims_template_sees_the_session() {
        let jwks = TempFile::new(&private_jwks(Algorithm::Es256, "k").to_string());
        let clock = ManualClock::new(START);
        // Oathkeeper's documented example; text after the first JSON value is ignored, as Go's decoder does.
        let m = id_token(
            &jwks,
            json!({"claims": r#"{"aud": ["my-api"], "session": {{ .Extra | toJson }}, "path": "{{ .MatchContext.URL.Path }}"} trailing"#}),
            &clock,
        )
        .unwrap();
        let t = mint(&m, "alice").await;
        let c = jws::verify(&t, &public_keys(&jwks), &["ES256"], START, Duration::ZERO)
            .unwrap()
            .0;
        assert_eq!(c["session"], json!({"email": "alice@example.com"}));
        assert_eq!(c["aud"], json!(["my-api"]));
        assert_eq!(c["path"], "/orders/7");
    }

    #[tokio::test]
    async fn id_token_claims_must_render_a_json_object() {
        let jwks = TempFile::new(&private_jwks(Algorithm::Es256, "k").to_string());
        let clock = ManualClock::new(START);
        for claims in [
            "[1, 2]",
            "not json",
            "\"string\"",
            "{{ if .Extra.nothing }}{}{{ end }}",
        ] {
            let m = id_token(&jwks, json!({ "claims": claims }), &clock).unwrap();
            let err = m
                .mutate(&request(&[], None), &mut session("alice"))
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InternalServerError, "{claims}");
        }
    }

    #[test]
    fn invalid_id_token_configs_are_refused_at_build_time() {
        let jwks = TempFile::new(&private_jwks(Algorithm::Es256, "k").to_string());
        let public_only = TempFile::new(&ec_signer("k").public_jwks().to_string());
        let clock = ManualClock::new(START);
        let err = |config: Value| {
            let c = pipeline_config(json!({}), config);
            match build_id_token(None, &c, Arc::new(clock.clone())) {
                Ok(_) => panic!("accepted"),
                Err(e) => e,
            }
        };
        assert!(err(json!({"jwks_url": jwks.url()})).contains("issuer_url is required"));
        assert!(err(json!({"issuer_url": "https://i/"})).contains("jwks_url is required"));
        let base = |extra: Value| {
            let mut c = json!({"issuer_url": "https://i/", "jwks_url": jwks.url()});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        };
        assert!(err(base(json!({"ttl": "15"}))).contains("ttl"));
        assert!(err(base(json!({"ttl": "500ms"}))).contains("at least 1s"));
        assert!(err(base(json!({"claims": {"aud": "x"}}))).contains("invalid config"));
        assert!(err(base(json!({"jwks_url": public_only.url()}))).contains("no usable signing key"));
        assert!(err(base(json!({"jwks_url": "https://keys.test/jwks.json"}))).contains("jwks_url"));
        assert!(
            err(base(json!({"jwks_url": "file:///nonexistent/jwks.json"}))).contains("jwks_url")
        );
        assert!(err(base(json!({"tll": "1m"}))).contains("unknown field"));
        assert!(id_token(&jwks, json!({"ttl": "1h30m"}), &clock).is_ok());
    }

    #[test]
    fn the_jwks_endpoint_lists_the_public_keys_of_every_id_token_config() {
        let global = TempFile::new(&private_jwks(Algorithm::Es256, "global").to_string());
        let rule = TempFile::new(&private_jwks(Algorithm::EdDsa, "rule").to_string());
        let config = pipeline_config(
            json!({}),
            json!({"issuer_url": "https://i/", "jwks_url": global.url()}),
        );
        let rule_config = json!({"jwks_url": rule.url()});
        let other_rule = json!({"ttl": "1m"});
        let doc =
            id_token_public_keys(&config, [Some(&rule_config), None, Some(&other_rule)]).unwrap();
        let keys = doc["keys"].as_array().unwrap();
        let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["global", "rule"], "listed once each");
        for k in keys {
            assert!(k.get("d").is_none(), "no private material");
            assert_eq!(k["use"], "sig");
        }
        // Without a global jwks_url only the rules' keys.
        let config = pipeline_config(json!({}), json!({"issuer_url": "https://i/"}));
        let doc = id_token_public_keys(&config, [Some(&rule_config)]).unwrap();
        assert_eq!(doc["keys"].as_array().unwrap().len(), 1);
        assert!(
            id_token_public_keys(&config, [None]).is_err(),
            "a rule without any jwks_url"
        );
    }

    /// Through `Pipeline::build`: needs `jwt` in `authn::build` and `id_token` in `mutate::build`.
    #[tokio::test]
    async fn a_rule_exchanges_the_client_jwt_for_an_id_token() {
        use super::super::Pipeline;
        let client = rsa_signer();
        let idp = FakeIdp::serving(&[&client]);
        let clock = ManualClock::new(START);
        let jwks = TempFile::new(&private_jwks(Algorithm::Es256, "proxy").to_string());
        let mut config = pipeline_config(
            json!({"jwks_urls": [JWKS_URL]}),
            json!({"issuer_url": "https://portcullis.test/", "jwks_url": jwks.url()}),
        );
        config
            .authorizers
            .insert("allow".into(), enabled(json!({})));
        let rule: crate::Rule = serde_json::from_value(json!({
            "id": "api",
            "match": {"url": "https://app.test/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "jwt", "config": {"required_scope": ["read"], "scope_strategy": "exact"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "id_token", "config": {"claims": "{\"email\": \"{{ print .Extra.email }}\"}"}}],
        }))
        .unwrap();
        let pipeline = Pipeline::build(&rule, &config, &services(&idp, &clock)).unwrap();
        assert!(pipeline
            .stripped_headers()
            .contains(&"authorization".to_owned()));
        let granted = pipeline
            .run(&bearer(&token(&client, json!({}))), Vec::new())
            .await
            .unwrap();
        assert_eq!(granted.session.subject, "alice");
        let (_, value) = granted
            .session
            .header
            .iter()
            .find(|(k, _)| k == "Authorization")
            .unwrap();
        let minted = value.strip_prefix("Bearer ").unwrap();
        let c = jws::verify(
            minted,
            &public_keys(&jwks),
            &["ES256"],
            START,
            Duration::ZERO,
        )
        .unwrap()
        .0;
        assert_eq!(c["iss"], "https://portcullis.test/");
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["email"], "alice@example.com");
        // The client's token lacks the required scope: 401.
        let err = pipeline
            .run(
                &bearer(&token(&client, json!({"scope": "write"}))),
                Vec::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn go_durations() {
        let d = |s: &str| go_duration("k", s);
        assert_eq!(d("1s").unwrap(), Duration::SECOND);
        assert_eq!(d("15m").unwrap(), Duration::minutes(15));
        assert_eq!(d("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(d("250ms").unwrap(), Duration::milliseconds(250));
        assert_eq!(d("1.5s").unwrap(), Duration::milliseconds(1500));
        assert_eq!(d("0").unwrap(), Duration::ZERO);
        for bad in ["", "1", "-1s", "1d", "s", "1e400h", "1..2s"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }
}
