//! Strict mode against Oathkeeper's and Go's answers.
use super::text::*;
use super::*;
use serde_json::json;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(src: &str, extra: &Value) -> Result<String, TemplateError> {
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
    let ctx = TemplateContext {
        subject: "alice",
        extra,
        email_verified: false,
        header: &sess,
        match_context,
    };
    Template::compile(src)?.render(&ctx)
}

fn extra() -> Value {
    json!({"identity": {"id": "u1", "traits": {"email": "a@b.c"}}, "n": 42, "big": 1000000, "id8": 12345678,
        "f": 1.5, "tiny": 0.00001, "t": true, "nul": null, "arr": ["a", "b"], "e": "", "html": "<a&b>",
        "obj": {"b": 2, "a": "x", "c": [1, "y", null]}, "crlf": "v\r\nX-Evil: 1"})
}

fn ok(src: &str) -> String {
    run(src, &extra()).unwrap()
}

fn err(src: &str) -> String {
    run(src, &extra()).unwrap_err().to_string()
}

#[test]
fn forms_render_like_go() {
    let cases = [
        ("{{ print .Subject }}|{{ .Subject }}|{{ $.Subject }}", "alice|alice|alice"),
        ("{{ print .Extra.identity.traits.email }} {{ .Extra.identity.id }}", "a@b.c u1"),
        ("{{ .Extra.missing }}|{{ .Extra.nul }}|{{ print .Extra.missing }}", "<no value>|<no value>|"),
        ("{{ .Extra.n }} {{ .Extra.big }} {{ .Extra.id8 }} {{ .Extra.f }}", "42 1e+06 1.2345678e+07 1.5"),
        ("{{ .Extra.tiny }} {{ .Extra.t }} {{ -3 }} {{ 2.50 }} {{ true }}", "1e-05 true -3 2.5 true"),
        ("{{ .Extra.obj }} {{ .Extra.arr }}", "map[a:x b:2 c:[1 y <nil>]] [a b]"),
        ("{{ printIndex .MatchContext.RegexpCaptureGroups 1 }}|{{ printIndex .MatchContext.RegexpCaptureGroups 5 }}", "b|"),
        ("{{ printIndex .Extra.missing 0 }}|{{ printIndex .Extra.arr 0 }}|{{ printIndex .Subject 0 }}", "|a|"),
        ("{{ index .MatchContext.RegexpCaptureGroups 0 }} {{ .MatchContext.RegexpCaptureGroups }}", "a [a b]"),
        ("{{ index .Extra \"identity\" \"id\" }} {{ index .Extra.arr 1 }} {{ index .Subject 0 }}", "u1 b 97"),
        ("{{ .MatchContext.Header.Get \"x-FOO\" }}|{{ .MatchContext.Header.Get \"X-None\" }}", "bar|"),
        ("{{ .Header.Get \"x-sess\" }}|{{ .MatchContext.Header.Accept }}", "s1|[*/*]"),
        ("{{ index .MatchContext.Header \"X-Foo\" }} {{ index .MatchContext.Header \"x-foo\" }}", "[bar baz] []"),
        ("{{ .MatchContext.Header }}", "map[Accept:[*/*] X-Foo:[bar baz]]"),
        ("{{ .MatchContext.URL.Scheme }} {{ .MatchContext.URL.Host }} {{ .MatchContext.URL.Path }}", "https example.com:8443 /a b/c"),
        ("{{ .MatchContext.URL.RawQuery }}|{{ .MatchContext.Method }}", "q=1+2&q=3&x=%zz&e=|GET"),
        ("{{ .MatchContext.URL.Query.Get \"q\" }}|{{ .MatchContext.URL.Query }}", "1 2|map[e:[] q:[1 2 3]]"),
        ("{{ .MatchContext.URL }}", "https://example.com:8443/a%20b/c?q=1+2&q=3&x=%zz&e="),
        ("{{ printf \"%s-%d-%v-%t %%\" .Subject 7 .Extra.f .Extra.t }}", "alice-7-1.5-true %"),
        ("{{ printf \"%d|%s|%v\" .Extra.n .Extra.missing .Extra.missing }}", "%!d(float64=42)|%!s(<nil>)|<nil>"),
        ("{{ printf \"%s %s\" .Subject }}|{{ printf \"%s\" .Subject 1 .Extra.nul }}", "alice %!s(MISSING)|alice%!(EXTRA int=1, <nil>)"),
        ("{{ printf \"%d\" .Extra.arr }} {{ printf \"%v\" .Extra.obj.c }}", "[%!d(string=a) %!d(string=b)] [1 y <nil>]"),
        ("{{ .Subject | printf \"%s!\" }}|{{ .Extra.identity.id | printf \"%s\" | printf \"<%s>\" }}", "alice!|<u1>"),
        ("{{ .Extra.missing | default \"anon\" }} {{ .Subject | default \"anon\" }}", "anon alice"),
        ("{{ \"X-Foo\" | .MatchContext.Header.Get }} {{ print (printIndex .MatchContext.RegexpCaptureGroups 0) }}", "bar a"),
        ("{{ if .Extra.t }}yes{{ else }}no{{ end }} {{ if .Extra.missing }}yes{{ else }}no{{ end }}", "yes no"),
        ("{{ if .Extra.e }}1{{ else if .Extra.arr }}2{{ else }}3{{ end }}{{ if .Subject }}{{ if .Extra.e }}x{{ end }}y{{ end }}", "2y"),
        ("{{ if and .Extra.t (not .Extra.missing) }}ok{{ end }} {{ or .Extra.missing \"fb\" }} [{{ and .Extra.t .Extra.e }}]", "ok fb []"),
        ("{{ eq .Subject \"bob\" \"alice\" }} {{ ne .MatchContext.Method \"GET\" }} {{ eq .Extra.f 1.5 }}", "true false true"),
        ("{{ len .Extra.arr }} {{ len .Subject }} {{ len .Extra.obj }} {{ len .MatchContext.Header }}", "2 5 3 2"),
        ("{{ .Extra.obj | toJson }} {{ toJson .Extra.html }} {{ .MatchContext.RegexpCaptureGroups | toJson }}", r#"{"a":"x","b":2,"c":[1,"y",null]} "\u003ca\u0026b\u003e" ["a","b"]"#),
        ("{{ toJson .Extra.big }} {{ toJson .Extra.tiny }} {{ toJson .MatchContext.Header }}", r#"1000000 0.00001 {"Accept":["*/*"],"X-Foo":["bar","baz"]}"#),
        ("{{ urlquery .Extra.html }} {{ urlquery .Extra.missing }} {{ .Subject | b64enc }} {{ b64enc \"ab\" }}", "%3Ca%26b%3E %3Cno+value%3E YWxpY2U= YWI="),
        ("a \n {{- .Subject -}} \n b|{{ 3 -}} x|x {{- /* c */ -}} y|{{/* c */}}z", "aaliceb|3x|xy|z"),
        ("{{ `raw\\n` }} {{ \"t\\x41\\u00e9\\\"\" }}", "raw\\n tAé\""),
    ];
    for (src, want) in cases {
        assert_eq!(run(src, &extra()).as_deref(), Ok(want), "{src}");
    }
}

#[test]
fn compile_errors_have_positions() {
    let cases = [
        ("{{ foo .Subject }}", "template: unsupported function foo at 1:4"),
        ("ab\n  {{ .Subject | bar }}", "template: unsupported function bar at 2:17"),
        ("x{{ .Subject ", "template: unclosed action at 1:2"),
        ("{{ if .Subject }}x", "template: unexpected EOF: if without end at 1:1"),
        ("{{ if .Subject }}x{{ else }}y{{ else }}z{{ end }}", "template: expected end; found else at 1:30"),
        ("{{ end }}", "template: unexpected {{end}} at 1:1"),
        ("{{ .Nope }}", "template: can't evaluate field Nope at 1:4"),
        ("{{ .Subject.x }}", "template: can't evaluate field x at 1:4"),
        ("{{ print 1 2 }}", "template: wrong number of args for print: want 1 got 2 at 1:4"),
        ("{{ \"abc }}", "template: unterminated or malformed quoted string at 1:4"),
        ("{{ printf \"%x\" 1 }}", "template: unsupported printf verb in \"%x\" at 1:4"),
        ("{{ range .Extra.arr }}{{ end }}", "template: unsupported or malformed action range at 1:1"),
        ("{{ $x := 1 }}", "template: variables are not supported at 1:7"),
        ("{{ $x }}", "template: undefined variable $x at 1:4"),
        ("{{ .Subject .Subject }}", "template: can't give argument to non-function at 1:4"),
        ("{{ .MatchContext.Header.Get }}", "template: wrong number of args for Get: want 1 got 0 at 1:4"),
        ("{{ . }}", "template: the session and MatchContext structs cannot be used as values; select a field at 1:4"),
        ("{{ }}", "template: missing value for command at 1:1"),
        ("{{ ( }}", "template: missing command at 1:1"),
        ("{{ nil }}", "template: nil is not a command at 1:4"),
        ("{{ (print 1).x }}", "template: field access on a parenthesized pipeline is not supported at 1:12"),
        ("{{ 0x10 }}", "template: bad number syntax at 1:4"),
        ("{{/* x }}", "template: unclosed comment at 1:1"),
    ];
    for (src, want) in cases {
        let got = Template::compile(src).err().map(|e| e.to_string());
        assert_eq!(got.as_deref(), Some(want), "{src}");
    }
}

#[test]
fn exec_errors() {
    assert_eq!(
        err("{{ index .MatchContext.RegexpCaptureGroups 5 }}"),
        "template: error calling index: index out of range: 5 at 1:4"
    );
    assert_eq!(
        err("{{ .Extra.identity.nope.x }}"),
        "template: nil pointer evaluating interface {}.x at 1:4"
    );
    assert_eq!(
        err("{{ .Extra.n.x }}"),
        "template: can't evaluate field x in type interface {} at 1:4"
    );
    assert_eq!(
        err("{{ index .Extra.missing 0 }}"),
        "template: error calling index: index of untyped nil at 1:4"
    );
    assert_eq!(
        err("{{ len .Extra.n }}"),
        "template: error calling len: len of type float64 at 1:4"
    );
    assert_eq!(
        err("{{ eq .Extra.n 42 }}"),
        "template: error calling eq: incompatible types for comparison at 1:4"
    );
    assert!(err("{{ printIndex .MatchContext.RegexpCaptureGroups -1 }}")
        .contains("error calling printIndex"));
    assert!(err("{{ printIndex .Extra.arr .Extra.n }}").contains("expected int; got float64"));
    assert!(err("{{ b64enc .Extra.n }}").contains("expected string; got float64"));
}

#[test]
fn literal_and_json_output() {
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
    assert!(Template::compile("{{ .EmailVerified.x }}").is_err());
    let e = Template::compile("é{{ foo }}").unwrap_err().to_string();
    assert_eq!(e, "template: unsupported function foo at 1:6");
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
fn crlf_passes_through_unescaped() {
    assert_eq!(ok("{{ .Extra.crlf }}"), "v\r\nX-Evil: 1");
}

#[test]
fn random_templates_never_panic() {
    const PIECES: [&str; 40] = [
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
        "\"%d %s %v %\"",
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
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut compiled, extras) = (0, [extra(), Value::Null, json!("str"), json!([1])]);
    for round in 0..20_000 {
        let mut src = String::new();
        for _ in 0..next() % 16 {
            match next() % 8 {
                0 => src.push(char::from_u32((next() % 0x250) as u32).unwrap_or('x')),
                _ => src.push_str(PIECES[(next() % PIECES.len() as u64) as usize]),
            }
        }
        if let Ok(t) = Template::compile(&src) {
            compiled += 1;
            let _ = run(&src, &extras[round % extras.len()]);
            let _ = t.is_literal();
        }
    }
    assert!(compiled > 1000, "{compiled}");
}
