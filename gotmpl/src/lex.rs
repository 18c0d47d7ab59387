//! Splits a template into text and action tokens, with Go's trim markers, comments and positions.

use crate::ast::*;
use crate::{Dialect, TemplateError};

#[derive(Debug)]
pub(crate) enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Dot,
    Ident(String),
    Lit(Lit),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

pub(crate) enum Item {
    Text(String),
    /// The tokens of an action (each with its offset) and the offset of its `{{`.
    Action(Vec<(Tok, usize)>, usize),
}

fn ident_len(s: &str, dash: bool) -> usize {
    match s.chars().next() {
        Some(c) if c.is_alphabetic() || c == '_' => {
            let n = s
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || dash && c == '-'))
                .unwrap_or(s.len());
            // A trailing `-` belongs to what follows (`-}}`).
            s[..n].trim_end_matches('-').len()
        }
        _ => 0,
    }
}

pub(crate) fn lex(d: &Dialect, s: &str, lines: &Lines) -> Result<Vec<Item>, TemplateError> {
    let (mut items, mut i, mut trim) = (Vec::new(), 0, false);
    loop {
        let rest = s.get(i..).unwrap_or("");
        let open = rest.find("{{").map(|k| i + k);
        let after = open.and_then(|o| s.get(o + 2..)).unwrap_or("");
        let ltrim = after.starts_with('-') && after[1..].starts_with(WS);
        let mut text = open.and_then(|o| s.get(i..o)).unwrap_or(rest);
        if trim {
            text = text.trim_start_matches(WS);
        }
        if ltrim {
            text = text.trim_end_matches(WS);
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_owned()));
        }
        let Some(open) = open else { return Ok(items) };
        let j = open + if ltrim { 4 } else { 2 };
        if let Some(body) = s.get(j..).and_then(|t| t.strip_prefix("/*")) {
            let e = body
                .find("*/")
                .ok_or_else(|| perr(lines.pos(open), "unclosed comment"))?;
            let after = &body[e + 2..];
            let rt = after.starts_with(WS) && after[1..].starts_with("-}}");
            if !rt && !after.starts_with("}}") {
                return Err(perr(
                    lines.pos(open),
                    "comment ends before closing delimiter",
                ));
            }
            (i, trim) = (j + e + if rt { 8 } else { 6 }, rt);
            continue;
        }
        let (toks, end, rt) = action(d, s, lines, j, open)?;
        items.push(Item::Action(toks, open));
        (i, trim) = (end, rt);
    }
}

type Lexed = (Vec<(Tok, usize)>, usize, bool);

fn action(
    d: &Dialect,
    s: &str,
    lines: &Lines,
    mut j: usize,
    open: usize,
) -> Result<Lexed, TemplateError> {
    let mut toks = Vec::new();
    loop {
        let raw = s.get(j..).unwrap_or("");
        let rest = raw.trim_start_matches(WS);
        let spaced = rest.len() < raw.len();
        j += raw.len() - rest.len();
        if rest.starts_with("}}") {
            return Ok((toks, j + 2, false));
        }
        if spaced && rest.starts_with("-}}") {
            return Ok((toks, j + 3, true));
        }
        let Some(c) = rest.chars().next() else {
            return Err(perr(lines.pos(open), "unclosed action"));
        };
        let next = &rest[c.len_utf8()..];
        let bad = |msg: &str| perr(lines.pos(j), msg);
        let (tok, len) = match c {
            '"' | '`' => {
                quoted(rest).ok_or_else(|| bad("unterminated or malformed quoted string"))?
            }
            '.' | '$' if !next.starts_with(|d: char| d.is_ascii_digit()) => {
                let var = ident_len(next, false);
                let mut n = if c == '$' { 1 + var } else { 0 };
                let mut names = Vec::new();
                while let Some(t) = rest.get(n..).and_then(|t| t.strip_prefix('.')) {
                    let l = ident_len(t, d.dash_fields);
                    if l == 0 {
                        break;
                    }
                    names.push(t[..l].to_owned());
                    n += 1 + l;
                }
                match (c, names.is_empty()) {
                    ('$', _) => (Tok::Var(next[..var].to_owned(), names), n),
                    (_, true) => (Tok::Dot, 1),
                    _ => (Tok::Field(names), n),
                }
            }
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::LParen, 1),
            ')' if next.starts_with('.') && ident_len(&next[1..], false) > 0 => {
                return Err(bad(
                    "field access on a parenthesized pipeline is not supported",
                ));
            }
            ')' => (Tok::RParen, 1),
            '0'..='9' | '.' | '+' | '-' => number(rest).ok_or_else(|| bad("bad number syntax"))?,
            c if c.is_alphabetic() || c == '_' => {
                let n = ident_len(rest, false);
                (Tok::Ident(rest[..n].to_owned()), n)
            }
            ':' if d.blocks && next.starts_with('=') => (Tok::Declare, 2),
            '=' if d.blocks => (Tok::Assign, 1),
            ',' if d.blocks => (Tok::Comma, 1),
            ':' | '=' => return Err(bad("variables are not supported")),
            c => return Err(perr(lines.pos(j), format!("unexpected {c:?} in action"))),
        };
        toks.push((tok, j));
        j += len;
    }
}

/// A decimal number at the start of `rest`: an int if it fits, else a finite float with `.` or `e`.
fn number(rest: &str) -> Option<(Tok, usize)> {
    let b = rest.as_bytes();
    let mut n = 1;
    while let Some(&c) = b.get(n) {
        let exp_sign = matches!(c, b'+' | b'-') && matches!(b[n - 1], b'e' | b'E');
        if !(c.is_ascii_alphanumeric() || c == b'.' || exp_sign) {
            break;
        }
        n += 1;
    }
    let t = &rest[..n];
    let v = match t.parse::<i64>() {
        Ok(i) => Lit::Int(i),
        Err(_) => Lit::Float(
            t.parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && t.contains(['.', 'e', 'E']))?,
        ),
    };
    Some((Tok::Lit(v), n))
}

/// A Go string literal at the start of `rest`: (token, byte length).
fn quoted(rest: &str) -> Option<(Tok, usize)> {
    let lit = |s: String, n| Some((Tok::Lit(Lit::Str(s)), n));
    if let Some(body) = rest.strip_prefix('`') {
        let e = body.find('`')?;
        return lit(body[..e].replace('\r', ""), e + 2);
    }
    let (mut out, mut it) = (String::new(), rest.char_indices().skip(1));
    while let Some((i, c)) = it.next() {
        out.push(match c {
            '"' => return lit(out, i + 1),
            '\n' => return None,
            '\\' => match it.next()?.1 {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'v' => '\u{b}',
                e @ ('\\' | '"') => e,
                e @ ('x' | 'u' | 'U') => {
                    let n = [2, 4, 8][usize::from(e != 'x') + usize::from(e == 'U')];
                    let hex: String = it.by_ref().take(n).map(|d| d.1).collect();
                    let ok = hex.len() == n && hex.bytes().all(|h| h.is_ascii_hexdigit());
                    char::from_u32(u32::from_str_radix(&hex, 16).ok().filter(|_| ok)?)?
                }
                _ => return None,
            },
            c => c,
        });
    }
    None
}
