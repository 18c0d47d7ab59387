use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::BigUint;
use sha2::Digest as _;

use crate::tokenize::source::URL_SAFE_LENIENT;
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
    unpinned.keys.iter_mut().for_each(|k| k.0.alg = None);
    let header = json!({"alg": "RS384", "kid": "rsa-key-1"});
    let t384 = rsa_token::<rsa::sha2::Sha384>(&header, &standard());
    let header = json!({"alg": "RS512", "kid": "rsa-key-1"});
    let t512 = rsa_token::<rsa::sha2::Sha512>(&header, &standard());
    assert!(verify(&t384, &unpinned, ALL, NOW, Duration::ZERO).is_ok());
    assert!(verify(&t512, &unpinned, ALL, NOW, Duration::ZERO).is_ok());
    // A key whose JWK says RS256 verifies nothing else.
    assert!(matches!(
        verify(&t384, &keys, ALL, NOW, Duration::ZERO),
        Err(JwsError::UnknownKey { .. })
    ));
    // Same bytes, other hash: the signature does not verify.
    let swapped = {
        let p = parts(&t384);
        let h = enc(&json!({"alg": "RS512", "kid": "rsa-key-1"}));
        format!("{h}.{}.{}", p[1], p[2])
    };
    assert_eq!(
        verify(&swapped, &unpinned, ALL, NOW, Duration::ZERO),
        Err(JwsError::InvalidSignature)
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
            Err(JwsError::InvalidSignature)
        );

        let mut sig = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
        sig[5] ^= 1;
        let tampered = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            verify(&tampered, &keys, ALL, NOW, Duration::ZERO),
            Err(JwsError::InvalidSignature)
        );

        let truncated = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig[..10]));
        assert_eq!(
            verify(&truncated, &keys, ALL, NOW, Duration::ZERO),
            Err(JwsError::InvalidSignature)
        );

        let unsigned = format!("{}.{}.", p[0], p[1]);
        assert_eq!(
            verify(&unsigned, &keys, ALL, NOW, Duration::ZERO),
            Err(JwsError::InvalidSignature)
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
        Err(JwsError::InvalidSignature)
    );
}

