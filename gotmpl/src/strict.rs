//! Strict mode, Oathkeeper's templates (`x/template.go`): the Go `text/template` forms used by the `header`
//! mutator (`headers`), `cookie` mutator (`cookies`), `id_token` (`claims`), `remote_json` (`payload`)
//! and `remote` (`headers`). Compile once at rule load; [`Template::render`] walks a small AST against a
//! [`TemplateContext`] (Oathkeeper's `AuthenticationSession`).
//!
//! Supported: text; `{{- ` / ` -}}` trimming; `{{/* comments */}}`; field chains from `.` or `$`
//! (`.Subject`, `.Extra.a.b`, `.EmailVerified` (ours), `.Header`, `.MatchContext.{RegexpCaptureGroups,Method,Header,URL}`,
//! `.URL.{Scheme,Host,Path,RawQuery,Fragment,Query,String}`); `.Header.Get "k"` and `.URL.Query.Get "k"`;
//! string (`"…"`, `` `…` ``), decimal number, `true`/`false`/`nil` literals; pipelines `a | f b`;
//! `( … )`; `if` / `else if` / `else` / `end`. Functions: Oathkeeper's `print` (one argument; nil prints
//! "") and `printIndex` (element at index; "" when out of range or not a list); Go's `printf` (verbs
//! `%v %s %d %t %%`, no flags), `index`, `len`, `eq`, `ne`, `and`, `or`, `not`, `urlquery`; Sprig's
//! `toJson`, `default`, `b64enc`. Anything else is a compile error: `unsupported function foo at 1:4`.
//!
//! Output is Go's, for `missingkey=zero` over a `map[string]interface{}` whose numbers are float64:
//! a missing or null key prints `<no value>` (through `print`: ""); a field of a missing map is an exec
//! error (`nil pointer evaluating interface {}.x`); numbers print like Go `%v` of a float64 (`42`, `1.5`,
//! `1e+06`, `1.2345678e+07`); maps print as `map[a:1 b:2]` (sorted keys), lists as `[a b]`; `printf "%d"`
//! of a JSON number prints `%!d(float64=42)`; `eq .Extra.n 42` is an exec error (float64 vs int).
//!
//! Deviations from Go: unknown fields, wrong argument counts and bad verbs in a literal `printf` format
//! are compile errors, not exec errors; `range`, `with`, variables, `(pipe).Field`, non-decimal numbers,
//! char and octal escapes are unsupported; the session and `MatchContext` structs cannot be used as
//! values themselves (`{{ . }}`, `{{ .MatchContext | toJson }}`); `.URL.Path` is the percent-decoded
//! `path`, while `String` keeps the raw `path` (Go re-escapes when the request had no `RawPath`);
//! `toJson` of `.URL` gives its string form (Go: the `url.URL` struct); `eq x nil` is allowed (Go
//! errors). Positions are `line:byte-column`, as Go reports them.
//!
//! Security: templates escape nothing. Traits and claims are user-controlled and may hold CR, LF or NUL,
//! so a rendered header or cookie value must be checked by the caller (`rules` rejects CR, LF and other
//! control characters before sending it).

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// A compile or render failure; the message ends with `at line:col`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Exec(String),
}

/// The data a template sees (Oathkeeper's `AuthenticationSession`).
#[derive(Debug, Clone, Copy)]
pub struct TemplateContext<'a> {
    pub subject: &'a str,
    /// `Extra`; anything but an object behaves like a nil map.
    pub extra: &'a Value,
    /// `EmailVerified` (our extension): whether the authenticator found the subject's e-mail verified. Kept
    /// out of `Extra`, whose keys may come from user-editable traits.
    pub email_verified: bool,
    /// `Header` (set by the hydrator): (name, value) pairs, any case, repeated names allowed.
    pub header: &'a [(String, String)],
    pub match_context: MatchContext<'a>,
}

/// `MatchContext` of the session.
#[derive(Debug, Clone, Copy)]
pub struct MatchContext<'a> {
    pub regexp_capture_groups: &'a [String],
    pub method: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    /// The raw (percent-encoded) request path; `.URL.Path` yields it decoded, like Go's `URL.Path`.
    pub path: &'a str,
    pub raw_query: &'a str,
    pub header: &'a [(String, String)],
}

/// A compiled template; `Send + Sync`, render it any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        let lines = Lines::new(source);
        let items = lex(source, &lines)?.into_iter();
        match (Parser {
            lines,
            items,
            depth: 0,
        })
        .list()?
        {
            (nodes, Term::Eof) => Ok(Self { nodes }),
            (_, Term::End(pos)) => Err(perr(pos, "unexpected {{end}}")),
            (_, Term::Else(pos, _)) => Err(perr(pos, "unexpected {{else}}")),
        }
    }

    pub fn render(&self, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
        let mut out = String::new();
        Exec { c: ctx }.nodes(&self.nodes, &mut out)?;
        Ok(out)
    }

    /// For `id_token` `claims`: renders, then decodes the first JSON value like Go's
    /// `json.NewDecoder(&b).Decode` there (trailing text is ignored). `remote_json` differs: it
    /// requires the whole output to be one JSON text (`json.Unmarshal`) and POSTs the rendered bytes
    /// unchanged, so use [`Template::render`] and `serde_json::from_str` for the check.
    pub fn render_json(&self, ctx: &TemplateContext<'_>) -> Result<Value, TemplateError> {
        let out = self.render(ctx)?;
        match serde_json::Deserializer::from_str(&out)
            .into_iter::<Value>()
            .next()
        {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(TemplateError::Exec(format!(
                "rendered output is not JSON: {e}"
            ))),
            None => Err(TemplateError::Exec(
                "rendered output is empty, expected JSON".into(),
            )),
        }
    }

    /// Whether the template is constant text (lets callers skip rendering).
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }
}

// ------------------------------------------------------------------------------------------ AST

const MAX_DEPTH: usize = 64;
const WS: [char; 4] = [' ', '\t', '\r', '\n'];
const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos(usize, usize);

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// Line starts of the source, to turn byte offsets into `line:col` (byte column, as Go reports).
struct Lines(Vec<usize>);

