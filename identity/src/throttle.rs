//! Brute-force protection for logins: failed attempts are counted per identifier and per client IP in a sliding
//! window, kept in Redis (shared by every replica) or in-process. Old failures age out, so nobody is locked out
//! for good.
//!
//! An attempt is counted *before* its password is checked: [`Throttle::reserve`] checks every key's window and
//! adds the attempt to all of them in one atomic step (one Lua script in Redis, one lock in-process), or to none
//! when any key is full. So `n` concurrent guesses for one identifier cost at most `limit` password
//! verifications, on one replica or many. A failed attempt simply stays counted; a successful one is taken back
//! with [`Reservation::succeeded`], which also forgets the identifier's earlier failures. An attempt that ends
//! otherwise (an error, a dropped request) stays counted as a failure.
//!
//! Redis is never trusted to be up: every command is bounded by [`REDIS_TIMEOUT`] (configurable), and when Redis fails the
//! throttle fails open onto this replica's own counters (which mirror every failure it records), so a single
//! replica still throttles.

use crate::clock::SharedClock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Bound of every Redis call (connecting included), so a hung Redis cannot stall logins.
pub const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);
/// After a Redis failure, Redis is not tried again for this long (the in-process counters answer meanwhile).
const BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);
/// At most one Redis warning per this period; the others are counted and reported with the next one.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Keys kept in-process; beyond this the stalest are evicted, so random identifiers cannot exhaust memory.
const MAX_LOCAL_KEYS: usize = 100_000;

/// Reserves one attempt on every key, atomically. KEYS: the keys. ARGV[1]: the window's start (ms; older failures
/// are dropped), ARGV[2]: now (ms), ARGV[3]: the attempt's member id, ARGV[4]: the window (ms, the keys' expiry),
/// ARGV[4 + i]: the limit of KEYS[i].
///
/// When every key has room, adds the attempt to each and returns an empty list. Otherwise adds nothing and
/// returns, per key, the score of the failure whose departure allows one more attempt (-1 for keys with room).
const RESERVE_SCRIPT: &str = r"
local out = {}
local refused = false
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local max = tonumber(ARGV[i + 4])
  local n = redis.call('ZCARD', key)
  local at = -1
  if n >= max then
    refused = true
    local e = redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')
    if e[2] then at = tonumber(e[2]) end
  end
  out[i] = at
end
if refused then
  return out
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('PEXPIRE', key, ARGV[4])
end
return {}
";

/// Limits.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// When false, nothing is ever throttled or recorded.
    pub enabled: bool,
    /// Sliding window length.
    pub window: Duration,
    /// Failures per identifier within the window before further attempts are refused (0 is treated as 1).
    pub max_per_identifier: u32,
    /// Failures per client IP within the window (0 is treated as 1).
    pub max_per_ip: u32,
    /// How long one Redis call may take (connecting included) before the local counters decide alone.
    pub redis_timeout: std::time::Duration,
}

impl Default for ThrottleSettings {
    /// 10 failures per identifier and 100 per IP within 5 minutes.
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::minutes(5),
            max_per_identifier: 10,
            max_per_ip: 100,
            redis_timeout: REDIS_TIMEOUT,
        }
    }
}

/// What is being throttled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// A login identifier (e-mail, username); normalised and hashed before use.
    Identifier(String),
    /// A client address; IPv6 addresses count by their /64 prefix.
    Ip(IpAddr),
}

/// An attempt refused because a key is over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Time until one more attempt is allowed (whole seconds, at least one).
    pub retry_after: std::time::Duration,
}

/// Why a throttle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// The Redis URL is malformed.
    #[error("invalid Redis URL for the login throttle")]
    InvalidUrl(#[from] redis::RedisError),
}

/// A key as stored: its name (no raw identifiers), its limit, and whether it names an identifier.
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    max: u32,
    identifier: bool,
}

/// One attempt, already counted as a failure on every key. Drop it (or call [`Reservation::failed`]) when the
/// attempt failed; call [`Reservation::succeeded`] when it succeeded.
#[must_use = "a reservation counts as a failure unless `succeeded` is called"]
#[derive(Debug)]
pub struct Reservation {
    /// `None` when nothing was reserved (throttle off, or no keys).
    throttle: Option<Throttle>,
    id: Uuid,
    slots: Vec<Slot>,
}

