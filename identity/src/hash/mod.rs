//! Kratos-compatible password hashing.
//!
//! New hashes are created with the configured [`Algorithm`] (argon2id by
//! default, or bcrypt). Verification understands every format Ory Kratos'
//! `hash` package produces or imports in the families below; the prefix of
//! the stored string decides the format:
//!
//! | prefix | layout |
//! | --- | --- |
//! | `$2a$` `$2b$` `$2y$` `$2z$` `$2$` | bcrypt modular crypt, `$2b$NN$<22 salt><31 checksum>` |
//! | `$argon2id$` `$argon2i$` | `$argon2id$v=19$m=<KiB>,t=<iters>,p=<lanes>$<salt>$<hash>` (unpadded std base64); key length = decoded hash length |
//! | `$pbkdf2-sha<1-3 digits>$` | `$pbkdf2-sha256$i=<iters>,l=<keylen>$<salt>$<hash>` (unpadded std base64); key length = decoded hash length. As in Kratos, `sha224`/`sha384` mean **SHA3**-224/384 and any other digits fall back to SHA-256 |
//! | `$scrypt$` | `$scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>` (padded std base64); `ln` holds N itself (a power of two > 1) |
//! | `$md5-crypt$` `$sha256-crypt$` `$sha512-crypt$` | crypt(3) `$1$`/`$5$`/`$6$` bodies with Kratos' prefixes; sha-crypt may carry `rounds=N$` |
//! | `{SSHA}` `{SSHA256}` `{SSHA512}` | LDAP: std base64(digest ‖ salt), digest = SHA(password ‖ salt) |
//!
//! Anything else is [`HashError::UnknownFormat`]. Every derived key is
//! compared in constant time.
//!
//! # Resource limits
//! A stored hash may come from an identity import, so its parameters are
//! untrusted. Parsing rejects (with [`HashError::Malformed`]) anything beyond
//! the `MAX_*` constants of this module before doing any work, so no input
//! can make verification allocate unbounded memory or run for minutes.
//! Nothing in this module panics on any input.
//!
//! # Concurrency
//! [`Hasher::hash`] and [`Hasher::verify`] run the CPU-heavy work on tokio's
//! blocking pool behind a semaphore sized to the number of available cores,
//! so a burst of logins queues instead of starving the async workers or
//! allocating `n × memory` at once. The permit travels with the blocking
//! task, so a cancelled request still holds its slot until the work ends.

mod formats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, Semaphore};
use zeroize::Zeroizing;

use formats::{Argon2Variant, Parsed};

/// Largest argon2 memory cost accepted anywhere (4 GiB, in KiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Largest argon2 iteration count accepted.
pub const MAX_ARGON2_ITERATIONS: u32 = 1024;
/// Largest argon2 `memory_kib × iterations` product accepted (16 GiB of block
/// fills — tens of seconds on one core).
pub const MAX_ARGON2_WORK_KIB: u64 = 16 * 1024 * 1024;
/// Largest argon2 parallelism accepted (Kratos stores it as a `uint8`).
pub const MAX_ARGON2_PARALLELISM: u32 = 255;
/// Smallest argon2 salt the `argon2` crate accepts.
pub const MIN_ARGON2_SALT_LEN: usize = 8;
/// Smallest argon2 output the `argon2` crate accepts.
pub const MIN_ARGON2_KEY_LEN: usize = 4;
/// Largest salt (decoded bytes) accepted in any format.
pub const MAX_SALT_LEN: usize = 1024;
/// Largest derived key (decoded bytes) accepted in any format.
pub const MAX_KEY_LEN: usize = 1024;
/// Smallest bcrypt cost.
pub const MIN_BCRYPT_COST: u32 = 4;
/// Largest bcrypt cost accepted (the format allows 31, which takes days).
pub const MAX_BCRYPT_COST: u32 = 18;
/// bcrypt only looks at the first 72 bytes; longer passwords are refused.
pub const BCRYPT_MAX_PASSWORD_LEN: usize = 72;
/// Largest PBKDF2 iteration count accepted.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Largest PBKDF2 `iterations × output blocks` product accepted.
pub const MAX_PBKDF2_WORK: u64 = 10_000_000;
/// Largest scrypt N accepted (2^20).
pub const MAX_SCRYPT_N: u64 = 1 << 20;
/// Largest scrypt memory (`128 × N × r` bytes) accepted: 1 GiB.
pub const MAX_SCRYPT_MEMORY_BYTES: u64 = 1 << 30;
/// Largest scrypt `N × r × p` product accepted.
pub const MAX_SCRYPT_WORK: u64 = 1 << 25;
/// Largest sha256-crypt/sha512-crypt `rounds` accepted.
pub const MAX_SHA_CRYPT_ROUNDS: u32 = 10_000_000;
/// Passwords longer than this never match a crypt(3) hash (sha-crypt's cost
/// is quadratic in the password length).
pub const MAX_CRYPT_PASSWORD_LEN: usize = 4096;

