//! The typed configuration tree. Every struct rejects unknown keys and has a default for every key.

use super::ConfigError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Config format version (Kratos files carry one; informational).
    pub version: Option<String>,
    /// Database: `sqlite://…`, `postgres://…` or `memory`.
    pub dsn: Option<Secret>,
    /// Listeners.
    pub serve: Serve,
    /// Identity schemas.
    pub identity: IdentityConfig,
    /// Self-service flows and methods.
    pub selfservice: SelfService,
    /// Sessions.
    pub session: SessionConfig,
    /// Cookie defaults.
    pub cookies: Cookies,
    /// Secrets for signing and encryption.
    pub secrets: Secrets,
    /// Password hashing.
    pub hashers: Hashers,
    /// Encryption of stored tokens.
    pub ciphers: Ciphers,
    /// E-mail and SMS delivery.
    pub courier: Courier,
    /// Logging.
    pub log: Log,
    /// Kratos feature flags.
    pub feature_flags: FeatureFlags,
    /// The session cache.
    pub cache: CacheConfig,
    /// The built-in login UI.
    pub ui: UiConfig,
    /// Abuse protection.
    pub security: SecurityConfig,
    /// The edge proxy's default upstream.
    pub proxy: ProxyConfig,
    /// Oathkeeper access rules.
    pub access_rules: AccessRules,
    /// Oathkeeper authenticators.
    pub authenticators: Authenticators,
    /// Oathkeeper authorizers.
    pub authorizers: Authorizers,
    /// Oathkeeper mutators.
    pub mutators: Mutators,
    /// Oathkeeper error handlers.
    pub errors: ErrorHandlers,
    /// Set by `--dev`, never by a file.
    #[serde(skip)]
    pub dev: bool,
    /// Kratos' `tracing`: OpenTelemetry span export over OTLP/HTTP with `provider: otel`.
    pub tracing: Tracing,
    /// Kratos' `oauth2_provider` (Hydra login/consent; accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_provider: Option<Value>,
    /// Kratos' `clients` (outgoing HTTP settings; accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Value>,
    /// Kratos' `database` (cleanup settings; accepted and ignored: expired flows are swept on their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Value>,
    /// Kratos' `organizations` (Ory Network; accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Value>,
}

/// A secret string: shown as `[redacted]` in `Debug` and when serialized.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// A Go-style duration (`500ms`, `1h30m`, `24h`, `1.5h`). Plain integers are seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// From seconds.
    pub const fn secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }
    /// From milliseconds.
    pub const fn millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }
    /// As `time::Duration` (saturating).
    pub fn as_time(&self) -> time::Duration {
        time::Duration::try_from(self.0).unwrap_or(time::Duration::MAX)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => parse_duration(&s)
                .map(Self)
                .map_err(serde::de::Error::custom),
            // As for strings, nothing longer than Go's largest duration (about 292 years): every `now + duration`
            // then stays a valid timestamp.
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| serde::de::Error::custom("a duration must not be negative"))
                .map(Self::secs)
                .and_then(|d| {
                    if d.0 > identity::clock::MAX_GO_DURATION {
                        Err(serde::de::Error::custom(format!(
                            "{n} seconds is longer than the largest duration, 2562047h47m16.854775807s"
                        )))
                    } else {
                        Ok(d)
                    }
                }),
            other => Err(serde::de::Error::custom(format!(
                "expected a duration like \"1h30m\", found {}",
                super::type_name(&other)
            ))),
        }
    }
}

fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses a Go duration (`30s`, `1h30m`, `250ms`; `0` alone).
pub use identity::clock::parse_go_duration as parse_duration;

/// A byte size written as Kratos does (`64MB`, `1GB`; binary units).
#[derive(Clone, PartialEq, Eq)]
pub struct ByteSize(pub String);

impl ByteSize {
    /// Bytes.
    pub fn bytes(&self) -> Result<u64, String> {
        identity::hash::parse_byte_size(&self.0).map_err(|e| e.to_string())
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a size like \"128MB\", found {}",
                    super::type_name(&other)
                )))
            }
        };
        identity::hash::parse_byte_size(&v).map_err(serde::de::Error::custom)?;
        Ok(Self(v))
    }
}

/// `serve.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Serve {
    /// The Kratos public API.
    #[serde(deserialize_with = "public_listener")]
    pub public: Listener,
    /// The admin API.
    #[serde(deserialize_with = "admin_listener")]
    pub admin: Listener,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// The edge proxy (Pingora).
    pub proxy: ProxyListener,
    /// The decisions API, rules and JWKS (Oathkeeper's api listener).
    #[serde(deserialize_with = "api_listener")]
    pub api: Listener,
}

