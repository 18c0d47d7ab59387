//! Issuing, authenticating, extending and revoking sessions. Every revocation goes through the cache so that
//! every replica stops accepting the session.

use super::pool::{ActiveFilter, SessionPool};
use super::token::{self, TokenHash, MAX_TOKEN_LEN};
use super::{aal_of, AuthenticationMethod, Device, Session, SessionSnapshot};
use crate::cache::{SessionCache, SessionSource, SourceError};
use crate::model::{CredentialType, Identity};
use crate::store::{IdentityPool, StoreError};
use crate::view::{public_identity, timestamp};
use crate::SharedClock;
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Session behaviour from config.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `session.lifespan`.
    pub lifespan: Duration,
    /// `session.earliest_possible_extend` (defaults to the lifespan).
    pub earliest_possible_extend: Duration,
}

/// Where a session was created or used from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Client IP.
    pub ip_address: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// `City, CC`.
    pub location: Option<String>,
}

/// A freshly issued session and its secrets (shown once, never stored).
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The session.
    pub session: Session,
    /// `ory_st_…`.
    pub token: String,
    /// `ory_lo_…`.
    pub logout_token: String,
}

/// Session operations.
#[derive(Clone)]
pub struct SessionManager {
    sessions: Arc<dyn SessionPool>,
    identities: Arc<dyn IdentityPool>,
    cache: SessionCache,
    clock: SharedClock,
    settings: SessionSettings,
    public_base: String,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager").finish_non_exhaustive()
    }
}

impl SessionManager {
    /// Wires the manager.
    pub fn new(
        sessions: Arc<dyn SessionPool>,
        identities: Arc<dyn IdentityPool>,
        cache: SessionCache,
        clock: SharedClock,
        settings: SessionSettings,
        public_base: String,
    ) -> Self {
        Self {
            sessions,
            identities,
            cache,
            clock,
            settings,
            public_base,
        }
    }

    /// The store.
    pub fn pool(&self) -> &Arc<dyn SessionPool> {
        &self.sessions
    }

