//! Builds the syntax tree from tokens: blocks, `define`/`template`, pipelines with their declarations,
//! commands, the fields of a typed root and the arity of each function.

use crate::ast::*;
use crate::lex::*;
use crate::{Dialect, TemplateError, Tree};
use std::collections::HashMap;

/// What ended a list of nodes.
enum Term {
    Eof,
    End(Pos),
    /// `else`, or `else if` / `else with` with its pipeline.
    Else(Pos, Option<(Kind, Pipe)>),
}

enum Opnd {
    Func(Func),
    Get(Expr),
    Expr(Expr),
}

struct Parser {
    d: &'static Dialect,
    lines: Lines,
    items: std::vec::IntoIter<Item>,
    depth: usize,
    defines: HashMap<String, Vec<Node>>,
}

/// Tokens of one action, and the offset of its `{{` (where errors at the end point).
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

pub(crate) fn parse(d: &'static Dialect, src: &str) -> Result<Tree, TemplateError> {
    let lines = Lines::new(src);
    let items = lex(d, src, &lines)?.into_iter();
    let mut p = Parser {
        d,
        lines,
        items,
        depth: 0,
        defines: HashMap::new(),
    };
    match p.list()? {
        (nodes, Term::Eof) => Ok(Tree {
            dialect: d,
            nodes,
            defines: p.defines,
        }),
        (_, Term::End(pos)) => Err(perr(pos, "unexpected {{end}}")),
        (_, Term::Else(pos, _)) => Err(perr(pos, "unexpected {{else}}")),
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
            let kind = |w: &str| match w {
                "if" => Some(Kind::If),
                "with" if self.d.blocks => Some(Kind::With),
                "range" if self.d.blocks => Some(Kind::Range),
                _ => None,
            };
            match (word(0), toks.len()) {
                ("end", 1) => return Ok((nodes, Term::End(p))),
                ("else", 1) => return Ok((nodes, Term::Else(p, None))),
                ("else", _) if kind(word(1)).is_some_and(|k| k != Kind::Range) => {
                    let k = kind(word(1)).unwrap_or(Kind::If);
                    let pipe = self.pipe_all(&toks[2..], open, k.name())?;
                    return Ok((nodes, Term::Else(p, Some((k, pipe)))));
                }
                (w, _) if kind(w).is_some() => {
                    let k = kind(w).unwrap_or(Kind::If);
                    let pipe = self.pipe_all(&toks[1..], open, w)?;
                    nodes.push(self.block(k, pipe, p)?);
                }
                ("define", 2) if self.d.blocks => {
                    let name = self.name(&toks, open)?;
                    let body = self.body("define", p)?;
                    self.defines.insert(name, body);
                }
                ("template" | "block", _) if self.d.blocks => {
                    let name = self.name(&toks, open)?;
                    let arg = match toks.get(2..) {
                        Some(rest) if !rest.is_empty() => {
                            Some(self.pipe_all(rest, open, "template")?)
                        }
                        _ => None,
                    };
                    if word(0) == "block" {
                        let body = self.body("block", p)?;
                        self.defines.entry(name.clone()).or_insert(body);
                    }
                    nodes.push(Node::Call(name, arg));
                }
                (w, _) if KEYWORDS.contains(&w) => {
                    return Err(perr(p, format!("unsupported or malformed action {w}")))
                }
                _ => nodes.push(Node::Action(self.pipe_all(&toks, open, "command")?)),
            }
        }
        Ok((nodes, Term::Eof))
    }

    /// The quoted template name after `define`, `template` or `block`.
    fn name(&self, toks: &[(Tok, usize)], open: usize) -> Result<String, TemplateError> {
        match toks.get(1) {
            Some((Tok::Lit(Lit::Str(name)), _)) => Ok(name.clone()),
            t => Err(perr(
                self.lines.pos(t.map_or(open, |t| t.1)),
                "a template name must be a quoted string",
            )),
        }
    }

    /// A body that must end with `{{end}}` and has no `else`.
    fn body(&mut self, what: &str, p: Pos) -> Result<Vec<Node>, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(perr(p, format!("{what} nested too deep")));
        }
        let nodes = match self.list()? {
            (nodes, Term::End(_)) => nodes,
            (_, Term::Else(p2, _)) => return Err(perr(p2, "expected end; found else")),
            (_, Term::Eof) => return Err(perr(p, format!("unexpected EOF: {what} without end"))),
        };
        self.depth -= 1;
        Ok(nodes)
    }

    /// `if`, `with` or `range` after its pipeline, through its `end` (an `else if` / `else with` chain nests).
    fn block(&mut self, kind: Kind, pipe: Pipe, p: Pos) -> Result<Node, TemplateError> {
        let what = kind.name();
        if pipe.vars.len() > if kind == Kind::Range { 2 } else { 1 } {
            return Err(perr(p, format!("too many declarations in {what}")));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(perr(p, format!("{what} nested too deep")));
        }
        let eof = || perr(p, format!("unexpected EOF: {what} without end"));
        let (then, term) = self.list()?;
        let els = match term {
            Term::End(_) => Vec::new(),
            Term::Else(_, None) => match self.list()? {
                (els, Term::End(_)) => els,
                (_, Term::Else(p2, _)) => return Err(perr(p2, "expected end; found else")),
                (_, Term::Eof) => return Err(eof()),
            },
            Term::Else(p2, Some((k, c))) if k == kind => vec![self.block(k, c, p2)?],
            Term::Else(p2, Some((k, _))) => {
                return Err(perr(p2, format!("else {} in {what}", k.name())))
            }
            Term::Eof => return Err(eof()),
        };
        self.depth -= 1;
        Ok(Node::Block(kind, pipe, then, els))
    }

    fn pipe_all(&self, t: &[(Tok, usize)], open: usize, what: &str) -> Result<Pipe, TemplateError> {
        let mut c = Cur { t, k: 0, end: open };
        let p = self.pipe(&mut c, 0, what)?;
        match c.t.get(c.k) {
            None => Ok(p),
            Some((t, off)) => Err(perr(self.lines.pos(*off), format!("unexpected {t:?}"))),
        }
    }

    /// `$x :=`, `$x =` or `$i, $e :=` at the start of a pipeline.
    fn decl(&self, c: &mut Cur<'_>) -> (Vec<String>, bool) {
        let var = |k: usize| match c.t.get(c.k + k) {
            Some((Tok::Var(n, chain), _)) if chain.is_empty() && !n.is_empty() => Some(n.clone()),
            _ => None,
        };
        let op = |k: usize| match c.t.get(c.k + k) {
            Some((Tok::Declare, _)) => Some(true),
            Some((Tok::Assign, _)) => Some(false),
            _ => None,
        };
        let found = match (var(0), op(1), c.t.get(c.k + 1)) {
            (Some(a), Some(declare), _) => Some((vec![a], declare, 2)),
            (Some(a), None, Some((Tok::Comma, _))) => var(2)
                .zip(op(3))
                .map(|(b, declare)| (vec![a, b], declare, 4)),
            _ => None,
        };
        match found {
            Some((vars, declare, n)) => {
                c.k += n;
                (vars, declare)
            }
            None => (Vec::new(), false),
        }
    }

    fn pipe(&self, c: &mut Cur<'_>, depth: usize, what: &str) -> Result<Pipe, TemplateError> {
        let at = |c: &Cur<'_>| self.lines.pos(c.t.get(c.k).map_or(c.end, |t| t.1));
        if depth > MAX_DEPTH {
            return Err(perr(at(c), "parentheses nested too deep"));
        }
        let (vars, declare) = self.decl(c);
        if c.t.is_empty() || !vars.is_empty() && c.peek().is_none() {
            return Err(perr(at(c), format!("missing value for {what}")));
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
            let cmd = match self.cmd(ops, !cmds.is_empty()) {
                Err(e) if !self.d.strict => Cmd::Fail(e.to_string()),
                r => r?,
            };
            cmds.push(cmd);
            if !matches!(c.peek(), Some(Tok::Pipe)) {
                return Ok(Pipe {
                    vars,
                    declare,
                    cmds,
                });
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
        let (var, names) = match tok {
            Tok::Ident(n) => match n.as_str() {
                "true" | "false" => return lit(Lit::Bool(n == "true")),
                "nil" => return lit(Lit::Nil),
                k if KEYWORDS.contains(&k) => {
                    return Err(perr(p, format!("unexpected keyword {n}")))
                }
                _ => match FUNCS.iter().find(|e| e.0 == n && e.4 & self.d.funcs != 0) {
                    Some(f) => return Ok((Opnd::Func(f.1), p)),
                    None => return Err(perr(p, format!("unsupported function {n}"))),
                },
            },
            Tok::Lit(v) => return lit(v.clone()),
            Tok::LParen => {
                let pipe = self.pipe(c, depth + 1, "parenthesized pipeline")?;
                if !matches!(c.peek(), Some(Tok::RParen)) {
                    return Err(perr(p, "unclosed left paren"));
                }
                c.k += 1;
                return Ok((Opnd::Expr(Expr::Pipe(Box::new(pipe))), p));
            }
            Tok::Var(v, _) if !v.is_empty() && !self.d.blocks => {
                return Err(perr(p, format!("undefined variable ${v}")))
            }
            Tok::Dot => (None, &[][..]),
            Tok::Field(names) => (None, names.as_slice()),
            Tok::Var(v, names) => (Some(v), names.as_slice()),
            _ => return Err(perr(p, format!("unexpected {tok:?}"))),
        };
        // `.` is always the root in a dialect without blocks; variables other than `$` hold JSON.
        let mut ty = match var {
            Some(v) if !v.is_empty() => Ty::Dyn,
            _ => self.d.root,
        };
        let mut steps = Vec::new();
        let expr = |steps| match var {
            Some(v) => Expr::Var(v.clone(), steps, p),
            None => Expr::Field(steps, p),
        };
        for (i, n) in names.iter().enumerate() {
            let (step, next) =
                resolve(ty, n).ok_or_else(|| perr(p, format!("can't evaluate field {n}")))?;
            if step == Step::Get && i + 1 == names.len() {
                return Ok((Opnd::Get(expr(steps)), p));
            } else if step == Step::Get {
                return Err(perr(p, "wrong number of args for Get: want 1 got 0"));
            }
            steps.push(step);
            ty = next;
        }
        if matches!(ty, Ty::Session | Ty::Mc) {
            return Err(perr(
                p,
                "the session and MatchContext structs cannot be used as values; select a field",
            ));
        }
        Ok((Opnd::Expr(expr(steps)), p))
    }

    /// One command; `fin` when a previous command's value is piped in as the last argument.
    fn cmd(&self, ops: Vec<(Opnd, Pos)>, fin: bool) -> Result<Cmd, TemplateError> {
        let mut it = ops.into_iter();
        let Some((head, p)) = it.next() else {
            return Err(TemplateError::Parse("missing command".into()));
        };
        let args = it
            .map(|(o, p)| match o {
                Opnd::Expr(e) => Ok(e),
                Opnd::Func(f) => arity(f, 0, p).map(|()| {
                    let call = Cmd::Call(f, vec![], p);
                    Expr::Pipe(Box::new(Pipe {
                        vars: vec![],
                        declare: false,
                        cmds: vec![call],
                    }))
                }),
                Opnd::Get(_) => Err(perr(p, "wrong number of args for Get: want 1 got 0")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = args.len() + usize::from(fin);
        match head {
            Opnd::Func(f) => {
                arity(f, n, p)?;
                if let (true, Func::Printf, Some(Expr::Lit(Lit::Str(fmt)))) =
                    (self.d.strict, f, args.first())
                {
                    let mut it = fmt.split('%').skip(1);
                    while let Some(seg) = it.next() {
                        match seg.chars().next() {
                            Some(v) if self.d.verbs.contains(v) => {}
                            None if it.next().is_some() => {}
                            _ => {
                                return Err(perr(p, format!("unsupported printf verb in {fmt:?}")))
                            }
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
            Opnd::Expr(Expr::Lit(Lit::Nil)) => Err(perr(p, "nil is not a command")),
            Opnd::Expr(_) if n > 0 => Err(perr(p, "can't give argument to non-function")),
            Opnd::Expr(e) => Ok(Cmd::Value(e)),
        }
    }
}
