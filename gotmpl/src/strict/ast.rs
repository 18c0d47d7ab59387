//! The syntax tree of a strict-mode template, and the fields a session offers (checked at compile time).

use super::exec::*;
use super::*;
use std::fmt;

pub(super) const MAX_DEPTH: usize = 64;
pub(super) const WS: [char; 4] = [' ', '\t', '\r', '\n'];
pub(super) const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos(pub(super) usize, pub(super) usize);

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// Line starts of the source, to turn byte offsets into `line:col` (byte column, as Go reports).
pub(super) struct Lines(pub(super) Vec<usize>);

impl Lines {
    pub(super) fn new(src: &str) -> Self {
        Self(
            std::iter::once(0)
                .chain(src.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    pub(super) fn pos(&self, off: usize) -> Pos {
        let line = self.0.partition_point(|&start| start <= off).max(1);
        Pos(line, off + 1 - self.0.get(line - 1).copied().unwrap_or(0))
    }
}

pub(super) fn perr(pos: Pos, msg: impl fmt::Display) -> TemplateError {
    TemplateError::Parse(format!("{msg} at {pos}"))
}

pub(super) fn xerr(pos: Pos, msg: impl fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("{msg} at {pos}"))
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub(super) struct Pipe(pub(super) Vec<Cmd>);

#[derive(Debug, Clone)]
pub(super) enum Cmd {
    Call(Func, Vec<Expr>, Pos),
    /// `<map>.Get key` on `Header` or `URL.Query`.
    Get(Vec<Step>, Vec<Expr>, Pos),
    Value(Expr),
}

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Lit(Val<'static>),
    Field(Vec<Step>, Pos),
    Pipe(Box<Pipe>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
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

pub(super) const MANY: usize = usize::MAX;
#[rustfmt::skip]
pub(super) const FUNCS: [(&str, Func, usize, usize); 14] = [
    ("print", Func::Print, 1, 1), ("printf", Func::Printf, 1, MANY), ("printIndex", Func::PrintIndex, 2, 2),
    ("index", Func::Index, 1, MANY), ("len", Func::Len, 1, 1), ("eq", Func::Eq, 2, MANY),
    ("ne", Func::Ne, 2, 2), ("and", Func::And, 1, MANY), ("or", Func::Or, 1, MANY), ("not", Func::Not, 1, 1),
    ("urlquery", Func::Urlquery, 0, MANY), ("toJson", Func::ToJson, 1, 1),
    ("default", Func::Default, 1, MANY), ("b64enc", Func::B64enc, 1, 1),
];

pub(super) fn fname(f: Func) -> &'static str {
    FUNCS.iter().find(|e| e.1 == f).map_or("?", |e| e.0)
}

/// Compile-time type of a field chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Session,
    Mc,
    Url,
    Map,
    Dyn,
    Leaf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
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

pub(super) fn resolve(ty: Ty, name: &str) -> Option<(Option<Step>, Ty)> {
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
