//! Runs a parsed template: values, truth, variables, field access, blocks, the functions, and how values print.

use crate::ast::*;
use crate::strict::{MatchContext, TemplateContext};
use crate::text::*;
use crate::{Dialect, TemplateError, Tree};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;

#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Nil,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A JSON array or object; `Null` is a nil map (`Extra` when it is not an object).
    Json(&'a Value),
    Strs(Vec<Cow<'a, str>>),
    Header(&'a [(String, String)]),
    Query(&'a str),
    Url(&'a MatchContext<'a>),
    Session(&'a TemplateContext<'a>),
    Mc(&'a MatchContext<'a>),
}

pub(crate) fn from_json(v: &Value) -> Val<'_> {
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
        Val::Url(_) => "*url.URL",
        Val::Session(_) => "*authn.AuthenticationSession",
        Val::Mc(_) => "authn.MatchContext",
    }
}

/// Go's truth: false, 0, nil and empty strings, lists and maps are false.
fn truth(v: &Val<'_>) -> bool {
    match v {
        Val::Nil => false,
        Val::Str(s) => !s.is_empty(),
        Val::Int(i) => *i != 0,
        Val::Float(f) => *f != 0.0,
        Val::Bool(b) => *b,
        Val::Json(Value::Array(a)) => !a.is_empty(),
        Val::Json(Value::Object(m)) => !m.is_empty(),
        Val::Json(v) => truth(&from_json(v)),
        Val::Strs(l) => !l.is_empty(),
        Val::Header(h) => !h.is_empty(),
        Val::Query(q) => !query_pairs(q).is_empty(),
        Val::Url(_) | Val::Session(_) | Val::Mc(_) => true,
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

/// The error policy: strict fails the render, lenient makes a failing action nothing (and false).
fn soft<T>(d: &Dialect, r: Result<T, TemplateError>) -> Result<Option<T>, TemplateError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(_) if !d.strict => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) struct Exec<'a> {
    d: &'static Dialect,
    defines: &'a HashMap<String, Vec<Node>>,
    html: bool,
    /// Variables in scope, innermost last; `""` is `$`.
    vars: Vec<(&'a str, Val<'a>)>,
}

/// Renders `t` with `root` as `.` and `$`; `html` escapes every printed value.
pub(crate) fn render<'a>(t: &'a Tree, root: Val<'a>, html: bool) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut x = Exec {
        d: t.dialect,
        defines: &t.defines,
        html,
        vars: vec![("", root.clone())],
    };
    x.nodes(&t.nodes, &root, &mut out, 0)?;
    Ok(out)
}

impl<'a> Exec<'a> {
    fn nodes(
        &mut self,
        nodes: &'a [Node],
        dot: &Val<'a>,
        out: &mut String,
        depth: usize,
    ) -> Result<(), TemplateError> {
        let mark = self.vars.len();
        for n in nodes {
            let inner = self.vars.len();
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    if let Some(v) = soft(self.d, self.pipe(p, dot))? {
                        if p.vars.is_empty() {
                            let text = self.text(&v);
                            if self.html {
                                escape_html(&text, out);
                            } else {
                                out.push_str(&text);
                            }
                        }
                    }
                }
                Node::Block(Kind::Range, p, body, els) => {
                    let v = soft(self.d, self.cmds(&p.cmds, dot))?;
                    let items = v.map(iterate).unwrap_or_default();
                    if items.is_empty() {
                        self.nodes(els, dot, out, depth + 1)?;
                    }
                    for (key, elem) in items {
                        match p.vars.as_slice() {
                            [e] => self.vars.push((e.as_str(), elem.clone())),
                            [k, e] => self
                                .vars
                                .extend([(k.as_str(), key), (e.as_str(), elem.clone())]),
                            _ => {}
                        }
                        self.nodes(body, &elem, out, depth + 1)?;
                        self.vars.truncate(inner);
                    }
                }
                Node::Block(kind, p, then, els) => {
                    let v = soft(self.d, self.pipe(p, dot))?.filter(truth);
                    match (kind, v) {
                        (Kind::With, Some(v)) => self.nodes(then, &v, out, depth + 1)?,
                        (_, Some(_)) => self.nodes(then, dot, out, depth + 1)?,
                        (_, None) => self.nodes(els, dot, out, depth + 1)?,
                    }
                }
                Node::Call(name, arg) => {
                    let Some(body) = self.defines.get(name) else {
                        continue;
                    };
                    if depth >= MAX_NESTING {
                        continue;
                    }
                    let new_dot = match arg {
                        Some(p) => soft(self.d, self.pipe(p, dot))?.unwrap_or(Val::Nil),
                        None => Val::Nil,
                    };
                    let saved = std::mem::replace(&mut self.vars, vec![("", new_dot.clone())]);
                    let r = self.nodes(body, &new_dot, out, depth + 1);
                    self.vars = saved;
                    r?;
                }
            }
            if !matches!(n, Node::Action(_)) {
                self.vars.truncate(inner);
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// The value of a pipeline's commands, each result passed to the next as its last argument.
    fn cmds(&mut self, cmds: &'a [Cmd], dot: &Val<'a>) -> Result<Val<'a>, TemplateError> {
        let mut fin = None;
        for cmd in cmds {
            fin = Some(self.cmd(cmd, dot, fin.take())?);
        }
        Ok(fin.unwrap_or(Val::Nil))
    }

