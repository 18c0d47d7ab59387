//! CSRF double-submit tokens, wire-compatible with `ory/nosurf` as used by Kratos.
//!
//! * The cookie `csrf_token_<sha256 hex of the public base URL>` holds the std-base64
//!   of 32 random bytes (the "real" token).
//! * Forms/headers carry the **masked** token: std-base64 of a 32-byte one-time pad
//!   followed by `token XOR pad` (64 bytes, 88 characters). A fresh pad is used every
//!   time, so the value differs per render while verifying against the same cookie.
//! * Verification unmasks 64-byte values and compares in constant time; like
//!   `nosurf.VerifyToken`, an unmasked 32-byte value is accepted as well.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of the real token in bytes (nosurf `tokenLength`).
pub const CSRF_TOKEN_LENGTH: usize = 32;
/// nosurf `MaxAge` (one year), used for the cookie's `Max-Age`.
pub const CSRF_COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 60 * 60;
/// Form field carrying the masked token (nosurf `FormFieldName`).
pub const CSRF_FORM_FIELD: &str = "csrf_token";
/// Header carrying the masked token (nosurf `HeaderName`).
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Kratos' CSRF cookie name: `"csrf_token_" + hex(sha256(public_base_url))`.
///
/// Kratos hashes Go's `url.URL.String()` of `serve.public.base_url`, which is the
/// configured string with the scheme lower-cased (no trailing slash is added or
/// removed). Pass the configured value, e.g. `http://127.0.0.1:4433/` gives
/// `csrf_token_806060ca…f481`.
pub fn csrf_cookie_name(public_base_url: &str) -> String {
    let normalized = lowercase_scheme(public_base_url);
    let digest = Sha256::digest(normalized.as_bytes());
    let mut name = String::with_capacity(11 + 64);
    name.push_str("csrf_token_");
    for byte in digest {
        name.push(hex_lower(byte >> 4));
        name.push(hex_lower(byte & 0x0f));
    }
    name
}

fn hex_lower(nibble: u8) -> char {
    char::from_digit(u32::from(nibble & 0x0f), 16).unwrap_or('0')
}

fn lowercase_scheme(raw: &str) -> String {
    if let Some(pos) = raw.find("://") {
        let (scheme, rest) = raw.split_at(pos);
        let is_scheme = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if is_scheme {
            return format!("{}{}", scheme.to_ascii_lowercase(), rest);
        }
    }
    raw.to_owned()
}

/// The real (unmasked) CSRF token stored in the cookie.
#[derive(Clone)]
pub struct CsrfToken([u8; CSRF_TOKEN_LENGTH]);

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

impl PartialEq for CsrfToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CsrfToken {}

impl CsrfToken {
    /// 32 fresh random bytes from a cryptographically secure generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; CSRF_TOKEN_LENGTH];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses a cookie value (std base64 of exactly 32 bytes). Anything else — which
    /// nosurf treats as "regenerate the token" — gives `None`.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let decoded = STANDARD.decode(value.trim()).ok()?;
        let bytes: [u8; CSRF_TOKEN_LENGTH] = decoded.try_into().ok()?;
        Some(Self(bytes))
    }

    /// Parses either form: a 44-char unmasked value or an 88-char masked one.
    pub fn from_any(value: &str) -> Option<Self> {
        decode_any(value).map(Self)
    }

    /// The cookie value: std base64 of the 32 bytes (44 characters).
    pub fn cookie_value(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A freshly masked form of the token (88 characters) for the `csrf_token` node.
    pub fn masked(&self) -> String {
        let mut pad = [0u8; CSRF_TOKEN_LENGTH];
        rand::thread_rng().fill_bytes(&mut pad);
        let mut out = [0u8; 2 * CSRF_TOKEN_LENGTH];
        for (i, (p, t)) in pad.iter().zip(self.0.iter()).enumerate() {
            if let Some(slot) = out.get_mut(i) {
                *slot = *p;
            }
            if let Some(slot) = out.get_mut(CSRF_TOKEN_LENGTH + i) {
                *slot = p ^ t;
            }
        }
        STANDARD.encode(out)
    }

    /// Whether `submitted` (masked 88-char or unmasked 44-char form) carries this
    /// token. Constant-time comparison; malformed input is simply `false`.
    pub fn verify_masked(&self, submitted: &str) -> bool {
        match decode_any(submitted) {
            Some(sent) => self.0.ct_eq(&sent).into(),
            None => false,
        }
    }
}

/// `nosurf.VerifyToken(real, sent)`: both sides may be masked or unmasked (Kratos
/// compares a flow's stored masked token with the cookie this way).
pub fn verify_tokens(real: &str, sent: &str) -> bool {
    match (decode_any(real), decode_any(sent)) {
        (Some(a), Some(b)) => a.ct_eq(&b).into(),
        _ => false,
    }
}

