//! Kratos mode: the Go `text/template` language that Kratos' e-mail templates are written in, over JSON data.
//!
//! Supported: text with actions, trim markers (`{{-`, `-}}`), comments, fields (`.A.b`), `.`, variables (`$`,
//! `$x`, `$x.a`, declared with `:=` and set with `=`), string, raw-string, number and `true`/`false`/`nil`
//! literals, parenthesised pipelines, `|` pipes, `if`/`else if`/`else`, `range` (arrays, and objects in key
//! order, with `$i, $e :=`), `with`/`else with`, `define`, `template` and `block`. Functions: Go's built-ins
//! (`and`, `or`, `not`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `len`, `index`, `print`, `printf`, `println`,
//! `html`, `urlquery`) and the Sprig functions templates use most (`default`, `empty`, `coalesce`, `ternary`,
//! `upper`, `lower`, `title`, `trim`, `trimPrefix`, `trimSuffix`, `contains`, `hasPrefix`, `hasSuffix`,
//! `replace`, `quote`, `join`, `toJson`).
//!
//! Syntax errors and unknown functions are found when the template is parsed, so a bad override stops start-up.
//! Rendering never fails: an action whose evaluation fails (say, `lt` on a string and a number) prints nothing
//! and counts as false, and a missing key is empty. Printed values are escaped when rendering HTML.

use serde_json::{Number, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// How deep `template` calls may nest (guards against a template that includes itself).
const MAX_DEPTH: usize = 32;

const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "html",
    "urlquery",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "upper",
    "lower",
    "title",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "replace",
    "quote",
    "join",
    "toJson",
];

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
    defines: HashMap<String, Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        value: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        value: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Template {
        name: String,
        dot: Option<Pipeline>,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    /// Variables this pipeline declares (`:=`) or assigns (`=`).
    vars: Vec<String>,
    declare: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Dot,
    Lit(Value),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

enum Item {
    Text(String),
    Action(String),
}

/// Splits `text` into text and actions, applying trim markers and dropping comments.
fn lex(text: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut before = &rest[..open];
        if trim_next {
            before = before.trim_start();
        }
        let after_open = &rest[open + 2..];
        let close = find_close(after_open).ok_or("unclosed action")?;
        let mut action = &after_open[..close];
        if let Some(a) = action
            .strip_prefix("- ")
            .or_else(|| action.strip_prefix('-'))
        {
            before = before.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action
            .strip_suffix(" -")
            .or_else(|| action.strip_suffix('-'))
        {
            trim_next = true;
            action = a;
        }
        if !before.is_empty() {
            items.push(Item::Text(before.to_owned()));
        }
        let action = action.trim();
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            items.push(Item::Action(action.to_owned()));
        }
        rest = &after_open[close + 2..];
    }
    let tail = if trim_next { rest.trim_start() } else { rest };
    if !tail.is_empty() {
        items.push(Item::Text(tail.to_owned()));
    }
    Ok(items)
}

/// The offset of the `}}` that closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `.a.b-c.d` chains after a field or variable; names may hold `-` for traits such as `first-name`.
fn read_chain(chars: &[char], i: &mut usize) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    while *i < chars.len() && chars[*i] == '.' {
        let start = *i + 1;
        let mut j = start;
        while j < chars.len() && (is_name_char(chars[j]) || chars[j] == '-') {
            j += 1;
        }
        if j == start {
            return Err("a field name must follow '.'".into());
        }
        parts.push(chars[start..j].iter().collect());
        *i = j;
    }
    Ok(parts)
}

