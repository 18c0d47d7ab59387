//! The real `portcullis serve` binary under SIGTERM: a request in flight through the edge proxy still gets its
//! answer, new connections are refused, and the process exits cleanly within `serve.shutdown_timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{read_head, sigterm, wait_exit, wait_ready, Ports};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// An upstream that tells the test when a request arrived and answers only when released.
async fn held_upstream() -> (u16, mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await.is_none() {
                    return;
                }
                let (release, released) = oneshot::channel();
                let _ = tx.send(release);
                let _ = released.await;
                let body = "finished";
                let res = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(res.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, mut arrived) = held_upstream().await;
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        format!(
            r#"[{{"id": "open", "match": {{"url": "http://<[^/]+>/<.*>", "methods": ["GET"]}},
                 "upstream": {{"url": "http://127.0.0.1:{upstream}"}},
                 "authenticators": [{{"handler": "anonymous"}}], "authorizer": {{"handler": "allow"}},
                 "mutators": [{{"handler": "noop"}}]}}]"#
        ),
    )
    .unwrap();
    let ports = Ports::new();
    let (admin, proxy) = (ports.admin, ports.proxy);
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "{}\n  shutdown_timeout: 10s\nlog: {{level: warn}}\naccess_rules: {{repositories: [\"file://{}\"]}}\n",
            ports.serve_yaml(),
            rules.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--dev", "--config"])
        .arg(&config)
        .env(
            "DSN",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("db.sqlite").display()
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let http = reqwest::Client::new();
    wait_ready(&mut child, admin).await;

    // A request is in flight at the upstream when SIGTERM arrives.
    let in_flight = tokio::spawn({
        let http = http.clone();
        async move {
            let res = http
                .get(format!("http://127.0.0.1:{proxy}/slow"))
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    });
    let release = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .expect("the request reached the upstream")
        .unwrap();
    sigterm(&child);

    // Shutdown has begun once the proxy stops accepting; the in-flight request is still waiting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", proxy))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the proxy kept accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    let _ = release.send(());
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight request finished")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "finished");

    // Then the process exits cleanly, well within shutdown_timeout.
    let exit = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
}
