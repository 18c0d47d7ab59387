#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;

const PASSWORD: &str = "correct horse";
const WRONG: &str = "correct horsf";

// Known-good vectors for "correct horse", generated independently with
// Python: pyca/bcrypt 5.0, argon2-cffi (reference C implementation),
// hashlib (OpenSSL) for PBKDF2/scrypt/SHA, glibc crypt(3) and passlib for
// the crypt(3) family. The `$1$`/`$5$`/`$6$` prefixes were rewritten to
// Kratos' `$md5-crypt$`/`$sha256-crypt$`/`$sha512-crypt$`.
const BCRYPT_2B: &str = "$2b$04$Z8abMGss14r0xn/AL7afHuQQbV7wxk8.xGo./g8/R4t.BQcHjhRle";
const BCRYPT_2A: &str = "$2a$05$0BJuoZAKm30VxPTo9v9EuuTSdDAKZCwNAFAlrkcAneByPyKvK8VmS";
const BCRYPT_2Y: &str = "$2y$04$f2fyoMhnjTtQ/53vFkOiJ.Sq2cVB7XjSj8abPhy7VV2uEmhnqZnY6";
const ARGON2ID: &str =
    "$argon2id$v=19$m=1024,t=2,p=2$Jtam6canrZB4HLg0uN9Dcw$P+kOqU+Y+z7cXutw8LUlPQ8PU6uZkX0hLF141o5Ci/M";
const ARGON2I: &str =
    "$argon2i$v=19$m=256,t=1,p=1$uEpEjC9OrYZhCwf4$WEVg+Z/YqmPyT4L5M4M8aE1X0v9FgBdF";
const PBKDF2_SHA1: &str =
    "$pbkdf2-sha1$i=1000,l=32$HOOP/wKQGJG76OEnQ67n6g$yGa94zv6IlBmhS9DvEU7yELRu84AT3Nym1zPnMhp7xo";
// Kratos maps sha224/sha384 to SHA3-224/SHA3-384 (generated with hashlib's sha3_*).
const PBKDF2_SHA224: &str =
    "$pbkdf2-sha224$i=1000,l=32$mQk8U+ICd6ZCqw9MCXGS1w$EGQWwxCXc8wkn7FUTGWtnLruALG4TvtvTE5ZCde+888";
const PBKDF2_SHA256: &str =
    "$pbkdf2-sha256$i=1000,l=32$wlUUBO7LHhL/y+5B1EjbAg$9boJ2+rp3gaUxs6TRwx5sY4o6b4QZw80fybEgPOpK9w";
const PBKDF2_SHA384: &str =
    "$pbkdf2-sha384$i=1000,l=32$3aQfcp6itkFa5zyrEFZNuA$SzEB08kikOQ5JE9cQnXIerZwUIhw4XHrnGh92YWwpbM";
const PBKDF2_SHA512: &str =
    "$pbkdf2-sha512$i=1000,l=32$wqEi+uR3ropWBbiiCdAFrA$hPLSI87qLAcN9OwsR0z4WSwsS6mu5r6KOHMyGz5NQLY";
// Unknown `sha<digits>` falls back to SHA-256 (Kratos behaviour).
const PBKDF2_SHA3_FALLBACK: &str = "$pbkdf2-sha3$i=10,l=20$a2vex1V4BZA$t3WTkgEc1/ptx96V/HhWwCTHSUQ";
const SCRYPT: &str =
    "$scrypt$ln=1024,r=8,p=1$4BrJWDnNP32IM5yMK7wivw==$jDfMyUrK86faK6F6XS7ojdzeLjrzDgnidCJqftAwAVg=";
const SCRYPT_SMALL: &str = "$scrypt$ln=16,r=1,p=2$Jbj4GM6VWUi0Ug==$8R50jGC8TRSFJib6/zG3aCqJC7I=";
const MD5_CRYPT_GLIBC: &str = "$md5-crypt$e9R9rTw6$g2x3ehvdgux0fuUZikl3a.";
const MD5_CRYPT_PASSLIB: &str = "$md5-crypt$TD9GBYaa$oL1wc8PHTKFwGcE0wCDOI0";
const SHA256_CRYPT_GLIBC: &str =
    "$sha256-crypt$oPQf07z0.IFhKKe.$7vlBX87fimXuDxyZ2t62go0TyFOZTtLAyyoq.C6KWo5";
const SHA256_CRYPT_ROUNDS: &str =
    "$sha256-crypt$rounds=1000$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62";
const SHA512_CRYPT_GLIBC: &str = "$sha512-crypt$dqjrRrH8m1YjJ4Y4$rnJlH5pP/6MQ99GX/kND5flTlgnAuM9rvCq6tGU67NLLw/3IFBaLXLe2CfYyEimlb.MYhojC1mZavTVXcEu93/";
const SHA512_CRYPT_ROUNDS: &str = "$sha512-crypt$rounds=2000$tS.DpzNBvjiwVMIJ$kR3XVccxxc38DcVAdUK3nhWCtWm933.GpWAtxNTkOdi9tJbXrHAeHPUbheRG3jgKO.fSGoWauTdVuFIIygJ.R0";
const SSHA: &str = "{SSHA}ft2G78uL84ctYZrcDG0oaM3Dl6z7jJdNITcezQ==";
const SSHA256: &str = "{SSHA256}4iqWCFL7V94YeL182UysP1TAfLpUorhKIHUCG1ajBHNbBGiQ3F4lfhtn0H/JQ7wA";
const SSHA512: &str = "{SSHA512}+peAygO3IH9bs/PTFROZPvv6lAnYsq21PFepl6N8hevXllszwYYgGtITQRlfNcaXLGuovGqfEM9CdyTiPQ5vrDQCUmI=";

