//! JSON Web Signatures in compact serialisation: verification against a public JSON Web Key Set (the `jwt`
//! authenticator) and signing with a private one (the `id_token` mutator).
//!
//! Supported algorithms are [`SUPPORTED_ALGORITHMS`]: `RS256`, `RS384` and `RS512` (RSA PKCS #1 v1.5), `ES256`
//! (ECDSA on P-256, signature as `r || s`) and `EdDSA` (Ed25519, strict verification). `none` and the HMAC
//! algorithms are never accepted: a public key set cannot hold a shared secret, and accepting `HS256` with an RSA
//! key is the classic algorithm-confusion attack. Signing supports what [`crate::tokenize`] supports: `RS256`,
//! `ES256` and `EdDSA`.
//!
//! Verification never fetches keys named by the token (`jku`, `x5u`, `jwk` headers are ignored), rejects any `crit`
//! header, and checks `exp`, `nbf` and `iat` against the time it is given. It never panics on malformed input.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::BigUint;
use serde_json::{Map, Value};
use sha2::Digest as _;
use time::{Duration, OffsetDateTime};

use crate::tokenize::jwk::{
    select_signing_key, SelectedKey, SigningKey, RSA_MAX_BITS, RSA_MIN_BITS,
};
use crate::tokenize::source::URL_SAFE_LENIENT;

/// Longest token [`verify`] looks at.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The `alg` values [`verify`] can check.
pub const SUPPORTED_ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512", "ES256", "EdDSA"];

/// Errors of parsing keys, verifying and signing tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
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

/// A public key able to verify signatures.
#[derive(Clone)]
enum VerifyingKey {
    Rsa(Box<rsa::RsaPublicKey>),
    P256(Box<p256::ecdsa::VerifyingKey>),
    Ed25519(Box<ed25519_dalek::VerifyingKey>),
}

impl VerifyingKey {
    fn fits(&self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (
                Self::Rsa(_),
                Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512
            ) | (Self::P256(_), Algorithm::Es256)
                | (Self::Ed25519(_), Algorithm::EdDsa)
        )
    }

    fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier as _;
        match (self, alg) {
            (Self::Rsa(key), Algorithm::Rs256) => {
                rsa_verify::<rsa::sha2::Sha256>(key, message, signature)
            }
            (Self::Rsa(key), Algorithm::Rs384) => {
                rsa_verify::<rsa::sha2::Sha384>(key, message, signature)
            }
            (Self::Rsa(key), Algorithm::Rs512) => {
                rsa_verify::<rsa::sha2::Sha512>(key, message, signature)
            }
            (Self::P256(key), Algorithm::Es256) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.as_ref().verify(message, &sig).is_ok()),
            (Self::Ed25519(key), Algorithm::EdDsa) => {
                <[u8; 64]>::try_from(signature).is_ok_and(|sig| {
                    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
                        .is_ok()
                })
            }
            _ => false,
        }
    }
}

fn rsa_verify<D>(key: &rsa::RsaPublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: rsa::sha2::Digest + rsa::pkcs8::AssociatedOid,
{
    use rsa::signature::Verifier as _;
    if signature.len() != key.size() {
        return false;
    }
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<D>::new(key.clone())
        .verify(message, &sig)
        .is_ok()
}

/// One verification key of a set.
#[derive(Clone)]
struct PublicKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: VerifyingKey,
}

