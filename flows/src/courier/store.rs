//! The outbox in SQL: [`CourierStore`] and its implementation on [`identity::Db`].
//!
//! Claiming: a worker takes due messages (`queued` with `next_attempt_at <= now`, or `processing` whose lease ran
//! out) by stamping them with a fresh claim id and a lease, then reads back the rows carrying its claim id. On
//! PostgreSQL the candidate rows are locked with `FOR UPDATE SKIP LOCKED` inside a transaction, so concurrent
//! workers take disjoint sets; on SQLite the single `UPDATE … WHERE id IN (SELECT …)` is atomic (SQLite serialises
//! writers).

use super::model::{Dispatch, DispatchStatus, Message, MessageStatus, MessageType, NewMessage};
use async_trait::async_trait;
use base64::Engine;
use identity::{on_pool, Db, StoreError};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `courier.message_retries`: once `send_count` reaches it the message is abandoned.
    pub message_retries: u32,
    /// Wait after the first failure; doubles with every further failure.
    pub backoff_base: Duration,
    /// Upper bound of the wait.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            message_retries: 5,
            backoff_base: Duration::seconds(10),
            backoff_max: Duration::minutes(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt number `send_count + 1` (after `send_count` failed attempts, `send_count >= 1`).
    pub fn backoff(&self, send_count: u32) -> Duration {
        let exp = send_count.saturating_sub(1).min(20);
        let wait = self.backoff_base.saturating_mul(1i32 << exp);
        if wait > self.backoff_max {
            self.backoff_max
        } else {
            wait
        }
    }
}

/// A page of [`CourierStore::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// The token of the next page (absent on the last page).
    pub next_page_token: Option<PageToken>,
}

/// Filters and position of [`CourierStore::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMessages {
    /// Page size (at least 1).
    pub page_size: u32,
    /// Where the previous page ended ([`MessagePage::next_page_token`], parsed with `str::parse`).
    pub page_token: Option<PageToken>,
    /// Only this status.
    pub status: Option<MessageStatus>,
    /// Only this recipient.
    pub recipient: Option<String>,
}

/// Courier storage.
#[async_trait]
pub trait CourierStore: Send + Sync {
    /// Stores a new `queued` message, due at once.
    async fn enqueue(&self, m: &NewMessage, now: OffsetDateTime) -> Result<Message, StoreError>;
    /// Claims up to `batch` due messages for `lease`: they become `processing` until marked or until the lease
    /// runs out, when another worker may claim them again.
    async fn claim(
        &self,
        batch: u32,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<Message>, StoreError>;
    /// Records a successful delivery of a message as claimed ([`Message::claim`]). [`StoreError::NotFound`] when the
    /// message is no longer held by that claim (its lease ran out and another worker took it).
    async fn mark_sent(&self, m: &Message, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Records a failed attempt of a claimed message: it goes back to `queued` after a backoff, or is
    /// `abandoned` when `send_count` reaches `policy.message_retries`. Returns the new status.
    async fn mark_failed(
        &self,
        m: &Message,
        now: OffsetDateTime,
        error: &Value,
        policy: &RetryPolicy,
    ) -> Result<MessageStatus, StoreError>;
    /// Lists messages, newest first (without dispatches), keyset-paginated.
    async fn list(&self, q: &ListMessages) -> Result<MessagePage, StoreError>;
    /// One message with its dispatches (newest first).
    async fn get(&self, id: Uuid) -> Result<Message, StoreError>;
    /// How many messages are in each status (for metrics); every status is present.
    async fn count_by_status(&self) -> Result<BTreeMap<MessageStatus, u64>, StoreError>;
}

/// A page token that this store did not issue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid page token")]
pub struct BadPageToken;

/// A keyset position in the list of messages (newest first). Its text form (`Display` / `FromStr`) is opaque;
/// the admin API may encrypt it further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    created_us: i64,
    id: Uuid,
}

impl std::fmt::Display for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raw = format!("{}.{}", self.created_us, self.id);
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }
}

