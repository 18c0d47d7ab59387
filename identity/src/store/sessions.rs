//! [`SessionPool`] on SQL.

use super::{Db, StoreError};
use crate::on_pool;
use crate::session::pool::{ActiveFilter, SessionPool};
use crate::session::{Aal, AuthenticationMethod, Device, Session, TokenHash};
use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

const COLUMNS: &str =
    "id, identity_id, token_hash, logout_token_hash, active, issued_at, authenticated_at, \
     expires_at, aal, authentication_methods, created_at, updated_at";

const INSERT_DEVICE: &str = "INSERT INTO session_devices \
     (id, session_id, ip_address, user_agent, location, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

#[derive(FromRow)]
struct SessionRow {
    id: Uuid,
    identity_id: Uuid,
    token_hash: String,
    logout_token_hash: String,
    active: bool,
    issued_at: OffsetDateTime,
    authenticated_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    aal: String,
    authentication_methods: Json<Vec<AuthenticationMethod>>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(FromRow)]
struct DeviceRow {
    id: Uuid,
    session_id: Uuid,
    ip_address: Option<String>,
    user_agent: Option<String>,
    location: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(sqlx::Error::Decode(
        format!("unexpected {what} in the sessions table").into(),
    ))
}

impl SessionRow {
    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: self.id,
            identity_id: self.identity_id,
            token_hash: TokenHash::from_hex(&self.token_hash)
                .ok_or_else(|| corrupt("token hash"))?,
            logout_token_hash: TokenHash::from_hex(&self.logout_token_hash)
                .ok_or_else(|| corrupt("logout token hash"))?,
            active: self.active,
            issued_at: self.issued_at,
            authenticated_at: self.authenticated_at,
            expires_at: self.expires_at,
            aal: self.aal.parse::<Aal>().map_err(|_| corrupt("aal"))?,
            authentication_methods: self.authentication_methods.0,
            devices: Vec::new(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The SQL condition and its bound time for an [`ActiveFilter`], using parameter `$n`.
fn active_condition(filter: ActiveFilter, n: usize) -> (Option<String>, Option<OffsetDateTime>) {
    match filter {
        ActiveFilter::Any => (None, None),
        ActiveFilter::Active(now) => (
            Some(format!("active = TRUE AND expires_at > ${n}")),
            Some(now),
        ),
        ActiveFilter::Inactive(now) => (
            Some(format!("(active = FALSE OR expires_at <= ${n})")),
            Some(now),
        ),
    }
}

fn hashes(rows: Vec<String>) -> Vec<TokenHash> {
    rows.iter().filter_map(|h| TokenHash::from_hex(h)).collect()
}

impl Db {
    async fn with_devices(&self, rows: Vec<SessionRow>) -> Result<Vec<Session>, StoreError> {
        let mut sessions = rows
            .into_iter()
            .map(SessionRow::into_session)
            .collect::<Result<Vec<_>, _>>()?;
        if sessions.is_empty() {
            return Ok(sessions);
        }
        let marks = (1..=sessions.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT id, session_id, ip_address, user_agent, location, created_at, updated_at \
             FROM session_devices WHERE session_id IN ({marks}) ORDER BY created_at, id"
        );
        let devices: Vec<DeviceRow> = on_pool!(self, pool, {
            let mut q = sqlx::query_as(&sql);
            for s in &sessions {
                q = q.bind(s.id);
            }
            q.fetch_all(pool).await?
        });
        let index: HashMap<Uuid, usize> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, i))
            .collect();
        for d in devices {
            if let Some(&i) = index.get(&d.session_id) {
                sessions[i].devices.push(Device {
                    id: d.id,
                    ip_address: d.ip_address,
                    user_agent: d.user_agent,
                    location: d.location,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                });
            }
        }
        Ok(sessions)
    }

