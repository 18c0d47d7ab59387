//! Mutators: `noop`, `header` (with `preset`s for oauth2-proxy's and Authelia's header names) and `cookie`.
//!
//! Every preset also sends `X-User-Email-Verified: true|false` (the template `{{ .EmailVerified }}`), and with
//! `require_verified_email` (on unless set to `false` in the rule or in `mutators.header.config`) its e-mail
//! headers are empty until the address is verified, as oauth2-proxy refuses unverified e-mail. Custom
//! `headers` are sent as written: guard them with `{{ if .EmailVerified }}…{{ end }}`.

use super::{
    effective, template_context, typed, AuthSession, Disabled, Mutator, PipelineConfig,
    PipelineError, RequestInfo,
};
use crate::template::{is_safe_header_value, Template};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

const EMAIL: &str = "{{ if .Extra.identity }}{{ print .Extra.identity.traits.email }}{{ end }}";
const SUBJECT: &str = "{{ print .Subject }}";
const EMAIL_VERIFIED: &str = "{{ .EmailVerified }}";
/// The header every preset adds: whether the e-mail address (of the identity's `email` trait) is verified.
pub const EMAIL_VERIFIED_HEADER: &str = "X-User-Email-Verified";

/// Whether a preset header carries the e-mail address, which `require_verified_email` withholds until the address
/// is verified.
fn is_email_template(template: &str) -> bool {
    template == EMAIL
}

/// Header sets that other proxies' users already consume.
fn preset(name: &str) -> Result<Vec<(&'static str, &'static str)>, String> {
    Ok(match name {
        // oauth2-proxy (`--set-xauthrequest`, `--pass-user-headers`).
        "oauth2_proxy" | "oauth2-proxy" => vec![
            ("X-Auth-Request-User", SUBJECT),
            ("X-Auth-Request-Email", EMAIL),
            ("X-Forwarded-User", SUBJECT),
            ("X-Forwarded-Email", EMAIL),
            (EMAIL_VERIFIED_HEADER, EMAIL_VERIFIED),
        ],
        // Authelia's forward-auth headers.
        "authelia" => vec![
            ("Remote-User", SUBJECT),
            ("Remote-Email", EMAIL),
            (
                "Remote-Name",
                "{{ if .Extra.identity }}{{ if .Extra.identity.traits.name }}{{ print .Extra.identity.traits.name.first }} {{ print .Extra.identity.traits.name.last }}{{ end }}{{ end }}",
            ),
            (EMAIL_VERIFIED_HEADER, EMAIL_VERIFIED),
        ],
        // Ours.
        "portcullis" => vec![
            ("X-User-Id", SUBJECT),
            ("X-User-Email", EMAIL),
            (EMAIL_VERIFIED_HEADER, EMAIL_VERIFIED),
        ],
        other => {
            return Err(format!(
                "unknown header preset {other:?} (use oauth2_proxy, authelia or portcullis)"
            ))
        }
    })
}

/// The names accepted by the `preset` option.
const PRESETS: [&str; 3] = ["oauth2_proxy", "authelia", "portcullis"];

/// Every header name some preset sets (read from the preset tables, so a new preset header is included).
pub fn preset_header_names() -> impl Iterator<Item = &'static str> {
    PRESETS
        .into_iter()
        .filter_map(|p| preset(p).ok())
        .flatten()
        .map(|(name, _)| name)
}

