#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::errors::{handle, ErrorHandler};
use super::*;
use crate::cidr::Cidr;
use serde_json::json;
use std::sync::Mutex;

#[derive(Default)]
struct FakeHttp {
    seen: Mutex<Vec<OutboundRequest>>,
    reply: Mutex<Option<InboundResponse>>,
}

impl FakeHttp {
    fn answer(&self, status: u16, body: Value, headers: &[(&str, &str)]) {
        *self.reply.lock().unwrap() = Some(InboundResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_string().into_bytes(),
        });
    }
    fn last(&self) -> OutboundRequest {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

#[async_trait]
impl HttpClient for FakeHttp {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, String> {
        self.seen.lock().unwrap().push(req);
        self.reply
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| "connection refused".to_owned())
    }
}

struct FakeSessions;

#[async_trait]
impl SessionLookup for FakeSessions {
    fn cookie_name(&self) -> &str {
        "ory_kratos_session"
    }
    fn open_cookie(&self, value: &str) -> Option<String> {
        value.strip_prefix("sealed:").map(str::to_owned)
    }
    async fn lookup(&self, token: &str) -> Result<Option<SessionView>, String> {
        // `ory_st_verified` is the same identity once its address is verified.
        Ok(
            matches!(token, "ory_st_good" | "ory_st_verified").then(|| SessionView {
                subject: "id-1".into(),
                extra: Arc::new(json!({"id": "s-1", "identity": {"id": "id-1", "traits": {"email": "ada@example.com", "name": {"first": "Ada", "last": "Lovelace"}}}})),
                email_verified: token == "ory_st_verified",
            }),
        )
    }
}

fn services(http: &Arc<FakeHttp>) -> Services {
    Services {
        http: http.clone(),
        sessions: Some(Arc::new(FakeSessions)),
        clock: Arc::new(identity::SystemClock),
    }
}

fn all_on() -> PipelineConfig {
    let on = |names: &[&str]| {
        names
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    HandlerSettings {
                        enabled: true,
                        config: None,
                    },
                )
            })
            .collect()
    };
    PipelineConfig {
        authenticators: on(&[
            "noop",
            "anonymous",
            "unauthorized",
            "cookie_session",
            "bearer_token",
        ]),
        authorizers: on(&["allow", "deny", "remote_json"]),
        mutators: on(&["noop", "header", "cookie"]),
        error_handlers: on(&["json", "redirect", "www_authenticate"]),
        error_fallback: vec!["json".into()],
    }
}

