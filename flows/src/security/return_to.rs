//! `return_to` validation, following Kratos v25 `x/redir.SecureRedirectTo`.
//!
//! Allow-list = every usable `selfservice.allowed_return_urls` entry plus
//! `<public base URL>/self-service` (as a path prefix). As in Kratos, the default
//! return URL's host is **not** implicitly allowed: operators list it in
//! `allowed_return_urls`. A candidate matches an entry when the schemes are equal,
//! the hosts are equal (or the entry is `*.example.com` and the candidate host ends
//! with `.example.com`), the ports are equal, and the candidate's path starts with
//! the entry's path (plain string prefix, as Kratos does).
//!
//! Hardening beyond Kratos (all cases Kratos either rejects too or that only a
//! confused browser would follow):
//! * control characters, surrounding whitespace, scheme-relative (`//host`,
//!   `/\host`, `\\host`) values and backslashes before the query are rejected;
//! * userinfo (`https://user@host`) is rejected;
//! * only `http`/`https` are accepted, unless an allow-list entry names another
//!   scheme explicitly (native-app callbacks such as `myapp://callback`);
//!   `javascript:`, `data:`, `vbscript:`, `file:`, `blob:` and `about:` never pass;
//! * URLs are parsed with the WHATWG parser (what browsers use), hosts are compared
//!   after IDNA/punycode and case normalisation, dot segments are resolved, and the
//!   returned [`url::Url`] is the normalised form that was checked — so the browser is
//!   redirected to exactly what was validated. Default ports are normalised
//!   (`https://a.com:443` equals `https://a.com`).
//!
//! Relative values (`/dashboard`, `dashboard`, `?x=1`) are resolved against the
//! default return URL. An empty value yields the default return URL unchecked, as in
//! Kratos.

use url::{Host, Url};

/// Kratos error id for a refused `return_to` (HTTP 400).
pub const RETURN_TO_FORBIDDEN_ID: &str = "self_service_flow_return_to_forbidden";

/// Schemes that are never acceptable redirect targets.
const DENIED_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "about",
    "filesystem",
];

/// `return_to` inputs longer than this are refused before parsing.
const MAX_RETURN_TO_LENGTH: usize = 8 * 1024;

/// Configuration for [`ReturnToPolicy::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReturnToPolicy {
    /// `selfservice.allowed_return_urls`.
    pub allowed: Vec<String>,
    /// The applicable `default_browser_return_url` (base for relative values).
    pub default: String,
    /// `serve.public.base_url`; `<public_base>/self-service` is always allowed.
    pub public_base: String,
}

/// A refused `return_to`. The string is the Kratos-style reason, e.g.
/// `Requested return_to URL "https://evil.com/" is not allowed.`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnToError {
    #[error("{0}")]
    Forbidden(String),
}

impl ReturnToError {
    /// The Kratos error id (`self_service_flow_return_to_forbidden`).
    pub fn id(&self) -> &'static str {
        RETURN_TO_FORBIDDEN_ID
    }

    /// The human-readable reason.
    pub fn reason(&self) -> &str {
        match self {
            ReturnToError::Forbidden(reason) => reason,
        }
    }
}

/// One parsed allow-list entry.
#[derive(Debug, Clone)]
struct AllowedEntry {
    scheme: String,
    /// Normalised host; for wildcards the part after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
    path: String,
}

impl ReturnToPolicy {
    /// Validates `return_to`, returning the normalised absolute URL to redirect to.
    pub fn validate(&self, return_to: &str) -> Result<Url, ReturnToError> {
        if return_to.is_empty() {
            return Url::parse(&self.default).map_err(|e| {
                forbidden_raw(format!(
                    "Unable to parse the default return URL as an URL: {e}"
                ))
            });
        }
        let candidate = self.parse_candidate(return_to)?;
        let denied = || {
            forbidden_raw(format!(
                "Requested return_to URL {:?} is not allowed.",
                candidate.as_str()
            ))
        };

        let scheme = candidate.scheme();
        if DENIED_SCHEMES.contains(&scheme) {
            return Err(denied());
        }
        let entries = self.entries();
        let web = matches!(scheme, "http" | "https");
        if !web && !entries.iter().any(|e| e.scheme == scheme) {
            return Err(denied());
        }
        if !candidate.username().is_empty() || candidate.password().is_some() {
            return Err(denied());
        }
        let Some(host) = normalised_host(&candidate) else {
            return Err(denied());
        };
        let port = candidate.port_or_known_default();
        let path = non_empty_path(candidate.path());

        let allowed = entries.iter().any(|e| {
            e.scheme == scheme
                && e.port == port
                && host_matches(e, &host)
                && path.starts_with(e.path.as_str())
        });
        if allowed {
            Ok(candidate)
        } else {
            Err(denied())
        }
    }

