//! The `--dev` demo upstream: a page that lists the identity headers the proxy injected, and the rule that puts
//! it behind login (anonymous browsers are sent to the built-in sign-in page and come back afterwards).

use crate::ui::render::escape_html;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The demo rule: every non-reserved path, cookie session or nothing, identity headers in three dialects.
pub fn demo_rule() -> Option<rules::Rule> {
    serde_json::from_value(json!({
        "id": "portcullis-dev-demo",
        "description": "--dev: everything behind login, served by the demo upstream",
        "match": {"url": "<https?>://<[^/]+>/<.*>", "methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]},
        "authenticators": [{"handler": "cookie_session"}, {"handler": "bearer_token"}],
        "authorizer": {"handler": "allow"},
        "mutators": [
            {"handler": "header", "config": {"preset": "portcullis"}},
            {"handler": "header", "config": {"preset": "oauth2_proxy"}},
            {"handler": "header", "config": {"preset": "authelia"}}
        ],
        "errors": [
            {"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}
        ]
    }))
    .ok()
}

async fn page(headers: HeaderMap) -> Response {
    let mut rows = String::new();
    for (name, value) in headers.iter() {
        let n = name.as_str();
        let interesting = n.starts_with("x-user-")
            || n.starts_with("x-auth-request-")
            || n.starts_with("remote-")
            || n.starts_with("x-forwarded-")
            || n == "x-request-id";
        if interesting {
            rows.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
                escape_html(n),
                escape_html(value.to_str().unwrap_or("(not text)"))
            ));
        }
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Demo upstream</title>\
         <link rel=\"stylesheet\" href=\"/ui/style.css\"></head><body><div class=\"pc-page\"><main class=\"pc-card\">\
         <h1>Hello from the upstream</h1><p>Portcullis let this request through and added these headers:</p>\
         <table class=\"pc-table\">\n{rows}</table><p><a href=\"/ui/welcome\">Your session</a></p></main></div></body></html>"
    );
    let mut res = body.into_response();
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// Starts the demo upstream on a free loopback port; returns its base URL.
pub async fn start(mut stop: watch::Receiver<bool>) -> std::io::Result<String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let app = Router::new().fallback(page);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the demo upstream stopped");
        }
    });
    Ok(url)
}
