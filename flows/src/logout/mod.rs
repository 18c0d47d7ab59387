//! Logout. A browser signs out through its logout URL, which carries a token derived from its session (so a link
//! on another site cannot sign it out); a native app sends its session token. Either way the session is revoked
//! everywhere, through the cache. Logout has no flow object, as in Kratos.

use identity::session::manager::SessionManager;
use identity::session::token::{derive_logout_token, verify_logout_token, MAX_TOKEN_LEN};
use identity::session::TokenHash;
use identity::StoreError;
use std::sync::Arc;
use uuid::Uuid;

/// Why a logout did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The request carries no active session.
    #[error("no active session was found in this request")]
    NoSession,
    /// The logout token in the URL belongs to another session.
    #[error("the logout token does not match the session")]
    TokenMismatch,
    /// The session token of a native logout names no session.
    #[error("the session token could not be found")]
    UnknownToken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Logout.
#[derive(Clone)]
pub struct LogoutFlows {
    sessions: SessionManager,
    secrets: Arc<Vec<String>>,
}

impl std::fmt::Debug for LogoutFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutFlows").finish_non_exhaustive()
    }
}

impl LogoutFlows {
    /// Logout tokens are derived with the first of `secrets` and checked against all of them (key rotation).
    pub fn new(sessions: SessionManager, secrets: Arc<Vec<String>>) -> Self {
        Self { sessions, secrets }
    }

    /// The logout token of a session.
    pub fn token(&self, session_id: Uuid) -> String {
        let secret = self.secrets.first().map(String::as_str).unwrap_or("");
        derive_logout_token(secret.as_bytes(), session_id)
    }

    /// The active session that `session_token` (from the cookie or header) names.
    pub async fn session_of(&self, session_token: Option<&str>) -> Result<Uuid, LogoutError> {
        let token = session_token.ok_or(LogoutError::NoSession)?;
        let session = self
            .sessions
            .authenticate(token)
            .await?
            .ok_or(LogoutError::NoSession)?;
        Ok(session.session_id)
    }

    /// Signs a browser out: its session must be active and `logout_token` must be that session's.
    pub async fn browser(
        &self,
        session_token: Option<&str>,
        logout_token: &str,
    ) -> Result<(), LogoutError> {
        let session_id = self.session_of(session_token).await?;
        if !verify_logout_token(&self.secrets, session_id, logout_token) {
            return Err(LogoutError::TokenMismatch);
        }
        Ok(self.sessions.revoke(session_id).await?)
    }

    /// Signs a native app out. As in Kratos, any session the token names is revoked (again, if need be).
    pub async fn api(&self, session_token: &str) -> Result<(), LogoutError> {
        if session_token.is_empty() || session_token.len() > MAX_TOKEN_LEN {
            return Err(LogoutError::UnknownToken);
        }
        let hash = TokenHash::of(session_token);
        let session = match self.sessions.pool().get_session_by_token(&hash).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(LogoutError::UnknownToken),
            Err(e) => return Err(e.into()),
        };
        Ok(self.sessions.revoke(session.id).await?)
    }
}
