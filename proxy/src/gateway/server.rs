//! Accept loop, connection tracking and graceful shutdown.
//!
//! We drive Pingora's `HttpProxy` (built with `pingora::proxy::http_proxy`, which exists for
//! custom accept loops) instead of running a `pingora::server::Server`:
//! - the listener is handed over already bound (no bind race, port 0 works);
//! - `Server::run` sleeps the whole `grace_period_seconds` and then drops in-flight tasks, and
//!   cannot run inside an existing tokio runtime; here shutdown returns as soon as the last
//!   connection is done, or at `shutdown_timeout`;
//! - no pid file, upgrade socket, `Opt` parsing or `process::exit` paths.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pingora::apps::ServerApp;
use pingora::protocols::l4::listener::Listener;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use tokio::sync::{watch, Notify};

use super::proxy::Edge;
use super::stream::Downstream;

/// Counts live client connections.
#[derive(Default)]
pub(super) struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

pub(super) struct TrackGuard(Arc<Tracker>);

impl Tracker {
    pub fn enter(self: &Arc<Self>) -> TrackGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        TrackGuard(self.clone())
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Resolves once no connection is live.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub(super) type App = HttpProxy<Edge>;

/// Accepts until `stop` turns true, then drops the listener.
pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
) {
    let listener = Listener::from(listener);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let mut stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "gateway accept failed");
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay() {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let stream: Stream = Box::new(Downstream::new(stream));
        spawn_connection(&app, &tracker, &stop, &abort, stream);
    }
}

/// Serves one client connection on the current runtime, tracked, until it closes or `abort` turns true.
pub(super) fn spawn_connection(
    app: &Arc<App>,
    tracker: &Arc<Tracker>,
    stop: &watch::Receiver<bool>,
    abort: &watch::Receiver<bool>,
    stream: Stream,
) {
    let guard = tracker.enter();
    let (app, stop, mut abort) = (app.clone(), stop.clone(), abort.clone());
    tokio::spawn(async move {
        let _guard = guard;
        tokio::select! {
            biased;
            _ = abort.wait_for(|a| *a) => {}
            _ = serve(app, stream, stop) => {}
        }
    });
}

/// One client connection: requests until it closes (what pingora's `Service` does per event).
async fn serve(app: Arc<App>, stream: Stream, stop: watch::Receiver<bool>) {
    let mut next = app.process_new(stream, &stop).await;
    while let Some(stream) = next {
        next = app.process_new(stream, &stop).await;
    }
}
