//! Conformance of both modes with the examples and rules of Go's `text/template` documentation
//! (pkg.go.dev/text/template): a table of template, data and the output Go prints.

use gotmpl::{kratos, strict};
use serde_json::{json, Value};

/// Go's documented answers that hold in Kratos' mode (data is `.`).
fn kratos_cases() -> Vec<(&'static str, Value, &'static str)> {
    let none = json!({});
    vec![
        // "Examples": every pipeline prints the quoted word "output".
        (r#"{{"\"output\""}}"#, none.clone(), r#""output""#),
        (r#"{{`"output"`}}"#, none.clone(), r#""output""#),
        (r#"{{printf "%q" "output"}}"#, none.clone(), r#""output""#),
        (r#"{{"output" | printf "%q"}}"#, none.clone(), r#""output""#),
        (
            r#"{{printf "%q" (print "out" "put")}}"#,
            none.clone(),
            r#""output""#,
        ),
        (
            r#"{{"put" | printf "%s%s" "out" | printf "%q"}}"#,
            none.clone(),
            r#""output""#,
        ),
        (
            r#"{{"output" | printf "%s" | printf "%q"}}"#,
            none.clone(),
            r#""output""#,
        ),
        (
            r#"{{with "output"}}{{printf "%q" .}}{{end}}"#,
            none.clone(),
            r#""output""#,
        ),
        (
            r#"{{with $x := "output" | printf "%q"}}{{$x}}{{end}}"#,
            none.clone(),
            r#""output""#,
        ),
        (
            r#"{{with $x := "output"}}{{printf "%q" $x}}{{end}}"#,
            none.clone(),
            r#""output""#,
        ),
        (
            r#"{{with $x := "output"}}{{$x | printf "%q"}}{{end}}"#,
            none.clone(),
            r#""output""#,
        ),
        // "Text and spaces".
        ("{{23 -}} < {{- 45}}", none.clone(), "23<45"),
        ("a {{/* a comment */}}b", none.clone(), "a b"),
        ("a {{- /* trimmed */ -}} b", none.clone(), "ab"),
        // "Actions": empty values are false; else-if chains; range over a map visits keys in order.
        (
            "{{if 0}}t{{else if \"\"}}u{{else}}f{{end}}",
            none.clone(),
            "f",
        ),
        (
            "{{range .E}}x{{else}}empty{{end}}",
            json!({"E": []}),
            "empty",
        ),
        (
            "{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}",
            json!({"M": {"b": 2, "a": 1}}),
            "a=1;b=2;",
        ),
        (
            "{{range $i, $e := .L}}{{$i}}{{$e}}{{end}}",
            json!({"L": ["x", "y"]}),
            "0x1y",
        ),
        ("{{with .Missing}}t{{else}}f{{end}}", none.clone(), "f"),
        // "Functions": and/or return an argument, not a bool; eq compares its first argument with each other.
        (
            "{{and 1 0 2}}|{{and 1 2}}|{{or 0 \"\" \"x\"}}|{{or 0 \"\"}}",
            none.clone(),
            "0|2|x|",
        ),
        (
            "{{not 0}}|{{len \"abc\"}}|{{index .L 1}}",
            json!({"L": ["a", "b"]}),
            "true|3|b",
        ),
        (
            "{{eq 1 2 1}}|{{ne 1 2}}|{{lt 1 2}}|{{le 2 2}}|{{gt \"b\" \"a\"}}|{{ge 1 2}}",
            none.clone(),
            "true|true|true|true|true|false",
        ),
        (
            "{{html \"<a href='x'>&</a>\"}}",
            none.clone(),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;",
        ),
        ("{{urlquery \"a b&c=d\"}}", none.clone(), "a+b%26c%3Dd"),
        // fmt.Sprint puts a space between operands when neither is a string.
        (
            "{{print 1 2}}|{{print \"a\" 1 \"b\"}}|{{println \"a\" 1}}",
            none.clone(),
            "1 2|a1b|a 1\n",
        ),
        // "Nested template definitions".
        (
            r#"{{define "T1"}}ONE{{end}}{{define "T2"}}TWO{{end}}{{define "T3"}}{{template "T1"}} {{template "T2"}}{{end}}{{template "T3"}}"#,
            none.clone(),
            "ONE TWO",
        ),
    ]
}

#[test]
fn kratos_mode_prints_what_go_prints() {
    for (src, data, want) in kratos_cases() {
        let t = kratos::Template::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(t.render(&data, false), want, "{src}");
    }
}

/// Go's documented answers that hold in Oathkeeper's strict mode (data is the session; `.Extra` holds the JSON).
fn strict_cases() -> Vec<(&'static str, Value, Result<&'static str, &'static str>)> {
    let none = json!({});
    vec![
        (r#"{{"\"output\""}}"#, none.clone(), Ok(r#""output""#)),
        (r#"{{`"output"`}}"#, none.clone(), Ok(r#""output""#)),
        (
            r#"{{"output" | printf "%s" | printf "%s"}}"#,
            none.clone(),
            Ok("output"),
        ),
        (
            r#"{{"put" | printf "%s%s" "out"}}"#,
            none.clone(),
            Ok("output"),
        ),
        ("{{23 -}} < {{- 45}}", none.clone(), Ok("23<45")),
        (
            "a {{/* a comment */}}b|a {{- /* trimmed */ -}} b",
            none.clone(),
            Ok("a b|ab"),
        ),
        (
            "{{if 0}}t{{else if \"\"}}u{{else}}f{{end}}",
            none.clone(),
            Ok("f"),
        ),
        (
            "{{and 1 0 2}}|{{and 1 2}}|{{or 0 \"\" \"x\"}}|{{or 0 \"\"}}",
            none.clone(),
            Ok("0|2|x|"),
        ),
        (
            "{{not 0}}|{{len \"abc\"}}|{{index .Extra.L 1}}",
            json!({"L": ["a", "b"]}),
            Ok("true|3|b"),
        ),
        ("{{eq 1 2 1}}|{{ne 1 2}}", none.clone(), Ok("true|true")),
        ("{{urlquery \"a b&c=d\"}}", none.clone(), Ok("a+b%26c%3Dd")),
        // missingkey=zero over a map[string]interface{}: a missing key prints "<no value>".
        ("{{.Extra.missing}}", none.clone(), Ok("<no value>")),
        // JSON numbers are float64 in Go, and eq does not compare float64 with int.
        (
            "{{eq .Extra.n 1}}",
            json!({"n": 1}),
            Err("template: error calling eq: incompatible types for comparison at 1:3"),
        ),
        (
            "{{index .Extra.L 5}}",
            json!({"L": []}),
            Err("template: error calling index: index out of range: 5 at 1:3"),
        ),
    ]
}

#[test]
fn strict_mode_prints_what_go_prints() {
    let match_context = strict::MatchContext {
        regexp_capture_groups: &[],
        method: "GET",
        scheme: "https",
        host: "example.com",
        path: "/",
        raw_query: "",
        header: &[],
    };
    for (src, extra, want) in strict_cases() {
        let ctx = strict::TemplateContext {
            subject: "alice",
            extra: &extra,
            email_verified: false,
            header: &[],
            match_context,
        };
        let got = strict::Template::compile(src).and_then(|t| t.render(&ctx));
        let got = got.as_deref().map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{src}");
    }
}
