//! What the tests of the real `portcullis` binary share: free ports, reading a request head, waiting for
//! readiness, and stopping with SIGTERM. Each test binary uses part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The four listeners on free loopback ports.
pub struct Ports {
    pub public: u16,
    pub admin: u16,
    pub api: u16,
    pub proxy: u16,
}

impl Ports {
    pub fn new() -> Self {
        Self {
            public: free_port(),
            admin: free_port(),
            api: free_port(),
            proxy: free_port(),
        }
    }

    /// The `serve:` block of a config file, without a trailing newline, so keys such as `shutdown_timeout` can
    /// follow at the same depth.
    pub fn serve_yaml(&self) -> String {
        let Self {
            public,
            admin,
            api,
            proxy,
        } = self;
        format!(
            "serve:\n  public: {{host: 127.0.0.1, port: {public}}}\n  admin: {{host: 127.0.0.1, port: {admin}}}\n  \
             api: {{host: 127.0.0.1, port: {api}}}\n  proxy: {{host: 127.0.0.1, port: {proxy}}}"
        )
    }
}

/// Reads from `s` until the end of a request head; `None` if the peer closes first.
pub async fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 8192];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

/// Polls `/admin/health/ready` until it answers 200; fails if the server exits or takes over 30 s.
pub async fn wait_ready(child: &mut Child, admin: u16) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{admin}/admin/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        assert!(Instant::now() < deadline, "the server did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit; fails if it runs past `within`.
pub async fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
