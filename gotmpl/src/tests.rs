//! Conformance of both dialects: tables of (template, data, expected output or error) with Oathkeeper's,
//! Kratos' and Go's answers. The examples of Go's `text/template` documentation are in `tests/go_docs.rs`.

use crate::strict::{MatchContext, Template, TemplateContext, TemplateError};
use crate::text::go_float;
use crate::{kratos, strict};
use serde_json::{json, Value};

/// Which engine and data: strict over the standard session with this `Extra`, or Kratos over this JSON.
enum D {
    S(Value),
    K(Value),
}

/// What a case must give.
enum Want {
    Out(&'static str),
    /// Strict: this compile error, exactly.
    Compile(&'static str),
    /// Strict: compiles, then fails to render with this error, exactly.
    Exec(&'static str),
    /// Strict: compiles, then fails to render with an error holding this text.
    ExecHas(&'static str),
    /// Kratos: a parse error.
    Bad,
}
use Want::*;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_session<T>(extra: &Value, f: impl FnOnce(&TemplateContext<'_>) -> T) -> T {
    let groups = vec!["a".to_owned(), "b".to_owned()];
    let (hdr, sess) = (
        pairs(&[("x-foo", "bar"), ("X-Foo", "baz"), ("accept", "*/*")]),
        pairs(&[("X-Sess", "s1")]),
    );
    let match_context = MatchContext {
        regexp_capture_groups: &groups,
        method: "GET",
        scheme: "https",
        host: "example.com:8443",
        path: "/a%20b/c",
        raw_query: "q=1+2&q=3&x=%zz&e=",
        header: &hdr,
    };
    f(&TemplateContext {
        subject: "alice",
        extra,
        email_verified: false,
        header: &sess,
        match_context,
    })
}

fn run(src: &str, extra: &Value) -> Result<String, TemplateError> {
    with_session(extra, |ctx| Template::compile(src)?.render(ctx))
}

fn extra() -> Value {
    json!({"identity": {"id": "u1", "traits": {"email": "a@b.c"}}, "n": 42, "big": 1000000, "id8": 12345678,
        "f": 1.5, "tiny": 0.00001, "t": true, "nul": null, "arr": ["a", "b"], "e": "", "html": "<a&b>",
        "obj": {"b": 2, "a": "x", "c": [1, "y", null]}, "crlf": "v\r\nX-Evil: 1"})
}

#[rustfmt::skip]
fn strict_cases() -> Vec<(&'static str, Want)> {
    vec![
        // Fields of the session, Go's printing of JSON numbers, maps and lists.
        ("{{ print .Subject }}|{{ .Subject }}|{{ $.Subject }}", Out("alice|alice|alice")),
        ("{{ print .Extra.identity.traits.email }} {{ .Extra.identity.id }}", Out("a@b.c u1")),
        ("{{ .Extra.missing }}|{{ .Extra.nul }}|{{ print .Extra.missing }}", Out("<no value>|<no value>|")),
        ("{{ .Extra.n }} {{ .Extra.big }} {{ .Extra.id8 }} {{ .Extra.f }}", Out("42 1e+06 1.2345678e+07 1.5")),
        ("{{ .Extra.tiny }} {{ .Extra.t }} {{ -3 }} {{ 2.50 }} {{ true }}", Out("1e-05 true -3 2.5 true")),
        ("{{ .Extra.obj }} {{ .Extra.arr }}", Out("map[a:x b:2 c:[1 y <nil>]] [a b]")),
        ("{{ printIndex .MatchContext.RegexpCaptureGroups 1 }}|{{ printIndex .MatchContext.RegexpCaptureGroups 5 }}", Out("b|")),
        ("{{ printIndex .Extra.missing 0 }}|{{ printIndex .Extra.arr 0 }}|{{ printIndex .Subject 0 }}", Out("|a|")),
        ("{{ index .MatchContext.RegexpCaptureGroups 0 }} {{ .MatchContext.RegexpCaptureGroups }}", Out("a [a b]")),
        ("{{ index .Extra \"identity\" \"id\" }} {{ index .Extra.arr 1 }} {{ index .Subject 0 }}", Out("u1 b 97")),
        // Headers and the URL.
        ("{{ .MatchContext.Header.Get \"x-FOO\" }}|{{ .MatchContext.Header.Get \"X-None\" }}", Out("bar|")),
        ("{{ .Header.Get \"x-sess\" }}|{{ .MatchContext.Header.Accept }}", Out("s1|[*/*]")),
        ("{{ index .MatchContext.Header \"X-Foo\" }} {{ index .MatchContext.Header \"x-foo\" }}", Out("[bar baz] []")),
        ("{{ .MatchContext.Header }}", Out("map[Accept:[*/*] X-Foo:[bar baz]]")),
        ("{{ .MatchContext.URL.Scheme }} {{ .MatchContext.URL.Host }} {{ .MatchContext.URL.Path }}", Out("https example.com:8443 /a b/c")),
        ("{{ .MatchContext.URL.RawQuery }}|{{ .MatchContext.Method }}", Out("q=1+2&q=3&x=%zz&e=|GET")),
        ("{{ .MatchContext.URL.Query.Get \"q\" }}|{{ .MatchContext.URL.Query }}", Out("1 2|map[e:[] q:[1 2 3]]")),
        ("{{ .MatchContext.URL }}", Out("https://example.com:8443/a%20b/c?q=1+2&q=3&x=%zz&e=")),
        // printf, pipes and the functions.
        ("{{ printf \"%s-%d-%v-%t %%\" .Subject 7 .Extra.f .Extra.t }}", Out("alice-7-1.5-true %")),
        ("{{ printf \"%d|%s|%v\" .Extra.n .Extra.missing .Extra.missing }}", Out("%!d(float64=42)|%!s(<nil>)|<nil>")),
        ("{{ printf \"%s %s\" .Subject }}|{{ printf \"%s\" .Subject 1 .Extra.nul }}", Out("alice %!s(MISSING)|alice%!(EXTRA int=1, <nil>)")),
        ("{{ printf \"%d\" .Extra.arr }} {{ printf \"%v\" .Extra.obj.c }}", Out("[%!d(string=a) %!d(string=b)] [1 y <nil>]")),
        ("{{ .Subject | printf \"%s!\" }}|{{ .Extra.identity.id | printf \"%s\" | printf \"<%s>\" }}", Out("alice!|<u1>")),
        ("{{ .Extra.missing | default \"anon\" }} {{ .Subject | default \"anon\" }}", Out("anon alice")),
        ("{{ \"X-Foo\" | .MatchContext.Header.Get }} {{ print (printIndex .MatchContext.RegexpCaptureGroups 0) }}", Out("bar a")),
        ("{{ if .Extra.t }}yes{{ else }}no{{ end }} {{ if .Extra.missing }}yes{{ else }}no{{ end }}", Out("yes no")),
        ("{{ if .Extra.e }}1{{ else if .Extra.arr }}2{{ else }}3{{ end }}{{ if .Subject }}{{ if .Extra.e }}x{{ end }}y{{ end }}", Out("2y")),
        ("{{ if and .Extra.t (not .Extra.missing) }}ok{{ end }} {{ or .Extra.missing \"fb\" }} [{{ and .Extra.t .Extra.e }}]", Out("ok fb []")),
        ("{{ eq .Subject \"bob\" \"alice\" }} {{ ne .MatchContext.Method \"GET\" }} {{ eq .Extra.f 1.5 }}", Out("true false true")),
        ("{{ len .Extra.arr }} {{ len .Subject }} {{ len .Extra.obj }} {{ len .MatchContext.Header }}", Out("2 5 3 2")),
        ("{{ .Extra.obj | toJson }} {{ toJson .Extra.html }} {{ .MatchContext.RegexpCaptureGroups | toJson }}", Out(r#"{"a":"x","b":2,"c":[1,"y",null]} "\u003ca\u0026b\u003e" ["a","b"]"#)),
        ("{{ toJson .Extra.big }} {{ toJson .Extra.tiny }} {{ toJson .MatchContext.Header }}", Out(r#"1000000 0.00001 {"Accept":["*/*"],"X-Foo":["bar","baz"]}"#)),
        ("{{ urlquery .Extra.html }} {{ urlquery .Extra.missing }} {{ .Subject | b64enc }} {{ b64enc \"ab\" }}", Out("%3Ca%26b%3E %3Cno+value%3E YWxpY2U= YWI=")),
        ("a \n {{- .Subject -}} \n b|{{ 3 -}} x|x {{- /* c */ -}} y|{{/* c */}}z", Out("aaliceb|3x|xy|z")),
        ("{{ `raw\\n` }} {{ \"t\\x41\\u00e9\\\"\" }}", Out("raw\\n tAé\"")),
        ("{{ .Extra.crlf }}", Out("v\r\nX-Evil: 1")),
        // Go doc: "{{-3}}" is the number -3, not a trim marker.
        ("{{-3}}", Out("-3")),
        ("{{ urlquery \"a b\" 1 2 \"c\" }}", Out("a+b1+2c")),
        // Compile errors, with Go's positions.
        ("{{ foo .Subject }}", Compile("template: unsupported function foo at 1:4")),
        ("ab\n  {{ .Subject | bar }}", Compile("template: unsupported function bar at 2:17")),
        ("é{{ foo }}", Compile("template: unsupported function foo at 1:6")),
        ("x{{ .Subject ", Compile("template: unclosed action at 1:2")),
        ("{{ if .Subject }}x", Compile("template: unexpected EOF: if without end at 1:1")),
        ("{{ if .Subject }}x{{ else }}y{{ else }}z{{ end }}", Compile("template: expected end; found else at 1:30")),
        ("{{ end }}", Compile("template: unexpected {{end}} at 1:1")),
        ("{{ .Nope }}", Compile("template: can't evaluate field Nope at 1:4")),
        ("{{ .Subject.x }}", Compile("template: can't evaluate field x at 1:4")),
        ("{{ .EmailVerified.x }}", Compile("template: can't evaluate field x at 1:4")),
        ("{{ print 1 2 }}", Compile("template: wrong number of args for print: want 1 got 2 at 1:4")),
        ("{{ \"abc }}", Compile("template: unterminated or malformed quoted string at 1:4")),
        ("{{ printf \"%x\" 1 }}", Compile("template: unsupported printf verb in \"%x\" at 1:4")),
        ("{{ range .Extra.arr }}{{ end }}", Compile("template: unsupported or malformed action range at 1:1")),
        ("{{ with .Extra }}{{ end }}", Compile("template: unsupported or malformed action with at 1:1")),
        ("{{ define \"x\" }}{{ end }}", Compile("template: unsupported or malformed action define at 1:1")),
        ("{{ $x := 1 }}", Compile("template: variables are not supported at 1:7")),
        ("{{ $x }}", Compile("template: undefined variable $x at 1:4")),
        ("{{ .Subject .Subject }}", Compile("template: can't give argument to non-function at 1:4")),
        ("{{ .MatchContext.Header.Get }}", Compile("template: wrong number of args for Get: want 1 got 0 at 1:4")),
        ("{{ . }}", Compile("template: the session and MatchContext structs cannot be used as values; select a field at 1:4")),
        ("{{ }}", Compile("template: missing value for command at 1:1")),
        ("{{ ( }}", Compile("template: missing command at 1:1")),
        ("{{ nil }}", Compile("template: nil is not a command at 1:4")),
        ("{{ (print 1).x }}", Compile("template: field access on a parenthesized pipeline is not supported at 1:12")),
        ("{{ 0x10 }}", Compile("template: bad number syntax at 1:4")),
        ("{{/* x }}", Compile("template: unclosed comment at 1:1")),
        ("{{ lt 1 2 }}", Compile("template: unsupported function lt at 1:4")),
        // Render errors.
        ("{{ index .MatchContext.RegexpCaptureGroups 5 }}", Exec("template: error calling index: index out of range: 5 at 1:4")),
        ("{{ .Extra.identity.nope.x }}", Exec("template: nil pointer evaluating interface {}.x at 1:4")),
        ("{{ .Extra.n.x }}", Exec("template: can't evaluate field x in type interface {} at 1:4")),
        ("{{ index .Extra.missing 0 }}", Exec("template: error calling index: index of untyped nil at 1:4")),
        ("{{ len .Extra.n }}", Exec("template: error calling len: len of type float64 at 1:4")),
        ("{{ eq .Extra.n 42 }}", Exec("template: error calling eq: incompatible types for comparison at 1:4")),
        ("{{ printIndex .MatchContext.RegexpCaptureGroups -1 }}", ExecHas("error calling printIndex")),
        ("{{ printIndex .Extra.arr .Extra.n }}", ExecHas("expected int; got float64")),
        ("{{ b64enc .Extra.n }}", ExecHas("expected string; got float64")),
    ]
}

#[rustfmt::skip]
fn kratos_cases() -> Vec<(&'static str, Value, Want)> {
    let fields = json!({"A": {"b": "x", "first-name": "Ann"}, "N": 3});
    let coll = json!({"L": ["a", "b"], "M": {"z": 1, "y": 2}, "E": [], "P": {"n": "Ann"}});
    let funcs = json!({"N": "ann lee", "E": "", "L": ["a", "b"], "M": {"k": [1, 2]}});
    let i18n = r#"{{define "en"}}Code: {{ .Code }}{{end}}{{define "de"}}Kode: {{ .Code }}{{end}}
{{- if eq .Identity.traits.lang "de" -}}{{ template "de" . }}{{- else -}}{{ template "en" . }}{{- end -}}"#;
    let lang = "{{ if eq .L \"de\" }}Hallo{{ else if eq .L \"fr\" }}Salut{{ else }}Hi{{ end }}";
    let mut cases = vec![
        // Fields (names may hold `-`, as traits do), variables and literals; a missing key is empty.
        ("{{ .A.b }}/{{ $.N }}/{{ .A.first-name }}", fields.clone(), Out("x/3/Ann")),
        ("{{ $x := .A.b }}[{{ $x }}]{{ $x = \"y\" }}{{ $x }}", fields.clone(), Out("[x]y")),
        ("{{ \"q\\\"\" }}{{ `r\\n` }}{{ 1.5 }}{{ true }}{{ nil }}", fields.clone(), Out("q\"r\\n1.5true")),
        ("{{ .Missing }}|{{ .A.b.c }}|{{ .N.x }}|{{ .Missing.x | default \"d\" }}", fields.clone(), Out("|||d")),
        ("{{ \"}}\" }}", fields, Out("}}")),
        // if / else if / else and Go's truth.
        (lang, json!({"L": "de"}), Out("Hallo")),
        (lang, json!({"L": "fr"}), Out("Salut")),
        (lang, json!({}), Out("Hi")),
        ("{{ if and .A (not .B) }}y{{ end }}", json!({"A": 1, "B": 0}), Out("y")),
        ("{{ or .A .B \"c\" }}", json!({"A": "", "B": 0}), Out("c")),
        ("{{ if lt .A 3 }}y{{ end }}{{ if lt .A \"x\" }}z{{ end }}", json!({"A": 1}), Out("y")),
        ("{{ eq .A 1 }} {{ ge .A 1.5 }} {{ gt \"b\" \"a\" }} {{ le 2 2 }}", json!({"A": 1}), Out("true false true true")),
        // range, with and trim markers.
        ("{{ range .L }}<{{ . }}>{{ end }}", coll.clone(), Out("<a><b>")),
        ("{{ range $i, $e := .L }}{{ $i }}={{ $e }};{{ end }}", coll.clone(), Out("0=a;1=b;")),
        ("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", coll.clone(), Out("y2z1")),
        ("{{ range .E }}x{{ else }}none{{ end }}", coll.clone(), Out("none")),
        ("{{ with .P }}{{ .n }}{{ $.L }}{{ else }}-{{ end }}", coll.clone(), Out("Ann[\"a\",\"b\"]")),
        ("{{ with .Q }}{{ . }}{{ else with .P.n }}{{ . }}{{ end }}", coll.clone(), Out("Ann")),
        ("a \n {{- range .L -}} \n {{ . }} {{- end }} \n b", coll.clone(), Out("aab \n b")),
        ("{{ range $e := .L }}{{ $x := $e }}{{ end }}{{ $x }}|{{ $e }}", coll, Out("|")),
        // define / template / block, as Kratos' per-language templates use them.
        (i18n, json!({"Code": "123", "Identity": {"traits": {"lang": "de"}}}), Out("Kode: 123")),
        (i18n, json!({"Code": "9", "Identity": {}}), Out("Code: 9")),
        ("{{ block \"b\" .X }}[{{ . }}]{{ end }}", json!({"X": 1}), Out("[1]")),
        ("{{ template \"none\" }}x", json!({}), Out("x")),
        // Built-in and Sprig functions, and pipes.
        ("{{ .N | title }}|{{ .N | upper }}|{{ .E | default \"x\" }}", funcs.clone(), Out("Ann Lee|ANN LEE|x")),
        ("{{ printf \"%s-%d%%\" .N 5 }}|{{ print 1 2 \"a\" 3 }}", funcs.clone(), Out("ann lee-5%|1 2a3")),
        ("{{ index .M \"k\" 1 }}|{{ len .L }}|{{ join \", \" .L }}", funcs.clone(), Out("2|2|a, b")),
        ("{{ urlquery \"a b&c\" }}|{{ \"x\" | quote }}|{{ toJson .L }}", funcs.clone(), Out("a+b%26c|\"x\"|[\"a\",\"b\"]")),
        ("{{ replace \"a\" \"o\" \"banana\" }}|{{ trimPrefix \"ba\" \"banana\" }}", funcs.clone(), Out("bonono|nana")),
        ("{{ if hasPrefix \"an\" .N }}y{{ end }}{{ ternary 1 2 false }}", funcs.clone(), Out("y2")),
        ("{{ html \"<a href='x'>\" }}|{{ println 1 \"a\" }}|{{ coalesce .E .N }}|{{ empty .E }}", funcs.clone(), Out("&lt;a href=&#39;x&#39;&gt;|1 a\n|ann lee|true")),
        ("{{ trimSuffix \"ee\" .N }}|{{ contains \"n l\" .N }}|{{ hasSuffix \"x\" .N }}|{{ lower \"AB\" }}|{{ trim \" a \" }}", funcs.clone(), Out("ann l|true|false|ab|a")),
        // A failing function prints nothing rather than failing the e-mail.
        ("[{{ index .L 9 }}]{{ if lt .N 1 }}y{{ else }}n{{ end }}", funcs.clone(), Out("[]n")),
        // `{{ . . }}` and a wrong argument count parse (as in Go) and fail when run: they print nothing.
        ("{{ . . }}x{{ upper }}", json!({}), Out("x")),
        // Go doc: trim markers need the space; "{{-3}}" is a number.
        ("{{-3}}", json!({}), Out("-3")),
    ];
    for (v, want) in [
        (json!(0), "n"), (json!(""), "n"), (json!([]), "n"), (json!({}), "n"), (json!(false), "n"),
        (json!(null), "n"), (json!(2), "y"), (json!("a"), "y"), (json!([0]), "y"),
    ] {
        cases.push(("{{ if .V }}y{{ else }}n{{ end }}", json!({"V": v}), Out(want)));
    }
    // Syntax errors are found at parse time.
    for bad in [
        "{{ .X ", "{{ if .X }}", "{{ end }}", "{{ else }}", "{{ range .X }}{{ else if .Y }}{{ end }}",
        "{{ if .X }}{{ else with .Y }}{{ end }}", "{{ nosuch .X }}", "{{ .X | }}", "{{ (.X }}", "{{ .X) }}",
        "{{ \"open }}", "{{ define x }}{{ end }}", "{{ define \"x\" }}", "{{ $x, $y, $z := .L }}", "{{ }}",
        "{{ 1x }}", "{{ printIndex .L 0 }}", "{{ $x := }}",
    ] {
        cases.push((bad, json!({}), Bad));
    }
    cases
}

fn check(d: D, src: &str, want: &Want) {
    match (d, want) {
        (D::S(extra), want) => {
            let compiled = Template::compile(src);
            match (want, compiled) {
                (Compile(msg), c) => {
                    assert_eq!(c.err(), Some(TemplateError::Parse(strip(msg))), "{src}")
                }
                (_, Err(e)) => panic!("{src}: {e}"),
                (want, Ok(t)) => {
                    let got = with_session(&extra, |ctx| t.render(ctx));
                    match (want, got) {
                        (Out(o), got) => assert_eq!(got.as_deref(), Ok(*o), "{src}"),
                        (Exec(msg), got) => {
                            assert_eq!(got.err(), Some(TemplateError::Exec(strip(msg))), "{src}")
                        }
                        (ExecHas(msg), got) => assert!(
                            matches!(got, Err(TemplateError::Exec(ref e)) if e.contains(msg)),
                            "{src}: {got:?}"
                        ),
                        _ => panic!("{src}: not a strict expectation"),
                    }
                }
            }
        }
        (D::K(_), Bad) => assert!(kratos::Template::parse(src).is_err(), "{src} parsed"),
        (D::K(data), Out(o)) => {
            let t = kratos::Template::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(t.render(&data, false), *o, "{src} with {data}");
        }
        (D::K(_), _) => panic!("{src}: not a Kratos expectation"),
    }
}

fn strip(msg: &str) -> String {
    msg.strip_prefix("template: ").unwrap_or(msg).to_owned()
}

#[test]
fn strict_conformance() {
    for (src, want) in strict_cases() {
        check(D::S(extra()), src, &want);
    }
}

#[test]
fn kratos_conformance() {
    for (src, data, want) in kratos_cases() {
        check(D::K(data), src, &want);
    }
}

#[test]
fn strict_literal_and_json_output() {
    assert!(Template::compile("plain {text}").unwrap().is_literal());
    assert!(Template::compile("a{{/* x */}}b").unwrap().is_literal());
    assert!(!Template::compile("{{ .Subject }}").unwrap().is_literal());
    let ctx = TemplateContext {
        subject: "s",
        extra: &json!({"identity": {"id": "u1"}}),
        email_verified: false,
        header: &[],
        match_context: MatchContext {
            regexp_capture_groups: &[],
            method: "",
            scheme: "",
            host: "",
            path: "",
            raw_query: "",
            header: &[],
        },
    };
    let claims = Template::compile(
        r#"{"aud": ["my-api"], "session": {{ .Extra.identity | toJson }}} trailing"#,
    )
    .unwrap();
    assert_eq!(
        claims.render_json(&ctx).unwrap(),
        json!({"aud": ["my-api"], "session": {"id": "u1"}})
    );
    assert!(Template::compile(r#"{"sub": {{ .Subject }}}"#)
        .unwrap()
        .render_json(&ctx)
        .is_err());
    assert_eq!(
        Template::compile("{{ .Extra }}|{{ .MatchContext.URL }}")
            .unwrap()
            .render(&ctx)
            .unwrap(),
        "map[identity:map[id:u1]]|"
    );
    let nil_extra = TemplateContext {
        extra: &Value::Null,
        ..ctx
    };
    let t = Template::compile("{{ .Extra }}|{{ .Extra | toJson }}|{{ .Extra.x }}|{{ len .Extra }}")
        .unwrap();
    assert_eq!(t.render(&nil_extra).unwrap(), "map[]|null|<no value>|0");
    let t = Template::compile(
        "{{ .EmailVerified }}|{{ if .EmailVerified }}y{{ else }}n{{ end }}|{{ toJson .EmailVerified }}",
    )
    .unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "false|n|false");
    let verified = TemplateContext {
        email_verified: true,
        ..ctx
    };
    assert_eq!(t.render(&verified).unwrap(), "true|y|true");
}

#[test]
fn floats_match_go() {
    let cases = [
        (0.0, "0", "0"),
        (-0.0, "-0", "-0"),
        (100000.0, "100000", "100000"),
        (123456789.0, "1.23456789e+08", "123456789"),
        (0.0001, "0.0001", "0.0001"),
        (1e21, "1e+21", "1e+21"),
        (1e20, "1e+20", "100000000000000000000"),
        (1e-7, "1e-07", "1e-7"),
        (-2.5e-300, "-2.5e-300", "-2.5e-300"),
    ];
    for (f, v, j) in cases {
        let (mut a, mut b) = (String::new(), String::new());
        go_float(&mut a, f, false);
        go_float(&mut b, f, true);
        assert_eq!((a.as_str(), b.as_str()), (v, j), "{f}");
    }
}

#[test]
fn kratos_self_inclusion_stops_at_the_depth_limit() {
    // A template that calls itself stops at the depth limit instead of overflowing the stack.
    let t = "{{ define \"r\" }}r{{ template \"r\" }}{{ end }}{{ template \"r\" }}";
    let t = kratos::Template::parse(t).unwrap();
    assert_eq!(t.render(&json!({}), false).len(), crate::ast::MAX_NESTING);
}

#[test]
fn kratos_parse_errors_say_where() {
    let e = kratos::Template::parse("x\n{{ nosuch }}").err();
    assert_eq!(e.as_deref(), Some("unsupported function nosuch at 2:4"));
    let e = kratos::Template::parse("{{ range .L }}{{ else if .Y }}{{ end }}").err();
    assert_eq!(e.as_deref(), Some("else if in range at 1:15"));
}

#[test]
fn kratos_html_rendering_escapes_values_only() {
    let t = kratos::Template::parse("<b>{{ .X }}</b>{{ if .X }}<i>{{ end }}").unwrap();
    assert_eq!(
        t.render(&json!({"X": "<&>"}), true),
        "<b>&lt;&amp;&gt;</b><i>"
    );
}

#[test]
fn deep_nesting_is_a_parse_error() {
    let deep = "{{ if 1 }}".repeat(100) + &"{{ end }}".repeat(100);
    assert!(Template::compile(&deep).is_err());
    assert!(kratos::Template::parse(&deep.replace("if", "with")).is_err());
    let parens = "{{ ".to_owned() + &"(".repeat(100) + "1" + &")".repeat(100) + " }}";
    assert!(kratos::Template::parse(&parens).is_err());
    // Blocks and calls share one bound at run time, so a self-inclusion inside deep blocks stays shallow.
    let body = "{{ with 1 }}".repeat(60) + "r{{ template \"r\" (((((((((((((1))))))))))))) }}";
    let t = format!(
        "{{{{ define \"r\" }}}}{body}{}{{{{ end }}}}{{{{ template \"r\" }}}}",
        "{{ end }}".repeat(60)
    );
    let out = kratos::Template::parse(&t)
        .unwrap()
        .render(&json!({}), false);
    assert_eq!(out.len(), 2);
}

#[test]
fn random_templates_never_panic() {
    const PIECES: [&str; 48] = [
        "{{",
        "}}",
        "{{- ",
        " -}}",
        ".",
        "Extra",
        ".Subject",
        ".MatchContext",
        ".URL",
        ".Header",
        ".Get",
        "|",
        "(",
        ")",
        "\"",
        "`",
        "\\",
        "-",
        " ",
        "if",
        "else",
        "end",
        "printf",
        "\"%d %s %v %q %\"",
        "index",
        "printIndex",
        "0",
        "-1",
        "$",
        "/*",
        "*/",
        "é",
        "eq",
        "and",
        "toJson",
        "1e400",
        ".identity",
        ".arr",
        "'",
        "\n",
        "range",
        "with",
        "$x :=",
        "define \"a\"",
        "template \"a\" .",
        ",",
        "lt",
        "=",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut compiled, mut parsed) = (0, 0);
    let extras = [extra(), Value::Null, json!("str"), json!([1])];
    for round in 0..20_000 {
        let mut src = String::new();
        for _ in 0..next() % 16 {
            match next() % 8 {
                0 => src.push(char::from_u32((next() % 0x250) as u32).unwrap_or('x')),
                _ => src.push_str(PIECES[(next() % PIECES.len() as u64) as usize]),
            }
        }
        let data = &extras[round % extras.len()];
        if let Ok(t) = Template::compile(&src) {
            compiled += 1;
            let _ = run(&src, data);
            let _ = t.is_literal();
        }
        if let Ok(t) = kratos::Template::parse(&src) {
            parsed += 1;
            let _ = t.render(data, round % 2 == 0);
        }
    }
    assert!(compiled > 1000 && parsed > 1000, "{compiled} {parsed}");
}

#[test]
fn strict_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<strict::Template>();
    check::<kratos::Template>();
}
