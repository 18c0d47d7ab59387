//! Brute-force protection for logins: failed attempts are counted per identifier and per client IP in a sliding
//! window, kept in Redis (shared by every replica) or in-process. Old failures age out, so nobody is locked out
//! for good.
//!
//! Redis is never trusted to be up: every command is bounded by [`REDIS_TIMEOUT`], and when Redis fails the
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

/// Bound of every Redis call (connecting included), so a hung Redis cannot stall logins.
pub const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);
/// After a Redis failure, Redis is not tried again for this long (the in-process counters answer meanwhile).
const BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);
/// At most one Redis warning per this period; the others are counted and reported with the next one.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Keys kept in-process; beyond this the stalest are evicted, so random identifiers cannot exhaust memory.
const MAX_LOCAL_KEYS: usize = 100_000;

/// For each key: drops the failures that left the window (score <= ARGV[1]), and, when the key has at least
/// its limit (ARGV[i+1]) of failures, returns the score of the failure whose departure allows one more attempt;
/// otherwise -1.
const CHECK_SCRIPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local max = tonumber(ARGV[i + 1])
  local n = redis.call('ZCARD', key)
  local at = -1
  if n >= max then
    local e = redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')
    if e[2] then at = tonumber(e[2]) end
  end
  out[i] = at
end
return out
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
}

impl Default for ThrottleSettings {
    /// 10 failures per identifier and 100 per IP within 5 minutes.
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::minutes(5),
            max_per_identifier: 10,
            max_per_ip: 100,
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

/// A key as stored: its name (no raw identifiers) and its limit.
struct Slot {
    name: String,
    max: u32,
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

    /// `Ok(())` when an attempt may proceed; `Err(Throttled)` when any key is over its limit, with the time until
    /// enough of its oldest failures leave the window for one more attempt.
    pub async fn check(&self, keys: &[ThrottleKey]) -> Result<(), Throttled> {
        let s = &self.inner.settings;
        if !s.enabled || keys.is_empty() {
            return Ok(());
        }
        let slots = self.slots(keys);
        let now = self.inner.clock.now();
        let from_redis = match &self.inner.redis {
            Some(r) => r.check(&slots, now, s.window).await,
            None => None,
        };
        let wait = from_redis.unwrap_or_else(|| self.inner.local.check(&slots, now, s.window));
        match wait {
            Some(wait) => Err(Throttled {
                retry_after: whole_seconds(wait),
            }),
            None => Ok(()),
        }
    }

    /// Records one failed attempt for every key (in Redis when configured, and always in-process as the fallback).
    pub async fn record_failure(&self, keys: &[ThrottleKey]) {
        let s = &self.inner.settings;
        if !s.enabled || keys.is_empty() {
            return;
        }
        let slots = self.slots(keys);
        let now = self.inner.clock.now();
        self.inner.local.record(&slots, now, s.window);
        if let Some(r) = &self.inner.redis {
            r.record(&slots, now, s.window).await;
        }
    }