#[test]
fn algorithms_not_allowed_are_rejected_before_any_key_is_used() {
    let s = signer(RSA_JWK);
    let token = s.sign(&standard()).unwrap();
    assert_eq!(
        verify(&token, &public(&s), &["ES256"], NOW, Duration::ZERO),
        Err(JwsError::AlgorithmNotAllowed("RS256".into()))
    );
    let none: &[&str] = &[];
    assert_eq!(
        verify(&token, &public(&s), none, NOW, Duration::ZERO),
        Err(JwsError::AlgorithmNotAllowed("RS256".into()))
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
            Err(JwsError::UnsupportedAlgorithm(alg))
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
            Err(JwsError::UnsupportedAlgorithm("HS256".into()))
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
        Err(JwsError::UnknownKey {
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
        Err(JwsError::Expired)
    );
    assert_eq!(ok(&t, NOW + Duration::hours(1), 0), Err(JwsError::Expired));
    assert!(ok(&t, NOW + Duration::seconds(64), 5).is_ok());
    assert_eq!(
        ok(&t, NOW + Duration::seconds(65), 5),
        Err(JwsError::Expired)
    );

    let t = sign(json!({"nbf": now + 30}));
    assert_eq!(ok(&t, NOW, 0), Err(JwsError::NotYetValid));
    assert!(ok(&t, NOW + Duration::seconds(30), 0).is_ok());
    assert!(ok(&t, NOW, 30).is_ok());

    let t = sign(json!({"iat": now + 30}));
    assert_eq!(ok(&t, NOW, 0), Err(JwsError::IssuedInFuture));
    assert!(ok(&t, NOW, 30).is_ok());

    let t = sign(json!({"exp": (now + 1) as f64 + 0.5}));
    assert!(ok(&t, NOW + Duration::seconds(1), 0).is_ok());
    assert_eq!(
        ok(&t, NOW + Duration::milliseconds(1500), 0),
        Err(JwsError::Expired)
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
                Err(JwsError::InvalidClaim { .. })
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
        Err(JwsError::UnknownKey {
            kid: Some("rotated".into())
        })
    );
    // An empty set knows no key at all.
    assert_eq!(
        verify(&token, &PublicKeySet::default(), ALL, NOW, Duration::ZERO),
        Err(JwsError::UnknownKey {
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
    let keys = PublicKeySet::merged([&public(&other), &public(&signer(EC_JWK)), &public(&ours)]);
    let token = ed25519_token(&ed25519_seed(), &json!({"alg": "EdDSA"}), &standard());
    assert!(verify(&token, &keys, ALL, NOW, Duration::ZERO).is_ok());
    // Only the other Ed25519 key: no key verifies.
    assert_eq!(
        verify(&token, &public(&other), ALL, NOW, Duration::ZERO),
        Err(JwsError::InvalidSignature)
    );
    // No Ed25519 key at all.
    assert_eq!(
        verify(&token, &public(&signer(EC_JWK)), ALL, NOW, Duration::ZERO),
        Err(JwsError::UnknownKey { kid: None })
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
            matches!(err, JwsError::Malformed(_) | JwsError::InvalidSignature),
            "{token:?}: {err:?}"
        );
    }
    let huge = format!("{}.{}.{}", p[0], "A".repeat(MAX_TOKEN_LEN), p[2]);
    assert_eq!(
        verify(&huge, &keys, ALL, NOW, Duration::ZERO),
        Err(JwsError::TooLong)
    );

    // A payload that is not a JSON object, correctly signed.
    let s = signer(EC_JWK);
    let input = format!("{}.{}", p[0], URL_SAFE_NO_PAD.encode("[1,2,3]"));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &s.key.key, s.key.alg.jwt()).unwrap();
    let array = format!("{input}.{sig}");
    assert!(matches!(
        verify(&array, &keys, ALL, NOW, Duration::ZERO),
        Err(JwsError::Malformed(_))
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
                Err(JwsError::Jwks(_))
            ),
            "{bad}"
        );
    }
    let err =
        PublicKeySet::from_jwks(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).unwrap_err();
    assert!(err.to_string().contains("unsupported kty \"oct\""), "{err}");
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
    // Computed here by hand from the canonical form of RFC 7638 §3.
    let canonical =
        r#"{"crv":"Ed25519","kty":"OKP","x":"ZFvMQXX06Ub6Spza4ie5l0CiVBxjI2L2RG32nxSLNIo"}"#;
    let expected = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()));
    assert_eq!(ed.kid(), expected);
    assert_eq!(ed.kid().len(), 43);
}

fn public_jwk_of(doc: Value) -> jsonwebtoken::jwk::Jwk {
    serde_json::from_value(doc).unwrap()
}

