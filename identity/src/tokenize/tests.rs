//! Tests for the session tokenizer. Keys were generated once with Python's `cryptography`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use super::{TemplateConfig, TokenizeError, Tokenizer};

const RSA_JWK: &str = r#"{"kty": "RSA", "kid": "rsa-key-1", "alg": "RS256", "use": "sig", "n": "rUjhC3r9pR4GtxXmZmATvoVAKo2_mQCUiZjGRqcMhyGND9fQ7iyE5-IwtYNIujJYk8VQty8qUjshtoeX6yx_wcA7UBVpOlmesgap3JWXTnD6BpFuPBs-30v9oeAXiThYuK8hh-QnCAnOX8ktyTbwUq8slWa9ihuqyZEj_O3FuF6070WqRibSxEHfREatAIg53n4Hw52gjhU8zU9JKu-nI4xH_PDUHfE6hv3eENDz6jlj1KhBfUHohMuWN19Lhd-7565491hFKeNsjDR_iHmXGuVzjhxMaO1LLVJv3xIZdPm1WFY0hdySe6zeiOQ7mZpFHd7y2kPNn_ya6Y1DadOj1w", "e": "AQAB", "d": "AvjRA0VkvEQ7kUBK506WiBn488Him1krMwDvxZ5v1JF6vd7RsoQI84EpnLNXt_nNExu7OqkQbMCe32aL8Hie6E_HtKPpXhrTYfJDT4kxQyMk5p_v6A__kAzZmMEjJjNVMjWuuYnsMXMZmwL0ShMrI__lH9rXPVskHrjiiR_62CKgdenX7aX_XsVSlI_sd5oVlaa9Gn7SnejT_jyDj3zYJciiD3Dd0awkl9QD1HRFHWp_fB4i5XkdIwugs9QB2JzxISgG-BiXJNcffNsFfyiSO2s6ODO_m5zYqHUWFMlfq5sUYCrX25GobSWDkg28OChwagb1LlkGehAJ6EzVAAAg4Q", "p": "1tvb4-YaM3GMe2A8TQpzsLQpzH5wEoQR4PmLB06vp0BB9sF9iE6A8xCganoBUnj28HR6RHynA1QET4hOkJYUSmJZnjsS1TdFSRt3DRFbOLGjd57EBHt19B5urO-Ipyf8MUlpaw7YiL6Fy4mqKhvjqUNVvPY1X4VkwHIcNR9XPiM", "q": "zncaGHvaSJmcfA8zIwe4QFfOl-oXb87sJkoV10TtLcB-SBrlzJk9qAnQUcYpdyakoxCM9c2VvuQT3DeO-3qML3LY7O2ROd74QYJjoVesLE6BYhm3ElJ8vp5ve3LZg2MjyI6luIRWCDBpao32Il6Wl6XW1Bzy6U0JvTyC-vg8bL0", "dp": "zJ3zKnW_rBBONkzvAHucs8LQL8SV3LxT_ooIQjxIgiJq76FTeJUyrsi9zMlGKxGyMkrrCgAgWcYQmOF52K5kwnYpXMxrYgzR-g6i8Rn_Yt2hjNDxYkdljMfSpPU1keM9hH6iW2d3BbtT1gPTv2hyBoduxpc_OynhSnkhreGcBzs", "dq": "pG7g3q0NPRLyOS_V10lXqg8En6K1hbu0Ag6w9GCV0QFk0cJyUI-fNkySl_4NmjKxnpkY2s8gOwbk9lddTdXc_hEmyROvvPpil7Hj7WSo4CSqENpQHoyJgzslqJjguS5lGl7Zh2oGJsF_w3hKljblEuPmg8qGf952KjueSYkYfrU", "qi": "gHMKHiuiO05J8RWBpE5hHSe_84x622Wg36bu3YLTF5a1FdlfBUFqdXdPfKn_uV3Bq1iJOBY198pAJKT_jx_Cv-iJzFDP_7bs0k6MjOHfjVJ2k-jpToRvwiuG2xL_iWuXWTNiFwubY3C4IZLxgCoiNyiVNr0sOQqa4lZzUsbHlwM"}"#;
const EC_JWK: &str = r#"{"kty": "EC", "kid": "ec-key-1", "crv": "P-256", "x": "0zm5fD9vcq5Zxq03vWkHn-uEeIWBwhc-Uf_jtELp1TI", "y": "xkkw0lpWg0dfcuxqkA1hAAVETDdW48VNGSCqX-OJZHc", "d": "CUHSMI_91zs8PrbwMwWw9gMU67N1in6pLEH_De-sNAM"}"#;
const ED25519_JWK: &str = r#"{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": "ZFvMQXX06Ub6Spza4ie5l0CiVBxjI2L2RG32nxSLNIo", "d": "Yss_1-yGllBp_w6LhvLaody5F9OizBfgdGcuCYzqKU8"}"#;

