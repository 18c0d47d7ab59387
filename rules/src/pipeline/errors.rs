//! Error handlers: `json`, `redirect` and `www_authenticate`, each with Oathkeeper's `when` conditions.
//!
//! Selection: every rule handler whose `when` matches is a candidate (a handler without `when` always matches);
//! two or more candidates are a 500, none falls back to `errors.fallback` in order (default `["json"]`).

use super::{effective, typed, ErrorKind, PipelineConfig, PipelineError, RequestInfo};
use crate::cidr::Cidr;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A response for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteIp {
    #[serde(default, rename = "match")]
    cidrs: Vec<String>,
    #[serde(default)]
    respect_forwarded_for_header: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestWhen {
    #[serde(default)]
    header: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    remote_ip: Option<RemoteIp>,
    #[serde(default)]
    cidr: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct When {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    request: Option<RequestWhen>,
}

#[derive(Debug, Clone)]
enum Kind {
    Json {
        verbose: bool,
    },
    Redirect {
        to: String,
        code: u16,
        return_to_query_param: String,
    },
    WwwAuthenticate {
        realm: String,
    },
    Disabled,
}

/// A prepared error handler.
#[derive(Debug, Clone)]
pub struct ErrorHandler {
    /// Handler name.
    pub name: String,
    kind: Kind,
    when: Vec<When>,
    cidrs: Vec<Vec<Cidr>>,
}

#[derive(Deserialize)]
struct JsonConfig {
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    when: Vec<When>,
}

#[derive(Deserialize)]
struct RedirectConfig {
    to: String,
    #[serde(default = "found")]
    code: u16,
    #[serde(default)]
    return_to_query_param: String,
    #[serde(default)]
    when: Vec<When>,
}

fn found() -> u16 {
    302
}

#[derive(Deserialize)]
struct WwwConfig {
    #[serde(default = "realm")]
    realm: String,
    #[serde(default)]
    when: Vec<When>,
}

fn realm() -> String {
    "Please authenticate.".into()
}

impl ErrorHandler {
    /// Builds a handler from its name and the rule's config.
    pub fn build(
        name: &str,
        rule_config: Option<&Value>,
        config: &PipelineConfig,
    ) -> Result<Self, String> {
        let global = config.error_handlers.get(name);
        let enabled = match name {
            // Oathkeeper enables the json handler by default.
            "json" => global.is_none_or(|g| g.enabled),
            "redirect" | "www_authenticate" => global.is_some_and(|g| g.enabled),
            other => return Err(format!("unknown error handler {other:?}")),
        };
        let cfg = effective(global, rule_config);
        let (kind, when) = if !enabled {
            let when = cfg
                .get("when")
                .cloned()
                .map(serde_json::from_value::<Vec<When>>)
                .transpose()
                .map_err(|e| format!("error handler {name:?}: {e}"))?
                .unwrap_or_default();
            (Kind::Disabled, when)
        } else {
            match name {
                "json" => {
                    let c: JsonConfig = typed("error handler", name, cfg)?;
                    (Kind::Json { verbose: c.verbose }, c.when)
                }
                "redirect" => {
                    let c: RedirectConfig = typed("error handler", name, cfg)?;
                    if !matches!(c.code, 301 | 302 | 303 | 307 | 308) {
                        return Err(format!(
                            "error handler redirect: code {} is not a redirect",
                            c.code
                        ));
                    }
                    (
                        Kind::Redirect {
                            to: c.to,
                            code: c.code,
                            return_to_query_param: c.return_to_query_param,
                        },
                        c.when,
                    )
                }
                _ => {
                    let c: WwwConfig = typed("error handler", name, cfg)?;
                    (Kind::WwwAuthenticate { realm: c.realm }, c.when)
                }
            }
        };
        let cidrs = when
            .iter()
            .map(|w| {
                let r = w.request.clone().unwrap_or_default();
                r.remote_ip
                    .map(|ip| ip.cidrs)
                    .unwrap_or_default()
                    .iter()
                    .chain(r.cidr.iter())
                    .map(|c| {
                        c.parse::<Cidr>()
                            .map_err(|e| format!("error handler {name:?}: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            kind,
            when,
            cidrs,
        })
    }

    fn matches(&self, err: &PipelineError, req: &RequestInfo) -> bool {
        if self.when.is_empty() {
            return true;
        }
        self.when.iter().zip(&self.cidrs).any(|(w, cidrs)| {
            let error_ok = w.error.is_empty() || w.error.iter().any(|e| e == err.kind.name());
            let request_ok = match &w.request {
                None => true,
                Some(r) => {
                    let headers_ok = r.header.iter().all(|(name, wanted)| {
                        let header = name.replace('_', "-");
                        let got = req.header(&header).unwrap_or("");
                        wanted.iter().any(|w| media_matches(got, w))
                    });
                    let ip = if r
                        .remote_ip
                        .as_ref()
                        .is_some_and(|i| i.respect_forwarded_for_header)
                    {
                        req.forwarded_for.unwrap_or(req.client_ip)
                    } else {
                        req.client_ip
                    };
                    let ip_ok = cidrs.is_empty() || cidrs.iter().any(|c| c.contains(ip));
                    headers_ok && ip_ok
                }
            };
            error_ok && request_ok
        })
    }

    /// The response this handler gives.
    pub fn respond(&self, err: &PipelineError, req: &RequestInfo) -> ErrorResponse {
        match &self.kind {
            Kind::Json { verbose } => json_response(err, *verbose),
            Kind::Redirect {
                to,
                code,
                return_to_query_param,
            } => {
                let mut location = to.clone();
                if !return_to_query_param.is_empty() {
                    let original: String =
                        url::form_urlencoded::byte_serialize(req.url().as_bytes()).collect();
                    let sep = if location.contains('?') { '&' } else { '?' };
                    location = format!("{location}{sep}{return_to_query_param}={original}");
                }
                ErrorResponse {
                    status: *code,
                    headers: vec![("Location".into(), location)],
                    body: Vec::new(),
                }
            }
            Kind::WwwAuthenticate { realm } => {
                let mut r = json_response(&PipelineError::unauthorized(err.reason.clone()), false);
                r.headers
                    .push(("WWW-Authenticate".into(), format!("Basic realm={realm}")));
                r
            }
            Kind::Disabled => json_response(
                &PipelineError::internal(format!(
                    "the error handler {:?} is disabled or misconfigured",
                    self.name
                )),
                false,
            ),
        }
    }
}

/// `accept: [text/html]` style matching with `*` wildcards (`text/*`, `*/*`); an empty wanted value matches an
/// absent header.
fn media_matches(got: &str, wanted: &str) -> bool {
    if wanted.is_empty() {
        return got.is_empty();
    }
    got.split(',').any(|part| {
        let media = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let wanted = wanted.to_ascii_lowercase();
        if wanted == "*/*" || media == wanted {
            return true;
        }
        match (wanted.strip_suffix("/*"), media.split_once('/')) {
            (Some(prefix), Some((t, _))) => prefix == t,
            _ => false,
        }
    })
}

/// The herodot-style JSON error body Oathkeeper sends.
pub fn json_response(err: &PipelineError, verbose: bool) -> ErrorResponse {
    let status = err.kind.status();
    let (status_text, message) = match err.kind {
        ErrorKind::BadRequest => (
            "Bad Request",
            "The request was malformed or contained invalid parameters",
        ),
        ErrorKind::Unauthorized => ("Unauthorized", "Access credentials are invalid"),
        ErrorKind::Forbidden => (
            "Forbidden",
            "Access credentials are not sufficient to access this resource",
        ),
        ErrorKind::NotFound => ("Not Found", "Requested url does not match any rules"),
        ErrorKind::TooManyRequests => ("Too Many Requests", "Too many requests"),
        ErrorKind::InternalServerError => (
            "Internal Server Error",
            "An internal server error occurred, please contact the system administrator",
        ),
        ErrorKind::BadGateway => ("Bad Gateway", "An upstream service could not be reached"),
    };
    let mut error = json!({"code": status, "status": status_text, "message": message});
    if verbose {
        error["reason"] = json!(err.reason);
    }
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    headers.extend(err.headers.iter().cloned());
    ErrorResponse {
        status,
        headers,
        body: json!({ "error": error }).to_string().into_bytes(),
    }
}

/// Picks the handler for an error: the rule's matching handler, else the first matching fallback.
pub fn handle(
    err: &PipelineError,
    req: &RequestInfo,
    rule_handlers: &[ErrorHandler],
    fallback: &[ErrorHandler],
) -> ErrorResponse {
    let candidates: Vec<&ErrorHandler> = rule_handlers
        .iter()
        .filter(|h| h.matches(err, req))
        .collect();
    match candidates.as_slice() {
        [one] => return one.respond(err, req),
        [] => {}
        _ => {
            return json_response(
                &PipelineError::internal("more than one error handler matches this error"),
                false,
            )
        }
    }
    match fallback.iter().find(|h| h.matches(err, req)) {
        Some(h) => h.respond(err, req),
        None => json_response(err, false),
    }
}
