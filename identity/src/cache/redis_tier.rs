//! The Redis tier: bounded commands with a failure back-off, revocation tombstones, and the invalidation listener.

use super::local::LocalTier;
use super::metrics::CacheMetrics;
use crate::session::TokenHash;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Prefix of cache keys.
pub(crate) const KEY_PREFIX: &str = "session:";
/// What a revoked token's key holds: never valid JSON for a snapshot, so never mistaken for one.
pub(crate) const TOMBSTONE: &[u8] = b"revoked";
/// Listener reconnection back-off bounds.
const LISTENER_MIN_BACKOFF: Duration = Duration::from_millis(100);
const LISTENER_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the listener pings its connection (to notice a silently dead one) and retries pending revocations.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// At most one Redis warning per this period per cache; the others are counted and reported with the next one.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Revocations kept for retry while Redis cannot be reached.
const MAX_PENDING: usize = 100_000;
/// Token hashes per invalidation message.
const HASHES_PER_MESSAGE: usize = 128;

/// The Redis key of a token.
pub(crate) fn key_of(token: &TokenHash) -> String {
    format!("{KEY_PREFIX}{}", token.to_hex())
}

/// How a token leaves the cache everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Permanently: the Redis key becomes a tombstone, so a load that raced the revocation cannot re-cache it.
    Revoke,
    /// The snapshot changed: the Redis key is deleted.
    Invalidate,
}

/// Settings of the Redis tier.
pub(crate) struct RedisSettings {
    pub(crate) channel: String,
    pub(crate) ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) backoff: Duration,
    pub(crate) revoke_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

/// Why a Redis call produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// Not attempted (not connected yet, or inside the back-off window).
    Skipped,
    /// Attempted and failed or timed out.
    Failed,
}

/// The Redis side of a cache.
pub(crate) struct RedisTier {
    client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    pub(crate) settings: RedisSettings,
    /// Monotonic origin for the atomics below.
    origin: Instant,
    /// Nanoseconds since `origin` before which commands are skipped; 0 when none.
    skip_until: AtomicU64,
    /// Nanoseconds since `origin` of the last warning (`u64::MAX` before the first).
    last_warn: AtomicU64,
    suppressed_warnings: AtomicU64,
    /// Whether the listener is subscribed, i.e. this replica hears every revocation.
    subscribed: AtomicBool,
    /// Removals that did not reach Redis, retried by the listener.
    pending: Mutex<HashMap<TokenHash, Removal>>,
    /// Whether a maintenance task (connect, retry removals) is running.
    maintaining: AtomicBool,
}

impl RedisTier {
    pub(crate) fn new(client: redis::Client, settings: RedisSettings) -> Self {
        Self {
            client,
            conn: OnceLock::new(),
            settings,
            origin: Instant::now(),
            skip_until: AtomicU64::new(0),
            last_warn: AtomicU64::new(u64::MAX),
            suppressed_warnings: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
            maintaining: AtomicBool::new(false),
        }
    }

    fn nanos_since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the invalidation listener is subscribed.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    /// Whether the command connection has been established (it reconnects by itself afterwards).
    pub(crate) fn is_connected(&self) -> bool {
        self.conn.get().is_some()
    }

    /// Logs a Redis problem, at most once per [`WARN_EVERY`].
    pub(crate) fn warn(&self, what: &str, err: &dyn std::fmt::Display) {
        let now = self.nanos_since_origin();
        let last = self.last_warn.load(Ordering::Relaxed);
        let period = u64::try_from(WARN_EVERY.as_nanos()).unwrap_or(u64::MAX);
        let due = last == u64::MAX || now.saturating_sub(last) >= period;
        if due
            && self
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.suppressed_warnings.swap(0, Ordering::Relaxed);
            tracing::warn!(
                error = %err,
                suppressed,
                "session cache: {what}; falling back to SQL"
            );
        } else {
            self.suppressed_warnings.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        // One connection attempt per reconnection: retries are paced by the back-off window of `call`, so a
        // reconnection never keeps failing requests waiting, and a returning Redis is used within one window.
        ConnectionManagerConfig::new()
            .set_connection_timeout(self.settings.connect_timeout)
            // Our own per-call timeouts are the real bounds; this one only reaps replies that never come.
            .set_response_timeout(
                self.settings
                    .timeout
                    .max(self.settings.revoke_timeout)
                    .max(Duration::from_millis(1)),
            )
            .set_number_of_retries(0)
    }