impl Lines {
    fn new(src: &str) -> Self {
        Self(
            std::iter::once(0)
                .chain(src.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    fn pos(&self, off: usize) -> Pos {
        let line = self.0.partition_point(|&start| start <= off).max(1);
        Pos(line, off + 1 - self.0.get(line - 1).copied().unwrap_or(0))
    }
}

fn perr(pos: Pos, msg: impl fmt::Display) -> TemplateError {
    TemplateError::Parse(format!("{msg} at {pos}"))
}

fn xerr(pos: Pos, msg: impl fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("{msg} at {pos}"))
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe(Vec<Cmd>);

#[derive(Debug, Clone)]
enum Cmd {
    Call(Func, Vec<Expr>, Pos),
    /// `<map>.Get key` on `Header` or `URL.Query`.
    Get(Vec<Step>, Vec<Expr>, Pos),
    Value(Expr),
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Val<'static>),
    Field(Vec<Step>, Pos),
    Pipe(Box<Pipe>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Print,
    Printf,
    PrintIndex,
    Index,
    Len,
    Eq,
    Ne,
    And,
    Or,
    Not,
    Urlquery,
    ToJson,
    Default,
    B64enc,
}

const MANY: usize = usize::MAX;
#[rustfmt::skip]
const FUNCS: [(&str, Func, usize, usize); 14] = [
    ("print", Func::Print, 1, 1), ("printf", Func::Printf, 1, MANY), ("printIndex", Func::PrintIndex, 2, 2),
    ("index", Func::Index, 1, MANY), ("len", Func::Len, 1, 1), ("eq", Func::Eq, 2, MANY),
    ("ne", Func::Ne, 2, 2), ("and", Func::And, 1, MANY), ("or", Func::Or, 1, MANY), ("not", Func::Not, 1, 1),
    ("urlquery", Func::Urlquery, 0, MANY), ("toJson", Func::ToJson, 1, 1),
    ("default", Func::Default, 1, MANY), ("b64enc", Func::B64enc, 1, 1),
];

fn fname(f: Func) -> &'static str {
    FUNCS.iter().find(|e| e.1 == f).map_or("?", |e| e.0)
}

/// Compile-time type of a field chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Session,
    Mc,
    Url,
    Map,
    Dyn,
    Leaf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Subject,
    Extra,
    EmailVerified,
    Header,
    Groups,
    Method,
    McHeader,
    Url,
    Scheme,
    Host,
    Path,
    RawQuery,
    Empty,
    Query,
    UrlString,
    Get,
    Key(String),
}

fn resolve(ty: Ty, name: &str) -> Option<(Option<Step>, Ty)> {
    use Step as S;
    use Ty as T;
    let (step, next) = match (ty, name) {
        (T::Session, "Subject") => (S::Subject, T::Leaf),
        (T::Session, "Extra") => (S::Extra, T::Dyn),
        (T::Session, "EmailVerified") => (S::EmailVerified, T::Leaf),
        (T::Session, "Header") => (S::Header, T::Map),
        (T::Session, "MatchContext") => return Some((None, T::Mc)),
        (T::Mc, "RegexpCaptureGroups") => (S::Groups, T::Leaf),
        (T::Mc, "Method") => (S::Method, T::Leaf),
        (T::Mc, "Header") => (S::McHeader, T::Map),
        (T::Mc, "URL") => (S::Url, T::Url),
        (T::Url, "Scheme") => (S::Scheme, T::Leaf),
        (T::Url, "Host") => (S::Host, T::Leaf),
        (T::Url, "Path") => (S::Path, T::Leaf),
        (T::Url, "RawQuery") => (S::RawQuery, T::Leaf),
        (T::Url, "Fragment" | "Opaque" | "RawPath" | "RawFragment") => (S::Empty, T::Leaf),
        (T::Url, "Query") => (S::Query, T::Map),
        (T::Url, "String") => (S::UrlString, T::Leaf),
        (T::Map, "Get") => (S::Get, T::Leaf),
        (T::Map, _) => (S::Key(name.to_owned()), T::Leaf),
        (T::Dyn, _) => (S::Key(name.to_owned()), T::Dyn),
        _ => return None,
    };
    Some((Some(step), next))
}

// ---------------------------------------------------------------------------------------- lexer

#[derive(Debug)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Dot,
    Ident(String),
    Lit(Val<'static>),
    Pipe,
    LParen,
    RParen,
}

enum Item {
    Text(String),
    Action(Vec<(Tok, usize)>, usize),
}

type Lexed = (Vec<(Tok, usize)>, usize, bool);

fn ident_len(s: &str) -> usize {
    match s.chars().next() {
        Some(c) if c.is_alphabetic() || c == '_' => s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len()),
        _ => 0,
    }
}

fn lex(s: &str, lines: &Lines) -> Result<Vec<Item>, TemplateError> {
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
        let (toks, end, rt) = action(s, lines, j, open)?;
        items.push(Item::Action(toks, open));
        (i, trim) = (end, rt);
    }
}

fn action(s: &str, lines: &Lines, mut j: usize, open: usize) -> Result<Lexed, TemplateError> {
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
                let mut n = if c == '$' { 1 + ident_len(next) } else { 0 };
                let mut names = Vec::new();
                while let Some(t) = rest.get(n..).and_then(|t| t.strip_prefix('.')) {
                    let l = ident_len(t);
                    if l == 0 {
                        break;
                    }
                    names.push(t[..l].to_owned());
                    n += 1 + l;
                }
                match (c, names.is_empty()) {
                    ('$', _) => (Tok::Var(next[..ident_len(next)].to_owned(), names), n),
                    (_, true) => (Tok::Dot, 1),
                    _ => (Tok::Field(names), n),
                }
            }
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::LParen, 1),
            ')' if next.starts_with('.') && ident_len(&next[1..]) > 0 => {
                return Err(bad(
                    "field access on a parenthesized pipeline is not supported",
                ));
            }
            ')' => (Tok::RParen, 1),
            '0'..='9' | '.' | '+' | '-' => number(rest).ok_or_else(|| bad("bad number syntax"))?,
            c if c.is_alphabetic() || c == '_' => {
                let n = ident_len(rest);
                (Tok::Ident(rest[..n].to_owned()), n)
            }
            ':' | '=' => return Err(bad("variables are not supported")),
            c => return Err(perr(lines.pos(j), format!("unexpected {c:?} in action"))),
        };
        toks.push((tok, j));
        j += len;
    }
}

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
        Ok(i) => Val::Int(i),
        Err(_) => Val::Float(
            t.parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && t.contains(['.', 'e', 'E']))?,
        ),
    };
    Some((Tok::Lit(v), n))
}

