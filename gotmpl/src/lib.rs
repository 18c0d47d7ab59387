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
//! Go's semantics shared by both modes (truth, argument counts, `urlquery`) live in one place here.
//!
//! Why our own: no maintained Rust crate implements Go templates (`gtmpl`'s last release was in 2021), and
//! both modes must print exactly what Oathkeeper and Kratos print for the templates users already have.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod kratos;
pub mod strict;

use serde_json::Value;
use std::fmt::Write as _;

/// Go's truth of a JSON value: false, 0, nil and empty strings, arrays and objects are false.
pub(crate) fn json_truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Go's check of a function's argument count; the message is Go's (`want at least 1 got 0`).
pub(crate) fn arity(name: &str, n: usize, min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&n) {
        return Ok(());
    }
    let want = if max == usize::MAX {
        format!("at least {min}")
    } else {
        min.to_string()
    };
    Err(format!(
        "wrong number of args for {name}: want {want} got {n}"
    ))
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
