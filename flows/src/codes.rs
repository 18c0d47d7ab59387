//! One-time codes for recovery and verification flows: generated from the OS RNG, stored only as an HMAC keyed with
//! a server secret (a six-digit code would fall to brute force as a plain hash), checked in constant time, used at
//! most once, and bound to the flow that sent them.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use identity::{on_pool, Db, StoreError};
use rand::Rng;
use sha2::Sha256;
use sqlx::FromRow;
use std::fmt::Write;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// Account recovery.
    Recovery,
    /// Address verification.
    Verification,
}

impl CodeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Recovery => "recovery",
            CodeKind::Verification => "verification",
        }
    }
}

/// A fresh six-digit code (leading zeros kept).
pub fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// The HMAC-SHA256 of a code under `secret`, hex-encoded. Surrounding white space is ignored, as people paste codes.
pub fn hash_code(secret: &[u8], code: &str) -> String {
    // Any key length is valid for HMAC; the fallback is unreachable.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(code.trim().as_bytes());
    let mut out = String::with_capacity(64);
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A code to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    /// What it is for.
    pub kind: CodeKind,
    /// The flow that sent it; only that flow can use it.
    pub flow_id: Uuid,
    /// The identity it unlocks (absent when the address is unknown).
    pub identity_id: Option<Uuid>,
    /// The address row it was sent to.
    pub address_id: Option<Uuid>,
    /// The address it was sent to.
    pub address: String,
    /// [`hash_code`] of the code.
    pub code_hmac: String,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A stored code (without its HMAC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Row id.
    pub id: Uuid,
    /// The flow that sent it.
    pub flow_id: Uuid,
    /// The identity it unlocks.
    pub identity_id: Option<Uuid>,
    /// The address row.
    pub address_id: Option<Uuid>,
    /// The address.
    pub address: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// When it was used.
    pub used_at: Option<OffsetDateTime>,
}

/// What checking a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code was right; it is now used.
    Used(CodeRecord),
    /// Wrong, expired, used or another flow's code.
    Wrong,
    /// The flow's code has had its `max_attempts` guesses; it is now void.
    Exhausted,
}

impl CodeCheck {
    /// The used code, if the check succeeded.
    pub fn used(self) -> Option<CodeRecord> {
        match self {
            Self::Used(r) => Some(r),
            _ => None,
        }
    }
}

