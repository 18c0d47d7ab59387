//! The delivery worker: claims due messages, sends them, records the outcome, and waits when idle.

use super::model::MessageStatus;
use super::smtp::Sender;
use super::store::{CourierStore, RetryPolicy};
use identity::{SharedClock, StoreError};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use time::Duration;
use tokio::sync::{watch, Notify};

/// `courier.worker.*` and `courier.message_retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Messages claimed per batch (`courier.worker.pull_count`).
    pub pull_count: u32,
    /// Wait between polls when nothing was due (`courier.worker.pull_wait`).
    pub pull_wait: std::time::Duration,
    /// How long a claim holds before another worker may take the message again.
    pub lease: Duration,
    /// Retries and backoff.
    pub retry: RetryPolicy,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            pull_count: 10,
            pull_wait: std::time::Duration::from_secs(1),
            lease: Duration::minutes(5),
            retry: RetryPolicy::default(),
        }
    }
}

/// Counters of the courier, shared by the enqueuing side and the workers.
#[derive(Debug, Default)]
pub struct CourierMetrics {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    abandoned: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Messages enqueued.
    pub queued: u64,
    /// Messages delivered.
    pub sent: u64,
    /// Failed attempts (including the last one of abandoned messages).
    pub failed: u64,
    /// Messages given up.
    pub abandoned: u64,
}

impl CourierMetrics {
    /// Counts an enqueued message.
    pub fn record_queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }
}

/// What one [`Worker::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed and queued again.
    pub retried: usize,
    /// Failed for the last time.
    pub abandoned: usize,
}

/// The courier worker. Several may run against one database (each claim is exclusive).
pub struct Worker {
    store: Arc<dyn CourierStore>,
    sender: Arc<dyn Sender>,
    clock: SharedClock,
    settings: WorkerSettings,
    notify: Arc<Notify>,
    metrics: Arc<CourierMetrics>,
}

impl Worker {
    /// A worker; `notify` wakes it early (the enqueuing side calls `notify_one` / `notify_waiters`).
    pub fn new(
        store: Arc<dyn CourierStore>,
        sender: Arc<dyn Sender>,
        clock: SharedClock,
        settings: WorkerSettings,
        notify: Arc<Notify>,
        metrics: Arc<CourierMetrics>,
    ) -> Self {
        Self {
            store,
            sender,
            clock,
            settings,
            notify,
            metrics,
        }
    }

    /// Claims one batch and delivers it.
    pub async fn tick(&self) -> Result<TickReport, StoreError> {
        let now = self.clock.now();
        let batch = self
            .store
            .claim(self.settings.pull_count, now, self.settings.lease)
            .await?;
        let mut report = TickReport {
            claimed: batch.len(),
            ..Default::default()
        };
        for m in batch {
            match self.sender.send(&m, self.clock.now()).await {
                Ok(()) => {
                    match self.store.mark_sent(&m, self.clock.now()).await {
                        Ok(()) => {}
                        // Our lease ran out during the exchange and another worker holds it now.
                        Err(StoreError::NotFound) => {
                            tracing::warn!(message_id = %m.id, "courier: sent after its claim expired");
                        }
                        Err(e) => return Err(e),
                    }
                    self.metrics.sent.fetch_add(1, Ordering::Relaxed);
                    report.sent += 1;
                    tracing::info!(message_id = %m.id, template_type = %m.template_type, "courier: message sent");
                }
                Err(e) => {
                    self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                    let error = json!({
                        "code": 500,
                        "status": "Internal Server Error",
                        "reason": e.0,
                        "message": "failed to send the message",
                    });
                    let status = match self
                        .store
                        .mark_failed(&m, self.clock.now(), &error, &self.settings.retry)
                        .await
                    {
                        Ok(status) => status,
                        // Another worker holds it now; it will try again itself.
                        Err(StoreError::NotFound) => {
                            tracing::warn!(message_id = %m.id, "courier: failed after its claim expired");
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    if status == MessageStatus::Abandoned {
                        self.metrics.abandoned.fetch_add(1, Ordering::Relaxed);
                        report.abandoned += 1;
                        tracing::error!(message_id = %m.id, error = %e, "courier: message abandoned");
                    } else {
                        report.retried += 1;
                        tracing::warn!(message_id = %m.id, error = %e, "courier: delivery failed, will retry");
                    }
                }
            }
        }
        Ok(report)
    }

    /// Runs until `stop` turns true (or its sender is dropped). A full batch is followed at once by the next
    /// one; otherwise the worker waits `pull_wait`, or less when notified.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let full = match self.tick().await {
                Ok(r) => r.claimed >= self.settings.pull_count as usize && r.claimed > 0,
                Err(e) => {
                    tracing::error!(error = %e, "courier: store error");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(self.settings.pull_wait) => {}
            }
        }
    }
}
