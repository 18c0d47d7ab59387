//! `match.url` patterns: splitting at `<...>`, canonical literals, and the translation of both matching
//! strategies into one anchored regular expression (Oathkeeper's `rule/engine_regexp.go` and
//! `rule/engine_glob.go`, which use `ory/ladon/compiler` and `gobwas/glob`).

use crate::matcher::Strategy;
use crate::normalize::{
    decode_escape, is_control, is_default_port, push_canonical_escape, push_path_byte,
};

/// A compiled `match.url`.
#[derive(Debug)]
pub(crate) struct Pattern {
    /// Canonical literal text before the first `<...>` section: every URL the pattern matches starts
    /// with it. Empty when the pattern starts with a section.
    pub prefix: String,
    /// The whole canonical pattern when it has no section: it then matches exactly this URL.
    pub exact: Option<String>,
    /// The anchored regular expression (`^...$`). Regexp sections are capture groups, in order; glob
    /// sections capture nothing.
    pub regex: String,
}

enum Piece<'a> {
    Literal(&'a str),
    Section(&'a str),
}

/// Compiles `url` for `strategy`. The error says what is wrong with the pattern.
pub(crate) fn compile(url: &str, strategy: Strategy) -> Result<Pattern, String> {
    let pieces = split(url)?;
    let mut regex = String::with_capacity(url.len() * 2 + 2);
    regex.push('^');
    let mut prefix = None;
    let mut state = LiteralState {
        region: Region::Scheme,
        scheme: None,
        all_literal: true,
    };
    let mut literal = String::new();
    let mut sections = 0;
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Literal(text) => {
                literal.clear();
                canonical_literal(text, &mut state, &mut literal)?;
                regex.push_str(&regex::escape(&literal));
                if i == 0 {
                    prefix = Some(literal.clone());
                }
            }
            Piece::Section(section) => {
                sections += 1;
                state.all_literal = false;
                match strategy {
                    Strategy::Regexp => {
                        check_regexp_section(section)?;
                        regex.push('(');
                        regex.push_str(section);
                        regex.push(')');
                    }
                    Strategy::Glob => {
                        regex.push_str("(?:");
                        glob_to_regex(section, &mut regex)?;
                        regex.push(')');
                    }
                }
            }
        }
    }
    regex.push('$');
    let prefix = prefix.unwrap_or_default();
    let exact = (sections == 0).then(|| prefix.clone());
    Ok(Pattern {
        prefix,
        exact,
        regex,
    })
}