const ALL_VECTORS: &[&str] = &[
    BCRYPT_2B,
    BCRYPT_2A,
    BCRYPT_2Y,
    ARGON2ID,
    ARGON2I,
    PBKDF2_SHA1,
    PBKDF2_SHA224,
    PBKDF2_SHA256,
    PBKDF2_SHA384,
    PBKDF2_SHA512,
    PBKDF2_SHA3_FALLBACK,
    SCRYPT,
    SCRYPT_SMALL,
    MD5_CRYPT_GLIBC,
    MD5_CRYPT_PASSLIB,
    SHA256_CRYPT_GLIBC,
    SHA256_CRYPT_ROUNDS,
    SHA512_CRYPT_GLIBC,
    SHA512_CRYPT_ROUNDS,
    SSHA,
    SSHA256,
    SSHA512,
];

fn small_argon2() -> Argon2Params {
    Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
        salt_length: 16,
        key_length: 32,
    }
}

fn argon2_config() -> HasherConfig {
    HasherConfig {
        algorithm: Algorithm::Argon2,
        argon2: small_argon2(),
        bcrypt: BcryptParams { cost: 4 },
    }
}

fn bcrypt_config() -> HasherConfig {
    HasherConfig {
        algorithm: Algorithm::Bcrypt,
        ..argon2_config()
    }
}

fn check_vector(stored: &str) {
    assert_eq!(
        verify_blocking(PASSWORD.as_bytes(), stored),
        Ok(true),
        "correct password must verify against {stored}"
    );
    assert_eq!(
        verify_blocking(WRONG.as_bytes(), stored),
        Ok(false),
        "wrong password must not verify against {stored}"
    );
    assert_eq!(validate_format(stored), Ok(()), "{stored}");
}

/// A verification that did not succeed: an error or `Ok(false)`.
fn assert_rejected(stored: &str) {
    let r = verify_blocking(PASSWORD.as_bytes(), stored);
    assert!(!matches!(r, Ok(true)), "{stored:?} unexpectedly verified");
}

fn assert_malformed(stored: &str) {
    let r = verify_blocking(PASSWORD.as_bytes(), stored);
    assert!(
        matches!(r, Err(HashError::Malformed(_))),
        "{stored:?}: expected Malformed, got {r:?}"
    );
    assert_eq!(
        validate_format(stored),
        Err(HashError::UnknownFormat),
        "{stored:?}"
    );
    assert!(
        matches!(
            validate_format_detailed(stored),
            Err(HashError::Malformed(_))
        ),
        "{stored:?}"
    );
}

// ------------------------------------------------------------ vectors

#[test]
fn bcrypt_vectors() {
    for v in [BCRYPT_2B, BCRYPT_2A, BCRYPT_2Y] {
        check_vector(v);
    }
    // `$2$` and `$2z$` are accepted by Kratos and computed identically.
    let body = BCRYPT_2B.strip_prefix("$2b$").unwrap();
    for prefix in ["$2$", "$2z$", "$2a$", "$2y$"] {
        check_vector(&format!("{prefix}{body}"));
    }
}

#[test]
fn argon2_vectors() {
    check_vector(ARGON2ID);
    check_vector(ARGON2I);
}

#[test]
fn pbkdf2_vectors() {
    for v in [
        PBKDF2_SHA1,
        PBKDF2_SHA224,
        PBKDF2_SHA256,
        PBKDF2_SHA384,
        PBKDF2_SHA512,
        PBKDF2_SHA3_FALLBACK,
    ] {
        check_vector(v);
    }
}

#[test]
fn scrypt_vectors() {
    check_vector(SCRYPT);
    check_vector(SCRYPT_SMALL);
}

#[test]
fn crypt_vectors() {
    for v in [
        MD5_CRYPT_GLIBC,
        MD5_CRYPT_PASSLIB,
        SHA256_CRYPT_GLIBC,
        SHA256_CRYPT_ROUNDS,
        SHA512_CRYPT_GLIBC,
        SHA512_CRYPT_ROUNDS,
    ] {
        check_vector(v);
    }
}

#[test]
fn ssha_vectors() {
    for v in [SSHA, SSHA256, SSHA512] {
        check_vector(v);
    }
    // Go's decoder ignores line breaks inside the base64.
    let wrapped = format!("{}\n{}", &SSHA512[..40], &SSHA512[40..]);
    check_vector(&wrapped);
}

