//! Canonical request URLs, so that a path trick cannot slip past a rule.
//!
//! Rules are matched against `scheme://host[:port]/path` built from the canonical forms below. The
//! proxy should forward the canonical path too, so that the upstream serves what was authorised.
//!
//! # Path ([`normalize_path`])
//!
//! 1. A percent-escape of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded: `/%61dmin` is
//!    `/admin`. Every other escape stays encoded with upper-case hex digits: `%2f` becomes `%2F`, and an
//!    encoded slash is never a separator. Nothing is decoded twice (`%252e` stays `%252e`).
//! 2. Bytes that may not appear raw in a path (space, `"`, `<`, `>`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}`
//!    and non-ASCII) are percent-encoded, so `/café` and `/caf%C3%A9` are the same path.
//! 3. Repeated slashes collapse (`//admin` is `/admin`) and dot segments are resolved per RFC 3986
//!    5.2.4, also when written `%2e`: `/public/../admin`, `/public/%2e%2e/admin` and `/public/.%2E/admin`
//!    are all `/admin`. `..` never climbs above the root.
//! 4. A trailing slash is kept as given; a path ending in a dot segment keeps the directory's slash
//!    (`/a/b/..` is `/a/`, RFC 3986). An empty path is `/`.
//!
//! Rejected (answer 400): a path not starting with `/`; a malformed escape (`%`, `%4`, `%zz`); control
//! characters, raw or escaped (`%00`, `%0A`, `%7F`); a raw backslash, which Windows and some frameworks
//! treat as `/` (`/public\..\admin`); a raw `?` or `#`, which means the caller passed the query or
//! fragment along; and a dot segment hidden behind an encoded separator or a path parameter
//! (`/public/..%2Fadmin`, `/public/..%5Cadmin`, `/public/..;/admin`), which upstreams that decode `%2F`
//! or strip `;` parameters (Tomcat, Jetty) would resolve above the directory the rule covers. An encoded
//! backslash `%5C` is otherwise kept, like `%2F`.
//!
//! Oathkeeper matches Go's fully decoded `URL.Path` after `path.Clean`, so there `%2F` is a separator
//! and a trailing slash is dropped. Here the path stays percent-encoded and the trailing slash stays;
//! see the crate docs for what that means for rules.
//!
//! # Scheme and host
//!
//! The scheme is lower-cased. The host is lower-cased, loses one trailing dot (`example.com.`) and the
//! scheme's default port (`:443` for https, `:80` for http). A host may only hold letters, digits, `-`,
//! `.`, `_`, a `:port` and an IPv6 literal in brackets; anything else (`/`, `@`, spaces...) would let a
//! `Host` header rewrite the path part of the match target and is rejected.

/// Splits an origin-form request target (`/path?query#fragment`) into its raw path and query,
/// dropping the fragment. Nothing is decoded or resolved: pass the path to [`normalize_path`].
pub fn split_path_query(target: &str) -> (&str, Option<&str>) {
    let target = target.split_once('#').map_or(target, |(before, _)| before);
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// An absolute URL split into raw parts, as [`split_absolute_url`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUrl<'a> {
    /// Before `://`.
    pub scheme: &'a str,
    /// From `://` to the first `/` (or the end): `host[:port]`, unchecked.
    pub authority: &'a str,
    /// From the first `/` after the authority to `?`; empty when the URL has no path.
    pub path: &'a str,
    /// After the first `?` of the path part, without the fragment.
    pub query: Option<&'a str>,
}

/// Splits `scheme://authority/path?query` (nginx's `$scheme://$http_host$request_uri`) without
/// resolving or decoding anything; `None` without `://`.
///
/// The authority runs to the first `/`, not to the first `?` or `#` as in RFC 3986: nginx accepts
/// `?`, `#` and `@` in a `Host` header, and a URL parser would then read the client's
/// `Host: app?x` in front of `/admin` as the path `/` with the query `x/admin`. Here that
/// authority is `app?x`, which no host matches and rule matching rejects.
pub fn split_absolute_url(url: &str) -> Option<AbsoluteUrl<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (path, query) = split_path_query(target);
    Some(AbsoluteUrl {
        scheme,
        authority,
        path,
        query,
    })
}

