//! The one JSON Web Key parser of the crate: public keys of a set become `jsonwebtoken` [`DecodingKey`]s, the
//! signing key of a private set becomes an [`EncodingKey`].
//!
//! `jsonwebtoken` reads public JWKs ([`DecodingKey::from_jwk`]) but has no notion of a private JWK, and its
//! [`Jwk`] type takes keys that are unusable or unsafe (an EC point off the curve, a 512-bit RSA modulus, a
//! small-order Ed25519 point), which fail, if at all, only when a token is verified. So this module reads the members itself and checks them with the RustCrypto types the
//! workspace already has (`rsa`, `p256`, `ed25519-dalek`): public members become a canonical [`Jwk`] handed to
//! [`DecodingKey::from_jwk`]; private members become a RustCrypto private key, serialised as DER (PKCS #1 for RSA,
//! PKCS #8 for EC and Ed25519) for [`EncodingKey::from_rsa_der`], [`EncodingKey::from_ec_der`] and
//! [`EncodingKey::from_ed_der`]. Signing and verifying themselves are `jsonwebtoken`'s.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
    RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::BigUint;
use serde_json::{Map, Value};

use super::Algorithm;
use crate::tokenize::source::URL_SAFE_LENIENT;

/// Smallest RSA modulus accepted (Go's crypto/rsa refuses smaller keys too).
pub(crate) const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted for signing; larger keys are almost certainly a mistake and slow to use.
pub(crate) const RSA_MAX_BITS: usize = 16384;
/// Largest RSA modulus accepted for verification: `jsonwebtoken` builds the public key with
/// `rsa::RsaPublicKey::new`, which refuses larger moduli.
pub(crate) const RSA_MAX_VERIFY_BITS: usize = rsa::RsaPublicKey::MAX_SIZE;

/// The key types this crate signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC`, `crv: P-256`.
    P256,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
}

impl KeyType {
    /// Whether a key of this type verifies `alg`.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (
                Self::Rsa,
                Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512
            ) | (Self::P256, Algorithm::Es256)
                | (Self::Ed25519, Algorithm::EdDsa)
        )
    }

    /// The algorithm keys of this type sign with.
    pub(crate) fn signing_alg(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::Rs256,
            Self::P256 => Algorithm::Es256,
            Self::Ed25519 => Algorithm::EdDsa,
        }
    }

    fn kty(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::P256 => "EC",
            Self::Ed25519 => "OKP",
        }
    }
}

/// The entries of a JWKS document (`{"keys": [...]}`), or the document itself when it is a lone JWK.
pub(crate) fn entries(document: &[u8]) -> Result<Vec<Value>, String> {
    let doc: Value =
        serde_json::from_slice(document).map_err(|e| format!("not valid JSON: {e}"))?;
    match doc {
        Value::Object(mut obj) => match obj.remove("keys") {
            Some(Value::Array(keys)) => Ok(keys),
            Some(_) => Err("\"keys\" is not an array".to_owned()),
            None if obj.contains_key("kty") => Ok(vec![Value::Object(obj)]),
            None => Err("no \"keys\" array".to_owned()),
        },
        _ => Err("not a JSON object".to_owned()),
    }
}

/// `key #3` or `key #3 (kid "a")`, for messages.
pub(crate) fn label(index: usize, entry: &Value) -> String {
    match entry.get("kid").and_then(Value::as_str) {
        Some(kid) => format!("key #{index} (kid {kid:?})"),
        None => format!("key #{index}"),
    }
}