// A listener section that names some keys keeps that listener's own defaults for the others
// (`serve.admin: {port: 5000}` stays on loopback), not those of a generic listener.
fn public_listener<'de, D: Deserializer<'de>>(d: D) -> Result<Listener, D::Error> {
    Listener::over(d, Listener::with_port(4433), "serve.public")
}

fn admin_listener<'de, D: Deserializer<'de>>(d: D) -> Result<Listener, D::Error> {
    Listener::over(d, Listener::loopback(4434), "serve.admin")
}

fn api_listener<'de, D: Deserializer<'de>>(d: D) -> Result<Listener, D::Error> {
    Listener::over(d, Listener::api(), "serve.api")
}

impl Default for Serve {
    fn default() -> Self {
        Self {
            public: Listener::with_port(4433),
            admin: Listener::loopback(4434),
            shutdown_timeout: Duration::secs(15),
            proxy: ProxyListener::default(),
            api: Listener::api(),
        }
    }
}

/// `serve.proxy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyListener {
    /// Interface to bind (empty: all interfaces).
    pub host: String,
    /// TCP port (0 picks a free one).
    pub port: u16,
    /// Turn the proxy off.
    pub disabled: bool,
    /// Peers whose `X-Forwarded-*` headers are believed (CIDRs or addresses).
    pub trusted_proxies: Vec<String>,
    /// Oathkeeper's switch: believe `X-Forwarded-*` from every peer. Prefer `trusted_proxies`.
    pub trust_forwarded_headers: bool,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Upstream read timeout (between bytes).
    pub read_timeout: Duration,
    /// Largest request head (target plus header fields) in bytes; larger requests get 431.
    pub max_header_bytes: usize,
}

impl Default for ProxyListener {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 4455,
            disabled: false,
            trusted_proxies: Vec::new(),
            trust_forwarded_headers: false,
            connect_timeout: Duration::secs(5),
            read_timeout: Duration::secs(60),
            max_header_bytes: 32 * 1024,
        }
    }
}

/// One listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listener {
    /// Interface to bind (empty: all interfaces). Admin and api default to `127.0.0.1`.
    pub host: String,
    /// TCP port (0 picks a free one).
    pub port: u16,
    /// The URL clients use to reach this listener (derived from host and port when unset).
    pub base_url: Option<String>,
    /// Cross-origin requests (public listener).
    pub cors: Cors,
    /// Request logging.
    pub request_log: RequestLog,
    /// Turn the listener off.
    pub disabled: bool,
    /// Oathkeeper's `timeout.{read,write,idle}` for client connections.
    pub timeout: ListenerTimeout,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Peers (CIDRs or addresses) whose forwarding headers are believed: their `X-Forwarded-For` gives the
    /// client address (its right-most entry that is not itself a trusted proxy); our own edge is recognised
    /// without being listed. On `serve.api` they are also the proxies whose `X-Forwarded-*` /
    /// `X-Original-URL/-Method` describe the request that `/decisions` judges; any other caller is judged on
    /// its own request line (default: loopback, for a proxy on the same host).
    pub trusted_proxies: Vec<String>,
}

impl Listener {
    fn with_port(port: u16) -> Self {
        Self {
            host: String::new(),
            port,
            base_url: None,
            cors: Cors::default(),
            request_log: RequestLog::default(),
            disabled: false,
            timeout: ListenerTimeout::default(),
            max_connections: 4096,
            trusted_proxies: Vec::new(),
        }
    }

    fn loopback(port: u16) -> Self {
        Self {
            host: "127.0.0.1".into(),
            ..Self::with_port(port)
        }
    }

    fn api() -> Self {
        Self {
            trusted_proxies: vec!["127.0.0.0/8".into(), "::1/128".into()],
            ..Self::loopback(4456)
        }
    }

    /// The section in `d` laid over `base`; errors name the key (`serve.admin.port`).
    fn over<'de, D: Deserializer<'de>>(d: D, base: Self, name: &str) -> Result<Self, D::Error> {
        let over = serde_json::Value::deserialize(d)?;
        let mut tree = serde_json::to_value(base).map_err(serde::de::Error::custom)?;
        super::merge(&mut tree, over);
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            serde::de::Error::custom(format!("{name}.{key}: {}", e.into_inner()))
        })
    }
}

impl Default for Listener {
    fn default() -> Self {
        Self::with_port(0)
    }
}

/// `serve.{public,admin,api}.timeout`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerTimeout {
    /// The request head must arrive within this (also the wait for the next request on a kept-alive
    /// connection). The edge closes a half-sent head after 60 s too.
    pub read: Duration,
    /// The request must be answered (body read and handler done) within this, else 503.
    pub write: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle: Duration,
}

