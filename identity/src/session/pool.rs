//! Session persistence, as the session manager uses it.

use super::{Device, Session, TokenHash};
use crate::store::StoreError;
use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

/// Filters for listing sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActiveFilter {
    /// All sessions.
    #[default]
    Any,
    /// Active (stored flag set and not expired at the given time).
    Active(OffsetDateTime),
    /// Revoked or expired at the given time.
    Inactive(OffsetDateTime),
}

/// Session storage.
#[async_trait]
pub trait SessionPool: Send + Sync {
    /// Stores a new session with its devices.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// Loads a session (with devices) by id.
    async fn get_session(&self, id: Uuid) -> Result<Session, StoreError>;

    /// Loads a session (with devices) by the hash of its token.
    async fn get_session_by_token(&self, token: &TokenHash) -> Result<Session, StoreError>;

    /// Lists sessions, newest first, after the session `after` (keyset), at most `size`.
    async fn list_sessions(
        &self,
        active: ActiveFilter,
        after: Option<Uuid>,
        size: u32,
    ) -> Result<Vec<Session>, StoreError>;

    /// Lists one identity's sessions except `except`, newest first, with offset pagination; returns the total
    /// too.
    async fn list_identity_sessions(
        &self,
        identity_id: Uuid,
        active: ActiveFilter,
        except: Option<Uuid>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Session>, u64), StoreError>;

    /// Marks a session inactive; returns its token hash.
    async fn revoke_session(&self, id: Uuid, now: OffsetDateTime) -> Result<TokenHash, StoreError>;

    /// Marks every active session of an identity inactive except `keep`; returns the revoked token hashes.
    async fn revoke_identity_sessions(
        &self,
        identity_id: Uuid,
        keep: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Vec<TokenHash>, StoreError>;

    /// Deletes every session of an identity; returns their token hashes.
    async fn delete_identity_sessions(
        &self,
        identity_id: Uuid,
    ) -> Result<Vec<TokenHash>, StoreError>;

    /// Token hashes of every session of an identity (to evict caches).
    async fn identity_token_hashes(&self, identity_id: Uuid) -> Result<Vec<TokenHash>, StoreError>;

    /// Sets a new expiry; returns the updated session.
    async fn set_session_expiry(
        &self,
        id: Uuid,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Session, StoreError>;

    /// Records a device for a session.
    async fn add_device(&self, session_id: Uuid, device: &Device) -> Result<(), StoreError>;
}
