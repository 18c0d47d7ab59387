//! Continuity containers, as Kratos' `continuity` package: state that must survive a redirect round trip, such as
//! a settings change that waits for the refresh sign-in it asked for.
//!
//! A container is a row (`continuity_containers`: id, identity, name, payload, expiry) plus the browser's
//! `ory_kratos_continuity` cookie, which names the containers that browser paused (`name → id`). The cookie is
//! sealed with the cookie cipher ([`CookieCodec::seal_for`], `secrets.cookie`, rotation aware), so a browser can
//! neither read nor forge it, and only the browser that paused a container can resume it. [`Continuity::pause`]
//! stores a container and returns the cookie to set; [`Continuity::resume`] hands the payload back once (the row
//! is deleted, and only the caller whose delete removed it gets the payload), and never for an expired container
//! or a container of another identity. A caller whose use of the payload failed puts the container back with
//! [`Continuity::restore`], to be resumed again.
//!
//! # Secrecy of the payload
//!
//! Kratos keeps the payload (for a password change: the new password) as plain JSON in the row. Here the payload
//! is sealed with the same cipher before it is stored, bound to the container's id and name, so the row holds only
//! `{"sealed": "…"}`: someone who reads the database (or a backup) without `secrets.cookie` learns neither the
//! password nor the traits, and a sealed payload cannot be moved to another row. It is opened only in
//! [`Continuity::resume`]. Rows live at most their lifespan (15 minutes for settings), are deleted when resumed,
//! and expired rows are swept ([`Continuity::sweep`]). Rotating `secrets.cookie` keeps containers readable while
//! the old secret stays listed; removing it voids them, as it voids session cookies.

use async_trait::async_trait;
use identity::session::cookie::CookieCodec;
use identity::{on_pool, Db, SharedClock, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The cookie that names a browser's containers (Kratos' name).
pub const COOKIE_NAME: &str = "ory_kratos_continuity";

/// Purpose label of the cookie's sealed value.
const COOKIE_PURPOSE: &[u8] = b"portcullis continuity cookie v1";
/// Purpose label of a sealed payload (followed by the container's id and name).
const PAYLOAD_PURPOSE: &[u8] = b"portcullis continuity payload v1\0";
/// Longest cookie value we try to open.
const MAX_COOKIE_LEN: usize = 4096;
/// Longest sealed payload we try to open.
const MAX_SEALED_PAYLOAD_LEN: usize = 1 << 20;
/// At most this many containers are named by one cookie; the ones expiring first give way.
const MAX_ENTRIES: usize = 8;

/// A stored container.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Row id.
    pub id: Uuid,
    /// The identity that paused it, if any; only that identity resumes it.
    pub identity_id: Option<Uuid>,
    /// What it is for (also its key in the cookie).
    pub name: String,
    /// The payload. [`Continuity`] stores it sealed and returns it opened.
    pub payload: Value,
    /// When it stops being resumable.
    pub expires_at: OffsetDateTime,
    /// Creation.
    pub created_at: OffsetDateTime,
}