/// First memory size tried by [`calibrate`]: 16 MiB.
const CALIBRATION_START_MEMORY_KIB: u32 = 16 * 1024;

/// Algorithm used for *new* hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// argon2id (Kratos' default).
    #[default]
    Argon2,
    /// bcrypt.
    Bcrypt,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
        })
    }
}

/// argon2id parameters for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    /// Memory cost in KiB (`m`).
    pub memory_kib: u32,
    /// Number of passes (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
    /// Random salt length in bytes.
    pub salt_length: u32,
    /// Derived key length in bytes.
    pub key_length: u32,
}

impl Default for Argon2Params {
    /// Kratos' defaults: 128 MB, 1 iteration, 2 × CPUs lanes, 16-byte salt,
    /// 32-byte key.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let parallelism = u32::try_from(cpus.saturating_mul(2))
            .unwrap_or(MAX_ARGON2_PARALLELISM)
            .clamp(1, MAX_ARGON2_PARALLELISM);
        Self {
            memory_kib: 128 * 1024,
            iterations: 1,
            parallelism,
            salt_length: 16,
            key_length: 32,
        }
    }
}

/// bcrypt parameters for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BcryptParams {
    /// Work factor (log2 rounds), 4..=[`MAX_BCRYPT_COST`].
    pub cost: u32,
}

impl Default for BcryptParams {
    fn default() -> Self {
        Self { cost: 12 }
    }
}

/// Hasher configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HasherConfig {
    /// Algorithm for new hashes.
    pub algorithm: Algorithm,
    /// argon2id parameters (used when `algorithm` is argon2).
    pub argon2: Argon2Params,
    /// bcrypt parameters (used when `algorithm` is bcrypt).
    pub bcrypt: BcryptParams,
}

/// Errors of this module. Messages never contain passwords or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The stored hash has no supported prefix.
    #[error("The given hash does not match any known hash format")]
    UnknownFormat,
    /// Known format but unusable content or parameters, or a password the
    /// algorithm cannot take. The message is safe to show to a client.
    #[error("{0}")]
    Malformed(String),
    /// The configured parameters cannot be used to create a hash.
    #[error("invalid password hasher configuration: {0}")]
    InvalidConfig(String),
    /// Internal failure (RNG, task join, ...).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Async password hasher. Cheap to clone; clones share the semaphore and the