/// `kty` (and `crv`) of a JWK, when supported.
fn key_type(jwk: &Map<String, Value>) -> Result<KeyType, String> {
    let kty = match jwk.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        Some(_) => return Err("\"kty\" is not a string".to_owned()),
        None => return Err("no \"kty\"".to_owned()),
    };
    let crv = jwk.get("crv").and_then(Value::as_str);
    match (kty, crv) {
        ("RSA", _) => Ok(KeyType::Rsa),
        ("EC", Some("P-256")) => Ok(KeyType::P256),
        ("OKP", Some("Ed25519")) => Ok(KeyType::Ed25519),
        ("EC", _) | ("OKP", _) => Err(format!(
            "unsupported curve {} for kty {kty:?}",
            crv.map_or_else(|| "(none)".to_owned(), |c| format!("{c:?}"))
        )),
        _ => Err(format!("unsupported kty {kty:?}")),
    }
}

/// `kid`, with an empty one as none.
fn kid(jwk: &Map<String, Value>) -> Result<Option<String>, String> {
    match jwk.get("kid") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(kid)) if kid.is_empty() => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid.clone())),
        Some(_) => Err("\"kid\" is not a string".to_owned()),
    }
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

fn optional_field(jwk: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, String> {
    if jwk.contains_key(name) {
        field(jwk, name).map(Some)
    } else {
        Ok(None)
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public members of a key, as a `jsonwebtoken` JWK without `kid`, `alg` or `use`.
fn public_jwk(params: AlgorithmParameters) -> Jwk {
    Jwk {
        common: CommonParameters::default(),
        algorithm: params,
    }
}

fn rsa_params(key: &rsa::RsaPublicKey) -> AlgorithmParameters {
    AlgorithmParameters::RSA(RSAKeyParameters {
        key_type: RSAKeyType::RSA,
        n: b64(&key.n().to_bytes_be()),
        e: b64(&key.e().to_bytes_be()),
    })
}

fn p256_params(key: &p256::PublicKey) -> AlgorithmParameters {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    let point = key.to_encoded_point(false);
    AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
        key_type: EllipticCurveKeyType::EC,
        curve: EllipticCurve::P256,
        x: b64(point.x().map(|x| x.as_slice()).unwrap_or_default()),
        y: b64(point.y().map(|y| y.as_slice()).unwrap_or_default()),
    })
}

fn ed25519_params(key: &ed25519_dalek::VerifyingKey) -> AlgorithmParameters {
    AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
        key_type: OctetKeyPairType::OctetKeyPair,
        curve: EllipticCurve::Ed25519,
        x: b64(key.as_bytes()),
    })
}

/// RFC 7638 thumbprint (SHA-256) of a key's required public members.
pub(crate) fn thumbprint(jwk: &Jwk) -> Result<String, String> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("unable to compute the key thumbprint: {e}"))
}

/// A public key of a JSON Web Key Set, ready to verify.
#[derive(Clone)]
pub(crate) struct PublicJwk {
    pub(crate) kid: Option<String>,
    /// The `alg` the key is pinned to, if any.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) key_type: KeyType,
    pub(crate) key: DecodingKey,
}

/// Reads a JWK as a verification key: RSA (1024 to 4096 bits), EC P-256 or OKP Ed25519, with `use` absent or
/// `sig` and `alg` absent or one it can verify. Private members are ignored. `Err` says why the key is unusable.
pub(crate) fn public_key(entry: &Value) -> Result<PublicJwk, String> {
    let Value::Object(jwk) = entry else {
        return Err("not a JSON object".to_owned());
    };
    match jwk.get("use") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => return Err(format!("\"use\" is {u:?}, not \"sig\"")),
        Some(_) => return Err("\"use\" is not a string".to_owned()),
    }
    let kid = kid(jwk)?;
    let alg = match jwk.get("alg") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => {
            Some(Algorithm::from_name(a).ok_or_else(|| format!("unsupported \"alg\" {a:?}"))?)
        }
        Some(_) => return Err("\"alg\" is not a string".to_owned()),
    };
    let key_type = key_type(jwk)?;
    if let Some(alg) = alg {
        if !key_type.fits(alg) {
            return Err(format!(
                "\"alg\" {:?} does not fit a {} key",
                alg.name(),
                key_type.kty()
            ));
        }
    }
    let params = match key_type {
        KeyType::Rsa => rsa_params(&rsa_public(jwk)?),
        KeyType::P256 => p256_params(&p256_public(jwk)?),
        KeyType::Ed25519 => ed25519_params(&ed25519_public(jwk)?),
    };
    let key = DecodingKey::from_jwk(&public_jwk(params))
        .map_err(|e| format!("unusable public key: {e}"))?;
    Ok(PublicJwk {
        kid,
        alg,
        key_type,
        key,
    })
}