impl std::str::FromStr for PageToken {
    type Err = BadPageToken;
    fn from_str(token: &str) -> Result<Self, BadPageToken> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| BadPageToken)?;
        let raw = String::from_utf8(raw).map_err(|_| BadPageToken)?;
        let (us, id) = raw.split_once('.').ok_or(BadPageToken)?;
        Ok(Self {
            created_us: us.parse().map_err(|_| BadPageToken)?,
            id: id.parse().map_err(|_| BadPageToken)?,
        })
    }
}

pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok()
}

const COLUMNS: &str =
    "id, status, type, recipient, subject, body, body_plaintext, template_type, template_data, \
     channel, send_count, identity_id, next_attempt_at, claimed_by, created_us, created_at, updated_at";

#[derive(FromRow)]
struct MessageRow {
    id: Uuid,
    status: String,
    #[sqlx(rename = "type")]
    kind: String,
    recipient: String,
    subject: String,
    body: String,
    body_plaintext: String,
    template_type: String,
    template_data: Json<Value>,
    channel: Option<String>,
    send_count: i32,
    identity_id: Option<Uuid>,
    next_attempt_at: i64,
    claimed_by: Option<Uuid>,
    created_us: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(sqlx::Error::Decode(
        format!("unexpected {what} in courier_messages").into(),
    ))
}

impl MessageRow {
    fn into_message(self) -> Result<Message, StoreError> {
        let kind: MessageType = self.kind.parse().map_err(|_| corrupt("type"))?;
        Ok(Message {
            id: self.id,
            status: self.status.parse().map_err(|_| corrupt("status"))?,
            kind,
            recipient: self.recipient,
            body: self.body,
            subject: self.subject,
            template_type: self
                .template_type
                .parse()
                .map_err(|_| corrupt("template_type"))?,
            // Rows written before the channel was stored have none; their kind names it.
            channel: self.channel.or_else(|| Some(kind.channel().to_owned())),
            send_count: u32::try_from(self.send_count).unwrap_or(0),
            dispatches: Vec::new(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            body_plaintext: self.body_plaintext,
            template_data: self.template_data.0,
            identity_id: self.identity_id,
            next_attempt_at: from_micros(self.next_attempt_at),
            claim: self.claimed_by,
        })
    }
}

#[derive(FromRow)]
struct DispatchRow {
    id: Uuid,
    message_id: Uuid,
    status: String,
    error: Option<Json<Value>>,
    created_us: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// The courier store on SQL.
#[derive(Debug, Clone)]
pub struct SqlCourierStore {
    db: Db,
}

impl SqlCourierStore {
    /// Wraps a database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// `INSERT INTO courier_messages` of a new `queued` message, for either backend (the outbox reuses it inside its
/// transaction).
macro_rules! insert_message_query {
    ($id:expr, $m:expr, $now:expr) => {{
        let m: &$crate::courier::NewMessage = $m;
        let now: time::OffsetDateTime = $now;
        sqlx::query($crate::courier::store::INSERT_MESSAGE)
            .bind($id)
            .bind($crate::courier::MessageStatus::Queued.as_str())
            .bind($crate::courier::MessageType::Email.as_str())
            .bind(&m.recipient)
            .bind(&m.subject)
            .bind(&m.body)
            .bind(&m.body_plaintext)
            .bind(m.template_type.as_str())
            .bind(sqlx::types::Json(&m.template_data))
            .bind(m.identity_id)
            .bind($crate::courier::store::micros(now))
            .bind(now)
            .bind($crate::courier::MessageType::Email.channel())
    }};
}
pub(crate) use insert_message_query;

/// Binds: id, status, type, recipient, subject, body, plaintext, template type, data, identity, created µs, now,
/// channel.
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO courier_messages (id, status, type, recipient, subject, body, \
     body_plaintext, template_type, template_data, channel, send_count, identity_id, next_attempt_at, claimed_by, \
     created_us, created_at, updated_at) VALUES \
     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $13, 0, $10, $11, NULL, $11, $12, $12)";

/// One delivery attempt (binds: id, message id, status, error, created_us, now).
const INSERT_DISPATCH: &str = "INSERT INTO courier_message_dispatches \
     (id, message_id, status, error, created_us, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";

#[async_trait]
impl CourierStore for SqlCourierStore {
    async fn enqueue(&self, m: &NewMessage, now: OffsetDateTime) -> Result<Message, StoreError> {
        let id = Uuid::new_v4();
        on_pool!(&self.db, pool, {
            insert_message_query!(id, m, now).execute(pool).await?;
        });
        Ok(Message {
            id,
            status: MessageStatus::Queued,
            kind: MessageType::Email,
            recipient: m.recipient.clone(),
            body: m.body.clone(),
            subject: m.subject.clone(),
            template_type: m.template_type,
            channel: Some(MessageType::Email.channel().to_owned()),
            send_count: 0,
            dispatches: Vec::new(),
            created_at: now,
            updated_at: now,
            body_plaintext: m.body_plaintext.clone(),
            template_data: m.template_data.clone(),
            identity_id: m.identity_id,
            next_attempt_at: Some(now),
            claim: None,
        })
    }

