//! Builds the syntax tree from tokens: pipelines, commands, `if`/`else`/`end`, and the arity of each function.

use super::ast::*;
use super::exec::*;
use super::lex::*;
use super::*;

pub(super) enum Term {
    Eof,
    End(Pos),
    Else(Pos, Option<Pipe>),
}

pub(super) enum Opnd {
    Func(Func),
    Get(Vec<Step>),
    Expr(Expr),
}

pub(super) struct Parser {
    pub(super) lines: Lines,
    pub(super) items: std::vec::IntoIter<Item>,
    pub(super) depth: usize,
}

pub(super) struct Cur<'t> {
    pub(super) t: &'t [(Tok, usize)],
    pub(super) k: usize,
    pub(super) end: usize,
}

impl Cur<'_> {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.t.get(self.k).map(|t| &t.0)
    }
}

impl Parser {
    pub(super) fn list(&mut self) -> Result<(Vec<Node>, Term), TemplateError> {
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

    pub(super) fn if_node(&mut self, cond: Pipe, p: Pos) -> Result<Node, TemplateError> {
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

    pub(super) fn pipe_all(
        &self,
        t: &[(Tok, usize)],
        open: usize,
        what: &str,
    ) -> Result<Pipe, TemplateError> {
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

    pub(super) fn pipe(&self, c: &mut Cur<'_>, depth: usize) -> Result<Pipe, TemplateError> {
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

    pub(super) fn operand(
        &self,
        c: &mut Cur<'_>,
        depth: usize,
    ) -> Result<(Opnd, Pos), TemplateError> {
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

pub(super) fn cmd(ops: Vec<(Opnd, Pos)>, fin: bool) -> Result<Cmd, TemplateError> {
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

pub(super) fn arity(f: Func, n: usize, p: Pos) -> Result<(), TemplateError> {
    let (_, _, min, max) = FUNCS
        .iter()
        .find(|e| e.1 == f)
        .copied()
        .unwrap_or(("", f, 0, MANY));
    crate::arity(fname(f), n, min, max).map_err(|m| perr(p, m))
}