fn rsa_public(jwk: &Map<String, Value>) -> Result<rsa::RsaPublicKey, String> {
    let n = BigUint::from_bytes_be(&field(jwk, "n")?);
    let e = BigUint::from_bytes_be(&field(jwk, "e")?);
    let bits = n.bits();
    if !(RSA_MIN_BITS..=RSA_MAX_VERIFY_BITS).contains(&bits) {
        return Err(format!(
            "the RSA modulus has {bits} bits; between {RSA_MIN_BITS} and {RSA_MAX_VERIFY_BITS} are supported"
        ));
    }
    if e.bits() < 2 || e.bits() > 32 {
        return Err("the RSA exponent is invalid".to_owned());
    }
    rsa::RsaPublicKey::new(n, e).map_err(|e| format!("invalid RSA public key: {e}"))
}

fn p256_public(jwk: &Map<String, Value>) -> Result<p256::PublicKey, String> {
    let x = field(jwk, "x")?;
    let y = field(jwk, "y")?;
    if x.len() != 32 || y.len() != 32 {
        return Err("\"x\" and \"y\" must be 32 bytes each for P-256".to_owned());
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|_| "(\"x\", \"y\") is not a point on P-256".to_owned())
}

fn ed25519_public(jwk: &Map<String, Value>) -> Result<ed25519_dalek::VerifyingKey, String> {
    let x: [u8; 32] = field(jwk, "x")?
        .try_into()
        .map_err(|x: Vec<u8>| format!("\"x\" must be 32 bytes for Ed25519, found {}", x.len()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| "\"x\" is not a valid Ed25519 public key".to_owned())?;
    // `jsonwebtoken` verifies with `VerifyingKey::verify`, not `verify_strict`: refusing small-order keys here
    // keeps the guarantee that matters (no key verifies forged signatures for every message).
    if key.is_weak() {
        return Err("\"x\" is a weak Ed25519 public key".to_owned());
    }
    Ok(key)
}

/// The signing key of a private JSON Web Key Set.
pub(crate) struct PrivateJwk {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: EncodingKey,
    /// The public members (no `kid`, `alg` or `use`).
    pub(crate) public: Jwk,
}

impl PrivateJwk {
    /// The public key as a JWK with `kid`, `alg` and `use: sig`.
    pub(crate) fn published(&self, kid: &str) -> Jwk {
        let mut jwk = self.public.clone();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.key_algorithm = Some(self.alg.jwt().into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk
    }
}

/// Parses a JWKS document (or a single JWK) and returns the first key that holds private material of a supported
/// type: RSA (RS256), EC P-256 (ES256) or OKP Ed25519 (EdDSA).
///
/// Keys without private material or of an unsupported type are skipped. The chosen key must be well formed and,
/// when it carries an `alg`, that `alg` must be the one its type signs with.
pub(crate) fn select_signing_key(document: &[u8]) -> Result<PrivateJwk, String> {
    let keys = entries(document)?;
    let mut skipped = Vec::new();
    for (index, entry) in keys.iter().enumerate() {
        let Value::Object(jwk) = entry else {
            return Err(format!("key #{index} is not a JSON object"));
        };
        let label = label(index, entry);
        let candidate = key_type(jwk).and_then(|kind| {
            if jwk.contains_key("d") {
                Ok(kind)
            } else {
                Err("no private key material (\"d\")".to_owned())
            }
        });
        match candidate {
            Ok(kind) => {
                return private_key(kind, jwk).map_err(|reason| format!("{label}: {reason}"))
            }
            Err(why) => skipped.push(format!("{label}: {why}")),
        }
    }
    let detail = if skipped.is_empty() {
        "the set is empty".to_owned()
    } else {
        format!("skipped {}", skipped.join("; "))
    };
    Err(format!(
        "the JWKS holds no usable signing key (a private RSA, EC P-256 or OKP Ed25519 key is required): {detail}"
    ))
}

fn private_key(kind: KeyType, jwk: &Map<String, Value>) -> Result<PrivateJwk, String> {
    let kid = kid(jwk)?;
    let alg = kind.signing_alg();
    match jwk.get("alg") {
        None | Some(Value::Null) => {}
        Some(Value::String(a)) if a == alg.name() => {}
        Some(Value::String(a)) => {
            return Err(format!(
                "\"alg\" is {a:?} but only {:?} is supported for this key type",
                alg.name()
            ))
        }
        Some(_) => return Err("\"alg\" is not a string".to_owned()),
    }
    let (key, params) = match kind {
        KeyType::Rsa => rsa_private(jwk)?,
        KeyType::P256 => p256_private(jwk)?,
        KeyType::Ed25519 => ed25519_private(jwk)?,
    };
    Ok(PrivateJwk {
        kid,
        alg,
        key,
        public: public_jwk(params),
    })
}

fn rsa_private(jwk: &Map<String, Value>) -> Result<(EncodingKey, AlgorithmParameters), String> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let n = BigUint::from_bytes_be(&field(jwk, "n")?);
    let e = BigUint::from_bytes_be(&field(jwk, "e")?);
    let d = BigUint::from_bytes_be(&field(jwk, "d")?);
    let bits = n.bits();
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(format!(
            "the RSA modulus has {bits} bits; between {RSA_MIN_BITS} and {RSA_MAX_BITS} are supported"
        ));
    }
    if e.bits() < 2 || e.bits() > 32 || d.bits() == 0 || d >= n {
        return Err("the RSA exponents are invalid".to_owned());
    }
    let primes = match (optional_field(jwk, "p")?, optional_field(jwk, "q")?) {
        (Some(p), Some(q)) => {
            let (p, q) = (BigUint::from_bytes_be(&p), BigUint::from_bytes_be(&q));
            if p.bits() < 2 || q.bits() < 2 || p.bits() + q.bits() > bits + 1 {
                return Err("the RSA primes \"p\" and \"q\" are invalid".to_owned());
            }
            vec![p, q]
        }
        (None, None) => Vec::new(),
        _ => return Err("only one of the RSA primes \"p\" and \"q\" is present".to_owned()),
    };
    // Validates the key (n = p*q, d*e = 1 mod (p-1), (q-1)), recovering p and q when absent; dp, dq and qi from
    // the JWK are therefore not needed.
    let key = rsa::RsaPrivateKey::from_components(n, e, d, primes)
        .map_err(|e| format!("invalid RSA private key: {e}"))?;
    if key.n().bits() != bits || key.primes().len() != 2 {
        return Err("invalid RSA private key".to_owned());
    }
    let der = key
        .to_pkcs1_der()
        .map_err(|e| format!("invalid RSA private key: {e}"))?;
    Ok((
        EncodingKey::from_rsa_der(der.as_bytes()),
        rsa_params(&key.to_public_key()),
    ))
}

