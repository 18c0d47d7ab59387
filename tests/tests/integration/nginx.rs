//! A real nginx (the Debian package) in front of an app, asking our decisions API through `auth_request`: the
//! server block of `deploy/forward-auth/nginx.conf`, verbatim. Anonymous browsers are sent to sign in, signed-in users reach
//! the app with identity headers from the decision, and nothing a client sends can forge them.

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
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx must be installed for this test (apt-get install nginx)");
        let port = free_port();
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let p = prefix.display();
        let decisions = decisions.trim_end_matches('/');
        // The server block users copy, from the deploy guide, with its placeholders filled in.
        let server = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/forward-auth/nginx.conf"),
        )
        .unwrap()
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
