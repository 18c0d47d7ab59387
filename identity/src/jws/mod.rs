//! JSON Web Signatures in compact serialisation, on the `jsonwebtoken` crate: verification against a public JSON
//! Web Key Set (the `jwt` authenticator) and signing with a private one (the `id_token` mutator and the session
//! tokenizer).
//!
//! Supported algorithms are [`SUPPORTED_ALGORITHMS`]: `RS256`, `RS384` and `RS512` (RSA PKCS #1 v1.5), `ES256`
//! (ECDSA on P-256, signature as `r || s`) and `EdDSA` (Ed25519). `none` and the HMAC algorithms are never
//! accepted: a public key set cannot hold a shared secret, and accepting `HS256` with an RSA key is the classic
//! algorithm-confusion attack. Signing supports `RS256`, `ES256` and `EdDSA`.
//!
//! Verification never fetches keys named by the token (`jku`, `x5u` and `jwk` headers are ignored), rejects any
//! `crit` header, refuses tokens longer than [`MAX_TOKEN_LEN`], and checks `exp`, `nbf` and `iat` against the time
//! it is given. It never panics on malformed input.
//!
//! What is `jsonwebtoken`'s and what is not:
//! * signatures are made and checked by [`jsonwebtoken::encode`] and [`jsonwebtoken::decode`] (its pure-Rust
//!   `rust_crypto` backend), the key thumbprint is [`jsonwebtoken::jwk::Jwk::thumbprint`];
//! * keys are read by the crate-private `jwk` module, which turns JWK members into `jsonwebtoken` keys through
//!   the RustCrypto types, because `jsonwebtoken` cannot read private JWKs or check public ones (see there);
//! * keys are generated (for tests and tooling) with the RustCrypto crates: `jsonwebtoken` generates none;
//! * the header is read here before `jsonwebtoken` sees the token, to refuse `crit`, to tell an unsupported `alg`
//!   (`none`, `HS256`) from a malformed header, and to pick the key by `kid`: `jsonwebtoken` fails on both with a
//!   generic error and, in this version, ignores `crit`;
//! * `exp`, `nbf` and `iat` are checked here, against the injected time: `jsonwebtoken` reads the system clock,
//!   so its time validation is turned off.

pub(crate) mod jwk;
#[cfg(test)]
mod tests;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};
use serde::Serialize;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use self::jwk::{PrivateJwk, PublicJwk};

/// Longest token [`verify`] looks at.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The `alg` values [`verify`] can check.
pub const SUPPORTED_ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512", "ES256", "EdDSA"];

/// Errors of parsing keys, verifying and signing tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// The token is longer than [`MAX_TOKEN_LEN`].
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// The token is not a compact JWS with a JSON header and a JSON object payload.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// The header names an algorithm this module cannot verify (`none`, `HS256`, …).
    #[error("the signing algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(String),
    /// The header names a supported algorithm that the caller does not allow.
    #[error("the signing algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No key of the set fits the token's `kid` and algorithm.
    #[error("no key of the JSON Web Key Set can verify this token (kid {})", kid.as_deref().map_or_else(|| "absent".to_owned(), |k| format!("{k:?}")))]
    UnknownKey {
        /// The token's `kid`.
        kid: Option<String>,
    },
    /// The signature does not verify.
    #[error("the signature is invalid")]
    InvalidSignature,
    /// `exp` has passed.
    #[error("the token is expired")]
    Expired,
    /// `nbf` lies in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` lies in the future.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// A registered claim has the wrong type.
    #[error("the claim {name:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim.
        name: String,
        /// Why.
        reason: String,
    },
    /// A JSON Web Key Set could not be used.
    #[error("invalid JSON Web Key Set: {0}")]
    Jwks(String),
    /// Signing failed.
    #[error("unable to sign the token: {0}")]
    Sign(String),
}

/// A signature algorithm [`verify`] supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSA PKCS #1 v1.5 with SHA-256.
    Rs256,
    /// RSA PKCS #1 v1.5 with SHA-384.
    Rs384,
    /// RSA PKCS #1 v1.5 with SHA-512.
    Rs512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JWS `alg` name (case-sensitive, as RFC 7515 says).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "ES256" => Self::Es256,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    /// The same algorithm for `jsonwebtoken`.
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Rs384 => jsonwebtoken::Algorithm::RS384,
            Self::Rs512 => jsonwebtoken::Algorithm::RS512,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims(pub Map<String, Value>);

/// The parts of a JOSE header callers may look at before verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`.
    pub alg: String,
    /// `kid`, when present and not empty.
    pub kid: Option<String>,
}

/// One verification key of a set.
#[derive(Clone)]
struct PublicKey(PublicJwk);

impl PublicKey {
    fn fits(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        let k = &self.0;
        k.key_type.fits(alg)
            && k.alg.is_none_or(|a| a == alg)
            && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
    }

    fn decoding_key(&self) -> &DecodingKey {
        &self.0.key
    }
}