fn rule(v: Value) -> crate::Rule {
    let mut base = json!({
        "id": "r1",
        "match": {"url": "http://app.test/<.*>", "methods": ["GET"]},
        "authenticators": [{"handler": "cookie_session"}],
        "authorizer": {"handler": "allow"},
        "mutators": [{"handler": "noop"}],
    });
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn request(headers: &[(&str, &str)]) -> RequestInfo {
    RequestInfo {
        method: "GET".into(),
        scheme: "http".into(),
        host: "app.test".into(),
        path: "/orders/7".into(),
        query: Some("x=1".into()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect(),
        client_ip: "10.1.2.3".parse().unwrap(),
        forwarded_for: None,
    }
}

async fn run(
    r: &crate::Rule,
    config: &PipelineConfig,
    http: &Arc<FakeHttp>,
    req: &RequestInfo,
) -> Result<Granted, PipelineError> {
    Pipeline::build(r, config, &services(http))
        .unwrap()
        .run(req, vec!["orders/7".into()])
        .await
}

#[tokio::test]
async fn native_cookie_session_and_header_mutator() {
    let http = Arc::new(FakeHttp::default());
    let r = rule(
        json!({"mutators": [{"handler": "header", "config": {"headers": {
            "X-User-Id": "{{ print .Subject }}",
            "X-User-Email": "{{ print .Extra.identity.traits.email }}",
            "X-Order": "{{ printIndex .MatchContext.RegexpCaptureGroups 0 }}"
        }}}]}),
    );
    let ok = run(
        &r,
        &all_on(),
        &http,
        &request(&[("Cookie", "a=b; ory_kratos_session=sealed:ory_st_good")]),
    )
    .await
    .unwrap();
    assert_eq!(ok.session.subject, "id-1");
    let h: BTreeMap<_, _> = ok.session.header.into_iter().collect();
    assert_eq!(h["X-User-Id"], "id-1");
    assert_eq!(h["X-User-Email"], "ada@example.com");
    assert_eq!(h["X-Order"], "orders/7");
    // A bad session is a 401; no session cookie at all means the authenticator is not responsible.
    let err = run(
        &r,
        &all_on(),
        &http,
        &request(&[("Cookie", "ory_kratos_session=sealed:ory_st_bad")]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let r2 = rule(
        json!({"authenticators": [{"handler": "cookie_session"}, {"handler": "anonymous", "config": {"subject": "guest"}}]}),
    );
    let ok = run(&r2, &all_on(), &http, &request(&[("Cookie", "tracking=1")]))
        .await
        .unwrap();
    assert_eq!(ok.session.subject, "guest");
    assert!(
        http.seen.lock().unwrap().is_empty(),
        "native sessions need no network"
    );
}

#[tokio::test]
async fn bearer_tokens_and_anonymous() {
    let http = Arc::new(FakeHttp::default());
    let r =
        rule(json!({"authenticators": [{"handler": "bearer_token"}, {"handler": "anonymous"}]}));
    let ok = run(
        &r,
        &all_on(),
        &http,
        &request(&[("Authorization", "Bearer ory_st_good")]),
    )
    .await
    .unwrap();
    assert_eq!(ok.session.subject, "id-1");
    let ok = run(&r, &all_on(), &http, &request(&[])).await.unwrap();
    assert_eq!(ok.session.subject, "anonymous");
    // Basic credentials: bearer is not responsible, and anonymous refuses requests with Authorization.
    let err = run(
        &r,
        &all_on(),
        &http,
        &request(&[("Authorization", "Basic eDp5")]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let from_query = rule(
        json!({"authenticators": [{"handler": "bearer_token", "config": {"token_from": {"query_parameter": "x"}}}]}),
    );
    let mut req = request(&[]);
    req.query = Some("x=ory_st_good".into());
    assert!(run(&from_query, &all_on(), &http, &req).await.is_ok());
}

#[tokio::test]
async fn remote_session_check_as_oathkeeper_does() {
    let http = Arc::new(FakeHttp::default());
    let r = rule(
        json!({"authenticators": [{"handler": "cookie_session", "config": {
            "check_session_url": "http://kratos:4433/sessions/whoami",
            "preserve_path": true,
            "subject_from": "identity.id",
            "extra_from": "@this",
            "forward_http_headers": ["X-Trace"],
        }}]}),
    );
    http.answer(200, json!({"identity": {"id": "remote-1"}}), &[]);
    let ok = run(
        &r,
        &all_on(),
        &http,
        &request(&[("Cookie", "s=1"), ("X-Trace", "t")]),
    )
    .await
    .unwrap();
    assert_eq!(ok.session.subject, "remote-1");
    assert_eq!(ok.session.extra["identity"]["id"], "remote-1");
    let sent = http.last();
    assert_eq!(
        sent.url,
        "http://kratos:4433/sessions/whoami?x=1".replace("?x=1", "")
    );
    assert!(sent.headers.contains(&("Cookie".into(), "s=1".into())));
    assert!(sent.headers.contains(&("X-Trace".into(), "t".into())));
    // Without preserve_path the request path replaces the check URL's (Oathkeeper's default).
    let plain = rule(
        json!({"authenticators": [{"handler": "cookie_session", "config": {"check_session_url": "http://kratos/sessions/whoami"}}]}),
    );
    http.answer(200, json!({"subject": "s", "extra": {"a": 1}}), &[]);
    let ok = run(&plain, &all_on(), &http, &request(&[("Cookie", "s=1")]))
        .await
        .unwrap();
    assert_eq!(http.last().url, "http://kratos/orders/7");
    assert_eq!(*ok.session.extra, json!({"a": 1}));
    http.answer(429, json!({}), &[("retry-after", "7")]);
    let err = run(&plain, &all_on(), &http, &request(&[("Cookie", "s=1")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooManyRequests);
    assert_eq!(
        err.headers,
        vec![("Retry-After".to_owned(), "7".to_owned())]
    );
    http.answer(401, json!({}), &[]);
    let err = run(&plain, &all_on(), &http, &request(&[("Cookie", "s=1")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
}

#[tokio::test]
async fn authorizers_and_remote_json() {
    let http = Arc::new(FakeHttp::default());
    let deny =
        rule(json!({"authenticators": [{"handler": "noop"}], "authorizer": {"handler": "deny"}}));
    assert_eq!(
        run(&deny, &all_on(), &http, &request(&[]))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
    let remote = rule(
        json!({"authenticators": [{"handler": "anonymous"}], "authorizer": {"handler": "remote_json", "config": {
            "remote": "http://authz/check",
            "payload": "{\"subject\": \"{{ print .Subject }}\", \"resource\": \"{{ printIndex .MatchContext.RegexpCaptureGroups 0 }}\"}",
            "forward_response_headers_to_upstream": ["X-Permissions"],
        }}}),
    );
    http.answer(200, json!({}), &[("x-permissions", "read")]);
    let ok = run(&remote, &all_on(), &http, &request(&[])).await.unwrap();
    assert_eq!(
        ok.session.header,
        vec![("X-Permissions".to_owned(), "read".to_owned())]
    );
    let sent: Value = serde_json::from_slice(http.last().body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"subject": "anonymous", "resource": "orders/7"})
    );
    http.answer(403, json!({}), &[]);
    assert_eq!(
        run(&remote, &all_on(), &http, &request(&[]))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
    *http.reply.lock().unwrap() = None;
    assert_eq!(
        run(&remote, &all_on(), &http, &request(&[]))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::BadGateway
    );
    let p = Pipeline::build(&remote, &all_on(), &services(&http)).unwrap();
    assert!(p.stripped_headers().contains(&"x-permissions".to_owned()));
}

#[tokio::test]
async fn disabled_handlers_fail_and_configs_merge() {
    let http = Arc::new(FakeHttp::default());
    let mut config = all_on();
    config.authorizers.get_mut("allow").unwrap().enabled = false;
    let r = rule(json!({"authenticators": [{"handler": "noop"}]}));
    assert_eq!(
        run(&r, &config, &http, &request(&[]))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InternalServerError
    );
    let mut config = all_on();
    config.mutators.get_mut("header").unwrap().config =
        Some(json!({"headers": {"X-Global": "g", "X-Both": "global"}}));
    let r = rule(
        json!({"authenticators": [{"handler": "noop"}], "mutators": [{"handler": "header", "config": {"headers": {"X-Both": "rule"}}}]}),
    );
    let ok = run(&r, &config, &http, &request(&[])).await.unwrap();
    let h: BTreeMap<_, _> = ok.session.header.into_iter().collect();
    assert_eq!(h["X-Global"], "g");
    assert_eq!(h["X-Both"], "rule");
    assert!(Pipeline::build(
        &rule(json!({"authenticators": [{"handler": "magic"}]})),
        &all_on(),
        &services(&http)
    )
    .is_err());
    assert!(Pipeline::build(&rule(json!({"mutators": []})), &all_on(), &services(&http)).is_err());
}

#[tokio::test]
async fn header_injection_through_traits_is_refused() {
    let http = Arc::new(FakeHttp::default());
    let r = rule(
        json!({"authenticators": [{"handler": "cookie_session", "config": {"check_session_url": "http://k/s", "preserve_path": true}}],
        "mutators": [{"handler": "header", "config": {"headers": {"X-User-Name": "{{ print .Extra.name }}"}}}]}),
    );
    http.answer(
        200,
        json!({"subject": "s", "extra": {"name": "Eve\r\nX-Admin: true"}}),
        &[],
    );
    let err = run(&r, &all_on(), &http, &request(&[("Cookie", "s=1")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalServerError);
}

#[tokio::test]
async fn presets_and_cookie_mutator() {
    let http = Arc::new(FakeHttp::default());
    for (preset, names) in [
        (
            "oauth2_proxy",
            vec![
                "X-Auth-Request-User",
                "X-Auth-Request-Email",
                "X-Forwarded-User",
                "X-Forwarded-Email",
                "X-User-Email-Verified",
            ],
        ),
        (
            "authelia",
            vec![
                "Remote-User",
                "Remote-Email",
                "Remote-Name",
                "X-User-Email-Verified",
            ],
        ),
    ] {
        let r = rule(json!({"mutators": [{"handler": "header", "config": {"preset": preset}}]}));
        let ok = run(
            &r,
            &all_on(),
            &http,
            &request(&[("Cookie", "ory_kratos_session=sealed:ory_st_verified")]),
        )
        .await
        .unwrap();
        let h: BTreeMap<_, _> = ok.session.header.into_iter().collect();
        for n in names {
            assert!(h.contains_key(n), "{preset}: {n} in {h:?}");
        }
        if preset == "authelia" {
            assert_eq!(h["Remote-Name"], "Ada Lovelace");
            assert_eq!(h["Remote-Email"], "ada@example.com");
        }
    }
    let r = rule(
        json!({"mutators": [{"handler": "cookie", "config": {"cookies": {"user": "{{ print .Subject }}"}}}]}),
    );
    let ok = run(
        &r,
        &all_on(),
        &http,
        &request(&[(
            "Cookie",
            "user=forged; ory_kratos_session=sealed:ory_st_good",
        )]),
    )
    .await
    .unwrap();
    let cookie = &ok
        .session
        .header
        .iter()
        .find(|(k, _)| k == "Cookie")
        .unwrap()
        .1;
    assert_eq!(cookie, "ory_kratos_session=sealed:ory_st_good; user=id-1");
}

fn handler(name: &str, config: Value) -> ErrorHandler {
    ErrorHandler::build(name, Some(&config), &all_on()).unwrap()
}

#[test]
fn error_handlers_follow_when() {
    let html = request(&[("Accept", "text/html,application/xhtml+xml")]);
    let api = request(&[("Accept", "application/json")]);
    let unauthorized = PipelineError::unauthorized("x");
    let rule_handlers = vec![
        handler(
            "redirect",
            json!({"to": "http://login.test/", "return_to_query_param": "return_to",
            "when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/*"]}}}]}),
        ),
        handler(
            "www_authenticate",
            json!({"realm": "api", "when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["application/json"]}}}]}),
        ),
    ];
    let fallback = vec![handler("json", json!({}))];
    let r = handle(&unauthorized, &html, &rule_handlers, &fallback);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.headers[0].1,
        "http://login.test/?return_to=http%3A%2F%2Fapp.test%2Forders%2F7%3Fx%3D1"
    );
    let r = handle(&unauthorized, &api, &rule_handlers, &fallback);
    assert_eq!(r.status, 401);
    assert!(r
        .headers
        .contains(&("WWW-Authenticate".into(), "Basic realm=api".into())));
    let r = handle(
        &PipelineError::forbidden("no"),
        &html,
        &rule_handlers,
        &fallback,
    );
    assert_eq!(r.status, 403, "not unauthorized: the fallback json handler");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert!(body["error"].get("reason").is_none(), "not verbose");
    // Two matching handlers are a configuration error: 500.
    let both = vec![
        handler("json", json!({})),
        handler("www_authenticate", json!({})),
    ];
    assert_eq!(handle(&unauthorized, &api, &both, &fallback).status, 500);
    // remote_ip conditions.
    let by_ip = vec![handler(
        "redirect",
        json!({"to": "http://in/", "when": [{"request": {"remote_ip": {"match": ["10.0.0.0/8"]}}}]}),
    )];
    assert_eq!(handle(&unauthorized, &api, &by_ip, &fallback).status, 302);
    let mut outside = api.clone();
    outside.client_ip = "192.0.2.1".parse().unwrap();
    assert_eq!(
        handle(&unauthorized, &outside, &by_ip, &fallback).status,
        401
    );
}

#[test]
fn cidrs() {
    let c = "10.0.0.0/8".parse::<Cidr>().unwrap();
    assert!(c.contains("10.200.1.1".parse().unwrap()));
    assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
    assert!(!c.contains("11.0.0.1".parse().unwrap()));
    let v6 = "2001:db8::/32".parse::<Cidr>().unwrap();
    assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    assert!("nope".parse::<Cidr>().is_err());
    assert!("0.0.0.0/0"
        .parse::<Cidr>()
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
}

#[test]
fn merge_is_deep() {
    let merged = merge(
        &json!({"a": {"b": 1, "c": 2}, "d": 1}),
        &json!({"a": {"c": 3}, "e": 4}),
    );
    assert_eq!(merged, json!({"a": {"b": 1, "c": 3}, "d": 1, "e": 4}));
}

/// The headers a rule's mutators set for a request with the session cookie of `token`.
async fn headers_for(
    r: &crate::Rule,
    config: &PipelineConfig,
    token: &str,
) -> BTreeMap<String, String> {
    let http = Arc::new(FakeHttp::default());
    let cookie = format!("ory_kratos_session=sealed:{token}");
    run(r, config, &http, &request(&[("Cookie", &cookie)]))
        .await
        .unwrap()
        .session
        .header
        .into_iter()
        .collect()
}

#[tokio::test]
async fn presets_withhold_an_unverified_email_and_say_so() {
    let preset = |p: &str, extra: Value| {
        let mut config = json!({"preset": p});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        rule(json!({"mutators": [{"handler": "header", "config": config}]}))
    };
    let email_headers = [
        ("portcullis", "X-User-Email"),
        ("oauth2_proxy", "X-Auth-Request-Email"),
        ("oauth2_proxy", "X-Forwarded-Email"),
        ("authelia", "Remote-Email"),
    ];
    for (p, email) in email_headers {
        // On by default: unverified, the e-mail header is empty and the verified header says false.
        let r = preset(p, json!({}));
        let h = headers_for(&r, &all_on(), "ory_st_good").await;
        assert_eq!(h[email], "", "{p}: {h:?}");
        assert_eq!(h["X-User-Email-Verified"], "false", "{p}");
        // The client's copy is still stripped.
        let built =
            Pipeline::build(&r, &all_on(), &services(&Arc::new(FakeHttp::default()))).unwrap();
        assert!(
            built
                .stripped_headers()
                .contains(&email.to_ascii_lowercase()),
            "{p}"
        );
        assert!(built
            .stripped_headers()
            .contains(&"x-user-email-verified".to_owned()));
        // Verified: sent.
        let h = headers_for(&r, &all_on(), "ory_st_verified").await;
        assert_eq!(h[email], "ada@example.com", "{p}");
        assert_eq!(h["X-User-Email-Verified"], "true", "{p}");
        // Turned off in the rule: sent, and marked unverified.
        let r = preset(p, json!({"require_verified_email": false}));
        let h = headers_for(&r, &all_on(), "ory_st_good").await;
        assert_eq!(h[email], "ada@example.com", "{p}");
        assert_eq!(h["X-User-Email-Verified"], "false", "{p}");
    }
    let h = headers_for(&preset("portcullis", json!({})), &all_on(), "ory_st_good").await;
    assert_eq!(h["X-User-Id"], "id-1");

    // Turned off globally (`mutators.header.config`); a rule can turn it on again.
    let mut global_off = all_on();
    global_off.mutators.insert(
        "header".into(),
        HandlerSettings {
            enabled: true,
            config: Some(json!({"require_verified_email": false})),
        },
    );
    let h = headers_for(&preset("portcullis", json!({})), &global_off, "ory_st_good").await;
    assert_eq!(h["X-User-Email"], "ada@example.com");
    let r = preset("portcullis", json!({"require_verified_email": true}));
    let h = headers_for(&r, &global_off, "ory_st_good").await;
    assert_eq!(h["X-User-Email"], "", "{h:?}");
    // A global setting is fine for rules without a preset too.
    let custom = rule(
        json!({"mutators": [{"handler": "header", "config": {"headers": {"X-Mail": "{{ if .EmailVerified }}{{ print .Extra.identity.traits.email }}{{ end }}"}}}]}),
    );
    assert_eq!(
        headers_for(&custom, &global_off, "ory_st_good").await["X-Mail"],
        ""
    );
    assert_eq!(
        headers_for(&custom, &global_off, "ory_st_verified").await["X-Mail"],
        "ada@example.com"
    );

    // A withheld e-mail header also replaces a value an earlier mutator gave it.
    let r = rule(json!({"mutators": [
        {"handler": "header", "config": {"headers": {"X-User-Email": "earlier"}}},
        {"handler": "header", "config": {"preset": "portcullis"}},
    ]}));
    let ok = run(
        &r,
        &all_on(),
        &Arc::new(FakeHttp::default()),
        &request(&[("Cookie", "ory_kratos_session=sealed:ory_st_good")]),
    )
    .await
    .unwrap();
    let emails: Vec<_> = ok
        .session
        .header
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-user-email"))
        .collect();
    assert_eq!(emails, [&("X-User-Email".to_owned(), String::new())]);
}

#[test]
fn require_verified_email_is_validated() {
    let services = services(&Arc::new(FakeHttp::default()));
    let build = |config: Value| {
        Pipeline::build(
            &rule(json!({"mutators": [{"handler": "header", "config": config}]})),
            &all_on(),
            &services,
        )
        .map(|_| ())
    };
    assert!(build(json!({"preset": "portcullis", "require_verified_email": false})).is_ok());
    let e = build(json!({"preset": "portcullis", "require_verified_email": "no"})).unwrap_err();
    assert!(
        e.contains("require_verified_email") || e.contains("invalid type"),
        "{e}"
    );
    let e = build(json!({"headers": {"X-Mail": "x"}, "require_verified_email": true})).unwrap_err();
    assert!(e.contains("has no preset"), "{e}");
    let e = build(json!({"preset": "portcullis", "require_verified_mail": true})).unwrap_err();
    assert!(e.contains("unknown field"), "{e}");
}

#[tokio::test]
async fn remote_sessions_read_email_verified_from_the_whole_whoami() {
    let http = Arc::new(FakeHttp::default());
    let whoami = |verified: bool| {
        json!({"identity": {"id": "remote-1",
            "traits": {"email": "Ann@Example.com", "email_verified": true},
            "verifiable_addresses": [{"value": "ann@example.com", "via": "email", "verified": verified}]}})
    };
    for (extra_from, email_header) in [("@this", true), ("identity.traits", false)] {
        let r = rule(json!({
            "authenticators": [{"handler": "cookie_session", "config": {
                "check_session_url": "http://kratos/sessions/whoami",
                "subject_from": "identity.id",
                "extra_from": extra_from,
            }}],
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}],
        }));
        for verified in [false, true] {
            http.answer(200, whoami(verified), &[]);
            let ok = run(&r, &all_on(), &http, &request(&[("Cookie", "s=1")]))
                .await
                .unwrap();
            assert_eq!(ok.session.email_verified, verified, "{extra_from}");
            let h: BTreeMap<_, _> = ok.session.header.into_iter().collect();
            // A trait named `email_verified` (users may edit traits) claims nothing.
            assert_eq!(
                h["X-User-Email-Verified"],
                verified.to_string(),
                "{extra_from}"
            );
            match (verified, email_header) {
                (true, true) => assert_eq!(h["X-User-Email"], "Ann@Example.com"),
                // The preset reads `.Extra.identity.traits.email`, which this `extra_from` hides; unverified, it
                // is empty anyway.
                (true, false) | (false, _) => assert_eq!(h["X-User-Email"], "", "{extra_from}"),
            }
        }
    }
    // Not a Kratos session: unverified.
    let r = rule(
        json!({"authenticators": [{"handler": "cookie_session", "config": {"check_session_url": "http://kratos/sessions/whoami"}}]}),
    );
    http.answer(
        200,
        json!({"subject": "s", "extra": {"email_verified": true}}),
        &[],
    );
    let ok = run(&r, &all_on(), &http, &request(&[("Cookie", "s=1")]))
        .await
        .unwrap();
    assert!(!ok.session.email_verified);
}