    /// The cache.
    pub fn cache(&self) -> &SessionCache {
        &self.cache
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Issues a session for an identity that just completed `methods`. Later flows call this.
    pub async fn issue(
        &self,
        identity: &Identity,
        methods: Vec<AuthenticationMethod>,
        device: DeviceInfo,
    ) -> Result<IssuedSession, StoreError> {
        let now = self.clock.now();
        let token = token::new_session_token();
        let logout_token = token::new_logout_token();
        let session = Session {
            id: Uuid::new_v4(),
            identity_id: identity.id,
            token_hash: TokenHash::of(&token),
            logout_token_hash: TokenHash::of(&logout_token),
            active: true,
            issued_at: now,
            authenticated_at: now,
            // `session.lifespan` is trusted config (a Go duration, at most ~292 years): saturate, never panic.
            expires_at: now.saturating_add(self.settings.lifespan),
            aal: aal_of(&methods),
            authentication_methods: methods,
            devices: vec![Device {
                id: Uuid::new_v4(),
                ip_address: device.ip_address,
                user_agent: device.user_agent,
                location: device.location,
                created_at: now,
                updated_at: now,
            }],
            created_at: now,
            updated_at: now,
        };
        self.sessions.create_session(&session).await?;
        Ok(IssuedSession {
            session,
            token,
            logout_token,
        })
    }

    /// Looks a token up: in-process cache, then Redis, then SQL. `None` for unknown, revoked or expired
    /// sessions and disabled identities. Never fails because of Redis.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<Arc<SessionSnapshot>>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
            return Ok(None);
        }
        let hash = TokenHash::of(token);
        let source = SqlSource { manager: self };
        self.cache
            .get(&hash, self.clock.now(), &source)
            .await
            .map_err(|e| StoreError::Backend(sqlx::Error::Protocol(e.0)))
    }

    /// The session JSON as the admin and public APIs show it.
    pub fn render(&self, session: &Session, identity: Option<&Identity>, devices: bool) -> Value {
        let now = self.clock.now();
        let identity_active = identity.is_none_or(Identity::is_active);
        let mut m = Map::new();
        m.insert("id".into(), json!(session.id));
        m.insert(
            "active".into(),
            json!(session.is_valid_at(now) && identity_active),
        );
        m.insert("expires_at".into(), timestamp(session.expires_at));
        m.insert(
            "authenticated_at".into(),
            timestamp(session.authenticated_at),
        );
        m.insert(
            "authenticator_assurance_level".into(),
            json!(session.aal.as_str()),
        );
        m.insert(
            "authentication_methods".into(),
            Value::Array(
                session
                    .authentication_methods
                    .iter()
                    .map(|a| {
                        let mut o = json!({
                            "method": a.method,
                            "aal": a.aal.as_str(),
                            "completed_at": timestamp(a.completed_at),
                        });
                        if let Some(p) = &a.provider {
                            o["provider"] = json!(p);
                        }
                        if let Some(org) = a.organization {
                            o["organization"] = json!(org);
                        }
                        o
                    })
                    .collect(),
            ),
        );
        m.insert("issued_at".into(), timestamp(session.issued_at));
        m.insert(
            "identity".into(),
            identity.map_or(Value::Null, |i| public_identity(i, &self.public_base)),
        );
        m.insert(
            "devices".into(),
            if devices {
                Value::Array(
                    session
                        .devices
                        .iter()
                        .map(|d| {
                            json!({
                                "id": d.id,
                                "ip_address": d.ip_address,
                                "user_agent": d.user_agent,
                                "location": d.location.clone().unwrap_or_default(),
                            })
                        })
                        .collect(),
                )
            } else {
                Value::Null
            },
        );
        Value::Object(m)
    }

    /// Revokes one session (admin `DELETE /admin/sessions/{id}`, logout).
    pub async fn revoke(&self, id: Uuid) -> Result<(), StoreError> {
        let hash = self.sessions.revoke_session(id, self.clock.now()).await?;
        self.cache.revoke(&[hash]).await;
        Ok(())
    }

    /// Revokes every other active session of an identity; returns how many.
    pub async fn revoke_others(
        &self,
        identity_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<usize, StoreError> {
        let hashes = self
            .sessions
            .revoke_identity_sessions(identity_id, keep, self.clock.now())
            .await?;
        self.cache.revoke(&hashes).await;
        Ok(hashes.len())
    }

    /// Deletes every session of an identity; returns how many.
    pub async fn delete_identity_sessions(&self, identity_id: Uuid) -> Result<usize, StoreError> {
        let hashes = self.sessions.delete_identity_sessions(identity_id).await?;
        self.cache.revoke(&hashes).await;
        Ok(hashes.len())
    }

    /// Drops cached copies of an identity's sessions after it changed. A disabled identity's sessions are
    /// revoked in the cache (no replica may serve them); otherwise the copies are invalidated so the next lookup
    /// renders the new traits (and clears an earlier revocation when the identity is enabled again).
    pub async fn identity_changed(&self, identity: &Identity) -> Result<(), StoreError> {
        let hashes = self.sessions.identity_token_hashes(identity.id).await?;
        if identity.is_active() {
            self.cache.invalidate(&hashes).await;
        } else {
            self.cache.revoke(&hashes).await;
        }
        Ok(())
    }

    /// Drops cached copies of sessions whose token hashes were collected before their identity was deleted.
    pub async fn evict(&self, hashes: &[TokenHash]) {
        self.cache.revoke(hashes).await;
    }

    /// Kratos' extend: `expires_at = now + lifespan`, but only once `expires_at - earliest_possible_extend` has
    /// passed; otherwise nothing changes.
    pub async fn extend(&self, id: Uuid) -> Result<Session, StoreError> {
        let session = self.sessions.get_session(id).await?;
        let now = self.clock.now();
        // Trusted config and a stored expiry: saturate rather than panic.
        let extend_from = session
            .expires_at
            .saturating_sub(self.settings.earliest_possible_extend);
        if extend_from > now {
            return Ok(session);
        }
        let updated = self
            .sessions
            .set_session_expiry(id, now.saturating_add(self.settings.lifespan), now)
            .await?;
        self.cache.invalidate(&[updated.token_hash]).await;
        Ok(updated)
    }

    /// Sessions of an identity filtered by state at the current time.
    pub fn active_filter(&self, active: Option<bool>) -> ActiveFilter {
        let now = self.clock.now();
        match active {
            None => ActiveFilter::Any,
            Some(true) => ActiveFilter::Active(now),
            Some(false) => ActiveFilter::Inactive(now),
        }
    }

    /// Loads the identity of a session for rendering.
    pub async fn identity_of(&self, session: &Session) -> Result<Identity, StoreError> {
        self.identities
            .get_identity(session.identity_id, false)
            .await
    }

    async fn snapshot(&self, token: &TokenHash) -> Result<Option<SessionSnapshot>, StoreError> {
        let session = match self.sessions.get_session_by_token(token).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let now = self.clock.now();
        if !session.is_valid_at(now) {
            return Ok(None);
        }
        let identity = match self
            .identities
            .get_identity(session.identity_id, true)
            .await
        {
            Ok(i) => i,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !identity.is_active() {
            return Ok(None);
        }
        let identity_has_aal2 = identity.credentials.keys().any(|k| {
            matches!(
                k,
                CredentialType::Totp | CredentialType::LookupSecret | CredentialType::Webauthn
            )
        });
        let body = self.render(&session, Some(&identity), true);
        let email_verified = body
            .get("identity")
            .is_some_and(crate::session::email_verified);
        Ok(Some(SessionSnapshot {
            session_id: session.id,
            identity_id: identity.id,
            expires_at: session.expires_at.unix_timestamp(),
            aal: session.aal,
            identity_has_aal2,
            body: body.to_string(),
            traits: identity.traits.to_string(),
            metadata_public: identity
                .metadata_public
                .as_ref()
                .map_or_else(|| "null".to_owned(), Value::to_string),
            email_verified: Some(email_verified),
            parsed: crate::session::ParsedBody::from(body),
        }))
    }
}

/// The SQL tier behind the cache.
struct SqlSource<'a> {
    manager: &'a SessionManager,
}

