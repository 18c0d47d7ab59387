//! Parsing and verification of every stored hash format the module understands.
//!
//! The layouts follow what Ory Kratos' `hash` package accepts (see the module
//! docs in `mod.rs` for the list). Parsing is strict, allocation-bounded and
//! never panics; every numeric parameter is checked against the limits in
//! `mod.rs` *before* any expensive work is started, so a hostile hash string
//! can neither crash the process nor pin a CPU for minutes.

use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::Hmac;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use sha3::{Sha3_224, Sha3_384};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    HashError, BCRYPT_MAX_PASSWORD_LEN, MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB,
    MAX_ARGON2_PARALLELISM, MAX_ARGON2_WORK_KIB, MAX_BCRYPT_COST, MAX_CRYPT_PASSWORD_LEN,
    MAX_KEY_LEN, MAX_PBKDF2_ITERATIONS, MAX_PBKDF2_WORK, MAX_SALT_LEN, MAX_SCRYPT_MEMORY_BYTES,
    MAX_SCRYPT_N, MAX_SCRYPT_WORK, MAX_SHA_CRYPT_ROUNDS, MIN_ARGON2_KEY_LEN, MIN_ARGON2_SALT_LEN,
    MIN_BCRYPT_COST,
};

/// bcrypt's base64 alphabet, decoding the 22-character salt leniently (the
/// last character carries 4 unused bits; Go's bcrypt ignores them too).
const BCRYPT_SALT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Go's non-strict `base64.StdEncoding` (padding required, trailing bits
/// ignored), which Kratos uses for `{SSHA*}` hashes.
const LENIENT_STD_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

const BCRYPT_ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// crypt(3) "hash64" alphabet (same characters as bcrypt's, different order).
const CRYPT_ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const BCRYPT_PREFIXES: [&str; 5] = ["$2a$", "$2b$", "$2y$", "$2z$", "$2$"];
const BCRYPT_SALT_CHARS: usize = 22;
const BCRYPT_CHECKSUM_CHARS: usize = 31;

const MD5_CRYPT_PREFIX: &str = "$md5-crypt$";
const SHA256_CRYPT_PREFIX: &str = "$sha256-crypt$";
const SHA512_CRYPT_PREFIX: &str = "$sha512-crypt$";
const SHA_CRYPT_MIN_ROUNDS: u64 = 1_000;
const SHA_CRYPT_MAX_ROUNDS_SPEC: u64 = 999_999_999;

/// A successfully parsed stored hash. Borrowed parts point into the input.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    Bcrypt(BcryptHash<'a>),
    Argon2(Argon2Hash),
    Pbkdf2(Pbkdf2Hash),
    Scrypt(ScryptHash),
    Crypt(CryptHash<'a>),
    Ssha(SshaHash),
}

#[derive(Debug)]
pub(crate) struct BcryptHash<'a> {
    pub(crate) cost: u32,
    salt: [u8; 16],
    checksum: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Argon2Variant {
    Id,
    I,
}

#[derive(Debug)]
pub(crate) struct Argon2Hash {
    pub(crate) variant: Argon2Variant,
    pub(crate) memory_kib: u32,
    pub(crate) iterations: u32,
    pub(crate) parallelism: u32,
    salt: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

/// PRF used by a `$pbkdf2-sha<N>$` hash. Mirrors Kratos exactly, including
/// its quirks: `sha224`/`sha384` select **SHA3**-224/384, and any other
/// `sha<digits>` name silently falls back to SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pbkdf2Prf {
    Sha1,
    Sha3_224,
    Sha256,
    Sha3_384,
    Sha512,
}