const NOW: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);
const ISSUER: &str = "https://auth.example.com/";

fn jwk(src: &str) -> Value {
    serde_json::from_str(src).unwrap()
}

fn base64_url(doc: &Value) -> String {
    format!("base64://{}", STANDARD.encode(doc.to_string()))
}

fn jwks_url(keys: Vec<Value>) -> String {
    base64_url(&json!({ "keys": keys }))
}

fn config(jwks_url: String) -> TemplateConfig {
    TemplateConfig {
        jwks_url,
        claims_mapper_url: None,
        ttl: Duration::from_secs(60),
        subject_source: None,
    }
}

fn load_one(name: &str, config: TemplateConfig) -> Result<Tokenizer, TokenizeError> {
    let mut templates = BTreeMap::new();
    templates.insert(name.to_owned(), config);
    Tokenizer::load(&templates)
}

fn session() -> Value {
    json!({
        "id": "6d6a3a1e-4c1f-4a53-9b1e-1f0c2a4c0b11",
        "active": true,
        "expires_at": "2024-05-02T12:00:00Z",
        "authenticator_assurance_level": "aal1",
        "identity": {
            "id": "0a9f3b7c-2d4e-4f60-8a1b-3c5d7e9f1a2b",
            "schema_id": "default",
            "external_id": "ext-42",
            "traits": { "email": "alice@example.com", "name": { "first": "Alice" } },
            "verifiable_addresses": [
                { "value": "alice@example.com", "verified": true }
            ],
            "metadata_public": null
        }
    })
}

const MAPPER: &str = r#"{
  "claims": {
    "email": "{{ session.identity.traits.email }}",
    "name": "{{session.identity.traits.name}}",
    "verified": "{{ session.identity.verifiable_addresses.0.verified }}",
    "schema": { "id": "{{ session.identity.schema_id }}", "list": ["{{ session.authenticator_assurance_level }}", 1] },
    "missing": "{{ session.identity.traits.phone }}",
    "beyond_null": "{{ session.identity.metadata_public.plan }}",
    "copied_iss": "{{ claims.iss }}",
    "literal": "not {{ a placeholder",
    "aud": ["my-api"]
  }
}"#;

struct Decoded {
    header: Value,
    claims: Value,
    signing_input: String,
    signature: Vec<u8>,
    raw_claims: String,
}

fn decode(token: &str) -> Decoded {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        parts.len(),
        3,
        "a JWS compact serialization has three parts: {token}"
    );
    let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    Decoded {
        header: serde_json::from_slice(&header).unwrap(),
        claims: serde_json::from_slice(&claims).unwrap(),
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        raw_claims: String::from_utf8(claims).unwrap(),
    }
}

fn b64_field(key: &Value, name: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap()
}

/// Verifies an RS256 signature with only the public part (n, e) of the JWK.
fn verify_rs256(key: &Value, decoded: &Decoded) {
    use rsa::signature::Verifier as _;
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&b64_field(key, "n")),
        rsa::BigUint::from_bytes_be(&b64_field(key, "e")),
    )
    .unwrap();
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
    let signature = rsa::pkcs1v15::Signature::try_from(decoded.signature.as_slice()).unwrap();
    verifier
        .verify(decoded.signing_input.as_bytes(), &signature)
        .unwrap();
}

/// Verifies an ES256 signature (raw r || s) with only the public part (x, y) of the JWK.
fn verify_es256(key: &Value, decoded: &Decoded) {
    use p256::ecdsa::signature::Verifier as _;
    assert_eq!(
        decoded.signature.len(),
        64,
        "ES256 signatures are r || s, not DER"
    );
    // Uncompressed SEC1 point: 0x04 || x || y.
    let mut sec1 = vec![4u8];
    sec1.extend(b64_field(key, "x"));
    sec1.extend(b64_field(key, "y"));
    let verifier = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&decoded.signature).unwrap();
    verifier
        .verify(decoded.signing_input.as_bytes(), &signature)
        .unwrap();
}

