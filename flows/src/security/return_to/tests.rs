use super::*;

fn policy(allowed: &[&str]) -> ReturnToPolicy {
    ReturnToPolicy {
        allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
        default: "https://good.com/home".to_owned(),
        public_base: "https://auth.good.com/".to_owned(),
    }
}

fn ok(p: &ReturnToPolicy, raw: &str) -> String {
    match p.validate(raw) {
        Ok(u) => u.to_string(),
        Err(e) => unreachable!("{raw:?} should be allowed, got {e}"),
    }
}

fn denied(p: &ReturnToPolicy, raw: &str) {
    let r = p.validate(raw);
    assert!(r.is_err(), "{raw:?} should be refused, got {r:?}");
}

#[test]
fn empty_returns_default() {
    let p = policy(&[]);
    assert_eq!(ok(&p, ""), "https://good.com/home");
}

#[test]
fn allowed_entry_exact_host_and_case_insensitivity() {
    let p = policy(&["https://good.com"]);
    assert_eq!(
        ok(&p, "https://good.com/x?y=1#z"),
        "https://good.com/x?y=1#z"
    );
    assert_eq!(ok(&p, "HTTPS://GOOD.COM/x"), "https://good.com/x");
    assert_eq!(ok(&p, "https://Good.Com"), "https://good.com/");
    denied(&p, "https://evil.com");
    denied(&p, "https://evil.com/good.com");
    denied(&p, "https://good.com.evil.com");
    denied(&p, "https://evilgood.com");
    denied(&p, "https://good.com./x");
}

#[test]
fn default_host_is_not_implicitly_allowed() {
    // Kratos: the default return URL is not part of the allow-list.
    let p = policy(&[]);
    denied(&p, "/dashboard");
    denied(&p, "https://good.com/dashboard");
    let p = policy(&["https://good.com/"]);
    assert_eq!(ok(&p, "/dashboard"), "https://good.com/dashboard");
}

#[test]
fn public_base_self_service_prefix_is_allowed() {
    let p = policy(&[]);
    assert_eq!(
        ok(&p, "https://auth.good.com/self-service/login/browser"),
        "https://auth.good.com/self-service/login/browser"
    );
    denied(&p, "https://auth.good.com/sessions/whoami");
    denied(&p, "https://auth.good.com/");
    denied(&p, "http://auth.good.com/self-service/login/browser");

    let nested = ReturnToPolicy {
        public_base: "https://good.com/kratos/".to_owned(),
        ..policy(&[])
    };
    assert_eq!(
        ok(&nested, "https://good.com/kratos/self-service/x"),
        "https://good.com/kratos/self-service/x"
    );
    denied(&nested, "https://good.com/self-service/x");
}

#[test]
fn path_prefix_rule() {
    let p = policy(&["https://app.com/callback"]);
    assert_eq!(
        ok(&p, "https://app.com/callback"),
        "https://app.com/callback"
    );
    assert_eq!(
        ok(&p, "https://app.com/callback/x?a=b"),
        "https://app.com/callback/x?a=b"
    );
    // plain string prefix, as in Kratos
    assert_eq!(
        ok(&p, "https://app.com/callbacks"),
        "https://app.com/callbacks"
    );
    denied(&p, "https://app.com/");
    denied(&p, "https://app.com/other");
    // dot segments are resolved before the prefix check
    denied(&p, "https://app.com/callback/../admin");
    denied(&p, "https://app.com/callback/%2e%2e/admin");
    denied(&p, "https://app.com/CALLBACK");
}

#[test]
fn relative_paths_resolve_against_default() {
    let p = policy(&["https://good.com/"]);
    assert_eq!(ok(&p, "/x/y?z=1"), "https://good.com/x/y?z=1");
    assert_eq!(ok(&p, "dashboard"), "https://good.com/dashboard");
    assert_eq!(ok(&p, "?flow=1"), "https://good.com/home?flow=1");
    // relative values keep default's port
    let p2 = ReturnToPolicy {
        default: "http://localhost:3000/".to_owned(),
        ..policy(&["http://localhost:3000"])
    };
    assert_eq!(ok(&p2, "/welcome"), "http://localhost:3000/welcome");
    let broken_default = ReturnToPolicy {
        default: "not a url".to_owned(),
        ..policy(&["https://good.com/"])
    };
    denied(&broken_default, "/x");
}

#[test]
fn wildcard_subdomains() {
    let p = policy(&["https://*.example.com"]);
    assert_eq!(ok(&p, "https://a.example.com/x"), "https://a.example.com/x");
    assert_eq!(
        ok(&p, "https://a.b.example.com/"),
        "https://a.b.example.com/"
    );
    assert_eq!(ok(&p, "https://A.EXAMPLE.com/"), "https://a.example.com/");
    denied(&p, "https://example.com/");
    denied(&p, "https://evilexample.com/");
    denied(&p, "https://a.example.com.evil.com/");
    denied(&p, "http://a.example.com/");
    denied(&p, "https://a.example.com:8443/");
    let with_path = policy(&["https://*.example.com/app"]);
    assert!(with_path.validate("https://x.example.com/app/1").is_ok());
    denied(&with_path, "https://x.example.com/other");
}