    /// Evaluates a pipeline and binds the variable it declares or assigns.
    fn pipe(&mut self, p: &'a Pipe, dot: &Val<'a>) -> Result<Val<'a>, TemplateError> {
        let v = self.cmds(&p.cmds, dot)?;
        if let Some(name) = p.vars.first() {
            if p.declare {
                self.vars.push((name.as_str(), v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            } else {
                return Err(TemplateError::Exec(format!("undefined variable ${name}")));
            }
        }
        Ok(v)
    }

    fn expr(&mut self, e: &'a Expr, dot: &Val<'a>) -> Result<Val<'a>, TemplateError> {
        match e {
            Expr::Lit(Lit::Nil) => Ok(Val::Nil),
            Expr::Lit(Lit::Bool(b)) => Ok(Val::Bool(*b)),
            Expr::Lit(Lit::Int(i)) => Ok(Val::Int(*i)),
            Expr::Lit(Lit::Float(f)) => Ok(Val::Float(*f)),
            Expr::Lit(Lit::Str(s)) => Ok(Val::Str(Cow::Borrowed(s))),
            Expr::Field(steps, p) => self.steps(dot.clone(), steps, *p),
            Expr::Var(name, steps, p) => {
                let v = match self.vars.iter().rev().find(|(n, _)| n == name) {
                    Some((_, v)) => v.clone(),
                    None => return Err(xerr(*p, format!("undefined variable ${name}"))),
                };
                self.steps(v, steps, *p)
            }
            Expr::Pipe(pipe) => self.pipe(pipe, dot),
        }
    }

