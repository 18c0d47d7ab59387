//! Selection of the signing key from a JSON Web Key Set and JWS signing.

use base64::Engine as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::BigUint;
use serde_json::{Map, Value};

use super::source::URL_SAFE_LENIENT;

/// Smallest RSA modulus accepted (Go's crypto/rsa refuses smaller keys too).
pub(crate) const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted; larger keys are almost certainly a mistake and slow to use.
pub(crate) const RSA_MAX_BITS: usize = 16384;

/// A private key able to produce a JWS signature.
pub(crate) enum SigningKey {
    Rs256(Box<rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>>),
    Es256(Box<p256::ecdsa::SigningKey>),
    EdDsa(Box<ed25519_dalek::SigningKey>),
}

impl SigningKey {
    /// The JWS `alg` this key signs with.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            Self::Rs256(_) => "RS256",
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
        }
    }

    /// Signs `message` (the JWS signing input) and returns the raw JWS signature bytes.
    ///
    /// ES256 signatures are the fixed-size `r || s` concatenation required by RFC 7518, not DER.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Self::Rs256(key) => key
                // Randomized (blinded) signing protects the private exponent against timing leaks.
                .try_sign_with_rng(&mut rand::thread_rng(), message)
                .map(|sig| sig.to_vec())
                .map_err(|e| e.to_string()),
            Self::Es256(key) => {
                let sig: p256::ecdsa::Signature =
                    key.as_ref().try_sign(message).map_err(|e| e.to_string())?;
                Ok(sig.to_bytes().to_vec())
            }
            Self::EdDsa(key) => key
                .as_ref()
                .try_sign(message)
                .map(|sig| sig.to_bytes().to_vec())
                .map_err(|e| e.to_string()),
        }
    }
}

/// The key chosen from a JWKS.
pub(crate) struct SelectedKey {
    pub(crate) key: SigningKey,
    pub(crate) kid: Option<String>,
}

/// Parses a JWKS document (or a single JWK) and returns the first key that holds private
/// material of a supported type: RSA (RS256), EC P-256 (ES256) or OKP Ed25519 (EdDSA).
///
/// Keys without private material or of an unsupported type are skipped. The chosen key must be
/// well formed and, when it carries an `alg`, that `alg` must be the one its type signs with.
pub(crate) fn select_signing_key(document: &[u8]) -> Result<SelectedKey, String> {
    let doc: Value =
        serde_json::from_slice(document).map_err(|e| format!("the JWKS is not valid JSON: {e}"))?;
    let keys: Vec<&Value> = match &doc {
        Value::Object(obj) => match obj.get("keys") {
            Some(Value::Array(keys)) => keys.iter().collect(),
            Some(_) => return Err("the JWKS \"keys\" member is not an array".to_owned()),
            // A lone JWK rather than a set.
            None if obj.contains_key("kty") => vec![&doc],
            None => return Err("the JWKS has no \"keys\" array".to_owned()),
        },
        _ => return Err("the JWKS is not a JSON object".to_owned()),
    };

    let mut skipped = Vec::new();
    for (index, key) in keys.into_iter().enumerate() {
        let Value::Object(jwk) = key else {
            return Err(format!("key #{index} is not a JSON object"));
        };
        let label = key_label(index, jwk);
        match classify(jwk) {
            Ok(kind) => return build(kind, jwk).map_err(|reason| format!("{label}: {reason}")),
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

#[derive(Clone, Copy)]
enum Kind {
    Rsa,
    P256,
    Ed25519,
}

impl Kind {
    fn alg(self) -> &'static str {
        match self {
            Self::Rsa => "RS256",
            Self::P256 => "ES256",
            Self::Ed25519 => "EdDSA",
        }
    }
}

fn key_label(index: usize, jwk: &Map<String, Value>) -> String {
    match jwk.get("kid").and_then(Value::as_str) {
        Some(kid) => format!("key #{index} (kid {kid:?})"),
        None => format!("key #{index}"),
    }
}

/// Decides whether a JWK is a signing candidate; `Err` carries why it is skipped.
fn classify(jwk: &Map<String, Value>) -> Result<Kind, String> {
    let kty = match jwk.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        Some(_) => return Err("\"kty\" is not a string".to_owned()),
        None => return Err("no \"kty\"".to_owned()),
    };
    let crv = jwk.get("crv").and_then(Value::as_str);
    let kind = match (kty, crv) {
        ("RSA", _) => Kind::Rsa,
        ("EC", Some("P-256")) => Kind::P256,
        ("OKP", Some("Ed25519")) => Kind::Ed25519,
        ("EC", _) | ("OKP", _) => {
            return Err(format!(
                "unsupported curve {} for kty {kty:?}",
                crv.map_or_else(|| "(none)".to_owned(), |c| format!("{c:?}"))
            ))
        }
        _ => return Err(format!("unsupported kty {kty:?}")),
    };
    if !jwk.contains_key("d") {
        return Err("no private key material (\"d\")".to_owned());
    }
    Ok(kind)
}

fn build(kind: Kind, jwk: &Map<String, Value>) -> Result<SelectedKey, String> {
    let kid = match jwk.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) if kid.is_empty() => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("\"kid\" is not a string".to_owned()),
    };
    match jwk.get("alg") {
        None | Some(Value::Null) => {}
        Some(Value::String(alg)) if alg == kind.alg() => {}
        Some(Value::String(alg)) => {
            return Err(format!(
                "\"alg\" is {alg:?} but only {:?} is supported for this key type",
                kind.alg()
            ))
        }
        Some(_) => return Err("\"alg\" is not a string".to_owned()),
    }
    let key = match kind {
        Kind::Rsa => build_rsa(jwk)?,
        Kind::P256 => build_p256(jwk)?,
        Kind::Ed25519 => build_ed25519(jwk)?,
    };
    Ok(SelectedKey { key, kid })
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