fn tokenize(action: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = action.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let punct = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '|' => Some(Tok::Pipe),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Assign),
            _ => None,
        };
        if let Some(t) = punct {
            toks.push(t);
            i += 1;
            continue;
        }
        match c {
            c if c.is_whitespace() => i += 1,
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '.' => {
                if chars.get(i + 1).is_some_and(|&n| is_name_char(n)) {
                    toks.push(Tok::Field(read_chain(&chars, &mut i)?));
                } else {
                    toks.push(Tok::Dot);
                    i += 1;
                }
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                i = j;
                let chain = read_chain(&chars, &mut i)?;
                toks.push(Tok::Var(name, chain));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err("unterminated string".into());
                    };
                    i += 1;
                    match ch {
                        '"' => break,
                        '\\' => {
                            let esc = chars.get(i).copied().ok_or("unterminated string")?;
                            i += 1;
                            s.push(match esc {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => return Err(format!("unknown escape \\{other} in string")),
                            });
                        }
                        ch => s.push(ch),
                    }
                }
                toks.push(Tok::Lit(Value::String(s)));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&ch| ch == '`')
                    .ok_or("unterminated raw string")?;
                toks.push(Tok::Lit(Value::String(
                    chars[start..start + end].iter().collect(),
                )));
                i = start + end + 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let text = text.trim_start_matches('+');
                let n: Number =
                    serde_json::from_str(text).map_err(|_| format!("bad number {text}"))?;
                toks.push(Tok::Lit(Value::Number(n)));
            }
            c if is_name_char(c) => {
                let start = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in action")),
        }
    }
    Ok(toks)
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else(Vec<Tok>),
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    defines: HashMap<String, Vec<Node>>,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let action = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(a) => a,
            };
            let toks = tokenize(&action)?;
            let (head, rest) = match toks.split_first() {
                Some((Tok::Ident(k), rest)) => (k.as_str(), rest),
                Some(_) => {
                    nodes.push(Node::Action(pipeline_all(&toks)?));
                    continue;
                }
                None => return Err("empty action {{ }}".into()),
            };
            match head {
                "end" if rest.is_empty() => return Ok((nodes, Stop::End)),
                "end" => return Err("unexpected words after end".into()),
                "else" => return Ok((nodes, Stop::Else(rest.to_vec()))),
                "if" | "with" | "range" => nodes.push(self.control(head, rest)?),
                "define" => {
                    let name = template_name(rest, false)?.0;
                    let body = self.body("define")?;
                    self.defines.insert(name, body);
                }
                "template" => {
                    let (name, dot) = template_name(rest, true)?;
                    nodes.push(Node::Template { name, dot });
                }
                "block" => {
                    let (name, dot) = template_name(rest, true)?;
                    let body = self.body("block")?;
                    self.defines.entry(name.clone()).or_insert(body);
                    nodes.push(Node::Template { name, dot });
                }
                _ => nodes.push(Node::Action(pipeline_all(&toks)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// A body that must end with `{{ end }}` and has no `else`.
    fn body(&mut self, what: &str) -> Result<Vec<Node>, String> {
        match self.list()? {
            (nodes, Stop::End) => Ok(nodes),
            (_, Stop::Else(_)) => Err(format!("{{{{ else }}}} inside {{{{ {what} }}}}")),
            (_, Stop::Eof) => Err(format!("{{{{ {what} }}}} without {{{{ end }}}}")),
        }
    }

    /// `if`, `with` or `range` after its keyword, through its `end` (an `else if` / `else with` chain nests).
    fn control(&mut self, kind: &str, toks: &[Tok]) -> Result<Node, String> {
        let value = pipeline_all(toks)?;
        if (kind == "range" && value.vars.len() > 2) || (kind != "range" && value.vars.len() > 1) {
            return Err(format!("too many variables in {kind}"));
        }
        let (then, end) = self.list()?;
        let otherwise = match end {
            Stop::End => Vec::new(),
            Stop::Eof => return Err(format!("{{{{ {kind} }}}} without {{{{ end }}}}")),
            Stop::Else(rest) if rest.is_empty() => self.body("else")?,
            Stop::Else(rest) => match rest.split_first() {
                Some((Tok::Ident(k), tail)) if (k == "if" || k == "with") && kind != "range" => {
                    vec![self.control(k, tail)?]
                }
                _ => return Err("unexpected words after else".into()),
            },
        };
        Ok(match kind {
            "if" => Node::If {
                cond: value,
                then,
                otherwise,
            },
            "with" => Node::With {
                value,
                then,
                otherwise,
            },
            _ => Node::Range {
                value,
                body: then,
                otherwise,
            },
        })
    }
}

/// `"name"` and, where allowed, the pipeline after it.
fn template_name(toks: &[Tok], with_dot: bool) -> Result<(String, Option<Pipeline>), String> {
    match toks.split_first() {
        Some((Tok::Lit(Value::String(name)), rest)) => {
            let dot = if rest.is_empty() {
                None
            } else if with_dot {
                Some(pipeline_all(rest)?)
            } else {
                return Err("unexpected words after the template name".into());
            };
            Ok((name.clone(), dot))
        }
        _ => Err("a template name must be a quoted string".into()),
    }
}

/// A whole pipeline: every token must be used.
fn pipeline_all(toks: &[Tok]) -> Result<Pipeline, String> {
    let mut pos = 0;
    let p = pipeline(toks, &mut pos)?;
    if pos != toks.len() {
        return Err("unexpected ')'".into());
    }
    Ok(p)
}

fn pipeline(toks: &[Tok], pos: &mut usize) -> Result<Pipeline, String> {
    let mut vars = Vec::new();
    let mut declare = false;
    // `$x :=`, `$x =` or `$i, $e :=`.
    let decl_end = toks[*pos..]
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(end) = decl_end {
        let plain = |t: &Tok| match t {
            Tok::Var(n, chain) if chain.is_empty() && !n.is_empty() => Some(n.clone()),
            _ => None,
        };
        let names = match &toks[*pos..*pos + end] {
            [a] => plain(a).map(|a| vec![a]),
            [a, Tok::Comma, b] => plain(a).zip(plain(b)).map(|(a, b)| vec![a, b]),
            _ => None,
        };
        if let Some(names) = names {
            vars = names;
            declare = toks[*pos + end] == Tok::Declare;
            *pos += end + 1;
        }
    }
    let mut cmds = Vec::new();
    loop {
        let mut args = Vec::new();
        while let Some(t) = toks.get(*pos) {
            match t {
                Tok::Pipe | Tok::RParen => break,
                Tok::Dot => args.push(Arg::Dot),
                Tok::Field(f) => args.push(Arg::Field(f.clone())),
                Tok::Var(n, chain) => args.push(Arg::Var(n.clone(), chain.clone())),
                Tok::Lit(v) => args.push(Arg::Lit(v.clone())),
                Tok::Ident(name) => args.push(match name.as_str() {
                    "true" => Arg::Lit(Value::Bool(true)),
                    "false" => Arg::Lit(Value::Bool(false)),
                    "nil" => Arg::Lit(Value::Null),
                    f if FUNCS.contains(&f) => Arg::Func(f.to_owned()),
                    other => return Err(format!("function {other:?} not defined")),
                }),
                Tok::LParen => {
                    *pos += 1;
                    let sub = pipeline(toks, pos)?;
                    if toks.get(*pos) != Some(&Tok::RParen) {
                        return Err("unclosed '('".into());
                    }
                    args.push(Arg::Sub(Box::new(sub)));
                }
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err("unexpected ':=', '=' or ','".into())
                }
            }
            *pos += 1;
        }
        if args.is_empty() {
            return Err("missing value in pipeline".into());
        }
        cmds.push(args);
        if toks.get(*pos) == Some(&Tok::Pipe) {
            *pos += 1;
        } else {
            break;
        }
    }
    Ok(Pipeline {
        vars,
        declare,
        cmds,
    })
}

impl Template {
    /// Parses `text`; errors say what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parser = Parser {
            items: lex(text)?.into_iter(),
            defines: HashMap::new(),
        };
        match parser.list()? {
            (nodes, Stop::Eof) => Ok(Self {
                nodes,
                defines: parser.defines,
            }),
            (_, Stop::End) => Err("unexpected {{ end }}".into()),
            (_, Stop::Else(_)) => Err("unexpected {{ else }}".into()),
        }
    }

    /// Renders with `data` as `.` and `$`; `html` escapes every printed value.
    pub fn render(&self, data: &Value, html: bool) -> String {
        let mut out = String::new();
        let mut run = Run {
            t: self,
            html,
            vars: vec![(String::new(), data.clone())],
        };
        run.exec(&self.nodes, data, &mut out, 0);
        out
    }
}