    /// Establishes the command connection if it is not up yet; returns whether it is.
    pub(crate) async fn ensure_connected(&self, metrics: &CacheMetrics) -> bool {
        if self.is_connected() {
            return true;
        }
        let attempt =
            ConnectionManager::new_with_config(self.client.clone(), self.manager_config());
        match tokio::time::timeout(self.settings.connect_timeout, attempt).await {
            Ok(Ok(manager)) => {
                // A concurrent attempt may have won; either connection is fine.
                let _ = self.conn.set(manager);
                tracing::info!("session cache: connected to Redis");
                true
            }
            Ok(Err(e)) => {
                CacheMetrics::inc(&metrics.redis_errors);
                self.warn("cannot connect to Redis", &e);
                false
            }
            Err(_) => {
                CacheMetrics::inc(&metrics.redis_errors);
                self.warn("cannot connect to Redis", &"connection timed out");
                false
            }
        }
    }

    /// Runs one Redis call bounded by `timeout`. Inside the back-off window after a failure (when
    /// `respect_backoff`) or before the first connection, the call is skipped. A failure opens the window.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        metrics: &CacheMetrics,
        timeout: Duration,
        respect_backoff: bool,
        f: F,
    ) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let Some(conn) = self.conn.get() else {
            CacheMetrics::inc(&metrics.redis_skipped);
            return Err(Unavailable::Skipped);
        };
        if respect_backoff {
            let until = self.skip_until.load(Ordering::Relaxed);
            if until != 0 && self.nanos_since_origin() < until {
                CacheMetrics::inc(&metrics.redis_skipped);
                return Err(Unavailable::Skipped);
            }
        }
        let outcome = tokio::time::timeout(timeout, f(conn.clone())).await;
        let err: Box<dyn std::fmt::Display + Send> = match outcome {
            Ok(Ok(v)) => {
                self.skip_until.store(0, Ordering::Relaxed);
                return Ok(v);
            }
            Ok(Err(e)) => Box::new(e),
            Err(_) => Box::new("Redis call timed out"),
        };
        CacheMetrics::inc(&metrics.redis_errors);
        let backoff = u64::try_from(self.settings.backoff.as_nanos()).unwrap_or(u64::MAX);
        let until = self.nanos_since_origin().saturating_add(backoff).max(1);
        self.skip_until.store(until, Ordering::Relaxed);
        self.warn("Redis call failed", &err);
        Err(Unavailable::Failed)
    }

    /// `GET` of a token's key.
    pub(crate) async fn get(
        &self,
        metrics: &CacheMetrics,
        token: &TokenHash,
    ) -> Result<Option<Vec<u8>>, Unavailable> {
        let key = key_of(token);
        self.call(metrics, self.settings.timeout, true, |mut c| async move {
            redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
        })
        .await
    }

    /// `DEL` of a token's key (best effort).
    pub(crate) async fn delete(&self, metrics: &CacheMetrics, token: &TokenHash) {
        let key = key_of(token);
        let _ = self
            .call(metrics, self.settings.timeout, true, |mut c| async move {
                redis::cmd("DEL").arg(&key).exec_async(&mut c).await
            })
            .await;
    }

    /// `SET key value EX secs NX` (best effort): never overwrites a tombstone or a fresher value.
    pub(crate) async fn set_if_absent(
        &self,
        metrics: &CacheMetrics,
        token: &TokenHash,
        value: Vec<u8>,
        secs: u64,
    ) {
        let key = key_of(token);
        let _ = self
            .call(metrics, self.settings.timeout, true, |mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("EX")
                    .arg(secs)
                    .arg("NX")
                    .exec_async(&mut c)
                    .await
            })
            .await;
    }

    /// Removes tokens from Redis and tells every replica (tombstones or `DEL`s, then `PUBLISH`es, in one
    /// pipeline). Not subject to the back-off window: a revocation is worth a try. Returns whether Redis took it.
    pub(crate) async fn remove(
        &self,
        metrics: &CacheMetrics,
        tokens: &[(TokenHash, Removal)],
    ) -> bool {
        if tokens.is_empty() {
            return true;
        }
        let tombstone_secs = self.settings.ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        for (token, how) in tokens {
            match how {
                Removal::Revoke => {
                    pipe.cmd("SET")
                        .arg(key_of(token))
                        .arg(TOMBSTONE)
                        .arg("EX")
                        .arg(tombstone_secs)
                        .ignore();
                }
                Removal::Invalidate => {
                    pipe.cmd("DEL").arg(key_of(token)).ignore();
                }
            }
        }
        for chunk in tokens.chunks(HASHES_PER_MESSAGE) {
            let message = chunk
                .iter()
                .map(|(t, _)| t.to_hex())
                .collect::<Vec<_>>()
                .join(" ");
            pipe.cmd("PUBLISH")
                .arg(&self.settings.channel)
                .arg(message)
                .ignore();
        }
        let pipe = &pipe;
        let done = self
            .call(
                metrics,
                self.settings.revoke_timeout,
                false,
                |mut c| async move { pipe.exec_async(&mut c).await },
            )
            .await
            .is_ok();
        if !done {
            let mut pending = self.pending();
            for &(token, how) in tokens {
                if pending.len() >= MAX_PENDING && !pending.contains_key(&token) {
                    tracing::error!(
                        "session cache: too many revocations waiting for Redis; dropping some"
                    );
                    break;
                }
                let slot = pending.entry(token).or_insert(how);
                if how == Removal::Revoke {
                    *slot = Removal::Revoke;
                }
            }
        }
        done
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<TokenHash, Removal>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removals waiting for Redis.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending().len()
    }

    /// Connects the command connection if needed and retries waiting removals, in a task of its own so that the
    /// listener never stops evicting meanwhile; at most one such task runs at a time.
    fn spawn_maintenance(self: &Arc<Self>, metrics: &Arc<CacheMetrics>) {
        if self.is_connected() && self.pending_len() == 0 {
            return;
        }
        if self
            .maintaining
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let (redis, metrics) = (Arc::clone(self), Arc::clone(metrics));
        tokio::spawn(async move {
            if redis.ensure_connected(&metrics).await {
                redis.flush_pending(&metrics).await;
            }
            redis.maintaining.store(false, Ordering::SeqCst);
        });
    }

    /// Retries the removals that did not reach Redis.
    async fn flush_pending(&self, metrics: &CacheMetrics) {
        let batch: Vec<(TokenHash, Removal)> = {
            let pending = self.pending();
            pending.iter().take(4096).map(|(t, h)| (*t, *h)).collect()
        };
        if batch.is_empty() {
            return;
        }
        // On failure `remove` puts them back (they are still there: it only adds).
        if self.remove(metrics, &batch).await {
            let mut pending = self.pending();
            for (token, how) in &batch {
                // Keep an entry upgraded to a revocation meanwhile.
                if pending.get(token) == Some(how) {
                    pending.remove(token);
                }
            }
            tracing::info!(
                count = batch.len(),
                "session cache: delivered revocations that waited for Redis"
            );
        }
    }
}

