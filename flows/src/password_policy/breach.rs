//! Have I Been Pwned k-anonymity range look-ups (transport-neutral).
//!
//! The flows crate never talks to the network itself: the proxy crate implements
//! [`BreachRange`] with its HTTP client and hands it to
//! [`check`](super::check).

use async_trait::async_trait;
use sha1::{Digest, Sha1};

/// Kratos' default for `selfservice.methods.password.config.haveibeenpwned_host`.
pub const DEFAULT_HIBP_HOST: &str = "api.pwnedpasswords.com";

/// Why a range look-up failed. Both kinds are subject to `ignore_network_errors`
/// (Kratos: `ErrNetworkFailure` / `ErrUnexpectedStatusCode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreachError {
    /// Connection failure, timeout, or a body that could not be read completely.
    #[error("unable to check if the password has been leaked: network error: {0}")]
    Network(String),
    /// The service answered with a status other than 200.
    #[error("unable to check if the password has been leaked: unexpected status code {0}")]
    Status(u16),
}

/// A k-anonymity range source (`GET https://<host>/range/<PREFIX>`).
#[async_trait]
pub trait BreachRange: Send + Sync {
    /// `prefix` is the first 5 upper-case hex characters of the password's SHA-1.
    /// Returns the raw response body: lines of `SUFFIX:COUNT` (35 hex chars suffix).
    /// Implementations should map non-200 answers to [`BreachError::Status`].
    async fn range(&self, prefix: &str) -> Result<String, BreachError>;
}

/// The URL Kratos requests for a prefix: `https://<host>/range/<prefix>`.
pub fn range_url(host: &str, prefix: &str) -> String {
    format!("https://{host}/range/{prefix}")
}

/// Upper-case hex SHA-1 of the password, split into the 5-char prefix sent to the
/// service and the 35-char suffix looked up in the answer.
pub fn sha1_prefix_suffix(password: &str) -> (String, String) {
    let digest = Sha1::digest(password.as_bytes());
    let mut hex = String::with_capacity(40);
    for byte in digest {
        hex.push(hex_upper(byte >> 4));
        hex.push(hex_upper(byte & 0x0f));
    }
    let suffix = hex.split_off(5);
    (hex, suffix)
}

fn hex_upper(nibble: u8) -> char {
    char::from_digit(u32::from(nibble & 0x0f), 16)
        .unwrap_or('0')
        .to_ascii_uppercase()
}

/// Breach count for `suffix` in a range body; 0 when absent.
///
/// Robust parsing:
/// * `\n` and `\r\n` line ends, surrounding whitespace, and lower-case hex are accepted;
/// * padding entries (`SUFFIX:0`) yield 0;
/// * lines that are not about `suffix` are ignored whatever they contain;
/// * thousands separators (`1,234`) are stripped, as Kratos does;
/// * a matching line without a count (or with an unreadable one) counts as 1, as
///   Kratos does for a missing colon (ory/kratos#2145) — failing closed rather than
///   erroring out;
/// * if the suffix is listed more than once the largest count wins.
pub fn range_count(body: &str, suffix: &str) -> u64 {
    let wanted = suffix.trim();
    if wanted.is_empty() {
        return 0;
    }
    let mut best: Option<u64> = None;
    for line in body.lines() {
        let line = line.trim().trim_start_matches('\u{feff}');
        let (candidate, count) = match line.split_once(':') {
            Some((s, c)) => (s.trim(), Some(c)),
            None => (line, None),
        };
        if !candidate.eq_ignore_ascii_case(wanted) {
            continue;
        }
        let count = count.map_or(1, parse_count);
        best = Some(best.map_or(count, |b| b.max(count)));
    }
    best.unwrap_or(0)
}

fn parse_count(raw: &str) -> u64 {
    let digits: String = raw.trim().chars().filter(|c| *c != ',').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 1;
    }
    // All digits: only overflow can fail, which means "a lot".
    digits.parse::<u64>().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_split_matches_known_hash() {
        // SHA1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        let (p, s) = sha1_prefix_suffix("password");
        assert_eq!(p, "5BAA6");
        assert_eq!(s, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        // Kratos' own test expects damrumukuh -> range/BCBA9
        assert_eq!(sha1_prefix_suffix("damrumukuh").0, "BCBA9");
    }

    #[test]
    fn url_shape() {
        assert_eq!(
            range_url(DEFAULT_HIBP_HOST, "BCBA9"),
            "https://api.pwnedpasswords.com/range/BCBA9"
        );
    }

    #[test]
    fn parses_crlf_padding_case_and_garbage() {
        let s = "1E4C9B93F3F0682250B6CF8331B7EE68FD8";
        let body = format!(
            "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n\
             garbage line\r\n\
             :::\r\n\
             {}:9,545,824\r\n\
             00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n",
            s.to_lowercase()
        );
        assert_eq!(range_count(&body, s), 9_545_824);
        assert_eq!(range_count(&body, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"), 0);
        assert_eq!(range_count(&body, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"), 0);
        assert_eq!(range_count("", s), 0);
        assert_eq!(range_count(&body, ""), 0);
    }

    #[test]
    fn missing_or_bad_count_counts_as_one() {
        let s = "ABCDEF";
        assert_eq!(range_count("ABCDEF", s), 1);
        assert_eq!(range_count("ABCDEF:text", s), 1);
        assert_eq!(range_count("ABCDEF:", s), 1);
        assert_eq!(range_count("abcdef:3\nABCDEF:7\nabcdef:2", s), 7);
        assert_eq!(range_count("ABCDEF:99999999999999999999999", s), u64::MAX);
        assert_eq!(range_count("ABCDEF:-5", s), 1);
    }
}
