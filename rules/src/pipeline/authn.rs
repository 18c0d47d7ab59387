//! Authenticators: `noop`, `anonymous`, `unauthorized`, `cookie_session`, `bearer_token` (and `jwt`, in
//! [`crate::pipeline::jwt`] when present).
//!
//! `cookie_session` and `bearer_token` work two ways. Without `check_session_url` they read our own sessions through
//! the session cache (no network, no SQL on a hit); with it they ask a remote whoami endpoint exactly as
//! Oathkeeper does, so Portcullis can also front a real Kratos.
//!
//! Both set [`AuthSession::email_verified`] from the session's identity (whoami's `identity.traits.email` is one
//! of its `verifiable_addresses` with `verified: true`); a remote answer that is not a Kratos session leaves it
//! false.

use super::{
    effective, typed, AuthSession, Authenticator, Disabled, ErrorKind, OutboundRequest,
    PipelineConfig, PipelineError, RequestInfo, Services, SessionLookup,
};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds an authenticator of a rule.
pub fn build(
    name: &str,
    rule_config: Option<&Value>,
    config: &PipelineConfig,
    services: &Services,
) -> Result<Arc<dyn Authenticator>, String> {
    let global = config.authenticators.get(name);
    let known = matches!(
        name,
        "noop" | "anonymous" | "unauthorized" | "cookie_session" | "bearer_token" | "jwt"
    );
    if !known {
        return Err(format!("unknown authenticator {name:?}"));
    }
    if name == "jwt" {
        return super::jwt::build_authenticator(
            rule_config,
            config,
            services,
            services.clock.clone(),
        );
    }
    if !global.is_some_and(|g| g.enabled) {
        return Ok(Arc::new(Disabled(format!("authenticators.{name}"))));
    }
    let cfg = effective(global, rule_config);
    Ok(match name {
        "noop" => Arc::new(Noop),
        "anonymous" => Arc::new(typed::<Anonymous>("authenticator", name, cfg)?),
        "unauthorized" => Arc::new(Unauthorized),
        "cookie_session" => Arc::new(SessionCheck::new(
            Source::Cookie,
            typed("authenticator", name, cfg)?,
            services,
        )?),
        _ => Arc::new(SessionCheck::new(
            Source::Bearer,
            typed("authenticator", name, cfg)?,
            services,
        )?),
    })
}

struct Noop;

#[async_trait]
impl Authenticator for Noop {
    async fn authenticate(
        &self,
        _: &RequestInfo,
        _: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        Ok(true)
    }
}

struct Unauthorized;

#[async_trait]
impl Authenticator for Unauthorized {
    async fn authenticate(
        &self,
        _: &RequestInfo,
        _: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        Err(PipelineError::unauthorized(
            "the unauthorized authenticator refuses every request",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Anonymous {
    #[serde(default = "anonymous_subject")]
    subject: String,
}

fn anonymous_subject() -> String {
    "anonymous".into()
}

#[async_trait]
impl Authenticator for Anonymous {
    async fn authenticate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        // Responsible only when the request carries no credentials in Authorization.
        if req.header("authorization").is_some() {
            return Ok(false);
        }
        session.subject = self.subject.clone();
        Ok(true)
    }
}

/// Where a bearer token is read from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFrom {
    header: Option<String>,
    query_parameter: Option<String>,
    cookie: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionCheckConfig {
    check_session_url: Option<String>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default = "yes")]
    preserve_query: bool,
    #[serde(default)]
    preserve_path: bool,
    #[serde(default)]
    preserve_host: bool,
    force_method: Option<String>,
    #[serde(default)]
    forward_http_headers: Vec<String>,
    #[serde(default)]
    additional_headers: BTreeMap<String, String>,
    extra_from: Option<String>,
    subject_from: Option<String>,
    token_from: Option<TokenFrom>,
    #[serde(default)]
    prefix: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Cookie,
    Bearer,
}

struct SessionCheck {
    source: Source,
    config: SessionCheckConfig,
    services: Services,
    check_url: Option<url::Url>,
}

impl SessionCheck {
    fn new(
        source: Source,
        config: SessionCheckConfig,
        services: &Services,
    ) -> Result<Self, String> {
        let check_url = match &config.check_session_url {
            Some(u) => Some(
                url::Url::parse(u)
                    .map_err(|e| format!("check_session_url {u:?} is not a URL: {e}"))?,
            ),
            None if services.sessions.is_none() => {
                return Err("check_session_url is required when the identity module is off".into())
            }
            None => None,
        };
        Ok(Self {
            source,
            config,
            services: services.clone(),
            check_url,
        })
    }