    fn parse_candidate(&self, raw: &str) -> Result<Url, ReturnToError> {
        let refuse = || forbidden_raw(format!("Requested return_to URL {raw:?} is not allowed."));
        if raw.len() > MAX_RETURN_TO_LENGTH
            || raw.chars().any(|c| c.is_control())
            || raw.starts_with(char::is_whitespace)
            || raw.ends_with(char::is_whitespace)
        {
            return Err(refuse());
        }
        // Scheme-relative (`//evil.com`) and its backslash variants.
        let mut lead = raw.chars();
        if matches!(
            (lead.next(), lead.next()),
            (Some('/' | '\\'), Some('/' | '\\'))
        ) {
            return Err(refuse());
        }
        // Backslashes in scheme/authority/path are treated as `/` by browsers.
        let before_query = raw.split(['?', '#']).next().unwrap_or(raw);
        if before_query.contains('\\') {
            return Err(refuse());
        }

        match Url::parse(raw) {
            Ok(url) => Ok(url),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let base = Url::parse(&self.default).map_err(|_| refuse())?;
                if base.cannot_be_a_base() {
                    return Err(refuse());
                }
                base.join(raw).map_err(|_| refuse())
            }
            Err(e) => Err(forbidden_raw(format!(
                "Unable to parse the return_to query parameter as an URL: {e}"
            ))),
        }
    }

    /// Usable allow-list entries (unusable ones are skipped, as Kratos does).
    fn entries(&self) -> Vec<AllowedEntry> {
        let mut out: Vec<AllowedEntry> = self
            .allowed
            .iter()
            .filter_map(|raw| parse_entry(raw))
            .collect();
        if let Some(entry) = self_service_entry(&self.public_base) {
            out.push(entry);
        }
        out
    }
}

fn forbidden_raw(reason: String) -> ReturnToError {
    ReturnToError::Forbidden(reason)
}

fn non_empty_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Lower-cased host string as the WHATWG parser normalised it (punycode for IDN).
fn normalised_host(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    if host.is_empty() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

fn host_matches(entry: &AllowedEntry, host: &str) -> bool {
    if entry.wildcard {
        // `*.example.com` matches `a.example.com`, `a.b.example.com`; not
        // `example.com` nor `evilexample.com`.
        host.strip_suffix(entry.host.as_str())
            .is_some_and(|label| label.len() >= 2 && label.ends_with('.'))
    } else {
        host == entry.host
    }
}

fn parse_entry(raw: &str) -> Option<AllowedEntry> {
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().any(|c| c.is_control()) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if DENIED_SCHEMES.contains(&url.scheme()) || url.cannot_be_a_base() {
        return None;
    }
    let host = normalised_host(&url)?;
    let (wildcard, host) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest.to_owned()),
        None => (false, host),
    };
    // Kratos ignores `*` and public-suffix wildcards (`*.com`); without a public
    // suffix list we refuse wildcards over a single label or an IP address.
    if host.contains('*') || host.is_empty() {
        return None;
    }
    if wildcard {
        let is_domain = matches!(url.host(), Some(Host::Domain(_)));
        if !is_domain || !host.contains('.') || host.starts_with('.') {
            return None;
        }
    }
    Some(AllowedEntry {
        scheme: url.scheme().to_owned(),
        host,
        wildcard,
        port: url.port_or_known_default(),
        path: non_empty_path(url.path()).to_owned(),
    })
}

/// `<public_base>/self-service` (Kratos `urlx.AppendPaths(publicURL, "/self-service")`).
fn self_service_entry(public_base: &str) -> Option<AllowedEntry> {
    let mut entry = parse_entry(public_base)?;
    if entry.wildcard {
        return None;
    }
    let base = entry.path.trim_end_matches('/');
    entry.path = format!("{base}/self-service");
    Some(entry)
}

#[cfg(test)]
mod tests;
