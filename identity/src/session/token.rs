//! Session and logout tokens: random, prefixed, stored only as SHA-256 hashes.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::fmt;

/// Random characters after the prefix.
const TOKEN_LEN: usize = 32;
/// Longest token we bother hashing; anything longer cannot be ours.
pub const MAX_TOKEN_LEN: usize = 256;

/// A new session token: `ory_st_` + 32 CSPRNG alphanumerics.
pub fn new_session_token() -> String {
    new_token("ory_st_")
}

/// A new logout token: `ory_lo_` + 32 CSPRNG alphanumerics.
pub fn new_logout_token() -> String {
    new_token("ory_lo_")
}

/// The logout token of a session for browser logout URLs: `ory_lo_` + 32 alphanumerics derived with
/// HMAC-SHA256(`secret`, session id). It is stable for the session's life (every logout URL handed out stays
/// valid), unguessable without the secret, and never stored.
pub fn derive_logout_token(secret: &[u8], session_id: uuid::Uuid) -> String {
    use hmac::{Hmac, Mac};
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is unreachable.
        Err(_) => return new_logout_token(),
    };
    mac.update(b"portcullis logout token\0");
    mac.update(session_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + TOKEN_LEN);
    out.push_str("ory_lo_");
    for byte in digest.iter().take(TOKEN_LEN) {
        out.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
    }
    out
}

/// Whether `token` is the logout token of `session_id` under any of `secrets` (rotation), in constant time.
pub fn verify_logout_token<S: AsRef<[u8]>>(
    secrets: &[S],
    session_id: uuid::Uuid,
    token: &str,
) -> bool {
    use subtle::ConstantTimeEq;
    let mut ok = false;
    for secret in secrets {
        let expected = derive_logout_token(secret.as_ref(), session_id);
        ok |= bool::from(expected.as_bytes().ct_eq(token.as_bytes()));
    }
    ok
}

fn new_token(prefix: &str) -> String {
    let mut rng = rand::rngs::OsRng;
    let random: String = (0..TOKEN_LEN)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect();
    format!("{prefix}{random}")
}

/// The SHA-256 of a token: how tokens are stored, cached and looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Lower-case hex, as stored and used in cache keys.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses lower- or upper-case hex.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_kratos_shape_and_differ() {
        let a = new_session_token();
        let b = new_session_token();
        assert!(a.starts_with("ory_st_") && a.len() == 39);
        assert!(a[7..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(new_logout_token().starts_with("ory_lo_"));
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = TokenHash::of("ory_st_x");
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
        assert_eq!(TokenHash::from_hex(&"é".repeat(32)), None);
        assert_ne!(TokenHash::of("a"), TokenHash::of("b"));
    }
}

#[cfg(test)]
mod logout_tests {
    use super::*;

    #[test]
    fn logout_tokens_are_stable_per_session_and_secret() {
        let id = uuid::Uuid::new_v4();
        let a = derive_logout_token(b"secret-one-0123456789", id);
        assert!(a.starts_with("ory_lo_") && a.len() == 39, "{a}");
        assert!(a[7..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a, derive_logout_token(b"secret-one-0123456789", id));
        assert_ne!(a, derive_logout_token(b"secret-two-0123456789", id));
        assert_ne!(
            a,
            derive_logout_token(b"secret-one-0123456789", uuid::Uuid::new_v4())
        );
        let rotated = ["secret-two-0123456789", "secret-one-0123456789"];
        assert!(
            verify_logout_token(&rotated, id, &a),
            "older secrets still verify"
        );
        assert!(!verify_logout_token(&rotated[..1], id, &a));
        assert!(!verify_logout_token(&rotated, id, "ory_lo_x"));
    }
}
