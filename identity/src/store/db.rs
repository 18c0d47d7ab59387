//! The connection pool, picked once from the DSN, and the migrators.

use super::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which SQL engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file or in memory).
    Sqlite,
    /// PostgreSQL (or a wire-compatible engine).
    Postgres,
}

/// A connection pool to one of the supported backends.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`. The body is compiled once per backend, so
/// the same query text and row types serve both.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident, $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to the database named by `dsn`:
    /// `memory` or `sqlite::memory:` (private in-memory SQLite), `sqlite://path/to/file.db[?mode=rwc]`,
    /// `postgres://…` / `postgresql://…`. Go-driver parameters that Kratos DSNs carry (`_fk`, `_busy_timeout`,
    /// …) are accepted and ignored.
    pub async fn connect(dsn: &str) -> Result<Self, StoreError> {
        match Backend::of(dsn)? {
            Backend::Sqlite => {
                let opts = sqlite_options(dsn)?;
                let memory = is_memory(dsn);
                let pool = SqlitePoolOptions::new()
                    // An in-memory database lives as long as its one connection.
                    .max_connections(if memory { 1 } else { 8 })
                    .min_connections(if memory { 1 } else { 0 })
                    .idle_timeout(if memory {
                        None
                    } else {
                        Some(Duration::from_secs(600))
                    })
                    .max_lifetime(if memory {
                        None
                    } else {
                        Some(Duration::from_secs(1800))
                    })
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
            Backend::Postgres => {
                let opts = PgConnectOptions::from_str(dsn)
                    .map_err(|e| StoreError::Dsn(redact_error(dsn, &e.to_string())))?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending migration for this backend. Safe to run from several replicas at once on
    /// PostgreSQL (the migrator takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        on_pool!(self, pool, {
            self.migrator().run(pool).await.map_err(StoreError::Migrate)
        })
    }

    /// Versions of migrations that are known to the binary but not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied: Vec<i64> = on_pool!(self, pool, {
            let exists = match self {
                Self::Sqlite(_) => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                Self::Postgres(_) => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            };
            let n: i64 = sqlx::query_scalar(exists).fetch_one(pool).await?;
            if n == 0 {
                Vec::new()
            } else {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                    .fetch_all(pool)
                    .await?
            }
        });
        Ok(self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Self::Sqlite(_) => &SQLITE_MIGRATIONS,
            Self::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool, pool.close().await)
    }
}

impl Backend {
    /// The backend a DSN names.
    pub fn of(dsn: &str) -> Result<Self, StoreError> {
        if dsn == "memory" || dsn.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            let scheme = dsn.split(':').next().unwrap_or_default();
            Err(StoreError::Dsn(format!(
                "unsupported database scheme {scheme:?}: use sqlite://, postgres:// or memory"
            )))
        }
    }
}

fn is_memory(dsn: &str) -> bool {
    dsn == "memory" || dsn.starts_with("sqlite::memory:") || dsn.contains("mode=memory")
}

fn sqlite_options(dsn: &str) -> Result<SqliteConnectOptions, StoreError> {
    let opts = if is_memory(dsn) {
        SqliteConnectOptions::from_str("sqlite::memory:")
    } else {
        // Drop Go-driver parameters (`_fk=true`, `_busy_timeout=…`) that Kratos DSNs carry.
        let (base, query) = dsn.split_once('?').unwrap_or((dsn, ""));
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with('_'))
            .collect();
        let cleaned = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        SqliteConnectOptions::from_str(&cleaned)
    }
    .map_err(|e| StoreError::Dsn(e.to_string()))?;
    Ok(opts
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5)))
}

/// Removes the password of a DSN from an error text.
fn redact_error(dsn: &str, text: &str) -> String {
    match url::Url::parse(dsn)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(pw) if !pw.is_empty() => text.replace(&pw, "***"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_picked_from_the_scheme() {
        assert_eq!(Backend::of("memory").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of("sqlite:///tmp/x.db?_fk=true").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        let err = Backend::of("mysql://u@h/db").unwrap_err().to_string();
        assert!(err.contains("\"mysql\""), "{err}");
    }

    #[tokio::test]
    async fn kratos_style_sqlite_dsn_connects_and_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let dsn = format!("sqlite://{}/k.db?_fk=true&mode=rwc", dir.path().display());
        let db = Db::connect(&dsn).await.unwrap();
        assert!(!db.pending_migrations().await.unwrap().is_empty());
        db.migrate().await.unwrap();
        assert!(db.pending_migrations().await.unwrap().is_empty());
        db.migrate().await.unwrap(); // idempotent
    }
}