/// Why a request path cannot be normalised. `at` is a byte offset into the raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (e.g. `*` or an absolute URI was passed).
    #[error("the path must start with `/`")]
    NotAbsolute,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-escape at byte {at}")]
    InvalidEscape {
        /// Byte offset of the `%`.
        at: usize,
    },
    /// A control character, raw or percent-encoded.
    #[error("control character at byte {at}")]
    ControlCharacter {
        /// Byte offset of the character or its escape.
        at: usize,
    },
    /// A raw `\`.
    #[error("backslash at byte {at}")]
    Backslash {
        /// Byte offset of the backslash.
        at: usize,
    },
    /// A raw `?` or `#`: the caller must pass the path without its query and fragment.
    #[error("`?` or `#` at byte {at}: the path must not include the query or fragment")]
    QueryOrFragment {
        /// Byte offset of the character.
        at: usize,
    },
    /// `.` or `..` behind an encoded `/` or `\` or before a `;` path parameter.
    #[error("dot segment hidden behind an encoded separator or `;` in the segment at byte {at}")]
    HiddenDotSegment {
        /// Byte offset of the segment.
        at: usize,
    },
}

/// Returns the canonical form of a request path (without query). See the module docs for the rules.
pub fn normalize_path(raw_path: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw_path.len() + 1);
    normalize_path_into(raw_path, &mut out)?;
    Ok(out)
}

/// Appends the canonical form of `raw_path` to `out`. On error `out` is left as it was.
pub fn normalize_path_into(raw_path: &str, out: &mut String) -> Result<(), PathError> {
    let base = out.len();
    let result = push_path(raw_path.as_bytes(), base, out);
    if result.is_err() {
        out.truncate(base);
    }
    result
}

fn push_path(raw: &[u8], base: usize, out: &mut String) -> Result<(), PathError> {
    match raw.first() {
        None => {
            out.push('/');
            return Ok(());
        }
        Some(b'/') => {}
        Some(_) => return Err(PathError::NotAbsolute),
    }
    let mut i = 0;
    let mut ends_in_directory = true;
    while i < raw.len() {
        if raw[i] == b'/' {
            i += 1;
            ends_in_directory = true;
            continue;
        }
        let end = raw[i..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(raw.len(), |p| i + p);
        let segment_start = out.len();
        out.push('/');
        push_segment(&raw[i..end], i, out)?;
        match &out[segment_start + 1..] {
            "." => out.truncate(segment_start),
            ".." => {
                out.truncate(segment_start);
                let parent = out[base..].rfind('/').map_or(base, |p| base + p);
                out.truncate(parent);
            }
            segment => {
                if hides_dot_segment(segment) {
                    return Err(PathError::HiddenDotSegment { at: i });
                }
                ends_in_directory = false;
                i = end;
                continue;
            }
        }
        ends_in_directory = true;
        i = end;
    }
    if ends_in_directory || out.len() == base {
        out.push('/');
    }
    Ok(())
}

/// Writes one raw segment (no `/`) in canonical form; `offset` positions errors in the whole path.
fn push_segment(raw: &[u8], offset: usize, out: &mut String) -> Result<(), PathError> {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let at = offset + i;
        match b {
            b'%' => {
                let value = decode_escape(&raw[i..]).ok_or(PathError::InvalidEscape { at })?;
                if is_control(value) {
                    return Err(PathError::ControlCharacter { at });
                }
                push_canonical_escape(value, out);
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash { at }),
            b'?' | b'#' => return Err(PathError::QueryOrFragment { at }),
            _ if is_control(b) => return Err(PathError::ControlCharacter { at }),
            _ => push_path_byte(b, out),
        }
        i += 1;
    }
    Ok(())
}

/// How one literal byte of a path appears in canonical form (it is not `%`, `/` or a control
/// character): kept when RFC 3986 allows it raw in a segment, percent-encoded otherwise.
pub(crate) fn push_path_byte(b: u8, out: &mut String) {
    if is_unreserved(b) || b"!$&'()*+,;=:@".contains(&b) {
        out.push(char::from(b));
    } else {
        push_escape(b, out);
    }
}

/// The canonical form of the escape `%XX` whose value is `value`: unreserved characters are decoded,
/// everything else keeps its escape with upper-case digits.
pub(crate) fn push_canonical_escape(value: u8, out: &mut String) {
    if is_unreserved(value) {
        out.push(char::from(value));
    } else {
        push_escape(value, out);
    }
}

/// The value of the escape at the start of `s` (`%` and two hex digits).
pub(crate) fn decode_escape(s: &[u8]) -> Option<u8> {
    match s {
        [b'%', hi, lo, ..] => Some((hex_value(*hi)? << 4) | hex_value(*lo)?),
        _ => None,
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn push_escape(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xF)]));
}