/// Code storage.
#[async_trait]
pub trait CodePool: Send + Sync {
    /// Stores a code.
    async fn create_code(&self, code: &NewCode, now: OffsetDateTime) -> Result<Uuid, StoreError>;
    /// Uses the unused, unexpired code of this flow whose HMAC is `code_hmac`: marks it used and returns it. Each
    /// call first takes one of the flow's `max_attempts` guesses, atomically, so parallel guessing cannot exceed
    /// the limit; once they are spent the codes are void. Two concurrent uses of the right code get it once.
    async fn use_code(
        &self,
        kind: CodeKind,
        flow_id: Uuid,
        code_hmac: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<CodeCheck, StoreError>;
    /// Marks every unused code of a flow used (a resend replaces them; a finished flow needs none). Returns how many.
    async fn invalidate_codes(
        &self,
        kind: CodeKind,
        flow_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

/// `INSERT INTO selfservice_codes` for either backend (the outbox reuses it inside its transaction).
macro_rules! insert_code_query {
    ($id:expr, $code:expr, $now:expr) => {{
        let code: &$crate::codes::NewCode = $code;
        sqlx::query(
            "INSERT INTO selfservice_codes \
             (id, kind, flow_id, identity_id, address_id, address, code_hmac, expires_at, used_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
        )
        .bind($id)
        .bind(code.kind.as_str())
        .bind(code.flow_id)
        .bind(code.identity_id)
        .bind(code.address_id)
        .bind(&code.address)
        .bind(&code.code_hmac)
        .bind(code.expires_at)
        .bind($now)
    }};
}
pub(crate) use insert_code_query;

/// Marks the unused codes of a flow used (binds: kind, flow id, now).
pub(crate) const INVALIDATE_CODES: &str =
    "UPDATE selfservice_codes SET used_at = $3 WHERE kind = $1 AND flow_id = $2 AND used_at IS NULL";

/// [`CodePool`] on SQL.
#[derive(Debug, Clone)]
pub struct SqlCodePool {
    db: Db,
}

impl SqlCodePool {
    /// A pool on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[derive(FromRow)]
struct CodeRow {
    id: Uuid,
    flow_id: Uuid,
    identity_id: Option<Uuid>,
    address_id: Option<Uuid>,
    address: String,
    code_hmac: String,
    expires_at: OffsetDateTime,
}

#[async_trait]
impl CodePool for SqlCodePool {
    async fn create_code(&self, code: &NewCode, now: OffsetDateTime) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        on_pool!(&self.db, pool, {
            insert_code_query!(id, code, now).execute(pool).await?;
        });
        Ok(id)
    }

    async fn use_code(
        &self,
        kind: CodeKind,
        flow_id: Uuid,
        code_hmac: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<CodeCheck, StoreError> {
        let max = i64::from(max_attempts.max(1));
        // Take a guess first: only codes with guesses left take part.
        let reserved = on_pool!(&self.db, pool, {
            sqlx::query(
                "UPDATE selfservice_codes SET attempts = attempts + 1 \
                 WHERE kind = $1 AND flow_id = $2 AND used_at IS NULL AND attempts < $3",
            )
            .bind(kind.as_str())
            .bind(flow_id)
            .bind(max)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if reserved == 0 {
            let spent = on_pool!(&self.db, pool, {
                sqlx::query(
                    "UPDATE selfservice_codes SET used_at = $3 \
                     WHERE kind = $1 AND flow_id = $2 AND used_at IS NULL",
                )
                .bind(kind.as_str())
                .bind(flow_id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
            });
            return Ok(if spent > 0 {
                CodeCheck::Exhausted
            } else {
                CodeCheck::Wrong
            });
        }
        // A flow holds a handful of codes at most: compare them here, in constant time, rather than in SQL.
        let rows: Vec<CodeRow> = on_pool!(&self.db, pool, {
            sqlx::query_as(
                "SELECT id, flow_id, identity_id, address_id, address, code_hmac, expires_at \
                 FROM selfservice_codes WHERE kind = $1 AND flow_id = $2 AND used_at IS NULL AND attempts <= $3",
            )
            .bind(kind.as_str())
            .bind(flow_id)
            .bind(max)
            .fetch_all(pool)
            .await?
        });
        let Some(row) = rows.into_iter().find(|r| {
            bool::from(r.code_hmac.as_bytes().ct_eq(code_hmac.as_bytes())) && r.expires_at > now
        }) else {
            return Ok(CodeCheck::Wrong);
        };
        let claimed = on_pool!(&self.db, pool, {
            sqlx::query(
                "UPDATE selfservice_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
            )
            .bind(row.id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if claimed == 0 {
            return Ok(CodeCheck::Wrong);
        }
        Ok(CodeCheck::Used(CodeRecord {
            id: row.id,
            flow_id: row.flow_id,
            identity_id: row.identity_id,
            address_id: row.address_id,
            address: row.address,
            expires_at: row.expires_at,
            used_at: Some(now),
        }))
    }

    async fn invalidate_codes(
        &self,
        kind: CodeKind,
        flow_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(&self.db, pool, {
            sqlx::query(INVALIDATE_CODES)
                .bind(kind.as_str())
                .bind(flow_id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use identity::store::testing;
    use time::macros::datetime;
    use time::Duration;

    const SECRET: &[u8] = b"a server secret of some length";

    #[test]
    fn codes_are_six_digits_and_hashed_with_the_secret() {
        for _ in 0..100 {
            let c = new_code();
            assert_eq!(c.len(), 6, "{c}");
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
        let h = hash_code(SECRET, "012345");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_code(SECRET, " 012345\n"), "white space is ignored");
        assert_ne!(h, hash_code(b"another secret", "012345"));
        assert_ne!(h, hash_code(SECRET, "012346"));
    }

    async fn conformance(db: Db, name: &str) {
        let pool = SqlCodePool::new(db);
        let t0 = datetime!(2026-04-01 08:00:00 UTC);
        let flow = Uuid::new_v4();
        let new = |code: &str, flow_id: Uuid| NewCode {
            kind: CodeKind::Verification,
            flow_id,
            identity_id: None,
            address_id: Some(Uuid::new_v4()),
            address: "ada@example.com".into(),
            code_hmac: hash_code(SECRET, code),
            expires_at: t0 + Duration::minutes(15),
        };
        pool.create_code(&new("111111", flow), t0).await.unwrap();
        pool.create_code(&new("222222", Uuid::new_v4()), t0)
            .await
            .unwrap();
        let h = |c: &str| hash_code(SECRET, c);

        // Wrong code, another flow's code, another kind: nothing.
        for (kind, code) in [
            (CodeKind::Verification, "999999"),
            (CodeKind::Verification, "222222"),
            (CodeKind::Recovery, "111111"),
        ] {
            assert!(
                pool.use_code(kind, flow, &h(code), t0, 5)
                    .await
                    .unwrap()
                    .used()
                    .is_none(),
                "{name}: {kind:?} {code}"
            );
        }
        // The right one works once.
        let used = pool
            .use_code(CodeKind::Verification, flow, &h("111111"), t0, 5)
            .await
            .unwrap()
            .used()
            .unwrap();
        assert_eq!(used.flow_id, flow);
        assert_eq!(used.address, "ada@example.com");
        assert_eq!(used.used_at, Some(t0));
        assert!(pool
            .use_code(CodeKind::Verification, flow, &h("111111"), t0, 5)
            .await
            .unwrap()
            .used()
            .is_none());

        // Expiry is exclusive; invalidation ends the rest.
        let flow2 = Uuid::new_v4();
        pool.create_code(&new("333333", flow2), t0).await.unwrap();
        assert!(pool
            .use_code(
                CodeKind::Verification,
                flow2,
                &h("333333"),
                t0 + Duration::minutes(15),
                5
            )
            .await
            .unwrap()
            .used()
            .is_none());
        pool.create_code(&new("444444", flow2), t0).await.unwrap();
        assert_eq!(
            pool.invalidate_codes(CodeKind::Verification, flow2, t0)
                .await
                .unwrap(),
            2
        );
        assert!(pool
            .use_code(CodeKind::Verification, flow2, &h("444444"), t0, 5)
            .await
            .unwrap()
            .used()
            .is_none());

        // Guesses are limited per code, also when they arrive all at once.
        let flow3 = Uuid::new_v4();
        pool.create_code(&new("555555", flow3), t0).await.unwrap();
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let pool = pool.clone();
                let guess = h(&format!("{i:06}"));
                tokio::spawn(async move {
                    pool.use_code(CodeKind::Verification, flow3, &guess, t0, 3)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut results = Vec::new();
        for g in guesses {
            results.push(g.await.unwrap());
        }
        assert_eq!(
            results
                .iter()
                .filter(|r| **r == CodeCheck::Exhausted)
                .count(),
            1,
            "{name}: the guess after the third voids the code: {results:?}"
        );
        assert_eq!(
            pool.use_code(CodeKind::Verification, flow3, &h("555555"), t0, 3)
                .await
                .unwrap(),
            CodeCheck::Wrong,
            "{name}: after the guesses ran out even the right code fails"
        );
    }

    #[tokio::test]
    async fn code_pool_conformance_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = testing::sqlite_file(dir.path()).await.unwrap();
        conformance(db, "sqlite").await;
    }

    #[tokio::test]
    async fn code_pool_conformance_postgres() {
        // Runs when TEST_DATABASE_URL is set (CI always sets it); an unreachable server fails the test.
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        let (db, _) = testing::isolated_postgres(&url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
        conformance(db, "postgres").await;
    }
}
