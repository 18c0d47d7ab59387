//! Identities, credentials, password hashing and persistence for Portcullis.
//!
//! This crate never depends on an HTTP server framework: it takes and returns plain types.

pub mod clock;
pub mod model;
pub mod store;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use model::{CredentialType, Identity, IdentityState};
pub use store::{Db, IdentityPool, StoreError};
