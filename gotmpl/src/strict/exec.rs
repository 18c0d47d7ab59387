//! Runs a compiled template against a session: values, truth, field access, the functions, `index` and `eq`.

use super::ast::*;
use super::text::*;
use super::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write as _;

#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
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

pub(super) type Groups<'a> = Vec<(Cow<'a, str>, Vec<Cow<'a, str>>)>;

pub(super) fn from_json(v: &Value) -> Val<'_> {
    match v {
        Value::Null => Val::Nil,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        _ => Val::Json(v),
    }
}

pub(super) fn type_name(v: &Val<'_>) -> &'static str {
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

pub(super) fn truth(v: &Val<'_>) -> bool {
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

pub(super) fn want_str<'v>(v: &'v Val<'_>, p: Pos) -> Result<&'v str, TemplateError> {
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

pub(super) struct Exec<'a> {
    pub(super) c: &'a TemplateContext<'a>,
}

impl<'a> Exec<'a> {
    pub(super) fn nodes(&self, nodes: &'a [Node], out: &mut String) -> Result<(), TemplateError> {
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

    pub(super) fn pipe(&self, p: &'a Pipe) -> Result<Val<'a>, TemplateError> {
        let mut fin = None;
        for cmd in &p.0 {
            fin = Some(self.cmd(cmd, fin.take())?);
        }
        Ok(fin.unwrap_or(Val::Nil))
    }

    pub(super) fn expr(&self, e: &'a Expr) -> Result<Val<'a>, TemplateError> {
        match e {
            Expr::Lit(Val::Str(s)) => Ok(Val::Str(Cow::Borrowed(s))),
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Field(steps, p) => self.steps(steps, *p),
            Expr::Pipe(pipe) => self.pipe(pipe),
        }
    }

    pub(super) fn args(
        &self,
        args: &'a [Expr],
        fin: Option<Val<'a>>,
    ) -> Result<Vec<Val<'a>>, TemplateError> {
        let mut v = args
            .iter()
            .map(|a| self.expr(a))
            .collect::<Result<Vec<_>, _>>()?;
        v.extend(fin);
        Ok(v)
    }

    pub(super) fn steps(&self, steps: &'a [Step], p: Pos) -> Result<Val<'a>, TemplateError> {
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

    pub(super) fn cmd(&self, cmd: &'a Cmd, fin: Option<Val<'a>>) -> Result<Val<'a>, TemplateError> {
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

    pub(super) fn call(&self, f: Func, v: Vec<Val<'a>>, p: Pos) -> Result<Val<'a>, TemplateError> {
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
            Func::B64enc => owned(STANDARD.encode(want_str(&arg0, p)?)),
            Func::And | Func::Or => Ok(arg0),
        }
    }

    pub(super) fn to_string(&self, v: &Val<'_>) -> String {
        let mut s = String::new();
        self.fmtv(&mut s, v, 'v', true);
        s
    }

    pub(super) fn sprintf(&self, fmt: &str, args: &[Val<'_>]) -> String {
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

    pub(super) fn bad_verb(&self, out: &mut String, v: &Val<'_>, verb: char) {
        if matches!(v, Val::Nil) {
            let _ = write!(out, "%!{verb}(<nil>)");
        } else {
            let _ = write!(out, "%!{verb}({}=", type_name(v));
            self.fmtv(out, v, 'v', false);
            out.push(')');
        }
    }

    /// Go's fmt for the verbs `v s d t`; lists and maps format their elements with the same verb.
    pub(super) fn fmtv(&self, out: &mut String, v: &Val<'_>, verb: char, top: bool) {
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
    pub(super) fn json(&self, out: &mut String, v: &Val<'_>) {
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

pub(super) fn index<'a>(mut item: Val<'a>, idx: &[Val<'_>]) -> Result<Val<'a>, String> {
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
pub(super) fn eq(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
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
pub(super) fn groups<'v>(v: &Val<'v>) -> Groups<'v> {
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
pub(super) fn entries<'v>(v: &Val<'v>) -> Option<Vec<(Cow<'v, str>, Val<'v>)>> {
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
pub(super) fn items<'v>(v: &Val<'v>) -> Option<Vec<Val<'v>>> {
    match v {
        Val::Json(Value::Array(a)) => Some(a.iter().map(from_json).collect()),
        Val::Strs(l) => Some(l.iter().cloned().map(Val::Str).collect()),
        _ => None,
    }
}