/// Verifies an EdDSA signature with only the public part (x) of the JWK.
fn verify_eddsa(key: &Value, decoded: &Decoded) {
    assert!(eddsa_valid(key, decoded), "EdDSA signature does not verify");
}

fn eddsa_valid(key: &Value, decoded: &Decoded) -> bool {
    let x: [u8; 32] = b64_field(key, "x").try_into().unwrap();
    let verifier = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let signature: [u8; 64] = decoded.signature.clone().try_into().unwrap();
    verifier
        .verify_strict(
            decoded.signing_input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .is_ok()
}

fn assert_standard_claims(claims: &Value, ttl: i64) {
    let session = session();
    assert_eq!(claims["sub"], session["identity"]["id"]);
    assert_eq!(claims["sid"], session["id"]);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["iat"], NOW.unix_timestamp());
    assert_eq!(claims["nbf"], NOW.unix_timestamp());
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        claims["iat"].as_i64().unwrap() + ttl
    );
    let jti = uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).unwrap();
    assert_eq!(jti.get_version_num(), 4);
}

fn assert_mapper_claims(claims: &Value) {
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], json!({ "first": "Alice" }));
    assert_eq!(claims["verified"], true);
    assert_eq!(
        claims["schema"],
        json!({ "id": "default", "list": ["aal1", 1] })
    );
    assert_eq!(claims["missing"], Value::Null);
    assert!(claims.as_object().unwrap().contains_key("missing"));
    assert_eq!(claims["beyond_null"], Value::Null);
    assert_eq!(claims["copied_iss"], ISSUER);
    assert_eq!(claims["literal"], "not {{ a placeholder");
    assert_eq!(claims["aud"], json!(["my-api"]));
}

fn mapper_url(mapper: &str) -> Option<String> {
    Some(format!("base64://{}", STANDARD.encode(mapper)))
}

fn config_err(result: Result<Tokenizer, TokenizeError>, name: &str) -> String {
    match result {
        Err(TokenizeError::Config { template, reason }) => {
            assert_eq!(template, name);
            let message = TokenizeError::Config {
                template: template.clone(),
                reason: reason.clone(),
            }
            .to_string();
            assert!(message.contains(name), "{message}");
            reason
        }
        Err(other) => panic!("expected a Config error, got {other:?}"),
        Ok(tokenizer) => panic!("expected a Config error, got {tokenizer:?}"),
    }
}

#[test]
fn rs256_token_verifies_and_carries_claims() {
    let key = jwk(RSA_JWK);
    let mut cfg = config(jwks_url(vec![key.clone()]));
    cfg.claims_mapper_url = mapper_url(MAPPER);
    cfg.ttl = Duration::from_secs(600);
    let tokenizer = load_one("api", cfg).unwrap();
    assert!(!tokenizer.is_empty());
    assert!(tokenizer.contains("api"));

    let token = tokenizer.tokenize("api", &session(), ISSUER, NOW).unwrap();
    let decoded = decode(&token);
    assert_eq!(
        decoded.header,
        json!({ "alg": "RS256", "kid": "rsa-key-1", "typ": "JWT" })
    );
    verify_rs256(&key, &decoded);
    assert_standard_claims(&decoded.claims, 600);
    assert_mapper_claims(&decoded.claims);
}

#[test]
fn es256_token_verifies_and_carries_claims() {
    // The EC key has no "alg": ES256 follows from kty/crv.
    let key = jwk(EC_JWK);
    let mut cfg = config(jwks_url(vec![key.clone()]));
    cfg.claims_mapper_url = mapper_url(MAPPER);
    let tokenizer = load_one("ec", cfg).unwrap();

    let token = tokenizer.tokenize("ec", &session(), ISSUER, NOW).unwrap();
    let decoded = decode(&token);
    assert_eq!(
        decoded.header,
        json!({ "alg": "ES256", "kid": "ec-key-1", "typ": "JWT" })
    );
    verify_es256(&key, &decoded);
    assert_standard_claims(&decoded.claims, 60);
    assert_mapper_claims(&decoded.claims);
}