struct Run<'a> {
    t: &'a Template,
    html: bool,
    vars: Vec<(String, Value)>,
}

impl Run<'_> {
    fn exec(&mut self, nodes: &[Node], dot: &Value, out: &mut String, depth: usize) {
        let mark = self.vars.len();
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    if let Ok(v) = self.pipeline(p, dot) {
                        if p.vars.is_empty() {
                            self.print(&v, out);
                        }
                    }
                }
                Node::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let inner = self.vars.len();
                    let ok = self
                        .pipeline(cond, dot)
                        .is_ok_and(|v| crate::json_truth(&v));
                    self.exec(if ok { then } else { otherwise }, dot, out, depth);
                    self.vars.truncate(inner);
                }
                Node::With {
                    value,
                    then,
                    otherwise,
                } => {
                    let inner = self.vars.len();
                    match self.pipeline(value, dot) {
                        Ok(v) if crate::json_truth(&v) => self.exec(then, &v, out, depth),
                        _ => self.exec(otherwise, dot, out, depth),
                    }
                    self.vars.truncate(inner);
                }
                Node::Range {
                    value,
                    body,
                    otherwise,
                } => self.range(value, body, otherwise, dot, out, depth),
                Node::Template { name, dot: arg } => {
                    let Some(body) = self.t.defines.get(name) else {
                        continue;
                    };
                    if depth >= MAX_DEPTH {
                        continue;
                    }
                    let new_dot = match arg {
                        Some(p) => self.pipeline(p, dot).unwrap_or(Value::Null),
                        None => Value::Null,
                    };
                    let saved =
                        std::mem::replace(&mut self.vars, vec![(String::new(), new_dot.clone())]);
                    self.exec(body, &new_dot, out, depth + 1);
                    self.vars = saved;
                }
            }
        }
        self.vars.truncate(mark);
    }

    fn range(
        &mut self,
        value: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
        out: &mut String,
        depth: usize,
    ) {
        let inner = self.vars.len();
        // The range's own variables are bound per element, not to the whole value.
        let items: Vec<(Value, Value)> = match self.eval(&value.cmds, dot) {
            Ok(Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Ok(Value::Object(m)) => {
                let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect()
            }
            _ => Vec::new(),
        };
        if items.is_empty() {
            self.exec(otherwise, dot, out, depth);
        }
        for (key, elem) in items {
            match value.vars.as_slice() {
                [e] => self.vars.push((e.clone(), elem.clone())),
                [k, e] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((e.clone(), elem.clone()));
                }
                _ => {}
            }
            self.exec(body, &elem, out, depth);
            self.vars.truncate(inner);
        }
    }

    fn print(&self, v: &Value, out: &mut String) {
        let text = to_text(v);
        if self.html {
            escape_html(&text, out);
        } else {
            out.push_str(&text);
        }
    }

    fn var(&self, name: &str) -> Result<&Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("undefined variable ${name}"))
    }

    /// The value of a pipeline's commands, each result passed to the next as its last argument.
    fn eval(&mut self, cmds: &[Vec<Arg>], dot: &Value) -> Result<Value, String> {
        let mut piped: Option<Value> = None;
        for cmd in cmds {
            piped = Some(self.command(cmd, dot, piped)?);
        }
        Ok(piped.unwrap_or(Value::Null))
    }

    /// Evaluates a pipeline and binds the variable it declares or assigns.
    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, String> {
        let v = self.eval(&p.cmds, dot)?;
        if let Some(name) = p.vars.first() {
            if p.declare {
                self.vars.push((name.clone(), v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            } else {
                return Err(format!("undefined variable ${name}"));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        if let Some(Arg::Func(name)) = args.first() {
            let mut vals = Vec::with_capacity(args.len());
            for a in &args[1..] {
                vals.push(self.arg(a, dot)?);
            }
            vals.extend(piped);
            return call(name, vals);
        }
        match (args, piped) {
            ([single], None) => self.arg(single, dot),
            _ => Err("can't give an argument to a non-function".into()),
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, String> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Field(path) => lookup(dot, path),
            Arg::Var(name, path) => lookup(self.var(name)?, path),
            Arg::Lit(v) => v.clone(),
            Arg::Func(name) => call(name, Vec::new())?,
            Arg::Sub(p) => self.pipeline(p, dot)?,
        })
    }
}

fn lookup(v: &Value, path: &[String]) -> Value {
    let mut cur = v;
    for p in path {
        cur = match cur {
            Value::Object(map) => match map.get(p) {
                Some(next) => next,
                None => return Value::Null,
            },
            _ => return Value::Null,
        };
    }
    cur.clone()
}

/// How a value prints: strings bare, nothing for nil, JSON for the rest.
fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn escape_html(text: &str, out: &mut String) {
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

fn arity(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), String> {
    crate::arity(name, args.len(), min, max)
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y))
            .ok_or_else(|| "incomparable numbers".into()),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Go's `fmt.Sprint`: a space between two operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&to_text(a));
    }
    out
}