impl Reservation {
    /// The attempt failed: it stays counted (this only says so explicitly).
    pub fn failed(self) {}

    /// The attempt succeeded: it no longer counts, and the identifier's earlier failures are forgotten. IP
    /// counters keep their earlier failures: logging into one's own account must not reset the count of guesses
    /// made from that address.
    pub async fn succeeded(self) {
        let Some(t) = self.throttle else {
            return;
        };
        t.inner.local.release(&self.slots, self.id);
        if let Some(r) = &t.inner.redis {
            r.release(&self.slots, self.id).await;
        }
    }
}

/// Login throttle. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct Throttle {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ThrottleSettings,
    clock: SharedClock,
    local: Local,
    redis: Option<RedisBackend>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("settings", &self.inner.settings)
            .field(
                "redis_prefix",
                &self.inner.redis.as_ref().map(|r| &r.prefix),
            )
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle whose counters live in this process only.
    pub fn in_process(settings: ThrottleSettings, clock: SharedClock) -> Self {
        Self::build(settings, clock, None)
    }

    /// A throttle whose counters live in Redis at `url`, under keys starting with `prefix` (e.g. `"portcullis:"`).
    /// Only a malformed URL is an error: an unreachable Redis is warned about and connected to later.
    pub async fn redis(
        settings: ThrottleSettings,
        clock: SharedClock,
        url: &str,
        prefix: &str,
    ) -> Result<Self, ThrottleError> {
        let backend = RedisBackend {
            client: redis::Client::open(url)?,
            conn: tokio::sync::OnceCell::new(),
            prefix: format!("{prefix}throttle:"),
            health: Mutex::new(Health::default()),
            timeout: settings.redis_timeout,
        };
        // Connect now so the first login does not pay for it; a failure is logged and retried on use.
        backend.call(|_| async { Ok(()) }).await;
        Ok(Self::build(settings, clock, Some(backend)))
    }

    fn build(settings: ThrottleSettings, clock: SharedClock, redis: Option<RedisBackend>) -> Self {
        let local = Local::new(MAX_LOCAL_KEYS);
        let inner = Arc::new(Inner {
            settings,
            clock,
            local,
            redis,
        });
        Self { inner }
    }

    /// Counts one attempt against every key before its password is checked, or refuses it, in one atomic step:
    /// `Err(Throttled)` (and nothing counted) when any key already holds its limit of attempts within the window,
    /// with the time until enough of its oldest ones leave the window for one more. Attempts still in progress
    /// count, so concurrent guesses cannot overtake the limit.
    ///
    /// With Redis, the attempt is counted there (shared by every replica) and mirrored in-process; when Redis
    /// fails, the in-process counters decide alone.
    pub async fn reserve(&self, keys: &[ThrottleKey]) -> Result<Reservation, Throttled> {
        let s = &self.inner.settings;
        let id = Uuid::new_v4();
        if !s.enabled || keys.is_empty() {
            return Ok(Reservation {
                throttle: None,
                id,
                slots: Vec::new(),
            });
        }
        let slots = self.slots(keys);
        let now = self.inner.clock.now();
        let from_redis = match &self.inner.redis {
            Some(r) => r.reserve(&slots, now, s.window, id).await,
            None => None,
        };
        let outcome = match from_redis {
            Some(Ok(())) => {
                // Counted in Redis; the mirror lets this replica throttle alone if Redis goes away.
                self.inner.local.reserve(&slots, now, s.window, id, false)
            }
            Some(Err(wait)) => Err(wait),
            None => self.inner.local.reserve(&slots, now, s.window, id, true),
        };
        match outcome {
            Ok(()) => Ok(Reservation {
                throttle: Some(self.clone()),
                id,
                slots,
            }),
            Err(wait) => Err(Throttled {
                retry_after: whole_seconds(wait),
            }),
        }
    }

    fn slots(&self, keys: &[ThrottleKey]) -> Vec<Slot> {
        let s = &self.inner.settings;
        let slot = |k: &ThrottleKey| Slot {
            name: key_name(k),
            max: match k {
                ThrottleKey::Identifier(_) => s.max_per_identifier,
                ThrottleKey::Ip(_) => s.max_per_ip,
            }
            .max(1),
            identifier: matches!(k, ThrottleKey::Identifier(_)),
        };
        keys.iter().map(slot).collect()
    }
}