impl PublicKey {
    fn fits(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.key.fits(alg)
            && self.alg.is_none_or(|a| a == alg)
            && kid.is_none_or(|kid| self.kid.as_deref() == Some(kid))
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
                    .map(|k| k.kid.as_deref())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PublicKeySet {
    /// Parses a JWKS document (`{"keys": [...]}`) or a single JWK.
    ///
    /// RSA (1024 to 16384 bits), EC P-256 and OKP Ed25519 keys are kept; keys of other types or curves, with an
    /// `alg` this module does not verify, or with `use` other than `sig` are skipped, so that an identity
    /// provider's set may also hold encryption keys. Private members are ignored. A set that ends up without a
    /// single usable key is an error naming why each key was skipped.
    pub fn from_jwks(json: &[u8]) -> Result<Self, JoseError> {
        let doc: Value = serde_json::from_slice(json)
            .map_err(|e| JoseError::Jwks(format!("not valid JSON: {e}")))?;
        let entries: Vec<&Value> = match &doc {
            Value::Object(obj) => match obj.get("keys") {
                Some(Value::Array(keys)) => keys.iter().collect(),
                Some(_) => return Err(JoseError::Jwks("\"keys\" is not an array".to_owned())),
                None if obj.contains_key("kty") => vec![&doc],
                None => return Err(JoseError::Jwks("no \"keys\" array".to_owned())),
            },
            _ => return Err(JoseError::Jwks("not a JSON object".to_owned())),
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            match public_key(entry) {
                Ok(key) => keys.push(key),
                Err(why) => skipped.push(format!("key #{index}: {why}")),
            }
        }
        if keys.is_empty() {
            let detail = if skipped.is_empty() {
                "the set is empty".to_owned()
            } else {
                skipped.join("; ")
            };
            return Err(JoseError::Jwks(format!(
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

fn public_key(entry: &Value) -> Result<PublicKey, String> {
    let Value::Object(jwk) = entry else {
        return Err("not a JSON object".to_owned());
    };
    match jwk.get("use") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => return Err(format!("\"use\" is {u:?}, not \"sig\"")),
        Some(_) => return Err("\"use\" is not a string".to_owned()),
    }
    let kid = match jwk.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.is_empty() => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("\"kid\" is not a string".to_owned()),
    };
    let alg = match jwk.get("alg") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => {
            Some(Algorithm::from_name(a).ok_or_else(|| format!("unsupported \"alg\" {a:?}"))?)
        }
        Some(_) => return Err("\"alg\" is not a string".to_owned()),
    };
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = jwk.get("crv").and_then(Value::as_str);
    let key = match (kty, crv) {
        ("RSA", _) => rsa_public(jwk)?,
        ("EC", Some("P-256")) => p256_public(jwk)?,
        ("OKP", Some("Ed25519")) => ed25519_public(jwk)?,
        ("", _) => return Err("no \"kty\"".to_owned()),
        (kty, crv) => {
            return Err(format!(
                "unsupported key type {kty:?}{}",
                crv.map(|c| format!(" on curve {c:?}")).unwrap_or_default()
            ))
        }
    };
    if let Some(alg) = alg {
        if !key.fits(alg) {
            return Err(format!("\"alg\" {:?} does not fit a {kty} key", alg.name()));
        }
    }
    Ok(PublicKey { kid, alg, key })
}

fn field(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    match jwk.get(name) {
        Some(Value::String(s)) => URL_SAFE_LENIENT
            .decode(s)
            .map_err(|e| format!("\"{name}\" is not valid base64url: {e}")),
        Some(_) => Err(format!("\"{name}\" is not a string")),
        None => Err(format!("\"{name}\" is missing")),
    }
}

fn rsa_public(jwk: &Map<String, Value>) -> Result<VerifyingKey, String> {
    let n = BigUint::from_bytes_be(&field(jwk, "n")?);
    let e = BigUint::from_bytes_be(&field(jwk, "e")?);
    let bits = n.bits();
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(format!(
            "the RSA modulus has {bits} bits; between {RSA_MIN_BITS} and {RSA_MAX_BITS} are supported"
        ));
    }
    if e.bits() < 2 || e.bits() > 32 {
        return Err("the RSA exponent is invalid".to_owned());
    }
    let key = rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
        .map_err(|e| format!("invalid RSA public key: {e}"))?;
    Ok(VerifyingKey::Rsa(Box::new(key)))
}

fn p256_public(jwk: &Map<String, Value>) -> Result<VerifyingKey, String> {
    let x = field(jwk, "x")?;
    let y = field(jwk, "y")?;
    if x.len() != 32 || y.len() != 32 {
        return Err("\"x\" and \"y\" must be 32 bytes each for P-256".to_owned());
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| "(\"x\", \"y\") is not a point on P-256".to_owned())?;
    Ok(VerifyingKey::P256(Box::new(key)))
}

fn ed25519_public(jwk: &Map<String, Value>) -> Result<VerifyingKey, String> {
    let x: [u8; 32] = field(jwk, "x")?
        .try_into()
        .map_err(|x: Vec<u8>| format!("\"x\" must be 32 bytes for Ed25519, found {}", x.len()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| "\"x\" is not a valid Ed25519 public key".to_owned())?;
    if key.is_weak() {
        return Err("\"x\" is a weak Ed25519 public key".to_owned());
    }
    Ok(VerifyingKey::Ed25519(Box::new(key)))
}

/// The three parts of a compact JWS and its signing input.
struct Compact<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

fn split(token: &str) -> Result<Compact<'_>, JoseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed(
            "a compact JWS has exactly three dot-separated parts".to_owned(),
        ));
    };
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or_else(|| JoseError::Malformed("bad token".to_owned()))?;
    Ok(Compact {
        header,
        payload,
        signature,
        signing_input,
    })
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JoseError::Malformed(format!("the {what} is not unpadded base64url")))
}

fn json_object(part: &str, what: &str) -> Result<Map<String, Value>, JoseError> {
    match serde_json::from_slice::<Value>(&b64(part, what)?) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JoseError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
        Err(_) => Err(JoseError::Malformed(format!(
            "the {what} is not valid JSON"
        ))),
    }
}

fn parse_header(part: &str) -> Result<Header, JoseError> {
    let header = json_object(part, "header")?;
    if header.contains_key("crit") {
        return Err(JoseError::Malformed(
            "the header has critical extensions (\"crit\"), none of which are supported".to_owned(),
        ));
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.clone(),
        Some(_) => return Err(JoseError::Malformed("\"alg\" is not a string".to_owned())),
        None => return Err(JoseError::Malformed("the header has no \"alg\"".to_owned())),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.is_empty() => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JoseError::Malformed("\"kid\" is not a string".to_owned())),
    };
    Ok(Header { alg, kid })
}

/// Reads the header of a token without verifying anything.
pub fn decode_header(token: &str) -> Result<Header, JoseError> {
    parse_header(split(token)?.header)
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
) -> Result<Claims, JoseError> {
    let compact = split(token)?;
    let header = parse_header(compact.header)?;
    let alg = Algorithm::from_name(&header.alg)
        .ok_or_else(|| JoseError::UnsupportedAlgorithm(header.alg.clone()))?;
    if !allowed_algs.iter().any(|a| a.as_ref() == alg.name()) {
        return Err(JoseError::AlgorithmNotAllowed(header.alg));
    }
    let signature = b64(compact.signature, "signature")?;
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| k.fits(header.kid.as_deref(), alg))
        .peekable();
    if candidates.peek().is_none() {
        return Err(JoseError::UnknownKey { kid: header.kid });
    }
    let message = compact.signing_input.as_bytes();
    if !candidates.any(|k| k.key.verify(alg, message, &signature)) {
        return Err(JoseError::InvalidSignature);
    }
    let claims = json_object(compact.payload, "payload")?;
    check_times(&claims, now, leeway)?;
    Ok(Claims(claims))
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JoseError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| JoseError::InvalidClaim {
            name: name.to_owned(),
            reason: "not a number".to_owned(),
        }),
        Some(_) => Err(JoseError::InvalidClaim {
            name: name.to_owned(),
            reason: "not a NumericDate (seconds since the epoch)".to_owned(),
        }),
    }
}

