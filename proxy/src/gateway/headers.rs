//! Pure header and target helpers used by the proxy phases. Nothing here knows about Pingora.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use rules::cidr::{self, Cidr};

/// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The names above as Pingora's `insert_header` takes them most cheaply: a `&'static str` becomes the field's
/// wire spelling without a copy, where a `HeaderName` is copied and then parsed again. Lower case, as
/// `HeaderName`s are sent.
pub mod wire {
    pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
    pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
    pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
    pub const X_REQUEST_ID: &str = "x-request-id";
    pub const X_PORTCULLIS_CLIENT_IP: &str = "x-portcullis-client-ip";
    pub const X_PORTCULLIS_EDGE: &str = "x-portcullis-edge";
}

/// Prefix of the private fields the edge sends the identity module; a client's are always removed.
pub const PRIVATE_PREFIX: &str = "x-portcullis-";
/// The client address as the edge determined it ([`client_ip`]), sent to the identity module only.
pub const X_PORTCULLIS_CLIENT_IP: HeaderName = HeaderName::from_static("x-portcullis-client-ip");
/// The edge's per-process secret, which tells the identity module that [`X_PORTCULLIS_CLIENT_IP`] comes from
/// the edge and not from another local process.
pub const X_PORTCULLIS_EDGE: HeaderName = HeaderName::from_static("x-portcullis-edge");

/// Fields other proxies and CDNs use for the client address; believed only from trusted proxies.
pub const CLIENT_IP_FIELDS: [&str; 7] = [
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "cf-connecting-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "fastly-client-ip",
];

/// Fields some frameworks (Symfony, IIS, Zend) route by instead of the request target; believed only from
/// trusted proxies.
pub const PATH_OVERRIDE_FIELDS: [&str; 4] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
];

/// Method override fields: frameworks that honour them would run a different method from the one the rules
/// matched, so they never reach an upstream.
pub const METHOD_OVERRIDE_FIELDS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Standard hop-by-hop request fields (RFC 7230 section 6.1, RFC 9110 section 7.6.1, plus the
/// de-facto `Proxy-Connection` and the h2c `HTTP2-Settings`).
pub const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// More tokens than this in `Connection` is refused (Pingora 0.9 refuses 10 or more).
const MAX_NOMINATIONS: usize = 9;

/// Paths the identity module owns (`Decision::Identity`).
pub const RESERVED_PREFIXES: [&str; 6] = [
    "/self-service/",
    "/sessions",
    "/schemas",
    "/.well-known/ory/",
    "/ui/",
    "/health/",
];

/// Whether `path` belongs to the identity module: `/self-service/…`, `/sessions[/…]`,
/// `/schemas[/…]`, `/.well-known/ory/…`, `/ui/…` or `/health/…`.
///
/// `/sessions` and `/schemas` match only whole segments (`/sessionsfoo` is not reserved).
pub fn is_reserved_path(path: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|prefix| {
        if prefix.ends_with('/') {
            path.starts_with(prefix)
        } else {
            match path.strip_prefix(prefix) {
                Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
                None => false,
            }
        }
    })
}

/// A `Connection` header that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadConnection {
    /// It names `Host`, a forwarding field or a pseudo-header: a request-smuggling attempt.
    Protected(String),
    /// A token is not an HTTP token, or there are too many of them.
    Malformed,
}

