//! The in-process tier: a sharded, bounded map with per-entry expiry.
//!
//! Each shard is a `Mutex<HashMap>` plus a FIFO of insertions. All entries live for the same `local_ttl`, so the
//! oldest insertion is also the next to expire: the FIFO serves both to drop expired entries and to evict the
//! oldest entry when a shard is full. Removed or replaced entries leave stale FIFO items behind; they are skipped
//! when met and the FIFO is rebuilt when they pile up.
//!
//! Each shard also has a generation, bumped by every removal and clear. A lookup that misses reads it before
//! going to Redis or SQL and passes it back when inserting: if an invalidation hit the shard in between, the
//! insert is refused, so a revocation that races a slow load cannot be undone by it.

use crate::session::{SessionSnapshot, TokenHash};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// At most this many shards.
const MAX_SHARDS: usize = 16;

struct Entry {
    snapshot: Arc<SessionSnapshot>,
    expires: Instant,
    seq: u64,
}

struct Shard {
    map: HashMap<TokenHash, Entry>,
    /// Insertion order: `(key, seq)`; an item is stale when the map has no entry with that seq.
    order: VecDeque<(TokenHash, u64)>,
    capacity: usize,
    next_seq: u64,
    generation: u64,
}

impl Shard {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            next_seq: 0,
            generation: 0,
        }
    }

    /// Whether the FIFO item points at the live entry.
    fn is_live(&self, key: &TokenHash, seq: u64) -> bool {
        self.map.get(key).is_some_and(|e| e.seq == seq)
    }

    /// Drops expired entries and stale items from the front of the FIFO.
    fn purge_front(&mut self, now: Instant) {
        while let Some(&(key, seq)) = self.order.front() {
            match self.map.get(&key) {
                Some(e) if e.seq == seq => {
                    if e.expires > now {
                        break;
                    }
                    self.map.remove(&key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Evicts the oldest live entry; returns whether one was evicted.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.is_live(&key, seq) {
                self.map.remove(&key);
                return true;
            }
        }
        false
    }

    /// Rebuilds the FIFO from the map when stale items outnumber live ones.
    fn maybe_compact(&mut self) {
        if self.order.len() <= 2 * self.map.len() + 64 {
            return;
        }
        let mut live: Vec<(TokenHash, u64)> = self.map.iter().map(|(k, e)| (*k, e.seq)).collect();
        live.sort_unstable_by_key(|&(_, seq)| seq);
        self.order = live.into();
    }
}

/// The in-process tier.
pub(crate) struct LocalTier {
    shards: Box<[Mutex<Shard>]>,
    ttl: Duration,
}

/// What [`LocalTier::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Whether the entry was stored.
    pub(crate) stored: bool,
    /// Entries evicted by the capacity bound to make room.
    pub(crate) evicted: usize,
}

impl LocalTier {
    /// A tier holding at most `capacity` entries, each for `ttl`. A zero capacity or TTL stores nothing.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        let capacity = if ttl.is_zero() { 0 } else { capacity };
        let n = capacity.clamp(1, MAX_SHARDS);
        // Split the capacity exactly, so the sum of the shard bounds is the configured bound.
        let shards = (0..n)
            .map(|i| Mutex::new(Shard::new(capacity / n + usize::from(i < capacity % n))))
            .collect();
        Self { shards, ttl }
    }

    /// Whether this tier can hold anything.
    pub(crate) fn is_enabled(&self) -> bool {
        !self.ttl.is_zero() && self.shards.iter().any(|s| lock(s).capacity > 0)
    }

    /// The shard of `key` (`None` never happens: `new` makes at least one shard).
    fn shard(&self, key: &TokenHash) -> Option<MutexGuard<'_, Shard>> {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&key.0[..8]);
        let n = u64::try_from(self.shards.len()).ok()?.max(1);
        // SHA-256 output: any 8 bytes are uniformly distributed.
        let idx = usize::try_from(u64::from_le_bytes(prefix) % n).ok()?;
        self.shards.get(idx).map(lock)
    }

    /// The live, unexpired entry for `key`.
    pub(crate) fn get(&self, key: &TokenHash, now: Instant) -> Option<Arc<SessionSnapshot>> {
        let mut shard = self.shard(key)?;
        let entry = shard.map.get(key)?;
        if entry.expires > now {
            return Some(Arc::clone(&entry.snapshot));
        }
        shard.map.remove(key);
        None
    }

    /// The generation of `key`'s shard, to pass to [`LocalTier::insert`].
    pub(crate) fn generation(&self, key: &TokenHash) -> u64 {
        self.shard(key).map_or(0, |s| s.generation)
    }

    /// Stores `snapshot` under `key` for the tier's TTL from `now`, unless the shard was invalidated since
    /// `generation` was read. Evicts the oldest entries of the shard when it is full.
    pub(crate) fn insert(
        &self,
        key: TokenHash,
        snapshot: Arc<SessionSnapshot>,
        now: Instant,
        generation: u64,
    ) -> Inserted {
        let refused = Inserted {
            stored: false,
            evicted: 0,
        };
        let Some(mut shard) = self.shard(&key) else {
            return refused;
        };
        if shard.generation != generation || shard.capacity == 0 {
            return refused;
        }
        let Some(expires) = now.checked_add(self.ttl) else {
            return refused;
        };
        shard.purge_front(now);
        let mut evicted = 0;
        if !shard.map.contains_key(&key) {
            while shard.map.len() >= shard.capacity && shard.evict_oldest() {
                evicted += 1;
            }
        }
        let seq = shard.next_seq;
        shard.next_seq = shard.next_seq.wrapping_add(1);
        shard.map.insert(
            key,
            Entry {
                snapshot,
                expires,
                seq,
            },
        );
        shard.order.push_back((key, seq));
        shard.maybe_compact();
        Inserted {
            stored: true,
            evicted,
        }
    }

    /// Drops `key` and invalidates in-flight loads of its shard.
    pub(crate) fn remove(&self, key: &TokenHash) {
        if let Some(mut shard) = self.shard(key) {
            shard.generation = shard.generation.wrapping_add(1);
            shard.map.remove(key);
        }
    }

    /// Drops everything and invalidates all in-flight loads.
    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            let mut shard = lock(s);
            shard.generation = shard.generation.wrapping_add(1);
            shard.map.clear();
            shard.order.clear();
        }
    }

    /// Entries held, including expired ones not yet dropped.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }
}