impl Container {
    /// Whether it can no longer be resumed at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}

/// Container storage.
#[async_trait]
pub trait ContinuityPool: Send + Sync {
    /// Stores a new container.
    async fn save_container(&self, container: &Container) -> Result<(), StoreError>;
    /// Loads a container ([`StoreError::NotFound`] when there is none).
    async fn get_container(&self, id: Uuid) -> Result<Container, StoreError>;
    /// Deletes a container; whether a row went.
    async fn delete_container(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Deletes containers that expired before `before`; returns how many.
    async fn delete_expired_containers(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

#[derive(FromRow)]
struct ContainerRow {
    id: Uuid,
    identity_id: Option<Uuid>,
    name: String,
    payload: Json<Value>,
    expires_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

/// The container store on SQL (SQLite and PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlContinuityPool {
    db: Db,
}

impl SqlContinuityPool {
    /// Wraps a database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ContinuityPool for SqlContinuityPool {
    async fn save_container(&self, c: &Container) -> Result<(), StoreError> {
        on_pool!(&self.db, pool, {
            sqlx::query(
                "INSERT INTO continuity_containers (id, identity_id, name, payload, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(c.id)
            .bind(c.identity_id)
            .bind(&c.name)
            .bind(Json(&c.payload))
            .bind(c.expires_at)
            .bind(c.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    async fn get_container(&self, id: Uuid) -> Result<Container, StoreError> {
        let row: Option<ContainerRow> = on_pool!(&self.db, pool, {
            sqlx::query_as(
                "SELECT id, identity_id, name, payload, expires_at, created_at FROM continuity_containers \
                 WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let row = row.ok_or(StoreError::NotFound)?;
        Ok(Container {
            id: row.id,
            identity_id: row.identity_id,
            name: row.name,
            payload: row.payload.0,
            expires_at: row.expires_at,
            created_at: row.created_at,
        })
    }

    async fn delete_container(&self, id: Uuid) -> Result<bool, StoreError> {
        let n = on_pool!(&self.db, pool, {
            sqlx::query("DELETE FROM continuity_containers WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    async fn delete_expired_containers(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(on_pool!(&self.db, pool, {
            sqlx::query("DELETE FROM continuity_containers WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

/// Why pausing failed.
#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    /// Containers need a name.
    #[error("a continuity container needs a name")]
    EmptyName,
    /// The lifespan is not positive, or the expiry is out of range.
    #[error("the continuity container's lifespan is out of range")]
    Lifespan,
    /// Nothing could be sealed (no `secrets.cookie`).
    #[error("continuity containers cannot be sealed without a cookie secret")]
    Seal,
    /// Persistence failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cookie value to set, and until when it is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCookie {
    /// The value of [`COOKIE_NAME`].
    pub value: String,
    /// The latest expiry of the containers it names (the cookie's lifetime).
    pub expires_at: OffsetDateTime,
}

/// What to do with the browser's cookie after [`Continuity::resume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieUpdate {
    /// Leave it as it is.
    Keep,
    /// Replace it.
    Set(SealedCookie),
    /// Remove it.
    Clear,
}

/// The result of [`Continuity::resume`].
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// The container, with its payload opened. Its row is gone: nobody resumes it again, unless it is put back
    /// ([`Continuity::restore`]).
    Resumed(Container),
    /// The cookie names no such container (no cookie, one that does not open, or another name).
    NotFound,
    /// The container expired (its row is deleted now) or was already resumed.
    Expired,
    /// The container belongs to another identity; it is left alone.
    OtherIdentity,
}

impl Resume {
    /// The resumed payload, if any.
    pub fn payload(self) -> Option<Value> {
        match self {
            Resume::Resumed(c) => Some(c.payload),
            _ => None,
        }
    }
}

/// One container named by the cookie.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Entry {
    id: Uuid,
    /// Expiry, Unix seconds.
    exp: i64,
}

type Entries = BTreeMap<String, Entry>;

/// Pauses and resumes containers.
#[derive(Clone)]
pub struct Continuity {
    pool: Arc<dyn ContinuityPool>,
    codec: CookieCodec,
    clock: SharedClock,
}

impl std::fmt::Debug for Continuity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Continuity").finish_non_exhaustive()
    }
}

fn payload_purpose(id: Uuid, name: &str) -> Vec<u8> {
    let mut p = PAYLOAD_PURPOSE.to_vec();
    p.extend_from_slice(id.as_bytes());
    p.extend_from_slice(name.as_bytes());
    p
}

impl Continuity {
    /// A manager that stores containers in `pool` and seals with `codec` (built from `secrets.cookie`).
    pub fn new(pool: Arc<dyn ContinuityPool>, codec: CookieCodec, clock: SharedClock) -> Self {
        Self { pool, codec, clock }
    }

    /// The containers a cookie names, without the expired ones. A cookie that does not open names none.
    fn entries(&self, cookie: &str, now: OffsetDateTime) -> Option<Entries> {
        let plain = self
            .codec
            .open_for(COOKIE_PURPOSE, cookie, MAX_COOKIE_LEN)?;
        let mut entries: Entries = serde_json::from_slice(&plain).ok()?;
        let now = now.unix_timestamp();
        entries.retain(|_, e| e.exp > now);
        Some(entries)
    }

    fn seal_entries(&self, entries: &Entries) -> Result<CookieUpdate, ContinuityError> {
        let Some(latest) = entries.values().map(|e| e.exp).max() else {
            return Ok(CookieUpdate::Clear);
        };
        let plain = serde_json::to_vec(entries).map_err(|_| ContinuityError::Seal)?;
        let value = self
            .codec
            .seal_for(COOKIE_PURPOSE, &plain)
            .ok_or(ContinuityError::Seal)?;
        let expires_at =
            OffsetDateTime::from_unix_timestamp(latest).map_err(|_| ContinuityError::Lifespan)?;
        Ok(CookieUpdate::Set(SealedCookie { value, expires_at }))
    }

    /// The stored form of a container's payload: sealed, bound to its id and name.
    fn seal_payload(
        &self,
        id: Uuid,
        name: &str,
        payload: &Value,
    ) -> Result<Value, ContinuityError> {
        let plain = serde_json::to_vec(payload).map_err(|_| ContinuityError::Seal)?;
        let sealed = self
            .codec
            .seal_for(&payload_purpose(id, name), &plain)
            .ok_or(ContinuityError::Seal)?;
        Ok(json!({ "sealed": sealed }))
    }

    /// Stores `payload` under `name` for `identity_id`, resumable for `ttl`, and returns the container and the
    /// cookie to set. `cookie` is the browser's current [`COOKIE_NAME`] value: the new cookie keeps its other
    /// containers, and a container it named under the same `name` is deleted (the newest pause wins).
    pub async fn pause(
        &self,
        name: &str,
        identity_id: Option<Uuid>,
        payload: &Value,
        ttl: Duration,
        cookie: Option<&str>,
    ) -> Result<(Container, SealedCookie), ContinuityError> {
        if name.is_empty() {
            return Err(ContinuityError::EmptyName);
        }
        if !ttl.is_positive() {
            return Err(ContinuityError::Lifespan);
        }
        let now = self.clock.now();
        let expires_at = now.checked_add(ttl).ok_or(ContinuityError::Lifespan)?;
        let id = Uuid::new_v4();
        let sealed = self.seal_payload(id, name, payload)?;
        let container = Container {
            id,
            identity_id,
            name: name.to_owned(),
            payload: payload.clone(),
            expires_at,
            created_at: now,
        };
        let mut entries = cookie
            .and_then(|c| self.entries(c, now))
            .unwrap_or_default();
        let replaced = entries.insert(
            name.to_owned(),
            Entry {
                id,
                exp: expires_at.unix_timestamp(),
            },
        );
        while entries.len() > MAX_ENTRIES {
            let first = entries
                .iter()
                .filter(|(n, _)| n.as_str() != name)
                .min_by_key(|(_, e)| e.exp)
                .map(|(n, _)| n.clone());
            match first {
                Some(n) => entries.remove(&n),
                None => break,
            };
        }
        self.pool
            .save_container(&Container {
                payload: sealed,
                ..container.clone()
            })
            .await?;
        if let Some(old) = replaced {
            self.pool.delete_container(old.id).await?;
        }
        match self.seal_entries(&entries)? {
            CookieUpdate::Set(c) => Ok((container, c)),
            // The new entry is always there.
            CookieUpdate::Keep | CookieUpdate::Clear => Err(ContinuityError::Seal),
        }
    }

    /// Resumes the container that `cookie` names under `name`, for `identity_id`. Only a live container of that
    /// identity is resumed, and only once. The cookie update drops the entry of a resumed, expired or vanished
    /// container (and a cookie that does not open at all).
    pub async fn resume(
        &self,
        name: &str,
        cookie: Option<&str>,
        identity_id: Option<Uuid>,
    ) -> Result<(Resume, CookieUpdate), ContinuityError> {
        let Some(cookie) = cookie else {
            return Ok((Resume::NotFound, CookieUpdate::Keep));
        };
        let now = self.clock.now();
        let Some(mut entries) = self.entries(cookie, now) else {
            return Ok((Resume::NotFound, CookieUpdate::Clear));
        };
        let Some(entry) = entries.remove(name) else {
            let update = if entries.is_empty() {
                CookieUpdate::Clear
            } else {
                CookieUpdate::Keep
            };
            return Ok((Resume::NotFound, update));
        };
        let dropped = |entries: &Entries| self.seal_entries(entries);
        let container = match self.pool.get_container(entry.id).await {
            Ok(c) if c.name == name => c,
            Ok(_) | Err(StoreError::NotFound) => return Ok((Resume::Expired, dropped(&entries)?)),
            Err(e) => return Err(e.into()),
        };
        if container.is_expired(now) {
            self.pool.delete_container(container.id).await?;
            return Ok((Resume::Expired, dropped(&entries)?));
        }
        if container.identity_id != identity_id {
            return Ok((Resume::OtherIdentity, CookieUpdate::Keep));
        }
        // One use: of concurrent resumes, only the one whose delete removed the row goes on.
        if !self.pool.delete_container(container.id).await? {
            return Ok((Resume::Expired, dropped(&entries)?));
        }
        let payload = container
            .payload
            .get("sealed")
            .and_then(Value::as_str)
            .and_then(|s| {
                self.codec.open_for(
                    &payload_purpose(container.id, &container.name),
                    s,
                    MAX_SEALED_PAYLOAD_LEN,
                )
            })
            .and_then(|plain| serde_json::from_slice::<Value>(&plain).ok());
        let update = dropped(&entries)?;
        Ok(match payload {
            Some(payload) => (
                Resume::Resumed(Container {
                    payload,
                    ..container
                }),
                update,
            ),
            // Sealed with a secret that is no longer listed, or not ours.
            None => (Resume::Expired, update),
        })
    }

    /// Puts back a container that [`Continuity::resume`] handed out, when what it was resumed for failed before it
    /// completed: the same container (id, name, identity, expiry; the payload sealed again) is stored again, so the
    /// cookie that named it names it again and the next resume hands it out once more. An expired container is
    /// not put back.
    pub async fn restore(&self, container: &Container) -> Result<(), ContinuityError> {
        if container.is_expired(self.clock.now()) {
            return Ok(());
        }
        let sealed = self.seal_payload(container.id, &container.name, &container.payload)?;
        self.pool
            .save_container(&Container {
                payload: sealed,
                ..container.clone()
            })
            .await?;
        Ok(())
    }

    /// Deletes containers that expired; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.pool.delete_expired_containers(self.clock.now()).await
    }
}

#[cfg(test)]
mod conformance {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use identity::{Clock, IdentityPool, ManualClock};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-04 05:06:07.891 UTC);

    async fn person(db: &Db) -> Uuid {
        let i = identity::Identity::new("default", json!({"email": "ann@example.com"}), T0);
        db.create_identity(&i).await.unwrap();
        i.id
    }

    async fn pool_conformance(db: &Db) {
        let pool = SqlContinuityPool::new(db.clone());
        let ann = person(db).await;
        let c = Container {
            id: Uuid::new_v4(),
            identity_id: Some(ann),
            name: "ory_kratos_settings".into(),
            payload: json!({"sealed": "abc", "n": [1, 2]}),
            expires_at: T0 + Duration::minutes(15),
            created_at: T0,
        };
        pool.save_container(&c).await.unwrap();
        assert_eq!(pool.get_container(c.id).await.unwrap(), c, "round trip");
        assert!(
            matches!(pool.save_container(&c).await, Err(StoreError::Conflict(_))),
            "ids are unique"
        );
        let anonymous = Container {
            id: Uuid::new_v4(),
            identity_id: None,
            expires_at: T0 + Duration::minutes(1),
            ..c.clone()
        };
        pool.save_container(&anonymous).await.unwrap();
        assert_eq!(pool.get_container(anonymous.id).await.unwrap(), anonymous);
        assert!(matches!(
            pool.get_container(Uuid::new_v4()).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            pool.delete_expired_containers(T0 + Duration::minutes(1))
                .await
                .unwrap(),
            0,
            "expiring at the cutoff is not expired before it"
        );
        assert_eq!(
            pool.delete_expired_containers(T0 + Duration::minutes(2))
                .await
                .unwrap(),
            1
        );
        assert!(matches!(
            pool.get_container(anonymous.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(pool.delete_container(c.id).await.unwrap());
        assert!(!pool.delete_container(c.id).await.unwrap(), "already gone");
        assert!(matches!(
            pool.get_container(c.id).await,
            Err(StoreError::NotFound)
        ));
        // Deleting the identity deletes its containers.
        let again = Container {
            id: Uuid::new_v4(),
            ..c.clone()
        };
        pool.save_container(&again).await.unwrap();
        db.delete_identity(ann).await.unwrap();
        assert!(matches!(
            pool.get_container(again.id).await,
            Err(StoreError::NotFound)
        ));
    }

    fn manager(db: &Db, clock: &ManualClock, secrets: &[&str]) -> Continuity {
        Continuity::new(
            Arc::new(SqlContinuityPool::new(db.clone())),
            CookieCodec::new(secrets),
            Arc::new(clock.clone()),
        )
    }

    fn set(update: CookieUpdate) -> SealedCookie {
        match update {
            CookieUpdate::Set(c) => c,
            other => panic!("expected a new cookie, got {other:?}"),
        }
    }

    async fn manager_conformance(db: &Db) {
        let clock = ManualClock::new(T0);
        let m = manager(db, &clock, &["secret-one-0123456789"]);
        let pool = SqlContinuityPool::new(db.clone());
        let ann = Some(person(db).await);
        let bob = Some(Uuid::new_v4());
        let payload = json!({"method": "password", "password": "a secret passphrase 42"});
        let ttl = Duration::minutes(15);

        // Pause: the row holds the payload sealed, the cookie names the container.
        let (c, cookie) = m.pause("a", ann, &payload, ttl, None).await.unwrap();
        assert_eq!(c.payload, payload);
        assert_eq!(c.expires_at, T0 + ttl);
        assert_eq!(
            cookie.expires_at.unix_timestamp(),
            (T0 + ttl).unix_timestamp()
        );
        let row = pool.get_container(c.id).await.unwrap();
        assert_eq!(row.identity_id, ann);
        assert!(row.payload["sealed"].is_string(), "{}", row.payload);
        assert!(
            !row.payload.to_string().contains("passphrase"),
            "the row never holds the payload in clear: {}",
            row.payload
        );
        assert!(!cookie.value.contains(&c.id.to_string()));

        // Nothing resumes without the cookie, with a forged one, under another name or for another identity.
        assert_eq!(
            m.resume("a", None, ann).await.unwrap(),
            (Resume::NotFound, CookieUpdate::Keep)
        );
        assert_eq!(
            m.resume("a", Some("forged"), ann).await.unwrap(),
            (Resume::NotFound, CookieUpdate::Clear)
        );
        let session_cookie = CookieCodec::new(&["secret-one-0123456789"])
            .seal(&format!(
                "{{\"a\":{{\"id\":\"{}\",\"exp\":99999999999}}}}",
                c.id
            ))
            .unwrap();
        assert_eq!(
            m.resume("a", Some(&session_cookie), ann).await.unwrap().0,
            Resume::NotFound,
            "a value sealed for another purpose does not open"
        );
        assert_eq!(
            m.resume("b", Some(&cookie.value), ann).await.unwrap(),
            (Resume::NotFound, CookieUpdate::Keep)
        );
        assert_eq!(
            m.resume("a", Some(&cookie.value), bob).await.unwrap(),
            (Resume::OtherIdentity, CookieUpdate::Keep)
        );
        assert_eq!(
            m.resume("a", Some(&cookie.value), None).await.unwrap().0,
            Resume::OtherIdentity
        );
        let other_secret = manager(db, &clock, &["secret-two-0123456789"]);
        assert_eq!(
            other_secret
                .resume("a", Some(&cookie.value), ann)
                .await
                .unwrap()
                .0,
            Resume::NotFound
        );

        // Its identity resumes it, once; a rotated secret still opens it.
        let rotated = manager(
            db,
            &clock,
            &["secret-two-0123456789", "secret-one-0123456789"],
        );
        let (resumed, update) = rotated.resume("a", Some(&cookie.value), ann).await.unwrap();
        assert_eq!(resumed, Resume::Resumed(c.clone()));
        assert_eq!(update, CookieUpdate::Clear, "nothing else was paused");
        assert_eq!(
            m.resume("a", Some(&cookie.value), ann).await.unwrap(),
            (Resume::Expired, CookieUpdate::Clear),
            "one use"
        );
        assert!(matches!(
            pool.get_container(c.id).await,
            Err(StoreError::NotFound)
        ));

        // Two names in one cookie; pausing a name again replaces its container.
        let (a1, cookie) = m.pause("a", ann, &json!(1), ttl, None).await.unwrap();
        let (b1, cookie) = m
            .pause("b", ann, &json!(2), ttl, Some(&cookie.value))
            .await
            .unwrap();
        let (a2, cookie) = m
            .pause("a", ann, &json!(3), ttl, Some(&cookie.value))
            .await
            .unwrap();
        assert!(matches!(
            pool.get_container(a1.id).await,
            Err(StoreError::NotFound)
        ));
        let (resumed, update) = m.resume("a", Some(&cookie.value), ann).await.unwrap();
        assert_eq!(resumed.payload(), Some(json!(3)));
        assert_eq!(a2.payload, json!(3));
        let rest = set(update);
        assert_eq!(
            m.resume("a", Some(&rest.value), ann).await.unwrap(),
            (Resume::NotFound, CookieUpdate::Keep)
        );
        let (resumed, update) = m.resume("b", Some(&rest.value), ann).await.unwrap();
        assert_eq!(resumed, Resume::Resumed(b1));
        assert_eq!(update, CookieUpdate::Clear);

        // Expired containers are never resumed, and are deleted when tried.
        let (old, cookie) = m
            .pause("a", ann, &json!("late"), Duration::minutes(1), None)
            .await
            .unwrap();
        clock.advance(Duration::minutes(1));
        assert_eq!(
            m.resume("a", Some(&cookie.value), ann).await.unwrap(),
            (Resume::NotFound, CookieUpdate::Clear),
            "the cookie no longer names it"
        );
        // The row is swept after its expiry.
        assert!(pool.get_container(old.id).await.is_ok());
        assert_eq!(
            m.delete_expired().await.unwrap(),
            0,
            "not before its expiry"
        );
        clock.advance(Duration::seconds(1));
        assert_eq!(m.delete_expired().await.unwrap(), 1);
        assert!(matches!(
            pool.get_container(old.id).await,
            Err(StoreError::NotFound)
        ));
        // A cookie that outlived its container (it names it for longer): the expired row is deleted on the try.
        let (old, _) = m
            .pause("a", ann, &json!("late"), Duration::minutes(1), None)
            .await
            .unwrap();
        let entries: Entries = BTreeMap::from([(
            "a".to_owned(),
            Entry {
                id: old.id,
                exp: (clock.now() + Duration::days(1)).unix_timestamp(),
            },
        )]);
        let outlived = set(m.seal_entries(&entries).unwrap());
        clock.advance(Duration::minutes(2));
        assert_eq!(
            m.resume("a", Some(&outlived.value), ann).await.unwrap(),
            (Resume::Expired, CookieUpdate::Clear)
        );
        assert!(matches!(
            pool.get_container(old.id).await,
            Err(StoreError::NotFound)
        ));

        // Bad arguments, and time that would overflow.
        assert!(matches!(
            m.pause("", ann, &json!(1), ttl, None).await,
            Err(ContinuityError::EmptyName)
        ));
        assert!(matches!(
            m.pause("a", ann, &json!(1), Duration::ZERO, None).await,
            Err(ContinuityError::Lifespan)
        ));
        assert!(matches!(
            m.pause("a", ann, &json!(1), Duration::MAX, None).await,
            Err(ContinuityError::Lifespan)
        ));
        let none = manager(db, &clock, &[]);
        assert!(matches!(
            none.pause("a", ann, &json!(1), ttl, None).await,
            Err(ContinuityError::Seal)
        ));
    }

    /// Concurrent resumes of one container: exactly one gets the payload.
    async fn one_use_under_concurrency(db: &Db) {
        let clock = ManualClock::new(T0);
        let m = manager(db, &clock, &["secret-one-0123456789"]);
        let ann = Some(person(db).await);
        let (_, cookie) = m
            .pause("a", ann, &json!("once"), Duration::minutes(5), None)
            .await
            .unwrap();
        let tries = (0..8).map(|_| {
            let m = m.clone();
            let v = cookie.value.clone();
            tokio::spawn(async move { m.resume("a", Some(&v), ann).await.unwrap().0 })
        });
        let mut resumed = 0;
        for t in tries {
            if matches!(t.await.unwrap(), Resume::Resumed(_)) {
                resumed += 1;
            }
        }
        assert_eq!(resumed, 1);
    }

    async fn run_all(db: Db) {
        pool_conformance(&db).await;
        manager_conformance(&db).await;
        one_use_under_concurrency(&db).await;
    }

    #[tokio::test]
    async fn continuity_conformance_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = identity::store::testing::sqlite_file(dir.path())
            .await
            .unwrap();
        run_all(db).await;
    }

    #[tokio::test]
    async fn continuity_conformance_postgres() {
        // Runs when TEST_DATABASE_URL is set (CI always sets it); an unreachable server fails the test.
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        let (db, _) = identity::store::testing::isolated_postgres(&url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
        run_all(db).await;
    }
}