/// A Go string literal at the start of `rest`: (token, byte length).
fn quoted(rest: &str) -> Option<(Tok, usize)> {
    let lit = |s: String, n| Some((Tok::Lit(Val::Str(Cow::Owned(s))), n));
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

// --------------------------------------------------------------------------------------- parser

enum Term {
    Eof,
    End(Pos),
    Else(Pos, Option<Pipe>),
}

enum Opnd {
    Func(Func),
    Get(Vec<Step>),
    Expr(Expr),
}

struct Parser {
    lines: Lines,
    items: std::vec::IntoIter<Item>,
    depth: usize,
}

struct Cur<'t> {
    t: &'t [(Tok, usize)],
    k: usize,
    end: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.k).map(|t| &t.0)
    }
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Term), TemplateError> {
        let mut nodes: Vec<Node> = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, open) = match item {
                Item::Text(t) => {
                    match nodes.last_mut() {
                        Some(Node::Text(prev)) => prev.push_str(&t),
                        _ => nodes.push(Node::Text(t)),
                    }
                    continue;
                }
                Item::Action(toks, open) => (toks, open),
            };
            let p = self.lines.pos(open);
            let word = |k: usize| match toks.get(k) {
                Some((Tok::Ident(w), _)) => w.as_str(),
                _ => "",
            };
            match (word(0), toks.len()) {
                ("end", 1) => return Ok((nodes, Term::End(p))),
                ("else", 1) => return Ok((nodes, Term::Else(p, None))),
                ("else", _) if word(1) == "if" => {
                    let cond = self.pipe_all(&toks[2..], open, "if")?;
                    return Ok((nodes, Term::Else(p, Some(cond))));
                }
                ("if", _) => {
                    let cond = self.pipe_all(&toks[1..], open, "if")?;
                    nodes.push(self.if_node(cond, p)?);
                }
                (w, _) if KEYWORDS.contains(&w) => {
                    return Err(perr(p, format!("unsupported or malformed action {w}")))
                }
                _ => nodes.push(Node::Action(self.pipe_all(&toks, open, "command")?)),
            }
        }
        Ok((nodes, Term::Eof))
    }

    fn if_node(&mut self, cond: Pipe, p: Pos) -> Result<Node, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(perr(p, "if nested too deep"));
        }
        let eof = || perr(p, "unexpected EOF: if without end");
        let (then, term) = self.list()?;
        let els = match term {
            Term::End(_) => Vec::new(),
            Term::Else(_, None) => match self.list()? {
                (els, Term::End(_)) => els,
                (_, Term::Else(p2, _)) => return Err(perr(p2, "expected end; found else")),
                (_, Term::Eof) => return Err(eof()),
            },
            Term::Else(p2, Some(c)) => vec![self.if_node(c, p2)?],
            Term::Eof => return Err(eof()),
        };
        self.depth -= 1;
        Ok(Node::If(cond, then, els))
    }

    fn pipe_all(&self, t: &[(Tok, usize)], open: usize, what: &str) -> Result<Pipe, TemplateError> {
        if t.is_empty() {
            return Err(perr(
                self.lines.pos(open),
                format!("missing value for {what}"),
            ));
        }
        let mut c = Cur { t, k: 0, end: open };
        let p = self.pipe(&mut c, 0)?;
        match c.t.get(c.k) {
            None => Ok(p),
            Some((t, off)) => Err(perr(self.lines.pos(*off), format!("unexpected {t:?}"))),
        }
    }

    fn pipe(&self, c: &mut Cur<'_>, depth: usize) -> Result<Pipe, TemplateError> {
        let at = |c: &Cur<'_>| self.lines.pos(c.t.get(c.k).map_or(c.end, |t| t.1));
        if depth > MAX_DEPTH {
            return Err(perr(at(c), "parentheses nested too deep"));
        }
        let mut cmds = Vec::new();
        loop {
            let mut ops = Vec::new();
            while c
                .peek()
                .is_some_and(|t| !matches!(t, Tok::Pipe | Tok::RParen))
            {
                ops.push(self.operand(c, depth)?);
            }
            if ops.is_empty() {
                return Err(perr(at(c), "missing command"));
            }
            cmds.push(cmd(ops, !cmds.is_empty())?);
            if !matches!(c.peek(), Some(Tok::Pipe)) {
                return Ok(Pipe(cmds));
            }
            c.k += 1;
        }
    }

    fn operand(&self, c: &mut Cur<'_>, depth: usize) -> Result<(Opnd, Pos), TemplateError> {
        let Some((tok, off)) = c.t.get(c.k) else {
            return Err(perr(self.lines.pos(c.end), "missing operand"));
        };
        c.k += 1;
        let p = self.lines.pos(*off);
        let lit = |v| Ok((Opnd::Expr(Expr::Lit(v)), p));
        let names = match tok {
            Tok::Ident(n) => match n.as_str() {
                "true" | "false" => return lit(Val::Bool(n == "true")),
                "nil" => return lit(Val::Nil),
                k if KEYWORDS.contains(&k) => {
                    return Err(perr(p, format!("unexpected keyword {n}")))
                }
                _ => match FUNCS.iter().find(|e| e.0 == n) {
                    Some(f) => return Ok((Opnd::Func(f.1), p)),
                    None => return Err(perr(p, format!("unsupported function {n}"))),
                },
            },
            Tok::Lit(v) => return lit(v.clone()),
            Tok::LParen => {
                let pipe = self.pipe(c, depth + 1)?;
                if !matches!(c.peek(), Some(Tok::RParen)) {
                    return Err(perr(p, "unclosed left paren"));
                }
                c.k += 1;
                return Ok((Opnd::Expr(Expr::Pipe(Box::new(pipe))), p));
            }
            Tok::Pipe | Tok::RParen => return Err(perr(p, format!("unexpected {tok:?}"))),
            Tok::Var(v, _) if !v.is_empty() => {
                return Err(perr(p, format!("undefined variable ${v}")))
            }
            Tok::Dot => &[][..],
            Tok::Field(names) | Tok::Var(_, names) => names.as_slice(),
        };
        let (mut ty, mut steps) = (Ty::Session, Vec::new());
        for (i, n) in names.iter().enumerate() {
            let (step, next) =
                resolve(ty, n).ok_or_else(|| perr(p, format!("can't evaluate field {n}")))?;
            if step == Some(Step::Get) && i + 1 == names.len() {
                return Ok((Opnd::Get(steps), p));
            } else if step == Some(Step::Get) {
                return Err(perr(p, "wrong number of args for Get: want 1 got 0"));
            }
            steps.extend(step);
            ty = next;
        }
        if matches!(ty, Ty::Session | Ty::Mc) {
            return Err(perr(
                p,
                "the session and MatchContext structs cannot be used as values; select a field",
            ));
        }
        Ok((Opnd::Expr(Expr::Field(steps, p)), p))
    }
}