impl Default for ListenerTimeout {
    fn default() -> Self {
        Self {
            read: Duration::secs(60),
            write: Duration::secs(120),
            idle: Duration::secs(120),
        }
    }
}

/// `serve.public.cors`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// Enable CORS.
    pub enabled: bool,
    /// Allowed origins (`*` and `https://*.example.com` wildcards).
    pub allowed_origins: Vec<String>,
    /// Allowed methods.
    pub allowed_methods: Vec<String>,
    /// Allowed request headers.
    pub allowed_headers: Vec<String>,
    /// Headers exposed to scripts.
    pub exposed_headers: Vec<String>,
    /// Allow credentials.
    pub allow_credentials: bool,
    /// Preflight cache seconds.
    pub max_age: u64,
    /// Debug CORS decisions.
    pub debug: bool,
}

impl Default for Cors {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect();
        Self {
            enabled: false,
            allowed_origins: s(&["*"]),
            allowed_methods: s(&["POST", "GET", "PUT", "PATCH", "DELETE"]),
            allowed_headers: s(&[
                "Authorization",
                "Content-Type",
                "Max-Age",
                "X-Session-Token",
                "X-XSRF-TOKEN",
                "X-CSRF-TOKEN",
            ]),
            exposed_headers: s(&["Content-Type"]),
            allow_credentials: true,
            max_age: 0,
            debug: false,
        }
    }
}

/// `serve.*.request_log`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLog {
    /// Do not log health checks.
    pub disable_for_health: bool,
}

/// `identity.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The schema new identities get when none is named.
    pub default_schema_id: String,
    /// Available schemas.
    pub schemas: Vec<SchemaEntry>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            default_schema_id: "default".into(),
            schemas: Vec::new(),
        }
    }
}

/// One identity schema: `url` is `file://…`, `base64://…` or inline JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchemaEntry {
    /// Schema id.
    pub id: String,
    /// Where the schema is.
    pub url: String,
}

/// `selfservice.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfService {
    /// Where browsers go after a flow when nothing else is said.
    pub default_browser_return_url: Option<String>,
    /// Where `return_to` may point.
    pub allowed_return_urls: Vec<String>,
    /// Per-flow settings.
    pub flows: Flows,
    /// Per-method settings.
    pub methods: Methods,
}

/// `selfservice.flows.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flows {
    /// Login.
    pub login: FlowConfig,
    /// Registration.
    pub registration: FlowConfig,
    /// Settings.
    pub settings: FlowConfig,
    /// Account recovery.
    pub recovery: FlowConfig,
    /// Address verification.
    pub verification: FlowConfig,
    /// Logout.
    pub logout: LogoutFlow,
    /// Error page.
    pub error: ErrorFlow,
}

/// Settings every flow shares; keys a flow kind does not use are accepted and ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Whether the flow is on (registration, recovery, verification).
    pub enabled: Option<bool>,
    /// The page that renders the flow.
    pub ui_url: Option<String>,
    /// How long a flow lives.
    pub lifespan: Duration,
    /// `unified` or `identifier_first` (login); `profile_first` or `unified` (registration).
    pub style: Option<String>,
    /// Registration: one-step legacy form.
    pub enable_legacy_one_step: bool,
    /// Registration: hint existing credentials on duplicates.
    pub login_hints: bool,
    /// Settings: how old a session may be for privileged changes.
    pub privileged_session_max_age: Option<Duration>,
    /// Settings: required AAL.
    pub required_aal: Option<String>,
    /// Recovery/verification: `code` or `link`.
    #[serde(rename = "use")]
    pub use_method: Option<String>,
    /// Recovery/verification: send "invalid" messages to unknown addresses.
    pub notify_unknown_recipients: bool,
    /// Hooks before the flow starts.
    pub before: BeforeHooks,
    /// Hooks after the flow succeeds.
    pub after: AfterHooks,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            ui_url: None,
            lifespan: Duration::secs(3600),
            style: None,
            enable_legacy_one_step: false,
            login_hints: false,
            privileged_session_max_age: None,
            required_aal: None,
            use_method: None,
            notify_unknown_recipients: false,
            before: BeforeHooks::default(),
            after: AfterHooks::default(),
        }
    }
}

/// A hook: `session`, `web_hook`, `revoke_active_sessions`, `require_verified_address`, `show_verification_ui`,
/// `verification`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// Hook name.
    pub hook: String,
    /// Hook-specific config.
    #[serde(default)]
    pub config: Option<Value>,
}

/// `…before`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BeforeHooks {
    /// Hooks.
    pub hooks: Vec<Hook>,
}

