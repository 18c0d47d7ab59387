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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::codes::{hash_code, CodePool, SqlCodePool};
    use crate::courier::{CourierStore, ListMessages, SqlCourierStore, TemplateType};
    use crate::flow::{FlowKind, FlowType};
    use crate::store::{FlowPool, SqlFlowPool};
    use identity::store::testing;
    use serde_json::json;
    use time::macros::datetime;
    use time::Duration;

    const SECRET: &[u8] = b"outbox test secret";

    fn step_parts(flow: &Flow, now: OffsetDateTime) -> (NewCode, NewMessage) {
        let code = NewCode {
            kind: CodeKind::Recovery,
            flow_id: flow.id,
            identity_id: None,
            address_id: None,
            address: "ada@example.com".into(),
            code_hmac: hash_code(SECRET, "123456"),
            expires_at: now + Duration::minutes(10),
        };
        let message = NewMessage {
            recipient: "ada@example.com".into(),
            subject: "code".into(),
            body: "123456".into(),
            body_plaintext: "123456".into(),
            template_type: TemplateType::RecoveryCodeValid,
            template_data: json!({}),
            identity_id: None,
        };
        (code, message)
    }

    async fn messages(db: &Db) -> usize {
        SqlCourierStore::new(db.clone())
            .list(&ListMessages {
                page_size: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .messages
            .len()
    }

    async fn atomicity(db: Db) {
        let now = datetime!(2026-05-01 10:00 UTC);
        let outbox = SqlOutbox::new(db.clone());
        let flows = SqlFlowPool::new(db.clone());
        let codes = SqlCodePool::new(db.clone());

        // A step whose flow update fails writes nothing: no code, no message.
        let ghost = Flow::new(
            FlowKind::Recovery,
            FlowType::Api,
            "x".into(),
            now,
            Duration::hours(1),
        );
        let (code, message) = step_parts(&ghost, now);
        let err = outbox
            .commit(
                &SendStep {
                    flow: &ghost,
                    new_flow: false,
                    invalidate: Some(CodeKind::Recovery),
                    code: Some(code),
                    message: Some(message),
                    address_sent: None,
                },
                now,
            )
            .await;
        assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
        assert_eq!(messages(&db).await, 0);
        let used = codes
            .use_code(
                CodeKind::Recovery,
                ghost.id,
                &hash_code(SECRET, "123456"),
                now,
                5,
            )
            .await
            .unwrap()
            .used();
        assert_eq!(used, None, "the code was rolled back");

        // A step that succeeds writes the flow, the code and the message together.
        let mut flow = ghost.clone();
        flow.state = crate::flow::FlowState::SentEmail;
        let (code, message) = step_parts(&flow, now);
        outbox
            .commit(
                &SendStep {
                    flow: &flow,
                    new_flow: true,
                    invalidate: None,
                    code: Some(code),
                    message: Some(message),
                    address_sent: None,
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            flows
                .get_flow(FlowKind::Recovery, flow.id)
                .await
                .unwrap()
                .state,
            crate::flow::FlowState::SentEmail
        );
        assert_eq!(messages(&db).await, 1);

        // A resend invalidates the earlier code in the same transaction.
        let (mut code, message) = step_parts(&flow, now);
        code.code_hmac = hash_code(SECRET, "654321");
        outbox
            .commit(
                &SendStep {
                    flow: &flow,
                    new_flow: false,
                    invalidate: Some(CodeKind::Recovery),
                    code: Some(code),
                    message: Some(message),
                    address_sent: None,
                },
                now,
            )
            .await
            .unwrap();
        let old = codes
            .use_code(
                CodeKind::Recovery,
                flow.id,
                &hash_code(SECRET, "123456"),
                now,
                5,
            )
            .await
            .unwrap()
            .used();
        assert_eq!(old, None);
        let new = codes
            .use_code(
                CodeKind::Recovery,
                flow.id,
                &hash_code(SECRET, "654321"),
                now,
                5,
            )
            .await
            .unwrap()
            .used();
        assert!(new.is_some());
        assert_eq!(messages(&db).await, 2);
    }

    #[tokio::test]
    async fn steps_are_atomic_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = testing::sqlite_file(dir.path()).await.unwrap();
        atomicity(db).await;
    }

    #[tokio::test]
    async fn steps_are_atomic_postgres() {
        // Runs when TEST_DATABASE_URL is set (CI always sets it); an unreachable server fails the test.
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        let (db, _) = testing::isolated_postgres(&url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
        atomicity(db).await;
    }
}