    fn args(
        &mut self,
        args: &'a [Expr],
        dot: &Val<'a>,
        fin: Option<Val<'a>>,
    ) -> Result<Vec<Val<'a>>, TemplateError> {
        let mut v = args
            .iter()
            .map(|a| self.expr(a, dot))
            .collect::<Result<Vec<_>, _>>()?;
        v.extend(fin);
        Ok(v)
    }

    fn steps(&self, mut v: Val<'a>, steps: &'a [Step], p: Pos) -> Result<Val<'a>, TemplateError> {
        for st in steps {
            v = match (st, v) {
                (Step::Key(k), v) => self.key(v, k, p)?,
                (st, Val::Session(c)) => session_field(st, c),
                (st, Val::Mc(m) | Val::Url(m)) => match_field(st, m),
                _ => Val::Nil,
            };
        }
        Ok(v)
    }

    fn key(&self, v: Val<'a>, k: &str, p: Pos) -> Result<Val<'a>, TemplateError> {
        Ok(match v {
            Val::Json(Value::Object(map)) => map.get(k).map_or(Val::Nil, from_json),
            Val::Json(_) => Val::Nil,
            Val::Header(h) => Val::Strs(header_values(h, k)),
            Val::Query(q) => Val::Strs(query_values(q, k)),
            _ if !self.d.strict => Val::Nil,
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
        })
    }

    fn cmd(
        &mut self,
        cmd: &'a Cmd,
        dot: &Val<'a>,
        fin: Option<Val<'a>>,
    ) -> Result<Val<'a>, TemplateError> {
        match cmd {
            Cmd::Value(e) => self.expr(e, dot),
            Cmd::Fail(m) => Err(TemplateError::Exec(m.clone())),
            Cmd::Get(recv, args, p) => {
                let (recv, args) = (self.expr(recv, dot)?, self.args(args, dot, fin)?);
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
                    last = self.expr(a, dot)?;
                    if truth(&last) != (*f == Func::And) {
                        return Ok(last);
                    }
                }
                Ok(fin.unwrap_or(last))
            }
            Cmd::Call(f, args, p) => {
                let v = self.args(args, dot, fin)?;
                self.call(*f, v, *p)
            }
        }
    }

    fn call(&self, f: Func, v: Vec<Val<'a>>, p: Pos) -> Result<Val<'a>, TemplateError> {
        let e = |m: String| xerr(p, format!("error calling {}: {m}", fname(f)));
        let arg = |i: usize| v.get(i).cloned().unwrap_or(Val::Nil);
        let s = |i: usize| self.text(&arg(i));
        let (arg0, rest) = (arg(0), v.get(1..).unwrap_or(&[]));
        let owned = |s: String| Ok(Val::Str(Cow::Owned(s)));
        let cmp = || compare(&arg(0), &arg(1), self.d.loose_eq).map_err(e);
        match f {
            Func::PrintOne if matches!(arg0, Val::Nil) => owned(String::new()),
            Func::PrintOne => owned(self.text(&arg0)),
            Func::Print => owned(self.sprint(&v, false)),
            Func::Println => {
                let line: Vec<String> = v
                    .iter()
                    .map(|a| self.sprint(std::slice::from_ref(a), false))
                    .collect();
                owned(line.join(" ") + "\n")
            }
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
                    Ok(u) if u < len => owned(self.text(&index(arg0, rest).map_err(e)?)),
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
                    any |= eq(&arg0, b, self.d.loose_eq).map_err(e)?;
                }
                Ok(Val::Bool(any == (f == Func::Eq)))
            }
            Func::Lt => Ok(Val::Bool(cmp()?.is_lt())),
            Func::Le => Ok(Val::Bool(cmp()?.is_le())),
            Func::Gt => Ok(Val::Bool(cmp()?.is_gt())),
            Func::Ge => Ok(Val::Bool(cmp()?.is_ge())),
            Func::Not => Ok(Val::Bool(!truth(&arg0))),
            Func::Html => {
                let mut out = String::new();
                escape_html(&self.sprint(&v, true), &mut out);
                owned(out)
            }
            Func::Urlquery => owned(query_escape(&self.sprint(&v, true))),
            Func::ToJson => {
                let mut s = String::new();
                json(&mut s, &arg0);
                owned(s)
            }
            Func::Default => Ok(rest.first().filter(|x| truth(x)).cloned().unwrap_or(arg0)),
            Func::B64enc => owned(STANDARD.encode(want_str(&arg0, p)?)),
            Func::Empty => Ok(Val::Bool(!truth(&arg0))),
            Func::Coalesce => Ok(v.iter().find(|a| truth(a)).cloned().unwrap_or(Val::Nil)),
            Func::Ternary => Ok(if truth(&arg(2)) { arg0 } else { arg(1) }),
            Func::Upper => owned(s(0).to_uppercase()),
            Func::Lower => owned(s(0).to_lowercase()),
            Func::Title => owned(title(&s(0))),
            Func::Trim => owned(s(0).trim().to_owned()),
            Func::Quote => owned(Value::String(s(0)).to_string()),
            Func::TrimPrefix => owned(s(1).strip_prefix(s(0).as_str()).unwrap_or(&s(1)).to_owned()),
            Func::TrimSuffix => owned(s(1).strip_suffix(s(0).as_str()).unwrap_or(&s(1)).to_owned()),
            Func::Contains => Ok(Val::Bool(s(1).contains(s(0).as_str()))),
            Func::HasPrefix => Ok(Val::Bool(s(1).starts_with(s(0).as_str()))),
            Func::HasSuffix => Ok(Val::Bool(s(1).ends_with(s(0).as_str()))),
            Func::Replace => owned(s(2).replace(&s(0), &s(1))),
            Func::Join => {
                let items: Vec<String> = match items(&arg(1)) {
                    Some(xs) => xs.iter().map(|x| self.text(x)).collect(),
                    None => vec![s(1)],
                };
                owned(items.join(&s(0)))
            }
            Func::And | Func::Or => Ok(arg0),
        }
    }

    /// How the dialect prints a value: Go's `%v` with `<no value>` for nil, or strings bare, nil as
    /// nothing and the rest as JSON.
    fn text(&self, v: &Val<'_>) -> String {
        let mut s = String::new();
        match v {
            Val::Nil if self.d.go_print => s.push_str("<no value>"),
            Val::Nil => {}
            Val::Str(t) => s.push_str(t),
            v if self.d.go_print => fmtv(&mut s, v, 'v', true),
            v => json(&mut s, v),
        }
        s
    }

    /// Go's `fmt.Sprint` (a space between operands when neither is a string); `printable` is the
    /// template's own argument printing (`urlquery`, `html`), where nil is `<no value>`, a string.
    fn sprint(&self, args: &[Val<'_>], printable: bool) -> String {
        let (mut out, mut prev_str) = (String::new(), true);
        for (i, a) in args.iter().enumerate() {
            let is_str = matches!(a, Val::Str(_)) || printable && matches!(a, Val::Nil);
            if i > 0 && !is_str && !prev_str {
                out.push(' ');
            }
            match a {
                Val::Nil if !printable && self.d.go_print => out.push_str("<nil>"),
                a => out.push_str(&self.text(a)),
            }
            prev_str = is_str;
        }
        out
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
                (Some(verb), Some(a)) if !self.d.verbs.contains(verb) => {
                    bad_verb(&mut out, a, verb);
                    1
                }
                (Some('q'), Some(a)) => {
                    out.push_str(&Value::String(self.text(a)).to_string());
                    1
                }
                (Some(verb), Some(a)) if self.d.go_print => {
                    fmtv(&mut out, a, verb, true);
                    1
                }
                (Some(_), Some(a)) => {
                    out.push_str(&self.text(a));
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
                    fmtv(&mut out, a, 'v', false);
                }
            }
        }
        if args.len() > n {
            out.push(')');
        }
        out
    }
}

