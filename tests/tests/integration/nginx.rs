//! A real nginx (the Debian package) in front of an app, asking our decisions API through `auth_request`: the
//! server block of `deploy/forward-auth/nginx.conf`, verbatim. Anonymous browsers are sent to sign in, signed-in users reach
//! the app with identity headers from the decision, and nothing a client sends can forge them, nor move the
//! decision to another method, host or path. The forwarding-header attacks also run against the server block shipped
//! before issue 14 (which did not clear the client's `X-Forwarded-*`): the decisions API itself must fail closed.

use serde_json::json;
use std::process::{Child, Command, Stdio};
use tests::hook_server::HookServer;
use tests::{Backend, TestEnv};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx as a child process with its own prefix directory; stopped on drop.
struct Nginx {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Nginx {
    fn start(dir: &std::path::Path, decisions: &str, upstream: &str) -> Self {
        Self::start_with(dir, "nginx", &shipped(), decisions, upstream)
    }

    /// nginx with `server` (a server block with the LISTEN, PORTCULLIS_API_URL and APP_URL placeholders), in
    /// `dir/name`.
    fn start_with(
        dir: &std::path::Path,
        name: &str,
        server: &str,
        decisions: &str,
        upstream: &str,
    ) -> Self {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx must be installed for this test (apt-get install nginx)");
        let port = free_port();
        let prefix = dir.join(name);
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let p = prefix.display();
        let decisions = decisions.trim_end_matches('/');
        // The server block with its placeholders filled in.
        let server = server
            .replace("LISTEN", &format!("127.0.0.1:{port}"))
            .replace("PORTCULLIS_API_URL", decisions)
            .replace("APP_URL", upstream.trim_end_matches('/'));
        let conf = format!(
            r#"
# Runs as whoever starts it ("user" only matters to a root master).
user root;
worker_processes 1;
daemon off;
pid {p}/nginx.pid;
error_log {p}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {p}/body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;
{server}
}}
"#
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let test = Command::new(binary)
            .arg("-t")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .output()
            .unwrap();
        assert!(
            test.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: prefix.join("logs/error.log"),
        };
        // Readiness: wait for the port to accept (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        nginx
    }
}

/// The server block users copy, from the deploy guide.
fn shipped() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/forward-auth/nginx.conf"),
    )
    .unwrap()
}

/// The server block shipped before issue 14: it sets X-Original-URL/-Method but passes the client's X-Forwarded-*
/// to the decisions API. Installations copied it; the API must not let those headers move the decision.
const LEGACY: &str = r#"
server {
  listen LISTEN;
  location / {
    auth_request /_portcullis;
    auth_request_set $user_id $upstream_http_x_user_id;
    auth_request_set $user_email $upstream_http_x_user_email;
    auth_request_set $login $upstream_http_location;
    proxy_set_header X-User-Id $user_id;
    proxy_set_header X-User-Email $user_email;
    error_page 401 = @login;
    proxy_pass APP_URL;
  }
  location = /_portcullis {
    internal;
    proxy_pass PORTCULLIS_API_URL/decisions;
    proxy_pass_request_body off;
    proxy_set_header Content-Length "";
    proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
    proxy_set_header X-Original-Method $request_method;
    proxy_set_header X-Forwarded-For $remote_addr;
  }
  location @login {
    if ($login) { return 302 $login; }
    return 401;
  }
}
"#;