/// `printf` with the verbs templates use: `%s`, `%v`, `%d`, `%q` and `%%`.
fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb @ ('s' | 'v' | 'd' | 'q')) => match args.next() {
                Some(v) if verb == 'q' => out.push_str(&Value::String(to_text(v)).to_string()),
                Some(v) => out.push_str(&to_text(v)),
                None => {
                    let _ = write!(out, "%!{verb}(MISSING)");
                }
            },
            Some(other) => {
                let _ = write!(out, "%!{other}(BADVERB)");
            }
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

fn title(s: &str) -> String {
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

fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let s = |i: usize| args.get(i).map(to_text).unwrap_or_default();
    Ok(match name {
        "and" => {
            arity(name, &args, 1, usize::MAX)?;
            let last = args.len() - 1;
            let i = args
                .iter()
                .position(|a| !crate::json_truth(a))
                .unwrap_or(last);
            args[i].clone()
        }
        "or" => {
            arity(name, &args, 1, usize::MAX)?;
            let last = args.len() - 1;
            let i = args.iter().position(crate::json_truth).unwrap_or(last);
            args[i].clone()
        }
        "not" => {
            arity(name, &args, 1, 1)?;
            Value::Bool(!crate::json_truth(&args[0]))
        }
        "eq" => {
            arity(name, &args, 2, usize::MAX)?;
            Value::Bool(args[1..].iter().any(|b| equal(&args[0], b)))
        }
        "ne" => {
            arity(name, &args, 2, 2)?;
            Value::Bool(!equal(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2, 2)?;
            let o = compare(&args[0], &args[1])?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "len" => {
            arity(name, &args, 1, 1)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                _ => return Err("len of a value that has no length".into()),
            })
        }
        "index" => {
            arity(name, &args, 1, usize::MAX)?;
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Object(m), key) => m.get(&to_text(key)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(usize::try_from(i).ok()?))
                        .cloned()
                        .ok_or("index out of range")?,
                    (Value::Null, _) => Value::Null,
                    _ => return Err("cannot index this value".into()),
                };
            }
            cur
        }
        "print" => Value::String(sprint(&args)),
        "println" => {
            let line: Vec<String> = args.iter().map(to_text).collect();
            Value::String(line.join(" ") + "\n")
        }
        "printf" => {
            arity(name, &args, 1, usize::MAX)?;
            Value::String(sprintf(&s(0), &args[1..]))
        }
        "html" => {
            let mut out = String::new();
            escape_html(&sprint(&args), &mut out);
            Value::String(out)
        }
        "urlquery" => Value::String(crate::query_escape(&sprint(&args))),
        "default" => {
            arity(name, &args, 1, 2)?;
            match args.get(1) {
                Some(v) if crate::json_truth(v) => v.clone(),
                _ => args[0].clone(),
            }
        }
        "empty" => {
            arity(name, &args, 1, 1)?;
            Value::Bool(!crate::json_truth(&args[0]))
        }
        "coalesce" => args
            .iter()
            .find(|a| crate::json_truth(a))
            .cloned()
            .unwrap_or(Value::Null),
        "ternary" => {
            arity(name, &args, 3, 3)?;
            if crate::json_truth(&args[2]) {
                args[0].clone()
            } else {
                args[1].clone()
            }
        }
        "upper" | "lower" | "title" | "trim" | "quote" => {
            arity(name, &args, 1, 1)?;
            let v = s(0);
            Value::String(match name {
                "upper" => v.to_uppercase(),
                "lower" => v.to_lowercase(),
                "title" => title(&v),
                "trim" => v.trim().to_owned(),
                _ => Value::String(v).to_string(),
            })
        }
        "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
            arity(name, &args, 2, 2)?;
            let (arg, v) = (s(0), s(1));
            match name {
                "trimPrefix" => {
                    Value::String(v.strip_prefix(arg.as_str()).unwrap_or(&v).to_owned())
                }
                "trimSuffix" => {
                    Value::String(v.strip_suffix(arg.as_str()).unwrap_or(&v).to_owned())
                }
                "contains" => Value::Bool(v.contains(arg.as_str())),
                "hasPrefix" => Value::Bool(v.starts_with(arg.as_str())),
                _ => Value::Bool(v.ends_with(arg.as_str())),
            }
        }
        "replace" => {
            arity(name, &args, 3, 3)?;
            Value::String(s(2).replace(&s(0), &s(1)))
        }
        "join" => {
            arity(name, &args, 2, 2)?;
            let items: Vec<String> = match &args[1] {
                Value::Array(a) => a.iter().map(to_text).collect(),
                other => vec![to_text(other)],
            };
            Value::String(items.join(&s(0)))
        }
        "toJson" => {
            arity(name, &args, 1, 1)?;
            Value::String(args[0].to_string())
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, data: &Value) -> String {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .render(data, false)
    }

    /// (template, data, output): what Kratos' courier prints.
    #[rustfmt::skip]
    fn cases() -> Vec<(&'static str, Value, &'static str)> {
        let fields = json!({"A": {"b": "x", "first-name": "Ann"}, "N": 3});
        let coll = json!({"L": ["a", "b"], "M": {"z": 1, "y": 2}, "E": [], "P": {"n": "Ann"}});
        let funcs = json!({"N": "ann lee", "E": "", "L": ["a", "b"], "M": {"k": [1, 2]}});
        let i18n = r#"{{define "en"}}Code: {{ .Code }}{{end}}{{define "de"}}Kode: {{ .Code }}{{end}}
{{- if eq .Identity.traits.lang "de" -}}{{ template "de" . }}{{- else -}}{{ template "en" . }}{{- end -}}"#;
        let lang = "{{ if eq .L \"de\" }}Hallo{{ else if eq .L \"fr\" }}Salut{{ else }}Hi{{ end }}";
        let mut cases = vec![
            // Fields (names may hold `-`, as traits do), variables and literals; a missing key is empty.
            ("{{ .A.b }}/{{ $.N }}/{{ .A.first-name }}", fields.clone(), "x/3/Ann"),
            ("{{ $x := .A.b }}[{{ $x }}]{{ $x = \"y\" }}{{ $x }}", fields.clone(), "[x]y"),
            ("{{ \"q\\\"\" }}{{ `r\\n` }}{{ 1.5 }}{{ true }}{{ nil }}", fields.clone(), "q\"r\\n1.5true"),
            ("{{ .Missing }}|{{ .A.b.c }}|{{ .N.x }}", fields.clone(), "||"),
            ("{{ \"}}\" }}", fields, "}}"),
            // if / else if / else and Go's truth.
            (lang, json!({"L": "de"}), "Hallo"),
            (lang, json!({"L": "fr"}), "Salut"),
            (lang, json!({}), "Hi"),
            ("{{ if and .A (not .B) }}y{{ end }}", json!({"A": 1, "B": 0}), "y"),
            ("{{ or .A .B \"c\" }}", json!({"A": "", "B": 0}), "c"),
            ("{{ if lt .A 3 }}y{{ end }}{{ if lt .A \"x\" }}z{{ end }}", json!({"A": 1}), "y"),
            // range, with and trim markers.
            ("{{ range .L }}<{{ . }}>{{ end }}", coll.clone(), "<a><b>"),
            ("{{ range $i, $e := .L }}{{ $i }}={{ $e }};{{ end }}", coll.clone(), "0=a;1=b;"),
            ("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", coll.clone(), "y2z1"),
            ("{{ range .E }}x{{ else }}none{{ end }}", coll.clone(), "none"),
            ("{{ with .P }}{{ .n }}{{ $.L }}{{ else }}-{{ end }}", coll.clone(), "Ann[\"a\",\"b\"]"),
            ("{{ with .Q }}{{ . }}{{ else with .P.n }}{{ . }}{{ end }}", coll.clone(), "Ann"),
            ("a \n {{- range .L -}} \n {{ . }} {{- end }} \n b", coll, "aab \n b"),
            // define / template / block, as Kratos' per-language templates use them.
            (i18n, json!({"Code": "123", "Identity": {"traits": {"lang": "de"}}}), "Kode: 123"),
            (i18n, json!({"Code": "9", "Identity": {}}), "Code: 9"),
            ("{{ block \"b\" .X }}[{{ . }}]{{ end }}", json!({"X": 1}), "[1]"),
            // Built-in and Sprig functions, and pipes.
            ("{{ .N | title }}|{{ .N | upper }}|{{ .E | default \"x\" }}", funcs.clone(), "Ann Lee|ANN LEE|x"),
            ("{{ printf \"%s-%d%%\" .N 5 }}|{{ print 1 2 \"a\" 3 }}", funcs.clone(), "ann lee-5%|1 2a3"),
            ("{{ index .M \"k\" 1 }}|{{ len .L }}|{{ join \", \" .L }}", funcs.clone(), "2|2|a, b"),
            ("{{ urlquery \"a b&c\" }}|{{ \"x\" | quote }}|{{ toJson .L }}", funcs.clone(), "a+b%26c|\"x\"|[\"a\",\"b\"]"),
            ("{{ replace \"a\" \"o\" \"banana\" }}|{{ trimPrefix \"ba\" \"banana\" }}", funcs.clone(), "bonono|nana"),
            ("{{ if hasPrefix \"an\" .N }}y{{ end }}{{ ternary 1 2 false }}", funcs.clone(), "y2"),
            // A failing function prints nothing rather than failing the e-mail.
            ("[{{ index .L 9 }}]{{ if lt .N 1 }}y{{ else }}n{{ end }}", funcs, "[]n"),
            // `{{ . . }}` parses (as in Go) and fails when run: it prints nothing.
            ("{{ . . }}x", json!({}), "x"),
        ];
        for (v, want) in [
            (json!(0), "n"), (json!(""), "n"), (json!([]), "n"), (json!({}), "n"), (json!(false), "n"),
            (json!(null), "n"), (json!(2), "y"), (json!("a"), "y"), (json!([0]), "y"),
        ] {
            cases.push(("{{ if .V }}y{{ else }}n{{ end }}", json!({"V": v}), want));
        }
        cases
    }

    #[test]
    fn renders_like_kratos() {
        for (src, data, want) in cases() {
            assert_eq!(render(src, &data), want, "{src} with {data}");
        }
    }

    #[test]
    fn self_inclusion_stops_at_the_depth_limit() {
        // A template that calls itself stops at the depth limit instead of overflowing the stack.
        let t = "{{ define \"r\" }}r{{ template \"r\" }}{{ end }}{{ template \"r\" }}";
        assert_eq!(render(t, &json!({})).len(), MAX_DEPTH);
    }

    #[test]
    fn html_rendering_escapes_values_only() {
        let t = Template::parse("<b>{{ .X }}</b>{{ if .X }}<i>{{ end }}").unwrap();
        assert_eq!(
            t.render(&json!({"X": "<&>"}), true),
            "<b>&lt;&amp;&gt;</b><i>"
        );
    }

    #[test]
    fn syntax_errors_are_found_at_parse_time() {
        for bad in [
            "{{ .X ",
            "{{ if .X }}",
            "{{ end }}",
            "{{ else }}",
            "{{ range .X }}{{ else if .Y }}{{ end }}",
            "{{ nosuch .X }}",
            "{{ .X | }}",
            "{{ (.X }}",
            "{{ .X) }}",
            "{{ \"open }}",
            "{{ define x }}{{ end }}",
            "{{ define \"x\" }}",
            "{{ $x, $y, $z := .L }}",
            "{{ }}",
            "{{ 1x }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} parsed");
        }
    }
}