fn check_times(
    claims: &Map<String, Value>,
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<(), JoseError> {
    let now = now.unix_timestamp() as f64 + f64::from(now.nanosecond()) / 1e9;
    let leeway = leeway.as_seconds_f64().abs();
    if let Some(exp) = numeric_date(claims, "exp")? {
        if now >= exp + leeway {
            return Err(JoseError::Expired);
        }
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now < nbf - leeway {
            return Err(JoseError::NotYetValid);
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if now < iat - leeway {
            return Err(JoseError::IssuedInFuture);
        }
    }
    Ok(())
}

/// Signs tokens with the one private key of a JSON Web Key Set.
pub struct Signer {
    key: SigningKey,
    kid: String,
    public: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.key.alg())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Takes the signing key of a private JWKS: the first key with private material of a supported type (RSA for
    /// `RS256`, EC P-256 for `ES256`, OKP Ed25519 for `EdDSA`), as the session tokenizer does. A key without `kid`
    /// gets its RFC 7638 thumbprint as `kid`, so that every token names its key.
    pub fn from_private_jwks(json: &[u8]) -> Result<Self, JoseError> {
        let SelectedKey { key, kid } = select_signing_key(json).map_err(JoseError::Jwks)?;
        let members = public_members(&key);
        let kid = kid.unwrap_or_else(|| thumbprint(&members));
        let mut public = members;
        public.insert("kid".to_owned(), Value::String(kid.clone()));
        public.insert("alg".to_owned(), Value::String(key.alg().to_owned()));
        public.insert("use".to_owned(), Value::String("sig".to_owned()));
        Ok(Self {
            key,
            kid,
            public: Value::Object(public),
        })
    }

    /// The `alg` of the tokens.
    pub fn alg(&self) -> &'static str {
        self.key.alg()
    }

    /// The `kid` of the tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a compact JWS with `alg`, `kid` and `typ: JWT` in the header.
    pub fn sign(&self, claims: &Map<String, Value>) -> Result<String, JoseError> {
        let header = serde_json::json!({"alg": self.key.alg(), "kid": self.kid, "typ": "JWT"});
        let header = serde_json::to_vec(&header).map_err(|e| JoseError::Sign(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| JoseError::Sign(e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = self.key.sign(token.as_bytes()).map_err(JoseError::Sign)?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
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
    pub fn public_key_set(&self) -> Result<PublicKeySet, JoseError> {
        PublicKeySet::from_jwks(self.public.to_string().as_bytes())
    }
}

fn b64_string(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

/// The required public members of a key in lexicographic order (RFC 7638 §3.2).
fn public_members(key: &SigningKey) -> Map<String, Value> {
    let mut m = Map::new();
    match key {
        SigningKey::Rs256(k) => {
            let k: &rsa::RsaPrivateKey = (**k).as_ref();
            m.insert("e".to_owned(), b64_string(&k.e().to_bytes_be()));
            m.insert("kty".to_owned(), Value::String("RSA".to_owned()));
            m.insert("n".to_owned(), b64_string(&k.n().to_bytes_be()));
        }
        SigningKey::Es256(k) => {
            let point = k.verifying_key().to_encoded_point(false);
            m.insert("crv".to_owned(), Value::String("P-256".to_owned()));
            m.insert("kty".to_owned(), Value::String("EC".to_owned()));
            m.insert(
                "x".to_owned(),
                b64_string(point.x().map(|x| x.as_slice()).unwrap_or_default()),
            );
            m.insert(
                "y".to_owned(),
                b64_string(point.y().map(|y| y.as_slice()).unwrap_or_default()),
            );
        }
        SigningKey::EdDsa(k) => {
            m.insert("crv".to_owned(), Value::String("Ed25519".to_owned()));
            m.insert("kty".to_owned(), Value::String("OKP".to_owned()));
            m.insert("x".to_owned(), b64_string(k.verifying_key().as_bytes()));
        }
    }
    m
}

/// RFC 7638 thumbprint (SHA-256) of the required members, already in lexicographic order.
fn thumbprint(members: &Map<String, Value>) -> String {
    let canonical = Value::Object(members.clone()).to_string();
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// Generates a private JWKS with one new key for `alg` (`RS256` with a 2048-bit modulus, `ES256` or `EdDSA`),
/// in the shape `oathkeeper credentials generate` prints.
pub fn generate_private_jwks(alg: Algorithm, kid: &str) -> Result<Value, JoseError> {
    let mut rng = rand::rngs::OsRng;
    let mut jwk = Map::new();
    match alg {
        Algorithm::Rs256 => {
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048)
                .map_err(|e| JoseError::Sign(e.to_string()))?;
            jwk.insert("kty".to_owned(), Value::String("RSA".to_owned()));
            jwk.insert("n".to_owned(), b64_string(&key.n().to_bytes_be()));
            jwk.insert("e".to_owned(), b64_string(&key.e().to_bytes_be()));
            jwk.insert("d".to_owned(), b64_string(&key.d().to_bytes_be()));
            if let [p, q] = key.primes() {
                jwk.insert("p".to_owned(), b64_string(&p.to_bytes_be()));
                jwk.insert("q".to_owned(), b64_string(&q.to_bytes_be()));
            }
            if let (Some(dp), Some(dq), Some(qi)) = (key.dp(), key.dq(), key.crt_coefficient()) {
                jwk.insert("dp".to_owned(), b64_string(&dp.to_bytes_be()));
                jwk.insert("dq".to_owned(), b64_string(&dq.to_bytes_be()));
                jwk.insert("qi".to_owned(), b64_string(&qi.to_bytes_be()));
            }
        }
        Algorithm::Es256 => {
            let key = p256::ecdsa::SigningKey::random(&mut rng);
            let point = key.verifying_key().to_encoded_point(false);
            jwk.insert("kty".to_owned(), Value::String("EC".to_owned()));
            jwk.insert("crv".to_owned(), Value::String("P-256".to_owned()));
            jwk.insert(
                "x".to_owned(),
                b64_string(point.x().map(|x| x.as_slice()).unwrap_or_default()),
            );
            jwk.insert(
                "y".to_owned(),
                b64_string(point.y().map(|y| y.as_slice()).unwrap_or_default()),
            );
            jwk.insert("d".to_owned(), b64_string(&key.to_bytes()));
        }
        Algorithm::EdDsa => {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rng, &mut seed);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            jwk.insert("kty".to_owned(), Value::String("OKP".to_owned()));
            jwk.insert("crv".to_owned(), Value::String("Ed25519".to_owned()));
            jwk.insert("x".to_owned(), b64_string(key.verifying_key().as_bytes()));
            jwk.insert("d".to_owned(), b64_string(&seed));
        }
        Algorithm::Rs384 | Algorithm::Rs512 => {
            return Err(JoseError::Sign(format!(
                "{} keys cannot be generated for signing",
                alg.name()
            )))
        }
    }
    jwk.insert("kid".to_owned(), Value::String(kid.to_owned()));
    jwk.insert("alg".to_owned(), Value::String(alg.name().to_owned()));
    jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
    Ok(serde_json::json!({ "keys": [Value::Object(jwk)] }))
}

/// Reads a key document named by a `file://` (absolute or relative to the working directory) or `base64://` URL,
/// as the session tokenizer does. HTTP is not supported here; fetch those with the caller's client.
pub fn load_local_document(url: &str) -> Result<Vec<u8>, JoseError> {
    crate::tokenize::source::load(url).map_err(JoseError::Jwks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use serde_json::json;
    use time::macros::datetime;

    // The tokenizer's fixtures (generated once with Python's `cryptography`).
    const RSA_JWK: &str = r#"{"kty": "RSA", "kid": "rsa-key-1", "alg": "RS256", "use": "sig", "n": "rUjhC3r9pR4GtxXmZmATvoVAKo2_mQCUiZjGRqcMhyGND9fQ7iyE5-IwtYNIujJYk8VQty8qUjshtoeX6yx_wcA7UBVpOlmesgap3JWXTnD6BpFuPBs-30v9oeAXiThYuK8hh-QnCAnOX8ktyTbwUq8slWa9ihuqyZEj_O3FuF6070WqRibSxEHfREatAIg53n4Hw52gjhU8zU9JKu-nI4xH_PDUHfE6hv3eENDz6jlj1KhBfUHohMuWN19Lhd-7565491hFKeNsjDR_iHmXGuVzjhxMaO1LLVJv3xIZdPm1WFY0hdySe6zeiOQ7mZpFHd7y2kPNn_ya6Y1DadOj1w", "e": "AQAB", "d": "AvjRA0VkvEQ7kUBK506WiBn488Him1krMwDvxZ5v1JF6vd7RsoQI84EpnLNXt_nNExu7OqkQbMCe32aL8Hie6E_HtKPpXhrTYfJDT4kxQyMk5p_v6A__kAzZmMEjJjNVMjWuuYnsMXMZmwL0ShMrI__lH9rXPVskHrjiiR_62CKgdenX7aX_XsVSlI_sd5oVlaa9Gn7SnejT_jyDj3zYJciiD3Dd0awkl9QD1HRFHWp_fB4i5XkdIwugs9QB2JzxISgG-BiXJNcffNsFfyiSO2s6ODO_m5zYqHUWFMlfq5sUYCrX25GobSWDkg28OChwagb1LlkGehAJ6EzVAAAg4Q", "p": "1tvb4-YaM3GMe2A8TQpzsLQpzH5wEoQR4PmLB06vp0BB9sF9iE6A8xCganoBUnj28HR6RHynA1QET4hOkJYUSmJZnjsS1TdFSRt3DRFbOLGjd57EBHt19B5urO-Ipyf8MUlpaw7YiL6Fy4mqKhvjqUNVvPY1X4VkwHIcNR9XPiM", "q": "zncaGHvaSJmcfA8zIwe4QFfOl-oXb87sJkoV10TtLcB-SBrlzJk9qAnQUcYpdyakoxCM9c2VvuQT3DeO-3qML3LY7O2ROd74QYJjoVesLE6BYhm3ElJ8vp5ve3LZg2MjyI6luIRWCDBpao32Il6Wl6XW1Bzy6U0JvTyC-vg8bL0"}"#;
    const EC_JWK: &str = r#"{"kty": "EC", "kid": "ec-key-1", "crv": "P-256", "x": "0zm5fD9vcq5Zxq03vWkHn-uEeIWBwhc-Uf_jtELp1TI", "y": "xkkw0lpWg0dfcuxqkA1hAAVETDdW48VNGSCqX-OJZHc", "d": "CUHSMI_91zs8PrbwMwWw9gMU67N1in6pLEH_De-sNAM"}"#;
    const ED25519_JWK: &str = r#"{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": "ZFvMQXX06Ub6Spza4ie5l0CiVBxjI2L2RG32nxSLNIo", "d": "Yss_1-yGllBp_w6LhvLaody5F9OizBfgdGcuCYzqKU8"}"#;

    const NOW: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);
    const ALL: &[&str] = SUPPORTED_ALGORITHMS;

    fn set_of(jwks: &[&str]) -> String {
        format!("{{\"keys\": [{}]}}", jwks.join(","))
    }

    fn signer(jwk: &str) -> Signer {
        Signer::from_private_jwks(set_of(&[jwk]).as_bytes()).unwrap()
    }

    fn public(signer: &Signer) -> PublicKeySet {
        PublicKeySet::from_jwks(signer.public_jwks().to_string().as_bytes()).unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn standard() -> Map<String, Value> {
        let now = NOW.unix_timestamp();
        claims(json!({"sub": "alice", "iat": now, "nbf": now, "exp": now + 60, "scp": ["read"]}))
    }

    fn enc(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    fn field_u(jwk: &Value, name: &str) -> BigUint {
        BigUint::from_bytes_be(
            &URL_SAFE_LENIENT
                .decode(jwk[name].as_str().unwrap())
                .unwrap(),
        )
    }

    fn rsa_private() -> rsa::RsaPrivateKey {
        let jwk: Value = serde_json::from_str(RSA_JWK).unwrap();
        rsa::RsaPrivateKey::from_components(
            field_u(&jwk, "n"),
            field_u(&jwk, "e"),
            field_u(&jwk, "d"),
            vec![field_u(&jwk, "p"), field_u(&jwk, "q")],
        )
        .unwrap()
    }

    /// A token signed by hand, for algorithms and headers [`Signer`] does not produce.
    fn rsa_token<D>(header: &Value, payload: &Map<String, Value>) -> String
    where
        D: rsa::sha2::Digest + rsa::pkcs8::AssociatedOid,
    {
        let input = format!("{}.{}", enc(header), enc(&Value::Object(payload.clone())));
        let key = rsa::pkcs1v15::SigningKey::<D>::new(rsa_private());
        let sig = key.sign(input.as_bytes()).to_vec();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn ed25519_token(seed: &[u8; 32], header: &Value, payload: &Map<String, Value>) -> String {
        let input = format!("{}.{}", enc(header), enc(&Value::Object(payload.clone())));
        let sig = ed25519_dalek::SigningKey::from_bytes(seed).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn ed25519_seed() -> [u8; 32] {
        let jwk: Value = serde_json::from_str(ED25519_JWK).unwrap();
        URL_SAFE_LENIENT
            .decode(jwk["d"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn sign_then_verify_round_trips_for_every_signing_algorithm() {
        for (jwk, alg) in [
            (RSA_JWK, "RS256"),
            (EC_JWK, "ES256"),
            (ED25519_JWK, "EdDSA"),
        ] {
            let s = signer(jwk);
            assert_eq!(s.alg(), alg);
            let token = s.sign(&standard()).unwrap();
            let header = decode_header(&token).unwrap();
            assert_eq!(header.alg, alg);
            assert_eq!(header.kid.as_deref(), Some(s.kid()));
            let got = verify(&token, &public(&s), &[alg], NOW, Duration::ZERO).unwrap();
            assert_eq!(got.0, standard(), "{alg}");
        }
    }

    #[test]
    fn rs384_and_rs512_verify() {
        let keys = public(&signer(RSA_JWK));
        // The published key is pinned to RS256, so use the same key without `alg`.
        let mut unpinned = keys.clone();
        unpinned.keys.iter_mut().for_each(|k| k.alg = None);
        let header = json!({"alg": "RS384", "kid": "rsa-key-1"});
        let t384 = rsa_token::<rsa::sha2::Sha384>(&header, &standard());
        let header = json!({"alg": "RS512", "kid": "rsa-key-1"});
        let t512 = rsa_token::<rsa::sha2::Sha512>(&header, &standard());
        assert!(verify(&t384, &unpinned, ALL, NOW, Duration::ZERO).is_ok());
        assert!(verify(&t512, &unpinned, ALL, NOW, Duration::ZERO).is_ok());
        // A key whose JWK says RS256 verifies nothing else.
        assert!(matches!(
            verify(&t384, &keys, ALL, NOW, Duration::ZERO),
            Err(JoseError::UnknownKey { .. })
        ));
        // Same bytes, other hash: the signature does not verify.
        let swapped = {
            let p = parts(&t384);
            let h = enc(&json!({"alg": "RS512", "kid": "rsa-key-1"}));
            format!("{h}.{}.{}", p[1], p[2])
        };
        assert_eq!(
            verify(&swapped, &unpinned, ALL, NOW, Duration::ZERO),
            Err(JoseError::InvalidSignature)
        );
    }

    #[test]
    fn tampered_payload_or_signature_is_rejected() {
        for jwk in [RSA_JWK, EC_JWK, ED25519_JWK] {
            let s = signer(jwk);
            let keys = public(&s);
            let token = s.sign(&standard()).unwrap();
            let p = parts(&token);

            let mut forged = standard();
            forged.insert("sub".into(), json!("mallory"));
            let tampered = format!("{}.{}.{}", p[0], enc(&Value::Object(forged)), p[2]);
            assert_eq!(
                verify(&tampered, &keys, ALL, NOW, Duration::ZERO),
                Err(JoseError::InvalidSignature)
            );

            let mut sig = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
            sig[5] ^= 1;
            let tampered = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig));
            assert_eq!(
                verify(&tampered, &keys, ALL, NOW, Duration::ZERO),
                Err(JoseError::InvalidSignature)
            );

            let truncated = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig[..10]));
            assert_eq!(
                verify(&truncated, &keys, ALL, NOW, Duration::ZERO),
                Err(JoseError::InvalidSignature)
            );

            let unsigned = format!("{}.{}.", p[0], p[1]);
            assert_eq!(
                verify(&unsigned, &keys, ALL, NOW, Duration::ZERO),
                Err(JoseError::InvalidSignature)
            );
        }
    }

    #[test]
    fn a_signature_of_another_key_is_rejected() {
        let keys = public(&signer(EC_JWK));
        let other = Signer::from_private_jwks(
            generate_private_jwks(Algorithm::Es256, "ec-key-1")
                .unwrap()
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let token = other.sign(&standard()).unwrap();
        assert_eq!(
            verify(&token, &keys, ALL, NOW, Duration::ZERO),
            Err(JoseError::InvalidSignature)
        );
    }

    #[test]
    fn algorithms_not_allowed_are_rejected_before_any_key_is_used() {
        let s = signer(RSA_JWK);
        let token = s.sign(&standard()).unwrap();
        assert_eq!(
            verify(&token, &public(&s), &["ES256"], NOW, Duration::ZERO),
            Err(JoseError::AlgorithmNotAllowed("RS256".into()))
        );
        let none: &[&str] = &[];
        assert_eq!(
            verify(&token, &public(&s), none, NOW, Duration::ZERO),
            Err(JoseError::AlgorithmNotAllowed("RS256".into()))
        );
    }

    #[test]
    fn alg_none_is_never_accepted() {
        let keys = public(&signer(RSA_JWK));
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "none", "kid": "rsa-key-1"}),
            json!({"alg": "None"}),
            json!({"alg": "NONE"}),
        ] {
            let token = format!("{}.{}.", enc(&header), enc(&Value::Object(standard())));
            let alg = header["alg"].as_str().unwrap().to_owned();
            assert_eq!(
                verify(
                    &token,
                    &keys,
                    &["none", "None", "NONE", "RS256"],
                    NOW,
                    Duration::ZERO
                ),
                Err(JoseError::UnsupportedAlgorithm(alg))
            );
        }
    }

    #[test]
    fn hmac_with_the_public_key_as_secret_is_rejected() {
        use hmac::Mac as _;
        let s = signer(RSA_JWK);
        let keys = public(&s);
        let header = json!({"alg": "HS256", "kid": "rsa-key-1"});
        let input = format!("{}.{}", enc(&header), enc(&Value::Object(standard())));
        // The attack: sign with the published public key (its JSON, or its modulus) as the HMAC secret.
        for secret in [
            s.public_jwk().to_string().into_bytes(),
            rsa_private().n().to_bytes_be(),
        ] {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(
                verify(&token, &keys, &["HS256", "RS256"], NOW, Duration::ZERO),
                Err(JoseError::UnsupportedAlgorithm("HS256".into()))
            );
        }
    }

    #[test]
    fn a_key_of_another_type_is_never_used() {
        // The kid names the RSA key, the header says ES256.
        let rsa = signer(RSA_JWK);
        let ec = signer(EC_JWK);
        let keys = PublicKeySet::merged([&public(&rsa), &public(&ec)]);
        let token = ec.sign(&standard()).unwrap();
        let p = parts(&token);
        let header = enc(&json!({"alg": "ES256", "kid": "rsa-key-1"}));
        let confused = format!("{header}.{}.{}", p[1], p[2]);
        assert_eq!(
            verify(&confused, &keys, ALL, NOW, Duration::ZERO),
            Err(JoseError::UnknownKey {
                kid: Some("rsa-key-1".into())
            })
        );
        assert!(verify(&token, &keys, ALL, NOW, Duration::ZERO).is_ok());
    }

    #[test]
    fn expiry_not_before_and_issued_at_use_the_given_time() {
        let s = signer(EC_JWK);
        let keys = public(&s);
        let now = NOW.unix_timestamp();
        let sign = |extra: Value| {
            let mut c = claims(json!({"sub": "alice"}));
            c.extend(claims(extra));
            s.sign(&c).unwrap()
        };
        let ok = |t: &str, at: OffsetDateTime, leeway: i64| {
            verify(t, &keys, ALL, at, Duration::seconds(leeway))
        };

        let t = sign(json!({"exp": now + 60}));
        assert!(ok(&t, NOW, 0).is_ok());
        assert!(ok(&t, NOW + Duration::seconds(59), 0).is_ok());
        assert_eq!(
            ok(&t, NOW + Duration::seconds(60), 0),
            Err(JoseError::Expired)
        );
        assert_eq!(ok(&t, NOW + Duration::hours(1), 0), Err(JoseError::Expired));
        assert!(ok(&t, NOW + Duration::seconds(64), 5).is_ok());
        assert_eq!(
            ok(&t, NOW + Duration::seconds(65), 5),
            Err(JoseError::Expired)
        );

        let t = sign(json!({"nbf": now + 30}));
        assert_eq!(ok(&t, NOW, 0), Err(JoseError::NotYetValid));
        assert!(ok(&t, NOW + Duration::seconds(30), 0).is_ok());
        assert!(ok(&t, NOW, 30).is_ok());

        let t = sign(json!({"iat": now + 30}));
        assert_eq!(ok(&t, NOW, 0), Err(JoseError::IssuedInFuture));
        assert!(ok(&t, NOW, 30).is_ok());

        let t = sign(json!({"exp": (now + 1) as f64 + 0.5}));
        assert!(ok(&t, NOW + Duration::seconds(1), 0).is_ok());
        assert_eq!(
            ok(&t, NOW + Duration::milliseconds(1500), 0),
            Err(JoseError::Expired)
        );

        // Without exp a token does not expire (as in Oathkeeper and RFC 7519, where exp is optional).
        assert!(ok(&sign(json!({})), NOW + Duration::days(3650), 0).is_ok());

        for bad in [
            json!({"exp": "tomorrow"}),
            json!({"nbf": null}),
            json!({"iat": [1]}),
            json!({"exp": true}),
        ] {
            assert!(
                matches!(
                    ok(&sign(bad.clone()), NOW, 0),
                    Err(JoseError::InvalidClaim { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_kid_is_reported_as_such() {
        let keys = public(&signer(EC_JWK));
        let other = Signer::from_private_jwks(
            generate_private_jwks(Algorithm::Es256, "rotated")
                .unwrap()
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let token = other.sign(&standard()).unwrap();
        assert_eq!(
            verify(&token, &keys, ALL, NOW, Duration::ZERO),
            Err(JoseError::UnknownKey {
                kid: Some("rotated".into())
            })
        );
        // An empty set knows no key at all.
        assert_eq!(
            verify(&token, &PublicKeySet::default(), ALL, NOW, Duration::ZERO),
            Err(JoseError::UnknownKey {
                kid: Some("rotated".into())
            })
        );
    }

    #[test]
    fn without_kid_every_key_of_the_right_type_is_tried() {
        let ours = signer(ED25519_JWK);
        let other = Signer::from_private_jwks(
            generate_private_jwks(Algorithm::EdDsa, "other")
                .unwrap()
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let keys =
            PublicKeySet::merged([&public(&other), &public(&signer(EC_JWK)), &public(&ours)]);
        let token = ed25519_token(&ed25519_seed(), &json!({"alg": "EdDSA"}), &standard());
        assert!(verify(&token, &keys, ALL, NOW, Duration::ZERO).is_ok());
        // Only the other Ed25519 key: no key verifies.
        assert_eq!(
            verify(&token, &public(&other), ALL, NOW, Duration::ZERO),
            Err(JoseError::InvalidSignature)
        );
        // No Ed25519 key at all.
        assert_eq!(
            verify(&token, &public(&signer(EC_JWK)), ALL, NOW, Duration::ZERO),
            Err(JoseError::UnknownKey { kid: None })
        );
    }

    #[test]
    fn garbage_tokens_are_malformed_and_never_panic() {
        let keys = PublicKeySet::merged([&public(&signer(RSA_JWK)), &public(&signer(EC_JWK))]);
        let good = signer(EC_JWK).sign(&standard()).unwrap();
        let p = parts(&good);
        let cases: Vec<String> = vec![
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a.b.c".into(),
            "a.b.c.d".into(),
            "é.é.é".into(),
            "eyJ.eyJ.".into(),
            format!("{}.{}", p[0], p[1]),
            format!("{}.{}.{}.{}", p[0], p[1], p[2], p[2]),
            format!("{}==.{}.{}", p[0], p[1], p[2]),
            format!("{}.{}.{}=", p[0], p[1], p[2]),
            format!("{}.{}.{}", enc(&json!([1, 2])), p[1], p[2]),
            format!("{}.{}.{}", enc(&json!({"kid": "ec-key-1"})), p[1], p[2]),
            format!("{}.{}.{}", enc(&json!({"alg": 256})), p[1], p[2]),
            format!(
                "{}.{}.{}",
                enc(&json!({"alg": "ES256", "kid": 7})),
                p[1],
                p[2]
            ),
            format!(
                "{}.{}.{}",
                enc(&json!({"alg": "ES256", "crit": ["exp"]})),
                p[1],
                p[2]
            ),
            format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("{\"alg\":"), p[1], p[2]),
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]),
                p[1],
                p[2]
            ),
        ];
        for token in &cases {
            let err = verify(token, &keys, ALL, NOW, Duration::ZERO).unwrap_err();
            assert!(
                matches!(err, JoseError::Malformed(_) | JoseError::InvalidSignature),
                "{token:?}: {err:?}"
            );
        }
        let huge = format!("{}.{}.{}", p[0], "A".repeat(MAX_TOKEN_LEN), p[2]);
        assert_eq!(
            verify(&huge, &keys, ALL, NOW, Duration::ZERO),
            Err(JoseError::TooLong)
        );

        // A payload that is not a JSON object, correctly signed.
        let s = signer(EC_JWK);
        let input = format!("{}.{}", p[0], URL_SAFE_NO_PAD.encode("[1,2,3]"));
        let sig = s.key.sign(input.as_bytes()).unwrap();
        let array = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert!(matches!(
            verify(&array, &keys, ALL, NOW, Duration::ZERO),
            Err(JoseError::Malformed(_))
        ));

        // Random soup of the token alphabet.
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"eyJhbGciOiJFUzI1NiJ9._-AZaz09=+/ \x00";
        for _ in 0..2000 {
            let len = rng.gen_range(0..200);
            let soup: String = (0..len)
                .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
                .collect();
            let _ = verify(&soup, &keys, ALL, NOW, Duration::ZERO);
            let _ = decode_header(&soup);
            let mixed = format!("{}.{soup}.{}", p[0], p[2]);
            assert!(verify(&mixed, &keys, ALL, NOW, Duration::ZERO).is_err());
        }
    }

    #[test]
    fn key_sets_keep_usable_keys_and_skip_the_rest() {
        let rsa = signer(RSA_JWK).public_jwk();
        let ec = signer(EC_JWK).public_jwk();
        let mut enc_key = rsa.clone();
        enc_key["use"] = json!("enc");
        enc_key["kid"] = json!("enc");
        let mut pinned_wrong = ec.clone();
        pinned_wrong["alg"] = json!("RS256");
        pinned_wrong["kid"] = json!("pinned-wrong");
        let doc = json!({"keys": [
            enc_key,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            {"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32]), "kid": "off-curve"},
            pinned_wrong,
            {"kty": "RSA", "kid": "ps256", "alg": "PS256", "n": rsa["n"], "e": "AQAB"},
            "not an object",
            rsa,
            ec,
        ]});
        let set = PublicKeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.has_key(Some("rsa-key-1"), Algorithm::Rs256));
        assert!(set.has_key(Some("ec-key-1"), Algorithm::Es256));
        assert!(!set.has_key(Some("enc"), Algorithm::Rs256));
        assert!(!set.has_key(Some("rsa-key-1"), Algorithm::Es256));

        // Private JWKs are accepted as public keys, and a lone JWK is a set.
        let lone = PublicKeySet::from_jwks(EC_JWK.as_bytes()).unwrap();
        assert!(lone.has_key(Some("ec-key-1"), Algorithm::Es256));

        for bad in [
            "",
            "[]",
            "{}",
            r#"{"keys": {}}"#,
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
        ] {
            assert!(
                matches!(
                    PublicKeySet::from_jwks(bad.as_bytes()),
                    Err(JoseError::Jwks(_))
                ),
                "{bad}"
            );
        }
        let err =
            PublicKeySet::from_jwks(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).unwrap_err();
        assert!(
            err.to_string().contains("unsupported key type \"oct\""),
            "{err}"
        );
    }

    #[test]
    fn the_signer_publishes_only_the_public_half() {
        for jwk in [RSA_JWK, EC_JWK, ED25519_JWK] {
            let s = signer(jwk);
            let jwks = s.public_jwks();
            let key = &jwks["keys"][0];
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "{private} leaked");
            }
            assert_eq!(key["use"], "sig");
            assert_eq!(key["alg"], s.alg());
            assert_eq!(key["kid"], s.kid());
            let private: Value = serde_json::from_str(jwk).unwrap();
            assert!(!format!("{s:?}").contains(private["d"].as_str().unwrap()));
        }
        assert_eq!(signer(RSA_JWK).kid(), "rsa-key-1");
        // Without kid, the RFC 7638 thumbprint.
        let ed = signer(ED25519_JWK);
        let members = claims(
            json!({"crv": "Ed25519", "kty": "OKP", "x": "ZFvMQXX06Ub6Spza4ie5l0CiVBxjI2L2RG32nxSLNIo"}),
        );
        assert_eq!(ed.kid(), thumbprint(&members));
        assert_eq!(ed.kid().len(), 43);
    }

    #[test]
    fn thumbprint_matches_rfc_7638() {
        let members = claims(json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        }));
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn signer_needs_a_private_key() {
        let public_only = signer(EC_JWK).public_jwks().to_string();
        assert!(matches!(
            Signer::from_private_jwks(public_only.as_bytes()),
            Err(JoseError::Jwks(_))
        ));
        assert!(matches!(
            Signer::from_private_jwks(b"nope"),
            Err(JoseError::Jwks(_))
        ));
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        for alg in [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa] {
            let jwks = generate_private_jwks(alg, "gen").unwrap();
            let s = Signer::from_private_jwks(jwks.to_string().as_bytes()).unwrap();
            assert_eq!(s.kid(), "gen");
            let token = s.sign(&standard()).unwrap();
            assert!(verify(
                &token,
                &s.public_key_set().unwrap(),
                &[alg.name()],
                NOW,
                Duration::ZERO
            )
            .is_ok());
        }
        assert!(generate_private_jwks(Algorithm::Rs512, "x").is_err());
    }

    #[test]
    fn local_documents_load_from_base64_and_files() {
        use base64::engine::general_purpose::STANDARD;
        let url = format!("base64://{}", STANDARD.encode(EC_JWK));
        assert_eq!(load_local_document(&url).unwrap(), EC_JWK.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, EC_JWK).unwrap();
        let url = format!("file://{}", path.display());
        assert_eq!(load_local_document(&url).unwrap(), EC_JWK.as_bytes());
        assert!(matches!(
            load_local_document("https://idp.example/jwks.json"),
            Err(JoseError::Jwks(_))
        ));
    }
}