impl Pbkdf2Prf {
    fn output_len(self) -> u64 {
        match self {
            Self::Sha1 => 20,
            Self::Sha3_224 => 28,
            Self::Sha256 => 32,
            Self::Sha3_384 => 48,
            Self::Sha512 => 64,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Pbkdf2Hash {
    prf: Pbkdf2Prf,
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct ScryptHash {
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CryptKind {
    Md5,
    Sha256,
    Sha512,
}

#[derive(Debug)]
pub(crate) struct CryptHash<'a> {
    kind: CryptKind,
    rounds: Option<u32>,
    salt: &'a str,
    checksum: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SshaKind {
    Sha1,
    Sha256,
    Sha512,
}

impl SshaKind {
    fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SshaHash {
    kind: SshaKind,
    digest: Vec<u8>,
    salt: Vec<u8>,
}

fn malformed(msg: impl Into<String>) -> HashError {
    HashError::Malformed(msg.into())
}

/// Parses a stored hash. The prefix decides the format (same order as
/// Kratos' comparator); an unknown prefix yields [`HashError::UnknownFormat`],
/// a known prefix with a broken body yields [`HashError::Malformed`].
pub(crate) fn parse(stored: &str) -> Result<Parsed<'_>, HashError> {
    if let Some(rest) = stored.strip_prefix(MD5_CRYPT_PREFIX) {
        return parse_crypt(CryptKind::Md5, rest).map(Parsed::Crypt);
    }
    if let Some(rest) = BCRYPT_PREFIXES.iter().find_map(|p| stored.strip_prefix(p)) {
        return parse_bcrypt(rest).map(Parsed::Bcrypt);
    }
    if let Some(rest) = stored.strip_prefix(SHA256_CRYPT_PREFIX) {
        return parse_crypt(CryptKind::Sha256, rest).map(Parsed::Crypt);
    }
    if let Some(rest) = stored.strip_prefix(SHA512_CRYPT_PREFIX) {
        return parse_crypt(CryptKind::Sha512, rest).map(Parsed::Crypt);
    }
    if stored.starts_with("$argon2id$") {
        return parse_argon2(Argon2Variant::Id, stored).map(Parsed::Argon2);
    }
    if stored.starts_with("$argon2i$") {
        return parse_argon2(Argon2Variant::I, stored).map(Parsed::Argon2);
    }
    if is_pbkdf2_prefix(stored) {
        return parse_pbkdf2(stored).map(Parsed::Pbkdf2);
    }
    if stored.starts_with("$scrypt$") {
        return parse_scrypt(stored).map(Parsed::Scrypt);
    }
    for (prefix, kind) in [
        ("{SSHA}", SshaKind::Sha1),
        ("{SSHA256}", SshaKind::Sha256),
        ("{SSHA512}", SshaKind::Sha512),
    ] {
        if let Some(rest) = stored.strip_prefix(prefix) {
            return parse_ssha(kind, rest).map(Parsed::Ssha);
        }
    }
    Err(HashError::UnknownFormat)
}

/// Verifies `password` against an already parsed hash.
pub(crate) fn verify_parsed(password: &[u8], parsed: &Parsed<'_>) -> Result<bool, HashError> {
    match parsed {
        Parsed::Bcrypt(h) => verify_bcrypt(password, h),
        Parsed::Argon2(h) => verify_argon2(password, h),
        Parsed::Pbkdf2(h) => verify_pbkdf2(password, h),
        Parsed::Scrypt(h) => verify_scrypt(password, h),
        Parsed::Crypt(h) => verify_crypt(password, h),
        Parsed::Ssha(h) => Ok(verify_ssha(password, h)),
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// A non-empty run of ASCII digits (no sign, no whitespace) as `u64`.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok()
}

/// Parses `k1=v1,k2=v2,...` with exactly the given keys in the given order.
fn parse_params<const N: usize>(s: &str, keys: [&str; N]) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    let mut items = s.split(',');
    for (slot, key) in out.iter_mut().zip(keys) {
        let (k, v) = items.next()?.split_once('=')?;
        if k != key {
            return None;
        }
        *slot = parse_decimal(v)?;
    }
    if items.next().is_some() {
        return None;
    }
    Some(out)
}

fn in_alphabet(s: &str, alphabet: &[u8]) -> bool {
    s.bytes().all(|b| alphabet.contains(&b))
}

// ---------------------------------------------------------------- bcrypt

fn parse_bcrypt(rest: &str) -> Result<BcryptHash<'_>, HashError> {
    let (cost_str, body) = rest
        .split_once('$')
        .ok_or_else(|| malformed("malformed bcrypt hash: missing cost"))?;
    if cost_str.len() != 2 {
        return Err(malformed(
            "malformed bcrypt hash: cost must have two digits",
        ));
    }
    let cost =
        parse_decimal(cost_str).ok_or_else(|| malformed("malformed bcrypt hash: invalid cost"))?;
    if cost < u64::from(MIN_BCRYPT_COST) || cost > 31 {
        return Err(malformed(
            "malformed bcrypt hash: cost must be between 4 and 31",
        ));
    }
    if cost > u64::from(MAX_BCRYPT_COST) {
        return Err(malformed(format!(
            "bcrypt cost {cost} exceeds the supported maximum of {MAX_BCRYPT_COST}"
        )));
    }
    if body.len() != BCRYPT_SALT_CHARS + BCRYPT_CHECKSUM_CHARS
        || !in_alphabet(body, BCRYPT_ALPHABET)
    {
        return Err(malformed("malformed bcrypt hash: invalid salt or checksum"));
    }
    let (Some(salt_str), Some(checksum)) =
        (body.get(..BCRYPT_SALT_CHARS), body.get(BCRYPT_SALT_CHARS..))
    else {
        return Err(malformed("malformed bcrypt hash: invalid salt or checksum"));
    };
    let salt: [u8; 16] = BCRYPT_SALT_B64
        .decode(salt_str)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| malformed("malformed bcrypt hash: invalid salt"))?;
    Ok(BcryptHash {
        cost: u32::try_from(cost).unwrap_or(u32::MAX),
        salt,
        checksum,
    })
}

fn verify_bcrypt(password: &[u8], h: &BcryptHash<'_>) -> Result<bool, HashError> {
    // Kratos refuses to compare passwords bcrypt would silently truncate.
    if password.len() > BCRYPT_MAX_PASSWORD_LEN {
        return Ok(false);
    }
    let parts = bcrypt::hash_with_salt(password, h.cost, h.salt)
        .map_err(|e| HashError::Failed(format!("bcrypt: {e}")))?;
    let computed = Zeroizing::new(parts.format_for_version(bcrypt::Version::TwoB));
    let checksum = computed
        .get(computed.len().saturating_sub(BCRYPT_CHECKSUM_CHARS)..)
        .unwrap_or_default();
    Ok(ct_eq(checksum.as_bytes(), h.checksum.as_bytes()))
}

// ---------------------------------------------------------------- argon2

fn parse_argon2(variant: Argon2Variant, stored: &str) -> Result<Argon2Hash, HashError> {
    let parts: Vec<&str> = stored.splitn(7, '$').collect();
    let [_, _, version, params, salt, hash] = parts.as_slice() else {
        return Err(malformed("malformed argon2 hash: wrong number of fields"));
    };
    let version = version
        .strip_prefix("v=")
        .and_then(parse_decimal)
        .ok_or_else(|| malformed("malformed argon2 hash: invalid version"))?;
    if version != 19 {
        return Err(malformed(
            "malformed argon2 hash: only version 19 is supported",
        ));
    }
    let [m, t, p] = parse_params(params, ["m", "t", "p"])
        .ok_or_else(|| malformed("malformed argon2 hash: invalid parameters"))?;
    if t == 0 || p == 0 {
        return Err(malformed(
            "malformed argon2 hash: iterations and parallelism must be positive",
        ));
    }
    if p > u64::from(MAX_ARGON2_PARALLELISM) {
        return Err(malformed(format!(
            "argon2 parallelism exceeds the supported maximum of {MAX_ARGON2_PARALLELISM}"
        )));
    }
    if m < p.saturating_mul(8) {
        return Err(malformed(
            "malformed argon2 hash: memory must be at least 8 KiB per lane",
        ));
    }
    if m > u64::from(MAX_ARGON2_MEMORY_KIB) {
        return Err(malformed(
            "argon2 memory exceeds the supported maximum of 4 GiB",
        ));
    }
    if t > u64::from(MAX_ARGON2_ITERATIONS) || m.saturating_mul(t) > MAX_ARGON2_WORK_KIB {
        return Err(malformed("argon2 iterations exceed the supported maximum"));
    }
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| malformed("malformed argon2 hash: invalid base64 in salt"))?;
    let hash = STANDARD_NO_PAD
        .decode(hash)
        .map_err(|_| malformed("malformed argon2 hash: invalid base64 in hash"))?;
    if salt.len() < MIN_ARGON2_SALT_LEN || salt.len() > MAX_SALT_LEN {
        return Err(malformed("malformed argon2 hash: unsupported salt length"));
    }
    if hash.len() < MIN_ARGON2_KEY_LEN || hash.len() > MAX_KEY_LEN {
        return Err(malformed("malformed argon2 hash: unsupported key length"));
    }
    // All three values are bounded by u32 limits checked above.
    let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(Argon2Hash {
        variant,
        memory_kib: to_u32(m),
        iterations: to_u32(t),
        parallelism: to_u32(p),
        salt,
        hash,
    })
}

/// Raw argon2 (v0x13) key derivation shared by verification and hashing.
pub(crate) fn argon2_derive(
    variant: Argon2Variant,
    password: &[u8],
    salt: &[u8],
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let params = argon2::Params::new(memory_kib, iterations, parallelism, Some(out.len()))?;
    let algorithm = match variant {
        Argon2Variant::Id => argon2::Algorithm::Argon2id,
        Argon2Variant::I => argon2::Algorithm::Argon2i,
    };
    argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
        .hash_password_into(password, salt, out)
}

fn verify_argon2(password: &[u8], h: &Argon2Hash) -> Result<bool, HashError> {
    let mut out = Zeroizing::new(vec![0u8; h.hash.len()]);
    argon2_derive(
        h.variant,
        password,
        &h.salt,
        h.memory_kib,
        h.iterations,
        h.parallelism,
        &mut out,
    )
    .map_err(|e| malformed(format!("malformed argon2 hash: {e}")))?;
    Ok(ct_eq(&out, &h.hash))
}

// ---------------------------------------------------------------- pbkdf2

/// `^\$pbkdf2-sha[0-9]{1,3}\$`, like Kratos' detector.
fn is_pbkdf2_prefix(stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix("$pbkdf2-sha") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (1..=3).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'$')
}

fn parse_pbkdf2(stored: &str) -> Result<Pbkdf2Hash, HashError> {
    let parts: Vec<&str> = stored.splitn(6, '$').collect();
    let [_, ident, params, salt, hash] = parts.as_slice() else {
        return Err(malformed("malformed pbkdf2 hash: wrong number of fields"));
    };
    let prf = match ident.strip_prefix("pbkdf2-").unwrap_or_default() {
        "sha1" => Pbkdf2Prf::Sha1,
        "sha224" => Pbkdf2Prf::Sha3_224,
        "sha256" => Pbkdf2Prf::Sha256,
        "sha384" => Pbkdf2Prf::Sha3_384,
        "sha512" => Pbkdf2Prf::Sha512,
        _ => Pbkdf2Prf::Sha256,
    };
    // `l` is required syntactically but, like in Kratos, the derived key
    // length is the decoded hash length.
    let [iterations, key_len_param] = parse_params(params, ["i", "l"])
        .ok_or_else(|| malformed("malformed pbkdf2 hash: invalid parameters"))?;
    if u32::try_from(key_len_param).is_err() {
        return Err(malformed("malformed pbkdf2 hash: invalid key length"));
    }
    if iterations == 0 {
        return Err(malformed(
            "malformed pbkdf2 hash: iterations must be positive",
        ));
    }
    if iterations > u64::from(MAX_PBKDF2_ITERATIONS) {
        return Err(malformed("pbkdf2 iterations exceed the supported maximum"));
    }
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| malformed("malformed pbkdf2 hash: invalid base64 in salt"))?;
    let hash = STANDARD_NO_PAD
        .decode(hash)
        .map_err(|_| malformed("malformed pbkdf2 hash: invalid base64 in hash"))?;
    if salt.len() > MAX_SALT_LEN {
        return Err(malformed("malformed pbkdf2 hash: unsupported salt length"));
    }
    if hash.is_empty() || hash.len() > MAX_KEY_LEN {
        return Err(malformed("malformed pbkdf2 hash: unsupported key length"));
    }
    let blocks = (hash.len() as u64).div_ceil(prf.output_len());
    if iterations.saturating_mul(blocks) > MAX_PBKDF2_WORK {
        return Err(malformed("pbkdf2 iterations exceed the supported maximum"));
    }
    Ok(Pbkdf2Hash {
        prf,
        iterations: u32::try_from(iterations).unwrap_or(u32::MAX),
        salt,
        hash,
    })
}