/// lazily computed dummy hash.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    config: HasherConfig,
    permits: Arc<Semaphore>,
    max_concurrency: usize,
    dummy_hash: OnceCell<String>,
    /// Verifications started (real and dummy), for `portcullis_password_verifications_total`.
    verifications: AtomicU64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("config", &self.inner.config)
            .field("max_concurrency", &self.inner.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// Creates a hasher whose concurrency limit is
    /// `std::thread::available_parallelism()` (1 if unknown).
    pub fn new(config: HasherConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::with_concurrency(config, cores)
    }

    /// Creates a hasher that runs at most `max_concurrent` (at least 1)
    /// hash/verify operations at a time.
    pub fn with_concurrency(config: HasherConfig, max_concurrent: usize) -> Self {
        let n = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(HasherInner {
                config,
                permits: Arc::new(Semaphore::new(n)),
                max_concurrency: n,
                dummy_hash: OnceCell::new(),
                verifications: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration this hasher was built with.
    pub fn config(&self) -> &HasherConfig {
        &self.inner.config
    }

    /// Maximum number of concurrent hash/verify operations.
    pub fn max_concurrency(&self) -> usize {
        self.inner.max_concurrency
    }

    /// How many password verifications (real and dummy) this hasher has started: every guess that reached the
    /// hashing work, which the login throttle bounds.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    /// Number of hash/verify slots currently free.
    pub fn available_permits(&self) -> usize {
        self.inner.permits.available_permits()
    }

    /// Runs `f` on the blocking pool once a permit is available.
    async fn run_limited<T, F>(&self, f: F) -> Result<T, HashError>
    where
        F: FnOnce() -> Result<T, HashError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| HashError::Failed("hasher semaphore closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            HashError::Failed("hashing task did not complete".into())
        })?
    }

    /// Hashes `password` with the configured algorithm and returns the
    /// encoded hash (`$argon2id$v=19$...` or `$2a$NN$...`).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let inner = Arc::clone(&self.inner);
        self.run_limited(move || hash_blocking(&password, &inner.config))
            .await
    }

    /// Verifies `password` against `stored` (any supported format).
    /// `Ok(false)` on mismatch, `Err(UnknownFormat)` for unknown prefixes,
    /// `Err(Malformed)` for broken hashes of a known format.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, HashError> {
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let stored = stored.to_owned();
        self.run_limited(move || verify_blocking(&password, &stored))
            .await
    }

    /// Spends the same time as a real verification against a hash made with
    /// the current parameters, for logins of unknown users. The dummy hash
    /// is computed once, on first use.
    pub async fn verify_dummy(&self, password: &str) {
        let dummy = self
            .inner
            .dummy_hash
            .get_or_try_init(|| async {
                let mut secret = [0u8; 24];
                OsRng
                    .try_fill_bytes(&mut secret)
                    .map_err(|e| HashError::Failed(format!("random number generator: {e}")))?;
                let secret = Zeroizing::new(STANDARD_NO_PAD.encode(secret));
                self.hash(&secret).await
            })
            .await;
        match dummy {
            Ok(dummy) => {
                if let Err(e) = self.verify(password, dummy).await {
                    tracing::warn!(error = %e, "dummy password verification failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not create the dummy password hash"),
        }
    }

    /// Whether `stored` should be replaced by a fresh hash after a
    /// successful login: true for any format other than the configured
    /// algorithm (including argon2i under an argon2 config), for argon2id
    /// hashes whose `m`, `t`, `p` or key length differ from the config, for
    /// bcrypt hashes whose cost differs, and for unparsable hashes.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let cfg = &self.inner.config;
        match (cfg.algorithm, formats::parse(stored)) {
            (Algorithm::Argon2, Ok(Parsed::Argon2(h))) => {
                h.variant != Argon2Variant::Id
                    || h.memory_kib != cfg.argon2.memory_kib
                    || h.iterations != cfg.argon2.iterations
                    || h.parallelism != cfg.argon2.parallelism
                    || u32::try_from(h.hash.len()).ok() != Some(cfg.argon2.key_length)
            }
            (Algorithm::Bcrypt, Ok(Parsed::Bcrypt(h))) => h.cost != cfg.bcrypt.cost,
            _ => true,
        }
    }
}

/// Cheap syntactic check for identity import: `Ok(())` for every supported
/// format whose parameters parse and are within this module's limits,
/// `Err(UnknownFormat)` otherwise. See [`validate_format_detailed`] for the
/// reason behind a rejection.
pub fn validate_format(stored: &str) -> Result<(), HashError> {
    validate_format_detailed(stored).map_err(|e| {
        tracing::debug!(reason = %e, "rejected password hash format");
        HashError::UnknownFormat
    })
}

/// Like [`validate_format`], but a hash with a known prefix and an unusable
/// body yields `Err(Malformed(reason))` instead of `UnknownFormat`.
pub fn validate_format_detailed(stored: &str) -> Result<(), HashError> {
    formats::parse(stored).map(|_| ())
}

/// Synchronous verification core (what [`Hasher::verify`] runs on the
/// blocking pool). Public for benchmarks; prefer the async API.
pub fn verify_blocking(password: &[u8], stored: &str) -> Result<bool, HashError> {
    let parsed = formats::parse(stored)?;
    formats::verify_parsed(password, &parsed)
}

/// Synchronous hashing core (what [`Hasher::hash`] runs on the blocking
/// pool). Public for benchmarks; prefer the async API.
pub fn hash_blocking(password: &[u8], config: &HasherConfig) -> Result<String, HashError> {
    match config.algorithm {
        Algorithm::Argon2 => hash_argon2id(password, &config.argon2),
        Algorithm::Bcrypt => hash_bcrypt(password, config.bcrypt.cost),
    }
}

fn random_bytes(len: usize) -> Result<Vec<u8>, HashError> {
    let mut buf = vec![0u8; len];
    OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| HashError::Failed(format!("random number generator: {e}")))?;
    Ok(buf)
}

