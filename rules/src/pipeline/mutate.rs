//! Mutators: `noop`, `header` (with `preset`s for oauth2-proxy's and Authelia's header names) and `cookie`.

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

/// Header sets that other proxies' users already consume.
fn preset(name: &str) -> Result<Vec<(&'static str, &'static str)>, String> {
    Ok(match name {
        // oauth2-proxy (`--set-xauthrequest`, `--pass-user-headers`).
        "oauth2_proxy" | "oauth2-proxy" => vec![
            ("X-Auth-Request-User", SUBJECT),
            ("X-Auth-Request-Email", EMAIL),
            ("X-Forwarded-User", SUBJECT),
            ("X-Forwarded-Email", EMAIL),
        ],
        // Authelia's forward-auth headers.
        "authelia" => vec![
            ("Remote-User", SUBJECT),
            ("Remote-Email", EMAIL),
            (
                "Remote-Name",
                "{{ if .Extra.identity }}{{ if .Extra.identity.traits.name }}{{ print .Extra.identity.traits.name.first }} {{ print .Extra.identity.traits.name.last }}{{ end }}{{ end }}",
            ),
        ],
        // Ours.
        "portcullis" => vec![("X-User-Id", SUBJECT), ("X-User-Email", EMAIL)],
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
            let mut templates = Vec::new();
            if let Some(p) = &c.preset {
                for (k, v) in preset(p)? {
                    templates.push((k.to_owned(), v.to_owned()));
                }
            }
            templates.extend(c.headers);
            let headers = compile_all("header", templates)?;
            for (k, _) in &headers {
                http_header_name(k)?;
            }
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
}

struct Header {
    headers: Vec<(String, Template)>,
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
        for (name, t) in &self.headers {
            let v = render_header(name, t, req, session)?;
            session
                .header
                .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            session.header.push((name.clone(), v));
        }
        Ok(())
    }
    fn sets_headers(&self) -> Vec<String> {
        self.headers.iter().map(|(k, _)| k.clone()).collect()
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