#[test]
fn thumbprint_matches_rfc_7638() {
    // RFC 7638 §3.1.
    let rsa = public_jwk_of(json!({
        "e": "AQAB",
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "alg": "RS256",
        "kid": "2011-04-29",
    }));
    assert_eq!(
        jwk::thumbprint(&rsa).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // RFC 8037 appendix A.3.
    let ed = public_jwk_of(json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }));
    assert_eq!(
        jwk::thumbprint(&ed).unwrap(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn signer_needs_a_private_key() {
    let public_only = signer(EC_JWK).public_jwks().to_string();
    assert!(matches!(
        Signer::from_private_jwks(public_only.as_bytes()),
        Err(JwsError::Jwks(_))
    ));
    assert!(matches!(
        Signer::from_private_jwks(b"nope"),
        Err(JwsError::Jwks(_))
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
        Err(JwsError::Jwks(_))
    ));
}

#[test]
fn jku_x5u_and_jwk_headers_are_never_followed() {
    let ours = public(&signer(EC_JWK));
    // The attacker signs with their own key and points at it every way a header can.
    let attacker = Signer::from_private_jwks(
        generate_private_jwks(Algorithm::Es256, "attacker")
            .unwrap()
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let embedded = attacker.public_jwk();
    let payload = enc(&Value::Object(standard()));
    let forge = |header: Value| {
        let input = format!("{}.{payload}", enc(&header));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &attacker.key.key, attacker.key.alg.jwt())
                .unwrap();
        format!("{input}.{sig}")
    };
    let pointers = json!({
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "jwk": embedded,
    });
    for (name, value) in pointers.as_object().unwrap() {
        // Without kid every key of ours is tried, and none verifies.
        let token = forge(json!({"alg": "ES256", name.as_str(): value}));
        assert_eq!(
            verify(&token, &ours, ALL, NOW, Duration::ZERO),
            Err(JwsError::InvalidSignature),
            "{name}"
        );
        // Naming the attacker's kid finds no key at all.
        let token = forge(json!({"alg": "ES256", "kid": "attacker", name.as_str(): value}));
        assert_eq!(
            verify(&token, &ours, ALL, NOW, Duration::ZERO),
            Err(JwsError::UnknownKey {
                kid: Some("attacker".into())
            }),
            "{name}"
        );
        // Naming our kid still uses only our key.
        let token = forge(json!({"alg": "ES256", "kid": "ec-key-1", name.as_str(): value}));
        assert_eq!(
            verify(&token, &ours, ALL, NOW, Duration::ZERO),
            Err(JwsError::InvalidSignature),
            "{name}"
        );
    }
    // The same token without pointers verifies against the attacker's own set: the forgeries above failed only
    // because their keys were not used.
    let token = forge(json!({"alg": "ES256", "kid": "attacker"}));
    assert!(verify(
        &token,
        &attacker.public_key_set().unwrap(),
        ALL,
        NOW,
        Duration::ZERO
    )
    .is_ok());
}

#[test]
fn a_crit_header_is_refused_even_when_correctly_signed() {
    let s = signer(EC_JWK);
    let keys = public(&s);
    let payload = enc(&Value::Object(standard()));
    for crit in [json!(["exp"]), json!([]), json!("b64")] {
        let header = enc(&json!({"alg": "ES256", "kid": "ec-key-1", "crit": crit, "exp": 1}));
        let input = format!("{header}.{payload}");
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &s.key.key, s.key.alg.jwt()).unwrap();
        let token = format!("{input}.{sig}");
        match verify(&token, &keys, ALL, NOW, Duration::ZERO) {
            Err(JwsError::Malformed(why)) => assert!(why.contains("crit"), "{why}"),
            other => panic!("{crit}: {other:?}"),
        }
        assert!(decode_header(&token).is_err());
    }
}

#[test]
fn times_follow_the_injected_clock_not_the_system_clock() {
    let s = signer(ED25519_JWK);
    let keys = public(&s);
    let system = crate::Clock::now(&crate::SystemClock);
    // Expired long ago by the system clock, valid at the injected time.
    let past = system - Duration::days(3650);
    let mut c = standard();
    c.insert("exp".into(), json!(past.unix_timestamp() + 60));
    c.insert("nbf".into(), json!(past.unix_timestamp()));
    c.insert("iat".into(), json!(past.unix_timestamp()));
    let token = s.sign(&c).unwrap();
    assert!(verify(&token, &keys, ALL, past, Duration::ZERO).is_ok());
    assert_eq!(
        verify(&token, &keys, ALL, system, Duration::ZERO),
        Err(JwsError::Expired)
    );
    // Valid by the system clock, not yet valid at an injected earlier time.
    let mut c = standard();
    c.insert("exp".into(), json!(system.unix_timestamp() + 3600));
    c.insert("nbf".into(), json!(system.unix_timestamp()));
    c.remove("iat");
    let token = s.sign(&c).unwrap();
    assert!(verify(&token, &keys, ALL, system, Duration::ZERO).is_ok());
    assert_eq!(
        verify(&token, &keys, ALL, past, Duration::ZERO),
        Err(JwsError::NotYetValid)
    );
}

#[test]
fn rsa_keys_too_large_to_verify_are_skipped() {
    let ec = signer(EC_JWK).public_jwk();
    // 5,120 bits: jsonwebtoken's RSA verifier stops at 4,096.
    let huge = json!({"kty": "RSA", "kid": "huge", "n": URL_SAFE_NO_PAD.encode([0xffu8; 640]), "e": "AQAB"});
    let set = PublicKeySet::from_jwks(json!({"keys": [huge, ec]}).to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert!(!set.has_key(Some("huge"), Algorithm::Rs256));
    let err = PublicKeySet::from_jwks(json!({"keys": [huge]}).to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("5120 bits"), "{err}");
}