fn check_argon2_params(p: &Argon2Params) -> Result<(), HashError> {
    let bad = |m: String| Err(HashError::InvalidConfig(m));
    if p.iterations == 0 || p.iterations > MAX_ARGON2_ITERATIONS {
        return bad(format!(
            "argon2 iterations must be between 1 and {MAX_ARGON2_ITERATIONS}"
        ));
    }
    if p.parallelism == 0 || p.parallelism > MAX_ARGON2_PARALLELISM {
        return bad(format!(
            "argon2 parallelism must be between 1 and {MAX_ARGON2_PARALLELISM}"
        ));
    }
    if u64::from(p.memory_kib) < 8 * u64::from(p.parallelism)
        || p.memory_kib > MAX_ARGON2_MEMORY_KIB
    {
        return bad("argon2 memory must be at least 8 KiB per lane and at most 4 GiB".into());
    }
    if u64::from(p.memory_kib) * u64::from(p.iterations) > MAX_ARGON2_WORK_KIB {
        return bad("argon2 memory × iterations exceeds the supported maximum".into());
    }
    let salt = usize::try_from(p.salt_length).unwrap_or(usize::MAX);
    if !(MIN_ARGON2_SALT_LEN..=MAX_SALT_LEN).contains(&salt) {
        return bad(format!(
            "argon2 salt length must be between {MIN_ARGON2_SALT_LEN} and {MAX_SALT_LEN} bytes"
        ));
    }
    let key = usize::try_from(p.key_length).unwrap_or(usize::MAX);
    if !(MIN_ARGON2_KEY_LEN..=MAX_KEY_LEN).contains(&key) {
        return bad(format!(
            "argon2 key length must be between {MIN_ARGON2_KEY_LEN} and {MAX_KEY_LEN} bytes"
        ));
    }
    Ok(())
}

fn hash_argon2id(password: &[u8], p: &Argon2Params) -> Result<String, HashError> {
    check_argon2_params(p)?;
    let salt = random_bytes(usize::try_from(p.salt_length).unwrap_or(usize::MAX))?;
    let mut key = Zeroizing::new(vec![0u8; usize::try_from(p.key_length).unwrap_or(0)]);
    formats::argon2_derive(
        Argon2Variant::Id,
        password,
        &salt,
        p.memory_kib,
        p.iterations,
        p.parallelism,
        &mut key,
    )
    .map_err(|e| HashError::Failed(format!("argon2: {e}")))?;
    // Same PHC layout the argon2 crate (and Kratos) emit.
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        p.memory_kib,
        p.iterations,
        p.parallelism,
        STANDARD_NO_PAD.encode(&salt),
        STANDARD_NO_PAD.encode(key.as_slice()),
    ))
}

fn hash_bcrypt(password: &[u8], cost: u32) -> Result<String, HashError> {
    if password.len() > BCRYPT_MAX_PASSWORD_LEN {
        return Err(HashError::Malformed("password too long for bcrypt".into()));
    }
    if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(HashError::InvalidConfig(format!(
            "bcrypt cost must be between {MIN_BCRYPT_COST} and {MAX_BCRYPT_COST}"
        )));
    }
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| HashError::Failed(format!("random number generator: {e}")))?;
    let parts = bcrypt::hash_with_salt(password, cost, salt)
        .map_err(|e| HashError::Failed(format!("bcrypt: {e}")))?;
    // `$2a$`, exactly what Kratos (Go's x/crypto/bcrypt) writes.
    Ok(parts.format_for_version(bcrypt::Version::TwoA))
}

