//! The courier: an outbox of e-mail messages in SQL and an SMTP delivery worker, wire-compatible with Kratos'
//! courier (`GET /admin/courier/messages`).
//!
//! Flows enqueue through [`Courier::queue_email`] (render a template, store the message, wake the worker);
//! [`Worker::run`] delivers in the background with a [`Sender`] such as [`SmtpSender`].

mod model;
mod smtp;
pub(crate) mod store;
mod templates;
mod worker;

#[cfg(test)]
mod tests;

pub use model::{
    Dispatch, DispatchStatus, Message, MessageStatus, MessageType, NewMessage, TemplateType,
    UnknownValue, Variant,
};
pub use smtp::{
    ConnectionUri, Security, SendError, Sender, SmtpConfigError, SmtpSender, SmtpSettings,
};
pub use store::{
    BadPageToken, CourierStore, ListMessages, MessagePage, PageToken, RetryPolicy, SqlCourierStore,
};
pub use templates::{
    EmailTemplateUris, RenderedEmail, Template, TemplateError, TemplateSettings, Templates,
    VariantName,
};
pub use worker::{CourierMetrics, MetricsSnapshot, TickReport, Worker, WorkerSettings};

use identity::{SharedClock, StoreError};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// The enqueuing side: flows call [`Courier::queue_email`].
#[derive(Clone)]
pub struct Courier {
    store: Arc<dyn CourierStore>,
    templates: Arc<Templates>,
    clock: SharedClock,
    notify: Arc<Notify>,
    metrics: Arc<CourierMetrics>,
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier").finish_non_exhaustive()
    }
}

impl Courier {
    /// A courier over `store`, rendering with `templates`.
    pub fn new(
        store: Arc<dyn CourierStore>,
        templates: Arc<Templates>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            templates,
            clock,
            notify: Arc::new(Notify::new()),
            metrics: Arc::new(CourierMetrics::default()),
        }
    }

    /// Renders `template_type` with `data` (an object with `To`, `RecoveryCode`, `Identity`, …; `To` is added
    /// from `recipient` when absent) into a message ready to store. [`Courier::queue_email`] stores it at once; a
    /// flow that must store it together with its own change hands it to [`crate::outbox::Outbox`] and then calls
    /// [`Courier::announce`].
    pub fn render_email(
        &self,
        recipient: &str,
        template_type: TemplateType,
        mut data: Value,
        identity_id: Option<Uuid>,
    ) -> NewMessage {
        if let Value::Object(map) = &mut data {
            map.entry("To")
                .or_insert_with(|| Value::String(recipient.to_owned()));
        }
        let rendered = self.templates.render(template_type, &data);
        NewMessage {
            recipient: recipient.to_owned(),
            subject: rendered.subject,
            body: rendered.body_html,
            body_plaintext: rendered.body_plaintext,
            template_type,
            template_data: data,
            identity_id,
        }
    }

    /// Renders and stores a message as `queued`, and wakes a worker.
    pub async fn queue_email(
        &self,
        recipient: &str,
        template_type: TemplateType,
        data: Value,
        identity_id: Option<Uuid>,
    ) -> Result<Message, StoreError> {
        let m = self.render_email(recipient, template_type, data, identity_id);
        let stored = self.store.enqueue(&m, self.clock.now()).await?;
        self.announce(1);
        Ok(stored)
    }

    /// Counts `n` messages stored elsewhere (by the outbox) as queued and wakes a worker.
    pub fn announce(&self, n: usize) {
        for _ in 0..n {
            self.metrics.record_queued();
        }
        if n > 0 {
            self.notify.notify_one();
        }
    }

    /// The store (for the admin API: `list`, `get`, `count_by_status`).
    pub fn store(&self) -> &Arc<dyn CourierStore> {
        &self.store
    }

    /// The counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// A worker that shares this courier's store, clock, wake-up signal and counters.
    pub fn worker(&self, sender: Arc<dyn Sender>, settings: WorkerSettings) -> Worker {
        Worker::new(
            self.store.clone(),
            sender,
            self.clock.clone(),
            settings,
            self.notify.clone(),
            self.metrics.clone(),
        )
    }
}