impl Nginx {
    /// nginx's error log (shown when an assertion fails).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master takes its workers down too (SIGKILL would orphan them).
    fn drop(&mut self) {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !terminated {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn rules() -> String {
    json!([
        {
            "id": "app",
            "match": {"url": "<https?>://<[^/]+>/app/<.*>", "methods": ["GET", "POST"]},
            "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}],
            "errors": [
                {"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}
            ]
        },
        {
            "id": "admin",
            "match": {"url": "<https?>://<[^/]+>/admin/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "cookie_session"}],
            "authorizer": {"handler": "deny"},
            "mutators": [{"handler": "noop"}]
        }
    ])
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_uses_the_decisions_api() {
    let mut app = HookServer::start().await;
    let env = TestEnv::builder(Backend::Sqlite)
        .file("rules.json", &rules())
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    let nginx = Nginx::start(env.dir.path(), &env.api, &app.url);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", nginx.url);

    // Anonymous browser: nginx turns our 401 + Location into a redirect to the login page, with the way back.
    let res = http
        .get(url("/app/page?x=1"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "{}", nginx.log());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("/self-service/login/browser?return_to="),
        "{location}"
    );
    let back = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(back.ends_with("/app/page?x=1"), "{back}");

    // Anonymous API client: a plain 401.
    let res = http.get(url("/app/data")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(app.try_next().is_none(), "nothing reached the app");

    // Signed in (cookie): the app sees the identity from the decision, not the client's forgery.
    let identity = env
        .create_identity(json!({"schema_id": "default", "traits": {"email": "nginx@example.com"},
            "verifiable_addresses": [{"value": "nginx@example.com", "via": "email", "verified": true}]}))
        .await;
    let id = identity["id"].as_str().unwrap().to_owned();
    let token = env.login(&id).await;
    let res = http
        .get(url("/app/page"))
        .header("Cookie", env.cookie_for(&token))
        .header("X-User-Id", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = app.next().await;
    assert_eq!(seen.path, "/app/page");
    assert_eq!(seen.header("x-user-id"), Some(id.as_str()));
    assert_eq!(seen.header("x-user-email"), Some("nginx@example.com"));
    assert_eq!(seen.header("x-user-email-verified"), Some("true"));

    // A bearer token works the same; an anonymous forgery arrives empty-handed.
    let res = http
        .get(url("/app/api"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.next().await.header("x-user-id"), Some(id.as_str()));

    // The authorizer denies: nginx answers 403 and the app sees nothing.
    let res = http
        .get(url("/admin/panel"))
        .header("Cookie", env.cookie_for(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // No rule: the decision is 404, which auth_request turns into 500 (nginx's own rule), never a pass.
    let res = http.get(url("/elsewhere")).send().await.unwrap();
    assert_eq!(res.status(), 500);

    // Path tricks are resolved before matching: `/app/../admin` is the admin rule.
    let res = http
        .get(url("/app/%2e%2e/admin/panel"))
        .header("Cookie", env.cookie_for(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        app.try_next().is_none(),
        "no denied request reached the app"
    );
    drop(nginx);
}

fn attack_rules() -> String {
    json!([
        {
            "id": "app",
            "match": {"url": "<https?>://127.0.0.1:<[0-9]+>/app/<.*>", "methods": ["GET", "POST", "DELETE"]},
            "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        },
        {
            "id": "public",
            "match": {"url": "<https?>://127.0.0.1:<[0-9]+>/public/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        },
        {
            "id": "home",
            "match": {"url": "<https?>://127.0.0.1:<[0-9]+>/", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        },
        {
            "id": "other-host",
            "match": {"url": "<https?>://public.test/<.*>", "methods": ["GET"]},
            "authenticators": [{"handler": "anonymous", "config": {"subject": "guest"}}],
            "authorizer": {"handler": "allow"},
            "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]
        }
    ])
    .to_string()
}

/// Sends a raw request (no client library rewrites the target or the Host) and returns the status.
async fn raw_status(base: &str, method: &str, target: &str, headers: &[(&str, String)]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("no answer")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

/// Each way a client could describe another request to the decisions API through nginx: a header nginx does not
/// set for the subrequest, one it does set, the underscore spellings, and a `Host` that a URL parser would split.
/// Through the shipped server block every one is judged as the request nginx received (the same status as
/// without the forgery); through the legacy block at worst refused; never allowed, and the app never sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_client_forwarding_headers_cannot_move_the_decision() {
    let mut app = HookServer::start().await;
    let env = TestEnv::builder(Backend::Sqlite)
        .file("rules.json", &attack_rules())
        .set(r#"access_rules.repositories=["file://{dir}/rules.json"]"#)
        .start()
        .await;
    for (name, server) in [("shipped", shipped()), ("legacy", LEGACY.to_owned())] {
        let nginx = Nginx::start_with(env.dir.path(), name, &server, &env.api, &app.url);
        let authority = nginx.url.trim_start_matches("http://").to_owned();

        // Controls: the public rule grants GET to anyone (so a forgery that reached it would pass), the app rule
        // needs a session.
        assert_eq!(
            raw_status(&nginx.url, "GET", "/public/x", &[]).await,
            200,
            "{name}"
        );
        let seen = app.next().await;
        assert_eq!(seen.header("x-user-id"), Some("guest"));
        assert_eq!(
            raw_status(&nginx.url, "GET", "/app/data", &[]).await,
            401,
            "{name}"
        );
        // DELETE has no rule on /public: 404 from the API, which auth_request turns into 500.
        assert_eq!(
            raw_status(&nginx.url, "DELETE", "/public/x", &[]).await,
            500,
            "{name}"
        );

        type Attack<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);
        let attacks: Vec<Attack<'_>> = vec![
            (
                "GET",
                "/app/data",
                vec![("X-Forwarded-Uri", "/public/x".into())],
            ),
            (
                "GET",
                "/app/data",
                vec![("X-Forwarded-Host", "public.test".into())],
            ),
            (
                "GET",
                "/app/data",
                vec![
                    ("X-Forwarded-Host", "public.test".into()),
                    ("X-Forwarded-Uri", "/x".into()),
                    ("X-Forwarded-Proto", "https".into()),
                ],
            ),
            (
                "DELETE",
                "/public/x",
                vec![("X-Forwarded-Method", "GET".into())],
            ),
            (
                "GET",
                "/app/data",
                vec![("X-Original-URL", format!("http://{authority}/public/x"))],
            ),
            (
                "DELETE",
                "/public/x",
                vec![("X-Original-Method", "GET".into())],
            ),
            (
                "GET",
                "/app/data",
                vec![("X_Forwarded_Uri", "/public/x".into())],
            ),
            (
                "DELETE",
                "/public/x",
                vec![("X_Forwarded_Method", "GET".into())],
            ),
            (
                "GET",
                "/app/data",
                vec![("X_Original_URL", format!("http://{authority}/public/x"))],
            ),
            // nginx accepts `?` in Host: X-Original-URL becomes http://127.0.0.1:PORT?x/app/data, whose path a URL
            // parser reads as `/` (the public home rule).
            ("GET", "/app/data", vec![("Host", format!("{authority}?x"))]),
        ];
        for (method, target, headers) in attacks {
            let status = raw_status(&nginx.url, method, target, &headers).await;
            let honest = raw_status(&nginx.url, method, target, &[]).await;
            assert_ne!(
                status,
                200,
                "{name}: {method} {target} {headers:?}\n{}",
                nginx.log()
            );
            if name == "shipped" && headers[0].0 != "Host" {
                assert_eq!(status, honest, "{name}: {method} {target} {headers:?}");
            } else {
                assert!(
                    status == honest || status == 500,
                    "{name}: {method} {target} {headers:?}: {status}"
                );
            }
            assert!(
                app.try_next().is_none(),
                "{name}: {method} {target} {headers:?} reached the app"
            );
        }
        drop(nginx);
    }
}