/// Parses an invalidation message: hex token hashes separated by spaces or commas; anything else is ignored.
pub(crate) fn parse_message(payload: &[u8]) -> Vec<TokenHash> {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Vec::new();
    };
    text.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter_map(TokenHash::from_hex)
        .collect()
}

/// What the listener shares with the cache.
pub(crate) struct ListenerParts {
    pub(crate) redis: Arc<RedisTier>,
    pub(crate) local: Arc<LocalTier>,
    pub(crate) metrics: Arc<CacheMetrics>,
}

/// An in-flight heartbeat `PING` of the listener's connection.
type PingReply = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Why a subscription ended.
enum Ended {
    Shutdown,
    Lost(String),
}

/// The invalidation listener: subscribes to the channel and evicts the hashes it hears from the local tier,
/// forever, reconnecting with back-off, until every handle of the cache is dropped (`shutdown`'s sender).
///
/// The local tier is cleared whenever the subscription is lost and again when it is back, since messages may have
/// been missed; while it is down the cache does not use the local tier at all. `ready` is signalled after the
/// first attempt, successful or not.
pub(crate) async fn run_listener(
    parts: ListenerParts,
    mut shutdown: watch::Receiver<()>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut delay = LISTENER_MIN_BACKOFF;
    let mut connected_before = false;
    loop {
        let attempt = async {
            parts.redis.ensure_connected(&parts.metrics).await;
            subscribe(&parts.redis).await
        };
        let outcome = tokio::select! {
            r = attempt => r,
            _ = shutdown.changed() => return,
        };
        match outcome {
            Err(e) => {
                CacheMetrics::inc(&parts.metrics.redis_errors);
                parts
                    .redis
                    .warn("cannot subscribe to the invalidation channel", &e);
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                delay = (delay * 2).min(LISTENER_MAX_BACKOFF);
            }
            Ok(pubsub) => {
                delay = LISTENER_MIN_BACKOFF;
                // Anything cached before this point may have been revoked unheard.
                parts.local.clear();
                parts.redis.subscribed.store(true, Ordering::SeqCst);
                CacheMetrics::inc(&parts.metrics.listener_connects);
                if connected_before {
                    tracing::info!(
                        "session cache: invalidation listener reconnected; local tier cleared"
                    );
                }
                connected_before = true;
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
                parts.redis.spawn_maintenance(&parts.metrics);
                let ended = listen(&parts, pubsub, &mut shutdown).await;
                parts.redis.subscribed.store(false, Ordering::SeqCst);
                parts.local.clear();
                match ended {
                    Ended::Shutdown => return,
                    Ended::Lost(why) => {
                        CacheMetrics::inc(&parts.metrics.redis_errors);
                        parts.redis.warn(
                            "invalidation listener lost its connection; local tier disabled until it is back",
                            &why,
                        );
                    }
                }
            }
        }
    }
}

