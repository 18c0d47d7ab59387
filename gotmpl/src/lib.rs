//! Go's `text/template` language, the one engine behind every template Portcullis renders.
//!
//! Two modes, because the two Ory products we stand in for run Go templates under different rules:
//!
//! - [`strict`] is Oathkeeper's (`x/template.go`), for the `header`, `cookie`, `id_token`, `remote` and
//!   `remote_json` handlers. Templates are compiled once at rule load against Oathkeeper's
//!   `AuthenticationSession` ([`strict::TemplateContext`]); unknown fields, functions and argument counts
//!   are compile errors with Go's `line:col` positions, and a render can fail (`missingkey=zero`, Go's
//!   exec errors), which fails the request.
//! - [`kratos`] is Kratos' courier's, for e-mail templates over JSON data: variables, `range`, `with`,
//!   `define`/`template`/`block` and the common Sprig functions. Syntax errors are found at parse time,
//!   but rendering never fails: a failing action prints nothing, a missing key is empty, and HTML bodies
//!   escape every printed value.
//!
//! Both are one engine, one lexer (`lex`), parser (`parse`), syntax tree and function table (`ast`) and
//! executor (`exec`); a `Dialect` holds what differs: which functions exist (Oathkeeper's one-argument
//! `print` or Go's), the type of `.` (the typed session, checked at compile time, or JSON), whether
//! `range`/`with`/`define`/variables and `-` in field names are allowed, how values print, the `printf`
//! verbs, and the error policy (strict: compile-time checks and a failing render; lenient: a failing action
//! prints nothing).
//!
//! Why our own: no maintained Rust crate implements Go templates (`gtmpl`'s last release was in 2021), and
//! both modes must print exactly what Oathkeeper and Kratos print for the templates users already have.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ast;
mod exec;
pub mod kratos;
mod lex;
mod parse;
pub mod strict;
mod text;

use ast::{Node, Ty, K, S};
use std::collections::HashMap;

/// A compile or render failure; the message ends with `at line:col`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Exec(String),
}

/// What differs between the two modes; everything else is the one engine.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Which entries of the function table exist (a bit per dialect; `print` differs by entry).
    funcs: u8,
    /// The type of `.` and `$`: the typed session (unknown fields are compile errors) or JSON.
    root: Ty,
    /// Strict: what Go checks when it runs (argument counts, arguments to a non-function, `printf` verbs
    /// in a literal format) is a compile error, and a failing action fails the render. Lenient: those
    /// fail when run, a failing action prints nothing (and is false), and a field of a missing or
    /// non-map value is nil.
    strict: bool,
    /// `range`, `with`, `define`, `template`, `block` and variables.
    blocks: bool,
    /// Field names may hold `-` (`.traits.first-name`).
    dash_fields: bool,
    /// Values print as Go prints them (`<no value>` for nil, `map[a:1]`), or strings bare, nil as nothing
    /// and the rest as JSON.
    go_print: bool,
    /// `eq` and `lt`… compare int and float64 by value and JSON values deeply (Go: an error).
    loose_eq: bool,
    /// The `printf` verbs.
    verbs: &'static str,
}

pub(crate) static STRICT: Dialect = Dialect {
    funcs: S,
    root: Ty::Session,
    strict: true,
    blocks: false,
    dash_fields: false,
    go_print: true,
    loose_eq: false,
    verbs: "vsdt",
};

pub(crate) static KRATOS: Dialect = Dialect {
    funcs: K,
    root: Ty::Dyn,
    strict: false,
    blocks: true,
    dash_fields: true,
    go_print: false,
    loose_eq: true,
    verbs: "vsdtq",
};

/// A parsed template of either dialect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    dialect: &'static Dialect,
    nodes: Vec<Node>,
    defines: HashMap<String, Vec<Node>>,
}

impl PartialEq for Dialect {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

#[cfg(test)]
mod tests;
