//! Flow persistence: the trait the flow engine uses and its SQL implementation on [`identity::Db`].

use crate::flow::{Flow, FlowKind};
use async_trait::async_trait;
use identity::{on_pool, Db, StoreError};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

/// Flow storage.
#[async_trait]
pub trait FlowPool: Send + Sync {
    /// Stores a new flow.
    async fn create_flow(&self, flow: &Flow) -> Result<(), StoreError>;
    /// Loads a flow of the given kind ([`StoreError::NotFound`] for other kinds).
    async fn get_flow(&self, kind: FlowKind, id: Uuid) -> Result<Flow, StoreError>;
    /// Saves a changed flow.
    async fn update_flow(&self, flow: &Flow) -> Result<(), StoreError>;
    /// Deletes flows that expired before `before`; returns how many.
    async fn delete_expired_flows(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// A stored self-service error (`GET /self-service/errors?id=`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredError {
    /// Error id.
    pub id: Uuid,
    /// The Kratos error object (`{code, status, reason, message, ...}`).
    pub error: Value,
    /// When the error UI first fetched it.
    pub seen_at: Option<OffsetDateTime>,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Self-service error storage.
#[async_trait]
pub trait ErrorPool: Send + Sync {
    /// Stores an error; returns its id.
    async fn create_error(&self, error: &Value, now: OffsetDateTime) -> Result<Uuid, StoreError>;
    /// Loads an error and marks it seen.
    async fn read_error(&self, id: Uuid, now: OffsetDateTime) -> Result<StoredError, StoreError>;
    /// Deletes errors created before `before`; returns how many.
    async fn delete_old_errors(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

const COLUMNS: &str = "id, kind, type, state, expires_at, issued_at, request_url, return_to, active, ui, \
     csrf_token, identity_id, session_id, refresh, requested_aal, transient_payload, internal_context, \
     created_at, updated_at";

/// `INSERT INTO selfservice_flows` with every column bound, for either backend (the outbox reuses it inside its
/// transaction).
macro_rules! insert_flow_query {
    ($f:expr) => {{
        let f: &$crate::flow::Flow = $f;
        sqlx::query($crate::store::INSERT_FLOW)
            .bind(f.id)
            .bind(f.kind.as_str())
            .bind(f.flow_type.as_str())
            .bind(f.state.as_str())
            .bind(f.expires_at)
            .bind(f.issued_at)
            .bind(&f.request_url)
            .bind(f.return_to.as_deref())
            .bind(f.active.as_deref())
            .bind(sqlx::types::Json(&f.ui))
            .bind(&f.csrf_token)
            .bind(f.identity_id)
            .bind(f.session_id)
            .bind(f.refresh)
            .bind(f.requested_aal.as_str())
            .bind(f.transient_payload.as_ref().map(sqlx::types::Json))
            .bind(sqlx::types::Json(&f.internal_context))
            .bind(f.created_at)
            .bind(f.updated_at)
    }};
}
pub(crate) use insert_flow_query;

/// `UPDATE selfservice_flows` of a changed flow, for either backend.
macro_rules! update_flow_query {
    ($f:expr) => {{
        let f: &$crate::flow::Flow = $f;
        sqlx::query($crate::store::UPDATE_FLOW)
            .bind(f.id)
            .bind(f.state.as_str())
            .bind(f.expires_at)
            .bind(f.return_to.as_deref())
            .bind(f.active.as_deref())
            .bind(sqlx::types::Json(&f.ui))
            .bind(&f.csrf_token)
            .bind(f.identity_id)
            .bind(f.session_id)
            .bind(f.refresh)
            .bind(f.requested_aal.as_str())
            .bind(f.transient_payload.as_ref().map(sqlx::types::Json))
            .bind(sqlx::types::Json(&f.internal_context))
            .bind(f.updated_at)
    }};
}
pub(crate) use update_flow_query;

pub(crate) const INSERT_FLOW: &str = "INSERT INTO selfservice_flows (id, kind, type, state, expires_at, issued_at, \
     request_url, return_to, active, ui, csrf_token, identity_id, session_id, refresh, requested_aal, \
     transient_payload, internal_context, created_at, updated_at) VALUES \
     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

pub(crate) const UPDATE_FLOW: &str = "UPDATE selfservice_flows SET state = $2, expires_at = $3, return_to = $4, \
     active = $5, ui = $6, csrf_token = $7, identity_id = $8, session_id = $9, refresh = $10, requested_aal = $11, \
     transient_payload = $12, internal_context = $13, updated_at = $14 WHERE id = $1";

#[derive(FromRow)]
struct FlowRow {
    id: Uuid,
    kind: String,
    #[sqlx(rename = "type")]
    flow_type: String,
    state: String,
    expires_at: OffsetDateTime,
    issued_at: OffsetDateTime,
    request_url: String,
    return_to: Option<String>,
    active: Option<String>,
    ui: Json<Value>,
    csrf_token: String,
    identity_id: Option<Uuid>,
    session_id: Option<Uuid>,
    refresh: bool,
    requested_aal: String,
    transient_payload: Option<Json<Value>>,
    internal_context: Json<Value>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(sqlx::Error::Decode(
        format!("unexpected {what} in selfservice_flows").into(),
    ))
}

impl FlowRow {
    fn into_flow(self) -> Result<Flow, StoreError> {
        Ok(Flow {
            id: self.id,
            kind: self.kind.parse().map_err(|_| corrupt("kind"))?,
            flow_type: self.flow_type.parse().map_err(|_| corrupt("type"))?,
            state: self.state.parse().map_err(|_| corrupt("state"))?,
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            request_url: self.request_url,
            return_to: self.return_to,
            active: self.active,
            ui: serde_json::from_value(self.ui.0).map_err(|_| corrupt("ui"))?,
            csrf_token: self.csrf_token,
            identity_id: self.identity_id,
            session_id: self.session_id,
            refresh: self.refresh,
            requested_aal: self.requested_aal.parse().map_err(|_| corrupt("aal"))?,
            transient_payload: self.transient_payload.map(|j| j.0),
            internal_context: self.internal_context.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The flow store on SQL.
#[derive(Debug, Clone)]
pub struct SqlFlowPool {
    db: Db,
}

impl SqlFlowPool {
    /// Wraps a database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl FlowPool for SqlFlowPool {
    async fn create_flow(&self, f: &Flow) -> Result<(), StoreError> {
        on_pool!(&self.db, pool, {
            insert_flow_query!(f).execute(pool).await?;
        });
        Ok(())
    }

    async fn get_flow(&self, kind: FlowKind, id: Uuid) -> Result<Flow, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM selfservice_flows WHERE id = $1 AND kind = $2");
        let row: Option<FlowRow> = on_pool!(&self.db, pool, {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(kind.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.ok_or(StoreError::NotFound)?.into_flow()
    }

    async fn update_flow(&self, f: &Flow) -> Result<(), StoreError> {
        let done = on_pool!(&self.db, pool, {
            update_flow_query!(f).execute(pool).await?.rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_expired_flows(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(on_pool!(&self.db, pool, {
            sqlx::query("DELETE FROM selfservice_flows WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

#[derive(FromRow)]
struct ErrorRow {
    id: Uuid,
    error: Json<Value>,
    seen_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[async_trait]
impl ErrorPool for SqlFlowPool {
    async fn create_error(&self, error: &Value, now: OffsetDateTime) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        on_pool!(&self.db, pool, {
            sqlx::query(
                "INSERT INTO selfservice_errors (id, error, seen_at, was_seen, created_at, updated_at) \
                 VALUES ($1, $2, NULL, FALSE, $3, $3)",
            )
            .bind(id)
            .bind(Json(error))
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(id)
    }

    async fn read_error(&self, id: Uuid, now: OffsetDateTime) -> Result<StoredError, StoreError> {
        let row: Option<ErrorRow> = on_pool!(&self.db, pool, {
            sqlx::query_as(
                "SELECT id, error, seen_at, created_at, updated_at FROM selfservice_errors WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let row = row.ok_or(StoreError::NotFound)?;
        if row.seen_at.is_none() {
            on_pool!(&self.db, pool, {
                sqlx::query(
                    "UPDATE selfservice_errors SET seen_at = $2, was_seen = TRUE, updated_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
            });
        }
        Ok(StoredError {
            id: row.id,
            error: row.error.0,
            seen_at: row.seen_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    async fn delete_old_errors(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(on_pool!(&self.db, pool, {
            sqlx::query("DELETE FROM selfservice_errors WHERE created_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

#[cfg(test)]
mod conformance {
    use super::*;
    use crate::flow::FlowType;
    use serde_json::json;
    use time::macros::datetime;
    use time::Duration;

    async fn run_all(pool: SqlFlowPool) {
        let now = datetime!(2026-02-03 04:05:06.789 UTC);
        let mut f = Flow::new(
            FlowKind::Login,
            FlowType::Browser,
            "http://127.0.0.1:4433/self-service/login/browser?return_to=x".into(),
            now,
            Duration::hours(1),
        );
        f.return_to = Some("http://app.local/".into());
        f.ui = crate::ui::UiContainer::new("x");
        f.csrf_token = "tok".into();
        f.transient_payload = Some(json!({"a": 1}));
        pool.create_flow(&f).await.unwrap();
        assert_eq!(
            pool.get_flow(FlowKind::Login, f.id).await.unwrap(),
            f,
            "round trip"
        );
        assert!(
            matches!(
                pool.get_flow(FlowKind::Registration, f.id).await,
                Err(StoreError::NotFound)
            ),
            "a login flow is not a registration flow"
        );
        f.state = crate::flow::FlowState::PassedChallenge;
        f.active = Some("password".into());
        f.transient_payload = None;
        f.updated_at = now + Duration::minutes(1);
        pool.update_flow(&f).await.unwrap();
        assert_eq!(pool.get_flow(FlowKind::Login, f.id).await.unwrap(), f);
        let ghost = Flow::new(
            FlowKind::Login,
            FlowType::Api,
            "y".into(),
            now,
            Duration::hours(1),
        );
        assert!(matches!(
            pool.update_flow(&ghost).await,
            Err(StoreError::NotFound)
        ));
        let old = Flow::new(
            FlowKind::Registration,
            FlowType::Api,
            "z".into(),
            now - Duration::days(2),
            Duration::hours(1),
        );
        pool.create_flow(&old).await.unwrap();
        assert_eq!(
            pool.delete_expired_flows(now - Duration::days(1))
                .await
                .unwrap(),
            1
        );
        assert!(matches!(
            pool.get_flow(FlowKind::Registration, old.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(pool.get_flow(FlowKind::Login, f.id).await.is_ok());
        errors(&pool, now).await;
    }

    async fn errors(pool: &SqlFlowPool, now: OffsetDateTime) {
        let body = json!({"code": 403, "status": "Forbidden", "id": "security_csrf_violation", "message": "m"});
        let id = pool.create_error(&body, now).await.unwrap();
        let first = pool
            .read_error(id, now + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(first.error, body);
        assert_eq!(first.seen_at, None, "the first read sees it unseen");
        let second = pool
            .read_error(id, now + Duration::seconds(9))
            .await
            .unwrap();
        assert_eq!(second.seen_at, Some(now + Duration::seconds(5)));
        assert!(matches!(
            pool.read_error(Uuid::new_v4(), now).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            pool.delete_old_errors(now + Duration::seconds(1))
                .await
                .unwrap(),
            1
        );
        assert!(matches!(
            pool.read_error(id, now).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn flow_pool_conformance_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = identity::store::testing::sqlite_file(dir.path())
            .await
            .unwrap();
        run_all(SqlFlowPool::new(db)).await;
    }

    #[tokio::test]
    async fn flow_pool_conformance_postgres() {
        // Runs when TEST_DATABASE_URL is set (CI always sets it); an unreachable server fails the test.
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        let (db, _) = identity::store::testing::isolated_postgres(&url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
        run_all(SqlFlowPool::new(db)).await;
    }
}
