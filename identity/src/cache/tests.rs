//! Tests of the session cache. The Redis ones use `TEST_REDIS_URL` when it is set (and fail if it is unreachable),
//! else a `redis-server` of their own on a free port; those that stop Redis always run their own.

use super::redis_tier::{key_of, parse_message, TOMBSTONE};
use super::*;
use crate::session::Aal;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

// --- fixtures ------------------------------------------------------------------------------------------------

/// The `now` of every test: a fixed instant, the cache never reads the wall clock.
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()
}

fn snapshot(expires_in_secs: i64) -> SessionSnapshot {
    let id = Uuid::new_v4();
    SessionSnapshot {
        session_id: id,
        identity_id: Uuid::new_v4(),
        expires_at: now().unix_timestamp() + expires_in_secs,
        aal: Aal::Aal1,
        identity_has_aal2: false,
        body: format!(r#"{{"id":"{id}","active":true}}"#),
        traits: r#"{"email":"a@example.com"}"#.to_owned(),
        metadata_public: "null".to_owned(),
        email_verified: Some(false),
        parsed: Default::default(),
    }
}

#[tokio::test]
async fn cached_snapshots_parse_their_body_once() {
    let cache = SessionCache::local_only(config());
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    let a = cache.get(&t, now(), &source).await.unwrap().unwrap();
    let b = cache.get(&t, now(), &source).await.unwrap().unwrap();
    let (ja, jb) = (a.body_json().unwrap(), b.body_json().unwrap());
    assert!(
        std::sync::Arc::ptr_eq(&ja, &jb),
        "one parse per cached snapshot"
    );
    assert_eq!(ja["active"], true);
    // The parsed copy is not stored: a round trip (as through Redis) parses the body again, equal to the original.
    let copy: SessionSnapshot = serde_json::from_str(&serde_json::to_string(&*a).unwrap()).unwrap();
    assert_eq!(copy, *a);
    assert_eq!(copy.body_json().unwrap(), ja);
    let broken = SessionSnapshot {
        body: "{".into(),
        ..snapshot(3600)
    };
    assert!(broken.body_json().is_err());
}

fn token() -> TokenHash {
    TokenHash::of(&crate::session::token::new_session_token())
}

/// A source backed by a map, counting its calls; optionally gated so a test can hold a load in flight.
#[derive(Default)]
struct TestSource {
    sessions: Mutex<HashMap<TokenHash, SessionSnapshot>>,
    calls: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
    gate: Option<(Notify, Semaphore)>,
}

impl TestSource {
    fn gated() -> Self {
        Self {
            gate: Some((Notify::new(), Semaphore::new(0))),
            ..Self::default()
        }
    }

    fn with(self, token: TokenHash, snapshot: SessionSnapshot) -> Self {
        self.put(token, snapshot);
        self
    }

    fn put(&self, token: TokenHash, snapshot: SessionSnapshot) {
        self.sessions.lock().unwrap().insert(token, snapshot);
    }

    fn forget(&self, token: &TokenHash) {
        self.sessions.lock().unwrap().remove(token);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SessionSource for TestSource {
    async fn load(&self, token: &TokenHash) -> Result<Option<SessionSnapshot>, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let found = self.sessions.lock().unwrap().get(token).cloned();
        if let Some((entered, permits)) = &self.gate {
            entered.notify_one();
            permits.acquire().await.unwrap().forget();
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(SourceError::new("database is down"));
        }
        Ok(found)
    }
}

fn config() -> CacheConfig {
    CacheConfig {
        // A channel per test: tests share TEST_REDIS_URL in CI.
        channel: format!("portcullis:test:{}", Uuid::new_v4()),
        ..CacheConfig::default()
    }
}

/// Polls `cond` every millisecond until it holds or `limit` passes; returns the time it took.
async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// --- Redis fixtures ------------------------------------------------------------------------------------------

/// A `redis-server` of the test's own, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH");
        let server = Self {
            child: Some(child),
            port,
        };
        wait_for_ping(&server.url()).await;
        server
    }

    fn url(&self) -> String {
        url_for_port(self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    async fn restart(&mut self) {
        self.kill();
        *self = Self::start_on(self.port).await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn url_for_port(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn ping(url: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(drop)
}

async fn wait_for_ping(url: &str) {
    let start = Instant::now();
    loop {
        match ping(url).await {
            Ok(()) => return,
            Err(e) if start.elapsed() > Duration::from_secs(10) => {
                panic!("redis-server did not answer PING: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `TEST_REDIS_URL` (which must answer) or a server of our own (kept alive by the returned guard).
async fn test_redis() -> (String, Option<RedisServer>) {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            if let Err(e) = ping(&url).await {
                panic!("TEST_REDIS_URL is set but Redis does not answer: {e}");
            }
            (url, None)
        }
        _ => {
            let server = RedisServer::start().await;
            (server.url(), Some(server))
        }
    }
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn raw_get(url: &str, token: &TokenHash) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key_of(token))
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

async fn raw_ttl(url: &str, token: &TokenHash) -> i64 {
    redis::cmd("TTL")
        .arg(key_of(token))
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

async fn redis_cache(url: &str) -> (SessionCache, CacheConfig) {
    let config = CacheConfig {
        redis_url: Some(url.to_owned()),
        ..config()
    };
    let cache = SessionCache::new(config.clone()).await.unwrap();
    assert!(
        cache.redis_subscribed(),
        "listener subscribed when `new` returns"
    );
    (cache, config)
}

// --- local tier ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn local_only_second_get_is_a_local_hit() {
    let cache = SessionCache::local_only(config());
    let (t, other) = (token(), token());
    let s = snapshot(3600);
    let source = TestSource::default().with(t, s.clone());

    assert_eq!(
        cache.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    assert_eq!(
        cache.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    assert_eq!(source.calls(), 1);
    let m = cache.metrics();
    assert_eq!(
        (m.local_hits(), m.local_misses(), m.source_loads()),
        (1, 1, 1)
    );

    // Unknown tokens are not cached: each lookup asks the source.
    assert!(cache.get(&other, now(), &source).await.unwrap().is_none());
    assert!(cache.get(&other, now(), &source).await.unwrap().is_none());
    assert_eq!(source.calls(), 3);

    cache.evict_local(&t);
    cache.get(&t, now(), &source).await.unwrap();
    assert_eq!(source.calls(), 4);
    cache.clear_local();
    assert_eq!(cache.local_len(), 0);
    assert!(!cache.redis_subscribed());
}

#[tokio::test]
async fn local_tier_respects_its_capacity() {
    let cache = SessionCache::local_only(CacheConfig {
        local_capacity: 5,
        ..config()
    });
    let source = TestSource::default();
    for _ in 0..50 {
        let t = token();
        source.put(t, snapshot(3600));
        assert!(cache.get(&t, now(), &source).await.unwrap().is_some());
        assert!(cache.local_len() <= 5);
    }
    assert_eq!(cache.local_len(), 5);
    assert_eq!(cache.metrics().local_evictions(), 45);
}

#[tokio::test]
async fn zero_local_ttl_disables_the_local_tier() {
    let cache = SessionCache::local_only(CacheConfig {
        local_ttl: Duration::ZERO,
        ..config()
    });
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    for _ in 0..3 {
        assert!(cache.get(&t, now(), &source).await.unwrap().is_some());
    }
    assert_eq!(source.calls(), 3);
    assert_eq!(cache.local_len(), 0);
}

#[tokio::test]
async fn expired_snapshots_are_never_returned() {
    let cache = SessionCache::local_only(config());
    let t = token();
    let source = TestSource::default().with(t, snapshot(60));
    assert!(cache.get(&t, now(), &source).await.unwrap().is_some());
    assert_eq!(cache.local_len(), 1);

    // Past expiry the cached copy is not served, and the source's (equally expired) copy is filtered too.
    let later = now() + time::Duration::seconds(60);
    assert!(cache.get(&t, later, &source).await.unwrap().is_none());
    assert_eq!(source.calls(), 2);
    assert_eq!(cache.local_len(), 0);

    // A source handing out an expired snapshot is not trusted either, and nothing is cached.
    let stale = token();
    source.put(stale, snapshot(-1));
    assert!(cache.get(&stale, now(), &source).await.unwrap().is_none());
    assert_eq!(cache.local_len(), 0);
}

#[tokio::test]
async fn source_errors_are_returned_and_not_cached() {
    let cache = SessionCache::local_only(config());
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    source.fail.store(true, Ordering::SeqCst);
    let err = cache.get(&t, now(), &source).await.unwrap_err();
    assert!(err.to_string().contains("database is down"));
    assert_eq!(cache.metrics().source_errors(), 1);
    source.fail.store(false, Ordering::SeqCst);
    assert!(cache.get(&t, now(), &source).await.unwrap().is_some());
}

#[tokio::test]
async fn local_only_revoke_evicts() {
    let cache = SessionCache::local_only(config());
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    cache.get(&t, now(), &source).await.unwrap();
    source.forget(&t);
    cache.revoke(&[t]).await;
    assert!(cache.get(&t, now(), &source).await.unwrap().is_none());
    assert_eq!(cache.metrics().revocations(), 1);
}

#[test]
fn invalidation_messages_parse_leniently() {
    let (a, b) = (token(), token());
    let msg = format!(
        "{} {},{}\n zz nothex {}",
        a.to_hex(),
        b.to_hex(),
        a.to_hex(),
        "0".repeat(63)
    );
    assert_eq!(parse_message(msg.as_bytes()), vec![a, b, a]);
    assert!(parse_message(&[0xff, 0xfe]).is_empty());
    assert!(parse_message(b"").is_empty());
}

#[test]
fn config_debug_hides_the_redis_url() {
    let config = CacheConfig {
        redis_url: Some("redis://:hunter2@db:6379/".to_owned()),
        ..CacheConfig::default()
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(config.ttl, Duration::from_secs(600));
    assert_eq!(config.local_capacity, 100_000);
    assert_eq!(config.local_ttl, Duration::from_secs(30));
    assert_eq!(config.channel, "portcullis:session:revoked");
}

#[tokio::test]
async fn an_invalid_redis_url_is_an_error() {
    let err = SessionCache::new(CacheConfig {
        redis_url: Some("not a url".to_owned()),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, CacheError::InvalidRedisUrl(_)));
    // A blank URL means no Redis.
    let cache = SessionCache::new(CacheConfig {
        redis_url: Some("  ".to_owned()),
        ..config()
    })
    .await
    .unwrap();
    assert!(!cache.redis_subscribed());
}

#[test]
fn new_outside_a_runtime_is_an_error_not_a_panic() {
    let config = CacheConfig {
        redis_url: Some("redis://127.0.0.1:1/".to_owned()),
        ..config()
    };
    let outcome = futures_util::FutureExt::now_or_never(SessionCache::new(config));
    assert!(matches!(outcome, Some(Err(CacheError::NoRuntime))));
}

// --- with Redis ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tier_serves_after_the_local_tier_is_cleared() {
    let (url, _server) = test_redis().await;
    let (cache, _) = redis_cache(&url).await;
    let (t, long) = (token(), token());
    let s = snapshot(120);
    let source = TestSource::default()
        .with(t, s.clone())
        .with(long, snapshot(100_000));

    assert_eq!(
        cache.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    assert_eq!(source.calls(), 1);
    // Second: local hit.
    assert_eq!(
        cache.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    assert_eq!(cache.metrics().local_hits(), 1);
    // After clearing the local tier: a Redis hit, and the source is not asked.
    cache.clear_local();
    assert_eq!(
        cache.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    assert_eq!(source.calls(), 1);
    assert_eq!(cache.metrics().redis_hits(), 1);
    // Which repopulated the local tier.
    assert_eq!(
        cache.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    assert_eq!(cache.metrics().local_hits(), 2);

    // The Redis TTL never outlives the session, nor the configured bound.
    let ttl = raw_ttl(&url, &t).await;
    assert!(ttl > 0 && ttl <= 120, "ttl {ttl}");
    cache.get(&long, now(), &source).await.unwrap();
    let ttl = raw_ttl(&url, &long).await;
    assert!(ttl > 590 && ttl <= 600, "ttl {ttl}");

    // Stored compactly as the snapshot's JSON.
    let stored: SessionSnapshot =
        serde_json::from_slice(&raw_get(&url, &t).await.unwrap()).unwrap();
    assert_eq!(stored, s);
    assert_eq!(cache.metrics().redis_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_reaches_the_other_replica_within_100ms() {
    let (url, _server) = test_redis().await;
    let (a, config) = redis_cache(&url).await;
    let b = SessionCache::new(config).await.unwrap();
    assert!(b.redis_subscribed());
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));

    assert!(a.get(&t, now(), &source).await.unwrap().is_some());
    assert!(b.get(&t, now(), &source).await.unwrap().is_some());
    assert_eq!(source.calls(), 1, "B is served by Redis");
    assert!(a.local_contains(&t) && b.local_contains(&t));

    // SQL first (the caller's job), then the cache.
    source.forget(&t);
    let started = Instant::now();
    a.revoke(&[t]).await;
    let took = started.elapsed();
    assert!(!a.local_contains(&t));
    let delay = wait_for(Duration::from_millis(100), "B to evict", || {
        !b.local_contains(&t)
    })
    .await;
    println!("revoke took {took:?}; the other replica had evicted {delay:?} after it returned");

    assert!(b.get(&t, now(), &source).await.unwrap().is_none());
    assert_eq!(source.calls(), 2, "B asked the source");
    assert!(a.get(&t, now(), &source).await.unwrap().is_none());
    assert_eq!(raw_get(&url, &t).await.as_deref(), Some(TOMBSTONE));
    assert!(b.metrics().invalidations_received() >= 1);
    assert_eq!(a.metrics().revocations(), 1);
    assert_eq!(a.pending_revocations(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_many_tokens_in_one_call() {
    let (url, _server) = test_redis().await;
    let (a, config) = redis_cache(&url).await;
    let b = SessionCache::new(config).await.unwrap();
    let tokens: Vec<TokenHash> = (0..300).map(|_| token()).collect();
    let source = TestSource::default();
    for t in &tokens {
        source.put(*t, snapshot(3600));
        b.get(t, now(), &source).await.unwrap();
    }
    assert_eq!(b.local_len(), 300);
    a.revoke(&tokens).await;
    wait_for(Duration::from_millis(100), "B to evict all", || {
        b.local_len() == 0
    })
    .await;
    assert_eq!(b.metrics().invalidations_received(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_racing_a_revocation_does_not_recache_the_session() {
    let (url, _server) = test_redis().await;
    let (a, config) = redis_cache(&url).await;
    let b = SessionCache::new(config).await.unwrap();
    let t = token();
    let source = Arc::new(TestSource::gated().with(t, snapshot(3600)));

    // B starts a lookup; the source read the session (still active) and is held before returning.
    let load = tokio::spawn({
        let (b, source) = (b.clone(), Arc::clone(&source));
        async move { b.get(&t, now(), &*source).await }
    });
    source.gate.as_ref().unwrap().0.notified().await;

    // Meanwhile the session is revoked, and B hears of it.
    source.forget(&t);
    a.revoke(&[t]).await;
    wait_for(
        Duration::from_millis(100),
        "B to hear the revocation",
        || b.metrics().invalidations_received() >= 1,
    )
    .await;

    // The in-flight lookup completes with what it read, but caches nothing.
    source.gate.as_ref().unwrap().1.add_permits(1000);
    assert!(load.await.unwrap().unwrap().is_some());
    assert!(!b.local_contains(&t));
    assert_eq!(raw_get(&url, &t).await.as_deref(), Some(TOMBSTONE));
    assert!(b.get(&t, now(), &*source).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_deletes_so_the_session_is_cached_again() {
    let (url, _server) = test_redis().await;
    let (a, config) = redis_cache(&url).await;
    let b = SessionCache::new(config).await.unwrap();
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    b.get(&t, now(), &source).await.unwrap();

    let upgraded = SessionSnapshot {
        aal: Aal::Aal2,
        ..snapshot(3600)
    };
    source.put(t, upgraded.clone());
    a.invalidate(&[t]).await;
    wait_for(Duration::from_millis(100), "B to evict", || {
        !b.local_contains(&t)
    })
    .await;
    assert_eq!(raw_get(&url, &t).await, None);

    assert_eq!(
        b.get(&t, now(), &source).await.unwrap().as_deref(),
        Some(&upgraded)
    );
    let stored: SessionSnapshot =
        serde_json::from_slice(&raw_get(&url, &t).await.unwrap()).unwrap();
    assert_eq!(stored, upgraded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_redis_is_a_miss_and_is_deleted() {
    let (url, _server) = test_redis().await;
    let (cache, _) = redis_cache(&url).await;
    let (known, unknown) = (token(), token());
    let s = snapshot(3600);
    let source = TestSource::default().with(known, s.clone());
    let mut conn = raw(&url).await;
    for t in [known, unknown] {
        redis::cmd("SET")
            .arg(key_of(&t))
            .arg("not json")
            .exec_async(&mut conn)
            .await
            .unwrap();
    }

    assert_eq!(
        cache.get(&known, now(), &source).await.unwrap().as_deref(),
        Some(&s)
    );
    // Replaced by the real snapshot.
    let stored: SessionSnapshot =
        serde_json::from_slice(&raw_get(&url, &known).await.unwrap()).unwrap();
    assert_eq!(stored, s);

    assert!(cache.get(&unknown, now(), &source).await.unwrap().is_none());
    assert_eq!(raw_get(&url, &unknown).await, None);
    let m = cache.metrics();
    assert_eq!(
        (m.redis_garbage(), m.redis_misses(), m.redis_errors()),
        (2, 2, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_snapshot_in_redis_is_not_served() {
    let (url, _server) = test_redis().await;
    let (cache, _) = redis_cache(&url).await;
    let t = token();
    let source = TestSource::default().with(t, snapshot(60));
    cache.get(&t, now(), &source).await.unwrap();
    cache.clear_local();
    let later = now() + time::Duration::seconds(61);
    assert!(cache.get(&t, later, &source).await.unwrap().is_none());
    assert_eq!(cache.metrics().redis_hits(), 0);
    assert_eq!(source.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_the_listener() {
    let (url, _server) = test_redis().await;
    let (cache, config) = redis_cache(&url).await;
    let clone = cache.clone();
    let subscribers = || async {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&config.channel)
            .query_async(&mut raw(&url).await)
            .await
            .unwrap();
        n
    };
    assert_eq!(subscribers().await, 1);
    drop(cache);
    assert_eq!(subscribers().await, 1, "a clone is still alive");
    drop(clone);
    let start = Instant::now();
    while subscribers().await != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "listener still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// --- Redis failures ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_to_the_source_and_recovers() {
    let mut server = RedisServer::start().await;
    let url = server.url();
    let (cache, _) = redis_cache(&url).await;
    let (t, fresh) = (token(), token());
    let source = TestSource::default()
        .with(t, snapshot(3600))
        .with(fresh, snapshot(3600));
    cache.get(&t, now(), &source).await.unwrap();
    cache.get(&t, now(), &source).await.unwrap();
    assert_eq!(cache.metrics().local_hits(), 1);
    let errors_before = cache.metrics().redis_errors();

    server.kill();
    // The listener notices, stops trusting the local tier, and clears it.
    wait_for(Duration::from_secs(10), "the listener to notice", || {
        !cache.redis_subscribed()
    })
    .await;
    assert_eq!(cache.local_len(), 0);

    // Lookups are answered by the source, correctly and quickly.
    let start = Instant::now();
    for _ in 0..50 {
        assert!(cache.get(&t, now(), &source).await.unwrap().is_some());
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "50 lookups took {took:?}");
    assert_eq!(source.calls(), 51);
    let m = cache.metrics();
    assert!(m.redis_errors() > errors_before);
    assert!(m.redis_skipped() > 0, "the back-off window skips Redis");

    // A revocation during the outage waits for Redis.
    source.forget(&t);
    cache.revoke(&[t]).await;
    assert_eq!(cache.pending_revocations(), 1);
    assert!(cache.get(&t, now(), &source).await.unwrap().is_none());

    server.restart().await;
    wait_for(
        Duration::from_secs(15),
        "the listener to resubscribe",
        || cache.redis_subscribed(),
    )
    .await;
    assert_eq!(cache.metrics().listener_connects(), 2);
    wait_for(Duration::from_secs(15), "the pending revocation", || {
        cache.pending_revocations() == 0
    })
    .await;
    assert_eq!(raw_get(&url, &t).await.as_deref(), Some(TOMBSTONE));

    // Commands recover too: a fresh token lands in Redis again…
    let start = Instant::now();
    loop {
        cache.evict_local(&fresh);
        cache.get(&fresh, now(), &source).await.unwrap();
        if raw_get(&url, &fresh).await.is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "Redis never repopulated"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // …and serves it once the local tier forgets it.
    let (hits, calls) = (cache.metrics().redis_hits(), source.calls());
    cache.clear_local();
    assert!(cache.get(&fresh, now(), &source).await.unwrap().is_some());
    assert_eq!(cache.metrics().redis_hits(), hits + 1);
    assert_eq!(source.calls(), calls);
    // And the local tier is in use again.
    assert!(cache.get(&fresh, now(), &source).await.unwrap().is_some());
    assert!(cache.local_contains(&fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnect_clears_the_local_tier() {
    let mut server = RedisServer::start().await;
    let (cache, _) = redis_cache(&server.url()).await;
    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    cache.get(&t, now(), &source).await.unwrap();
    assert!(cache.local_contains(&t));

    server.restart().await;
    wait_for(Duration::from_secs(15), "a reconnect", || {
        cache.metrics().listener_connects() == 2 && cache.redis_subscribed()
    })
    .await;
    assert_eq!(
        cache.local_len(),
        0,
        "messages may have been missed: the local tier starts over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_at_start_then_connected_later() {
    let port = free_port();
    let start = Instant::now();
    let cache = SessionCache::new(CacheConfig {
        redis_url: Some(url_for_port(port)),
        ..config()
    })
    .await
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "new took {:?}",
        start.elapsed()
    );
    assert!(!cache.redis_subscribed());
    assert!(cache.metrics().redis_errors() >= 1);

    let t = token();
    let source = TestSource::default().with(t, snapshot(3600));
    for _ in 0..3 {
        assert!(cache.get(&t, now(), &source).await.unwrap().is_some());
    }
    assert_eq!(
        source.calls(),
        3,
        "no local tier while revocations cannot be heard"
    );

    // Redis shows up: the cache connects by itself.
    let server = RedisServer::start_on(port).await;
    wait_for(Duration::from_secs(15), "the listener to subscribe", || {
        cache.redis_subscribed()
    })
    .await;
    let start = Instant::now();
    while raw_get(&server.url(), &t).await.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "Redis never populated"
        );
        cache.evict_local(&t);
        cache.get(&t, now(), &source).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_older_versions_are_reloaded_never_read_as_verified() {
    let (url, _server) = test_redis().await;
    let (cache, _) = redis_cache(&url).await;
    let t = token();
    // What the source says now: the address is not verified.
    let current = snapshot(3600);
    let source = TestSource::default().with(t, current.clone());
    // An entry as an older version wrote it: no `email_verified` field at all.
    let mut old = serde_json::to_value(SessionSnapshot {
        email_verified: Some(true),
        ..current.clone()
    })
    .unwrap();
    old.as_object_mut().unwrap().remove("email_verified");
    let decoded: SessionSnapshot = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(decoded.email_verified, None, "older entries still decode");
    assert!(!decoded.is_email_verified());
    redis::cmd("SET")
        .arg(key_of(&t))
        .arg(old.to_string())
        .exec_async(&mut raw(&url).await)
        .await
        .unwrap();

    let got = cache.get(&t, now(), &source).await.unwrap().unwrap();
    assert_eq!(*got, current);
    assert_eq!(got.email_verified, Some(false));
    let m = cache.metrics();
    assert_eq!(
        (m.redis_hits(), m.redis_misses(), m.redis_garbage()),
        (0, 1, 0)
    );
    // Replaced by the current snapshot, which carries the field.
    let stored: SessionSnapshot =
        serde_json::from_slice(&raw_get(&url, &t).await.unwrap()).unwrap();
    assert_eq!(stored.email_verified, Some(false));
}
