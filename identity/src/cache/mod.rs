//! The two-tier session cache: in-process → Redis → SQL.
//!
//! SQL is the source of truth; the caller's [`SessionSource`] reads it. A lookup tries, in order:
//!
//! 1. the **local tier**, an in-process bounded map of `Arc<SessionSnapshot>` with a short TTL (`local_ttl`);
//! 2. **Redis**, key `session:<hex sha256 of the token>`, the snapshot as JSON, kept for
//!    `min(ttl, time to session expiry)`;
//! 3. the **source**; what it returns is written back to Redis (`SET … EX … NX`) and the local tier.
//!
//! A snapshot past its expiry is never returned, whichever tier holds it. A Redis entry written by an older
//! version (without `email_verified`) is deleted and reloaded from the source, never served.
//!
//! Redis is optional and never a point of failure: every command is bounded by `redis_timeout`, a failure makes
//! the cache skip Redis for `redis_backoff` (so an outage costs requests nothing), and errors are logged
//! (rate-limited) and counted, never returned. `SessionCache::new` succeeds with Redis down and connects later.
//!
//! ## Revocation
//!
//! [`SessionCache::revoke`] drops the tokens locally, replaces their Redis keys with a tombstone, and `PUBLISH`es
//! their hex hashes on `channel` before it returns. Every replica's listener task is subscribed to the channel and
//! evicts what it hears from its local tier, typically within a millisecond. The tombstone (rather than a `DEL`)
//! stops a lookup that read SQL just before the revocation from writing the old snapshot back, since writes use
//! `NX`; locally, per-shard generations do the same job. Revocations that cannot reach Redis are retried by the
//! listener until they do.
//!
//! A replica whose listener is not subscribed (Redis down, reconnecting, or unreachable since start) cannot hear
//! revocations, so it does not use its local tier at all until the subscription is back, and it clears the local
//! tier on every loss and every (re)subscription. A replica without Redis (`local_only`) has no other replicas to
//! hear from and always uses its local tier.

mod local;
mod metrics;
mod redis_tier;

#[cfg(test)]
mod tests;

pub use metrics::CacheMetrics;

use crate::session::{SessionSnapshot, TokenHash};
use async_trait::async_trait;
use local::LocalTier;
use redis_tier::{ListenerParts, RedisSettings, RedisTier, Removal, TOMBSTONE};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