pub(crate) fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// True when an upstream that decodes `%2F`/`%5C` or strips `;` parameters would see `.` or `..` in
/// this canonical segment.
fn hides_dot_segment(segment: &str) -> bool {
    if !segment.contains(';') && !segment.contains("%2F") && !segment.contains("%5C") {
        return false;
    }
    segment
        .split("%2F")
        .flat_map(|part| part.split("%5C"))
        .any(|part| {
            let name = part.split(';').next().unwrap_or(part);
            name == "." || name == ".."
        })
}

/// Appends the lower-cased scheme; false if it is not a URI scheme (`ALPHA *( ALPHA / DIGIT / + - . )`).
pub(crate) fn push_scheme(scheme: &str, out: &mut String) -> bool {
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if valid {
        out.extend(scheme.chars().map(|c| c.to_ascii_lowercase()));
    }
    valid
}

/// Appends the canonical host (see the module docs) for a request made with `scheme`; false if the
/// host holds characters a host cannot hold.
pub(crate) fn push_host(scheme: &str, host: &str, out: &mut String) -> bool {
    let (name, port) = match split_port(host) {
        Some(split) => split,
        None => return false,
    };
    let valid_name = if let Some(inner) = name.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|address| {
            address
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'%'))
        })
    } else {
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if !valid_name || !port.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let name = if name.starts_with('[') {
        name
    } else {
        name.strip_suffix('.').unwrap_or(name)
    };
    out.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    if !port.is_empty() && !is_default_port(scheme, port) {
        out.push(':');
        out.push_str(port);
    }
    true
}

/// Splits `host[:port]` / `[v6][:port]`; the port is empty when absent. None when a `:` is misplaced.
fn split_port(host: &str) -> Option<(&str, &str)> {
    if host.starts_with('[') {
        let close = host.find(']')?;
        let (name, rest) = host.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((name, port)),
            None if rest.is_empty() => Some((name, "")),
            None => None,
        };
    }
    match host.split_once(':') {
        Some((_, port)) if port.contains(':') => None,
        Some((name, port)) => Some((name, port)),
        None => Some((host, "")),
    }
}