    /// Forgets an identifier's failures (after a successful login). IP counters are kept, so a `ThrottleKey::Ip`
    /// is ignored: logging into one's own account must not reset the count of guesses made from that address.
    pub async fn clear(&self, key: &ThrottleKey) {
        if !matches!(key, ThrottleKey::Identifier(_)) {
            return;
        }
        let name = key_name(key);
        self.inner.local.clear(&name);
        if let Some(r) = &self.inner.redis {
            let key = format!("{}{name}", r.prefix);
            r.call(|mut c| async move { redis::cmd("DEL").arg(&key).exec_async(&mut c).await })
                .await;
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
    let secs = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
    std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(1).max(1))
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// In-process counters: failure times per key, oldest first, at most `max + 1` per key.
struct Local {
    map: Mutex<HashMap<String, VecDeque<OffsetDateTime>>>,
    max_keys: usize,
}

impl Local {
    fn new(max_keys: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max_keys,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<OffsetDateTime>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The longest wait among the keys over their limit, if any.
    fn check(&self, slots: &[Slot], now: OffsetDateTime, window: Duration) -> Option<Duration> {
        let mut map = self.lock();
        let mut wait: Option<Duration> = None;
        for slot in slots {
            let Some(q) = map.get_mut(&slot.name) else {
                continue;
            };
            while q.front().is_some_and(|t| *t <= now - window) {
                q.pop_front();
            }
            let max = slot.max as usize;
            if q.is_empty() {
                map.remove(&slot.name);
            } else if let Some(at) = q.len().checked_sub(max).and_then(|i| q.get(i)) {
                let w = *at + window - now;
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        wait
    }

    fn record(&self, slots: &[Slot], now: OffsetDateTime, window: Duration) {
        let mut map = self.lock();
        for slot in slots {
            if map.len() >= self.max_keys && !map.contains_key(&slot.name) {
                Self::evict(&mut map, self.max_keys, now - window);
            }
            let q = map.entry(slot.name.clone()).or_default();
            q.insert(q.partition_point(|t| *t <= now), now);
            while q.len() > slot.max as usize + 1 {
                q.pop_front();
            }
        }
    }

    /// Drops the keys without failures in the window, then the stalest until a tenth of `max` is free, so a
    /// flood of new keys pays for one scan per `max / 10` insertions.
    fn evict(
        map: &mut HashMap<String, VecDeque<OffsetDateTime>>,
        max: usize,
        cutoff: OffsetDateTime,
    ) {
        map.retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
        let excess = map.len().saturating_sub(max - max / 10);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(OffsetDateTime, &String)> = map
            .iter()
            .filter_map(|(k, q)| Some((*q.back()?, k)))
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

    fn clear(&self, name: &str) {
        self.lock().remove(name);
    }
}

/// Redis counters: one sorted set per key, member = random id, score = failure time in ms.
struct RedisBackend {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    skip_until: Option<Instant>,
    last_warn: Option<Instant>,
    suppressed: u64,
}

impl RedisBackend {
    /// The longest wait among the keys over their limit (`Some(None)`: none is), or `None` if Redis failed.
    async fn check(
        &self,
        slots: &[Slot],
        now: OffsetDateTime,
        window: Duration,
    ) -> Option<Option<Duration>> {
        let now_ms = millis(now);
        let window_ms = i64::try_from(window.whole_milliseconds()).unwrap_or(i64::MAX);
        // EVAL (the `script` feature of redis-rs is off); Redis caches the compiled script by its hash.
        let mut eval = redis::cmd("EVAL");
        eval.arg(CHECK_SCRIPT).arg(slots.len());
        for slot in slots {
            eval.arg(format!("{}{}", self.prefix, slot.name));
        }
        eval.arg(now_ms.saturating_sub(window_ms));
        for slot in slots {
            eval.arg(slot.max);
        }
        let eval = &eval;
        let oldest: Vec<i64> = self
            .call(|mut c| async move { eval.query_async(&mut c).await })
            .await?;
        let wait = oldest
            .into_iter()
            .filter(|at| *at >= 0)
            .map(|at| Duration::milliseconds(at.saturating_add(window_ms).saturating_sub(now_ms)))
            .max();
        Some(wait)
    }

    /// Adds a failure to every key, keeps the newest `max + 1`, and expires each key a window after its last failure.
    async fn record(&self, slots: &[Slot], now: OffsetDateTime, window: Duration) {
        let window_ms = window.whole_milliseconds().max(1);
        let mut pipe = redis::pipe();
        for slot in slots {
            let key = format!("{}{}", self.prefix, slot.name);
            let keep = i64::from(slot.max) + 1;
            pipe.zadd(&key, uuid::Uuid::new_v4().to_string(), millis(now))
                .ignore();
            pipe.zremrangebyrank(&key, 0, -(keep + 1) as isize).ignore();
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(window_ms.to_string())
                .ignore();
        }
        let pipe = &pipe;
        self.call(|mut c| async move { pipe.exec_async(&mut c).await })
            .await;
    }

    /// Runs one Redis call, connecting first if needed, all within [`REDIS_TIMEOUT`]; `None` if it failed or was
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
                .set_connection_timeout(REDIS_TIMEOUT)
                .set_response_timeout(REDIS_TIMEOUT)
                .set_number_of_retries(0);
            let connect = ConnectionManager::new_with_config(self.client.clone(), config);
            let conn = self.conn.get_or_try_init(|| connect).await?.clone();
            f(conn).await
        };
        let err: Box<dyn std::fmt::Display> =
            match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
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

    /// 3 failures 10 s apart: the first two leave room, the third refuses until the oldest ages out.
    async fn core_scenario(t: &Throttle, clock: &ManualClock) {
        let keys = [id("alice@example.com"), ip("192.0.2.1")];
        for _ in 0..2 {
            assert_eq!(t.check(&keys).await, Ok(()));
            t.record_failure(&keys).await;
            clock.advance(Duration::seconds(10));
        }
        assert_eq!(t.check(&keys).await, Ok(()));
        t.record_failure(&keys).await;
        clock.advance(Duration::seconds(10));
        // Oldest at -30 s: it leaves the 5 min window in 270 s.
        let refused = Err(Throttled {
            retry_after: StdDuration::from_secs(270),
        });
        assert_eq!(t.check(&keys).await, refused);
        clock.advance(Duration::seconds(269));
        assert!(t.check(&keys).await.is_err());
        clock.advance(Duration::seconds(1));
        assert_eq!(t.check(&keys).await, Ok(()), "the window slides");
        clock.advance(Duration::minutes(5));
        assert_eq!(t.check(&keys).await, Ok(()));
    }

    #[tokio::test]
    async fn in_process_core() {
        let (t, clock) = local(settings());
        core_scenario(&t, &clock).await;
    }

    #[tokio::test]
    async fn ip_limit_is_independent_of_identifier() {
        let (t, _clock) = local(settings());
        for i in 0..5 {
            t.record_failure(&[id(&format!("user{i}")), ip("192.0.2.1")])
                .await;
        }
        assert!(t.check(&[id("fresh"), ip("192.0.2.1")]).await.is_err());
        assert_eq!(t.check(&[id("user0"), ip("192.0.2.2")]).await, Ok(()));
    }

    #[tokio::test]
    async fn identifier_variants_share_a_counter_and_clear_resets_only_identifiers() {
        let (t, _clock) = local(settings());
        for v in [
            " Alice@Example.COM",
            "alice@example.com ",
            "ALICE@EXAMPLE.COM",
        ] {
            t.record_failure(&[id(v), ip("192.0.2.1")]).await;
        }
        assert!(t.check(&[id("alice@example.com")]).await.is_err());
        t.clear(&id(" ALICE@example.com")).await;
        assert_eq!(t.check(&[id("alice@example.com")]).await, Ok(()));
        t.record_failure(&[ip("192.0.2.1")]).await;
        t.record_failure(&[ip("192.0.2.1")]).await;
        t.clear(&ip("192.0.2.1")).await;
        assert!(
            t.check(&[ip("192.0.2.1")]).await.is_err(),
            "IP counters are kept"
        );
    }

    #[tokio::test]
    async fn ipv6_counts_per_64() {
        let (t, _clock) = local(settings());
        for i in 1..=5 {
            t.record_failure(&[ip(&format!("2001:db8:1:2::{i:x}"))])
                .await;
        }
        assert!(t.check(&[ip("2001:db8:1:2:ffff::1")]).await.is_err());
        assert_eq!(t.check(&[ip("2001:db8:1:3::1")]).await, Ok(()));
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
            t.record_failure(&[id("a"), ip("192.0.2.1")]).await;
            assert_eq!(t.check(&[id("a"), ip("192.0.2.1")]).await, Ok(()));
        }
    }

    #[test]
    fn local_key_count_is_bounded() {
        let l = Local::new(100);
        for i in 0..1000u32 {
            let slot = Slot {
                name: format!("k{i}"),
                max: 3,
            };
            l.record(
                &[slot],
                START + Duration::seconds(i.into()),
                Duration::minutes(5),
            );
        }
        let map = l.lock();
        assert!(map.len() <= 100);
        assert!(map.contains_key("k999"), "the newest key survives");
    }

    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let (t, _clock) = local(settings());
        send(t.check(&[]));
        send(t.record_failure(&[]));
        send(t.clear(&id("a")));
    }

    async fn unreachable(url: &str) {
        let clock = ManualClock::new(START);
        let t = Throttle::redis(settings(), Arc::new(clock.clone()), url, "x:");
        let t = t.await.unwrap();
        // Bounded: a dead or hung Redis costs at most a timeout, then the local counters throttle.
        let scenario = core_scenario(&t, &clock);
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
    async fn redis_throttle(url: &str) -> (Throttle, ManualClock, String) {
        let prefix = format!("test:{}:", uuid::Uuid::new_v4());
        let clock = ManualClock::new(START);
        let t = Throttle::redis(settings(), Arc::new(clock.clone()), url, &prefix);
        (t.await.unwrap(), clock, prefix)
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
        assert!(keys(&mut c, &prefix).await.is_empty(), "aged-out sets go");
        t.record_failure(&[id("alice@example.com"), ip("192.0.2.1")])
            .await;
        assert_eq!(keys(&mut c, &prefix).await.len(), 2, "counted in Redis");
        t.clear(&id("alice@example.com")).await;
        let left = keys(&mut c, &prefix).await;
        assert_eq!(left, [format!("{prefix}throttle:ip:192.0.2.1")]);
        let _: () = c.del(&left).await.unwrap();
    }

    #[tokio::test]
    async fn redis_replicas_share_counters() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (a, clock, prefix) = redis_throttle(&url).await;
        let b = Throttle::redis(settings(), Arc::new(clock), &url, &prefix);
        let b = b.await.unwrap();
        let keys_ = [id("bob@example.com")];
        for _ in 0..3 {
            a.record_failure(&keys_).await;
        }
        let refused = Err(Throttled {
            retry_after: StdDuration::from_secs(300),
        });
        assert_eq!(b.check(&keys_).await, refused, "b sees a's failures");
        b.clear(&id("Bob@Example.com")).await;
        assert_eq!(a.check(&keys_).await, Ok(()), "a sees b's clear");
        assert!(keys(&mut c, &prefix).await.is_empty());
    }

    #[tokio::test]
    async fn redis_keys_hold_no_raw_identifier_and_are_capped() {
        let Some((url, mut c)) = redis_conn().await else {
            return;
        };
        let (t, _clock, prefix) = redis_throttle(&url).await;
        for _ in 0..20 {
            t.record_failure(&[id("Carol@Example.com"), ip("2001:db8::1")])
                .await;
        }
        let found = keys(&mut c, &prefix).await;
        assert_eq!(found.len(), 2);
        assert!(!found.iter().any(|k| k.to_lowercase().contains("carol")));
        for key in &found {
            let n: u32 = c.zcard(key).await.unwrap();
            assert!(n <= 6, "{key} holds {n}: capped at max + 1");
            let ttl: i64 = c.pttl(key).await.unwrap();
            assert!(ttl > 0 && ttl <= 300_000, "{key} expires with the window");
        }
        let _: () = c.del(&found).await.unwrap();
    }
}
