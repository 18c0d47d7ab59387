//! Persistence: the store traits the rest of the product uses, and their sqlx implementation.
//!
//! The backend is picked once from the DSN ([`Db::connect`]). Both backends run the same queries (the SQL we use
//! is common to SQLite and PostgreSQL) and pass the same conformance suite.

mod db;
mod identities;
mod sessions;

pub use db::{Backend, Db};

use crate::model::{CredentialType, Identity};
use async_trait::async_trait;
use uuid::Uuid;

/// Errors of every store. The text of a backend error never reaches a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that key.
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated (duplicate identifier, address or external id).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend failed.
    #[error("database error: {0}")]
    Backend(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The DSN could not be used.
    #[error("invalid dsn: {0}")]
    Dsn(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.constraint().unwrap_or("unique").to_owned())
            }
            _ => Self::Backend(e),
        }
    }
}

/// Which page of identities to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Keyset: identities with an id greater than `after`.
    Keyset {
        /// The last id of the previous page.
        after: Option<Uuid>,
        /// How many.
        size: u32,
    },
    /// Offset pagination (legacy `page`/`per_page`).
    Offset {
        /// 0-based page number.
        page: u32,
        /// Items per page.
        per_page: u32,
    },
}

/// Filters for listing identities. At most one of `ids`, `credentials_identifier` and
/// `credentials_identifier_similar` is set (the API refuses combinations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListIdentities {
    /// Pagination.
    pub page: Page,
    /// Only these ids.
    pub ids: Vec<Uuid>,
    /// Exact credential identifier.
    pub credentials_identifier: Option<String>,
    /// Case-insensitive substring of a credential identifier.
    pub credentials_identifier_similar: Option<String>,
    /// Also load credentials (all of them, for the identifier filters, or these types).
    pub with_credentials: bool,
}

impl Default for ListIdentities {
    fn default() -> Self {
        Self {
            page: Page::Keyset {
                after: None,
                size: 250,
            },
            ids: Vec::new(),
            credentials_identifier: None,
            credentials_identifier_similar: None,
            with_credentials: false,
        }
    }
}

/// Which of an identity's address lists to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// `verifiable_addresses`.
    Verifiable,
    /// `recovery_addresses`.
    Recovery,
}

/// Identity persistence, as the admin API and the self-service flows use it.
#[async_trait]
pub trait IdentityPool: Send + Sync {
    /// Stores a new identity with its credentials and addresses, atomically.
    /// A duplicate credential identifier, address or external id is [`StoreError::Conflict`].
    async fn create_identity(&self, identity: &Identity) -> Result<(), StoreError>;

    /// Replaces an identity, its credentials and addresses, atomically.
    async fn update_identity(&self, identity: &Identity) -> Result<(), StoreError>;

    /// Loads an identity with its addresses and, if asked, its credentials.
    async fn get_identity(&self, id: Uuid, with_credentials: bool) -> Result<Identity, StoreError>;

    /// Loads the identity with that external id.
    async fn get_identity_by_external_id(
        &self,
        external_id: &str,
        with_credentials: bool,
    ) -> Result<Identity, StoreError>;

    /// Finds the identity owning a credential identifier (with credentials loaded).
    async fn find_by_credential_identifier(
        &self,
        kind: CredentialType,
        identifier: &str,
    ) -> Result<Identity, StoreError>;

    /// Finds the identity that lists an address (`via` is `email` or `sms`; `value` as stored), with its addresses
    /// and without credentials. Recovery and verification flows start here.
    async fn find_by_address(
        &self,
        kind: AddressKind,
        via: &str,
        value: &str,
    ) -> Result<Identity, StoreError>;

    /// Lists identities, ordered by id. Returns the page and, for offset pagination, the total count.
    async fn list_identities(
        &self,
        params: &ListIdentities,
    ) -> Result<(Vec<Identity>, Option<u64>), StoreError>;

    /// Deletes an identity and everything that belongs to it.
    async fn delete_identity(&self, id: Uuid) -> Result<(), StoreError>;

    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod conformance;