/// Splits at first-level `<...>` sections, counting nested `<` and `>` as ladon's `delimiterIndices`
/// does, so `<(?P<id>[0-9]+)>` is one section.
fn split(url: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut level = 0usize;
    let mut start = 0;
    for (i, b) in url.bytes().enumerate() {
        match b {
            b'<' => {
                if level == 0 {
                    if i > start {
                        pieces.push(Piece::Literal(&url[start..i]));
                    }
                    start = i + 1;
                }
                level += 1;
            }
            b'>' => {
                level = level
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced `>` at byte {i}"))?;
                if level == 0 {
                    pieces.push(Piece::Section(&url[start..i]));
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err("unbalanced `<`: a section is not closed".into());
    }
    if start < url.len() {
        pieces.push(Piece::Literal(&url[start..]));
    }
    Ok(pieces)
}

/// Which part of `scheme://host/path` the literal text being read belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    Scheme,
    Host,
    Path,
}

/// Where the literal text read so far ended, carried from one literal to the next.
struct LiteralState {
    region: Region,
    /// The scheme, when the pattern starts with a literal `scheme://`.
    scheme: Option<String>,
    /// No section has been read yet.
    all_literal: bool,
}

/// Writes `text` in the form the canonical request URL has: scheme and host lower-cased, the host
/// without a default port or trailing dot (when the literal shows where the host ends), and the path
/// part percent-encoded like [`crate::normalize_path`] does, so `/café`, `/caf%c3%a9` and `/%63af%C3%A9`
/// in a rule all match the request path `/caf%C3%A9`.
fn canonical_literal(text: &str, state: &mut LiteralState, out: &mut String) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut host_start = (state.region == Region::Host).then_some(0);
    while i < bytes.len() {
        let b = bytes[i];
        match state.region {
            Region::Scheme if bytes[i..].starts_with(b"://") => {
                if state.all_literal {
                    state.scheme = Some(out.clone());
                }
                out.push_str("://");
                host_start = Some(out.len());
                state.region = Region::Host;
                i += 3;
            }
            Region::Scheme | Region::Host if b == b'/' => {
                if let Some(start) = host_start {
                    let host = canonical_host_end(&out[start..], state.scheme.as_deref()).len();
                    out.truncate(start + host);
                }
                state.region = Region::Path;
            }
            Region::Scheme | Region::Host => {
                if is_control(b) {
                    return Err(format!("control character at byte {i}"));
                }
                out.push(char::from(b.to_ascii_lowercase()));
                i += 1;
            }
            Region::Path => {
                match b {
                    b'%' => {
                        let value = decode_escape(&bytes[i..])
                            .ok_or_else(|| format!("malformed percent-escape at byte {i}"))?;
                        if is_control(value) {
                            return Err(format!("control character at byte {i}"));
                        }
                        push_canonical_escape(value, out);
                        i += 2;
                    }
                    b'/' => out.push('/'),
                    _ if is_control(b) => return Err(format!("control character at byte {i}")),
                    _ => push_path_byte(b, out),
                }
                i += 1;
            }
        }
    }
    Ok(())
}

/// The host as written, without a default port for a literal `scheme` and without a trailing dot.
fn canonical_host_end<'h>(host: &'h str, scheme: Option<&str>) -> &'h str {
    let host = match (scheme, host.rsplit_once(':')) {
        (Some(scheme), Some((name, port))) if is_default_port(scheme, port) => name,
        _ => host,
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// A regexp section must be a regular expression on its own, so that it cannot close the group it is
/// wrapped in (`<a)|(b>`) and break the anchoring and the literal prefix.
/// Parsing it wrapped as well catches a `(?x)` comment that would swallow the closing parenthesis.
fn check_regexp_section(section: &str) -> Result<(), String> {
    let mut parser = regex_syntax::ast::parse::Parser::new();
    for text in [section, &format!("({section})")] {
        if let Err(e) = parser.parse(text) {
            return Err(format!(
                "section <{section}> is not a regular expression: {}",
                e.kind()
            ));
        }
    }
    Ok(())
}

/// Translates gobwas/glob syntax with separators `.` and `/`:
/// `*` any run of non-separators, `**` any run, `?` one non-separator, `[abc]` `[!abc]` `[a-z]`
/// `[!a-z]` one character in or not in the class, `{a,b}` alternatives (nestable), `\c` a literal `c`.
fn glob_to_regex(glob: &str, out: &mut String) -> Result<(), String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str(".*");
                i += 1;
            }
            '*' => out.push_str("[^./]*"),
            '?' => out.push_str("[^./]"),
            '[' => i = glob_class(&chars, i, out)?,
            '{' => {
                depth += 1;
                out.push_str("(?:");
            }
            ',' if depth > 0 => out.push('|'),
            '}' if depth > 0 => {
                depth -= 1;
                out.push(')');
            }
            '\\' => {
                i += 1;
                let c = chars
                    .get(i)
                    .ok_or_else(|| format!("section <{glob}> ends with `\\`"))?;
                push_literal_char(*c, out);
            }
            c => push_literal_char(c, out),
        }
        i += 1;
    }
    if depth != 0 {
        return Err(format!("section <{glob}> has an unclosed `{{`"));
    }
    Ok(())
}

/// `[...]` starting at `open`; returns the index of the closing `]`. As in gobwas, a class is either
/// one range `lo-hi` or a list of characters, optionally negated with a leading `!`.
fn glob_class(chars: &[char], open: usize, out: &mut String) -> Result<usize, String> {
    let unclosed = || "a `[` class is not closed".to_string();
    let mut i = open + 1;
    out.push('[');
    if chars.get(i) == Some(&'!') {
        out.push('^');
        i += 1;
    }
    if chars.get(i + 1) == Some(&'-') {
        let (lo, hi) = match (chars.get(i), chars.get(i + 2)) {
            (Some(lo), Some(hi)) if lo <= hi => (*lo, *hi),
            (Some(_), Some(_)) => return Err("a `[lo-hi]` class has lo > hi".into()),
            _ => return Err(unclosed()),
        };
        if chars.get(i + 3) != Some(&']') {
            return Err("a `[lo-hi]` class must close right after hi".into());
        }
        push_class_char(lo, out);
        out.push('-');
        push_class_char(hi, out);
        out.push(']');
        return Ok(i + 3);
    }
    let mut empty = true;
    loop {
        match chars.get(i) {
            None => return Err(unclosed()),
            Some(']') => break,
            Some('\\') => {
                i += 1;
                push_class_char(*chars.get(i).ok_or_else(unclosed)?, out);
            }
            Some(c) => push_class_char(*c, out),
        }
        empty = false;
        i += 1;
    }
    if empty {
        return Err("a `[]` class must not be empty".into());
    }
    out.push(']');
    Ok(i)
}