/// Finds argon2id parameters whose hash takes about `target` on this machine.
///
/// Strategy: start with `iterations = 1` and 16 MiB (or `max_memory_kib` if
/// smaller) and double the memory — 16, 32, 64 MiB, ... capped at
/// `max_memory_kib` — until one hash takes at least `target`. If the memory
/// cap is reached first, keep that memory and raise the iterations instead,
/// jumping to the linear estimate `t × target / elapsed` (at least `t + 1`)
/// each round. Each candidate is timed as the median of three hashes. The
/// first candidate that reaches `target` is returned, so the result may
/// overshoot by up to one doubling step. Iterations stop at
/// [`MAX_ARGON2_ITERATIONS`] / [`MAX_ARGON2_WORK_KIB`]; if hashing fails for
/// some reason the last candidate is returned.
///
/// Inputs are clamped to usable ranges (parallelism 1..=255, key length
/// 4..=1024, salt length 8..=1024, memory at least 8 KiB per lane and at
/// most 4 GiB).
pub fn calibrate(
    target: Duration,
    parallelism: u32,
    key_length: u32,
    salt_length: u32,
    max_memory_kib: u32,
) -> Argon2Params {
    let parallelism = parallelism.clamp(1, MAX_ARGON2_PARALLELISM);
    let key_len = usize::try_from(key_length)
        .unwrap_or(MAX_KEY_LEN)
        .clamp(MIN_ARGON2_KEY_LEN, MAX_KEY_LEN);
    let salt_len = usize::try_from(salt_length)
        .unwrap_or(MAX_SALT_LEN)
        .clamp(MIN_ARGON2_SALT_LEN, MAX_SALT_LEN);
    let min_memory = 8 * parallelism;
    let max_memory = max_memory_kib.clamp(min_memory, MAX_ARGON2_MEMORY_KIB);
    let mut memory = CALIBRATION_START_MEMORY_KIB.clamp(min_memory, max_memory);
    let mut iterations = 1u32;

    let salt = vec![0x5au8; salt_len];
    let mut out = vec![0u8; key_len];
    let mut measure = |memory: u32, iterations: u32| -> Option<Duration> {
        let mut samples = [Duration::ZERO; 3];
        for sample in &mut samples {
            let start = Instant::now();
            formats::argon2_derive(
                Argon2Variant::Id,
                b"portcullis calibration",
                &salt,
                memory,
                iterations,
                parallelism,
                &mut out,
            )
            .ok()?;
            *sample = start.elapsed();
        }
        samples.sort_unstable();
        Some(samples[1])
    };

    // The last memory size that stayed under the target, and its time.
    let mut below: Option<(u32, Duration)> = None;
    while let Some(elapsed) = measure(memory, iterations) {
        tracing::debug!(
            memory_kib = memory,
            iterations,
            ?elapsed,
            "argon2 calibration step"
        );
        if elapsed >= target {
            // Doubling overshot: time grows linearly with memory, so interpolate between the two sizes
            // (rounded down to whole MiB) instead of settling for up to twice the target.
            if let (1, Some((low_mem, low_time))) = (iterations, below) {
                let span_t = elapsed.saturating_sub(low_time).as_nanos().max(1);
                let want_t = target.saturating_sub(low_time).as_nanos();
                let span_m = u128::from(memory - low_mem);
                let extra = u32::try_from(span_m * want_t / span_t).unwrap_or(0);
                let interpolated = (low_mem.saturating_add(extra) / 1024) * 1024;
                memory = interpolated.clamp(low_mem, memory).max(min_memory);
            }
            break;
        }
        if memory < max_memory {
            below = Some((memory, elapsed));
            memory = memory.saturating_mul(2).min(max_memory);
            continue;
        }
        let max_iterations = u32::try_from(MAX_ARGON2_WORK_KIB / u64::from(memory.max(1)))
            .unwrap_or(u32::MAX)
            .min(MAX_ARGON2_ITERATIONS);
        if iterations >= max_iterations {
            break;
        }
        let elapsed_ns = elapsed.as_nanos().max(1);
        let estimate = u128::from(iterations).saturating_mul(target.as_nanos()) / elapsed_ns;
        let estimate = u32::try_from(estimate).unwrap_or(u32::MAX);
        iterations = estimate
            .max(iterations.saturating_add(1))
            .min(max_iterations);
    }

    Argon2Params {
        memory_kib: memory,
        iterations,
        parallelism,
        salt_length: u32::try_from(salt_len).unwrap_or(16),
        key_length: u32::try_from(key_len).unwrap_or(32),
    }
}

/// Parses a Kratos-style byte size: `"64MB"`, `"128MB"`, `"1GB"`, `"512KB"`,
/// `"16384B"`, or a plain number of bytes. Units are binary (1 KB = 1024 B)
/// and case-insensitive; `K`/`KB`/`KiB`, `M`/`MB`/`MiB`, `G`/`GB`/`GiB`,
/// `T`/`TB`/`TiB` and `B` are accepted, optionally separated from the number
/// by spaces. A decimal fraction is allowed (`"1.5GB"`, rounded down to
/// whole bytes).
pub fn parse_byte_size(s: &str) -> Result<u64, HashError> {
    let invalid = || HashError::Malformed(format!("invalid byte size {:?}", truncate(s, 64)));
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (
        t.get(..split).ok_or_else(invalid)?,
        t.get(split..).ok_or_else(invalid)?,
    );
    let multiplier: u64 = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(invalid()),
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
        || (number.contains('.') && frac_part.is_empty())
        || frac_part.len() > 18
    {
        return Err(invalid());
    }
    let int_value = if int_part.is_empty() {
        0
    } else {
        int_part.parse::<u64>().map_err(|_| invalid())?
    };
    let whole = int_value.checked_mul(multiplier).ok_or_else(invalid)?;
    let fraction = if frac_part.is_empty() {
        0
    } else {
        let digits = u32::try_from(frac_part.len()).map_err(|_| invalid())?;
        let numerator = frac_part.parse::<u128>().map_err(|_| invalid())?;
        let scaled = numerator * u128::from(multiplier) / 10u128.pow(digits);
        u64::try_from(scaled).map_err(|_| invalid())?
    };
    whole.checked_add(fraction).ok_or_else(invalid)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}