    /// The credential of the request, if this authenticator is responsible for it.
    fn credential(
        &self,
        req: &RequestInfo,
        own: Option<&Arc<dyn SessionLookup>>,
    ) -> Option<String> {
        match self.source {
            Source::Cookie => {
                let mut only = self.config.only.clone();
                if only.is_empty() && self.check_url.is_none() {
                    if let Some(s) = own {
                        only.push(s.cookie_name().to_owned());
                    }
                }
                let mut cookies = req.cookies().peekable();
                cookies.peek()?;
                if only.is_empty() {
                    return req.header("cookie").map(str::to_owned);
                }
                let found = req.cookies().any(|(k, _)| only.iter().any(|o| o == k));
                found.then(|| {
                    req.headers
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
                        .map(|(_, v)| v.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }
            Source::Bearer => {
                let from = self.config.token_from.clone().unwrap_or_default();
                let token = if let Some(h) = &from.header {
                    req.header(h).map(str::to_owned)
                } else if let Some(q) = &from.query_parameter {
                    req.query_param(q)
                } else if let Some(c) = &from.cookie {
                    req.cookie(c).map(str::to_owned)
                } else {
                    req.header("authorization").and_then(|v| {
                        let (scheme, rest) = v.split_once(' ')?;
                        scheme
                            .eq_ignore_ascii_case("bearer")
                            .then(|| rest.trim().to_owned())
                    })
                }?;
                (!token.is_empty() && token.starts_with(&self.config.prefix)).then_some(token)
            }
        }
    }

    async fn native(
        &self,
        own: &Arc<dyn SessionLookup>,
        req: &RequestInfo,
        credential: &str,
        session: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        let token = match self.source {
            Source::Cookie => match req
                .cookie(own.cookie_name())
                .and_then(|v| own.open_cookie(v))
            {
                Some(t) => t,
                None => return Err(PipelineError::unauthorized("the session cookie is invalid")),
            },
            Source::Bearer => credential.to_owned(),
        };
        let view = own
            .lookup(&token)
            .await
            .map_err(|e| PipelineError::internal(format!("session lookup failed: {e}")))?
            .ok_or_else(|| {
                PipelineError::unauthorized("no active session for these credentials")
            })?;
        let body = view.extra;
        session.email_verified = view.email_verified;
        session.subject = match &self.config.subject_from {
            Some(path) => string_at(&body, path),
            None => view.subject,
        };
        session.extra = match &self.config.extra_from {
            Some(path) => Arc::new(gjson(&body, path).cloned().unwrap_or(Value::Null)),
            None => body,
        };
        Ok(true)
    }

    async fn remote(
        &self,
        check: &url::Url,
        req: &RequestInfo,
        credential: &str,
        session: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        let mut url = check.clone();
        if !self.config.preserve_path {
            url.set_path(&req.path);
        }
        if !self.config.preserve_query {
            url.set_query(req.query.as_deref());
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        match self.source {
            Source::Cookie => headers.push(("Cookie".into(), credential.to_owned())),
            Source::Bearer => {
                if let Some(a) = req.header("authorization") {
                    headers.push(("Authorization".into(), a.to_owned()));
                } else {
                    headers.push(("Authorization".into(), format!("Bearer {credential}")));
                }
            }
        }
        for h in &self.config.forward_http_headers {
            if let Some(v) = req.header(h) {
                headers.push((h.clone(), v.to_owned()));
            }
        }
        for (k, v) in &self.config.additional_headers {
            headers.push((k.clone(), v.clone()));
        }
        if self.config.preserve_host {
            headers.push(("X-Forwarded-Host".into(), req.host.clone()));
        }
        let res = self
            .services
            .http
            .send(OutboundRequest {
                method: self
                    .config
                    .force_method
                    .clone()
                    .unwrap_or_else(|| "GET".into()),
                url: url.to_string(),
                headers,
                body: None,
            })
            .await
            .map_err(|e| {
                PipelineError::new(ErrorKind::BadGateway, format!("session check failed: {e}"))
            })?;
        match res.status {
            200 => {}
            429 => {
                let mut err = PipelineError::new(
                    ErrorKind::TooManyRequests,
                    "the session check is rate limited",
                );
                if let Some(r) = res.header("retry-after") {
                    err.headers.push(("Retry-After".into(), r.to_owned()));
                }
                return Err(err);
            }
            other => {
                return Err(PipelineError::unauthorized(format!(
                    "the session check answered {other}"
                )))
            }
        }
        let body: Value = serde_json::from_slice(&res.body).map_err(|e| {
            PipelineError::internal(format!("the session check answered invalid JSON: {e}"))
        })?;
        let subject_from = self
            .config
            .subject_from
            .as_deref()
            .unwrap_or(match self.source {
                Source::Cookie => "subject",
                Source::Bearer => "sub",
            });
        session.subject = string_at(&body, subject_from);
        // A Kratos whoami body: the identity's e-mail trait must be one of its verified addresses. Read before
        // `extra_from` narrows the body, so that no path into user-editable traits can claim it.
        session.email_verified = body
            .get("identity")
            .is_some_and(identity::session::email_verified);
        session.extra = Arc::new(
            gjson(&body, self.config.extra_from.as_deref().unwrap_or("extra"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        Ok(true)
    }
}

#[async_trait]
impl Authenticator for SessionCheck {
    async fn authenticate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<bool, PipelineError> {
        let own = self.services.sessions.as_ref();
        let Some(credential) = self.credential(req, own) else {
            return Ok(false);
        };
        match (&self.check_url, own) {
            (Some(check), _) => self.remote(check, req, &credential, session).await,
            (None, Some(own)) => self.native(own, req, &credential, session).await,
            (None, None) => Err(PipelineError::internal("no session source is configured")),
        }
    }
}

/// A GJSON-style path: `@this`, or dot-separated keys and array indexes.
pub(crate) fn gjson<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path == "@this" || path.is_empty() {
        return Some(value);
    }
    let mut cur = value;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn string_at(value: &Value, path: &str) -> String {
    match gjson(value, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}