#[async_trait]
impl SessionSource for SqlSource<'_> {
    async fn load(&self, token: &TokenHash) -> Result<Option<SessionSnapshot>, SourceError> {
        self.manager
            .snapshot(token)
            .await
            .map_err(|e| SourceError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheConfig;
    use crate::session::Aal;
    use crate::store::testing;
    use crate::ManualClock;
    use time::macros::datetime;

    /// Issue 15: a lifespan past the last representable timestamp saturates instead of panicking on login (and on
    /// an admin extend).
    #[tokio::test]
    async fn lifespans_past_the_last_timestamp_saturate() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = testing::sqlite_file(dir.path()).await.unwrap();
        let now = datetime!(2026-03-04 05:06:07 UTC);
        let identity = Identity::new("default", json!({"email": "far@example.com"}), now);
        db.create_identity(&identity).await.unwrap();
        let manager = SessionManager::new(
            Arc::new(db.clone()),
            Arc::new(db),
            SessionCache::local_only(CacheConfig::default()),
            Arc::new(ManualClock::new(now)),
            SessionSettings {
                lifespan: Duration::MAX,
                earliest_possible_extend: Duration::MAX,
            },
            "http://127.0.0.1/".into(),
        );
        let methods = vec![AuthenticationMethod {
            method: "password".into(),
            aal: Aal::Aal1,
            completed_at: now,
            provider: None,
            organization: None,
        }];
        let issued = manager
            .issue(&identity, methods, DeviceInfo::default())
            .await
            .unwrap();
        assert_eq!(issued.session.expires_at.year(), 9999);
        let extended = manager.extend(issued.session.id).await.unwrap();
        assert_eq!(extended.expires_at.year(), 9999);
    }
}
