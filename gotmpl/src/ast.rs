//! The syntax tree, source positions, the function table, and the fields a typed root offers (checked at
//! compile time).

use crate::TemplateError;
use std::fmt;

/// How deep `if`/`range`/`with` blocks and parentheses may nest.
pub(crate) const MAX_DEPTH: usize = 64;
/// How deep blocks and `template` calls may nest when a template runs: a call deeper is skipped (guards
/// against a template that includes itself, with a stack bounded by this and [`MAX_DEPTH`] of parentheses).
pub(crate) const MAX_NESTING: usize = 100;
pub(crate) const WS: [char; 4] = [' ', '\t', '\r', '\n'];
pub(crate) const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos(pub(crate) usize, pub(crate) usize);

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// Line starts of the source, to turn byte offsets into `line:col` (byte column, as Go reports).
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(src: &str) -> Self {
        Self(
            std::iter::once(0)
                .chain(src.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    pub(crate) fn pos(&self, off: usize) -> Pos {
        let line = self.0.partition_point(|&start| start <= off).max(1);
        Pos(line, off + 1 - self.0.get(line - 1).copied().unwrap_or(0))
    }
}

pub(crate) fn perr(pos: Pos, msg: impl fmt::Display) -> TemplateError {
    TemplateError::Parse(format!("{msg} at {pos}"))
}

pub(crate) fn xerr(pos: Pos, msg: impl fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("{msg} at {pos}"))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    /// `if`, `with` or `range`: the pipeline, its body and its `else` body.
    Block(Kind, Pipe, Vec<Node>, Vec<Node>),
    /// `{{ template "name" pipeline }}` (also what a `block` leaves in place).
    Call(String, Option<Pipe>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipe {
    /// Variables this pipeline declares (`:=`) or assigns (`=`).
    pub(crate) vars: Vec<String>,
    pub(crate) declare: bool,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cmd {
    Call(Func, Vec<Expr>, Pos),
    /// `<map>.Get key` on `Header` or `URL.Query`; the receiver is a field chain.
    Get(Expr, Vec<Expr>, Pos),
    Value(Expr),
    /// A command Go rejects only when it runs (a lenient dialect parses it): fails with this message.
    Fail(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Lit(Lit),
    /// A field chain from `.` (empty: `.` itself).
    Field(Vec<Step>, Pos),
    /// A variable (`""` is `$`) and a field chain from it.
    Var(String, Vec<Step>, Pos),
    Pipe(Box<Pipe>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// Oathkeeper's `print`: one argument, nil prints "".
    PrintOne,
    Print,
    Println,
    Printf,
    PrintIndex,
    Index,
    Len,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    Html,
    Urlquery,
    ToJson,
    Default,
    B64enc,
    Empty,
    Coalesce,
    Ternary,
    Upper,
    Lower,
    Title,
    Trim,
    TrimPrefix,
    TrimSuffix,
    Contains,
    HasPrefix,
    HasSuffix,
    Replace,
    Quote,
    Join,
}

pub(crate) const MANY: usize = usize::MAX;
/// Bits of [`crate::Dialect::funcs`]: Oathkeeper's strict set and Kratos' set.
pub(crate) const S: u8 = 1;
pub(crate) const K: u8 = 2;

/// The one function table: name, function, argument counts, and the dialects that have it.
#[rustfmt::skip]
pub(crate) const FUNCS: [(&str, Func, usize, usize, u8); 36] = [
    ("print", Func::PrintOne, 1, 1, S), ("print", Func::Print, 0, MANY, K), ("println", Func::Println, 0, MANY, K),
    ("printf", Func::Printf, 1, MANY, S | K), ("printIndex", Func::PrintIndex, 2, 2, S),
    ("index", Func::Index, 1, MANY, S | K), ("len", Func::Len, 1, 1, S | K), ("eq", Func::Eq, 2, MANY, S | K),
    ("ne", Func::Ne, 2, 2, S | K), ("lt", Func::Lt, 2, 2, K), ("le", Func::Le, 2, 2, K), ("gt", Func::Gt, 2, 2, K),
    ("ge", Func::Ge, 2, 2, K), ("and", Func::And, 1, MANY, S | K), ("or", Func::Or, 1, MANY, S | K),
    ("not", Func::Not, 1, 1, S | K), ("html", Func::Html, 0, MANY, K), ("urlquery", Func::Urlquery, 0, MANY, S | K),
    ("toJson", Func::ToJson, 1, 1, S | K), ("default", Func::Default, 1, MANY, S | K), ("b64enc", Func::B64enc, 1, 1, S),
    ("empty", Func::Empty, 1, 1, K), ("coalesce", Func::Coalesce, 0, MANY, K), ("ternary", Func::Ternary, 3, 3, K),
    ("upper", Func::Upper, 1, 1, K), ("lower", Func::Lower, 1, 1, K), ("title", Func::Title, 1, 1, K),
    ("trim", Func::Trim, 1, 1, K), ("trimPrefix", Func::TrimPrefix, 2, 2, K), ("trimSuffix", Func::TrimSuffix, 2, 2, K),
    ("contains", Func::Contains, 2, 2, K), ("hasPrefix", Func::HasPrefix, 2, 2, K), ("hasSuffix", Func::HasSuffix, 2, 2, K),
    ("replace", Func::Replace, 3, 3, K), ("quote", Func::Quote, 1, 1, K), ("join", Func::Join, 2, 2, K),
];

pub(crate) fn fname(f: Func) -> &'static str {
    FUNCS.iter().find(|e| e.1 == f).map_or("?", |e| e.0)
}

/// Go's check of a function's argument count, at `p`; the message is Go's (`want at least 1 got 0`).
pub(crate) fn arity(f: Func, n: usize, p: Pos) -> Result<(), TemplateError> {
    let (min, max) = FUNCS
        .iter()
        .find(|e| e.1 == f)
        .map_or((0, MANY), |e| (e.2, e.3));
    if (min..=max).contains(&n) {
        return Ok(());
    }
    let want = match max {
        MANY => format!("at least {min}"),
        _ => min.to_string(),
    };
    Err(perr(
        p,
        format!("wrong number of args for {}: want {want} got {n}", fname(f)),
    ))
}

/// Compile-time type of a field chain: the session's structs, or `Dyn` for JSON data, where any name is a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Session,
    Mc,
    Url,
    Map,
    Dyn,
    Leaf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Subject,
    Extra,
    EmailVerified,
    Header,
    Mc,
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

pub(crate) fn resolve(ty: Ty, name: &str) -> Option<(Step, Ty)> {
    use Step as S;
    use Ty as T;
    Some(match (ty, name) {
        (T::Session, "Subject") => (S::Subject, T::Leaf),
        (T::Session, "Extra") => (S::Extra, T::Dyn),
        (T::Session, "EmailVerified") => (S::EmailVerified, T::Leaf),
        (T::Session, "Header") => (S::Header, T::Map),
        (T::Session, "MatchContext") => (S::Mc, T::Mc),
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
    })
}