fn session_field<'a>(st: &Step, c: &'a TemplateContext<'a>) -> Val<'a> {
    match st {
        Step::Subject => Val::Str(Cow::Borrowed(c.subject)),
        Step::EmailVerified => Val::Bool(c.email_verified),
        Step::Extra if c.extra.is_object() => Val::Json(c.extra),
        Step::Extra => Val::Json(&Value::Null),
        Step::Header => Val::Header(c.header),
        Step::Mc => Val::Mc(&c.match_context),
        _ => Val::Nil,
    }
}

fn match_field<'a>(st: &Step, m: &'a MatchContext<'a>) -> Val<'a> {
    let s = |s: &'a str| Val::Str(Cow::Borrowed(s));
    match st {
        Step::Groups => Val::Strs(
            m.regexp_capture_groups
                .iter()
                .map(|g| Cow::Borrowed(g.as_str()))
                .collect(),
        ),
        Step::Method => s(m.method),
        Step::McHeader => Val::Header(m.header),
        Step::Url => Val::Url(m),
        Step::Scheme => s(m.scheme),
        Step::Host => s(m.host),
        Step::Path => Val::Str(unescape(m.path, false).unwrap_or(Cow::Borrowed(m.path))),
        Step::RawQuery => s(m.raw_query),
        Step::Query => Val::Query(m.raw_query),
        Step::UrlString => Val::Str(Cow::Owned(url_string(m))),
        _ => s(""),
    }
}

/// What `range` iterates: (index or key, element); maps in key order.
fn iterate(v: Val<'_>) -> Vec<(Val<'_>, Val<'_>)> {
    let keyed = entries(&v).map(|es| es.into_iter().map(|(k, x)| (Val::Str(k), x)).collect());
    keyed
        .or_else(|| {
            let xs = items(&v)?.into_iter().enumerate();
            Some(
                xs.map(|(i, x)| (Val::Int(i64::try_from(i).unwrap_or(i64::MAX)), x))
                    .collect(),
            )
        })
        .unwrap_or_default()
}

fn bad_verb(out: &mut String, v: &Val<'_>, verb: char) {
    if matches!(v, Val::Nil) {
        let _ = write!(out, "%!{verb}(<nil>)");
    } else {
        let _ = write!(out, "%!{verb}({}=", type_name(v));
        fmtv(out, v, 'v', false);
        out.push(')');
    }
}

/// Go's fmt for the verbs `v s d t`; lists and maps format their elements with the same verb.
fn fmtv(out: &mut String, v: &Val<'_>, verb: char, top: bool) {
    let ok = match v {
        Val::Nil => !top || verb == 'v',
        Val::Str(_) | Val::Url(_) => matches!(verb, 'v' | 's'),
        Val::Int(_) => matches!(verb, 'v' | 'd'),
        Val::Float(_) => verb == 'v',
        Val::Bool(_) => matches!(verb, 'v' | 't'),
        _ => true,
    };
    match v {
        _ if !ok => bad_verb(out, v, verb),
        Val::Nil => out.push_str("<nil>"),
        Val::Str(s) => out.push_str(s),
        Val::Float(f) => go_float(out, *f, false),
        Val::Url(m) => out.push_str(&url_string(m)),
        v => container(out, v, Some(verb)),
    }
}