/// `…after` with optional per-method overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfterHooks {
    /// Where browsers go afterwards.
    pub default_browser_return_url: Option<String>,
    /// Hooks for every method.
    pub hooks: Vec<Hook>,
    /// Password method.
    pub password: Option<MethodAfter>,
    /// OIDC method.
    pub oidc: Option<MethodAfter>,
    /// SAML method.
    pub saml: Option<MethodAfter>,
    /// Code method.
    pub code: Option<MethodAfter>,
    /// Link method.
    pub link: Option<MethodAfter>,
    /// WebAuthn method.
    pub webauthn: Option<MethodAfter>,
    /// Passkey method.
    pub passkey: Option<MethodAfter>,
    /// TOTP method.
    pub totp: Option<MethodAfter>,
    /// Lookup secret method.
    pub lookup_secret: Option<MethodAfter>,
    /// Profile method.
    pub profile: Option<MethodAfter>,
}

/// `…after.<method>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodAfter {
    /// Where browsers go afterwards.
    pub default_browser_return_url: Option<String>,
    /// Hooks.
    pub hooks: Vec<Hook>,
}

/// `selfservice.flows.logout`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutFlow {
    /// After logout.
    pub after: MethodAfter,
}

/// `selfservice.flows.error`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorFlow {
    /// The error page.
    pub ui_url: Option<String>,
}

/// `selfservice.methods.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Methods {
    /// Passwords.
    pub password: MethodOn<PasswordConfig>,
    /// Profile updates.
    pub profile: MethodOn<Value>,
    /// One-time codes.
    pub code: CodeMethod,
    /// Magic links.
    pub link: Method<LinkConfig>,
    /// TOTP.
    pub totp: Method<Value>,
    /// Backup codes.
    pub lookup_secret: Method<Value>,
    /// WebAuthn.
    pub webauthn: Method<Value>,
    /// Passkeys.
    pub passkey: Method<Value>,
    /// Social sign-in.
    pub oidc: Method<Value>,
    /// SAML.
    pub saml: Method<Value>,
}

impl Default for Methods {
    fn default() -> Self {
        let off = || Method {
            enabled: false,
            config: Value::Null,
        };
        Self {
            password: MethodOn::default(),
            profile: MethodOn {
                enabled: true,
                config: Value::Null,
            },
            code: CodeMethod::default(),
            link: Method {
                enabled: false,
                config: LinkConfig::default(),
            },
            totp: off(),
            lookup_secret: off(),
            webauthn: off(),
            passkey: off(),
            oidc: off(),
            saml: off(),
        }
    }
}

/// A method that is on unless switched off (`password`, `profile`): setting only its `config` keeps it on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodOn<C> {
    /// Whether the method is on.
    pub enabled: bool,
    /// Method config.
    pub config: C,
}

impl<C: Default> Default for MethodOn<C> {
    fn default() -> Self {
        Self {
            enabled: true,
            config: C::default(),
        }
    }
}

/// A method switch with its config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Method<C> {
    /// Whether the method is on.
    pub enabled: bool,
    /// Method config.
    pub config: C,
}

/// `selfservice.methods.code`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeMethod {
    /// Whether the method is on (recovery/verification codes).
    pub enabled: bool,
    /// Passwordless login by code.
    pub passwordless_enabled: bool,
    /// Code as a second factor.
    pub mfa_enabled: bool,
    /// Fall back to sending a code to an address without a code credential.
    pub missing_credential_fallback_enabled: bool,
    /// Code settings.
    pub config: CodeConfig,
}

impl Default for CodeMethod {
    fn default() -> Self {
        Self {
            enabled: true,
            passwordless_enabled: false,
            mfa_enabled: false,
            missing_credential_fallback_enabled: false,
            config: CodeConfig::default(),
        }
    }
}

/// `selfservice.methods.code.config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    /// Code lifespan.
    pub lifespan: Duration,
    /// Wrong submissions allowed per flow.
    pub max_submissions: u32,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::secs(3600),
            max_submissions: 5,
        }
    }
}

/// `selfservice.methods.link.config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// Link lifespan.
    pub lifespan: Duration,
    /// Base URL of links.
    pub base_url: Option<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::secs(3600),
            base_url: None,
        }
    }
}

/// `selfservice.methods.password.config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Minimum length in bytes.
    pub min_password_length: u32,
    /// Maximum length in bytes (bcrypt cannot take more than 72).
    pub max_password_length: u32,
    /// Reject passwords too similar to the identifier.
    pub identifier_similarity_check_enabled: bool,
    /// Check the Have I Been Pwned range API.
    pub haveibeenpwned_enabled: bool,
    /// Host of the range API.
    pub haveibeenpwned_host: String,
    /// Breaches tolerated.
    pub max_breaches: u32,
    /// Accept passwords when the range API cannot be reached.
    pub ignore_network_errors: bool,
    /// Password migration hook.
    pub migrate_hook: Option<Value>,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_password_length: 8,
            max_password_length: 1024,
            identifier_similarity_check_enabled: true,
            haveibeenpwned_enabled: true,
            haveibeenpwned_host: "api.pwnedpasswords.com".into(),
            max_breaches: 0,
            ignore_network_errors: true,
            migrate_hook: None,
        }
    }
}