fn p256_private(jwk: &Map<String, Value>) -> Result<(EncodingKey, AlgorithmParameters), String> {
    use p256::pkcs8::EncodePrivateKey as _;
    let d = field(jwk, "d")?;
    if d.len() != 32 {
        return Err(format!(
            "\"d\" must be 32 bytes for P-256, found {}",
            d.len()
        ));
    }
    let key = p256::SecretKey::from_slice(&d)
        .map_err(|_| "\"d\" is not a valid P-256 private key".to_owned())?;
    let x = field(jwk, "x")?;
    let y = field(jwk, "y")?;
    let params = p256_params(&key.public_key());
    let matches = matches!(&params, AlgorithmParameters::EllipticCurve(p) if p.x == b64(&x) && p.y == b64(&y));
    if !matches {
        return Err(
            "the public key (\"x\", \"y\") does not match the private key \"d\"".to_owned(),
        );
    }
    let der = key
        .to_pkcs8_der()
        .map_err(|e| format!("invalid P-256 private key: {e}"))?;
    Ok((EncodingKey::from_ec_der(der.as_bytes()), params))
}

fn ed25519_private(jwk: &Map<String, Value>) -> Result<(EncodingKey, AlgorithmParameters), String> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let d: [u8; 32] = field(jwk, "d")?
        .try_into()
        .map_err(|d: Vec<u8>| format!("\"d\" must be 32 bytes for Ed25519, found {}", d.len()))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&d);
    let x = field(jwk, "x")?;
    if key.verifying_key().as_bytes().as_slice() != x.as_slice() {
        return Err("the public key \"x\" does not match the private key \"d\"".to_owned());
    }
    let der = key
        .to_pkcs8_der()
        .map_err(|e| format!("invalid Ed25519 private key: {e}"))?;
    Ok((
        EncodingKey::from_ed_der(der.as_bytes()),
        ed25519_params(&key.verifying_key()),
    ))
}

