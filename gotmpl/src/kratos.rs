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
//! Values print with strings bare, nil as nothing and everything else as JSON (`["a","b"]`); `printf`
//! formats `%v %s %d %t` the same way and `%q` as a quoted string. `eq`, `lt`… compare an integer literal
//! with a JSON number by value. Field names may hold `-`, as traits do (`.traits.first-name`).
//!
//! Syntax errors and unknown functions are found when the template is parsed (the message ends with
//! `at line:col`), so a bad override stops start-up; as in Go, argument counts are checked when it runs.
//! Rendering never fails: an action whose evaluation fails (say, `lt` on a string and a number) prints
//! nothing and counts as false, and a missing key (or a field of a missing or non-map value) is empty.
//! Printed values are escaped when rendering HTML.

use crate::exec::{from_json, render};
use crate::{parse::parse, TemplateError, Tree, KRATOS};
use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Tree);

impl Template {
    /// Parses `text`; errors say what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse(&KRATOS, text).map(Self).map_err(|e| match e {
            TemplateError::Parse(m) | TemplateError::Exec(m) => m,
        })
    }

    /// Renders with `data` as `.` and `$`; `html` escapes every printed value.
    pub fn render(&self, data: &Value, html: bool) -> String {
        render(&self.0, from_json(data), html).unwrap_or_default()
    }
}