fn decode_any(value: &str) -> Option<[u8; CSRF_TOKEN_LENGTH]> {
    let value = value.trim();
    // Cheap bound before decoding attacker-supplied input.
    if value.len() > 4 * 2 * CSRF_TOKEN_LENGTH {
        return None;
    }
    let decoded = STANDARD.decode(value).ok()?;
    match decoded.len() {
        CSRF_TOKEN_LENGTH => decoded.try_into().ok(),
        n if n == 2 * CSRF_TOKEN_LENGTH => {
            let (pad, masked) = decoded.split_at(CSRF_TOKEN_LENGTH);
            let mut token = [0u8; CSRF_TOKEN_LENGTH];
            for ((slot, p), m) in token.iter_mut().zip(pad).zip(masked) {
                *slot = p ^ m;
            }
            Some(token)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_name_matches_kratos_reference() {
        assert_eq!(
            csrf_cookie_name("http://127.0.0.1:4433/"),
            "csrf_token_806060ca5bf70dff3caa0e5c860002aade9d470a5a4dce73bcfa7ba10778f481"
        );
        // Go's url.String() lower-cases the scheme only.
        assert_eq!(
            csrf_cookie_name("HTTP://127.0.0.1:4433/"),
            csrf_cookie_name("http://127.0.0.1:4433/")
        );
        // No trailing-slash normalisation: a different string is a different cookie.
        assert_ne!(
            csrf_cookie_name("http://127.0.0.1:4433"),
            csrf_cookie_name("http://127.0.0.1:4433/")
        );
        assert_eq!(csrf_cookie_name("x").len(), "csrf_token_".len() + 64);
    }

    #[test]
    fn cookie_round_trip() {
        let t = CsrfToken::generate();
        let v = t.cookie_value();
        assert_eq!(v.len(), 44);
        assert_eq!(CsrfToken::from_cookie(&v), Some(t.clone()));
        assert_ne!(CsrfToken::generate(), t);
    }

    #[test]
    fn from_cookie_rejects_bad_values() {
        assert_eq!(CsrfToken::from_cookie(""), None);
        assert_eq!(CsrfToken::from_cookie("not base64!!"), None);
        // 31 and 33 bytes
        assert_eq!(CsrfToken::from_cookie(&STANDARD.encode([1u8; 31])), None);
        assert_eq!(CsrfToken::from_cookie(&STANDARD.encode([1u8; 33])), None);
        // masked form is not a cookie value
        let t = CsrfToken::generate();
        assert_eq!(CsrfToken::from_cookie(&t.masked()), None);
        // URL-safe alphabet is not std base64
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
        assert_eq!(CsrfToken::from_cookie(&url_safe), None);
    }

    #[test]
    fn masked_is_88_chars_fresh_and_verifies() {
        let t = CsrfToken::generate();
        let a = t.masked();
        let b = t.masked();
        assert_eq!(a.len(), 88);
        assert_ne!(a, b, "a fresh pad every time");
        assert!(t.verify_masked(&a));
        assert!(t.verify_masked(&b));
        assert_eq!(CsrfToken::from_any(&a), Some(t.clone()));
        // the masked value does not reveal the token directly
        assert!(!a.contains(&t.cookie_value()));
    }

    #[test]
    fn masked_layout_is_pad_then_xor() {
        let t = CsrfToken([7u8; 32]);
        let raw = STANDARD.decode(t.masked()).unwrap();
        assert_eq!(raw.len(), 64);
        for i in 0..32 {
            assert_eq!(raw[i] ^ raw[32 + i], 7);
        }
        // hand-built nosurf-style value with an all-zero pad
        let mut manual = vec![0u8; 32];
        manual.extend_from_slice(&[7u8; 32]);
        assert!(t.verify_masked(&STANDARD.encode(&manual)));
    }

    #[test]
    fn verify_accepts_unmasked_and_rejects_garbage() {
        let t = CsrfToken::generate();
        assert!(t.verify_masked(&t.cookie_value()));
        let other = CsrfToken::generate();
        assert!(!t.verify_masked(&other.masked()));
        assert!(!t.verify_masked(&other.cookie_value()));
        assert!(!t.verify_masked(""));
        assert!(!t.verify_masked("nosurf"));
        assert!(!t.verify_masked(&"A".repeat(10_000)));
        assert!(!t.verify_masked(&STANDARD.encode([0u8; 48])));
        // tampering with one byte of the masked half fails
        let mut raw = STANDARD.decode(t.masked()).unwrap();
        raw[40] ^= 1;
        assert!(!t.verify_masked(&STANDARD.encode(&raw)));
    }

    #[test]
    fn verify_tokens_mirrors_nosurf() {
        let t = CsrfToken::generate();
        assert!(verify_tokens(&t.cookie_value(), &t.masked()));
        assert!(verify_tokens(&t.masked(), &t.masked()));
        assert!(verify_tokens(&t.masked(), &t.cookie_value()));
        assert!(verify_tokens(&t.cookie_value(), &t.cookie_value()));
        assert!(!verify_tokens(
            &t.cookie_value(),
            &CsrfToken::generate().masked()
        ));
        assert!(!verify_tokens("", ""));
    }

    #[test]
    fn debug_does_not_leak() {
        let t = CsrfToken([0xab; 32]);
        assert_eq!(format!("{t:?}"), "CsrfToken(..)");
    }
}
