//! One transaction for a flow step that sends a message: the flow's new state, the code that the message carries,
//! the message itself and the address's verification status are written together, or not at all. A crash between
//! them can therefore neither send a code that the flow does not know nor leave a flow waiting for a message that
//! was never queued.

use crate::codes::{insert_code_query, CodeKind, NewCode, INVALIDATE_CODES};
use crate::courier::store::insert_message_query;
use crate::courier::NewMessage;
use crate::flow::Flow;
use crate::store::{insert_flow_query, update_flow_query};
use async_trait::async_trait;
use identity::{on_pool, Db, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

/// What one step writes.
#[derive(Debug, Clone)]
pub struct SendStep<'a> {
    /// The flow after the step.
    pub flow: &'a Flow,
    /// Whether the flow is new (inserted) or changed (updated).
    pub new_flow: bool,
    /// Codes of this kind that the flow sent earlier stop working (a resend replaces them).
    pub invalidate: Option<CodeKind>,
    /// The code the message carries (absent for messages to unknown addresses).
    pub code: Option<NewCode>,
    /// The message.
    pub message: Option<NewMessage>,
    /// A verifiable address whose status goes from `pending` to `sent`.
    pub address_sent: Option<Uuid>,
}

/// Writes [`SendStep`]s atomically.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Writes the step in one transaction.
    async fn commit(&self, step: &SendStep<'_>, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// [`Outbox`] on SQL.
#[derive(Debug, Clone)]
pub struct SqlOutbox {
    db: Db,
}

impl SqlOutbox {
    /// An outbox on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Outbox for SqlOutbox {
    async fn commit(&self, step: &SendStep<'_>, now: OffsetDateTime) -> Result<(), StoreError> {
        on_pool!(&self.db, pool, {
            let mut tx = pool.begin().await?;
            if step.new_flow {
                insert_flow_query!(step.flow).execute(&mut *tx).await?;
            } else if update_flow_query!(step.flow)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 0
            {
                return Err(StoreError::NotFound);
            }
            if let Some(kind) = step.invalidate {
                sqlx::query(INVALIDATE_CODES)
                    .bind(kind.as_str())
                    .bind(step.flow.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(code) = &step.code {
                insert_code_query!(Uuid::new_v4(), code, now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(m) = &step.message {
                insert_message_query!(Uuid::new_v4(), m, now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(address) = step.address_sent {
                sqlx::query(
                    "UPDATE identity_verifiable_addresses SET status = 'sent', updated_at = $2 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(address)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