/// `scheme` in any case.
pub(crate) fn is_default_port(scheme: &str, port: &str) -> bool {
    (port == "80" && scheme.eq_ignore_ascii_case("http"))
        || (port == "443" && scheme.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        normalize_path(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    #[test]
    fn targets_split_without_decoding() {
        assert_eq!(
            split_path_query("/a/b%2F?x=1&y#frag"),
            ("/a/b%2F", Some("x=1&y"))
        );
        assert_eq!(split_path_query("/a?"), ("/a", Some("")));
        assert_eq!(split_path_query("?"), ("", Some("")));
        assert_eq!(split_path_query(""), ("", None));
        assert_eq!(split_path_query("/a#x?y"), ("/a", None));
        assert_eq!(split_path_query("/a?b?c"), ("/a", Some("b?c")));
    }

    #[test]
    fn absolute_urls_split_at_the_first_slash() {
        let u = split_absolute_url("https://App.test:8443/a/../b?x=1").unwrap();
        assert_eq!(
            (u.scheme, u.authority, u.path, u.query),
            ("https", "App.test:8443", "/a/../b", Some("x=1"))
        );
        let u = split_absolute_url("http://app.test").unwrap();
        assert_eq!((u.authority, u.path, u.query), ("app.test", "", None));
        // A `?`, `#` or `@` from a Host header stays in the authority instead of moving the path.
        for (url, authority) in [
            ("http://app.test?x/admin", "app.test?x"),
            ("http://app.test#x/admin", "app.test#x"),
            ("http://guest@app.test/admin", "guest@app.test"),
        ] {
            let u = split_absolute_url(url).unwrap();
            assert_eq!((u.authority, u.path), (authority, "/admin"), "{url}");
            assert!(!push_host("http", u.authority, &mut String::new()), "{url}");
        }
        assert_eq!(split_absolute_url("/admin"), None);
        assert_eq!(split_absolute_url("app.test/admin"), None);
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for path in [
            "/",
            "/admin",
            "/admin/",
            "/a/b/c",
            "/users/123/edit",
            "/a-b_c~d.e",
            "/!$&'()*+,;=:@",
            "/.well-known/jwks.json",
            "/a/...",
            "/a/..b/b..",
            "/%25",
            "/%3F",
        ] {
            assert_eq!(ok(path), path);
        }
    }

    #[test]
    fn the_classic_tricks_all_become_admin() {
        for raw in [
            "/admin",
            "/public/../admin",
            "/public/./../admin",
            "/%61dmin",
            "/%61%64%6D%69%6E",
            "/%61%64%6d%69%6e",
            "//admin",
            "///admin",
            "/./admin",
            "/public/%2e%2e/admin",
            "/public/%2E%2E/admin",
            "/public/.%2e/admin",
            "/public/%2e./admin",
            "/public//..//admin",
            "/a/b/../../admin",
            "/../admin",
            "/../../../admin",
            "/%2e%2e/admin",
            "/%2e/admin",
        ] {
            assert_eq!(ok(raw), "/admin", "{raw}");
        }
    }

    #[test]
    fn dot_segments_follow_rfc_3986() {
        assert_eq!(ok("/a/b/c/./../../g"), "/a/g");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/b/."), "/a/b/");
        assert_eq!(ok("/a/b/%2e"), "/a/b/");
        assert_eq!(ok("/a/.."), "/");
        assert_eq!(ok("/.."), "/");
        assert_eq!(ok("/."), "/");
        assert_eq!(ok("/a/../.."), "/");
        assert_eq!(ok("/a/b/../"), "/a/");
        assert_eq!(ok("/a/b/..//"), "/a/");
    }

    #[test]
    fn slashes_collapse_and_the_trailing_one_stays() {
        assert_eq!(ok(""), "/");
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("/a//b"), "/a/b");
        assert_eq!(ok("/a//"), "/a/");
        assert_eq!(ok("/a/b/"), "/a/b/");
        assert_eq!(ok("/a/b"), "/a/b");
    }

    #[test]
    fn escapes_are_canonical() {
        assert_eq!(ok("/a%2fb"), "/a%2Fb");
        assert_eq!(ok("/a%2Fb"), "/a%2Fb");
        assert_eq!(ok("/a%5cb"), "/a%5Cb");
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/%7e%5f%2d"), "/~_-");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/%3f"), "/%3F");
        assert_eq!(ok("/%252e%252e/admin"), "/%252e%252e/admin");
        assert_eq!(ok("/%25%32%65"), "/%252e");
    }

    #[test]
    fn an_encoded_slash_is_never_a_separator() {
        assert_eq!(ok("/public%2Fadmin"), "/public%2Fadmin");
        assert_eq!(ok("/files/a%2Fb/../c"), "/files/c");
        assert_eq!(ok("/x%2F"), "/x%2F");
    }

    #[test]
    fn raw_characters_that_need_encoding_are_encoded() {
        assert_eq!(ok("/café"), "/caf%C3%A9");
        assert_eq!(ok("/a b"), "/a%20b");
        assert_eq!(ok("/<script>"), "/%3Cscript%3E");
        assert_eq!(ok("/a[0]{x}|^`\""), "/a%5B0%5D%7Bx%7D%7C%5E%60%22");
        assert_eq!(ok("/日本"), "/%E6%97%A5%E6%9C%AC");
    }

    #[test]
    fn malformed_and_dangerous_input_is_rejected() {
        use PathError::*;
        for (raw, want) in [
            ("admin", NotAbsolute),
            ("*", NotAbsolute),
            ("http://x/admin", NotAbsolute),
            ("/a%", InvalidEscape { at: 2 }),
            ("/a%4", InvalidEscape { at: 2 }),
            ("/a%zz", InvalidEscape { at: 2 }),
            ("/a%%41", InvalidEscape { at: 2 }),
            ("/a%\u{e9}0", InvalidEscape { at: 2 }),
            ("/a\0b", ControlCharacter { at: 2 }),
            ("/a%00b", ControlCharacter { at: 2 }),
            ("/a\nb", ControlCharacter { at: 2 }),
            ("/a%0Ab", ControlCharacter { at: 2 }),
            ("/a%0d%0a", ControlCharacter { at: 2 }),
            ("/a\tb", ControlCharacter { at: 2 }),
            ("/a\u{7f}", ControlCharacter { at: 2 }),
            ("/a%7F", ControlCharacter { at: 2 }),
            ("/public\\..\\admin", Backslash { at: 7 }),
            ("/public/..\\admin", Backslash { at: 10 }),
            ("/admin?x=1", QueryOrFragment { at: 6 }),
            ("/admin#top", QueryOrFragment { at: 6 }),
            ("/public/..%2Fadmin", HiddenDotSegment { at: 8 }),
            ("/public/..%2fadmin", HiddenDotSegment { at: 8 }),
            ("/public/%2e%2e%2fadmin", HiddenDotSegment { at: 8 }),
            ("/public/a%2F..%2F..%2Fadmin", HiddenDotSegment { at: 8 }),
            ("/public/..%5Cadmin", HiddenDotSegment { at: 8 }),
            ("/public/..%5cadmin", HiddenDotSegment { at: 8 }),
            ("/public/..;/admin", HiddenDotSegment { at: 8 }),
            ("/public/..;jsessionid=1/admin", HiddenDotSegment { at: 8 }),
            ("/public/.;/admin", HiddenDotSegment { at: 8 }),
            ("/public/%2e%2e;/admin", HiddenDotSegment { at: 8 }),
            ("/public/x%2F.", HiddenDotSegment { at: 8 }),
        ] {
            assert_eq!(normalize_path(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn harmless_semicolons_and_encoded_separators_pass() {
        assert_eq!(ok("/a;b=c/d"), "/a;b=c/d");
        assert_eq!(ok("/app;jsessionid=1"), "/app;jsessionid=1");
        assert_eq!(ok("/a%2F.b"), "/a%2F.b");
        assert_eq!(ok("/a%2F...%2Fb"), "/a%2F...%2Fb");
        assert_eq!(ok("/...;x"), "/...;x");
    }

    #[test]
    fn into_appends_and_leaves_the_buffer_alone_on_error() {
        let mut out = String::from("https://example.com");
        normalize_path_into("/a/../b", &mut out).unwrap();
        assert_eq!(out, "https://example.com/b");
        let mut out = String::from("https://example.com");
        normalize_path_into("/x/y/..%2Fz", &mut out).unwrap_err();
        assert_eq!(out, "https://example.com");
        // `..` never climbs into what was in the buffer before.
        let mut out = String::from("https://example.com/base");
        normalize_path_into("/../..", &mut out).unwrap();
        assert_eq!(out, "https://example.com/base/");
    }

    #[test]
    fn normalising_is_idempotent() {
        for raw in [
            "/a/./b/../c//d/",
            "/caf%c3%a9/%61",
            "/x%2fy/z%5c",
            "/a b/ü",
            "/%252e",
        ] {
            let once = ok(raw);
            assert_eq!(ok(&once), once, "{raw}");
        }
    }

    fn host(scheme: &str, host: &str) -> Option<String> {
        let mut out = String::new();
        push_host(scheme, host, &mut out).then_some(out)
    }

    #[test]
    fn hosts_are_canonical() {
        assert_eq!(host("https", "Example.COM").unwrap(), "example.com");
        assert_eq!(host("https", "example.com.").unwrap(), "example.com");
        assert_eq!(host("https", "example.com:443").unwrap(), "example.com");
        assert_eq!(host("https", "example.com.:443").unwrap(), "example.com");
        assert_eq!(host("http", "example.com:80").unwrap(), "example.com");
        assert_eq!(host("http", "example.com:443").unwrap(), "example.com:443");
        assert_eq!(
            host("https", "example.com:8443").unwrap(),
            "example.com:8443"
        );
        assert_eq!(host("https", "example.com:").unwrap(), "example.com");
        assert_eq!(host("https", "[::1]:443").unwrap(), "[::1]");
        assert_eq!(host("http", "[::1]:8080").unwrap(), "[::1]:8080");
        assert_eq!(
            host("http", "[FE80::1%25eth0]").unwrap(),
            "[fe80::1%25eth0]"
        );
        assert_eq!(
            host("http", "my_svc-1.internal").unwrap(),
            "my_svc-1.internal"
        );
        assert_eq!(host("http", "").unwrap(), "");
    }

    #[test]
    fn hosts_that_could_rewrite_the_target_are_rejected() {
        for bad in [
            "example.com/admin",
            "example.com\\admin",
            "user@example.com",
            "example.com?x",
            "example.com#x",
            "exa mple.com",
            "example.com:80:80",
            "example.com:8o",
            "::1",
            "[::1",
            "[::1]x",
            "[::1/admin]",
            "ex\u{e4}mple.com",
            "example.com\r\n",
        ] {
            assert_eq!(host("https", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn schemes_are_lower_cased_and_checked() {
        let mut out = String::new();
        assert!(push_scheme("HTTPS", &mut out));
        assert_eq!(out, "https");
        for bad in ["", "1http", "ht tp", "http:", "htt/p"] {
            assert!(!push_scheme(bad, &mut String::new()), "{bad:?}");
        }
    }
}