/// `session.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Session lifetime.
    pub lifespan: Duration,
    /// Admin extend only acts within this window before expiry (default: the lifespan).
    pub earliest_possible_extend: Option<Duration>,
    /// The session cookie.
    pub cookie: SessionCookie,
    /// `/sessions/whoami`.
    pub whoami: Whoami,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::secs(24 * 3600),
            earliest_possible_extend: None,
            cookie: SessionCookie::default(),
            whoami: Whoami::default(),
        }
    }
}

/// `session.cookie.*` (unset keys fall back to `cookies.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionCookie {
    /// Cookie name.
    pub name: String,
    /// Domain.
    pub domain: Option<String>,
    /// Path.
    pub path: Option<String>,
    /// `Lax`, `Strict` or `None`.
    pub same_site: Option<String>,
    /// `Secure` attribute (default: on unless `--dev`).
    pub secure: Option<bool>,
    /// Persist across browser restarts (`Max-Age`).
    pub persistent: bool,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self {
            name: "ory_kratos_session".into(),
            domain: None,
            path: None,
            same_site: None,
            secure: None,
            persistent: true,
        }
    }
}

/// `session.whoami.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Whoami {
    /// `aal1` or `highest_available`.
    pub required_aal: String,
    /// Session-to-JWT templates.
    pub tokenizer: Tokenizer,
}

impl Default for Whoami {
    fn default() -> Self {
        Self {
            required_aal: "highest_available".into(),
            tokenizer: Tokenizer::default(),
        }
    }
}

/// `session.whoami.tokenizer`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tokenizer {
    /// Templates by name.
    pub templates: BTreeMap<String, TokenizerTemplate>,
}

/// One session-to-JWT template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerTemplate {
    /// Signing keys.
    pub jwks_url: String,
    /// Claims mapper.
    #[serde(default)]
    pub claims_mapper_url: Option<String>,
    /// Token lifetime.
    #[serde(default = "one_minute")]
    pub ttl: Duration,
    /// `id` or `external_id`.
    #[serde(default)]
    pub subject_source: Option<String>,
}

fn one_minute() -> Duration {
    Duration::secs(60)
}

/// `cookies.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cookies {
    /// Domain.
    pub domain: Option<String>,
    /// Path.
    pub path: String,
    /// `Lax`, `Strict` or `None`.
    pub same_site: String,
    /// `Secure` attribute (default: on unless `--dev`).
    pub secure: Option<bool>,
}

impl Default for Cookies {
    fn default() -> Self {
        Self {
            domain: None,
            path: "/".into(),
            same_site: "Lax".into(),
            secure: None,
        }
    }
}

/// `secrets.*`: the first entry signs or encrypts, every entry still verifies (rotation).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Secrets {
    /// Fallback for every other purpose.
    pub default: Vec<Secret>,
    /// Cookies.
    pub cookie: Vec<Secret>,
    /// Stored-token encryption.
    pub cipher: Vec<Secret>,
    /// Pagination tokens.
    pub pagination: Vec<Secret>,
}

/// `hashers.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hashers {
    /// `argon2` (default) or `bcrypt`.
    pub algorithm: identity::hash::Algorithm,
    /// Argon2id parameters.
    pub argon2: Argon2Config,
    /// Bcrypt parameters.
    pub bcrypt: BcryptConfig,
}

/// `hashers.argon2.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Memory per hash (`128MB`).
    pub memory: ByteSize,
    /// Passes.
    pub iterations: u32,
    /// Lanes (default: twice the CPU count).
    pub parallelism: Option<u32>,
    /// Salt bytes.
    pub salt_length: u32,
    /// Output bytes.
    pub key_length: u32,
    /// Target time per hash (used by `hashers argon2 calibrate`).
    pub expected_duration: Duration,
    /// Allowed deviation from the target.
    pub expected_deviation: Duration,
    /// Memory the hasher may use in total.
    pub dedicated_memory: ByteSize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self {
            memory: ByteSize("128MB".into()),
            iterations: 1,
            parallelism: None,
            salt_length: 16,
            key_length: 32,
            expected_duration: Duration::millis(500),
            expected_deviation: Duration::millis(500),
            dedicated_memory: ByteSize("1GB".into()),
        }
    }
}