#[test]
fn eddsa_token_verifies_and_has_no_kid_when_the_key_has_none() {
    let key = jwk(ED25519_JWK);
    let mut cfg = config(jwks_url(vec![key.clone()]));
    cfg.claims_mapper_url = mapper_url(MAPPER);
    cfg.ttl = Duration::from_secs(3600);
    let tokenizer = load_one("ed", cfg).unwrap();

    let token = tokenizer.tokenize("ed", &session(), ISSUER, NOW).unwrap();
    let decoded = decode(&token);
    assert_eq!(decoded.header, json!({ "alg": "EdDSA", "typ": "JWT" }));
    verify_eddsa(&key, &decoded);
    assert_standard_claims(&decoded.claims, 3600);
    assert_mapper_claims(&decoded.claims);
}

#[test]
fn tampered_token_does_not_verify() {
    let key = jwk(ED25519_JWK);
    let tokenizer = load_one("ed", config(jwks_url(vec![key.clone()]))).unwrap();
    let token = tokenizer.tokenize("ed", &session(), ISSUER, NOW).unwrap();
    let mut decoded = decode(&token);
    assert!(eddsa_valid(&key, &decoded));
    decoded.signing_input.push('x');
    assert!(!eddsa_valid(&key, &decoded));
}

#[test]
fn without_mapper_only_the_standard_claims_are_set() {
    let tokenizer = load_one("plain", config(jwks_url(vec![jwk(EC_JWK)]))).unwrap();
    let token = tokenizer
        .tokenize("plain", &session(), ISSUER, NOW)
        .unwrap();
    let decoded = decode(&token);
    assert_standard_claims(&decoded.claims, 60);
    let mut keys: Vec<&String> = decoded.claims.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["exp", "iat", "iss", "jti", "nbf", "sid", "sub"]);
    // Keys are serialized in sorted order, as Go's encoding/json does.
    assert!(
        decoded.raw_claims.starts_with(r#"{"exp":"#),
        "{}",
        decoded.raw_claims
    );
}

#[test]
fn every_token_has_a_fresh_jti() {
    let tokenizer = load_one("t", config(jwks_url(vec![jwk(EC_JWK)]))).unwrap();
    let a = decode(&tokenizer.tokenize("t", &session(), ISSUER, NOW).unwrap());
    let b = decode(&tokenizer.tokenize("t", &session(), ISSUER, NOW).unwrap());
    assert_ne!(a.claims["jti"], b.claims["jti"]);
}

#[test]
fn exp_is_now_plus_ttl_truncated_to_seconds() {
    let tokenizer = load_one(
        "t",
        TemplateConfig {
            ttl: Duration::from_millis(1500),
            ..config(jwks_url(vec![jwk(EC_JWK)]))
        },
    )
    .unwrap();
    let now = datetime!(2024-05-01 12:00:00.7 UTC);
    let claims = decode(&tokenizer.tokenize("t", &session(), ISSUER, now).unwrap()).claims;
    assert_eq!(claims["iat"], NOW.unix_timestamp());
    // 12:00:00.7 + 1.5s = 12:00:02.2
    assert_eq!(claims["exp"], NOW.unix_timestamp() + 2);
}

#[test]
fn subject_source_external_id() {
    let mut cfg = config(jwks_url(vec![jwk(ED25519_JWK)]));
    cfg.subject_source = Some("external_id".to_owned());
    let tokenizer = load_one("ext", cfg).unwrap();
    let claims = decode(&tokenizer.tokenize("ext", &session(), ISSUER, NOW).unwrap()).claims;
    assert_eq!(claims["sub"], "ext-42");

    let mut without = session();
    without["identity"]
        .as_object_mut()
        .unwrap()
        .remove("external_id");
    let err = tokenizer
        .tokenize("ext", &without, ISSUER, NOW)
        .unwrap_err();
    assert!(
        matches!(err, TokenizeError::Mapper(ref m) if m.contains("external ID")),
        "{err:?}"
    );

    let mut empty = session();
    empty["identity"]["external_id"] = json!("");
    assert!(matches!(
        tokenizer.tokenize("ext", &empty, ISSUER, NOW),
        Err(TokenizeError::Mapper(_))
    ));
}

