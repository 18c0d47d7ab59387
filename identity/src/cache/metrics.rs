//! Counters of the session cache.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters of a [`super::SessionCache`], shared by all its clones.
///
/// Every counter only grows; render them as Prometheus counters with [`CacheMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct CacheMetrics {
    pub(crate) local_hits: AtomicU64,
    pub(crate) local_misses: AtomicU64,
    pub(crate) local_evictions: AtomicU64,
    pub(crate) redis_hits: AtomicU64,
    pub(crate) redis_misses: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) redis_skipped: AtomicU64,
    pub(crate) redis_garbage: AtomicU64,
    pub(crate) source_loads: AtomicU64,
    pub(crate) source_errors: AtomicU64,
    pub(crate) revocations: AtomicU64,
    pub(crate) invalidations_received: AtomicU64,
    pub(crate) listener_connects: AtomicU64,
}

impl CacheMetrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Lookups answered by the in-process tier.
    pub fn local_hits(&self) -> u64 {
        Self::read(&self.local_hits)
    }

    /// Lookups the in-process tier could not answer (absent, expired, or the tier is off).
    pub fn local_misses(&self) -> u64 {
        Self::read(&self.local_misses)
    }

    /// Entries pushed out of the in-process tier by its capacity bound.
    pub fn local_evictions(&self) -> u64 {
        Self::read(&self.local_evictions)
    }

    /// Lookups answered by Redis.
    pub fn redis_hits(&self) -> u64 {
        Self::read(&self.redis_hits)
    }

    /// Redis lookups that found nothing usable (absent, tombstone, expired or undecodable value).
    pub fn redis_misses(&self) -> u64 {
        Self::read(&self.redis_misses)
    }

    /// Redis commands that failed or timed out (each one is a fallback: the request went on without Redis), plus
    /// failed (re)connections of the command connection and the invalidation listener.
    pub fn redis_errors(&self) -> u64 {
        Self::read(&self.redis_errors)
    }

    /// Redis commands not attempted because Redis failed recently (the back-off window).
    pub fn redis_skipped(&self) -> u64 {
        Self::read(&self.redis_skipped)
    }

    /// Values found in Redis that could not be decoded (treated as misses and deleted).
    pub fn redis_garbage(&self) -> u64 {
        Self::read(&self.redis_garbage)
    }

    /// Calls to [`super::SessionSource::load`].
    pub fn source_loads(&self) -> u64 {
        Self::read(&self.source_loads)
    }

    /// Failed calls to [`super::SessionSource::load`].
    pub fn source_errors(&self) -> u64 {
        Self::read(&self.source_errors)
    }

    /// Tokens passed to [`super::SessionCache::revoke`] and [`super::SessionCache::invalidate`].
    pub fn revocations(&self) -> u64 {
        Self::read(&self.revocations)
    }

    /// Token hashes received on the invalidation channel (including this replica's own messages).
    pub fn invalidations_received(&self) -> u64 {
        Self::read(&self.invalidations_received)
    }

    /// Successful subscriptions of the invalidation listener (1 after start, +1 per reconnect).
    pub fn listener_connects(&self) -> u64 {
        Self::read(&self.listener_connects)
    }

    /// All counters as `(name, value)`, names in `snake_case` without a prefix.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("local_hits", self.local_hits()),
            ("local_misses", self.local_misses()),
            ("local_evictions", self.local_evictions()),
            ("redis_hits", self.redis_hits()),
            ("redis_misses", self.redis_misses()),
            ("redis_errors", self.redis_errors()),
            ("redis_skipped", self.redis_skipped()),
            ("redis_garbage", self.redis_garbage()),
            ("source_loads", self.source_loads()),
            ("source_errors", self.source_errors()),
            ("revocations", self.revocations()),
            ("invalidations_received", self.invalidations_received()),
            ("listener_connects", self.listener_connects()),
        ]
    }
}