fn verify_pbkdf2(password: &[u8], h: &Pbkdf2Hash) -> Result<bool, HashError> {
    let mut out = Zeroizing::new(vec![0u8; h.hash.len()]);
    let (p, s, i) = (password, h.salt.as_slice(), h.iterations);
    let res = match h.prf {
        Pbkdf2Prf::Sha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(p, s, i, &mut out),
        Pbkdf2Prf::Sha3_224 => pbkdf2::pbkdf2::<Hmac<Sha3_224>>(p, s, i, &mut out),
        Pbkdf2Prf::Sha256 => pbkdf2::pbkdf2::<Hmac<Sha256>>(p, s, i, &mut out),
        Pbkdf2Prf::Sha3_384 => pbkdf2::pbkdf2::<Hmac<Sha3_384>>(p, s, i, &mut out),
        Pbkdf2Prf::Sha512 => pbkdf2::pbkdf2::<Hmac<Sha512>>(p, s, i, &mut out),
    };
    res.map_err(|e| HashError::Failed(format!("pbkdf2: {e}")))?;
    Ok(ct_eq(&out, &h.hash))
}

// ---------------------------------------------------------------- scrypt

fn parse_scrypt(stored: &str) -> Result<ScryptHash, HashError> {
    let parts: Vec<&str> = stored.splitn(6, '$').collect();
    let [_, _, params, salt, hash] = parts.as_slice() else {
        return Err(malformed("malformed scrypt hash: wrong number of fields"));
    };
    // NB: Kratos stores N itself under the `ln` key.
    let [n, r, p] = parse_params(params, ["ln", "r", "p"])
        .ok_or_else(|| malformed("malformed scrypt hash: invalid parameters"))?;
    if n <= 1 || !n.is_power_of_two() {
        return Err(malformed(
            "malformed scrypt hash: N must be a power of two greater than 1",
        ));
    }
    if r == 0 || p == 0 {
        return Err(malformed("malformed scrypt hash: r and p must be positive"));
    }
    if n > MAX_SCRYPT_N
        || r > u64::from(u32::MAX)
        || p > u64::from(u32::MAX)
        || n.saturating_mul(r).saturating_mul(128) > MAX_SCRYPT_MEMORY_BYTES
        || n.saturating_mul(r).saturating_mul(p) > MAX_SCRYPT_WORK
    {
        return Err(malformed("scrypt parameters exceed the supported maximum"));
    }
    let salt = STANDARD
        .decode(salt)
        .map_err(|_| malformed("malformed scrypt hash: invalid base64 in salt"))?;
    let hash = STANDARD
        .decode(hash)
        .map_err(|_| malformed("malformed scrypt hash: invalid base64 in hash"))?;
    if salt.len() > MAX_SALT_LEN {
        return Err(malformed("malformed scrypt hash: unsupported salt length"));
    }
    if hash.is_empty() || hash.len() > MAX_KEY_LEN {
        return Err(malformed("malformed scrypt hash: unsupported key length"));
    }
    let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
    let r = u32::try_from(r).unwrap_or(u32::MAX);
    let p = u32::try_from(p).unwrap_or(u32::MAX);
    // Let the crate apply its own structural checks now, so validation
    // (not just verification) rejects e.g. N >= 2^(16 r).
    scrypt::Params::new(log_n, r, p, scrypt::Params::RECOMMENDED_LEN)
        .map_err(|_| malformed("malformed scrypt hash: unsupported parameter combination"))?;
    Ok(ScryptHash {
        log_n,
        r,
        p,
        salt,
        hash,
    })
}