/// The public keys of a JSON Web Key Set, ready to verify signatures.
#[derive(Clone, Default)]
pub struct PublicKeySet {
    keys: Vec<PublicKey>,
}

impl std::fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeySet")
            .field(
                "kids",
                &self
                    .keys
                    .iter()
                    .map(|k| k.0.kid.as_deref())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PublicKeySet {
    /// Parses a JWKS document (`{"keys": [...]}`) or a single JWK.
    ///
    /// RSA (1024 to 4096 bits, the most `jsonwebtoken` verifies with), EC P-256 and OKP Ed25519 keys are kept;
    /// keys of other types or curves, with an `alg` this module does not verify, or with `use` other than `sig`
    /// are skipped, so that an identity provider's set may also hold encryption keys. Private members are ignored.
    /// A set that ends up without a single usable key is an error naming why each key was skipped.
    pub fn from_jwks(json: &[u8]) -> Result<Self, JwsError> {
        let entries = jwk::entries(json).map_err(JwsError::Jwks)?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match jwk::public_key(entry) {
                Ok(key) => keys.push(PublicKey(key)),
                Err(why) => skipped.push(format!("{}: {why}", jwk::label(index, entry))),
            }
        }
        if keys.is_empty() {
            let detail = if skipped.is_empty() {
                "the set is empty".to_owned()
            } else {
                skipped.join("; ")
            };
            return Err(JwsError::Jwks(format!(
                "no usable verification key ({detail})"
            )));
        }
        Ok(Self { keys })
    }

    /// All keys of several sets.
    pub fn merged<'a>(sets: impl IntoIterator<Item = &'a PublicKeySet>) -> Self {
        Self {
            keys: sets
                .into_iter()
                .flat_map(|s| s.keys.iter().cloned())
                .collect(),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key fits a token with this `kid` (any key when `None`) and algorithm.
    pub fn has_key(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.keys.iter().any(|k| k.fits(kid, alg))
    }
}

/// The decoded header of a token within the size limit, as a JSON object.
fn header_object(token: &str) -> Result<Map<String, Value>, JwsError> {
    use base64::Engine as _;
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed(
            "a compact JWS has exactly three dot-separated parts".to_owned(),
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwsError::Malformed("the header is not unpadded base64url".to_owned()))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JwsError::Malformed(
            "the header is not a JSON object".to_owned(),
        )),
        Err(_) => Err(JwsError::Malformed(
            "the header is not valid JSON".to_owned(),
        )),
    }
}

fn parse_header(header: &Map<String, Value>) -> Result<Header, JwsError> {
    if header.contains_key("crit") {
        return Err(JwsError::Malformed(
            "the header has critical extensions (\"crit\"), none of which are supported".to_owned(),
        ));
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.clone(),
        Some(_) => return Err(JwsError::Malformed("\"alg\" is not a string".to_owned())),
        None => return Err(JwsError::Malformed("the header has no \"alg\"".to_owned())),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.is_empty() => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JwsError::Malformed("\"kid\" is not a string".to_owned())),
    };
    Ok(Header { alg, kid })
}

/// Reads the header of a token without verifying anything.
pub fn decode_header(token: &str) -> Result<Header, JwsError> {
    parse_header(&header_object(token)?)
}

/// `jsonwebtoken`'s checks reduced to the signature with `alg`: no required claim, no time, audience, issuer or
/// subject check (times are checked by [`check_times`] against the injected clock, the rest by the callers).
fn signature_only(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}

/// Verifies a compact JWS and returns its claims.
///
/// The header's `alg` must be supported and in `allowed_algs`. The key is the one whose `kid` equals the token's;
/// a token without `kid` is tried against every key of the right type. `exp`, `nbf` and `iat`, when present, must
/// be numbers and are checked against `now`, each with `leeway` of tolerance.
pub fn verify<A: AsRef<str>>(
    token: &str,
    keys: &PublicKeySet,
    allowed_algs: &[A],
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<Claims, JwsError> {
    let object = header_object(token)?;
    let header = parse_header(&object)?;
    let alg = Algorithm::from_name(&header.alg)
        .ok_or_else(|| JwsError::UnsupportedAlgorithm(header.alg.clone()))?;
    if !allowed_algs.iter().any(|a| a.as_ref() == alg.name()) {
        return Err(JwsError::AlgorithmNotAllowed(header.alg));
    }
    // jsonwebtoken reads the header into its own typed struct: report its objections as a malformed header
    // rather than as a malformed payload.
    serde_json::from_value::<jsonwebtoken::Header>(Value::Object(object))
        .map_err(|e| JwsError::Malformed(format!("the header is invalid: {e}")))?;
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| k.fits(header.kid.as_deref(), alg))
        .peekable();
    if candidates.peek().is_none() {
        return Err(JwsError::UnknownKey { kid: header.kid });
    }
    let validation = signature_only(alg);
    for key in candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding_key(), &validation) {
            Ok(data) => {
                check_times(&data.claims, now, leeway)?;
                return Ok(Claims(data.claims));
            }
            Err(e) => match e.kind() {
                // This key does not verify the token: try the next one.
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidEddsaKey
                | ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidKeyFormat
                | ErrorKind::InvalidAlgorithm => {}
                ErrorKind::Base64(_) => {
                    return Err(JwsError::Malformed(
                        "the payload or signature is not unpadded base64url".to_owned(),
                    ))
                }
                // The header was read above, so this is the payload, decoded once the signature verified.
                ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    return Err(JwsError::Malformed(
                        "the payload is not a JSON object".to_owned(),
                    ))
                }
                _ => return Err(JwsError::Malformed(e.to_string())),
            },
        }
    }
    Err(JwsError::InvalidSignature)
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JwsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| JwsError::InvalidClaim {
            name: name.to_owned(),
            reason: "not a number".to_owned(),
        }),
        Some(_) => Err(JwsError::InvalidClaim {
            name: name.to_owned(),
            reason: "not a NumericDate (seconds since the epoch)".to_owned(),
        }),
    }
}

