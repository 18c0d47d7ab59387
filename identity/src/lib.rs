//! Identities, credentials, password hashing and persistence for Portcullis.
//!
//! This crate never depends on an HTTP server framework: it takes and returns plain types.

pub mod cache;
pub mod clock;
pub mod error;
pub mod hash;
pub mod jws;
pub mod manager;
pub mod model;
pub mod schema;
pub mod session;
pub mod store;
pub mod text;
pub mod throttle;
pub mod tokenize;
pub mod view;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use error::Error;
pub use manager::IdentityManager;
pub use model::{CredentialType, Identity, IdentityState};
pub use store::{AddressKind, Db, IdentityPool, StoreError};