impl Argon2Config {
    /// Memory in KiB, as argon2 takes it.
    pub fn memory_kib(&self) -> Result<u32, ConfigError> {
        let bytes = self.memory.bytes().map_err(|e| ConfigError::Key {
            key: "hashers.argon2.memory".into(),
            reason: e,
        })?;
        u32::try_from(bytes / 1024)
            .ok()
            .filter(|k| *k >= 8)
            .ok_or_else(|| ConfigError::Key {
                key: "hashers.argon2.memory".into(),
                reason: "must be between 8KB and 4TB".into(),
            })
    }
}

/// `hashers.bcrypt.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BcryptConfig {
    /// Cost factor (12 or more outside `--dev`).
    pub cost: u32,
}

impl Default for BcryptConfig {
    fn default() -> Self {
        Self { cost: 12 }
    }
}

/// `ciphers.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ciphers {
    /// `noop`, `aes` or `xchacha20-poly1305`.
    pub algorithm: String,
}

impl Default for Ciphers {
    fn default() -> Self {
        Self {
            algorithm: "noop".into(),
        }
    }
}

/// `courier.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Courier {
    /// `smtp` or `http`.
    pub delivery_strategy: String,
    /// SMTP delivery.
    pub smtp: Smtp,
    /// Attempts before a message is abandoned.
    pub message_retries: u32,
    /// Directory with template overrides.
    pub template_override_path: Option<String>,
    /// Template overrides by type.
    pub templates: BTreeMap<String, Value>,
    /// HTTP delivery.
    pub http: Option<Value>,
    /// Extra channels (SMS).
    pub channels: Vec<Value>,
    /// Worker tuning.
    pub worker: CourierWorker,
}

impl Default for Courier {
    fn default() -> Self {
        Self {
            delivery_strategy: "smtp".into(),
            smtp: Smtp::default(),
            message_retries: 5,
            template_override_path: None,
            templates: BTreeMap::new(),
            http: None,
            channels: Vec::new(),
            worker: CourierWorker::default(),
        }
    }
}

/// `courier.smtp.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// `smtp://…`, `smtps://…` (may hold a password).
    pub connection_uri: Option<Secret>,
    /// Sender address.
    pub from_address: String,
    /// Sender name.
    pub from_name: Option<String>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// HELO name.
    pub local_name: String,
    /// Client certificate.
    pub client_cert_path: Option<String>,
    /// Client key.
    pub client_key_path: Option<String>,
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            connection_uri: None,
            from_address: "no-reply@ory.kratos.sh".into(),
            from_name: None,
            headers: BTreeMap::new(),
            local_name: "localhost".into(),
            client_cert_path: None,
            client_key_path: None,
        }
    }
}

/// `courier.worker.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CourierWorker {
    /// Messages per batch.
    pub pull_count: u32,
    /// Pause between empty polls.
    pub pull_wait: Duration,
}

impl Default for CourierWorker {
    fn default() -> Self {
        Self {
            pull_count: 10,
            pull_wait: Duration::secs(1),
        }
    }
}

/// `log.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `trace`, `debug`, `info`, `warn`, `error`.
    pub level: String,
    /// `json` or `text` (default: text with `--dev`, json otherwise).
    pub format: Option<String>,
    /// Log values that are normally redacted (never use in production).
    pub leak_sensitive_values: bool,
    /// Redaction text.
    pub redaction_text: Option<String>,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: None,
            leak_sensitive_values: false,
            redaction_text: None,
        }
    }
}

/// Kratos' `tracing`. With `provider: otel` a span per request (every listener, and each proxied request) goes
/// to the OTLP/HTTP collector at `providers.otlp.server_url`. Kratos' other providers (`jaeger`, `zipkin`,
/// `datadog`, …) are accepted so Kratos configs load, and export nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tracing {
    /// `otel` exports spans; empty (the default) or another provider exports nothing.
    pub provider: String,
    /// The spans' `service.name`.
    pub service_name: String,
    /// The spans' `deployment.environment` (empty: not set).
    pub deployment_environment: String,
    /// Per-provider settings.
    pub providers: TracingProviders,
}

impl Default for Tracing {
    fn default() -> Self {
        Self {
            provider: String::new(),
            service_name: "portcullis".into(),
            deployment_environment: String::new(),
            providers: TracingProviders::default(),
        }
    }
}

impl Tracing {
    /// Whether spans are exported.
    pub fn exports(&self) -> bool {
        self.provider == "otel"
    }