/// Vectors from Kratos' own test-suite (`hash/hasher_test.go`), password
/// "test" / "test123" / "ory".
#[test]
fn kratos_compatibility_vectors() {
    let ok = [
        ("test", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"),
        ("test", "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4"),
        ("test", "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c"),
        ("test", "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI"),
        ("test", "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc"),
        ("test", "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE="),
        ("test", "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"),
        ("test123", "{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a"),
        ("test123", "{SSHA256}czO44OTV17PcF1cRxWrLZLy9xHd7CWyVYplr1rOhuMlx/7IK"),
        ("test123", "{SSHA512}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M="),
        ("test", "$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/"),
        ("test", "$md5-crypt$$whuMjZj.HMFoaTaZRRtkO0"),
        ("ory", "$md5-crypt$xWMlm2eL$GGTOpgZu4p2k6ORprAu3b."),
        ("test", "$sha256-crypt$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78"),
        ("ory", "$sha512-crypt$rounds=656000$0baQbxBrfpKqvizk$Q9cYk1MeNAlECPgpG3jjfNI2DumLqd0yHbxzLdxiX6nsSD5i9n0awcbiCf8R5DzpIYxeBPznPcb1wtzlgUKtH0"),
    ];
    for (pw, stored) in ok {
        assert_eq!(verify_blocking(pw.as_bytes(), stored), Ok(true), "{stored}");
        assert_eq!(verify_blocking(b"badtest", stored), Ok(false), "{stored}");
    }
    let mismatch = [
        (
            "test",
            "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRN2",
        ),
        (
            "test",
            "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL7",
        ),
        ("test", "$md5-crypt$xWMlm2eL$GGTOpgZu4p2k6ORprAu3b."),
    ];
    for (pw, stored) in mismatch {
        assert_rejected_with(pw, stored);
    }
    // Kratos answers these with a mismatch error; a mismatch is enough.
    for stored in [
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXcc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpp",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYF=",
    ] {
        assert_rejected_with("test", stored);
    }
    // Kratos rejects these with a decoding error.
    for stored in [
        "$scrypt$ln=16385,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=abc,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=16384,r=8,p=1$(2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$pbkdf2-sha256$aaaa$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        "$pbkdf2-sha512$I=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc",
        "{SSHA}tooshort",
        "$md5-crypt$whuMjZj.HMFoaTaZRRtkO0",
        "$sha256-crypt$$",
        "$sha512-crypt$$$",
    ] {
        assert!(verify_blocking(b"test", stored).is_err(), "{stored}");
    }
    assert_eq!(
        verify_blocking(
            b"test",
            "$unknown$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"
        ),
        Err(HashError::UnknownFormat)
    );
    assert_eq!(
        verify_blocking(b"test123", "{SSHAnotExistent}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M="),
        Err(HashError::UnknownFormat)
    );
}

fn assert_rejected_with(pw: &str, stored: &str) {
    let r = verify_blocking(pw.as_bytes(), stored);
    assert!(!matches!(r, Ok(true)), "{stored:?} unexpectedly verified");
}

#[test]
fn unknown_formats() {
    for s in [
        "",
        "plaintext",
        "$",
        "$$",
        "$2x$04$Z8abMGss14r0xn/AL7afHuQQbV7wxk8.xGo./g8/R4t.BQcHjhRle",
        "$1$e9R9rTw6$g2x3ehvdgux0fuUZikl3a.",
        "$5$oPQf07z0.IFhKKe.$7vlBX87fimXuDxyZ2t62go0TyFOZTtLAyyoq.C6KWo5",
        "$argon2d$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "$pbkdf2-sha$i=1,l=1$$AA",
        "$pbkdf2-sha1234$i=1,l=1$$AA",
        "$pbkdf2-md5$i=1,l=1$$AA",
        "{SSHA384}AAAA",
        "{ssha}AAAA",
        "$md5$CY9rzUYh03PK3k6DJie09g==",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$hmac-sha1$NDMy$MTIzNDU=",
        "$firescrypt$ln=14,r=8,p=1$a$b$c$d",
    ] {
        assert_eq!(
            verify_blocking(PASSWORD.as_bytes(), s),
            Err(HashError::UnknownFormat),
            "{s:?}"
        );
        assert_eq!(validate_format(s), Err(HashError::UnknownFormat), "{s:?}");
        assert_eq!(
            validate_format_detailed(s),
            Err(HashError::UnknownFormat),
            "{s:?}"
        );
    }
    assert_eq!(
        HashError::UnknownFormat.to_string(),
        "The given hash does not match any known hash format"
    );
}

// ------------------------------------------------------------ malformed

#[test]
fn malformed_bcrypt() {
    let body = BCRYPT_2B.strip_prefix("$2b$04$").unwrap();
    for s in [
        "$2b$",
        "$2b$04$",
        "$2b$04",
        &BCRYPT_2B[..BCRYPT_2B.len() - 1], // truncated
        &format!("{BCRYPT_2B}A"),          // too long
        &format!("$2b$4${body}"),          // one-digit cost
        &format!("$2b$03${body}"),         // cost below 4
        &format!("$2b$00${body}"),         // zero cost
        &format!("$2b$32${body}"),         // above the format's max
        &format!("$2b$31${body}"),         // valid but huge
        &format!("$2b$19${body}"),         // above MAX_BCRYPT_COST
        &format!("$2b$+4${body}"),         // sign
        &format!("$2b$04${}", body.replacen('Z', "+", 1)), // not bcrypt base64
        &format!("$2b$04${}", body.replacen('Z', "é", 1)), // non-ASCII
        &format!("$2b$04${}$", &body[..52]), // stray separator
    ] {
        assert_malformed(s);
    }
}

#[test]
fn bcrypt_long_password_is_rejected_not_truncated() {
    let long = "a".repeat(73);
    let exactly72 = "a".repeat(72);
    let h72 = hash_blocking(exactly72.as_bytes(), &bcrypt_config()).unwrap();
    assert_eq!(verify_blocking(exactly72.as_bytes(), &h72), Ok(true));
    // bcrypt would truncate to the same 72 bytes; Kratos rejects instead.
    assert_eq!(verify_blocking(long.as_bytes(), &h72), Ok(false));
    assert_eq!(
        hash_blocking(long.as_bytes(), &bcrypt_config()),
        Err(HashError::Malformed("password too long for bcrypt".into()))
    );
}

#[test]
fn malformed_argon2() {
    let salt = "Jtam6canrZB4HLg0uN9Dcw";
    let hash = "P+kOqU+Y+z7cXutw8LUlPQ8PU6uZkX0hLF141o5Ci/M";
    let with = |params: &str| format!("$argon2id$v=19${params}${salt}${hash}");
    for s in [
        "$argon2id$".to_string(),
        "$argon2id$v=19$m=1024,t=2,p=2".into(),
        ARGON2ID[..ARGON2ID.len() - 5]
            .to_string()
            .replace("$P+kO", "$"), // truncated hash part
        format!("$argon2id$m=1024,t=2,p=2${salt}${hash}"), // no version
        format!("$argon2id$v=16$m=1024,t=2,p=2${salt}${hash}"), // old version
        format!("$argon2id$v=19$m=1024,t=2,p=2${salt}${hash}$"), // extra field
        format!("$argon2id$v=19$m=1024,t=2,p=2$!!!!${hash}"), // bad base64 salt
        format!(
            "$argon2id$v=19$m=1024,t=2,p=2${salt}$P+kOqU+Y+z7cXutw8LUlPQ8PU6uZkX0hLF141o5Ci/M="
        ), // padded
        format!("$argon2id$v=19$m=1024,t=2,p=2${salt}$P+kOqU+Y+z7cXutw8LUlPQ8PU6uZkX0hLF141o5Ci/N"), // trailing bits
        format!("$argon2id$v=19$m=1024,t=2,p=2$c2FsdA${hash}"), // 4-byte salt
        format!("$argon2id$v=19$m=1024,t=2,p=2${salt}$AAA"),    // 2-byte hash
        format!("$argon2id$v=19$m=1024,t=2,p=2${salt}$"),       // empty hash
        with("m=0,t=2,p=2"),
        with("m=1024,t=0,p=2"),
        with("m=1024,t=2,p=0"),
        with("m=15,t=2,p=2"),
        with("m=4194305,t=1,p=1"), // > 4 GiB
        with("m=4294967295,t=1,p=1"),
        with("m=99999999999999999999999,t=1,p=1"),
        with("m=1024,t=1025,p=1"),
        with("m=4194304,t=5,p=1"), // 20 GiB of work
        with("m=1024,t=2,p=256"),
        with("m=1024,t=2"),
        with("t=2,m=1024,p=2"),
        with("m=1024,t=2,p=2,x=1"),
        with("m=-1024,t=2,p=2"),
        with("m=+1024,t=2,p=2"),
        with("m= 1024,t=2,p=2"),
        with(""),
    ] {
        assert_malformed(&s);
    }
}

#[test]
fn malformed_pbkdf2() {
    let salt = "wlUUBO7LHhL/y+5B1EjbAg";
    let hash = "9boJ2+rp3gaUxs6TRwx5sY4o6b4QZw80fybEgPOpK9w";
    let with = |params: &str| format!("$pbkdf2-sha256${params}${salt}${hash}");
    for s in [
        "$pbkdf2-sha256$".to_string(),
        PBKDF2_SHA256[..PBKDF2_SHA256.len() - 44].to_string(),
        format!("$pbkdf2-sha256$i=1000,l=32${salt}"),
        format!("$pbkdf2-sha256$i=1000,l=32${salt}${hash}$x"),
        format!("$pbkdf2-sha256$i=1000,l=32$@@@@${hash}"),
        format!("$pbkdf2-sha256$i=1000,l=32${salt}$9boJ2+rp3gaUxs6TRwx5sY4o6b4QZw80fybEgPOpK9w="),
        format!("$pbkdf2-sha256$i=1000,l=32${salt}$"),
        with("i=0,l=32"),
        with("i=10000001,l=32"),
        with("i=18446744073709551616,l=32"),
        with("i=1000,l=4294967296"),
        with("i=1000"),
        with("l=32,i=1000"),
        with("i=1000,l=32,x=1"),
        with("i=abc,l=32"),
        with(""),
        // 10M iterations × 2 blocks of SHA-256 output exceeds the work cap
        format!("$pbkdf2-sha256$i=10000000,l=64${salt}${}", "A".repeat(86)),
        format!("$pbkdf2-sha1$i=6000000,l=32${salt}${}", "A".repeat(43)),
    ] {
        assert_malformed(&s);
    }
}

#[test]
fn malformed_scrypt() {
    let salt = "4BrJWDnNP32IM5yMK7wivw==";
    let hash = "jDfMyUrK86faK6F6XS7ojdzeLjrzDgnidCJqftAwAVg=";
    let with = |params: &str| format!("$scrypt${params}${salt}${hash}");
    for s in [
        "$scrypt$".to_string(),
        SCRYPT[..SCRYPT.len() - 10].to_string(),
        format!("$scrypt$ln=1024,r=8,p=1${salt}"),
        format!("$scrypt$ln=1024,r=8,p=1${salt}${hash}$"),
        format!("$scrypt$ln=1024,r=8,p=1$4BrJWDnNP32IM5yMK7wivw${hash}"), // unpadded
        format!("$scrypt$ln=1024,r=8,p=1${salt}$jDfMyUrK86faK6F6XS7ojdzeLjrzDgnidCJqftAwAVh="), // trailing bits
        format!("$scrypt$ln=1024,r=8,p=1${salt}$"),
        with("ln=0,r=8,p=1"),
        with("ln=1,r=8,p=1"),
        with("ln=10,r=8,p=1"), // log2 N instead of N
        with("ln=1000,r=8,p=1"),
        with("ln=2097152,r=8,p=1"),  // 2^21
        with("ln=1048576,r=16,p=1"), // 2 GiB
        with("ln=1048576,r=8,p=16"), // too much work
        with("ln=9223372036854775808,r=8,p=1"),
        with("ln=1024,r=0,p=1"),
        with("ln=1024,r=8,p=0"),
        with("ln=65536,r=1,p=1"), // N >= 2^(16 r)
        with("ln=1024,r=8"),
        with("r=8,ln=1024,p=1"),
        with("ln=1024,r=8,p=1,x=2"),
        with(""),
    ] {
        assert_malformed(&s);
    }
}

#[test]
fn malformed_crypt() {
    for s in [
        "$md5-crypt$",
        "$md5-crypt$$",
        "$md5-crypt$$$",
        "$md5-crypt$e9R9rTw6",
        "$md5-crypt$e9R9rTw6$g2x3ehvdgux0fuUZikl3a",   // truncated checksum
        "$md5-crypt$e9R9rTw6$g2x3ehvdgux0fuUZikl3a.x", // too long
        "$md5-crypt$e9R9rTw6e9$g2x3ehvdgux0fuUZikl3a.", // salt > 8
        "$md5-crypt$e9R9:Tw6$g2x3ehvdgux0fuUZikl3a.",   // bad salt char
        "$md5-crypt$e9R9\u{7f}Tw6$g2x3ehvdgux0fuUZikl3a.",
        "$md5-crypt$e9R9\u{80}Tw$g2x3ehvdgux0fuUZikl3a.",
        "$md5-crypt$e9R9\tTw6$g2x3ehvdgux0fuUZikl3a.",
        "$md5-crypt$e9R9rTw6$g2x3ehvdgux0fuUZikl3a+",
        "$md5-crypt$rounds=1000$e9R9rTw6$g2x3ehvdgux0fuUZikl3a.",
        "$sha256-crypt$",
        "$sha256-crypt$$",
        "$sha256-crypt$oPQf07z0.IFhKKe.$7vlBX87fimXuDxyZ2t62go0TyFOZTtLAyyoq.C6KWo",
        "$sha256-crypt$oPQf07z0.IFhKKe.X$7vlBX87fimXuDxyZ2t62go0TyFOZTtLAyyoq.C6KWo5",
        "$sha256-crypt$rounds=999$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=0$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=1000000000$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=999999999$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=10000001$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=1e4$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$round=1000$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62",
        "$sha256-crypt$rounds=1000$3SHgxLtLfATskbwt$akCBlc.RvDwQMmO6rWAkMjNpgyIMFRYAMlrw5Xq6f62$",
        "$sha512-crypt$",
        "$sha512-crypt$$$",
        "$sha512-crypt$dqjrRrH8m1YjJ4Y4$rnJlH5pP/6MQ99GX/kND5flTlgnAuM9rvCq6tGU67NLLw",
        "$sha512-crypt$dqjrRrH8m1YjJ4Y4$7vlBX87fimXuDxyZ2t62go0TyFOZTtLAyyoq.C6KWo5",
    ] {
        assert_malformed(s);
    }
}

#[test]
fn crypt_long_password_never_matches() {
    let long = "x".repeat(MAX_CRYPT_PASSWORD_LEN + 1);
    assert_eq!(
        verify_blocking(long.as_bytes(), SHA512_CRYPT_GLIBC),
        Ok(false)
    );
    assert_eq!(verify_blocking(long.as_bytes(), MD5_CRYPT_GLIBC), Ok(false));
}

#[test]
fn malformed_ssha() {
    for s in [
        "{SSHA}",
        "{SSHA}ft2G78uL84ctYZrcDG0oaM3Dl6w=", // digest only, no salt
        "{SSHA}ft2G78uL84ctYZrcDG0oaM3Dl6z7jJdNITcezQ", // unpadded
        "{SSHA}ft2G78uL84ctYZrcDG0oaM3Dl6z7jJdNITcezQ=", // wrong padding
        "{SSHA}ft2G78uL84ctYZrcDG0oaM3Dl6z7jJdNITce*Q==",
        "{SSHA256}4iqWCFL7V94YeL182UysP1TAfLpUorhKIHUCG1ajBHM=",
        "{SSHA512}AAAA",
        "{SSHA} ft2G78uL84ctYZrcDG0oaM3Dl6z7jJdNITcezQ==",
    ] {
        assert_malformed(s);
    }
    // A digest of another length is just a mismatch.
    assert_rejected(&SSHA256.replace("{SSHA256}", "{SSHA}"));
}

// ------------------------------------------------------------ round trips

#[tokio::test]
async fn argon2_round_trip() {
    let hasher = Hasher::new(argon2_config());
    let h = hasher.hash(PASSWORD).await.unwrap();
    assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
    assert_eq!(hasher.verify(PASSWORD, &h).await, Ok(true));
    assert_eq!(hasher.verify(WRONG, &h).await, Ok(false));
    assert_eq!(validate_format(&h), Ok(()));
    assert!(!hasher.needs_rehash(&h));

    // The encoding is the standard PHC string the argon2 crate itself reads.
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let phc = PasswordHash::new(&h).unwrap();
    assert_eq!(phc.algorithm.as_str(), "argon2id");
    assert_eq!(phc.hash.unwrap().len(), 32);
    assert_eq!(phc.salt.unwrap().len(), 22); // 16 bytes, unpadded base64
    assert!(argon2::Argon2::default()
        .verify_password(PASSWORD.as_bytes(), &phc)
        .is_ok());

    // Two hashes of the same password use different salts.
    assert_ne!(hasher.hash(PASSWORD).await.unwrap(), h);
}

#[tokio::test]
async fn argon2_custom_lengths() {
    let mut cfg = argon2_config();
    cfg.argon2.salt_length = 32;
    cfg.argon2.key_length = 100; // beyond the PHC crate's 64-byte output limit
    cfg.argon2.parallelism = 2;
    let hasher = Hasher::new(cfg);
    let h = hasher.hash("").await.unwrap();
    assert_eq!(hasher.verify("", &h).await, Ok(true));
    assert_eq!(hasher.verify(" ", &h).await, Ok(false));
    assert!(!hasher.needs_rehash(&h));
}

#[tokio::test]
async fn bcrypt_round_trip() {
    let hasher = Hasher::new(bcrypt_config());
    let h = hasher.hash(PASSWORD).await.unwrap();
    assert!(h.starts_with("$2a$04$"), "{h}");
    assert_eq!(h.len(), 60);
    assert_eq!(hasher.verify(PASSWORD, &h).await, Ok(true));
    assert_eq!(hasher.verify(WRONG, &h).await, Ok(false));
    assert!(!hasher.needs_rehash(&h));
    // Interoperates with the bcrypt crate's own verifier.
    assert!(bcrypt::verify(PASSWORD, &h).unwrap());
    assert_eq!(
        hasher.hash(&"p".repeat(73)).await,
        Err(HashError::Malformed("password too long for bcrypt".into()))
    );
}

#[test]
fn invalid_hasher_config() {
    let mut cfg = argon2_config();
    cfg.argon2.salt_length = 4;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
    let mut cfg = argon2_config();
    cfg.argon2.memory_kib = 4;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
    let mut cfg = argon2_config();
    cfg.argon2.iterations = 0;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
    let mut cfg = argon2_config();
    cfg.argon2.memory_kib = u32::MAX;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
    let mut cfg = argon2_config();
    cfg.argon2.key_length = 2;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
    let mut cfg = bcrypt_config();
    cfg.bcrypt.cost = 3;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
    cfg.bcrypt.cost = 31;
    assert!(matches!(
        hash_blocking(b"x", &cfg),
        Err(HashError::InvalidConfig(_))
    ));
}

#[test]
fn defaults_match_kratos() {
    let cfg = HasherConfig::default();
    assert_eq!(cfg.algorithm, Algorithm::Argon2);
    assert_eq!(cfg.argon2.memory_kib, 131_072);
    assert_eq!(cfg.argon2.iterations, 1);
    assert_eq!(cfg.argon2.salt_length, 16);
    assert_eq!(cfg.argon2.key_length, 32);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(cfg.argon2.parallelism as usize, (cpus * 2).min(255));
    assert_eq!(cfg.bcrypt.cost, 12);

    assert_eq!(
        serde_json::to_string(&Algorithm::Argon2).unwrap(),
        "\"argon2\""
    );
    assert_eq!(
        serde_json::to_string(&Algorithm::Bcrypt).unwrap(),
        "\"bcrypt\""
    );
    assert_eq!(
        serde_json::from_str::<Algorithm>("\"bcrypt\"").unwrap(),
        Algorithm::Bcrypt
    );
    assert!(serde_json::from_str::<Algorithm>("\"scrypt\"").is_err());
}

// ------------------------------------------------------------ needs_rehash

#[test]
fn needs_rehash_rules() {
    let hasher = Hasher::new(argon2_config());
    let same = hash_blocking(PASSWORD.as_bytes(), &argon2_config()).unwrap();
    assert!(!hasher.needs_rehash(&same));

    let mut more_memory = argon2_config();
    more_memory.argon2.memory_kib = 2048;
    let h = hash_blocking(PASSWORD.as_bytes(), &more_memory).unwrap();
    assert!(hasher.needs_rehash(&h));

    let mut more_iterations = argon2_config();
    more_iterations.argon2.iterations = 2;
    let h = hash_blocking(PASSWORD.as_bytes(), &more_iterations).unwrap();
    assert!(hasher.needs_rehash(&h));

    let mut more_lanes = argon2_config();
    more_lanes.argon2.parallelism = 2;
    let h = hash_blocking(PASSWORD.as_bytes(), &more_lanes).unwrap();
    assert!(hasher.needs_rehash(&h));

    let mut longer_key = argon2_config();
    longer_key.argon2.key_length = 64;
    let h = hash_blocking(PASSWORD.as_bytes(), &longer_key).unwrap();
    assert!(hasher.needs_rehash(&h));

    // A different salt length alone does not force a rehash.
    let mut longer_salt = argon2_config();
    longer_salt.argon2.salt_length = 32;
    let h = hash_blocking(PASSWORD.as_bytes(), &longer_salt).unwrap();
    assert!(!hasher.needs_rehash(&h));

    // Foreign formats.
    assert!(hasher.needs_rehash(BCRYPT_2B));
    assert!(hasher.needs_rehash(PBKDF2_SHA256));
    assert!(hasher.needs_rehash(ARGON2I));
    assert!(hasher.needs_rehash("garbage"));
    for v in ALL_VECTORS {
        assert!(hasher.needs_rehash(v), "{v}");
    }

    // bcrypt configuration.
    let bhasher = Hasher::new(bcrypt_config());
    assert!(!bhasher.needs_rehash(BCRYPT_2B)); // cost 4
    assert!(bhasher.needs_rehash(BCRYPT_2A)); // cost 5
    assert!(bhasher.needs_rehash(&same));
    assert!(bhasher.needs_rehash(PBKDF2_SHA256));
}

// ------------------------------------------------------------ byte sizes

#[test]
fn byte_sizes() {
    let ok: &[(&str, u64)] = &[
        ("64MB", 64 << 20),
        ("128MB", 128 << 20),
        ("1GB", 1 << 30),
        ("512KB", 512 << 10),
        ("16384B", 16384),
        ("16384", 16384),
        ("0", 0),
        ("128mb", 128 << 20),
        ("128Mb", 128 << 20),
        ("64MiB", 64 << 20),
        ("64mib", 64 << 20),
        ("512KiB", 512 << 10),
        ("2GiB", 2 << 30),
        ("1TB", 1 << 40),
        ("4K", 4096),
        ("64 MB", 64 << 20),
        (" 1GB ", 1 << 30),
        ("1.5GB", 3 << 29),
        ("0.5KB", 512),
        (".5KB", 512),
        ("18446744073709551615", u64::MAX),
    ];
    for (input, expected) in ok {
        assert_eq!(parse_byte_size(input), Ok(*expected), "{input:?}");
    }
    for bad in [
        "",
        " ",
        "MB",
        "-1",
        "-1MB",
        "1.2.3MB",
        "1.MB",
        "1XB",
        "1 M B",
        "1e6",
        "0x10",
        "18446744073709551616",
        "17179869184GB",
        "1,5MB",
        "1.1234567890123456789GB",
        "1MBs",
    ] {
        assert!(
            matches!(parse_byte_size(bad), Err(HashError::Malformed(_))),
            "{bad:?}"
        );
    }
}

// ------------------------------------------------------------ concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_defaults_to_core_count() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let hasher = Hasher::new(argon2_config());
    assert_eq!(hasher.max_concurrency(), cores);
    assert_eq!(hasher.available_permits(), cores);
    // Clones share the same semaphore.
    let clone = hasher.clone();
    let _held = Arc::clone(&hasher.inner.permits)
        .acquire_owned()
        .await
        .unwrap();
    assert_eq!(clone.available_permits(), cores - 1);
    assert_eq!(
        Hasher::with_concurrency(argon2_config(), 0).max_concurrency(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_run_concurrently_up_to_the_limit() {
    let hasher = Hasher::with_concurrency(argon2_config(), 2);
    // Both closures must be inside the limited section at the same time to
    // pass the barrier; while they are, no permit is left.
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let hasher = hasher.clone();
            let barrier = Arc::clone(&barrier);
            let sem = Arc::clone(&hasher.inner.permits);
            tokio::spawn(async move {
                hasher
                    .run_limited(move || {
                        barrier.wait();
                        let free = sem.available_permits();
                        barrier.wait();
                        Ok(free)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        let free = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("both operations should run concurrently")
            .unwrap()
            .unwrap();
        assert_eq!(free, 0);
    }
    assert_eq!(hasher.available_permits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_wait_for_a_permit() {
    let hasher = Hasher::with_concurrency(argon2_config(), 2);
    let held = Arc::clone(&hasher.inner.permits)
        .acquire_many_owned(2)
        .await
        .unwrap();
    assert_eq!(hasher.available_permits(), 0);
    let pending = {
        let hasher = hasher.clone();
        tokio::spawn(async move { hasher.hash(PASSWORD).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!pending.is_finished(), "hash ran without a permit");
    drop(held);
    let h = pending.await.unwrap().unwrap();
    assert_eq!(hasher.verify(PASSWORD, &h).await, Ok(true));
    assert_eq!(hasher.available_permits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_parallel_hashes_all_succeed() {
    let hasher = Hasher::with_concurrency(argon2_config(), 2);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                let pw = format!("password {i}");
                let h = hasher.hash(&pw).await?;
                hasher.verify(&pw, &h).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(true));
    }
    assert_eq!(hasher.available_permits(), 2);
}

#[tokio::test]
async fn verify_dummy_is_lazy_and_cached() {
    let hasher = Hasher::new(argon2_config());
    assert!(hasher.inner.dummy_hash.get().is_none());
    hasher.verify_dummy(PASSWORD).await;
    let first = hasher.inner.dummy_hash.get().cloned().unwrap();
    assert!(first.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
    assert!(!hasher.needs_rehash(&first));
    hasher.clone().verify_dummy("another").await;
    assert_eq!(hasher.inner.dummy_hash.get(), Some(&first));

    let bhasher = Hasher::new(bcrypt_config());
    bhasher.verify_dummy(PASSWORD).await;
    assert!(bhasher
        .inner
        .dummy_hash
        .get()
        .unwrap()
        .starts_with("$2a$04$"));
}

#[tokio::test]
async fn async_verify_reports_errors() {
    let hasher = Hasher::new(argon2_config());
    assert_eq!(
        hasher.verify(PASSWORD, "nope").await,
        Err(HashError::UnknownFormat)
    );
    assert!(matches!(
        hasher
            .verify(PASSWORD, "$argon2id$v=19$m=0,t=0,p=0$$")
            .await,
        Err(HashError::Malformed(_))
    ));
    assert_eq!(hasher.verify(PASSWORD, SCRYPT_SMALL).await, Ok(true));
}

// ------------------------------------------------------------ calibration

#[test]
fn calibrate_returns_usable_params() {
    // A tiny target is met by the first candidate (16 MiB capped to 4 MiB).
    let p = calibrate(Duration::from_nanos(1), 1, 32, 16, 4096);
    assert_eq!(
        p,
        Argon2Params {
            memory_kib: 4096,
            iterations: 1,
            parallelism: 1,
            salt_length: 16,
            key_length: 32,
        }
    );
    // With a memory cap far too small for the target, iterations grow.
    let p = calibrate(Duration::from_millis(20), 2, 16, 8, 64);
    assert_eq!(p.memory_kib, 64);
    assert!(p.iterations > 1, "{p:?}");
    assert!(p.iterations <= MAX_ARGON2_ITERATIONS);
    let cfg = HasherConfig {
        argon2: p,
        ..HasherConfig::default()
    };
    let h = hash_blocking(b"pw", &cfg).unwrap();
    assert_eq!(verify_blocking(b"pw", &h), Ok(true));
    // Silly inputs are clamped rather than failing.
    let p = calibrate(Duration::ZERO, 0, 0, 0, 0);
    assert_eq!((p.parallelism, p.memory_kib, p.iterations), (1, 8, 1));
    assert_eq!((p.key_length, p.salt_length), (4, 8));
}

// ------------------------------------------------------------ no panics

/// Tiny deterministic PRNG (xorshift64*), so the test needs no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FUZZ_PREFIXES: &[&str] = &[
    "$2a$",
    "$2b$",
    "$2y$",
    "$2z$",
    "$2$",
    "$argon2id$",
    "$argon2i$",
    "$pbkdf2-sha1$",
    "$pbkdf2-sha224$",
    "$pbkdf2-sha256$",
    "$pbkdf2-sha384$",
    "$pbkdf2-sha512$",
    "$pbkdf2-sha7$",
    "$scrypt$",
    "$md5-crypt$",
    "$sha256-crypt$",
    "$sha512-crypt$",
    "{SSHA}",
    "{SSHA256}",
    "{SSHA512}",
];

/// Characters that can never make a numeric parameter larger.
const NON_DIGITS: &[char] = &[
    '$', '=', ',', '.', '/', '+', '-', 'A', 'z', 'm', 't', 'p', 'i', 'l', 'r', 'n', 'v', ' ', '\0',
    '\n', '\t', '\u{7f}', '\u{80}', 'é', '€', '😀', '{', '}', ':',
];

fn check_no_panic(s: &str) {
    let r = std::panic::catch_unwind(|| {
        let _ = validate_format(s);
        let _ = validate_format_detailed(s);
        let _ = verify_blocking(PASSWORD.as_bytes(), s);
        let _ = verify_blocking(&[0xff, 0x00, 0xfe], s);
        let hasher_cfg = argon2_config();
        let _ = Hasher::new(hasher_cfg).needs_rehash(s);
    });
    assert!(r.is_ok(), "panicked on {s:?}");
}

#[test]
fn verify_never_panics_on_random_strings() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // 1. Random bodies after each prefix (digits allowed, but a random body
    //    essentially never forms a complete, expensive hash).
    let pool: Vec<char> =
        "0123456789$=,.+/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz{}:é😀\0"
            .chars()
            .collect();
    for prefix in FUZZ_PREFIXES {
        for _ in 0..300 {
            let len = rng.below(120);
            let body: String = (0..len).map(|_| pool[rng.below(pool.len())]).collect();
            check_no_panic(&format!("{prefix}{body}"));
        }
    }
    // 2. Structured inputs: mutate real vectors by deleting, inserting or
    //    replacing characters (never with digits, so costs cannot grow).
    let cheap: Vec<&str> = ALL_VECTORS
        .iter()
        .copied()
        .filter(|v| !v.starts_with("$2a$05"))
        .collect();
    for _ in 0..600 {
        let base = cheap[rng.below(cheap.len())];
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..1 + rng.below(3) {
            let pos = rng.below(chars.len() + 1);
            match rng.below(4) {
                0 if pos < chars.len() => {
                    chars.remove(pos);
                }
                1 => chars.insert(pos, NON_DIGITS[rng.below(NON_DIGITS.len())]),
                2 if pos < chars.len() => chars[pos] = NON_DIGITS[rng.below(NON_DIGITS.len())],
                _ => chars.truncate(pos),
            }
        }
        let s: String = chars.into_iter().collect();
        check_no_panic(&s);
    }
    // 3. Every prefix of every vector.
    for v in ALL_VECTORS {
        for (i, _) in v.char_indices() {
            check_no_panic(&v[..i]);
        }
    }
}
