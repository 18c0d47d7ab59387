use super::*;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fake range source: answers from a map of password -> count (building a realistic
/// body with padding and noise), or fails.
#[derive(Default)]
struct FakeRange {
    counts: HashMap<String, u64>,
    fail: Option<BreachError>,
    raw_body: Option<String>,
    requested: Mutex<Vec<String>>,
}

impl FakeRange {
    fn with(pairs: &[(&str, u64)]) -> Self {
        Self {
            counts: pairs.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect(),
            ..Self::default()
        }
    }
    fn failing(err: BreachError) -> Self {
        Self {
            fail: Some(err),
            ..Self::default()
        }
    }
    fn raw(body: &str) -> Self {
        Self {
            raw_body: Some(body.to_owned()),
            ..Self::default()
        }
    }
    fn requests(&self) -> Vec<String> {
        self.requested.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl BreachRange for FakeRange {
    async fn range(&self, prefix: &str) -> Result<String, BreachError> {
        if let Ok(mut r) = self.requested.lock() {
            r.push(prefix.to_owned());
        }
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        if let Some(body) = &self.raw_body {
            return Ok(body.clone());
        }
        let mut body = String::from("0018A45C4D1DEF81644B54AB7F969B88D65:0\r\n");
        for (pw, count) in &self.counts {
            let (p, s) = sha1_prefix_suffix(pw);
            if p == prefix {
                body.push_str(&format!("{s}:{count}\r\n"));
            }
        }
        body.push_str("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:0\r\n");
        Ok(body)
    }
}

fn cfg() -> PolicyConfig {
    PolicyConfig::default()
}

fn breached_list() -> FakeRange {
    FakeRange::with(&[
        ("12345678", 3_000_000),
        ("password", 9_545_824),
        ("1234567890", 2_000_000),
        ("qwertyui", 40_000),
    ])
}

#[test]
fn defaults_match_kratos() {
    let c = PolicyConfig::default();
    assert_eq!(c.min_length, 8);
    assert_eq!(c.max_length, 72);
    assert!(c.identifier_similarity_check);
    assert!(c.haveibeenpwned_enabled);
    assert_eq!(c.max_breaches, 0);
    assert!(c.ignore_network_errors);
}

#[tokio::test]
async fn kratos_default_strategy_cases() {
    let hibp = breached_list();
    let zeros = "0".repeat(500);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, &str, Option<fn(&Violation) -> bool>)> = vec![
        ("", "", Some(|v| matches!(v, Violation::TooShort { .. }))),
        ("", "12", Some(|v| matches!(v, Violation::TooShort { .. }))),
        (
            "",
            "1234",
            Some(|v| matches!(v, Violation::TooShort { .. })),
        ),
        (
            "",
            "123456",
            Some(|v| matches!(v, Violation::TooShort { .. })),
        ),
        (
            "",
            "12345678",
            Some(|v| matches!(v, Violation::Breached { .. })),
        ),
        (
            "",
            "password",
            Some(|v| matches!(v, Violation::Breached { .. })),
        ),
        (
            "",
            "1234567890",
            Some(|v| matches!(v, Violation::Breached { .. })),
        ),
        (
            "",
            "qwertyui",
            Some(|v| matches!(v, Violation::Breached { .. })),
        ),
        (
            "",
            "l3f9to",
            Some(|v| matches!(v, Violation::TooShort { .. })),
        ),
        ("", "l3f9toh1uaf81n21", None),
        (
            "l3f9toh1uaf81n21",
            "l3f9toh1uaf81n21",
            Some(|v| *v == Violation::TooSimilar),
        ),
        ("", "l3f9toh1", None),
    ];
    for (id, pw, expected) in cases {
        let got = check(&cfg(), id, pw, Some(&hibp)).await;
        match expected {
            None => assert_eq!(got, Ok(()), "id={id:?} pw={pw:?}"),
            Some(pred) => {
                let err = got.err();
                assert!(
                    err.as_ref().is_some_and(pred),
                    "id={id:?} pw={pw:?} got {err:?}"
                );
            }
        }
    }
    // Kratos' 500-zero password passes its validator; here the bcrypt limit applies last.
    let no_max = PolicyConfig {
        max_length: 0,
        ..cfg()
    };
    assert_eq!(check(&no_max, "", &zeros, Some(&hibp)).await, Ok(()));
    assert_eq!(
        check(&cfg(), "", &zeros, Some(&hibp)).await,
        Err(Violation::TooLong {
            max: 72,
            actual: 500
        })
    );
}

#[test]
fn kratos_similarity_cases() {
    let similar_cases = [
        ("l3f9toh1uaf81n21", "l3f9toh1uaf81n21"),
        ("hello@example.com", "hello@example.com12345"),
        ("hello@example.com", "123hello@example.com123"),
        ("hello@example.com", "hello@exam"),
        ("hello@example.com", "HELLO@EXAMPLE.COM"),
        ("hello@example.com", "HELLO@example.com"),
        ("hello@exam", "hello@example.com"),
        ("hello@example.com", "h3ll0@example"),
        ("bosqwfaxee", "bosqwfaxee"),
    ];
    for (id, pw) in similar_cases {
        assert!(similar(id, pw), "expected similar: id={id:?} pw={pw:?}");
    }
    let distinct_cases = [
        ("abcd", "9d3c8a1b"),
        ("a", "kjOklafe"),
        ("ab", "0000ab0000123"),
        ("d4f6090b-5a84", "d4f6090b-5a84-2184-4404-8d1b-8da3eb00ebbe"),
        ("asdflasdflasdf", "asdflasdflpiuhefnciluaksdzuföfhg"),
        ("", "anything"),
        ("", ""),
    ];
    for (id, pw) in distinct_cases {
        assert!(!similar(id, pw), "expected distinct: id={id:?} pw={pw:?}");
    }
}

#[test]
fn similarity_thresholds_are_strict() {
    // Levenshtein exactly 5 is not "< 5"; lcs exactly half is not "> 0.5".
    assert!(!similar("abcde", "vwxyz")); // distance 5, lcs 0
    assert!(similar("abcd", "abcdwxyz")); // distance 4
                                          // pw "abcdqrstuv" (10 bytes) vs id "abcdexxxxxxxxxx": lcs 4/10, distance > 5
    assert!(!similar("abcdexxxxxxxxxx", "abcdqrstuv"));
    // lcs 5/10 = 0.5 exactly: not similar
    assert!(!similar("abcdeLLLLLLLLLLLLL", "abcdeqrstu"));
    // lcs 6/10 > 0.5: similar
    assert!(similar("abcdefLLLLLLLLLLLLL", "abcdefqrst"));
}

#[test]
fn similarity_skips_oversized_operands() {
    // Kratos (since its DoS fix): identical 257-byte strings are not compared.
    let large = "a".repeat(257);
    assert!(!similar(&large, &large));
    let at_cap = "a".repeat(256);
    assert!(similar(&at_cap, &at_cap));
}

#[tokio::test]
async fn similarity_can_be_disabled_and_skips_empty_identifier() {
    let off = PolicyConfig {
        identifier_similarity_check: false,
        haveibeenpwned_enabled: false,
        ..cfg()
    };
    assert_eq!(check(&off, "bosqwfaxee", "bosqwfaxee", None).await, Ok(()));
    let on = PolicyConfig {
        haveibeenpwned_enabled: false,
        ..cfg()
    };
    assert_eq!(
        check(&on, "bosqwfaxee", "bosqwfaxee", None).await,
        Err(Violation::TooSimilar)
    );
    assert_eq!(check(&on, "", "bosqwfaxee", None).await, Ok(()));
}

#[tokio::test]
async fn breach_hit_miss_and_threshold() {
    let hibp = FakeRange::with(&[("correct horse", 5), ("battery staple", 6)]);
    let five = PolicyConfig {
        max_breaches: 5,
        ..cfg()
    };
    assert_eq!(check(&five, "", "correct horse", Some(&hibp)).await, Ok(()));
    assert_eq!(
        check(&five, "", "battery staple", Some(&hibp)).await,
        Err(Violation::Breached { count: 6 })
    );
    assert_eq!(
        check(&cfg(), "", "correct horse", Some(&hibp)).await,
        Err(Violation::Breached { count: 5 })
    );
    assert_eq!(
        check(&cfg(), "", "never seen before!", Some(&hibp)).await,
        Ok(())
    );
}

#[tokio::test]
async fn breach_request_uses_upper_hex_prefix() {
    let hibp = FakeRange::with(&[]);
    assert_eq!(
        check(&cfg(), "mohutdesub", "damrumukuh", Some(&hibp)).await,
        Ok(())
    );
    assert_eq!(hibp.requests(), vec!["BCBA9".to_owned()]);
}

#[tokio::test]
async fn padding_entry_and_raw_body_variants() {
    let (_, suffix) = sha1_prefix_suffix("hunter2hunter2");
    let padded = FakeRange::raw(&format!("{suffix}:0\r\n"));
    assert_eq!(
        check(&cfg(), "", "hunter2hunter2", Some(&padded)).await,
        Ok(())
    );

    let lower = FakeRange::raw(&format!("junk\n{}:12\n", suffix.to_lowercase()));
    assert_eq!(
        check(&cfg(), "", "hunter2hunter2", Some(&lower)).await,
        Err(Violation::Breached { count: 12 })
    );

    // Kratos' "is missing a colon" and "invalid data which is ignored" cases.
    let no_colon = FakeRange::raw(&suffix);
    let five = PolicyConfig {
        max_breaches: 5,
        ..cfg()
    };
    assert_eq!(
        check(&five, "", "hunter2hunter2", Some(&no_colon)).await,
        Ok(())
    );
    assert_eq!(
        check(&cfg(), "", "hunter2hunter2", Some(&no_colon)).await,
        Err(Violation::Breached { count: 1 })
    );
    let trailing_garbage = FakeRange::raw(&format!("{suffix}:2\ninvalid"));
    assert_eq!(
        check(&five, "", "hunter2hunter2", Some(&trailing_garbage)).await,
        Ok(())
    );
    // "less than threshold with a leading comma" on another entry.
    let comma = FakeRange::raw(&format!(
        "{suffix}:5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:0,6"
    ));
    assert_eq!(
        check(&five, "", "hunter2hunter2", Some(&comma)).await,
        Ok(())
    );
}

#[tokio::test]
async fn network_errors_ignored_or_reported() {
    let strict = PolicyConfig {
        ignore_network_errors: false,
        ..cfg()
    };
    for err in [
        BreachError::Network("connection reset".into()),
        BreachError::Status(503),
    ] {
        let hibp = FakeRange::failing(err);
        assert_eq!(check(&cfg(), "", "sumdarmetp", Some(&hibp)).await, Ok(()));
        assert_eq!(
            check(&strict, "", "sumdarmetp", Some(&hibp)).await,
            Err(Violation::Unchecked)
        );
    }
    // An ignored network error still lets the length limit apply.
    let hibp = FakeRange::failing(BreachError::Status(500));
    let long = "x".repeat(73);
    assert_eq!(
        check(&cfg(), "", &long, Some(&hibp)).await,
        Err(Violation::TooLong {
            max: 72,
            actual: 73
        })
    );
}

#[tokio::test]
async fn no_request_when_disabled_or_no_source() {
    let hibp = breached_list();
    let off = PolicyConfig {
        haveibeenpwned_enabled: false,
        ..cfg()
    };
    assert_eq!(check(&off, "", "password", Some(&hibp)).await, Ok(()));
    assert!(hibp.requests().is_empty());
    assert_eq!(check(&cfg(), "", "password", None).await, Ok(()));
}

#[tokio::test]
async fn min_length_configurable() {
    let ten = PolicyConfig {
        min_length: 10,
        haveibeenpwned_enabled: false,
        ..cfg()
    };
    assert_eq!(check(&ten, "", "kuobahcaas", None).await, Ok(()));
    assert_eq!(
        check(&ten, "", "rfqyfjied", None).await,
        Err(Violation::TooShort { min: 10, actual: 9 })
    );
}

#[tokio::test]
async fn lengths_are_bytes_not_chars() {
    let c = PolicyConfig {
        haveibeenpwned_enabled: false,
        ..cfg()
    };
    // 4 chars, 8 bytes: long enough for Kratos.
    assert_eq!(check(&c, "", "äöüß", None).await, Ok(()));
    // 3 chars, 6 bytes.
    assert_eq!(
        check(&c, "", "äöü", None).await,
        Err(Violation::TooShort { min: 8, actual: 6 })
    );
    // 4-byte emoji: 19 chars = 76 bytes > 72.
    let emoji = "🔒".repeat(19);
    assert_eq!(emoji.chars().count(), 19);
    assert_eq!(
        check(&c, "", &emoji, None).await,
        Err(Violation::TooLong {
            max: 72,
            actual: 76
        })
    );
    // exactly 72 bytes is fine
    let ok = "🔒".repeat(18);
    assert_eq!(check(&c, "", &ok, None).await, Ok(()));
    // max_length 0 disables the limit
    let unlimited = PolicyConfig {
        max_length: 0,
        ..c.clone()
    };
    assert_eq!(check(&unlimited, "", &emoji, None).await, Ok(()));
}

#[tokio::test]
async fn check_order_matches_kratos() {
    let hibp = FakeRange::with(&[(&"p".repeat(80), 3)]);
    // breached is reported before the (hasher's) length limit
    assert_eq!(
        check(&cfg(), "", &"p".repeat(80), Some(&hibp)).await,
        Err(Violation::Breached { count: 3 })
    );
    // too short before similar
    assert_eq!(
        check(&cfg(), "abc", "abc", Some(&hibp)).await,
        Err(Violation::TooShort { min: 8, actual: 3 })
    );
    // similar before breach look-up (no request made)
    let fresh = FakeRange::with(&[]);
    assert_eq!(
        check(&cfg(), "bosqwfaxee", "bosqwfaxee", Some(&fresh)).await,
        Err(Violation::TooSimilar)
    );
    assert!(fresh.requests().is_empty());
}

#[tokio::test]
async fn one_megabyte_password_is_fast() {
    let big = "a".repeat(1 << 20);
    let ident = "a".repeat(200);
    let start = Instant::now();
    assert!(!similar(&ident, &big));
    assert!(!similar(&big, &big));
    let hibp = FakeRange::with(&[]);
    assert_eq!(
        check(&cfg(), &ident, &big, Some(&hibp)).await,
        Err(Violation::TooLong {
            max: 72,
            actual: 1 << 20
        })
    );
    let multibyte = "é".repeat(1 << 19);
    assert!(!similar(&multibyte, &multibyte));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn lowercase_expansion_is_bounded() {
    // 'İ' (2 bytes) lower-cases to 3 bytes; 100 of them = 200 -> 300 bytes > cap.
    let s = "İ".repeat(100);
    assert_eq!(s.len(), 200);
    assert!(!similar(&s, &s));
    let s = "İ".repeat(80); // 160 -> 240 bytes: compared
    assert!(similar(&s, &s));
}

#[test]
fn messages_match_kratos() {
    let m = Violation::TooShort { min: 8, actual: 3 }.message();
    assert_eq!(m.id, 4_000_032);
    assert_eq!(
        m.text,
        "The password must be at least 8 characters long, but got 3."
    );
    assert_eq!(
        Value::Object(m.context),
        serde_json::json!({"min_length": 8, "actual_length": 3})
    );

    let m = Violation::TooLong {
        max: 72,
        actual: 80,
    }
    .message();
    assert_eq!(m.id, 4_000_033);
    assert_eq!(
        m.text,
        "The password must be at most 72 characters long, but got 80."
    );
    assert_eq!(
        Value::Object(m.context),
        serde_json::json!({"max_length": 72, "actual_length": 80})
    );

    let m = Violation::TooSimilar.message();
    assert_eq!(m.id, 4_000_031);
    assert_eq!(
        m.text,
        "The password can not be used because it is too similar to the identifier."
    );
    assert!(m.context.is_empty());

    let m = Violation::Breached { count: 42 }.message();
    assert_eq!(m.id, 4_000_034);
    assert_eq!(
        m.text,
        "The password has been found in data breaches and must no longer be used."
    );
    assert_eq!(
        Value::Object(m.context),
        serde_json::json!({"breaches": 42})
    );

    let m = Violation::Unchecked.message();
    assert_eq!(m.id, 4_000_005);
    assert_eq!(
        m.text,
        format!("The password can not be used because {UNCHECKED_REASON}.")
    );
    assert_eq!(
        Value::Object(m.context),
        serde_json::json!({"reason": UNCHECKED_REASON})
    );
}

#[test]
fn check_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let c = cfg();
    let hibp = FakeRange::with(&[]);
    let fut = check(&c, "id", "password123", Some(&hibp));
    assert_send(&fut);
}
