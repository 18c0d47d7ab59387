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