fn push_literal_char(c: char, out: &mut String) {
    let mut buf = [0; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

fn push_class_char(c: char, out: &mut String) {
    use std::fmt::Write;
    // Infallible for a String.
    let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regexp(url: &str) -> Pattern {
        compile(url, Strategy::Regexp).unwrap()
    }

    fn matches(url: &str, strategy: Strategy, target: &str) -> bool {
        let pattern = compile(url, strategy).unwrap();
        regex::Regex::new(&pattern.regex).unwrap().is_match(target)
    }

    #[test]
    fn regexp_sections_become_groups_and_literals_are_quoted() {
        let p = regexp("https://api.example.com/users/<[0-9]+>");
        assert_eq!(p.prefix, "https://api.example.com/users/");
        assert_eq!(p.exact, None);
        assert_eq!(p.regex, r"^https://api\.example\.com/users/([0-9]+)$");
        let p = regexp("<https?>://<[^/]+>/a.b");
        assert_eq!(p.prefix, "");
        assert_eq!(p.regex, r"^(https?)://([^/]+)/a\.b$");
    }

    #[test]
    fn nested_angle_brackets_stay_in_their_section() {
        let p = regexp("https://x/<(?P<id>[0-9]+)>/<a<b>c>");
        assert_eq!(p.regex, r"^https://x/((?P<id>[0-9]+))/(a<b>c)$");
    }

    #[test]
    fn unbalanced_or_escaping_sections_are_rejected() {
        for url in [
            "https://x/<.*",
            "https://x/.*>",
            "https://x/<a>>",
            "https://x/<a)|(b>",
            "https://x/<(a>",
            "https://x/<[a>",
            r"https://x/<a\>",
            "https://x/<(?x)a#>",
        ] {
            assert!(compile(url, Strategy::Regexp).is_err(), "{url}");
        }
    }

    #[test]
    fn literal_only_patterns_are_exact() {
        let p = regexp("https://api.example.com/health");
        assert_eq!(p.exact.as_deref(), Some("https://api.example.com/health"));
        assert_eq!(p.prefix, "https://api.example.com/health");
    }

    #[test]
    fn literals_are_canonical() {
        for (url, exact) in [
            (
                "HTTPS://API.Example.COM/Users",
                "https://api.example.com/Users",
            ),
            ("https://example.com:443/a", "https://example.com/a"),
            ("http://example.com:80/a", "http://example.com/a"),
            ("http://example.com:443/a", "http://example.com:443/a"),
            ("https://example.com./a", "https://example.com/a"),
            (
                "https://example.com/caf\u{e9}",
                "https://example.com/caf%C3%A9",
            ),
            (
                "https://example.com/caf%c3%a9",
                "https://example.com/caf%C3%A9",
            ),
            ("https://example.com/%61dmin", "https://example.com/admin"),
            ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
            ("https://example.com/a b", "https://example.com/a%20b"),
            ("https://example.com/a\\b", "https://example.com/a%5Cb"),
            ("https://[::1]:443/a", "https://[::1]/a"),
            ("myproxy.com/api", "myproxy.com/api"),
        ] {
            assert_eq!(regexp(url).exact.as_deref(), Some(exact), "{url}");
        }
        assert_eq!(
            regexp("https://<[a-z]+>.example.com.:443/x").regex,
            r"^https://([a-z]+)\.example\.com/x$"
        );
        // The port is only dropped when the scheme is literal.
        assert_eq!(
            regexp("<https?>://example.com:443/a").regex,
            r"^(https?)://example\.com:443/a$"
        );
        assert_eq!(regexp("<.*>/Caf%c3%a9").regex, r"^(.*)/Caf%C3%A9$");
        assert!(compile("https://x/%zz", Strategy::Regexp).is_err());
        assert!(compile("https://x/%00", Strategy::Regexp).is_err());
        assert!(compile("https://x/a\nb", Strategy::Regexp).is_err());
    }

    #[test]
    fn oathkeeper_regexp_examples() {
        let r = Strategy::Regexp;
        assert!(matches(
            "https://mydomain.com/<.*>",
            r,
            "https://mydomain.com/"
        ));
        assert!(matches(
            "https://mydomain.com/<.*>",
            r,
            "https://mydomain.com/a/b/c"
        ));
        assert!(!matches(
            "https://mydomain.com/<.*>",
            r,
            "https://mydomain.com"
        ));
        assert!(!matches(
            "https://mydomain.com/<.*>",
            r,
            "http://mydomain.com/a"
        ));
        assert!(!matches(
            "https://mydomain.com/<.*>",
            r,
            "https://mydomain.comx/a"
        ));
        // A dot in the literal is a dot, not "any character".
        assert!(!matches("https://my.com/<.*>", r, "https://myxcom/a"));
        assert!(matches(
            "http://<[^/]+>/api/<.*>",
            r,
            "http://a.b:8080/api/x"
        ));
        assert!(!matches("http://<[^/]+>/api/<.*>", r, "http://a.b/x/api/x"));
        assert!(matches("<https?>://x/<[0-9]+>", r, "http://x/12"));
        assert!(!matches("<https?>://x/<[0-9]+>", r, "https://x/12a"));
        // `<.*>` crosses `/`, `<[^/]+>` does not (GHSA-9f3w-vm54-7gfc).
        assert!(matches(
            "https://x/users/<.*>",
            r,
            "https://x/users/1/admin"
        ));
        assert!(!matches(
            "https://x/users/<[^/]+>",
            r,
            "https://x/users/1/admin"
        ));
        // Anchored: the whole URL must match.
        assert!(!matches("https://x/a", r, "https://x/a/b"));
        assert!(!matches("https://x/<a|b>", r, "https://x/ab"));
    }

    #[test]
    fn oathkeeper_glob_examples() {
        let g = Strategy::Glob;
        assert!(matches(
            "https://mydomain.com/<*>",
            g,
            "https://mydomain.com/users"
        ));
        assert!(!matches(
            "https://mydomain.com/<*>",
            g,
            "https://mydomain.com/users/1"
        ));
        assert!(!matches(
            "https://mydomain.com/<*>",
            g,
            "https://mydomain.com/a.json"
        ));
        assert!(matches(
            "https://mydomain.com/<**>",
            g,
            "https://mydomain.com/users/1.json"
        ));
        assert!(matches(
            "https://<*>.example.com/x",
            g,
            "https://api.example.com/x"
        ));
        assert!(!matches(
            "https://<*>.example.com/x",
            g,
            "https://a.b.example.com/x"
        ));
        assert!(matches(
            "https://<**>.example.com/x",
            g,
            "https://a.b.example.com/x"
        ));
        assert!(matches(
            "https://x/<{users,groups}>/<?>",
            g,
            "https://x/groups/7"
        ));
        assert!(!matches(
            "https://x/<{users,groups}>/<?>",
            g,
            "https://x/teams/7"
        ));
        assert!(!matches(
            "https://x/<{users,groups}>/<?>",
            g,
            "https://x/users/77"
        ));
        assert!(!matches("https://x/<?>", g, "https://x/."));
        assert!(matches("https://x/<[a-c]at>", g, "https://x/bat"));
        assert!(!matches("https://x/<[a-c]at>", g, "https://x/fat"));
        assert!(matches("https://x/<[!a-c]at>", g, "https://x/fat"));
        assert!(matches("https://x/<[abc]at>", g, "https://x/cat"));
        assert!(matches("https://x/<[!abc]at>", g, "https://x/rat"));
        assert!(!matches("https://x/<[!abc]at>", g, "https://x/at"));
        assert!(matches("https://x/<{cat,bat,[fr]at}>", g, "https://x/rat"));
        assert!(matches("https://x/<{a,{b,c}d}>", g, "https://x/cd"));
        assert!(matches(r"https://x/<\*>", g, "https://x/*"));
        assert!(!matches(r"https://x/<\*>", g, "https://x/a"));
        // Outside a `{}` group, `,` and `}` are plain characters; regex syntax is literal.
        assert!(matches("https://x/<a,b}>", g, "https://x/a,b}"));
        assert!(matches("https://x/<(a|b)+>", g, "https://x/(a|b)+"));
        // Literal text around glob sections is quoted, so `*` there is a star.
        assert!(matches("https://x/*/<*>", g, "https://x/*/a"));
        assert!(!matches("https://x/*/<*>", g, "https://x/b/a"));
    }

    #[test]
    fn glob_sections_capture_nothing() {
        let p = compile("https://<*>/<{a,b}>/<**>", Strategy::Glob).unwrap();
        assert_eq!(regex::Regex::new(&p.regex).unwrap().captures_len(), 1);
    }

    #[test]
    fn malformed_globs_are_rejected() {
        for url in [
            "https://x/<{a,b>",
            "https://x/<[a-z>",
            "https://x/<[]>",
            "https://x/<[z-a]>",
            "https://x/<[a-z0-9]>",
            r"https://x/<a\>",
        ] {
            assert!(compile(url, Strategy::Glob).is_err(), "{url}");
        }
    }
}