    async fn one_session(&self, column: &str, value: SessionKey) -> Result<Session, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE {column} = $1");
        let row: Option<SessionRow> = on_pool!(self, pool, {
            match &value {
                SessionKey::Id(id) => sqlx::query_as(&sql).bind(*id).fetch_optional(pool).await?,
                SessionKey::Hash(h) => {
                    sqlx::query_as(&sql)
                        .bind(h.as_str())
                        .fetch_optional(pool)
                        .await?
                }
            }
        });
        let row = row.ok_or(StoreError::NotFound)?;
        self.with_devices(vec![row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }
}

enum SessionKey {
    Id(Uuid),
    Hash(String),
}

#[async_trait]
impl SessionPool for Db {
    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(s.id)
            .bind(s.identity_id)
            .bind(s.token_hash.to_hex())
            .bind(s.logout_token_hash.to_hex())
            .bind(s.active)
            .bind(s.issued_at)
            .bind(s.authenticated_at)
            .bind(s.expires_at)
            .bind(s.aal.as_str())
            .bind(Json(&s.authentication_methods))
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(&mut *tx)
            .await?;
            for d in &s.devices {
                sqlx::query(INSERT_DEVICE)
                    .bind(d.id)
                    .bind(s.id)
                    .bind(d.ip_address.as_deref())
                    .bind(d.user_agent.as_deref())
                    .bind(d.location.as_deref())
                    .bind(d.created_at)
                    .bind(d.updated_at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn get_session(&self, id: Uuid) -> Result<Session, StoreError> {
        self.one_session("id", SessionKey::Id(id)).await
    }

    async fn get_session_by_token(&self, token: &TokenHash) -> Result<Session, StoreError> {
        self.one_session("token_hash", SessionKey::Hash(token.to_hex()))
            .await
    }

    async fn list_sessions(
        &self,
        active: ActiveFilter,
        after: Option<Uuid>,
        size: u32,
    ) -> Result<Vec<Session>, StoreError> {
        let (cond, at) = active_condition(active, 1);
        let mut conditions: Vec<String> = cond.into_iter().collect();
        let n = if at.is_some() { 2 } else { 1 };
        if after.is_some() {
            conditions.push(format!(
                "(created_at < (SELECT created_at FROM sessions WHERE id = ${n}) OR \
                 (created_at = (SELECT created_at FROM sessions WHERE id = ${n}) AND id < ${n}))"
            ));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions{where_clause} ORDER BY created_at DESC, id DESC LIMIT {size}"
        );
        let rows: Vec<SessionRow> = on_pool!(self, pool, {
            let mut q = sqlx::query_as(&sql);
            if let Some(t) = at {
                q = q.bind(t);
            }
            if let Some(a) = after {
                q = q.bind(a);
            }
            q.fetch_all(pool).await?
        });
        self.with_devices(rows).await
    }

    async fn list_identity_sessions(
        &self,
        identity_id: Uuid,
        active: ActiveFilter,
        except: Option<Uuid>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Session>, u64), StoreError> {
        let (cond, at) = active_condition(active, 3);
        let extra = cond.map(|c| format!(" AND {c}")).unwrap_or_default();
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE identity_id = $1 AND id <> $2{extra} \
             ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
        );
        let count_sql =
            format!("SELECT COUNT(*) FROM sessions WHERE identity_id = $1 AND id <> $2{extra}");
        let (rows, total): (Vec<SessionRow>, i64) = on_pool!(self, pool, {
            let skip = except.unwrap_or(Uuid::nil());
            let mut q = sqlx::query_as(&sql).bind(identity_id).bind(skip);
            let mut c = sqlx::query_scalar(&count_sql).bind(identity_id).bind(skip);
            if let Some(t) = at {
                q = q.bind(t);
                c = c.bind(t);
            }
            (q.fetch_all(pool).await?, c.fetch_one(pool).await?)
        });
        Ok((
            self.with_devices(rows).await?,
            u64::try_from(total).unwrap_or(0),
        ))
    }

    async fn revoke_session(&self, id: Uuid, now: OffsetDateTime) -> Result<TokenHash, StoreError> {
        let hash: Option<String> = on_pool!(self, pool, {
            sqlx::query_scalar("UPDATE sessions SET active = FALSE, updated_at = $2 WHERE id = $1 RETURNING token_hash")
                .bind(id)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        hash.and_then(|h| TokenHash::from_hex(&h))
            .ok_or(StoreError::NotFound)
    }

    async fn revoke_identity_sessions(
        &self,
        identity_id: Uuid,
        keep: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        let rows: Vec<String> = on_pool!(self, pool, {
            sqlx::query_scalar(
                "UPDATE sessions SET active = FALSE, updated_at = $2 \
                 WHERE identity_id = $1 AND active = TRUE AND expires_at > $2 AND id <> $3 RETURNING token_hash",
            )
            .bind(identity_id)
            .bind(now)
            .bind(keep.unwrap_or(Uuid::nil()))
            .fetch_all(pool)
            .await?
        });
        Ok(hashes(rows))
    }

    async fn delete_identity_sessions(
        &self,
        identity_id: Uuid,
    ) -> Result<Vec<TokenHash>, StoreError> {
        let rows: Vec<String> = on_pool!(self, pool, {
            sqlx::query_scalar("DELETE FROM sessions WHERE identity_id = $1 RETURNING token_hash")
                .bind(identity_id)
                .fetch_all(pool)
                .await?
        });
        Ok(hashes(rows))
    }

    async fn identity_token_hashes(&self, identity_id: Uuid) -> Result<Vec<TokenHash>, StoreError> {
        let rows: Vec<String> = on_pool!(self, pool, {
            sqlx::query_scalar("SELECT token_hash FROM sessions WHERE identity_id = $1")
                .bind(identity_id)
                .fetch_all(pool)
                .await?
        });
        Ok(hashes(rows))
    }

    async fn set_session_expiry(
        &self,
        id: Uuid,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Session, StoreError> {
        let done = on_pool!(self, pool, {
            sqlx::query("UPDATE sessions SET expires_at = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(expires_at)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_session(id).await
    }

    async fn add_device(&self, session_id: Uuid, d: &Device) -> Result<(), StoreError> {
        on_pool!(self, pool, {
            sqlx::query(INSERT_DEVICE)
                .bind(d.id)
                .bind(session_id)
                .bind(d.ip_address.as_deref())
                .bind(d.user_agent.as_deref())
                .bind(d.location.as_deref())
                .bind(d.created_at)
                .bind(d.updated_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
