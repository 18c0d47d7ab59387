//! Trace export from the real binary (`tracing.provider: otel`) to a real OTLP/HTTP receiver: a span per API and
//! edge request with the route, status, rule and decision; the caller's `traceparent` is the parent; the
//! upstream and the identity module get the edge span as their parent; the spans still queued at SIGTERM are flushed before exit; the
//! query string (which can carry codes) is never exported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{read_head, sigterm, wait_exit, wait_ready, Ports};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One POST to the receiver: its headers and body.
struct Export {
    headers: HeaderMap,
    body: Bytes,
}

/// An OTLP/HTTP receiver on a free port that hands every `POST /v1/traces` to the test.
async fn receiver() -> (u16, mpsc::UnboundedReceiver<Export>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Export { headers, body });
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, rx)
}

/// An upstream that answers 200 and hands each request head to the test.
async fn upstream() -> (u16, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else {
                    return;
                };
                let _ = tx.send(String::from_utf8_lossy(&head).to_lowercase());
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, rx)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts `portcullis serve` with an edge rule to `app` and trace export to the collector at `collector`; returns
/// once it is ready.
async fn serve(dir: &Path, ports: &Ports, app: u16, collector: &str) -> Child {
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        format!(
            r#"[{{"id": "app", "match": {{"url": "http://<[^/]+>/app/<.*>", "methods": ["GET"]}},
                 "upstream": {{"url": "http://127.0.0.1:{app}"}},
                 "authenticators": [{{"handler": "anonymous"}}], "authorizer": {{"handler": "allow"}},
                 "mutators": [{{"handler": "noop"}}]}}]"#
        ),
    )
    .unwrap();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "dsn: sqlite://{}/db.sqlite?mode=rwc\n{}\n\
             secrets: {{default: [a-long-enough-secret-for-the-otlp-test]}}\n\
             log: {{level: warn}}\n\
             access_rules: {{repositories: [\"file://{}\"]}}\n\
             authenticators: {{anonymous: {{enabled: true}}, noop: {{enabled: true}}}}\n\
             mutators: {{noop: {{enabled: true}}}}\n\
             tracing:\n  provider: otel\n  service_name: portcullis-otlp-test\n  deployment_environment: ci\n  \
             providers:\n    otlp: {{server_url: '{collector}', insecure: true, \
             authorization_header: Bearer otlp-test-key, sampling: {{sampling_ratio: 1.0}}}}\n",
            dir.display(),
            ports.serve_yaml(),
            rules.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_ready(&mut child, ports.admin).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_are_exported_over_otlp_and_flushed_at_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, mut exports) = receiver().await;
    let (app, mut heads) = upstream().await;
    let ports = Ports::new();
    let (admin, proxy) = (ports.admin, ports.proxy);
    let mut child = serve(dir.path(), &ports, app, &format!("127.0.0.1:{collector}")).await;
    let http = reqwest::Client::new();

    // An edge request that continues the caller's trace, with a query that must not be exported.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let res = http
        .get(format!(
            "http://127.0.0.1:{proxy}/app/page?code=424242&return_to=x"
        ))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let head = tokio::time::timeout(Duration::from_secs(10), heads.recv())
        .await
        .unwrap()
        .unwrap();
    let upstream_parent = head
        .lines()
        .find_map(|l| l.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent reached the upstream: {head}"))
        .trim()
        .to_owned();
    let parts: Vec<&str> = upstream_parent.split('-').collect();
    assert_eq!(parts.len(), 4, "{upstream_parent}");
    assert_eq!(
        parts[1], caller_trace,
        "the upstream continues the caller's trace"
    );
    assert_ne!(
        parts[2], caller_span,
        "the edge's span sits between caller and upstream"
    );

    // A self-service request through the edge: the identity module's span is a child of the edge's.
    let res = http
        .get(format!("http://127.0.0.1:{proxy}/self-service/login/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // An API request, named by its route rather than its path.
    let res = http
        .get(format!(
            "http://127.0.0.1:{admin}/admin/identities/6f1c1a7e-1b5e-4d6e-9f6e-2f0b3c4d5e6f"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // SIGTERM: the batch still queued is flushed before the process exits.
    sigterm(&child);
    let exit = wait_exit(&mut child, Duration::from_secs(30)).await;
    assert!(exit.success(), "{exit:?}");

    let mut spans: Vec<Span> = Vec::new();
    let mut services = Vec::new();
    while let Ok(export) = exports.try_recv() {
        assert_eq!(
            export.headers.get("content-type").unwrap(),
            "application/x-protobuf"
        );
        assert_eq!(
            export.headers.get("authorization").unwrap(),
            "Bearer otlp-test-key"
        );
        let raw = String::from_utf8_lossy(&export.body);
        assert!(!raw.contains("424242"), "the query string was exported");
        let req = ExportTraceServiceRequest::decode(export.body).unwrap();
        for rs in req.resource_spans {
            let resource = rs.resource.unwrap_or_default();
            services.push((
                str_attr(&resource.attributes, "service.name").map(str::to_owned),
                str_attr(&resource.attributes, "deployment.environment.name").map(str::to_owned),
            ));
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    assert!(!services.is_empty(), "nothing was exported");
    for s in &services {
        assert_eq!(s, &(Some("portcullis-otlp-test".into()), Some("ci".into())));
    }
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();

    let edge = spans
        .iter()
        .find(|s| s.name == "GET app")
        .unwrap_or_else(|| panic!("no edge span among {names:?}"));
    assert_eq!(hex(&edge.trace_id), caller_trace);
    assert_eq!(hex(&edge.parent_span_id), caller_span);
    assert_eq!(
        hex(&edge.span_id),
        parts[2],
        "the upstream's parent is the edge span"
    );
    assert_eq!(
        int_attr(&edge.attributes, "http.response.status_code"),
        Some(200)
    );
    assert_eq!(str_attr(&edge.attributes, "portcullis.rule"), Some("app"));
    assert_eq!(
        str_attr(&edge.attributes, "portcullis.decision"),
        Some("allow")
    );
    assert_eq!(str_attr(&edge.attributes, "url.path"), Some("/app/page"));
    assert!(edge.end_time_unix_nano > edge.start_time_unix_nano);

    let inner = spans
        .iter()
        .find(|s| s.name == "GET /self-service/login/api")
        .unwrap_or_else(|| panic!("no identity-module span among {names:?}"));
    let outer = spans
        .iter()
        .find(|s| s.span_id == inner.parent_span_id)
        .unwrap_or_else(|| panic!("the identity module's span has no exported parent: {names:?}"));
    assert_eq!(outer.name, "GET identity");
    assert_eq!(outer.trace_id, inner.trace_id);
    assert_eq!(
        int_attr(&outer.attributes, "http.response.status_code"),
        Some(200)
    );

    let api = spans
        .iter()
        .find(|s| s.name == "GET /admin/identities/{id}")
        .unwrap_or_else(|| panic!("no API span among {names:?}"));
    assert_eq!(
        int_attr(&api.attributes, "http.response.status_code"),
        Some(404)
    );
    assert_eq!(
        str_attr(&api.attributes, "portcullis.listener"),
        Some("admin")
    );
    assert!(
        api.parent_span_id.is_empty(),
        "a request without traceparent starts a trace"
    );
    // Health probes are spans too (the readiness loop above made some).
    assert!(names.contains(&"GET /admin/health/ready"), "{names:?}");
}

/// A collector that accepts connections and never answers.
async fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_hangs_neither_delays_requests_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let collector = black_hole().await;
    let (app, mut heads) = upstream().await;
    let ports = Ports::new();
    let mut child = serve(dir.path(), &ports, app, &format!("127.0.0.1:{collector}")).await;
    // Requests keep flowing while every export hangs (the exporter's own timeout is 10 s).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..20 {
        let res = http
            .get(format!("http://127.0.0.1:{}/app/x", ports.proxy))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        heads.recv().await.unwrap();
        let res = http
            .get(format!("http://127.0.0.1:{}/admin/identities", ports.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // The flush at SIGTERM gives up after 2 s rather than holding the exit (the exporter alone would wait 5 s).
    sigterm(&child);
    let exit = wait_exit(&mut child, Duration::from_secs(4)).await;
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn config_check_refuses_otel_without_a_collector() {
    let dir = tempfile::tempdir().unwrap();
    for (tracing, key) in [
        ("{provider: otel}", "tracing.providers.otlp.server_url"),
        (
            "{provider: otel, providers: {otlp: {server_url: 'ftp://c:1'}}}",
            "tracing.providers.otlp.server_url",
        ),
        (
            "{provider: otel, providers: {otlp: {server_url: 'c:4318', sampling: {sampling_ratio: 2}}}}",
            "tracing.providers.otlp.sampling.sampling_ratio",
        ),
    ] {
        let config = dir.path().join("c.yml");
        std::fs::write(
            &config,
            format!("dsn: memory\nsecrets: {{default: [a-long-enough-secret-for-the-otlp-test]}}\ntracing: {tracing}\n"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["config", "check"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tracing} was accepted");
        assert!(stderr.contains(key), "{tracing}: {stderr}");
    }
}