    /// The OTLP/HTTP traces URL: `server_url` is `host:port` as in Kratos (`https://`, or `http://` with
    /// `insecure: true`) or a full URL; a URL without a path gets `/v1/traces`.
    pub fn otlp_traces_url(&self) -> Result<url::Url, ConfigError> {
        let otlp = &self.providers.otlp;
        let bad = |reason: String| ConfigError::Key {
            key: "tracing.providers.otlp.server_url".into(),
            reason,
        };
        let raw = otlp.server_url.trim();
        if raw.is_empty() {
            return Err(bad(
                "required with tracing.provider: otel (for example collector:4318)".into(),
            ));
        }
        let full = if raw.contains("://") {
            raw.to_owned()
        } else {
            let scheme = if otlp.insecure { "http" } else { "https" };
            format!("{scheme}://{raw}")
        };
        let mut url = url::Url::parse(&full)
            .map_err(|e| bad(format!("{raw:?} is not host:port or a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(format!("{raw:?} must be an http or https address")));
        }
        if url.path() == "/" || url.path().is_empty() {
            url.set_path("/v1/traces");
        }
        Ok(url)
    }

    /// Checks the settings `serve` would use.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.exports() {
            return Ok(());
        }
        self.otlp_traces_url()?;
        let ratio = self.providers.otlp.sampling.sampling_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::Key {
                key: "tracing.providers.otlp.sampling.sampling_ratio".into(),
                reason: format!("{ratio} is not between 0 and 1"),
            });
        }
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::Key {
                key: "tracing.service_name".into(),
                reason: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

/// `tracing.providers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TracingProviders {
    /// The OTLP exporter.
    pub otlp: Otlp,
    /// Kratos' other providers: accepted, not used.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `tracing.providers.otlp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Otlp {
    /// The collector's OTLP/HTTP address: `host:port` (Kratos' form) or a URL.
    pub server_url: String,
    /// Plain HTTP to a `host:port` address instead of HTTPS.
    pub insecure: bool,
    /// Head sampling.
    pub sampling: OtlpSampling,
    /// An `Authorization` header value sent with every export (for example `Bearer …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<Secret>,
}

/// `tracing.providers.otlp.sampling`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSampling {
    /// The share of new traces that are recorded (0 to 1); a request that arrives with a sampled
    /// `traceparent` is recorded whatever this says.
    pub sampling_ratio: f64,
}

impl Default for OtlpSampling {
    fn default() -> Self {
        Self {
            sampling_ratio: 1.0,
        }
    }
}

/// `feature_flags.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureFlags {
    /// `Ory-Session-Cache-For` on whoami.
    pub cacheable_sessions: bool,
    /// Max age for the cache header.
    pub cacheable_sessions_max_age: Option<Duration>,
    /// Admin extend answers 204.
    pub faster_session_extend: bool,
    /// Recovery success answers 200 with `continue_with`.
    pub use_continue_with_transitions: bool,
    /// Recovery v2.
    pub choose_recovery_address: bool,
    /// Old 400 error for unverified logins.
    pub legacy_require_verified_login_error: bool,
    /// Legacy OIDC registration node group.
    pub legacy_oidc_registration_node_group: bool,
    /// Legacy continue-with verification UI.
    pub legacy_continue_with_verification_ui: bool,
}

/// `cache.*`: the session cache (in-process tier, then Redis, then SQL).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Redis.
    pub redis: RedisConfig,
    /// How long Redis keeps a session snapshot (capped by the session's expiry).
    pub ttl: Duration,
    /// The in-process tier.
    pub local: LocalCache,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            redis: RedisConfig::default(),
            ttl: Duration::secs(600),
            local: LocalCache::default(),
        }
    }
}

/// `cache.redis.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db` (`rediss://` for TLS). Unset: in-process tier only (one replica).
    pub url: Option<Secret>,
}

/// `cache.local.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalCache {
    /// Most sessions kept in memory.
    pub capacity: usize,
    /// How long a snapshot stays in memory (0 turns the tier off). Revocations evict at once either way.
    pub ttl: Duration,
}

impl Default for LocalCache {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::secs(30),
        }
    }
}

/// `ui.*`: the built-in pages under `/ui/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the pages; flows without a configured `ui_url` then point at them.
    pub enabled: bool,
    /// Shown in titles and the header.
    pub product_name: String,
    /// Logo shown above forms (http(s) URL or absolute path).
    pub logo_url: Option<String>,
    /// A stylesheet replacing the built-in one (http(s) URL or absolute path). `@import` `/ui/style.css` to
    /// override only its CSS variables.
    pub stylesheet_url: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            product_name: "Portcullis".into(),
            logo_url: None,
            stylesheet_url: None,
        }
    }
}

/// `security.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Kratos' account enumeration mitigation: only `false` is accepted (see [`SecurityConfig::check`]).
    pub account_enumeration: AccountEnumeration,
    /// Login throttling.
    pub brute_force: BruteForce,
}