/// Locks a shard; a panic while holding the lock cannot leave a shard inconsistent in a way that matters for a
/// cache, so poisoning is ignored.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(n: u8) -> Arc<SessionSnapshot> {
        Arc::new(SessionSnapshot {
            session_id: uuid::Uuid::from_bytes([n; 16]),
            identity_id: uuid::Uuid::from_bytes([n; 16]),
            expires_at: i64::MAX,
            aal: crate::session::Aal::Aal1,
            identity_has_aal2: false,
            body: "{}".to_owned(),
            traits: "{}".to_owned(),
            metadata_public: "null".to_owned(),
            email_verified: Some(false),
            parsed: Default::default(),
        })
    }

    fn key(n: u32) -> TokenHash {
        TokenHash::of(&format!("token-{n}"))
    }

    fn put(tier: &LocalTier, k: TokenHash, now: Instant) -> Inserted {
        let generation = tier.generation(&k);
        tier.insert(k, snap(1), now, generation)
    }

    #[test]
    fn hit_and_miss() {
        let tier = LocalTier::new(10, Duration::from_secs(30));
        let now = Instant::now();
        assert!(tier.get(&key(1), now).is_none());
        assert!(put(&tier, key(1), now).stored);
        assert_eq!(tier.get(&key(1), now), Some(snap(1)));
        assert!(tier.get(&key(2), now).is_none());
        tier.remove(&key(1));
        assert!(tier.get(&key(1), now).is_none());
    }

    #[test]
    fn entries_expire_after_the_local_ttl() {
        let ttl = Duration::from_secs(30);
        let tier = LocalTier::new(10, ttl);
        let t0 = Instant::now();
        put(&tier, key(1), t0);
        assert!(tier
            .get(&key(1), t0 + ttl - Duration::from_millis(1))
            .is_some());
        assert!(tier.get(&key(1), t0 + ttl).is_none());
        // The expired entry was dropped on the way.
        assert_eq!(tier.len(), 0);
    }

    #[test]
    fn expired_entries_are_purged_before_evicting_live_ones() {
        let ttl = Duration::from_secs(30);
        let tier = LocalTier::new(1, ttl);
        let t0 = Instant::now();
        put(&tier, key(1), t0);
        let later = put(&tier, key(2), t0 + ttl);
        assert_eq!(
            later.evicted, 0,
            "the expired entry is purged, not counted as an eviction"
        );
        assert_eq!(tier.len(), 1);
    }

    #[test]
    fn capacity_bounds_the_tier_and_evicts_the_oldest() {
        let tier = LocalTier::new(40, Duration::from_secs(30));
        let now = Instant::now();
        let mut evicted = 0;
        for n in 0..1000 {
            let ins = put(&tier, key(n), now);
            assert!(ins.stored);
            evicted += ins.evicted;
            assert!(tier.len() <= 40);
        }
        assert_eq!(tier.len(), 40);
        assert_eq!(evicted, 1000 - 40);
        // The most recent insertion of every shard survives; the very first ones are gone.
        assert!(tier.get(&key(999), now).is_some());
        assert!(tier.get(&key(0), now).is_none());
    }

    #[test]
    fn small_capacities_are_exact() {
        for cap in [1usize, 2, 3, 17, 33] {
            let tier = LocalTier::new(cap, Duration::from_secs(30));
            let now = Instant::now();
            for n in 0..200 {
                put(&tier, key(n), now);
            }
            assert_eq!(tier.len(), cap, "capacity {cap}");
        }
    }

    #[test]
    fn replacing_keys_does_not_grow_the_fifo_unboundedly() {
        let tier = LocalTier::new(4, Duration::from_secs(30));
        let now = Instant::now();
        for _ in 0..10_000 {
            put(&tier, key(7), now);
        }
        assert_eq!(tier.len(), 1);
        let fifo: usize = tier.shards.iter().map(|s| lock(s).order.len()).sum();
        assert!(fifo <= 2 + 64 + 1, "fifo {fifo}");
    }

    #[test]
    fn zero_capacity_or_ttl_disables_the_tier() {
        let now = Instant::now();
        for tier in [
            LocalTier::new(0, Duration::from_secs(30)),
            LocalTier::new(100, Duration::ZERO),
        ] {
            assert!(!tier.is_enabled());
            assert!(!put(&tier, key(1), now).stored);
            assert!(tier.get(&key(1), now).is_none());
        }
        assert!(LocalTier::new(1, Duration::from_secs(1)).is_enabled());
    }

    #[test]
    fn an_invalidation_during_a_load_refuses_the_insert() {
        let tier = LocalTier::new(10, Duration::from_secs(30));
        let now = Instant::now();
        let generation = tier.generation(&key(1));
        tier.remove(&key(1)); // a revocation arrives while the load is in flight
        assert!(!tier.insert(key(1), snap(1), now, generation).stored);
        let generation = tier.generation(&key(1));
        tier.clear();
        assert!(!tier.insert(key(1), snap(1), now, generation).stored);
        let generation = tier.generation(&key(1));
        assert!(tier.insert(key(1), snap(1), now, generation).stored);
    }
}