/// `exp`, `nbf` and `iat` against `now` (the injected clock, not the system's).
fn check_times(
    claims: &Map<String, Value>,
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<(), JwsError> {
    let now = now.unix_timestamp() as f64 + f64::from(now.nanosecond()) / 1e9;
    let leeway = leeway.as_seconds_f64().abs();
    if let Some(exp) = numeric_date(claims, "exp")? {
        if now >= exp + leeway {
            return Err(JwsError::Expired);
        }
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now < nbf - leeway {
            return Err(JwsError::NotYetValid);
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if now < iat - leeway {
            return Err(JwsError::IssuedInFuture);
        }
    }
    Ok(())
}

/// Signs `claims` (serialised as they are) with `jsonwebtoken`: the header is `typ: JWT`, `alg` and, when given,
/// `kid`.
pub(crate) fn sign_compact<T: Serialize>(
    key: &EncodingKey,
    alg: Algorithm,
    kid: Option<&str>,
    claims: &T,
) -> Result<String, String> {
    let mut header = jsonwebtoken::Header::new(alg.jwt());
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).map_err(|e| e.to_string())
}

/// Signs tokens with the one private key of a JSON Web Key Set.
pub struct Signer {
    key: PrivateJwk,
    kid: String,
    public: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.key.alg.name())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Takes the signing key of a private JWKS: the first key with private material of a supported type (RSA for
    /// `RS256`, EC P-256 for `ES256`, OKP Ed25519 for `EdDSA`), as the session tokenizer does. A key without `kid`
    /// gets its RFC 7638 thumbprint as `kid`, so that every token names its key.
    pub fn from_private_jwks(json: &[u8]) -> Result<Self, JwsError> {
        let key = jwk::select_signing_key(json).map_err(JwsError::Jwks)?;
        let kid = match &key.kid {
            Some(kid) => kid.clone(),
            None => jwk::thumbprint(&key.public).map_err(JwsError::Jwks)?,
        };
        let public =
            serde_json::to_value(key.published(&kid)).map_err(|e| JwsError::Jwks(e.to_string()))?;
        Ok(Self { key, kid, public })
    }

    /// The `alg` of the tokens.
    pub fn alg(&self) -> &'static str {
        self.key.alg.name()
    }

    /// The `kid` of the tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a compact JWS with `typ: JWT`, `alg` and `kid` in the header.
    pub fn sign(&self, claims: &Map<String, Value>) -> Result<String, JwsError> {
        sign_compact(&self.key.key, self.key.alg, Some(&self.kid), claims).map_err(JwsError::Sign)
    }

    /// The public key as a JWK (`kty`, its public members, `kid`, `alg`, `use`).
    pub fn public_jwk(&self) -> Value {
        self.public.clone()
    }

    /// The public key as a JWKS (`{"keys": [jwk]}`), as `/.well-known/jwks.json` serves it.
    pub fn public_jwks(&self) -> Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// A [`PublicKeySet`] that verifies this signer's tokens.
    pub fn public_key_set(&self) -> Result<PublicKeySet, JwsError> {
        PublicKeySet::from_jwks(self.public.to_string().as_bytes())
    }
}

/// Generates a private JWKS with one new key for `alg` (`RS256` with a 2048-bit modulus, `ES256` or `EdDSA`),
/// in the shape `oathkeeper credentials generate` prints.
pub fn generate_private_jwks(alg: Algorithm, kid: &str) -> Result<Value, JwsError> {
    let mut jwk = jwk::generate(alg).map_err(JwsError::Sign)?;
    jwk.insert("kid".to_owned(), Value::String(kid.to_owned()));
    jwk.insert("alg".to_owned(), Value::String(alg.name().to_owned()));
    jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
    Ok(serde_json::json!({ "keys": [Value::Object(jwk)] }))
}

/// Reads a key document named by a `file://` (absolute or relative to the working directory) or `base64://` URL,
/// as the session tokenizer does. HTTP is not supported here; fetch those with the caller's client.
pub fn load_local_document(url: &str) -> Result<Vec<u8>, JwsError> {
    crate::tokenize::source::load(url).map_err(JwsError::Jwks)
}