/// The stored name of a key: `id:` + sha256 hex of the trimmed, lowercased identifier; `ip:` + the IPv4 address
/// (IPv4-mapped IPv6 included) or the IPv6 /64 prefix.
fn key_name(key: &ThrottleKey) -> String {
    match key {
        ThrottleKey::Identifier(raw) => {
            let digest = Sha256::digest(raw.trim().to_lowercase().as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("id:{hex}")
        }
        ThrottleKey::Ip(IpAddr::V4(v4)) => format!("ip:{v4}"),
        ThrottleKey::Ip(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let prefix = Ipv6Addr::from(u128::from(*v6) & !u128::from(u64::MAX));
                format!("ip:{prefix}/64")
            }
        },
    }
}

/// Rounds a wait up to whole seconds, at least one.
fn whole_seconds(wait: Duration) -> std::time::Duration {
    let secs = wait
        .whole_seconds()
        .saturating_add(i64::from(wait.subsec_nanoseconds() > 0));
    std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(1).max(1))
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// In-process counters: per key, the attempts (time and reservation id), oldest first, at most `max + 1`.
struct Local {
    map: Mutex<HashMap<String, VecDeque<(OffsetDateTime, Uuid)>>>,
    max_keys: usize,
}

type LocalMap = HashMap<String, VecDeque<(OffsetDateTime, Uuid)>>;