async fn subscribe(redis: &RedisTier) -> Result<PubSub, String> {
    let limit = redis.settings.connect_timeout;
    let mut pubsub = match tokio::time::timeout(limit, redis.client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connection timed out".to_owned()),
    };
    match tokio::time::timeout(limit, pubsub.subscribe(&redis.settings.channel)).await {
        Ok(Ok(())) => Ok(pubsub),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("SUBSCRIBE timed out".to_owned()),
    }
}

async fn listen(
    parts: &ListenerParts,
    pubsub: PubSub,
    shutdown: &mut watch::Receiver<()>,
) -> Ended {
    let (sink, mut stream) = pubsub.split();
    let mut ping: Option<PingReply> = None;
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Revocations that failed to reach Redis are retried once per back-off window.
    let every = parts.redis.settings.backoff.max(Duration::from_millis(100));
    let mut retry = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Ended::Lost("connection closed".to_owned());
                };
                let hashes = parse_message(msg.get_payload_bytes());
                CacheMetrics::add(&parts.metrics.invalidations_received, hashes.len() as u64);
                for h in &hashes {
                    parts.local.remove(h);
                }
            }
            _ = heartbeat.tick(), if ping.is_none() => {
                // Pinged alongside message handling, so a slow reply never delays an eviction.
                let mut sink = sink.clone();
                let limit = parts.redis.settings.connect_timeout;
                ping = Some(Box::pin(async move {
                    match tokio::time::timeout(limit, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("PING timed out".to_owned()),
                    }
                }));
            }
            answer = async {
                match ping.as_mut() {
                    Some(p) => p.await,
                    None => std::future::pending().await,
                }
            } => {
                ping = None;
                if let Err(why) = answer {
                    return Ended::Lost(why);
                }
            }
            _ = retry.tick() => parts.redis.spawn_maintenance(&parts.metrics),
            _ = shutdown.changed() => return Ended::Shutdown,
        }
    }
}
