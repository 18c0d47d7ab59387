//! The one error type of this crate.

use crate::hash::HashError;
use crate::schema::FieldMessage;
use crate::store::StoreError;

/// Everything identity operations can fail with. The edge maps each variant to a Kratos error envelope.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such identity (or credential).
    #[error("not found")]
    NotFound,
    /// The identity has no credential of the named type (a 404); the text is safe to show to a client.
    #[error("{0}")]
    NoCredential(String),
    /// A credential identifier, address or external id belongs to another identity.
    #[error("conflicts with another identity")]
    Conflict,
    /// The request makes no sense; the text is safe to show to a client.
    #[error("{0}")]
    BadRequest(String),
    /// The traits do not satisfy the identity schema.
    #[error("the traits do not match the identity schema")]
    Validation(Vec<FieldMessage>),
    /// The named schema does not exist.
    #[error("unable to find JSON Schema ID: {0}")]
    UnknownSchema(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(#[source] HashError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(_) => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

impl From<HashError> for Error {
    fn from(e: HashError) -> Self {
        Self::Hash(e)
    }
}