    async fn claim(
        &self,
        batch: u32,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<Message>, StoreError> {
        let claim = Uuid::new_v4();
        let now_us = micros(now);
        // The lease derives from config (SMTP timeout × batch): saturate rather than panic.
        let until = micros(now.saturating_add(lease));
        let limit = i64::from(batch.max(1));
        let due = "(status = 'queued' AND next_attempt_at <= $1) \
                   OR (status = 'processing' AND lease_until <= $1)";
        let select = format!("SELECT {COLUMNS} FROM courier_messages WHERE claimed_by = $1");
        let rows: Vec<MessageRow> = match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
                    "SELECT id FROM courier_messages WHERE {due} \
                     ORDER BY next_attempt_at, created_us LIMIT $2 FOR UPDATE SKIP LOCKED"
                ))
                .bind(now_us)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                if ids.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                sqlx::query(
                    "UPDATE courier_messages SET status = 'processing', claimed_by = $1, lease_until = $2, \
                     updated_at = $3 WHERE id = ANY($4)",
                )
                .bind(claim)
                .bind(until)
                .bind(now)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
                let rows = sqlx::query_as(&select)
                    .bind(claim)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
            Db::Sqlite(pool) => {
                let claimed = sqlx::query(&format!(
                    "UPDATE courier_messages SET status = 'processing', claimed_by = $2, lease_until = $3, \
                     updated_at = $4 WHERE id IN (SELECT id FROM courier_messages WHERE {due} \
                     ORDER BY next_attempt_at, created_us LIMIT $5)"
                ))
                .bind(now_us)
                .bind(claim)
                .bind(until)
                .bind(now)
                .bind(limit)
                .execute(pool)
                .await?
                .rows_affected();
                if claimed == 0 {
                    return Ok(Vec::new());
                }
                sqlx::query_as(&select).bind(claim).fetch_all(pool).await?
            }
        };
        let mut out = rows
            .into_iter()
            .map(MessageRow::into_message)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|m| (m.next_attempt_at, m.created_at));
        Ok(out)
    }

    async fn mark_sent(&self, m: &Message, now: OffsetDateTime) -> Result<(), StoreError> {
        let (id, claim) = (m.id, m.claim.ok_or(StoreError::NotFound)?);
        // The status and its dispatch change together: a reader never sees one without the other.
        on_pool!(&self.db, pool, {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE courier_messages SET status = 'sent', send_count = send_count + 1, lease_until = NULL, \
                 claimed_by = NULL, updated_at = $2 WHERE id = $1 AND status = 'processing' AND claimed_by = $3",
            )
            .bind(id)
            .bind(now)
            .bind(claim)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(INSERT_DISPATCH)
                .bind(Uuid::new_v4())
                .bind(id)
                .bind(DispatchStatus::Success.as_str())
                .bind(None::<Json<&Value>>)
                .bind(micros(now))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn mark_failed(
        &self,
        m: &Message,
        now: OffsetDateTime,
        error: &Value,
        policy: &RetryPolicy,
    ) -> Result<MessageStatus, StoreError> {
        let (id, claim) = (m.id, m.claim.ok_or(StoreError::NotFound)?);
        let status = on_pool!(&self.db, pool, {
            let mut tx = pool.begin().await?;
            let count: Option<i32> = sqlx::query_scalar(
                "SELECT send_count FROM courier_messages WHERE id = $1 AND status = 'processing' AND claimed_by = $2",
            )
            .bind(id)
            .bind(claim)
            .fetch_optional(&mut *tx)
            .await?;
            let old = count.ok_or(StoreError::NotFound)?;
            let new_count = u32::try_from(old).unwrap_or(0) + 1;
            let status = if new_count >= policy.message_retries {
                MessageStatus::Abandoned
            } else {
                MessageStatus::Queued
            };
            let next = micros(now.saturating_add(policy.backoff(new_count)));
            let done = sqlx::query(
                "UPDATE courier_messages SET status = $3, send_count = send_count + 1, next_attempt_at = $4, \
                 lease_until = NULL, claimed_by = NULL, updated_at = $5 \
                 WHERE id = $1 AND status = 'processing' AND send_count = $2 AND claimed_by = $6",
            )
            .bind(id)
            .bind(old)
            .bind(status.as_str())
            .bind(next)
            .bind(now)
            .bind(claim)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(INSERT_DISPATCH)
                .bind(Uuid::new_v4())
                .bind(id)
                .bind(DispatchStatus::Failed.as_str())
                .bind(Some(Json(error)))
                .bind(micros(now))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            status
        });
        Ok(status)
    }

    async fn list(&self, q: &ListMessages) -> Result<MessagePage, StoreError> {
        let after = q.page_token.map(|t| (t.created_us, t.id));
        let mut conds: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if after.is_some() {
            let (a, b) = (next(), next());
            conds.push(format!(
                "(created_us < ${a} OR (created_us = ${a} AND id < ${b}))"
            ));
        }
        if q.status.is_some() {
            conds.push(format!("status = ${}", next()));
        }
        if q.recipient.is_some() {
            conds.push(format!("recipient = ${}", next()));
        }
        let limit = next();
        let where_ = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM courier_messages {where_} ORDER BY created_us DESC, id DESC LIMIT ${limit}"
        );
        let size = q.page_size.max(1);
        let rows: Vec<MessageRow> = on_pool!(&self.db, pool, {
            let mut query = sqlx::query_as(&sql);
            if let Some((us, id)) = after {
                query = query.bind(us).bind(id);
            }
            if let Some(s) = q.status {
                query = query.bind(s.as_str());
            }
            if let Some(r) = &q.recipient {
                query = query.bind(r);
            }
            query.bind(i64::from(size) + 1).fetch_all(pool).await?
        });
        let more = rows.len() > size as usize;
        let rows: Vec<MessageRow> = rows.into_iter().take(size as usize).collect();
        let next_page_token = if more {
            rows.last().map(|r| PageToken {
                created_us: r.created_us,
                id: r.id,
            })
        } else {
            None
        };
        Ok(MessagePage {
            messages: rows
                .into_iter()
                .map(MessageRow::into_message)
                .collect::<Result<_, _>>()?,
            next_page_token,
        })
    }

    async fn get(&self, id: Uuid) -> Result<Message, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM courier_messages WHERE id = $1");
        let row: Option<MessageRow> = on_pool!(&self.db, pool, {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        let mut m = row.ok_or(StoreError::NotFound)?.into_message()?;
        let mut rows: Vec<DispatchRow> = on_pool!(&self.db, pool, {
            sqlx::query_as(
                "SELECT id, message_id, status, error, created_us, created_at, updated_at \
                 FROM courier_message_dispatches WHERE message_id = $1",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        rows.sort_by(|a, b| b.created_us.cmp(&a.created_us).then(b.id.cmp(&a.id)));
        m.dispatches = rows
            .into_iter()
            .map(|r| {
                Ok(Dispatch {
                    id: r.id,
                    message_id: r.message_id,
                    status: r.status.parse().map_err(|_| corrupt("dispatch status"))?,
                    error: r.error.map(|j| j.0),
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(m)
    }

    async fn count_by_status(&self) -> Result<BTreeMap<MessageStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(&self.db, pool, {
            sqlx::query_as("SELECT status, COUNT(*) FROM courier_messages GROUP BY status")
                .fetch_all(pool)
                .await?
        });
        let mut out: BTreeMap<MessageStatus, u64> =
            MessageStatus::ALL.iter().map(|&s| (s, 0)).collect();
        for (s, n) in rows {
            let s: MessageStatus = s.parse().map_err(|_| corrupt("status"))?;
            out.insert(s, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }
}