#[test]
fn subject_source_id_explicit_and_unknown() {
    let mut cfg = config(jwks_url(vec![jwk(ED25519_JWK)]));
    cfg.subject_source = Some("id".to_owned());
    let tokenizer = load_one("id", cfg.clone()).unwrap();
    let claims = decode(&tokenizer.tokenize("id", &session(), ISSUER, NOW).unwrap()).claims;
    assert_eq!(claims["sub"], session()["identity"]["id"]);

    cfg.subject_source = Some("email".to_owned());
    let reason = config_err(load_one("bad-subject", cfg), "bad-subject");
    assert!(reason.contains("subject_source"), "{reason}");
}

#[test]
fn mapper_overrides_default_claims_but_never_sub() {
    let mapper = r#"{"claims": {
        "sub": "attacker",
        "iss": "{{ session.identity.traits.email }}",
        "jti": "fixed",
        "exp": 1,
        "extra": "{{ claims.sub }}"
    }}"#;
    let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
    cfg.claims_mapper_url = mapper_url(mapper);
    let tokenizer = load_one("m", cfg).unwrap();
    let claims = decode(&tokenizer.tokenize("m", &session(), ISSUER, NOW).unwrap()).claims;
    assert_eq!(claims["sub"], session()["identity"]["id"]);
    assert_eq!(claims["iss"], "alice@example.com");
    assert_eq!(claims["jti"], "fixed");
    assert_eq!(claims["exp"], 1);
    assert_eq!(claims["extra"], session()["identity"]["id"]);
    assert_eq!(claims["sid"], session()["id"]);
}

#[test]
fn mapper_runtime_errors_are_mapper_errors() {
    for (placeholder, needle) in [
        ("{{ session.identity.traits.email.domain }}", "string"),
        ("{{ session.active.x }}", "boolean"),
        ("{{ session.identity.verifiable_addresses.first }}", "array"),
    ] {
        let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
        cfg.claims_mapper_url = mapper_url(&json!({ "claims": { "x": placeholder } }).to_string());
        let tokenizer = load_one("m", cfg).unwrap();
        match tokenizer.tokenize("m", &session(), ISSUER, NOW) {
            Err(TokenizeError::Mapper(message)) => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("expected a Mapper error for {placeholder}, got {other:?}"),
        }
    }
}