impl SecurityConfig {
    /// Refuses `account_enumeration.mitigate: true`. In Kratos the flag only changes the identifier-first and
    /// multi-method login screens, which Portcullis does not have; accepting it would promise a protection that
    /// registration, which names a taken identifier (as Kratos' does with the flag on), does not give.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.account_enumeration.mitigate {
            return Err(ConfigError::Key {
                key: "security.account_enumeration.mitigate".into(),
                reason: "`true` is not supported: registration still says when an identifier is taken (as Kratos' \
                         does with this flag on; its flag only changes identifier-first login, which Portcullis \
                         does not offer). Login already answers an unknown identifier and a wrong password alike, \
                         and recovery and verification answer unknown addresses alike. Remove the key or set it to \
                         false"
                    .into(),
            });
        }
        Ok(())
    }
}

/// `security.account_enumeration.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountEnumeration {
    /// Kratos' flag to hide whether an account exists; must be `false` here (see [`SecurityConfig::check`]).
    pub mitigate: bool,
}

/// `security.brute_force.*`: failed logins per identifier and per client IP within a sliding window (kept in
/// `cache.redis` when configured, so every replica counts together). Old failures age out, so nobody is locked out
/// for longer than the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForce {
    /// Throttle failed logins.
    pub enabled: bool,
    /// The sliding window.
    pub window: Duration,
    /// Failures per identifier within the window before attempts are refused.
    pub max_failures_per_identifier: u32,
    /// Failures per client IP (IPv6: per /64) within the window.
    pub max_failures_per_ip: u32,
    /// Namespace of the counters in Redis (deployments sharing one Redis use different prefixes).
    pub redis_prefix: String,
    /// How long one Redis call may take before this replica's own counters decide alone.
    pub redis_timeout: Duration,
}

impl Default for BruteForce {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::secs(300),
            max_failures_per_identifier: 10,
            max_failures_per_ip: 100,
            redis_prefix: "portcullis:".into(),
            redis_timeout: Duration::millis(250),
        }
    }
}

/// `proxy.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Where requests go when their rule names no upstream. Unset in `--dev`: a built-in demo page.
    pub upstream: Option<String>,
}

/// `access_rules.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessRules {
    /// `file://` (watched) and `inline://<base64>` rule repositories.
    pub repositories: Vec<String>,
    /// `regexp` or `glob`.
    pub matching_strategy: String,
}

impl Default for AccessRules {
    fn default() -> Self {
        Self {
            repositories: Vec::new(),
            matching_strategy: "regexp".into(),
        }
    }
}

pub use rules::pipeline::HandlerSettings;

fn on() -> HandlerSettings {
    HandlerSettings {
        enabled: true,
        config: None,
    }
}

macro_rules! handler_group {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $default:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: HandlerSettings,)*
        }
        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }
        impl $name {
            /// As a name → settings map.
            pub fn to_map(&self) -> BTreeMap<String, HandlerSettings> {
                let mut m = BTreeMap::new();
                $(m.insert(stringify!($field).to_owned(), self.$field.clone());)*
                m
            }
        }
    };
}

handler_group!(
    /// `authenticators.*`. Ours are on by default; `jwt` needs `jwks_urls`.
    Authenticators {
        /// No authentication.
        noop: on(),
        /// A fixed subject for requests without `Authorization`.
        anonymous: on(),
        /// Refuses everything.
        unauthorized: on(),
        /// The session cookie (our session cache, or `check_session_url`).
        cookie_session: on(),
        /// A session token in `Authorization: Bearer` (or `token_from`).
        bearer_token: on(),
        /// JWTs checked against `jwks_urls`.
        jwt: HandlerSettings::default(),
    }
);

handler_group!(
    /// `authorizers.*`.
    Authorizers {
        /// Allows.
        allow: on(),
        /// Denies.
        deny: on(),
        /// Asks a remote JSON endpoint.
        remote_json: on(),
    }
);

handler_group!(
    /// `mutators.*`. `id_token` needs a private `jwks_url`.
    Mutators {
        /// Nothing.
        noop: on(),
        /// Headers from templates.
        header: on(),
        /// Cookies from templates.
        cookie: on(),
        /// A signed JWT in `Authorization`.
        id_token: HandlerSettings::default(),
    }
);

handler_group!(
    /// `errors.handlers.*`.
    ErrorHandlerSettings {
        /// JSON errors.
        json: on(),
        /// Redirects (to the login page by default).
        redirect: on(),
        /// `WWW-Authenticate` challenges.
        www_authenticate: on(),
    }
);

/// `errors.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorHandlers {
    /// Handlers tried when no rule handler matches.
    pub fallback: Vec<String>,
    /// Handler settings.
    pub handlers: ErrorHandlerSettings,
}

impl Default for ErrorHandlers {
    fn default() -> Self {
        Self {
            fallback: vec!["json".into()],
            handlers: ErrorHandlerSettings::default(),
        }
    }
}