/// A private JWK with a new key for `alg` (RSA with a 2048-bit modulus for `RS256`, P-256 for `ES256`, Ed25519
/// for `EdDSA`): `jsonwebtoken` generates no keys, so the RustCrypto crates do.
pub(crate) fn generate(alg: Algorithm) -> Result<Map<String, Value>, String> {
    let mut rng = rand::rngs::OsRng;
    let mut jwk = Map::new();
    let s = |bytes: &[u8]| Value::String(b64(bytes));
    match alg {
        Algorithm::Rs256 => {
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
            jwk.insert("kty".to_owned(), Value::String("RSA".to_owned()));
            jwk.insert("n".to_owned(), s(&key.n().to_bytes_be()));
            jwk.insert("e".to_owned(), s(&key.e().to_bytes_be()));
            jwk.insert("d".to_owned(), s(&key.d().to_bytes_be()));
            if let [p, q] = key.primes() {
                jwk.insert("p".to_owned(), s(&p.to_bytes_be()));
                jwk.insert("q".to_owned(), s(&q.to_bytes_be()));
            }
            if let (Some(dp), Some(dq), Some(qi)) = (key.dp(), key.dq(), key.crt_coefficient()) {
                jwk.insert("dp".to_owned(), s(&dp.to_bytes_be()));
                jwk.insert("dq".to_owned(), s(&dq.to_bytes_be()));
                jwk.insert("qi".to_owned(), s(&qi.to_bytes_be()));
            }
        }
        Algorithm::Es256 => {
            let key = p256::SecretKey::random(&mut rng);
            if let AlgorithmParameters::EllipticCurve(p) = p256_params(&key.public_key()) {
                jwk.insert("kty".to_owned(), Value::String("EC".to_owned()));
                jwk.insert("crv".to_owned(), Value::String("P-256".to_owned()));
                jwk.insert("x".to_owned(), Value::String(p.x));
                jwk.insert("y".to_owned(), Value::String(p.y));
            }
            jwk.insert("d".to_owned(), s(&key.to_bytes()));
        }
        Algorithm::EdDsa => {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rng, seed.as_mut());
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            jwk.insert("kty".to_owned(), Value::String("OKP".to_owned()));
            jwk.insert("crv".to_owned(), Value::String("Ed25519".to_owned()));
            jwk.insert("x".to_owned(), s(key.verifying_key().as_bytes()));
            jwk.insert("d".to_owned(), s(key.as_bytes()));
        }
        Algorithm::Rs384 | Algorithm::Rs512 => {
            return Err(format!(
                "{} keys cannot be generated for signing",
                alg.name()
            ))
        }
    }
    Ok(jwk)
}