/// Go's `encoding/json`, as used by Sprig's `toJson`.
fn json(out: &mut String, v: &Val<'_>) {
    match v {
        Val::Nil | Val::Json(Value::Null) => out.push_str("null"),
        Val::Str(s) => json_str(out, s),
        Val::Float(f) => go_float(out, *f, true),
        Val::Url(m) => json_str(out, &url_string(m)),
        v => container(out, v, None),
    }
}

/// Ints, bools, and lists and maps (sorted by key) in Go's fmt (`[a b]`, `map[k:v]`) with `verb`, or as JSON.
fn container(out: &mut String, v: &Val<'_>, verb: Option<char>) {
    match v {
        Val::Int(i) => return out.push_str(&i.to_string()),
        Val::Bool(b) => return out.push_str(if *b { "true" } else { "false" }),
        Val::Session(_) | Val::Mc(_) => return out.push_str("{}"),
        _ => {}
    }
    let (es, xs) = (entries(v), items(v));
    let list = xs.is_some();
    let (open, close, sep) = match (verb, list) {
        (Some(_), true) => ("[", "]", " "),
        (Some(_), false) => ("map[", "]", " "),
        (None, true) => ("[", "]", ","),
        (None, false) => ("{", "}", ","),
    };
    out.push_str(open);
    let all = es.into_iter().flatten().map(|(k, x)| (Some(k), x));
    for (i, (k, x)) in all
        .chain(xs.into_iter().flatten().map(|x| (None, x)))
        .enumerate()
    {
        out.push_str(if i > 0 { sep } else { "" });
        if let Some(k) = k {
            match verb {
                Some(verb) => fmtv(out, &Val::Str(k), verb, false),
                None => json_str(out, &k),
            }
            out.push(':');
        }
        match verb {
            Some(verb) => fmtv(out, &x, verb, false),
            None => json(out, &x),
        }
    }
    out.push_str(close);
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

fn basic(v: &Val<'_>) -> bool {
    matches!(v, Val::Bool(_) | Val::Int(_) | Val::Float(_) | Val::Str(_))
}

/// Go's `eq` for one pair: basic kinds must match (int vs float64 is an error unless `loose`), nil
/// equals only nil.
fn eq(a: &Val<'_>, b: &Val<'_>, loose: bool) -> Result<bool, String> {
    match (a, b) {
        (Val::Nil, _) | (_, Val::Nil) => Ok(matches!((a, b), (Val::Nil, Val::Nil))),
        (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
        (Val::Str(x), Val::Str(y)) => Ok(x == y),
        (Val::Url(_), Val::Url(_)) => Ok(true),
        (Val::Json(x), Val::Json(y)) if loose => Ok(x == y),
        _ => compare(a, b, loose).map(Ordering::is_eq),
    }
}

/// Go's `lt` for one pair: numbers of one kind (or any two numbers when `loose`) and strings.
fn compare(a: &Val<'_>, b: &Val<'_>, loose: bool) -> Result<Ordering, String> {
    let num = |v: &Val<'_>| match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Ok(x.cmp(y)),
        (Val::Str(x), Val::Str(y)) => Ok(x.cmp(y)),
        (Val::Float(_), Val::Float(_))
        | (Val::Int(_), Val::Float(_))
        | (Val::Float(_), Val::Int(_))
            if loose || matches!((a, b), (Val::Float(_), Val::Float(_))) =>
        {
            // NaN compares unequal to everything, like Go.
            Ok(num(a)
                .zip(num(b))
                .and_then(|(x, y)| x.partial_cmp(&y))
                .unwrap_or(Ordering::Greater))
        }
        _ if basic(a) || basic(b) => Err("incompatible types for comparison".into()),
        _ => Err(format!(
            "non-comparable types {} and {}",
            type_name(a),
            type_name(b)
        )),
    }
}

/// A header map or `url.Values` as (key, values) groups.
fn groups<'v>(v: &Val<'v>) -> Vec<(Cow<'v, str>, Vec<Cow<'v, str>>)> {
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
    let mut groups: Vec<(Cow<'v, str>, Vec<Cow<'v, str>>)> = Vec::new();
    for (k, x) in pairs {
        match groups.iter_mut().find(|g| g.0 == k) {
            Some(g) => g.1.push(x),
            None => groups.push((k, vec![x])),
        }
    }
    groups
}

/// Entries of a map value, sorted by key (Go's fmt, encoding/json and `range` all sort).
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
