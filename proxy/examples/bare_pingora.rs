//! Scenario 0 of `tests/bench/run.sh`: a bare Pingora pass-through from the same `pingora` version as the edge, so
//! that the edge's cost is measured against Pingora itself and not only against nginx. It does nothing but pick
//! the upstream; `pingora::Server` runs it with one worker thread (Pingora's default).
//!
//! `cargo run --release -p proxy --example bare_pingora -- LISTEN_ADDR UPSTREAM_ADDR`

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Result, Server, Session};

struct Bare {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_pingora LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    // One worker thread, and SIGTERM exits at once (Pingora's default grace period is five minutes).
    let conf = pingora::server::configuration::ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