fn cmd(ops: Vec<(Opnd, Pos)>, fin: bool) -> Result<Cmd, TemplateError> {
    let mut it = ops.into_iter();
    let Some((head, p)) = it.next() else {
        return Err(TemplateError::Parse("missing command".into()));
    };
    let args = it
        .map(|(o, p)| match o {
            Opnd::Expr(e) => Ok(e),
            Opnd::Func(f) => {
                arity(f, 0, p).map(|()| Expr::Pipe(Box::new(Pipe(vec![Cmd::Call(f, vec![], p)]))))
            }
            Opnd::Get(_) => Err(perr(p, "wrong number of args for Get: want 1 got 0")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = args.len() + usize::from(fin);
    match head {
        Opnd::Func(f) => {
            arity(f, n, p)?;
            if let (Func::Printf, Some(Expr::Lit(Val::Str(fmt)))) = (f, args.first()) {
                let mut it = fmt.split('%').skip(1);
                while let Some(seg) = it.next() {
                    match seg.chars().next() {
                        Some('v' | 's' | 'd' | 't') => {}
                        None if it.next().is_some() => {}
                        _ => return Err(perr(p, format!("unsupported printf verb in {fmt:?}"))),
                    }
                }
            }
            Ok(Cmd::Call(f, args, p))
        }
        Opnd::Get(recv) if n == 1 => Ok(Cmd::Get(recv, args, p)),
        Opnd::Get(_) => Err(perr(
            p,
            format!("wrong number of args for Get: want 1 got {n}"),
        )),
        Opnd::Expr(Expr::Lit(Val::Nil)) => Err(perr(p, "nil is not a command")),
        Opnd::Expr(_) if n > 0 => Err(perr(p, "can't give argument to non-function")),
        Opnd::Expr(e) => Ok(Cmd::Value(e)),
    }
}

fn arity(f: Func, n: usize, p: Pos) -> Result<(), TemplateError> {
    let (_, _, min, max) = FUNCS
        .iter()
        .find(|e| e.1 == f)
        .copied()
        .unwrap_or(("", f, 0, MANY));
    crate::arity(fname(f), n, min, max).map_err(|m| perr(p, m))
}

// ---------------------------------------------------------------------------- values, execution

#[derive(Debug, Clone)]
enum Val<'a> {
    Nil,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An array or object from `Extra`; `Null` is a nil map.
    Json(&'a Value),
    Strs(Vec<Cow<'a, str>>),
    Header(&'a [(String, String)]),
    Query(&'a str),
    Url,
}

type Groups<'a> = Vec<(Cow<'a, str>, Vec<Cow<'a, str>>)>;

fn from_json(v: &Value) -> Val<'_> {
    match v {
        Value::Null => Val::Nil,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        _ => Val::Json(v),
    }
}

fn type_name(v: &Val<'_>) -> &'static str {
    match v {
        Val::Nil => "<nil>",
        Val::Str(_) => "string",
        Val::Int(_) => "int",
        Val::Float(_) => "float64",
        Val::Bool(_) => "bool",
        Val::Json(Value::Array(_)) => "[]interface {}",
        Val::Json(_) => "map[string]interface {}",
        Val::Strs(_) => "[]string",
        Val::Header(_) => "http.Header",
        Val::Query(_) => "url.Values",
        Val::Url => "*url.URL",
    }
}

fn truth(v: &Val<'_>) -> bool {
    match v {
        Val::Nil => false,
        Val::Str(s) => !s.is_empty(),
        Val::Int(i) => *i != 0,
        Val::Float(f) => *f != 0.0,
        Val::Bool(b) => *b,
        Val::Json(v) => crate::json_truth(v),
        Val::Strs(l) => !l.is_empty(),
        Val::Header(h) => !h.is_empty(),
        Val::Query(q) => !query_pairs(q).is_empty(),
        Val::Url => true,
    }
}

fn want_str<'v>(v: &'v Val<'_>, p: Pos) -> Result<&'v str, TemplateError> {
    match v {
        Val::Str(s) => Ok(s),
        v => Err(xerr(
            p,
            format!(
                "wrong type for value; expected string; got {}",
                type_name(v)
            ),
        )),
    }
}

struct Exec<'a> {
    c: &'a TemplateContext<'a>,
}

impl<'a> Exec<'a> {
    fn nodes(&self, nodes: &'a [Node], out: &mut String) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => match self.pipe(p)? {
                    Val::Nil => out.push_str("<no value>"),
                    v => self.fmtv(out, &v, 'v', true),
                },
                Node::If(cond, then, els) => {
                    self.nodes(if truth(&self.pipe(cond)?) { then } else { els }, out)?;
                }
            }
        }
        Ok(())
    }

    fn pipe(&self, p: &'a Pipe) -> Result<Val<'a>, TemplateError> {
        let mut fin = None;
        for cmd in &p.0 {
            fin = Some(self.cmd(cmd, fin.take())?);
        }
        Ok(fin.unwrap_or(Val::Nil))
    }

    fn expr(&self, e: &'a Expr) -> Result<Val<'a>, TemplateError> {
        match e {
            Expr::Lit(Val::Str(s)) => Ok(Val::Str(Cow::Borrowed(s))),
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Field(steps, p) => self.steps(steps, *p),
            Expr::Pipe(pipe) => self.pipe(pipe),
        }
    }

    fn args(&self, args: &'a [Expr], fin: Option<Val<'a>>) -> Result<Vec<Val<'a>>, TemplateError> {
        let mut v = args
            .iter()
            .map(|a| self.expr(a))
            .collect::<Result<Vec<_>, _>>()?;
        v.extend(fin);
        Ok(v)
    }

    fn steps(&self, steps: &'a [Step], p: Pos) -> Result<Val<'a>, TemplateError> {
        let (c, m) = (self.c, &self.c.match_context);
        let s = |s: &'a str| Val::Str(Cow::Borrowed(s));
        let mut v = Val::Nil;
        for st in steps {
            v = match st {
                Step::Subject => s(c.subject),
                Step::EmailVerified => Val::Bool(c.email_verified),
                Step::Extra => Val::Json(if c.extra.is_object() {
                    c.extra
                } else {
                    &Value::Null
                }),
                Step::Header => Val::Header(c.header),
                Step::Groups => Val::Strs(
                    m.regexp_capture_groups
                        .iter()
                        .map(|g| Cow::Borrowed(g.as_str()))
                        .collect(),
                ),
                Step::Method => s(m.method),
                Step::McHeader => Val::Header(m.header),
                Step::Url => Val::Url,
                Step::Scheme => s(m.scheme),
                Step::Host => s(m.host),
                Step::Path => Val::Str(unescape(m.path, false).unwrap_or(Cow::Borrowed(m.path))),
                Step::RawQuery => s(m.raw_query),
                Step::Empty | Step::Get => s(""),
                Step::Query => Val::Query(m.raw_query),
                Step::UrlString => Val::Str(Cow::Owned(url_string(m))),
                Step::Key(k) => match v {
                    Val::Json(Value::Object(map)) => map.get(k).map_or(Val::Nil, from_json),
                    Val::Json(_) => Val::Nil,
                    Val::Header(h) => Val::Strs(header_values(h, k)),
                    Val::Query(q) => Val::Strs(query_values(q, k)),
                    Val::Nil => {
                        return Err(xerr(
                            p,
                            format!("nil pointer evaluating interface {{}}.{k}"),
                        ))
                    }
                    _ => {
                        return Err(xerr(
                            p,
                            format!("can't evaluate field {k} in type interface {{}}"),
                        ))
                    }
                },
            };
        }
        Ok(v)
    }

    fn cmd(&self, cmd: &'a Cmd, fin: Option<Val<'a>>) -> Result<Val<'a>, TemplateError> {
        match cmd {
            Cmd::Value(e) => self.expr(e),
            Cmd::Get(recv, args, p) => {
                let (recv, args) = (self.steps(recv, *p)?, self.args(args, fin)?);
                let key = want_str(args.first().unwrap_or(&Val::Nil), *p)?;
                let vals = match recv {
                    Val::Header(h) => header_values(h, &canonical(key)),
                    Val::Query(q) => query_values(q, key),
                    _ => Vec::new(),
                };
                Ok(Val::Str(vals.into_iter().next().unwrap_or_default()))
            }
            Cmd::Call(f @ (Func::And | Func::Or), args, _) => {
                let mut last = Val::Nil;
                for a in args {
                    last = self.expr(a)?;
                    if truth(&last) != (*f == Func::And) {
                        return Ok(last);
                    }
                }
                Ok(fin.unwrap_or(last))
            }
            Cmd::Call(f, args, p) => self.call(*f, self.args(args, fin)?, *p),
        }
    }

    fn call(&self, f: Func, v: Vec<Val<'a>>, p: Pos) -> Result<Val<'a>, TemplateError> {
        let e = |m: String| xerr(p, format!("error calling {}: {m}", fname(f)));
        let arg0 = v.first().cloned().unwrap_or(Val::Nil);
        let rest = v.get(1..).unwrap_or(&[]);
        let owned = |s: String| Ok(Val::Str(Cow::Owned(s)));
        match f {
            Func::Print if matches!(arg0, Val::Nil) => owned(String::new()),
            Func::Print => owned(self.to_string(&arg0)),
            Func::Printf => owned(self.sprintf(want_str(&arg0, p)?, rest)),
            Func::PrintIndex => {
                let Some(Val::Int(i)) = rest.first() else {
                    let got = type_name(rest.first().unwrap_or(&Val::Nil));
                    return Err(xerr(
                        p,
                        format!("wrong type for value; expected int; got {got}"),
                    ));
                };
                let len = match &arg0 {
                    Val::Strs(l) => l.len(),
                    Val::Json(Value::Array(a)) => a.len(),
                    _ => return owned(String::new()),
                };
                match usize::try_from(*i) {
                    Err(_) => Err(e("reflect: slice index out of range".into())),
                    Ok(u) if u < len => owned(self.to_string(&index(arg0, rest).map_err(e)?)),
                    _ => owned(String::new()),
                }
            }
            Func::Index => index(arg0, rest).map_err(e),
            Func::Len => {
                let n = match &arg0 {
                    Val::Str(s) => s.len(),
                    Val::Json(Value::Array(a)) => a.len(),
                    Val::Json(Value::Object(m)) => m.len(),
                    Val::Json(_) => 0,
                    Val::Strs(l) => l.len(),
                    Val::Header(_) | Val::Query(_) => groups(&arg0).len(),
                    Val::Nil => return Err(e("len of nil pointer".into())),
                    x => return Err(e(format!("len of type {}", type_name(x)))),
                };
                Ok(Val::Int(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            Func::Eq | Func::Ne => {
                let mut any = false;
                for b in rest {
                    any |= eq(&arg0, b).map_err(e)?;
                }
                Ok(Val::Bool(any == (f == Func::Eq)))
            }
            Func::Not => Ok(Val::Bool(!truth(&arg0))),
            Func::Urlquery => {
                let (mut s, mut prev_str) = (String::new(), true);
                for a in &v {
                    let is_str = matches!(a, Val::Str(_) | Val::Nil);
                    if !is_str && !prev_str {
                        s.push(' ');
                    }
                    match a {
                        Val::Nil => s.push_str("<no value>"),
                        a => self.fmtv(&mut s, a, 'v', true),
                    }
                    prev_str = is_str;
                }
                owned(crate::query_escape(&s))
            }
            Func::ToJson => {
                let mut s = String::new();
                self.json(&mut s, &arg0);
                owned(s)
            }
            Func::Default => Ok(rest.first().filter(|x| truth(x)).cloned().unwrap_or(arg0)),
            Func::B64enc => owned(base64(want_str(&arg0, p)?.as_bytes())),
            Func::And | Func::Or => Ok(arg0),
        }
    }

    fn to_string(&self, v: &Val<'_>) -> String {
        let mut s = String::new();
        self.fmtv(&mut s, v, 'v', true);
        s
    }

    fn sprintf(&self, fmt: &str, args: &[Val<'_>]) -> String {
        let (mut out, mut n, mut it) = (String::new(), 0, fmt.chars());
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            n += match (it.next(), args.get(n)) {
                (None, _) => {
                    out.push_str("%!(NOVERB)");
                    0
                }
                (Some('%'), _) => {
                    out.push('%');
                    0
                }
                (Some(verb), None) => {
                    let _ = write!(out, "%!{verb}(MISSING)");
                    1
                }
                (Some(verb @ ('v' | 's' | 'd' | 't')), Some(a)) => {
                    self.fmtv(&mut out, a, verb, true);
                    1
                }
                (Some(verb), Some(a)) => {
                    self.bad_verb(&mut out, a, verb);
                    1
                }
            };
        }
        for (i, a) in args.iter().enumerate().skip(n) {
            out.push_str(if i == n { "%!(EXTRA " } else { ", " });
            match a {
                Val::Nil => out.push_str("<nil>"),
                a => {
                    let _ = write!(out, "{}=", type_name(a));
                    self.fmtv(&mut out, a, 'v', false);
                }
            }
        }
        if args.len() > n {
            out.push(')');
        }
        out
    }

    fn bad_verb(&self, out: &mut String, v: &Val<'_>, verb: char) {
        if matches!(v, Val::Nil) {
            let _ = write!(out, "%!{verb}(<nil>)");
        } else {
            let _ = write!(out, "%!{verb}({}=", type_name(v));
            self.fmtv(out, v, 'v', false);
            out.push(')');
        }
    }

    /// Go's fmt for the verbs `v s d t`; lists and maps format their elements with the same verb.
    fn fmtv(&self, out: &mut String, v: &Val<'_>, verb: char, top: bool) {
        let ok = match v {
            Val::Nil => !top || verb == 'v',
            Val::Str(_) | Val::Url => matches!(verb, 'v' | 's'),
            Val::Int(_) => matches!(verb, 'v' | 'd'),
            Val::Float(_) => verb == 'v',
            Val::Bool(_) => matches!(verb, 'v' | 't'),
            _ => true,
        };
        match v {
            _ if !ok => self.bad_verb(out, v, verb),
            Val::Nil => out.push_str("<nil>"),
            Val::Str(s) => out.push_str(s),
            Val::Int(i) => out.push_str(&i.to_string()),
            Val::Float(f) => go_float(out, *f, false),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Url => out.push_str(&url_string(&self.c.match_context)),
            _ => {
                let (es, xs) = (entries(v), items(v));
                let list = xs.is_some();
                out.push_str(if list { "[" } else { "map[" });
                let all = es.into_iter().flatten().map(|(k, x)| (Some(k), x));
                for (i, (k, x)) in all
                    .chain(xs.into_iter().flatten().map(|x| (None, x)))
                    .enumerate()
                {
                    out.push_str(if i > 0 { " " } else { "" });
                    if let Some(k) = k {
                        self.fmtv(out, &Val::Str(k), verb, false);
                        out.push(':');
                    }
                    self.fmtv(out, &x, verb, false);
                }
                out.push(']');
            }
        }
    }

    /// Go's `encoding/json`, as used by Sprig's `toJson`.
    fn json(&self, out: &mut String, v: &Val<'_>) {
        match v {
            Val::Nil | Val::Json(Value::Null) => out.push_str("null"),
            Val::Str(s) => json_str(out, s),
            Val::Int(i) => out.push_str(&i.to_string()),
            Val::Float(f) => go_float(out, *f, true),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Url => json_str(out, &url_string(&self.c.match_context)),
            _ => {
                let (es, xs) = (entries(v), items(v));
                let list = xs.is_some();
                out.push(if list { '[' } else { '{' });
                let all = es.into_iter().flatten().map(|(k, x)| (Some(k), x));
                for (i, (k, x)) in all
                    .chain(xs.into_iter().flatten().map(|x| (None, x)))
                    .enumerate()
                {
                    out.push_str(if i > 0 { "," } else { "" });
                    if let Some(k) = k {
                        json_str(out, &k);
                        out.push(':');
                    }
                    self.json(out, &x);
                }
                out.push(if list { ']' } else { '}' });
            }
        }
    }
}

fn index<'a>(mut item: Val<'a>, idx: &[Val<'_>]) -> Result<Val<'a>, String> {
    for i in idx {
        let slot = |len: usize| match i {
            Val::Int(n) => usize::try_from(*n)
                .ok()
                .filter(|u| *u < len)
                .ok_or(format!("index out of range: {n}")),
            Val::Nil => Err("cannot index slice/array with nil".to_owned()),
            x => Err(format!(
                "cannot index slice/array with type {}",
                type_name(x)
            )),
        };
        let key = || match i {
            Val::Str(s) => Ok(s.as_ref()),
            x => Err(format!("value has type {}; should be string", type_name(x))),
        };
        item = match item {
            Val::Nil => return Err("index of untyped nil".into()),
            Val::Json(Value::Array(a)) => a.get(slot(a.len())?).map_or(Val::Nil, from_json),
            Val::Json(Value::Object(m)) => m.get(key()?).map_or(Val::Nil, from_json),
            Val::Json(_) => key().map(|_| Val::Nil)?,
            Val::Strs(l) => {
                let n = slot(l.len())?;
                l.into_iter().nth(n).map_or(Val::Nil, Val::Str)
            }
            Val::Str(s) => Val::Int(
                s.as_bytes()
                    .get(slot(s.len())?)
                    .map_or(0, |b| i64::from(*b)),
            ),
            Val::Header(h) => Val::Strs(header_values(h, key()?)),
            Val::Query(q) => Val::Strs(query_values(q, key()?)),
            x => return Err(format!("can't index item of type {}", type_name(&x))),
        };
    }
    Ok(item)
}

/// Go's `eq` for one pair: basic kinds must match (int vs float64 is an error), nil equals only nil.
fn eq(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    let basic = |v: &Val<'_>| matches!(v, Val::Bool(_) | Val::Int(_) | Val::Float(_) | Val::Str(_));
    match (a, b) {
        (Val::Nil, _) | (_, Val::Nil) => Ok(matches!((a, b), (Val::Nil, Val::Nil))),
        (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
        (Val::Int(x), Val::Int(y)) => Ok(x == y),
        (Val::Float(x), Val::Float(y)) => Ok(x == y),
        (Val::Str(x), Val::Str(y)) => Ok(x == y),
        (Val::Url, Val::Url) => Ok(true),
        _ if basic(a) || basic(b) => Err("incompatible types for comparison".into()),
        _ => Err(format!(
            "non-comparable types {} and {}",
            type_name(a),
            type_name(b)
        )),
    }
}

/// A header map or `url.Values` as (key, values) groups.
fn groups<'v>(v: &Val<'v>) -> Groups<'v> {
    let pairs: Vec<(Cow<'v, str>, Cow<'v, str>)> = match v {
        Val::Header(h) => h
            .iter()
            .map(|(k, x)| (canonical(k), Cow::Borrowed(x.as_str())))
            .collect(),
        Val::Query(q) => query_pairs(q)
            .into_iter()
            .map(|(k, x)| (Cow::Owned(k), Cow::Owned(x)))
            .collect(),
        _ => Vec::new(),
    };
    let mut groups: Groups<'v> = Vec::new();
    for (k, x) in pairs {
        match groups.iter_mut().find(|g| g.0 == k) {
            Some(g) => g.1.push(x),
            None => groups.push((k, vec![x])),
        }
    }
    groups
}

/// Entries of a map value, sorted by key (Go's fmt and encoding/json both sort).
fn entries<'v>(v: &Val<'v>) -> Option<Vec<(Cow<'v, str>, Val<'v>)>> {
    let mut es: Vec<_> = match v {
        Val::Json(Value::Object(m)) => m
            .iter()
            .map(|(k, x)| (Cow::Borrowed(k.as_str()), from_json(x)))
            .collect(),
        Val::Header(_) | Val::Query(_) => groups(v)
            .into_iter()
            .map(|(k, x)| (k, Val::Strs(x)))
            .collect(),
        _ => return None,
    };
    es.sort_by(|a, b| a.0.cmp(&b.0));
    Some(es)
}

/// Elements of a list value.
fn items<'v>(v: &Val<'v>) -> Option<Vec<Val<'v>>> {
    match v {
        Val::Json(Value::Array(a)) => Some(a.iter().map(from_json).collect()),
        Val::Strs(l) => Some(l.iter().cloned().map(Val::Str).collect()),
        _ => None,
    }
}

/// Go's `%v` (`json == false`) or `encoding/json` (`json == true`) text of a float64.
fn go_float(out: &mut String, f: f64, json: bool) {
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

fn json_str(out: &mut String, s: &str) {
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

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize]
            } else {
                b'='
            };
            out.push(char::from(c));
        }
    }
    out
}

fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `textproto.CanonicalMIMEHeaderKey`.
fn canonical(s: &str) -> Cow<'_, str> {
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
fn header_values<'a>(h: &'a [(String, String)], key: &str) -> Vec<Cow<'a, str>> {
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
fn query_pairs(raw: &str) -> Vec<(String, String)> {
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

fn query_values<'a>(raw: &str, key: &str) -> Vec<Cow<'a, str>> {
    query_pairs(raw)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| Cow::Owned(v))
        .collect()
}