/// Settings of a [`SessionCache`].
#[derive(Clone)]
pub struct CacheConfig {
    /// `redis://…`; `None` (or a blank string) keeps the cache in-process only.
    pub redis_url: Option<String>,
    /// Longest time a snapshot stays in Redis (also bounded by the session's expiry), and the lifetime of
    /// revocation tombstones. Whole seconds; default 10 min; under 1 s stops writing snapshots to Redis.
    pub ttl: Duration,
    /// Most snapshots the local tier holds; the oldest are evicted beyond. Default 100 000; zero disables it.
    pub local_capacity: usize,
    /// How long a snapshot stays in the local tier. Default 30 s; zero disables the local tier.
    pub local_ttl: Duration,
    /// Pub/sub channel of revocations. Default `portcullis:session:revoked`.
    pub channel: String,
    /// Bound on each Redis command of a lookup. Default 100 ms.
    pub redis_timeout: Duration,
    /// How long Redis is skipped after a failed command. Default 1 s.
    pub redis_backoff: Duration,
    /// Bound on the Redis part of [`SessionCache::revoke`]. Default 1 s.
    pub revoke_timeout: Duration,
    /// Bound on each connection attempt (commands and listener). Default 1 s.
    pub connect_timeout: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            ttl: Duration::from_secs(600),
            local_capacity: 100_000,
            local_ttl: Duration::from_secs(30),
            channel: "portcullis:session:revoked".to_owned(),
            redis_timeout: Duration::from_millis(100),
            redis_backoff: Duration::from_secs(1),
            revoke_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("CacheConfig")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<redacted>"))
            .field("ttl", &self.ttl)
            .field("local_capacity", &self.local_capacity)
            .field("local_ttl", &self.local_ttl)
            .field("channel", &self.channel)
            .field("redis_timeout", &self.redis_timeout)
            .field("redis_backoff", &self.redis_backoff)
            .field("revoke_timeout", &self.revoke_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why a cache could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL does not parse (the URL itself is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidRedisUrl(String),
    /// [`SessionCache::new`] was called outside a Tokio runtime, which must run its listener task.
    #[error("the session cache needs a Tokio runtime")]
    NoRuntime,
}

/// A failure of the [`SessionSource`], passed through [`SessionCache::get`] unchanged. It carries a message only:
/// the source logs or wraps its own error before converting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session lookup failed: {0}")]
pub struct SourceError(pub String);

impl SourceError {
    /// From any displayable error.
    pub fn new(err: impl fmt::Display) -> Self {
        Self(err.to_string())
    }
}

/// Where sessions come from on a cache miss: the SQL store, in production.
#[async_trait]
pub trait SessionSource: Send + Sync {
    /// The snapshot of the session whose token hashes to `token`, or `None` when it is unknown, inactive or
    /// expired.
    async fn load(&self, token: &TokenHash) -> Result<Option<SessionSnapshot>, SourceError>;
}

struct Inner {
    local: Arc<LocalTier>,
    metrics: Arc<CacheMetrics>,
    redis: Option<Arc<RedisTier>>,
    ttl: Duration,
    /// Dropped with the last handle, which stops the listener.
    _shutdown: Option<watch::Sender<()>>,
}

/// The session cache; cheap to clone, every clone shares the same tiers. Dropping the last clone stops its
/// background task.
#[derive(Clone)]
pub struct SessionCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("redis", &self.inner.redis.is_some())
            .field("redis_subscribed", &self.redis_subscribed())
            .field("local_len", &self.local_len())
            .finish()
    }
}