/// The field names listed in `Connection` (lower-cased), minus the standard hop-by-hop ones.
///
/// Mirrors Pingora's policy so a request it would refuse later is refused up front with our
/// error body: protected names (`Host`, `X-Forwarded-For/Host/Proto`, `Forwarded`, pseudo-headers)
/// and malformed tokens are errors.
pub fn connection_nominations(headers: &HeaderMap) -> Result<Vec<HeaderName>, BadConnection> {
    let mut names = Vec::new();
    let mut count = 0;
    for token in headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
    {
        count += 1;
        if count > MAX_NOMINATIONS {
            return Err(BadConnection::Malformed);
        }
        if token.starts_with(b":") {
            return Err(BadConnection::Protected(
                String::from_utf8_lossy(token).into_owned(),
            ));
        }
        if !token.iter().all(|b| is_tchar(*b)) {
            return Err(BadConnection::Malformed);
        }
        let name = HeaderName::from_bytes(token).map_err(|_| BadConnection::Malformed)?;
        if matches!(
            name.as_str(),
            "host" | "x-forwarded-for" | "x-forwarded-host" | "x-forwarded-proto" | "forwarded"
        ) {
            return Err(BadConnection::Protected(name.as_str().to_owned()));
        }
        if !HOP_BY_HOP.contains(&name.as_str()) && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Hop-by-hop fields of an upstream response that Pingora would pass on: `Keep-Alive`,
/// `Proxy-Connection` and the fields the upstream names in `Connection` (Pingora rewrites
/// `Connection` itself and owns framing and upgrades, so those are left alone).
pub fn response_hop_by_hop(headers: &HeaderMap) -> Vec<HeaderName> {
    const KEEP: [&str; 6] = [
        "connection",
        "upgrade",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "close",
    ];
    // One walk over the (few) names instead of parsing and hashing each candidate.
    let mut names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| matches!(k.as_str(), "keep-alive" | "proxy-connection"))
        .cloned()
        .collect();
    for token in headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .take(32)
    {
        if let Ok(name) = HeaderName::from_bytes(token) {
            if !KEEP.contains(&name.as_str())
                && headers.contains_key(&name)
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    names
}

/// Removes the standard hop-by-hop fields and the `nominated` ones.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, nominated: &[HeaderName]) {
    // One pass over the (few) present names instead of ten hashed removals.
    let present: Vec<HeaderName> = headers
        .keys()
        .filter(|k| HOP_BY_HOP.contains(&k.as_str()))
        .cloned()
        .collect();
    for name in present.iter().chain(nominated) {
        headers.remove(name);
    }
}

/// The client fields to remove, in one pass over the names and in every spelling (`_` read as `-`, as CGI,
/// WSGI, PHP and Rack do):
/// - always: our private `X-Portcullis-*` fields and the method overrides ([`METHOD_OVERRIDE_FIELDS`]);
/// - from an untrusted peer also: `X-Forwarded-*`, `Forwarded`, the client-address fields
///   ([`CLIENT_IP_FIELDS`]) and the path overrides ([`PATH_OVERRIDE_FIELDS`]).
pub fn untrusted_fields(headers: &HeaderMap, trusted_peer: bool) -> Vec<HeaderName> {
    headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            starts_with_folded(k, PRIVATE_PREFIX)
                || METHOD_OVERRIDE_FIELDS.iter().any(|n| eq_folded(k, n))
                || (!trusted_peer
                    && (starts_with_folded(k, "x-forwarded-")
                        || eq_folded(k, "forwarded")
                        || CLIENT_IP_FIELDS.iter().any(|n| eq_folded(k, n))
                        || PATH_OVERRIDE_FIELDS.iter().any(|n| eq_folded(k, n))))
        })
        .cloned()
        .collect()
}

/// `name` equals the lower-case, dashed `canonical` once `_` is read as `-` and case is ignored.
pub fn eq_folded(name: &str, canonical: &str) -> bool {
    name.len() == canonical.len() && starts_with_folded(name, canonical)
}

/// `name` starts with the lower-case, dashed `prefix` once `_` is read as `-` and case is ignored.
pub fn starts_with_folded(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.bytes().zip(prefix.bytes()).all(|(a, b)| {
            (if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            }) == b
        })
}

/// Bytes of the request head as a budget sees them: the target plus each field's name and value
/// (with `: ` and CRLF).
pub fn head_size(target: &[u8], headers: &HeaderMap) -> usize {
    target.len()
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
}

/// Client fields whose name equals one of `removed` or `set` once `_` is read as `-`
/// (`X_User_Id` for `X-User-Id`): CGI, WSGI, PHP and Rack map both to one variable.
pub fn underscore_aliases(
    headers: &HeaderMap,
    removed: &[HeaderName],
    set: &[(HeaderName, HeaderValue)],
) -> Vec<HeaderName> {
    headers
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .filter(|k| {
            let k = k.as_str();
            removed.iter().any(|r| eq_folded(k, r.as_str()))
                || set.iter().any(|(n, _)| eq_folded(k, n.as_str()))
        })
        .cloned()
        .collect()
}

/// The client address: the peer, or — when the peer is trusted — the right-most address in
/// `X-Forwarded-For` that is not itself a trusted proxy (or the left-most when all are trusted).
/// An unparsable entry stops the walk at the last good address.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let mut ip = peer.to_canonical();
    if !cidr::any_contains(trusted, ip) {
        return ip;
    }
    let values: Vec<&HeaderValue> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
    for entry in values
        .iter()
        .rev()
        .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','))
    {
        if !cidr::any_contains(trusted, ip) {
            break;
        }
        match parse_forwarded_ip(entry) {
            Some(next) => ip = next,
            None => break,
        }
    }
    ip
}

