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

use crate::exec::{render, Val};
use crate::{parse::parse, Tree, STRICT};
use serde_json::Value;

pub use crate::TemplateError;

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
pub struct Template(Tree);

impl Template {
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        parse(&STRICT, source).map(Self)
    }

    pub fn render(&self, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
        render(&self.0, Val::Session(ctx), false)
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
        self.0.defines.is_empty()
            && self
                .0
                .nodes
                .iter()
                .all(|n| matches!(n, crate::ast::Node::Text(_)))
    }
}