impl Local {
    fn new(max_keys: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max_keys,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalMap> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Under one lock: drops the attempts that left the window and, when `enforce` and some key holds its
    /// limit, returns the longest wait among those keys and counts nothing; otherwise counts attempt `id` on
    /// every key (keeping the newest `max + 1`).
    fn reserve(
        &self,
        slots: &[Slot],
        now: OffsetDateTime,
        window: Duration,
        id: Uuid,
        enforce: bool,
    ) -> Result<(), Duration> {
        let mut map = self.lock();
        let mut wait: Option<Duration> = None;
        // `window` is trusted config (a Go duration, at most ~292 years): saturate rather than panic.
        let window_start = now.saturating_sub(window);
        for slot in slots {
            let Some(q) = map.get_mut(&slot.name) else {
                continue;
            };
            while q.front().is_some_and(|(t, _)| *t <= window_start) {
                q.pop_front();
            }
            if q.is_empty() {
                map.remove(&slot.name);
            } else if let Some((at, _)) = q
                .len()
                .checked_sub(slot.max as usize)
                .and_then(|i| q.get(i))
            {
                let w = at.saturating_add(window) - now;
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        if let (true, Some(wait)) = (enforce, wait) {
            return Err(wait);
        }
        for slot in slots {
            if map.len() >= self.max_keys && !map.contains_key(&slot.name) {
                Self::evict(&mut map, self.max_keys, window_start);
            }
            let q = map.entry(slot.name.clone()).or_default();
            q.insert(q.partition_point(|(t, _)| *t <= now), (now, id));
            while q.len() > slot.max as usize + 1 {
                q.pop_front();
            }
        }
        Ok(())
    }

    /// Takes back a successful attempt: identifier keys are forgotten, IP keys lose only this attempt.
    fn release(&self, slots: &[Slot], id: Uuid) {
        let mut map = self.lock();
        for slot in slots {
            if slot.identifier {
                map.remove(&slot.name);
            } else if let Some(q) = map.get_mut(&slot.name) {
                q.retain(|(_, i)| *i != id);
                if q.is_empty() {
                    map.remove(&slot.name);
                }
            }
        }
    }

    /// Drops the keys without failures in the window, then the stalest until a tenth of `max` is free, so a
    /// flood of new keys pays for one scan per `max / 10` insertions.
    fn evict(map: &mut LocalMap, max: usize, cutoff: OffsetDateTime) {
        map.retain(|_, q| q.back().is_some_and(|(t, _)| *t > cutoff));
        let excess = map.len().saturating_sub(max - max / 10);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(OffsetDateTime, &String)> = map
            .iter()
            .filter_map(|(k, q)| Some((q.back()?.0, k)))
            .collect();
        by_age.select_nth_unstable_by_key(excess - 1, |(t, _)| *t);
        let stalest: Vec<String> = by_age
            .iter()
            .take(excess)
            .map(|(_, k)| (*k).clone())
            .collect();
        for k in stalest {
            map.remove(&k);
        }
    }
}

/// Redis counters: one sorted set per key, member = random id, score = failure time in ms.
struct RedisBackend {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    health: Mutex<Health>,
    timeout: std::time::Duration,
}

#[derive(Default)]
struct Health {
    skip_until: Option<Instant>,
    last_warn: Option<Instant>,
    suppressed: u64,
}

impl RedisBackend {
    /// Runs [`RESERVE_SCRIPT`]: `Some(Ok(()))` when attempt `id` was counted on every key, `Some(Err(wait))`
    /// with the longest wait among the full keys when it was refused, `None` if Redis failed.
    async fn reserve(
        &self,
        slots: &[Slot],
        now: OffsetDateTime,
        window: Duration,
        id: Uuid,
    ) -> Option<Result<(), Duration>> {
        let now_ms = millis(now);
        let window_ms = i64::try_from(window.whole_milliseconds())
            .unwrap_or(i64::MAX)
            .max(1);
        // EVAL (the `script` feature of redis-rs is off); Redis caches the compiled script by its hash.
        let mut eval = redis::cmd("EVAL");
        eval.arg(RESERVE_SCRIPT).arg(slots.len());
        for slot in slots {
            eval.arg(format!("{}{}", self.prefix, slot.name));
        }
        eval.arg(now_ms.saturating_sub(window_ms))
            .arg(now_ms)
            .arg(id.to_string())
            .arg(window_ms);
        for slot in slots {
            eval.arg(slot.max);
        }
        let eval = &eval;
        let oldest: Vec<i64> = self
            .call(|mut c| async move { eval.query_async(&mut c).await })
            .await?;
        if oldest.is_empty() {
            return Some(Ok(()));
        }
        let wait = oldest
            .into_iter()
            .filter(|at| *at >= 0)
            .map(|at| Duration::milliseconds(at.saturating_add(window_ms).saturating_sub(now_ms)))
            .max()
            // Refused, but the script found no oldest failure: wait a whole window.
            .unwrap_or(window);
        Some(Err(wait))
    }

    /// Takes back a successful attempt: identifier keys are deleted, IP keys lose only this attempt.
    async fn release(&self, slots: &[Slot], id: Uuid) {
        let mut pipe = redis::pipe();
        let member = id.to_string();
        for slot in slots {
            let key = format!("{}{}", self.prefix, slot.name);
            if slot.identifier {
                pipe.del(&key).ignore();
            } else {
                pipe.zrem(&key, &member).ignore();
            }
        }
        let pipe = &pipe;
        self.call(|mut c| async move { pipe.exec_async(&mut c).await })
            .await;
    }

    /// Runs one Redis call, connecting first if needed, all within its timeout; `None` if it failed or was
    /// skipped during the back-off that follows a failure.
    async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let skip_until = self.health().skip_until;
        if skip_until.is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let attempt = async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(self.timeout)
                .set_response_timeout(self.timeout)
                .set_number_of_retries(0);
            let connect = ConnectionManager::new_with_config(self.client.clone(), config);
            let conn = self.conn.get_or_try_init(|| connect).await?.clone();
            f(conn).await
        };
        let err: Box<dyn std::fmt::Display> =
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(v)) => {
                    self.health().skip_until = None;
                    return Some(v);
                }
                Ok(Err(e)) => Box::new(e),
                Err(_) => Box::new("Redis call timed out"),
            };
        // Open the back-off window and log, at most once per `WARN_EVERY`.
        let now = Instant::now();
        let mut h = self.health();
        h.skip_until = Some(now + BACKOFF);
        if h.last_warn
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            h.suppressed += 1;
        } else {
            h.last_warn = Some(now);
            let suppressed = std::mem::take(&mut h.suppressed);
            tracing::warn!(error = %err, suppressed, "login throttle: Redis unavailable; using local counters");
        }
        None
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use redis::AsyncCommands;
    use std::time::Duration as StdDuration;
    use time::macros::datetime;

    const START: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            max_per_identifier: 3,
            max_per_ip: 5,
            ..ThrottleSettings::default()
        }
    }

    fn id(s: &str) -> ThrottleKey {
        ThrottleKey::Identifier(s.to_owned())
    }

    fn ip(s: &str) -> ThrottleKey {
        ThrottleKey::Ip(s.parse().unwrap())
    }

    fn local(s: ThrottleSettings) -> (Throttle, ManualClock) {
        let clock = ManualClock::new(START);
        (Throttle::in_process(s, Arc::new(clock.clone())), clock)
    }

    /// One failed attempt (panics if it was refused).
    async fn fail(t: &Throttle, keys: &[ThrottleKey]) {
        t.reserve(keys).await.expect("attempt refused").failed();
    }

    fn refused(secs: u64) -> Option<Throttled> {
        Some(Throttled {
            retry_after: StdDuration::from_secs(secs),
        })
    }

    /// 3 failures 10 s apart fill the identifier's limit; the next attempt is refused (and not counted) until the
    /// oldest ages out; a success then takes itself back and forgets the identifier.
    async fn core_scenario(t: &Throttle, clock: &ManualClock) {
        let keys = [id("alice@example.com"), ip("192.0.2.1")];
        for _ in 0..3 {
            fail(t, &keys).await;
            clock.advance(Duration::seconds(10));
        }
        // Oldest at -30 s: it leaves the 5 min window in 270 s.
        assert_eq!(t.reserve(&keys).await.err(), refused(270));
        clock.advance(Duration::seconds(269));
        assert_eq!(t.reserve(&keys).await.err(), refused(1));
        clock.advance(Duration::seconds(1));
        let r = t.reserve(&keys).await.expect("the window slides");
        r.succeeded().await;
        // The identifier was forgotten: three more failures fit, then it is full again.
        for _ in 0..3 {
            fail(t, &[id("alice@example.com")]).await;
        }
        assert!(t.reserve(&keys).await.is_err());
        clock.advance(Duration::minutes(5));
        t.reserve(&keys).await.unwrap().succeeded().await;
    }

    #[tokio::test]
    async fn in_process_core() {
        let (t, clock) = local(settings());
        core_scenario(&t, &clock).await;
        assert!(t.inner.local.lock().is_empty(), "nothing left over");
    }

    #[tokio::test]
    async fn ip_limit_is_independent_of_identifier() {
        let (t, _clock) = local(settings());
        for i in 0..5 {
            fail(&t, &[id(&format!("user{i}")), ip("192.0.2.1")]).await;
        }
        assert!(t.reserve(&[id("fresh"), ip("192.0.2.1")]).await.is_err());
        fail(&t, &[id("user0"), ip("192.0.2.2")]).await;
    }

    /// When one key is full, the attempt counts on none of them.
    async fn refusal_counts_nothing(t: &Throttle) {
        // The IP is full: five refused attempts for a fresh identifier do not count against it.
        for i in 0..5 {
            fail(t, &[id(&format!("other{i}")), ip("192.0.2.7")]).await;
        }
        for _ in 0..5 {
            assert!(t.reserve(&[id("dave"), ip("192.0.2.7")]).await.is_err());
        }
        for _ in 0..3 {
            fail(t, &[id("dave")]).await;
        }
        // The identifier is full: refused attempts from a fresh address do not count against the address.
        for _ in 0..5 {
            assert!(t.reserve(&[id("dave"), ip("192.0.2.8")]).await.is_err());
        }
        for _ in 0..5 {
            fail(t, &[ip("192.0.2.8")]).await;
        }
    }

    #[tokio::test]
    async fn in_process_refusal_counts_nothing() {
        let (t, _clock) = local(settings());
        refusal_counts_nothing(&t).await;
    }

    #[tokio::test]
    async fn identifier_variants_share_a_counter_and_success_keeps_ip_failures() {
        let (t, _clock) = local(settings());
        for v in [" Alice@Example.COM", "alice@example.com "] {
            fail(&t, &[id(v), ip("192.0.2.1")]).await;
        }
        fail(&t, &[id("ALICE@EXAMPLE.COM")]).await;
        assert!(t.reserve(&[id("alice@example.com")]).await.is_err());
        // Another identifier signs in from the same address: it takes back its own attempt only.
        t.reserve(&[id("bob"), ip("192.0.2.1")])
            .await
            .unwrap()
            .succeeded()
            .await;
        assert!(t.reserve(&[id("alice@example.com")]).await.is_err());
        for _ in 0..3 {
            fail(&t, &[ip("192.0.2.1")]).await;
        }
        assert!(
            t.reserve(&[ip("192.0.2.1")]).await.is_err(),
            "2 + 3 failures: the address is full, the success did not count"
        );
    }

    #[tokio::test]
    async fn ipv6_counts_per_64() {
        let (t, _clock) = local(settings());
        for i in 1..=5 {
            fail(&t, &[ip(&format!("2001:db8:1:2::{i:x}"))]).await;
        }
        assert!(t.reserve(&[ip("2001:db8:1:2:ffff::1")]).await.is_err());
        fail(&t, &[ip("2001:db8:1:3::1")]).await;
        assert_eq!(
            key_name(&ip("::ffff:192.0.2.1")),
            key_name(&ip("192.0.2.1"))
        );
    }

    #[tokio::test]
    async fn disabled_never_throttles() {
        let (t, _clock) = local(ThrottleSettings {
            enabled: false,
            ..settings()
        });
        for _ in 0..20 {
            fail(&t, &[id("a"), ip("192.0.2.1")]).await;
        }
        assert!(t.inner.local.lock().is_empty());
    }

    /// `n` concurrent attempts on `throttles` (round robin) for one identifier: how many were let through.
    async fn concurrent_admitted(throttles: &[Throttle], n: usize) -> usize {
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let t = throttles[i % throttles.len()].clone();
            let barrier = barrier.clone();
            tasks.spawn(async move {
                barrier.wait().await;
                let keys = [id("target@example.com"), ip("192.0.2.1")];
                t.reserve(&keys).await.map(Reservation::failed).is_ok()
            });
        }
        let mut admitted = 0;
        while let Some(ok) = tasks.join_next().await {
            admitted += usize::from(ok.unwrap());
        }
        admitted
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn in_process_concurrent_attempts_never_exceed_the_limit() {
        let (t, _clock) = local(settings());
        assert_eq!(concurrent_admitted(&[t], 40).await, 3);
    }

    #[test]
    fn local_key_count_is_bounded() {
        let l = Local::new(100);
        for i in 0..1000u32 {
            let slot = Slot {
                name: format!("k{i}"),
                max: 3,
                identifier: true,
            };
            let at = START + Duration::seconds(i.into());
            l.reserve(&[slot], at, Duration::minutes(5), Uuid::new_v4(), true)
                .unwrap();
        }
        let map = l.lock();
        assert!(map.len() <= 100);
        assert!(map.contains_key("k999"), "the newest key survives");
    }

    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let (t, _clock) = local(settings());
        send(t.reserve(&[]));
        send(async {
            if let Ok(r) = t.reserve(&[]).await {
                r.succeeded().await;
            }
        });
    }

    async fn unreachable(url: &str) {
        let clock = ManualClock::new(START);
        let t = Throttle::redis(settings(), Arc::new(clock.clone()), url, "x:");
        let t = t.await.unwrap();
        // Bounded: a dead or hung Redis costs at most a timeout, then the local counters throttle.
        let scenario = async {
            core_scenario(&t, &clock).await;
            refusal_counts_nothing(&t).await;
        };
        tokio::time::timeout(StdDuration::from_secs(5), scenario)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn closed_port_fails_open_onto_local_counters() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        unreachable(&format!("redis://127.0.0.1:{port}/")).await;
    }

    #[tokio::test]
    async fn hung_redis_fails_open_onto_local_counters() {
        // Accepts connections (the kernel's backlog) but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        unreachable(&format!("redis://127.0.0.1:{port}/")).await;
    }

    /// A connection to `TEST_REDIS_URL` (an unreachable Redis fails the test); `None` when it is unset.
    async fn redis_conn() -> Option<(String, redis::aio::MultiplexedConnection)> {
        let url = std::env::var("TEST_REDIS_URL").ok()?;
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
        Some((url, c))
    }

    /// A throttle on `url` under a fresh prefix, its clock, and the prefix.
    /// [`settings`] with room for a loaded test machine: a timed-out call would fall back to the local
    /// counters, the outage behaviour, which these tests are not about.
    fn live_redis_settings() -> ThrottleSettings {
        ThrottleSettings {
            redis_timeout: std::time::Duration::from_secs(10),
            ..settings()
        }
    }

    async fn redis_throttle(url: &str) -> (Throttle, ManualClock, String) {
        let prefix = format!("test:{}:", Uuid::new_v4());
        let clock = ManualClock::new(START);
        let t = Throttle::redis(live_redis_settings(), Arc::new(clock.clone()), url, &prefix);
        (t.await.unwrap(), clock, prefix)
    }

    /// A second replica on the same Redis, prefix and clock.
    async fn replica(url: &str, prefix: &str, clock: &ManualClock) -> Throttle {
        let b = Throttle::redis(live_redis_settings(), Arc::new(clock.clone()), url, prefix);
        b.await.unwrap()
    }

    async fn keys(c: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
        let pattern = format!("{prefix}*");
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(c)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn redis_core() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (t, clock, prefix) = redis_throttle(&url).await;
        core_scenario(&t, &clock).await;
        assert!(keys(&mut c, &prefix).await.is_empty(), "nothing left over");
        fail(&t, &[id("alice@example.com"), ip("192.0.2.1")]).await;
        assert_eq!(keys(&mut c, &prefix).await.len(), 2, "counted in Redis");
        t.reserve(&[id("alice@example.com"), ip("192.0.2.1")])
            .await
            .unwrap()
            .succeeded()
            .await;
        let left = keys(&mut c, &prefix).await;
        assert_eq!(left, [format!("{prefix}throttle:ip:192.0.2.1")]);
        let n: u32 = c.zcard(&left[0]).await.unwrap();
        assert_eq!(n, 1, "the failure stays, the success is taken back");
        let _: () = c.del(&left).await.unwrap();
    }

    #[tokio::test]
    async fn redis_refusal_counts_nothing() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (t, _clock, prefix) = redis_throttle(&url).await;
        refusal_counts_nothing(&t).await;
        let found = keys(&mut c, &prefix).await;
        let _: () = c.del(&found).await.unwrap();
    }

    #[tokio::test]
    async fn redis_replicas_share_counters() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (a, clock, prefix) = redis_throttle(&url).await;
        let b = replica(&url, &prefix, &clock).await;
        let keys_ = [id("bob@example.com")];
        for _ in 0..3 {
            fail(&a, &keys_).await;
        }
        assert_eq!(
            b.reserve(&keys_).await.err(),
            refused(300),
            "b sees a's failures"
        );
        assert_eq!(a.reserve(&keys_).await.err(), refused(300));
        // b's success (once a's failures have aged out) clears the identifier for a too.
        clock.advance(Duration::minutes(5));
        fail(&a, &keys_).await;
        fail(&a, &keys_).await;
        b.reserve(&[id("Bob@Example.com")])
            .await
            .unwrap()
            .succeeded()
            .await;
        for _ in 0..3 {
            fail(&a, &keys_).await;
        }
        let found = keys(&mut c, &prefix).await;
        assert_eq!(found.len(), 1);
        let _: () = c.del(&found).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_concurrent_attempts_on_two_replicas_never_exceed_the_limit() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (a, clock, prefix) = redis_throttle(&url).await;
        let b = replica(&url, &prefix, &clock).await;
        assert_eq!(concurrent_admitted(&[a, b], 40).await, 3);
        let found = keys(&mut c, &prefix).await;
        assert_eq!(found.len(), 2);
        for key in &found {
            let n: u32 = c.zcard(key).await.unwrap();
            assert_eq!(n, 3, "{key}: only admitted attempts count");
        }
        let _: () = c.del(&found).await.unwrap();
    }

    #[tokio::test]
    async fn redis_keys_hold_no_raw_identifier_and_expire() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (t, _clock, prefix) = redis_throttle(&url).await;
        for _ in 0..20 {
            let keys = [id("Carol@Example.com"), ip("2001:db8::1")];
            let _ = t.reserve(&keys).await.map(Reservation::failed);
        }
        let found = keys(&mut c, &prefix).await;
        assert_eq!(found.len(), 2);
        assert!(!found.iter().any(|k| k.to_lowercase().contains("carol")));
        for key in &found {
            let n: u32 = c.zcard(key).await.unwrap();
            assert_eq!(n, 3, "{key} holds {n}: refused attempts do not count");
            let ttl: i64 = c.pttl(key).await.unwrap();
            assert!(ttl > 0 && ttl <= 300_000, "{key} expires with the window");
        }
        let _: () = c.del(&found).await.unwrap();
    }
}