fn build_rsa(jwk: &Map<String, Value>) -> Result<SigningKey, String> {
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
    // Validates the key (n = p*q, d*e = 1 mod (p-1), (q-1)) and precomputes CRT values; dp, dq
    // and qi from the JWK are therefore not needed.
    let key = rsa::RsaPrivateKey::from_components(n, e, d, primes)
        .map_err(|e| format!("invalid RSA private key: {e}"))?;
    if key.n().bits() != bits {
        return Err("invalid RSA private key".to_owned());
    }
    Ok(SigningKey::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(
        key,
    ))))
}

fn build_p256(jwk: &Map<String, Value>) -> Result<SigningKey, String> {
    let d = field(jwk, "d")?;
    if d.len() != 32 {
        return Err(format!(
            "\"d\" must be 32 bytes for P-256, found {}",
            d.len()
        ));
    }
    let key = p256::ecdsa::SigningKey::from_slice(&d)
        .map_err(|_| "\"d\" is not a valid P-256 private key".to_owned())?;
    let x = field(jwk, "x")?;
    let y = field(jwk, "y")?;
    let point = key.verifying_key().to_encoded_point(false);
    let matches =
        point.x().is_some_and(|px| px[..] == x[..]) && point.y().is_some_and(|py| py[..] == y[..]);
    if !matches {
        return Err(
            "the public key (\"x\", \"y\") does not match the private key \"d\"".to_owned(),
        );
    }
    Ok(SigningKey::Es256(Box::new(key)))
}

fn build_ed25519(jwk: &Map<String, Value>) -> Result<SigningKey, String> {
    let d: [u8; 32] = field(jwk, "d")?
        .try_into()
        .map_err(|d: Vec<u8>| format!("\"d\" must be 32 bytes for Ed25519, found {}", d.len()))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&d);
    let x = field(jwk, "x")?;
    if key.verifying_key().as_bytes().as_slice() != x.as_slice() {
        return Err("the public key \"x\" does not match the private key \"d\"".to_owned());
    }
    Ok(SigningKey::EdDsa(Box::new(key)))
}