fn verify_scrypt(password: &[u8], h: &ScryptHash) -> Result<bool, HashError> {
    // `len` only matters for the crate's own PHC output; `scrypt()` derives
    // exactly `out.len()` bytes.
    let params = scrypt::Params::new(h.log_n, h.r, h.p, scrypt::Params::RECOMMENDED_LEN)
        .map_err(|_| malformed("malformed scrypt hash: unsupported parameter combination"))?;
    let mut out = Zeroizing::new(vec![0u8; h.hash.len()]);
    scrypt::scrypt(password, &h.salt, &params, &mut out)
        .map_err(|e| HashError::Failed(format!("scrypt: {e}")))?;
    Ok(ct_eq(&out, &h.hash))
}

// ---------------------------------------------------------------- crypt(3)

fn parse_crypt(kind: CryptKind, rest: &str) -> Result<CryptHash<'_>, HashError> {
    let name = match kind {
        CryptKind::Md5 => "md5-crypt",
        CryptKind::Sha256 => "sha256-crypt",
        CryptKind::Sha512 => "sha512-crypt",
    };
    let bad = |what: &str| malformed(format!("malformed {name} hash: {what}"));
    let parts: Vec<&str> = rest.splitn(4, '$').collect();
    let (rounds, salt, checksum) = match (kind, parts.as_slice()) {
        (_, [salt, checksum]) => (None, *salt, *checksum),
        (CryptKind::Sha256 | CryptKind::Sha512, [rounds, salt, checksum]) => {
            let n = rounds
                .strip_prefix("rounds=")
                .and_then(parse_decimal)
                .ok_or_else(|| bad("invalid rounds"))?;
            if !(SHA_CRYPT_MIN_ROUNDS..=SHA_CRYPT_MAX_ROUNDS_SPEC).contains(&n) {
                return Err(bad("rounds must be between 1000 and 999999999"));
            }
            if n > u64::from(MAX_SHA_CRYPT_ROUNDS) {
                return Err(malformed(format!(
                    "{name} rounds exceed the supported maximum of {MAX_SHA_CRYPT_ROUNDS}"
                )));
            }
            (Some(u32::try_from(n).unwrap_or(u32::MAX)), *salt, *checksum)
        }
        _ => return Err(bad("wrong number of fields")),
    };
    let (max_salt, checksum_len) = match kind {
        CryptKind::Md5 => (8, 22),
        CryptKind::Sha256 => (16, 43),
        CryptKind::Sha512 => (16, 86),
    };
    if salt.len() > max_salt || !in_alphabet(salt, CRYPT_ALPHABET) {
        return Err(bad("invalid salt"));
    }
    if checksum.len() != checksum_len || !in_alphabet(checksum, CRYPT_ALPHABET) {
        return Err(bad("invalid checksum"));
    }
    Ok(CryptHash {
        kind,
        rounds,
        salt,
        checksum,
    })
}