/// Builds a mutator of a rule.
pub fn build(
    name: &str,
    rule_config: Option<&Value>,
    config: &PipelineConfig,
    clock: &identity::SharedClock,
) -> Result<Arc<dyn Mutator>, String> {
    if !matches!(name, "noop" | "header" | "cookie" | "id_token") {
        return Err(format!("unknown mutator {name:?}"));
    }
    if name == "id_token" {
        return super::jwt::build_id_token(rule_config, config, clock.clone());
    }
    let global = config.mutators.get(name);
    if !global.is_some_and(|g| g.enabled) {
        return Ok(Arc::new(Disabled(format!("mutators.{name}"))));
    }
    let cfg = effective(global, rule_config);
    Ok(match name {
        "noop" => Arc::new(Noop),
        "header" => {
            let c: HeaderConfig = typed("mutator", name, cfg)?;
            // On unless a rule or `mutators.header.config` turns it off; it only concerns preset headers.
            let verified_only = c.require_verified_email.unwrap_or(true);
            let in_rule = rule_config.is_some_and(|r| r.get("require_verified_email").is_some());
            if in_rule && c.preset.is_none() {
                return Err(format!(
                    "mutator {name:?}: require_verified_email applies to a preset's e-mail headers and this \
                     rule has no preset; guard custom headers with {{{{ if .EmailVerified }}}}…{{{{ end }}}}"
                ));
            }
            let mut templates: Vec<(String, String, bool)> = Vec::new();
            if let Some(p) = &c.preset {
                for (k, v) in preset(p)? {
                    templates.push((
                        k.to_owned(),
                        v.to_owned(),
                        verified_only && is_email_template(v),
                    ));
                }
            }
            templates.extend(c.headers.into_iter().map(|(k, v)| (k, v, false)));
            let headers = templates
                .into_iter()
                .map(|(name, source, verified_only)| {
                    http_header_name(&name)?;
                    let template =
                        Template::compile(&source).map_err(|e| format!("header {name:?}: {e}"))?;
                    Ok(HeaderTemplate {
                        name,
                        template,
                        verified_only,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Arc::new(Header { headers })
        }
        _ => {
            let c: CookieConfig = typed("mutator", name, cfg)?;
            Arc::new(Cookie {
                cookies: compile_all("cookie", c.cookies.into_iter().collect())?,
            })
        }
    })
}

fn compile_all(
    what: &str,
    items: Vec<(String, String)>,
) -> Result<Vec<(String, Template)>, String> {
    items
        .into_iter()
        .map(|(k, v)| {
            Template::compile(&v)
                .map(|t| (k.clone(), t))
                .map_err(|e| format!("{what} {k:?}: {e}"))
        })
        .collect()
}

fn http_header_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid header name"))
    }
}

struct Noop;

#[async_trait]
impl Mutator for Noop {
    async fn mutate(&self, _: &RequestInfo, _: &mut AuthSession) -> Result<(), PipelineError> {
        Ok(())
    }
    fn sets_headers(&self) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderConfig {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    preset: Option<String>,
    /// Whether the preset's e-mail headers carry the address only once it is verified (default: yes). Unverified,
    /// they are empty, and `X-User-Email-Verified` says `false`.
    #[serde(default)]
    require_verified_email: Option<bool>,
}

struct HeaderTemplate {
    name: String,
    template: Template,
    /// Empty (replacing any earlier value of the header) unless the session's e-mail is verified.
    verified_only: bool,
}

struct Header {
    headers: Vec<HeaderTemplate>,
}

/// Renders a value that goes into a header, refusing CR, LF and NUL (header injection through traits).
fn render_header(
    name: &str,
    t: &Template,
    req: &RequestInfo,
    session: &AuthSession,
) -> Result<String, PipelineError> {
    let v = t
        .render(&template_context(req, session))
        .map_err(|e| PipelineError::internal(format!("header {name}: {e}")))?;
    if !is_safe_header_value(&v) {
        return Err(PipelineError::internal(format!(
            "header {name}: the value contains characters not allowed in headers"
        )));
    }
    Ok(v)
}

#[async_trait]
impl Mutator for Header {
    async fn mutate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<(), PipelineError> {
        for h in &self.headers {
            let name = &h.name;
            // Withheld, the header is still set, empty: forward-auth proxies that copy only the headers a decision
            // carries (Envoy's `allowed_upstream_headers`) then still replace a client's copy.
            let v = if h.verified_only && !session.email_verified {
                String::new()
            } else {
                render_header(name, &h.template, req, session)?
            };
            session
                .header
                .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            session.header.push((name.clone(), v));
        }
        Ok(())
    }
    fn sets_headers(&self) -> Vec<String> {
        self.headers.iter().map(|h| h.name.clone()).collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieConfig {
    #[serde(default)]
    cookies: BTreeMap<String, String>,
}

struct Cookie {
    cookies: Vec<(String, Template)>,
}

#[async_trait]
impl Mutator for Cookie {
    async fn mutate(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<(), PipelineError> {
        // Templated cookies replace same-named ones; the others are kept.
        let mut jar: Vec<(String, String)> = req
            .cookies()
            .filter(|(k, _)| !self.cookies.iter().any(|(n, _)| n == k))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (name, t) in &self.cookies {
            let v = render_header(name, t, req, session)?;
            if v.contains(';') {
                return Err(PipelineError::internal(format!(
                    "cookie {name}: the value contains ';'"
                )));
            }
            jar.push((name.clone(), v));
        }
        let value = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        session
            .header
            .retain(|(k, _)| !k.eq_ignore_ascii_case("cookie"));
        session.header.push(("Cookie".into(), value));
        Ok(())
    }
    fn sets_headers(&self) -> Vec<String> {
        Vec::new()
    }
}