fn parse_forwarded_ip(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry.trim_ascii()).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // `1.2.3.4:5678` or `[2001:db8::1]:443`.
    s.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

/// First comma-separated token of the first value of `name`, trimmed.
pub fn first_token<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let v = headers.get(name)?.to_str().ok()?;
    let t = v.split(',').next()?.trim();
    (!t.is_empty()).then_some(t)
}

/// Whether a client-supplied request id is safe to keep: 1–200 visible ASCII characters.
pub fn valid_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Process-unique request ids: a random 64-bit prefix per generator and a counter.
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        Self {
            prefix: RandomState::new().hash_one(std::process::id()),
            next: AtomicU64::new(1),
        }
    }

    /// 32 lowercase hex digits.
    pub fn next_id(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(32);
        for word in [self.prefix, n] {
            for shift in (0..16).rev() {
                id.push(char::from(HEX[((word >> (shift * 4)) & 0xf) as usize]));
            }
        }
        id
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// A request target split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// Authority of an absolute-form target (`GET http://host/path`).
    pub authority: Option<&'a str>,
    /// Path, raw (percent-encoding untouched); `*` for asterisk-form.
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// Splits a raw request target. `None` when it is not UTF-8 or not origin/absolute/asterisk form.
pub fn split_target(raw: &[u8]) -> Option<Target<'_>> {
    let raw = std::str::from_utf8(raw).ok()?;
    let raw = raw.split_once('#').map_or(raw, |(before, _)| before);
    let (authority, rest) = if raw.starts_with('/') || raw == "*" {
        (None, raw)
    } else {
        let (scheme, rest) = raw.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        (Some(authority), rest)
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Some(Target {
        authority,
        path,
        query,
    })
}

/// The origin-form target sent upstream: `strip_path` is removed from the front of the
/// request path (only at a segment boundary), then the rest is appended to the upstream's base
/// path. Unlike Oathkeeper (which joins first and strips after), a strip value that also occurs
/// in the base path is therefore harmless.
pub fn upstream_target(
    base_path: &str,
    strip_path: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> String {
    let mut path = path;
    if let Some(strip) = strip_path.map(|s| s.trim_end_matches('/')) {
        if !strip.is_empty() {
            if let Some(rest) = path.strip_prefix(strip) {
                if rest.is_empty() || rest.starts_with('/') {
                    path = rest;
                }
            }
        }
    }
    let base = base_path.trim_end_matches('/');
    let mut out = String::with_capacity(base.len() + path.len() + 2 + query.map_or(0, str::len));
    out.push_str(base);
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Whether [`upstream_target`] differs from the request target (else it need not be rebuilt).
pub fn target_changes(base_path: &str, strip_path: Option<&str>, path: &str) -> bool {
    if !base_path.trim_end_matches('/').is_empty() || !path.starts_with('/') {
        return true;
    }
    match strip_path.map(|s| s.trim_end_matches('/')) {
        Some(strip) if !strip.is_empty() => path
            .strip_prefix(strip)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        _ => false,
    }
}

/// `host[:port]` of an upstream URL, the port omitted when it is the scheme's default (a slice of the URL: the
/// URL keeps a default port out of its serialisation, and the user info before the host).
pub fn url_authority(url: &url::Url) -> Option<&str> {
    url.host_str()?;
    Some(&url[url::Position::BeforeHost..url::Position::AfterPort])
}

/// An address as text, as `Display` writes it (IPv4 without the formatting machinery: once or twice per request).
pub fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// Value of `X-Forwarded-For` to send: the trusted chain (if any) plus the peer.
pub fn forwarded_for(existing: Option<&HeaderMap>, peer: IpAddr) -> String {
    let peer = ip_string(peer.to_canonical());
    let Some(headers) = existing else {
        return peer;
    };
    let mut chain: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    chain.push(&peer);
    chain.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn reserved_paths() {
        for p in [
            "/self-service/login/browser",
            "/sessions",
            "/sessions/whoami",
            "/schemas",
            "/schemas/default",
            "/.well-known/ory/webauthn.js",
            "/ui/login",
            "/health/alive",
        ] {
            assert!(is_reserved_path(p), "{p}");
        }
        for p in [
            "/",
            "/sessionsx",
            "/self-service",
            "/api/sessions",
            "/uix",
            "/health",
        ] {
            assert!(!is_reserved_path(p), "{p}");
        }
    }

    #[test]
    fn nominations_are_collected_and_protected_names_refused() {
        let h = map(&[
            ("connection", "keep-alive, X-User-Id"),
            ("connection", "upgrade,x-foo"),
        ]);
        let got = connection_nominations(&h).unwrap();
        assert_eq!(
            got,
            vec![
                HeaderName::from_static("x-user-id"),
                HeaderName::from_static("x-foo")
            ]
        );

        for bad in [
            "Host",
            "x-forwarded-for",
            "X-Forwarded-Proto",
            "forwarded",
            ":authority",
        ] {
            let h = map(&[("connection", bad)]);
            assert!(
                matches!(connection_nominations(&h), Err(BadConnection::Protected(_))),
                "{bad}"
            );
        }
        let h = map(&[("connection", "\"x-user\"")]);
        assert_eq!(connection_nominations(&h), Err(BadConnection::Malformed));
        let h = map(&[("connection", "a,b,c,d,e,f,g,h,i,j")]);
        assert_eq!(connection_nominations(&h), Err(BadConnection::Malformed));
    }

    #[test]
    fn hop_by_hop_and_nominated_are_stripped() {
        let mut h = map(&[
            ("connection", "x-user-id"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("x-user-id", "evil"),
            ("accept", "*/*"),
        ]);
        let nominated = connection_nominations(&h).unwrap();
        strip_hop_by_hop(&mut h, &nominated);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn response_hop_by_hop_fields() {
        let h = map(&[
            (
                "connection",
                "keep-alive, X-Internal, Upgrade, Content-Length, x-absent",
            ),
            ("keep-alive", "timeout=5"),
            ("x-internal", "secret"),
            ("upgrade", "websocket"),
            ("content-length", "3"),
        ]);
        let names = response_hop_by_hop(&h);
        assert_eq!(
            names,
            [
                HeaderName::from_static("keep-alive"),
                HeaderName::from_static("x-internal")
            ]
        );
    }

    #[test]
    fn untrusted_fields_are_found_in_every_spelling() {
        let h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("X-Forwarded-User", "admin"),
            ("forwarded", "for=1.1.1.1"),
            ("X_Forwarded_Proto", "https"),
            ("x_real_ip", "1.1.1.1"),
            ("True-Client-IP", "1.1.1.1"),
            ("client-ip", "1.1.1.1"),
            ("CF_Connecting_IP", "1.1.1.1"),
            ("x-client-ip", "1.1.1.1"),
            ("X-Original-URL", "/admin"),
            ("x_rewrite_url", "/admin"),
            ("X-Portcullis-Client-Ip", "1.1.1.1"),
            ("x_portcullis_edge", "guess"),
            ("X_HTTP_Method_Override", "DELETE"),
            ("accept", "*/*"),
            ("x-real-ipv6", "kept"),
            ("x-forwarded", "kept"),
        ]);
        let names = |trusted| {
            let mut names: Vec<String> = untrusted_fields(&h, trusted)
                .iter()
                .map(|n| n.to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(false),
            [
                "cf_connecting_ip",
                "client-ip",
                "forwarded",
                "true-client-ip",
                "x-client-ip",
                "x-forwarded-for",
                "x-forwarded-user",
                "x-original-url",
                "x-portcullis-client-ip",
                "x_forwarded_proto",
                "x_http_method_override",
                "x_portcullis_edge",
                "x_real_ip",
                "x_rewrite_url",
            ]
        );
        // A trusted proxy's forwarding fields stay; private fields and method overrides never do.
        assert_eq!(
            names(true),
            [
                "x-portcullis-client-ip",
                "x_http_method_override",
                "x_portcullis_edge"
            ]
        );
    }

    #[test]
    fn folded_comparison() {
        assert!(eq_folded("x_user_id", "x-user-id"));
        assert!(eq_folded("X_User_ID", "x-user-id"));
        assert!(!eq_folded("x_user_ids", "x-user-id"));
        assert!(!eq_folded("x.user.id", "x-user-id"));
        assert!(starts_with_folded("X_Portcullis_anything", PRIVATE_PREFIX));
        assert!(!starts_with_folded("x-portcullis", PRIVATE_PREFIX));
    }

    #[test]
    fn underscore_aliases_of_decision_headers() {
        let h = map(&[
            ("x_user_id", "m"),
            ("x_other", "1"),
            ("x-user-id", "m"),
            ("auth_token", "t"),
        ]);
        let removed = [HeaderName::from_static("auth-token")];
        let set = [(
            HeaderName::from_static("x-user-id"),
            HeaderValue::from_static("a"),
        )];
        let mut got: Vec<String> = underscore_aliases(&h, &removed, &set)
            .iter()
            .map(|n| n.to_string())
            .collect();
        got.sort();
        assert_eq!(got, ["auth_token", "x_user_id"]);
    }

    #[test]
    fn client_ip_walks_trusted_chain() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let h = map(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // untrusted peer: header ignored
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
        // all trusted: left-most
        let h = map(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        // garbage stops the walk
        let h = map(&[("x-forwarded-for", "nonsense, 10.0.0.6")]);
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "10.0.0.6".parse::<IpAddr>().unwrap()
        );
        // ports and brackets
        let h = map(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn targets() {
        let t = split_target(b"/a/b%2F?x=1&y#frag").unwrap();
        assert_eq!(
            (t.authority, t.path, t.query),
            (None, "/a/b%2F", Some("x=1&y"))
        );
        let t = split_target(b"http://example.com:8080/p?q").unwrap();
        assert_eq!(
            (t.authority, t.path, t.query),
            (Some("example.com:8080"), "/p", Some("q"))
        );
        let t = split_target(b"http://example.com?q").unwrap();
        assert_eq!(
            (t.authority, t.path, t.query),
            (Some("example.com"), "/", Some("q"))
        );
        assert_eq!(split_target(b"*").unwrap().path, "*");
        assert!(split_target(b"/\xff").is_none());
        assert!(split_target(b"example.com:443").is_none());
    }

    #[test]
    fn upstream_targets() {
        assert_eq!(upstream_target("/", None, "/a", Some("q=1")), "/a?q=1");
        assert_eq!(
            upstream_target("", Some("/api"), "/api/users", None),
            "/users"
        );
        assert_eq!(upstream_target("", Some("/api/"), "/api", None), "/");
        assert_eq!(
            upstream_target("", Some("/api"), "/apiv2/users", None),
            "/apiv2/users"
        );
        assert_eq!(
            upstream_target("/base/", Some("/api"), "/api/x", None),
            "/base/x"
        );
        assert_eq!(
            upstream_target("/api", Some("/api"), "/api/x", None),
            "/api/x"
        );
        assert_eq!(upstream_target("/base", None, "/", None), "/base/");
    }

    #[test]
    fn unchanged_targets_are_detected() {
        assert!(!target_changes("/", None, "/a"));
        assert!(!target_changes("", Some("/api"), "/apiv2"));
        assert!(target_changes("", Some("/api"), "/api/x"));
        assert!(target_changes("/base", None, "/a"));
        assert!(target_changes("", None, "*"));
        for (base, strip, path) in [
            ("/", None, "/a"),
            ("", Some("/api"), "/apiv2"),
            ("/", Some("/x/"), "/y"),
        ] {
            assert_eq!(
                upstream_target(base, strip, path, Some("q")),
                format!("{path}?q")
            );
        }
    }

    #[test]
    fn authorities() {
        let u = url::Url::parse("http://app.internal:80/base").unwrap();
        assert_eq!(url_authority(&u).unwrap(), "app.internal");
        let u = url::Url::parse("http://[::1]:8080").unwrap();
        assert_eq!(url_authority(&u).unwrap(), "[::1]:8080");
        let u = url::Url::parse("http://user:secret@app.internal:8081/x?y").unwrap();
        assert_eq!(url_authority(&u).unwrap(), "app.internal:8081");
        let u = url::Url::parse("unix:/tmp/sock").unwrap();
        assert_eq!(url_authority(&u), None);
    }

    #[test]
    fn ip_strings_are_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.9.99.100",
            "255.255.255.255",
            "192.168.1.10",
            "::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_string(ip), ip.to_string());
        }
        for a in 0..=255u8 {
            let ip = IpAddr::from([a, 255 - a, a / 3, a / 7]);
            assert_eq!(ip_string(ip), ip.to_string());
        }
    }

    #[test]
    fn forwarded_for_chain() {
        let peer: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(forwarded_for(None, peer), "10.0.0.1");
        let h = map(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2")]);
        assert_eq!(forwarded_for(Some(&h), peer), "1.1.1.1, 2.2.2.2, 10.0.0.1");
    }

    #[test]
    fn request_ids() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(
            a.ends_with("0000000000000001") && b.ends_with("0000000000000002"),
            "{a} {b}"
        );
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(valid_request_id(&a));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(""));
    }
}