/// Percent-decoding (`+` is a space when `plus`); `None` on a malformed escape.
fn unescape(s: &str, plus: bool) -> Option<Cow<'_, str>> {
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
fn url_string(m: &MatchContext<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(src: &str, extra: &Value) -> Result<String, TemplateError> {
        let groups = vec!["a".to_owned(), "b".to_owned()];
        let (hdr, sess) = (
            pairs(&[("x-foo", "bar"), ("X-Foo", "baz"), ("accept", "*/*")]),
            pairs(&[("X-Sess", "s1")]),
        );
        let match_context = MatchContext {
            regexp_capture_groups: &groups,
            method: "GET",
            scheme: "https",
            host: "example.com:8443",
            path: "/a%20b/c",
            raw_query: "q=1+2&q=3&x=%zz&e=",
            header: &hdr,
        };
        let ctx = TemplateContext {
            subject: "alice",
            extra,
            email_verified: false,
            header: &sess,
            match_context,
        };
        Template::compile(src)?.render(&ctx)
    }

    fn extra() -> Value {
        json!({"identity": {"id": "u1", "traits": {"email": "a@b.c"}}, "n": 42, "big": 1000000, "id8": 12345678,
            "f": 1.5, "tiny": 0.00001, "t": true, "nul": null, "arr": ["a", "b"], "e": "", "html": "<a&b>",
            "obj": {"b": 2, "a": "x", "c": [1, "y", null]}, "crlf": "v\r\nX-Evil: 1"})
    }

    fn ok(src: &str) -> String {
        run(src, &extra()).unwrap()
    }

    fn err(src: &str) -> String {
        run(src, &extra()).unwrap_err().to_string()
    }

    #[test]
    fn forms_render_like_go() {
        let cases = [
            ("{{ print .Subject }}|{{ .Subject }}|{{ $.Subject }}", "alice|alice|alice"),
            ("{{ print .Extra.identity.traits.email }} {{ .Extra.identity.id }}", "a@b.c u1"),
            ("{{ .Extra.missing }}|{{ .Extra.nul }}|{{ print .Extra.missing }}", "<no value>|<no value>|"),
            ("{{ .Extra.n }} {{ .Extra.big }} {{ .Extra.id8 }} {{ .Extra.f }}", "42 1e+06 1.2345678e+07 1.5"),
            ("{{ .Extra.tiny }} {{ .Extra.t }} {{ -3 }} {{ 2.50 }} {{ true }}", "1e-05 true -3 2.5 true"),
            ("{{ .Extra.obj }} {{ .Extra.arr }}", "map[a:x b:2 c:[1 y <nil>]] [a b]"),
            ("{{ printIndex .MatchContext.RegexpCaptureGroups 1 }}|{{ printIndex .MatchContext.RegexpCaptureGroups 5 }}", "b|"),
            ("{{ printIndex .Extra.missing 0 }}|{{ printIndex .Extra.arr 0 }}|{{ printIndex .Subject 0 }}", "|a|"),
            ("{{ index .MatchContext.RegexpCaptureGroups 0 }} {{ .MatchContext.RegexpCaptureGroups }}", "a [a b]"),
            ("{{ index .Extra \"identity\" \"id\" }} {{ index .Extra.arr 1 }} {{ index .Subject 0 }}", "u1 b 97"),
            ("{{ .MatchContext.Header.Get \"x-FOO\" }}|{{ .MatchContext.Header.Get \"X-None\" }}", "bar|"),
            ("{{ .Header.Get \"x-sess\" }}|{{ .MatchContext.Header.Accept }}", "s1|[*/*]"),
            ("{{ index .MatchContext.Header \"X-Foo\" }} {{ index .MatchContext.Header \"x-foo\" }}", "[bar baz] []"),
            ("{{ .MatchContext.Header }}", "map[Accept:[*/*] X-Foo:[bar baz]]"),
            ("{{ .MatchContext.URL.Scheme }} {{ .MatchContext.URL.Host }} {{ .MatchContext.URL.Path }}", "https example.com:8443 /a b/c"),
            ("{{ .MatchContext.URL.RawQuery }}|{{ .MatchContext.Method }}", "q=1+2&q=3&x=%zz&e=|GET"),
            ("{{ .MatchContext.URL.Query.Get \"q\" }}|{{ .MatchContext.URL.Query }}", "1 2|map[e:[] q:[1 2 3]]"),
            ("{{ .MatchContext.URL }}", "https://example.com:8443/a%20b/c?q=1+2&q=3&x=%zz&e="),
            ("{{ printf \"%s-%d-%v-%t %%\" .Subject 7 .Extra.f .Extra.t }}", "alice-7-1.5-true %"),
            ("{{ printf \"%d|%s|%v\" .Extra.n .Extra.missing .Extra.missing }}", "%!d(float64=42)|%!s(<nil>)|<nil>"),
            ("{{ printf \"%s %s\" .Subject }}|{{ printf \"%s\" .Subject 1 .Extra.nul }}", "alice %!s(MISSING)|alice%!(EXTRA int=1, <nil>)"),
            ("{{ printf \"%d\" .Extra.arr }} {{ printf \"%v\" .Extra.obj.c }}", "[%!d(string=a) %!d(string=b)] [1 y <nil>]"),
            ("{{ .Subject | printf \"%s!\" }}|{{ .Extra.identity.id | printf \"%s\" | printf \"<%s>\" }}", "alice!|<u1>"),
            ("{{ .Extra.missing | default \"anon\" }} {{ .Subject | default \"anon\" }}", "anon alice"),
            ("{{ \"X-Foo\" | .MatchContext.Header.Get }} {{ print (printIndex .MatchContext.RegexpCaptureGroups 0) }}", "bar a"),
            ("{{ if .Extra.t }}yes{{ else }}no{{ end }} {{ if .Extra.missing }}yes{{ else }}no{{ end }}", "yes no"),
            ("{{ if .Extra.e }}1{{ else if .Extra.arr }}2{{ else }}3{{ end }}{{ if .Subject }}{{ if .Extra.e }}x{{ end }}y{{ end }}", "2y"),
            ("{{ if and .Extra.t (not .Extra.missing) }}ok{{ end }} {{ or .Extra.missing \"fb\" }} [{{ and .Extra.t .Extra.e }}]", "ok fb []"),
            ("{{ eq .Subject \"bob\" \"alice\" }} {{ ne .MatchContext.Method \"GET\" }} {{ eq .Extra.f 1.5 }}", "true false true"),
            ("{{ len .Extra.arr }} {{ len .Subject }} {{ len .Extra.obj }} {{ len .MatchContext.Header }}", "2 5 3 2"),
            ("{{ .Extra.obj | toJson }} {{ toJson .Extra.html }} {{ .MatchContext.RegexpCaptureGroups | toJson }}", r#"{"a":"x","b":2,"c":[1,"y",null]} "\u003ca\u0026b\u003e" ["a","b"]"#),
            ("{{ toJson .Extra.big }} {{ toJson .Extra.tiny }} {{ toJson .MatchContext.Header }}", r#"1000000 0.00001 {"Accept":["*/*"],"X-Foo":["bar","baz"]}"#),
            ("{{ urlquery .Extra.html }} {{ urlquery .Extra.missing }} {{ .Subject | b64enc }} {{ b64enc \"ab\" }}", "%3Ca%26b%3E %3Cno+value%3E YWxpY2U= YWI="),
            ("a \n {{- .Subject -}} \n b|{{ 3 -}} x|x {{- /* c */ -}} y|{{/* c */}}z", "aaliceb|3x|xy|z"),
            ("{{ `raw\\n` }} {{ \"t\\x41\\u00e9\\\"\" }}", "raw\\n tAé\""),
        ];
        for (src, want) in cases {
            assert_eq!(run(src, &extra()).as_deref(), Ok(want), "{src}");
        }
    }

    #[test]
    fn compile_errors_have_positions() {
        let cases = [
            ("{{ foo .Subject }}", "template: unsupported function foo at 1:4"),
            ("ab\n  {{ .Subject | bar }}", "template: unsupported function bar at 2:17"),
            ("x{{ .Subject ", "template: unclosed action at 1:2"),
            ("{{ if .Subject }}x", "template: unexpected EOF: if without end at 1:1"),
            ("{{ if .Subject }}x{{ else }}y{{ else }}z{{ end }}", "template: expected end; found else at 1:30"),
            ("{{ end }}", "template: unexpected {{end}} at 1:1"),
            ("{{ .Nope }}", "template: can't evaluate field Nope at 1:4"),
            ("{{ .Subject.x }}", "template: can't evaluate field x at 1:4"),
            ("{{ print 1 2 }}", "template: wrong number of args for print: want 1 got 2 at 1:4"),
            ("{{ \"abc }}", "template: unterminated or malformed quoted string at 1:4"),
            ("{{ printf \"%x\" 1 }}", "template: unsupported printf verb in \"%x\" at 1:4"),
            ("{{ range .Extra.arr }}{{ end }}", "template: unsupported or malformed action range at 1:1"),
            ("{{ $x := 1 }}", "template: variables are not supported at 1:7"),
            ("{{ $x }}", "template: undefined variable $x at 1:4"),
            ("{{ .Subject .Subject }}", "template: can't give argument to non-function at 1:4"),
            ("{{ .MatchContext.Header.Get }}", "template: wrong number of args for Get: want 1 got 0 at 1:4"),
            ("{{ . }}", "template: the session and MatchContext structs cannot be used as values; select a field at 1:4"),
            ("{{ }}", "template: missing value for command at 1:1"),
            ("{{ ( }}", "template: missing command at 1:1"),
            ("{{ nil }}", "template: nil is not a command at 1:4"),
            ("{{ (print 1).x }}", "template: field access on a parenthesized pipeline is not supported at 1:12"),
            ("{{ 0x10 }}", "template: bad number syntax at 1:4"),
            ("{{/* x }}", "template: unclosed comment at 1:1"),
        ];
        for (src, want) in cases {
            let got = Template::compile(src).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(want), "{src}");
        }
    }

    #[test]
    fn exec_errors() {
        assert_eq!(
            err("{{ index .MatchContext.RegexpCaptureGroups 5 }}"),
            "template: error calling index: index out of range: 5 at 1:4"
        );
        assert_eq!(
            err("{{ .Extra.identity.nope.x }}"),
            "template: nil pointer evaluating interface {}.x at 1:4"
        );
        assert_eq!(
            err("{{ .Extra.n.x }}"),
            "template: can't evaluate field x in type interface {} at 1:4"
        );
        assert_eq!(
            err("{{ index .Extra.missing 0 }}"),
            "template: error calling index: index of untyped nil at 1:4"
        );
        assert_eq!(
            err("{{ len .Extra.n }}"),
            "template: error calling len: len of type float64 at 1:4"
        );
        assert_eq!(
            err("{{ eq .Extra.n 42 }}"),
            "template: error calling eq: incompatible types for comparison at 1:4"
        );
        assert!(err("{{ printIndex .MatchContext.RegexpCaptureGroups -1 }}")
            .contains("error calling printIndex"));
        assert!(err("{{ printIndex .Extra.arr .Extra.n }}").contains("expected int; got float64"));
        assert!(err("{{ b64enc .Extra.n }}").contains("expected string; got float64"));
    }

    #[test]
    fn literal_and_json_output() {
        assert!(Template::compile("plain {text}").unwrap().is_literal());
        assert!(Template::compile("a{{/* x */}}b").unwrap().is_literal());
        assert!(!Template::compile("{{ .Subject }}").unwrap().is_literal());
        let ctx = TemplateContext {
            subject: "s",
            extra: &json!({"identity": {"id": "u1"}}),
            email_verified: false,
            header: &[],
            match_context: MatchContext {
                regexp_capture_groups: &[],
                method: "",
                scheme: "",
                host: "",
                path: "",
                raw_query: "",
                header: &[],
            },
        };
        let claims = Template::compile(
            r#"{"aud": ["my-api"], "session": {{ .Extra.identity | toJson }}} trailing"#,
        )
        .unwrap();
        assert_eq!(
            claims.render_json(&ctx).unwrap(),
            json!({"aud": ["my-api"], "session": {"id": "u1"}})
        );
        assert!(Template::compile(r#"{"sub": {{ .Subject }}}"#)
            .unwrap()
            .render_json(&ctx)
            .is_err());
        assert_eq!(
            Template::compile("{{ .Extra }}|{{ .MatchContext.URL }}")
                .unwrap()
                .render(&ctx)
                .unwrap(),
            "map[identity:map[id:u1]]|"
        );
        let nil_extra = TemplateContext {
            extra: &Value::Null,
            ..ctx
        };
        let t =
            Template::compile("{{ .Extra }}|{{ .Extra | toJson }}|{{ .Extra.x }}|{{ len .Extra }}")
                .unwrap();
        assert_eq!(t.render(&nil_extra).unwrap(), "map[]|null|<no value>|0");
        let t = Template::compile(
            "{{ .EmailVerified }}|{{ if .EmailVerified }}y{{ else }}n{{ end }}|{{ toJson .EmailVerified }}",
        )
        .unwrap();
        assert_eq!(t.render(&ctx).unwrap(), "false|n|false");
        let verified = TemplateContext {
            email_verified: true,
            ..ctx
        };
        assert_eq!(t.render(&verified).unwrap(), "true|y|true");
        assert!(Template::compile("{{ .EmailVerified.x }}").is_err());
        let e = Template::compile("é{{ foo }}").unwrap_err().to_string();
        assert_eq!(e, "template: unsupported function foo at 1:6");
    }

    #[test]
    fn floats_match_go() {
        let cases = [
            (0.0, "0", "0"),
            (-0.0, "-0", "-0"),
            (100000.0, "100000", "100000"),
            (123456789.0, "1.23456789e+08", "123456789"),
            (0.0001, "0.0001", "0.0001"),
            (1e21, "1e+21", "1e+21"),
            (1e20, "1e+20", "100000000000000000000"),
            (1e-7, "1e-07", "1e-7"),
            (-2.5e-300, "-2.5e-300", "-2.5e-300"),
        ];
        for (f, v, j) in cases {
            let (mut a, mut b) = (String::new(), String::new());
            go_float(&mut a, f, false);
            go_float(&mut b, f, true);
            assert_eq!((a.as_str(), b.as_str()), (v, j), "{f}");
        }
    }

    #[test]
    fn crlf_passes_through_unescaped() {
        assert_eq!(ok("{{ .Extra.crlf }}"), "v\r\nX-Evil: 1");
    }

    #[test]
    fn random_templates_never_panic() {
        const PIECES: [&str; 40] = [
            "{{",
            "}}",
            "{{- ",
            " -}}",
            ".",
            "Extra",
            ".Subject",
            ".MatchContext",
            ".URL",
            ".Header",
            ".Get",
            "|",
            "(",
            ")",
            "\"",
            "`",
            "\\",
            "-",
            " ",
            "if",
            "else",
            "end",
            "printf",
            "\"%d %s %v %\"",
            "index",
            "printIndex",
            "0",
            "-1",
            "$",
            "/*",
            "*/",
            "é",
            "eq",
            "and",
            "toJson",
            "1e400",
            ".identity",
            ".arr",
            "'",
            "\n",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut compiled, extras) = (0, [extra(), Value::Null, json!("str"), json!([1])]);
        for round in 0..20_000 {
            let mut src = String::new();
            for _ in 0..next() % 16 {
                match next() % 8 {
                    0 => src.push(char::from_u32((next() % 0x250) as u32).unwrap_or('x')),
                    _ => src.push_str(PIECES[(next() % PIECES.len() as u64) as usize]),
                }
            }
            if let Ok(t) = Template::compile(&src) {
                compiled += 1;
                let _ = run(&src, &extras[round % extras.len()]);
                let _ = t.is_literal();
            }
        }
        assert!(compiled > 1000, "{compiled}");
    }
}
