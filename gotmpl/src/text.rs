//! Go's text forms: `%v` of a float64, JSON and HTML escaping, Sprig's `title`, and the header and URL views
//! of the session (`.Header.Get`, `.URL.Query`, `.URL.String`).

use crate::strict::MatchContext;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Go's `%v` (`json == false`) or `encoding/json` (`json == true`) text of a float64.
pub(crate) fn go_float(out: &mut String, f: f64, json: bool) {
    if !f.is_finite() {
        return out.push_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        });
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let a = f.abs();
    let use_e = if json {
        a != 0.0 && !(1e-6..1e21).contains(&a)
    } else {
        !(-4..6).contains(&exp)
    };
    let (first, rest) = digits.split_at(1.min(digits.len()));
    out.push_str(if f.is_sign_negative() { "-" } else { "" });
    let _ = if use_e {
        let (dot, sign, e) = (
            if rest.is_empty() { "" } else { "." },
            if exp < 0 { '-' } else { '+' },
            exp.abs(),
        );
        if json {
            write!(out, "{first}{dot}{rest}e{sign}{e}")
        } else {
            write!(out, "{first}{dot}{rest}e{sign}{e:02}")
        }
    } else if exp < 0 {
        write!(
            out,
            "0.{}{digits}",
            "0".repeat(exp.unsigned_abs() as usize - 1)
        )
    } else {
        let int_len = exp.unsigned_abs() as usize + 1;
        match digits.get(int_len..) {
            Some(frac) if !frac.is_empty() => write!(out, "{}.{frac}", &digits[..int_len]),
            _ => write!(
                out,
                "{digits}{}",
                "0".repeat(int_len.saturating_sub(digits.len()))
            ),
        }
    };
}

pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `textproto.CanonicalMIMEHeaderKey`.
pub(crate) fn canonical(s: &str) -> Cow<'_, str> {
    if !is_token(s) {
        return Cow::Borrowed(s);
    }
    let mut up = true;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        out.push(if up {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        up = c == '-';
    }
    if out == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(out)
    }
}

/// Values stored under `key` (Go's `Header[key]`; incoming names are canonicalised), no allocation.
pub(crate) fn header_values<'a>(h: &'a [(String, String)], key: &str) -> Vec<Cow<'a, str>> {
    let same = |name: &str| {
        let mut up = true;
        if !is_token(name) {
            return name == key;
        }
        name.len() == key.len()
            && name.bytes().zip(key.bytes()).all(|(c, k)| {
                let c2 = if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                up = c == b'-';
                c2 == k
            })
    };
    h.iter()
        .filter(|(n, _)| same(n))
        .map(|(_, v)| Cow::Borrowed(v.as_str()))
        .collect()
}

/// `url.ParseQuery`: pairs with a `;` or a bad escape are skipped.
pub(crate) fn query_pairs(raw: &str) -> Vec<(String, String)> {
    let pair = |p: &str| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        Some((
            unescape(k, true)?.into_owned(),
            unescape(v, true)?.into_owned(),
        ))
    };
    raw.split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .filter_map(pair)
        .collect()
}

pub(crate) fn query_values<'a>(raw: &str, key: &str) -> Vec<Cow<'a, str>> {
    query_pairs(raw)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| Cow::Owned(v))
        .collect()
}

/// Percent-decoding (`+` is a space when `plus`); `None` on a malformed escape.
pub(crate) fn unescape(s: &str, plus: bool) -> Option<Cow<'_, str>> {
    if !(s.contains('%') || plus && s.contains('+')) {
        return Some(Cow::Borrowed(s));
    }
    let (mut out, mut it) = (Vec::with_capacity(s.len()), s.bytes());
    while let Some(c) = it.next() {
        out.push(match c {
            b'%' => {
                let hex = [it.next()?, it.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16)
                    .ok()
                    .filter(|_| hex[0] != b'+')?
            }
            b'+' if plus => b' ',
            c => c,
        });
    }
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Go's `URL.String` (no user info, fragment or opaque form).
pub(crate) fn url_string(m: &MatchContext<'_>) -> String {
    let mut s = String::new();
    if !m.scheme.is_empty() {
        s.push_str(m.scheme);
        s.push(':');
    }
    if (!m.scheme.is_empty() || !m.host.is_empty()) && (!m.host.is_empty() || !m.path.is_empty()) {
        s.push_str("//");
        s.push_str(m.host);
    }
    if !m.path.is_empty() && !m.path.starts_with('/') && !m.host.is_empty() {
        s.push('/');
    }
    s.push_str(m.path);
    if !m.raw_query.is_empty() {
        s.push('?');
        s.push_str(m.raw_query);
    }
    s
}

/// Go's `html/template` escaping of a printed value (`HTMLEscapeString`).
pub(crate) fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Sprig's `title`: the first letter of each word in upper case.
pub(crate) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

/// Go's `url.QueryEscape`, as `urlquery` prints.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
