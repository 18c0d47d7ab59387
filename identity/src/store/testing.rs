//! Test support: databases for the conformance suites and the integration harness.

use super::{Db, StoreError};
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::str::FromStr;

/// A fresh, empty PostgreSQL schema for one test; returns a DSN whose connections use it. Every call gets its own
/// schema, so tests run in parallel. An unreachable server is an error; it never falls back.
pub async fn empty_postgres(url: &str) -> Result<String, StoreError> {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let base = PgConnectOptions::from_str(url).map_err(|e| StoreError::Dsn(e.to_string()))?;
    let mut conn = sqlx::PgConnection::connect_with(&base).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(with_search_path(url, &schema))
}

/// As [`empty_postgres`], migrated and connected.
pub async fn isolated_postgres(url: &str) -> Result<(Db, String), StoreError> {
    let dsn = empty_postgres(url).await?;
    let db = Db::connect(&dsn).await?;
    db.migrate().await?;
    Ok((db, dsn))
}

/// A PostgreSQL DSN whose connections use `schema` first.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A migrated SQLite database in a file under `dir`.
pub async fn sqlite_file(dir: &std::path::Path) -> Result<(Db, String), StoreError> {
    let dsn = format!(
        "sqlite://{}/portcullis-{}.db?mode=rwc",
        dir.display(),
        uuid::Uuid::new_v4().simple()
    );
    let db = Db::connect(&dsn).await?;
    db.migrate().await?;
    Ok((db, dsn))
}