#[test]
fn unusable_wildcards_are_ignored() {
    for entry in [
        "https://*",
        "https://*.com",
        "https://*example.com",
        "https://a.*.com",
        "https://*.127.0.0.1",
    ] {
        let p = policy(&[entry]);
        denied(&p, "https://evil.com/");
        denied(&p, "https://a.example.com/");
    }
}

#[test]
fn ports_must_match() {
    let p = policy(&["https://good.com:8443/"]);
    assert_eq!(ok(&p, "https://good.com:8443/x"), "https://good.com:8443/x");
    denied(&p, "https://good.com/x");
    denied(&p, "https://good.com:9443/x");
    // default ports are normalised
    let p = policy(&["https://good.com"]);
    assert_eq!(ok(&p, "https://good.com:443/x"), "https://good.com/x");
    denied(&p, "https://good.com:444/x");
}

#[test]
fn scheme_must_match() {
    let p = policy(&["https://good.com"]);
    denied(&p, "http://good.com/");
    let p = policy(&["http://good.com"]);
    assert_eq!(ok(&p, "http://good.com/"), "http://good.com/");
    denied(&p, "https://good.com/");
}

#[test]
fn attack_cases() {
    let p = policy(&["https://good.com", "https://*.good.com"]);
    for raw in [
        "//evil.com",
        "//evil.com/good.com",
        "///evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "\\/evil.com",
        "https:/\\evil.com",
        "https:\\\\evil.com",
        "https://good.com\\@evil.com",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "javascript://good.com/%0aalert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "https://evil.com",
        "https://good.com.evil.com",
        "https://good.com@evil.com",
        "https://evil.com@good.com",
        "https://user:pass@good.com/",
        "https://good.com%2f@evil.com",
        "https://good.com\n.evil.com",
        "https://good.com/\r\nSet-Cookie:x=1",
        "https://good.com/\0",
        " https://evil.com",
        "https://good.com/ ",
        "http://[::1]/",
        "file:///etc/passwd",
        "https:",
        "https://",
        "ftp://good.com/",
    ] {
        denied(&p, raw);
    }
    assert!(p
        .validate(&format!("https://good.com/{}", "a".repeat(10_000)))
        .is_err());
}

#[test]
fn idn_punycode_hosts_are_equal() {
    let unicode = policy(&["https://bücher.example/"]);
    assert_eq!(
        ok(&unicode, "https://xn--bcher-kva.example/x"),
        "https://xn--bcher-kva.example/x"
    );
    assert_eq!(
        ok(&unicode, "https://BÜCHER.example/x"),
        "https://xn--bcher-kva.example/x"
    );
    let puny = policy(&["https://xn--bcher-kva.example/"]);
    assert_eq!(
        ok(&puny, "https://bücher.example/x"),
        "https://xn--bcher-kva.example/x"
    );
    denied(&puny, "https://bucher.example/x");
    let wild = policy(&["https://*.bücher.example"]);
    assert_eq!(
        ok(&wild, "https://shop.xn--bcher-kva.example/"),
        "https://shop.xn--bcher-kva.example/"
    );
}

#[test]
fn custom_schemes_need_an_explicit_entry() {
    let p = policy(&["https://good.com", "myapp://callback"]);
    assert_eq!(
        ok(&p, "myapp://callback/done?x=1"),
        "myapp://callback/done?x=1"
    );
    denied(&p, "myapp://other/done");
    denied(&p, "otherapp://callback/");
    let p = policy(&["https://good.com"]);
    denied(&p, "myapp://callback/");
    // a denied scheme in the allow-list is ignored
    let p = policy(&["javascript://good.com"]);
    denied(&p, "javascript://good.com/%0aalert(1)");
}

#[test]
fn ip_hosts() {
    let p = ReturnToPolicy {
        allowed: vec!["http://127.0.0.1:4455/".to_owned()],
        default: "http://127.0.0.1:4455/".to_owned(),
        public_base: "http://127.0.0.1:4433/".to_owned(),
    };
    assert_eq!(ok(&p, "/welcome"), "http://127.0.0.1:4455/welcome");
    assert_eq!(
        ok(&p, "http://127.0.0.1:4433/self-service/login/browser"),
        "http://127.0.0.1:4433/self-service/login/browser"
    );
    denied(&p, "http://127.0.0.1:4433/sessions");
    denied(&p, "http://localhost:4455/");
}

#[test]
fn error_carries_kratos_reason_and_id() {
    let p = policy(&["https://good.com"]);
    let err = p.validate("https://evil.com/x").err();
    let Some(err) = err else {
        unreachable!("must be refused");
    };
    assert_eq!(err.id(), "self_service_flow_return_to_forbidden");
    assert_eq!(
        err.reason(),
        "Requested return_to URL \"https://evil.com/x\" is not allowed."
    );
    assert_eq!(err.to_string(), err.reason());
}

#[test]
fn never_panics_on_odd_input() {
    let p = policy(&["https://good.com", "", "   ", "::::", "https://", "*"]);
    for raw in [
        "%",
        "%%",
        "http://%",
        "https://[",
        "https://[::1",
        "?",
        "#",
        ":",
        "/",
        "\u{202e}",
        "https://good.com:99999/",
        "https://xn--/",
        "https://ab\u{feff}c.com/",
        "mailto:a@b",
        "a:b:c",
    ] {
        let _ = p.validate(raw);
    }
    assert_eq!(ok(&p, "/"), "https://good.com/");
}