#[test]
fn invalid_mappers_are_config_errors() {
    for (mapper, needle) in [
        (
            "local s = std.extVar('session'); { claims: {} }",
            "not valid JSON",
        ),
        (r#"["claims"]"#, "claims"),
        (r#"{"claims": "x"}"#, "claims"),
        (r#"{"other": {}}"#, "claims"),
        (r#"{"claims": {"a": "{{ identity.id }}"}}"#, "claims.a"),
        (r#"{"claims": {"a": ["{{ session..id }}"]}}"#, "claims.a[0]"),
    ] {
        let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
        cfg.claims_mapper_url = mapper_url(mapper);
        let reason = config_err(load_one("mapper", cfg), "mapper");
        assert!(reason.contains("claims_mapper_url"), "{reason}");
        assert!(reason.contains(needle), "{mapper}: {reason}");
    }
    let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
    cfg.claims_mapper_url = Some("file:///nonexistent/portcullis/mapper.json".to_owned());
    let reason = config_err(load_one("mapper", cfg), "mapper");
    assert!(reason.contains("unable to read"), "{reason}");
}

#[test]
fn empty_mapper_url_means_no_mapper() {
    let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
    cfg.claims_mapper_url = Some(String::new());
    let tokenizer = load_one("t", cfg).unwrap();
    let claims = decode(&tokenizer.tokenize("t", &session(), ISSUER, NOW).unwrap()).claims;
    assert_eq!(claims.as_object().unwrap().len(), 7);
}

#[test]
fn unknown_template_is_an_error() {
    let tokenizer = load_one("known", config(jwks_url(vec![jwk(EC_JWK)]))).unwrap();
    let err = tokenizer
        .tokenize("unknown", &session(), ISSUER, NOW)
        .unwrap_err();
    assert!(matches!(err, TokenizeError::UnknownTemplate(ref name) if name == "unknown"));
    assert!(err.to_string().contains("unknown"));

    let empty = Tokenizer::load(&BTreeMap::new()).unwrap();
    assert!(empty.is_empty());
    assert!(matches!(
        empty.tokenize("any", &session(), ISSUER, NOW),
        Err(TokenizeError::UnknownTemplate(_))
    ));
    assert!(Tokenizer::default().is_empty());
}

#[test]
fn session_without_ids_is_an_error() {
    let tokenizer = load_one("t", config(jwks_url(vec![jwk(EC_JWK)]))).unwrap();
    let mut no_sid = session();
    no_sid.as_object_mut().unwrap().remove("id");
    assert!(matches!(
        tokenizer.tokenize("t", &no_sid, ISSUER, NOW),
        Err(TokenizeError::Mapper(_))
    ));
    let mut no_identity = session();
    no_identity.as_object_mut().unwrap().remove("identity");
    assert!(matches!(
        tokenizer.tokenize("t", &no_identity, ISSUER, NOW),
        Err(TokenizeError::Mapper(_))
    ));
    assert!(matches!(
        tokenizer.tokenize("t", &json!("not a session"), ISSUER, NOW),
        Err(TokenizeError::Mapper(_))
    ));
}

#[test]
fn first_usable_private_key_is_selected() {
    let mut public_rsa = jwk(RSA_JWK);
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        public_rsa.as_object_mut().unwrap().remove(private);
    }
    let ec = jwk(EC_JWK);
    let keys = vec![
        public_rsa,
        json!({ "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" }),
        json!({ "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "d": "AA" }),
        ec.clone(),
        jwk(RSA_JWK),
    ];
    let tokenizer = load_one("multi", config(jwks_url(keys))).unwrap();
    let decoded = decode(
        &tokenizer
            .tokenize("multi", &session(), ISSUER, NOW)
            .unwrap(),
    );
    assert_eq!(decoded.header["alg"], "ES256");
    assert_eq!(decoded.header["kid"], "ec-key-1");
    verify_es256(&ec, &decoded);
}

#[test]
fn a_single_jwk_is_accepted_as_the_set() {
    let key = jwk(ED25519_JWK);
    let tokenizer = load_one("single", config(base64_url(&key))).unwrap();
    let decoded = decode(
        &tokenizer
            .tokenize("single", &session(), ISSUER, NOW)
            .unwrap(),
    );
    verify_eddsa(&key, &decoded);
}

#[test]
fn rsa_key_without_primes_is_recovered() {
    let mut key = jwk(RSA_JWK);
    for crt in ["p", "q", "dp", "dq", "qi"] {
        key.as_object_mut().unwrap().remove(crt);
    }
    let tokenizer = load_one("rsa", config(jwks_url(vec![key.clone()]))).unwrap();
    let decoded = decode(&tokenizer.tokenize("rsa", &session(), ISSUER, NOW).unwrap());
    verify_rs256(&key, &decoded);
}

#[test]
fn jwks_and_mapper_load_from_files() {
    let dir = std::env::temp_dir().join(format!("portcullis-tokenize-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, json!({ "keys": [jwk(RSA_JWK)] }).to_string()).unwrap();
    let mapper_path = dir.join("mapper.json");
    std::fs::write(&mapper_path, MAPPER).unwrap();

    // Absolute: file:///abs/path.
    let mut cfg = config(format!("file://{}", jwks_path.display()));
    cfg.claims_mapper_url = Some(format!("file://{}", mapper_path.display()));
    let tokenizer = load_one("files", cfg).unwrap();
    let decoded = decode(
        &tokenizer
            .tokenize("files", &session(), ISSUER, NOW)
            .unwrap(),
    );
    verify_rs256(&jwk(RSA_JWK), &decoded);
    assert_mapper_claims(&decoded.claims);

    // Relative: file://relative/path, resolved against the working directory.
    let cwd = std::env::current_dir().unwrap();
    let relative = pathdiff(&jwks_path, &cwd);
    assert!(!relative.starts_with('/'), "{relative}");
    let tokenizer = load_one("relative", config(format!("file://{relative}"))).unwrap();
    let decoded = decode(
        &tokenizer
            .tokenize("relative", &session(), ISSUER, NOW)
            .unwrap(),
    );
    verify_rs256(&jwk(RSA_JWK), &decoded);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `path` relative to `base`, both absolute.
fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> String {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); base.len() - common];
    parts.extend(
        path[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[test]
fn bad_jwks_documents_are_config_errors_naming_the_template() {
    let rsa = jwk(RSA_JWK);
    let ec = jwk(EC_JWK);
    let ed = jwk(ED25519_JWK);
    let with = |base: &Value, field: &str, value: Value| {
        let mut key = base.clone();
        key[field] = value;
        key
    };
    let without = |base: &Value, fields: &[&str]| {
        let mut key = base.clone();
        for field in fields {
            key.as_object_mut().unwrap().remove(*field);
        }
        key
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no private key",
            jwks_url(vec![
                without(&rsa, &["d", "p", "q", "dp", "dq", "qi"]),
                without(&ec, &["d"]),
            ]),
            "no private key material",
        ),
        (
            "unsupported kty",
            jwks_url(vec![json!({ "kty": "oct", "k": "c2VjcmV0" })]),
            "unsupported kty \"oct\"",
        ),
        (
            "unsupported curve",
            jwks_url(vec![with(&ec, "crv", json!("P-384"))]),
            "unsupported curve",
        ),
        (
            "unsupported okp curve",
            jwks_url(vec![with(&ed, "crv", json!("X25519"))]),
            "unsupported curve",
        ),
        (
            "missing kty",
            jwks_url(vec![json!({ "d": "AA" })]),
            "no \"kty\"",
        ),
        ("empty set", jwks_url(vec![]), "the set is empty"),
        (
            "malformed base64 d",
            jwks_url(vec![with(&ec, "d", json!("!!not base64!!"))]),
            "\"d\" is not valid base64url",
        ),
        (
            "malformed base64 n",
            jwks_url(vec![with(&rsa, "n", json!("***"))]),
            "\"n\" is not valid base64url",
        ),
        (
            "non-string d",
            jwks_url(vec![with(&ed, "d", json!(42))]),
            "\"d\" is not a string",
        ),
        (
            "rsa alg mismatch",
            jwks_url(vec![with(&rsa, "alg", json!("ES256"))]),
            "\"alg\" is \"ES256\"",
        ),
        (
            "rsa unsupported alg",
            jwks_url(vec![with(&rsa, "alg", json!("PS256"))]),
            "\"alg\" is \"PS256\"",
        ),
        (
            "ec alg mismatch",
            jwks_url(vec![with(&ec, "alg", json!("RS256"))]),
            "\"alg\" is \"RS256\"",
        ),
        (
            "ed alg mismatch",
            jwks_url(vec![with(&ed, "alg", json!("ES256"))]),
            "\"alg\" is \"ES256\"",
        ),
        (
            "alg not a string",
            jwks_url(vec![with(&ed, "alg", json!(1))]),
            "\"alg\" is not a string",
        ),
        (
            "kid not a string",
            jwks_url(vec![with(&ed, "kid", json!(["a"]))]),
            "\"kid\" is not a string",
        ),
        (
            "ec public mismatch",
            jwks_url(vec![with(&ec, "x", ed["x"].clone())]),
            "does not match",
        ),
        (
            "ec missing y",
            jwks_url(vec![without(&ec, &["y"])]),
            "\"y\" is missing",
        ),
        (
            "ec short d",
            jwks_url(vec![with(&ec, "d", json!("AAAA"))]),
            "32 bytes",
        ),
        (
            "ec zero d",
            jwks_url(vec![with(
                &ec,
                "d",
                json!(URL_SAFE_NO_PAD.encode([0u8; 32])),
            )]),
            "not a valid P-256 private key",
        ),
        (
            "ed public mismatch",
            jwks_url(vec![with(
                &ed,
                "x",
                json!(URL_SAFE_NO_PAD.encode([7u8; 32])),
            )]),
            "does not match",
        ),
        (
            "ed short d",
            jwks_url(vec![with(&ed, "d", json!("AAAA"))]),
            "32 bytes",
        ),
        (
            "rsa wrong d",
            jwks_url(vec![with(&rsa, "d", rsa["dp"].clone())]),
            "invalid RSA private key",
        ),
        (
            "rsa swapped prime",
            jwks_url(vec![with(&rsa, "p", rsa["dq"].clone())]),
            "invalid RSA private key",
        ),
        (
            "rsa one prime",
            jwks_url(vec![without(&rsa, &["q"])]),
            "only one of the RSA primes",
        ),
        (
            "rsa tiny modulus",
            jwks_url(vec![with(&rsa, "n", json!("AQAB"))]),
            "bits",
        ),
        (
            "rsa zero e",
            jwks_url(vec![with(&rsa, "e", json!("AA"))]),
            "exponents",
        ),
        (
            "rsa missing e",
            jwks_url(vec![without(&rsa, &["e"])]),
            "\"e\" is missing",
        ),
        (
            "key not an object",
            jwks_url(vec![json!("key")]),
            "not a JSON object",
        ),
        (
            "keys not an array",
            base64_url(&json!({ "keys": {} })),
            "not an array",
        ),
        (
            "no keys",
            base64_url(&json!({ "other": [] })),
            "no \"keys\"",
        ),
        (
            "not an object",
            base64_url(&json!([1, 2])),
            "not a JSON object",
        ),
        (
            "not json",
            format!("base64://{}", STANDARD.encode("{ nope")),
            "not valid JSON",
        ),
        ("bad base64 url", "base64://%%%".to_owned(), "valid base64"),
        (
            "missing file",
            "file:///nonexistent/portcullis/jwks.json".to_owned(),
            "unable to read",
        ),
        ("empty file url", "file://".to_owned(), "names no file"),
        (
            "http url",
            "https://example.com/jwks.json".to_owned(),
            "HTTP is not supported",
        ),
        (
            "bare path",
            "/etc/jwks.json".to_owned(),
            "not a supported URL",
        ),
        ("empty url", String::new(), "jwks_url is required"),
    ];
    for (name, url, needle) in cases {
        let reason = config_err(load_one(name, config(url)), name);
        assert!(reason.contains(needle), "{name}: {reason}");
    }
}

#[test]
fn garbage_rsa_numbers_never_panic() {
    let rsa = jwk(RSA_JWK);
    let samples = [
        "AA",
        "AQ",
        "Ag",
        "AQAB",
        "____",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ];
    let fields = ["n", "e", "d", "p", "q"];
    for field in fields {
        for sample in samples
            .iter()
            .map(|s| (*s).to_owned())
            .chain(fields.iter().map(|f| rsa[*f].as_str().unwrap().to_owned()))
        {
            let mut key = rsa.clone();
            key[field] = json!(sample);
            for without_primes in [false, true] {
                let mut key = key.clone();
                if without_primes {
                    key.as_object_mut().unwrap().remove("p");
                    key.as_object_mut().unwrap().remove("q");
                }
                // Loading either succeeds (the value was a no-op) or is a Config error.
                match load_one("rsa", config(jwks_url(vec![key]))) {
                    Ok(tokenizer) => {
                        let token = tokenizer.tokenize("rsa", &session(), ISSUER, NOW).unwrap();
                        verify_rs256(&rsa, &decode(&token));
                    }
                    Err(TokenizeError::Config { template, .. }) => assert_eq!(template, "rsa"),
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
    }
}

#[test]
fn one_bad_template_fails_the_whole_load() {
    let mut templates = BTreeMap::new();
    templates.insert("good".to_owned(), config(jwks_url(vec![jwk(EC_JWK)])));
    templates.insert("broken".to_owned(), config(jwks_url(vec![])));
    let reason = config_err(Tokenizer::load(&templates), "broken");
    assert!(reason.contains("jwks_url"), "{reason}");
}

#[test]
fn ttl_out_of_range_is_a_config_error() {
    let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
    cfg.ttl = Duration::from_secs(u64::MAX);
    let reason = config_err(load_one("ttl", cfg), "ttl");
    assert!(reason.contains("ttl"), "{reason}");

    // In range for Duration but not for the calendar: a signing-time error, not a panic.
    let mut cfg = config(jwks_url(vec![jwk(EC_JWK)]));
    cfg.ttl = Duration::from_secs(i64::MAX as u64 / 2);
    let tokenizer = load_one("far", cfg).unwrap();
    assert!(matches!(
        tokenizer.tokenize("far", &session(), ISSUER, NOW),
        Err(TokenizeError::Sign(_))
    ));
}

#[test]
fn debug_output_has_no_key_material() {
    let ec = jwk(EC_JWK);
    let tokenizer = load_one("dbg", config(jwks_url(vec![ec.clone(), jwk(RSA_JWK)]))).unwrap();
    let debug = format!("{tokenizer:?}");
    assert!(debug.contains("dbg") && debug.contains("ES256"), "{debug}");
    assert!(!debug.contains(ec["d"].as_str().unwrap()));
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<TokenizeError>();
}
