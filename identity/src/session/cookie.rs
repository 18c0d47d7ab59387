//! The session cookie's value: the session token, encrypted and authenticated with `secrets.cookie`.
//!
//! XChaCha20-Poly1305 with a key derived from each secret. The first secret seals; every listed secret still
//! opens, so secrets rotate without logging anyone out. A value that is tampered with, truncated, or sealed with
//! a secret no longer listed simply does not open.
//!
//! Other values sealed with the same secrets ([`CookieCodec::seal_for`], e.g. continuity containers) name a
//! purpose, which is authenticated as associated data: a value sealed for one purpose never opens for another, nor
//! as a session cookie (which has the empty purpose).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 24;
/// Longest cookie value we try to open (a token is short; anything bigger is garbage).
const MAX_VALUE_LEN: usize = 1024;

/// Seals and opens session cookie values.
#[derive(Clone)]
pub struct CookieCodec {
    ciphers: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for CookieCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieCodec({} keys)", self.ciphers.len())
    }
}

impl CookieCodec {
    /// A codec for these secrets, newest first. Panics never; an empty list gives a codec that opens nothing and
    /// seals nothing.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        let ciphers = secrets
            .iter()
            .map(|s| {
                let key = Sha256::new()
                    .chain_update(b"portcullis session cookie v1\0")
                    .chain_update(s.as_ref().as_bytes())
                    .finalize();
                XChaCha20Poly1305::new(&key)
            })
            .collect();
        Self { ciphers }
    }

    /// Encrypts a session token with the first secret.
    pub fn seal(&self, token: &str) -> Option<String> {
        self.seal_for(b"", token.as_bytes())
    }

    /// Decrypts a cookie value with any listed secret.
    pub fn open(&self, value: &str) -> Option<String> {
        self.open_for(b"", value, MAX_VALUE_LEN)
            .and_then(|plain| String::from_utf8(plain).ok())
    }

    /// Encrypts `plain` with the first secret, bound to `purpose` (a non-empty, fixed label of what the value is
    /// for; the empty purpose is the session cookie's).
    pub fn seal_for(&self, purpose: &[u8], plain: &[u8]) -> Option<String> {
        let cipher = self.ciphers.first()?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: purpose,
                },
            )
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts a value of [`CookieCodec::seal_for`] with any listed secret, for the same `purpose`. Values longer
    /// than `max_len` characters are not even decoded.
    pub fn open_for(&self, purpose: &[u8], value: &str, max_len: usize) -> Option<Vec<u8>> {
        if value.len() > max_len {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::from_slice(nonce);
        self.ciphers.iter().find_map(|c| {
            c.decrypt(
                nonce,
                Payload {
                    msg: sealed,
                    aad: purpose,
                },
            )
            .ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_rotation() {
        let old = CookieCodec::new(&["old-secret-0123456789"]);
        let value = old.seal("ory_st_abc").unwrap();
        assert_eq!(old.open(&value).as_deref(), Some("ory_st_abc"));
        let rotated = CookieCodec::new(&["new-secret-0123456789", "old-secret-0123456789"]);
        assert_eq!(
            rotated.open(&value).as_deref(),
            Some("ory_st_abc"),
            "old cookies still open"
        );
        let fresh = rotated.seal("ory_st_def").unwrap();
        assert!(old.open(&fresh).is_none(), "sealed with the new secret");
        let removed = CookieCodec::new(&["new-secret-0123456789"]);
        assert!(removed.open(&value).is_none(), "old secret removed");
        assert_eq!(removed.open(&fresh).as_deref(), Some("ory_st_def"));
    }

    #[test]
    fn garbage_never_opens() {
        let c = CookieCodec::new(&["a-secret-0123456789"]);
        let value = c.seal("ory_st_abc").unwrap();
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        for bad in [
            String::from_utf8(tampered).unwrap(),
            value[..value.len() - 4].to_owned(),
            String::new(),
            "!!!".into(),
            "é".repeat(40),
            "A".repeat(5000),
        ] {
            assert!(c.open(&bad).is_none(), "{bad}");
        }
        assert!(CookieCodec::new::<&str>(&[]).seal("x").is_none());
    }

    #[test]
    fn purposes_are_kept_apart() {
        let c = CookieCodec::new(&["a-secret-0123456789"]);
        let a = c.seal_for(b"purpose a", b"payload").unwrap();
        assert_eq!(
            c.open_for(b"purpose a", &a, 1024).as_deref(),
            Some(&b"payload"[..])
        );
        assert!(c.open_for(b"purpose b", &a, 1024).is_none());
        assert!(c.open(&a).is_none(), "not a session cookie");
        let session = c.seal("ory_st_abc").unwrap();
        assert!(c.open_for(b"purpose a", &session, 1024).is_none());
        assert!(
            c.open_for(b"purpose a", &a, a.len() - 1).is_none(),
            "too long"
        );
        let big = vec![7u8; 4000];
        let sealed = c.seal_for(b"purpose a", &big).unwrap();
        assert_eq!(c.open_for(b"purpose a", &sealed, 8192), Some(big));
    }
}