impl SessionCache {
    /// A cache using Redis when `config.redis_url` is set, else [`SessionCache::local_only`].
    ///
    /// Connects and subscribes before returning (each step bounded by `connect_timeout`). If Redis cannot be
    /// reached, it still returns `Ok`, logs a warning, counts the error, and keeps trying in the background;
    /// meanwhile lookups go to the source. Only an unparsable URL is an error. Must be called within a Tokio
    /// runtime (with time enabled), which runs the listener task.
    pub async fn new(config: CacheConfig) -> Result<Self, CacheError> {
        let Some(url) = config.redis_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(Self::local_only(config));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CacheError::NoRuntime);
        }
        let client =
            redis::Client::open(url).map_err(|e| CacheError::InvalidRedisUrl(e.to_string()))?;
        let redis = Arc::new(RedisTier::new(
            client,
            RedisSettings {
                channel: config.channel.clone(),
                ttl: config.ttl,
                timeout: config.redis_timeout,
                backoff: config.redis_backoff,
                revoke_timeout: config.revoke_timeout,
                connect_timeout: config.connect_timeout,
            },
        ));
        let local = Arc::new(LocalTier::new(config.local_capacity, config.local_ttl));
        let metrics = Arc::new(CacheMetrics::default());
        redis.ensure_connected(&metrics).await;

        let (shutdown_tx, shutdown_rx) = watch::channel(());
        let (ready_tx, ready_rx) = oneshot::channel();
        let parts = ListenerParts {
            redis: Arc::clone(&redis),
            local: Arc::clone(&local),
            metrics: Arc::clone(&metrics),
        };
        tokio::spawn(redis_tier::run_listener(parts, shutdown_rx, ready_tx));
        // The first subscription attempt makes at most two bounded steps; give it a little slack.
        let wait = config
            .connect_timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_millis(100));
        let _ = tokio::time::timeout(wait, ready_rx).await;
        if !redis.is_subscribed() {
            tracing::warn!(
                "session cache: Redis unavailable at start; using SQL until it is reachable"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                local,
                metrics,
                redis: Some(redis),
                ttl: config.ttl,
                _shutdown: Some(shutdown_tx),
            }),
        })
    }

    /// A cache without Redis: the local tier in front of the source. `redis_url` is ignored.
    pub fn local_only(config: CacheConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                local: Arc::new(LocalTier::new(config.local_capacity, config.local_ttl)),
                metrics: Arc::new(CacheMetrics::default()),
                redis: None,
                ttl: config.ttl,
                _shutdown: None,
            }),
        }
    }

    /// Whether the local tier may be used now: it is enabled, and revocations from other replicas are heard (or
    /// there are none).
    fn local_usable(&self) -> bool {
        self.inner.local.is_enabled() && self.inner.redis.as_ref().is_none_or(|r| r.is_subscribed())
    }

    /// The snapshot for `token`, valid at `now`, from the first tier that has it; `None` when the source knows no
    /// valid session. Only a source failure is an error: Redis problems fall back to the source.
    pub async fn get(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
        source: &dyn SessionSource,
    ) -> Result<Option<Arc<SessionSnapshot>>, SourceError> {
        let inner = &*self.inner;
        let metrics = &*inner.metrics;

        // 1. Local tier.
        let local_usable = self.local_usable();
        if local_usable {
            if let Some(snapshot) = inner.local.get(token, Instant::now()) {
                if snapshot.is_valid_at(now) {
                    CacheMetrics::inc(&metrics.local_hits);
                    return Ok(Some(snapshot));
                }
                inner.local.remove(token);
            }
        }
        CacheMetrics::inc(&metrics.local_misses);
        // Read before any slower tier: an invalidation after this point makes the insert below a no-op.
        let generation = inner.local.generation(token);

        // 2. Redis.
        let mut tombstoned = false;
        if let Some(redis) = inner.redis.as_deref() {
            match redis.get(metrics, token).await {
                Ok(Some(bytes)) if bytes == TOMBSTONE => {
                    CacheMetrics::inc(&metrics.redis_misses);
                    tombstoned = true;
                }
                Ok(Some(bytes)) => match serde_json::from_slice::<SessionSnapshot>(&bytes) {
                    Ok(old) if old.email_verified.is_none() => {
                        // Written by an older version, without the fields mutators need now: reload it.
                        CacheMetrics::inc(&metrics.redis_misses);
                        redis.delete(metrics, token).await;
                    }
                    Ok(snapshot) if snapshot.is_valid_at(now) => {
                        CacheMetrics::inc(&metrics.redis_hits);
                        let snapshot = Arc::new(snapshot);
                        self.store_local(token, &snapshot, generation);
                        return Ok(Some(snapshot));
                    }
                    Ok(_expired) => {
                        // Redis expires keys by itself; this one outlived the session by clock skew.
                        CacheMetrics::inc(&metrics.redis_misses);
                        redis.delete(metrics, token).await;
                    }
                    Err(e) => {
                        CacheMetrics::inc(&metrics.redis_misses);
                        CacheMetrics::inc(&metrics.redis_garbage);
                        tracing::warn!(error = %e, "session cache: undecodable value in Redis; deleting it");
                        redis.delete(metrics, token).await;
                    }
                },
                Ok(None) => CacheMetrics::inc(&metrics.redis_misses),
                // Counted and logged by the tier.
                Err(_) => {}
            }
        }

        // 3. Source.
        CacheMetrics::inc(&metrics.source_loads);
        let loaded = match source.load(token).await {
            Ok(loaded) => loaded,
            Err(e) => {
                CacheMetrics::inc(&metrics.source_errors);
                return Err(e);
            }
        };
        let Some(snapshot) = loaded.filter(|s| s.is_valid_at(now)) else {
            return Ok(None);
        };
        let snapshot = Arc::new(snapshot);
        if let Some(redis) = inner.redis.as_deref() {
            if !tombstoned {
                self.store_redis(redis, token, &snapshot, now).await;
            }
        }
        if local_usable {
            self.store_local(token, &snapshot, generation);
        }
        Ok(Some(snapshot))
    }

    fn store_local(&self, token: &TokenHash, snapshot: &Arc<SessionSnapshot>, generation: u64) {
        if !self.local_usable() {
            return;
        }
        let inserted =
            self.inner
                .local
                .insert(*token, Arc::clone(snapshot), Instant::now(), generation);
        CacheMetrics::add(&self.inner.metrics.local_evictions, inserted.evicted as u64);
    }

    async fn store_redis(
        &self,
        redis: &RedisTier,
        token: &TokenHash,
        snapshot: &SessionSnapshot,
        now: OffsetDateTime,
    ) {
        let remaining = snapshot.expires_at.saturating_sub(now.unix_timestamp());
        let Ok(remaining) = u64::try_from(remaining) else {
            return;
        };
        let secs = remaining.min(self.inner.ttl.as_secs());
        if secs == 0 {
            return;
        }
        match serde_json::to_vec(snapshot) {
            Ok(value) => {
                redis
                    .set_if_absent(&self.inner.metrics, token, value, secs)
                    .await;
            }
            Err(e) => tracing::warn!(error = %e, "session cache: cannot encode a snapshot"),
        }
    }

    /// Revokes sessions everywhere: drops them from this replica's local tier, turns their Redis keys into
    /// tombstones, and publishes their hashes so every replica evicts them, before returning. Redis problems are
    /// logged and counted, never returned; undelivered revocations are retried in the background.
    pub async fn revoke(&self, tokens: &[TokenHash]) {
        self.remove_everywhere(tokens, Removal::Revoke).await;
    }

    /// Like [`SessionCache::revoke`] for sessions that stay valid but whose snapshot changed (refreshed, AAL
    /// upgraded, identity edited): the Redis keys are deleted rather than tombstoned, so they are cached again on
    /// the next lookup.
    pub async fn invalidate(&self, tokens: &[TokenHash]) {
        self.remove_everywhere(tokens, Removal::Invalidate).await;
    }

    async fn remove_everywhere(&self, tokens: &[TokenHash], how: Removal) {
        for token in tokens {
            self.inner.local.remove(token);
        }
        CacheMetrics::add(&self.inner.metrics.revocations, tokens.len() as u64);
        if let Some(redis) = self.inner.redis.as_deref() {
            let batch: Vec<(TokenHash, Removal)> = tokens.iter().map(|t| (*t, how)).collect();
            redis.remove(&self.inner.metrics, &batch).await;
        }
    }

    /// Drops `token` from this replica's local tier only.
    pub fn evict_local(&self, token: &TokenHash) {
        self.inner.local.remove(token);
    }

    /// Empties this replica's local tier.
    pub fn clear_local(&self) {
        self.inner.local.clear();
    }

    /// The cache's counters.
    pub fn metrics(&self) -> &CacheMetrics {
        &self.inner.metrics
    }

    /// Snapshots in the local tier (expired ones not yet dropped included), e.g. for a gauge.
    pub fn local_len(&self) -> usize {
        self.inner.local.len()
    }

    /// Whether the invalidation listener is subscribed (false without Redis). While it is not, the local tier is
    /// bypassed; a readiness probe may report it.
    pub fn redis_subscribed(&self) -> bool {
        self.inner.redis.as_ref().is_some_and(|r| r.is_subscribed())
    }

    /// Whether this replica's local tier holds `token` (tests only).
    #[cfg(test)]
    pub(crate) fn local_contains(&self, token: &TokenHash) -> bool {
        self.inner.local.get(token, Instant::now()).is_some()
    }

    /// Revocations that could not reach Redis yet and wait for a retry.
    pub fn pending_revocations(&self) -> usize {
        self.inner.redis.as_ref().map_or(0, |r| r.pending_len())
    }
}
