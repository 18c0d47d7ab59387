//! The real binary's logs in production format: JSON lines with request ids, statuses and latencies (and the rule
//! and decision for the edge proxy), and never a password, session token, cookie, CSRF token or one-time code,
//! even at debug level, through registration, login, the edge proxy, recovery, settings and logout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{read_head, sigterm, wait_exit, wait_ready, Ports};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// An upstream that answers 200 to everything.
async fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_head(&mut s).await.is_none() {
                    return;
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    port
}

/// The real binary in production mode (JSON logs to a file), with one rule `app` (`url`, GET, `authenticator`,
/// a `header` mutator) in front of an upstream that answers 200, browser and native flows, recovery, and the
/// registration `session` hook. The temp dir lives as long as the server.
struct Server {
    child: std::process::Child,
    log_path: std::path::PathBuf,
    ports: Ports,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(url: &str, authenticator: &str, log_level: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = upstream().await;
        let rules = dir.path().join("rules.json");
        std::fs::write(
            &rules,
            format!(
                r#"[{{"id": "app", "match": {{"url": {url}, "methods": ["GET"]}},
                     "upstream": {{"url": "http://127.0.0.1:{app}"}},
                     "authenticators": [{{"handler": "{authenticator}"}}], "authorizer": {{"handler": "allow"}},
                     "mutators": [{{"handler": "header", "config": {{"headers": {{"X-User": "{{{{ print .Subject }}}}"}}}}}}]}}]"#
            ),
        )
        .unwrap();
        let ports = Ports::new();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "dsn: sqlite://{}/db.sqlite?mode=rwc\n{}\n\
                 secrets: {{default: [a-long-enough-secret-for-the-log-test]}}\n\
                 hashers: {{algorithm: bcrypt, bcrypt: {{cost: 12}}}}\n\
                 log: {{level: {log_level}, format: json}}\n\
                 cookies: {{secure: false}}\n\
                 access_rules: {{repositories: [\"file://{}\"]}}\n\
                 selfservice:\n  default_browser_return_url: http://127.0.0.1:{}/app\n  \
                 flows: {{recovery: {{enabled: true}}, registration: {{after: {{password: {{hooks: [{{hook: session}}]}}}}}}}}\n  \
                 methods: {{password: {{config: {{haveibeenpwned_enabled: false}}}}}}\n",
                dir.path().display(),
                ports.serve_yaml(),
                rules.display(),
                ports.proxy,
            ),
        )
        .unwrap();
        let log_path = dir.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            log_path,
            ports,
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_logs_are_json_and_keep_secrets_out() {
    let server = Server::start(r#""http://<[^/]+>/<.*>""#, "bearer_token", "debug").await;
    let (mut child, log_path) = (server.child, server.log_path);
    let (public, admin, proxy) = (server.ports.public, server.ports.admin, server.ports.proxy);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let p = format!("http://127.0.0.1:{public}");
    let a = format!("http://127.0.0.1:{admin}");
    wait_ready(&mut child, admin).await;

    let password = "Correct-Horse-Battery-9481";
    let new_password = "Another-Passphrase-7730-x";
    let post = |url: String, body: Value, token: Option<String>| {
        let http = http.clone();
        async move {
            let mut req = http.post(url).json(&body);
            if let Some(t) = token {
                req = req.header("x-session-token", t);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // Registration and login through the native flows.
    let flow = get(format!("{p}/self-service/registration/api")).await;
    let (status, reg) = post(
        flow["ui"]["action"].as_str().unwrap().to_owned(),
        json!({"method": "password", "traits": {"email": "ann@example.com"}, "password": password}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    let flow = get(format!("{p}/self-service/login/api")).await;
    let (status, login) = post(
        flow["ui"]["action"].as_str().unwrap().to_owned(),
        json!({"method": "password", "identifier": "ann@example.com", "password": password}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["session_token"].as_str().unwrap().to_owned();

    // Through the edge proxy with the token.
    let res = http
        .get(format!("http://127.0.0.1:{proxy}/app?x=1"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{p}/sessions/whoami"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Settings: a new password.
    let res = http
        .get(format!("{p}/self-service/settings/api"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    let settings: Value = res.json().await.unwrap();
    let (status, body) = post(
        settings["ui"]["action"].as_str().unwrap().to_owned(),
        json!({"method": "password", "password": new_password}),
        Some(token.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Recovery with an administrator's code, submitted in a query string and a body.
    let identity_id = reg["identity"]["id"].as_str().unwrap();
    let (status, rec) = post(
        format!("{a}/admin/recovery/code"),
        json!({"identity_id": identity_id, "flow_type": "api"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    let code = rec["recovery_code"].as_str().unwrap().to_owned();
    let flow_id = rec["recovery_link"]
        .as_str()
        .unwrap()
        .split("flow=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (status, _) = post(
        format!("{p}/self-service/recovery?flow={flow_id}&code={code}"),
        json!({"method": "code", "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 422);

    // Logout.
    let res = http
        .delete(format!("{p}/self-service/logout/api"))
        .json(&json!({"session_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    // Stop, then read what was logged.
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(30)).await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{logs}");

    for secret in [password, new_password, token.as_str(), code.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the log: {secret}");
    }
    assert!(!logs.contains("ory_st_"), "no session token at all");
    assert!(!logs.contains("x=1"), "query strings stay out of the log");

    let field = |l: &Value, k: &str| l["fields"][k].clone();
    // The API listeners: one line per request with id, listener, path, status and latency.
    let login_line = lines
        .iter()
        .find(|l| field(l, "path") == "/self-service/login" && field(l, "status") == 200)
        .unwrap_or_else(|| panic!("no request line for the login: {logs}"));
    assert_eq!(field(login_line, "listener"), "public");
    assert!(field(login_line, "request_id")
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(field(login_line, "latency_ms").is_number());
    assert!(lines
        .iter()
        .any(|l| field(l, "path") == "/self-service/recovery" && field(l, "status") == 422));
    // The edge proxy: request id, rule and decision.
    let edge = lines
        .iter()
        .find(|l| field(l, "message") == "gateway request")
        .unwrap_or_else(|| panic!("no gateway line: {logs}"));
    assert!(field(edge, "request_id")
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(field(edge, "rule"), "app");
    assert_eq!(field(edge, "decision"), "allow");
    assert_eq!(field(edge, "status"), 200);
    assert!(field(edge, "latency_ms").is_number());
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
}

/// `portcullis_access_rule_reloads_total` from the admin metrics.
async fn reloads(http: &reqwest::Client, admin: u16) -> u64 {
    let text = http
        .get(format!("http://127.0.0.1:{admin}/admin/metrics/prometheus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("portcullis_access_rule_reloads_total "))
        .unwrap_or_else(|| panic!("no reload counter in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"id": "closed", "match": {"url": "http://<[^/]+>/<.*>", "methods": ["GET"]},
             "authenticators": [{"handler": "anonymous"}], "authorizer": {"handler": "deny"},
             "mutators": [{"handler": "noop"}]}]"#,
    )
    .unwrap();
    let ports = Ports::new();
    let (admin, api) = (ports.admin, ports.api);
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "{}\nlog: {{level: warn}}\naccess_rules: {{repositories: [\"file://{}\"]}}\n",
            ports.serve_yaml(),
            rules.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--dev", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    wait_ready(&mut child, admin).await;
    let before = reloads(&http, admin).await;
    // Nothing changed on disk, so only the signal can cause a reload.
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads(&http, admin).await == before {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the rules");
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP must not stop the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = http
        .get(format!("http://127.0.0.1:{api}/decisions/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the rules still apply after the reload");
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(30)).await;
}

/// The `Set-Cookie` values of a response, as `name=value` pairs.
fn set_cookies(res: &reqwest::Response) -> Vec<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A browser registration and login through the edge proxy at `log.level: trace` (and Pingora's targets asked
/// for at trace too): no password, session cookie, CSRF token or session token reaches the log, because
/// Pingora, which prints whole heads at debug level, is capped at info.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_browser_login_through_the_edge_keep_secrets_out() {
    let server = Server::start(
        r#""http://<[^/]+>/app<.*>""#,
        "cookie_session",
        "'trace,pingora_core=trace,pingora_proxy=trace'",
    )
    .await;
    let (mut child, log_path) = (server.child, server.log_path);
    let (admin, proxy) = (server.ports.admin, server.ports.proxy);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    wait_ready(&mut child, admin).await;
    let edge = format!("http://127.0.0.1:{proxy}");
    let password = "Trace-Level-Passphrase-5521";
    let mut secrets: Vec<String> = vec![password.to_owned()];

    // One browser flow through the edge: start it, then submit it with the CSRF cookie and token.
    let run = |kind: &'static str, body: Value| {
        let (http, edge) = (http.clone(), edge.clone());
        async move {
            let res = http
                .get(format!("{edge}/self-service/{kind}/browser"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{kind} flow");
            let csrf_cookies = set_cookies(&res);
            let flow: Value = res.json().await.unwrap();
            let csrf = flow["ui"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["attributes"]["name"] == "csrf_token")
                .unwrap()["attributes"]["value"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut body = body;
            body["csrf_token"] = Value::String(csrf.clone());
            let cookie = csrf_cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let action = url::Url::parse(flow["ui"]["action"].as_str().unwrap()).unwrap();
            let res = http
                .post(format!(
                    "{edge}{}?{}",
                    action.path(),
                    action.query().unwrap_or_default()
                ))
                .header("accept", "application/json")
                .header("cookie", cookie)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{kind} submit");
            let mut seen: Vec<(String, String)> = csrf_cookies;
            seen.extend(set_cookies(&res));
            seen.push(("csrf_token".into(), csrf));
            seen
        }
    };
    let registered = run(
        "registration",
        json!({"method": "password", "traits": {"email": "trace@example.com"}, "password": password}),
    )
    .await;
    let logged_in = run(
        "login",
        json!({"method": "password", "identifier": "trace@example.com", "password": password}),
    )
    .await;
    let session = logged_in
        .iter()
        .find(|(k, _)| k == "ory_kratos_session")
        .map(|(_, v)| v.clone())
        .expect("the login sets a session cookie");
    // The session cookie opens the app through the edge.
    let res = http
        .get(format!("{edge}/app"))
        .header("cookie", format!("ory_kratos_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    secrets.extend(
        registered
            .into_iter()
            .chain(logged_in)
            .map(|(_, v)| v)
            .filter(|v| v.len() >= 16),
    );

    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(30)).await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.lines().count() > 50,
        "trace level logs a lot: {}",
        logs.lines().count()
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the log: {secret}"
        );
    }
    assert!(!logs.contains("ory_st_"), "no session token at all");
    assert!(
        !logs.contains("ory_kratos_session="),
        "no session cookie at all"
    );
}

/// Issue 15: a method switched on in `selfservice.methods` that Portcullis does not implement starts with one
/// warning per method, naming it, rather than silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_methods_are_warned_about_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let admin = ports.admin;
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "dsn: sqlite://{}/db.sqlite?mode=rwc\n{}\n\
             secrets: {{default: [a-long-enough-secret-for-the-log-test]}}\n\
             log: {{level: info, format: json}}\n\
             selfservice:\n  methods:\n    totp: {{enabled: true}}\n    passkey: {{enabled: true}}\n    \
             oidc: {{enabled: true, config: {{providers: []}}}}\n    webauthn: {{enabled: false}}\n",
            dir.path().display(),
            ports.serve_yaml(),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_ready(&mut child, admin).await;
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(30)).await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let warnings: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "WARN" && l["fields"]["method"].is_string())
        .collect();
    let mut methods: Vec<&str> = warnings
        .iter()
        .map(|l| l["fields"]["method"].as_str().unwrap())
        .collect();
    methods.sort_unstable();
    assert_eq!(methods, ["oidc", "passkey", "totp"], "{logs}");
    for w in &warnings {
        let method = w["fields"]["method"].as_str().unwrap();
        let message = w["fields"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("selfservice.methods.{method}.enabled"))
                && message.contains("does not implement"),
            "{message}"
        );
    }
}