fn verify_crypt(password: &[u8], h: &CryptHash<'_>) -> Result<bool, HashError> {
    // SHA-crypt is quadratic in the password length; refuse absurd inputs.
    if password.len() > MAX_CRYPT_PASSWORD_LEN {
        return Ok(false);
    }
    let setup = pwhash::HashSetup {
        salt: Some(h.salt),
        rounds: h.rounds,
    };
    // Salt and rounds were validated by `parse_crypt`, so pwhash's internal
    // table lookups cannot go out of range.
    #[allow(deprecated)] // md5_crypt is deprecated for *new* hashes only
    let computed = match h.kind {
        CryptKind::Md5 => pwhash::md5_crypt::hash_with(setup, password),
        CryptKind::Sha256 => pwhash::sha256_crypt::hash_with(setup, password),
        CryptKind::Sha512 => pwhash::sha512_crypt::hash_with(setup, password),
    }
    .map_err(|e| HashError::Failed(format!("crypt: {e}")))?;
    let computed = Zeroizing::new(computed);
    let checksum = computed.rsplit('$').next().unwrap_or_default();
    Ok(ct_eq(checksum.as_bytes(), h.checksum.as_bytes()))
}

// ---------------------------------------------------------------- {SSHA}

fn parse_ssha(kind: SshaKind, rest: &str) -> Result<SshaHash, HashError> {
    // Go's decoder skips CR/LF; do the same.
    let cleaned: String = rest.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let decoded = LENIENT_STD_B64
        .decode(cleaned.as_bytes())
        .map_err(|_| malformed("malformed SSHA hash: invalid base64"))?;
    let dlen = kind.digest_len();
    if decoded.len() <= dlen {
        return Err(malformed("malformed SSHA hash: missing salt"));
    }
    if decoded.len() - dlen > MAX_SALT_LEN {
        return Err(malformed("malformed SSHA hash: unsupported salt length"));
    }
    let mut digest = decoded;
    let salt = digest.split_off(dlen);
    Ok(SshaHash { kind, digest, salt })
}

fn salted_digest<D: Digest>(password: &[u8], salt: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut d = D::new();
    d.update(password);
    d.update(salt);
    Zeroizing::new(d.finalize().to_vec())
}

fn verify_ssha(password: &[u8], h: &SshaHash) -> bool {
    let computed = match h.kind {
        SshaKind::Sha1 => salted_digest::<Sha1>(password, &h.salt),
        SshaKind::Sha256 => salted_digest::<Sha256>(password, &h.salt),
        SshaKind::Sha512 => salted_digest::<Sha512>(password, &h.salt),
    };
    ct_eq(&computed, &h.digest)
}
