//! Time as a dependency: production code asks a [`Clock`], tests inject a [`ManualClock`].

use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant in UTC, truncated to microseconds (the precision both SQL backends keep).
    fn now(&self) -> OffsetDateTime;
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// Truncates a timestamp to whole microseconds.
pub fn truncate_micros(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.microsecond();
    t.replace_microsecond(micros).unwrap_or(t)
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that may read the wall clock
    fn now(&self) -> OffsetDateTime {
        truncate_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. Used by tests for expiry without sleeping.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock frozen at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(truncate_micros(start))),
        }
    }

    /// Moves the clock forward (or backward with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.saturating_add(by);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = truncate_micros(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Parses a Go duration, as Kratos and Oathkeeper configs write them: a sequence of decimal numbers with units `ns`,
/// `us`/`µs`, `ms`, `s`, `m`, `h` (`30s`, `1h30m`, `1.5h`), or `0` alone. Shared by the config and the rule handlers.
/// As in Go, a duration longer than [`MAX_GO_DURATION`] (about 292 years) is an error, so that adding a parsed
/// duration to the current time can never leave the range of a timestamp.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let input = s.trim();
    if input == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if input.is_empty() || input.starts_with('-') {
        return Err(format!(
            "invalid duration {s:?}: expected e.g. \"30s\", \"1h30m\""
        ));
    }
    let mut rest = input.trim_start_matches('+');
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number {num:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: missing unit (use s, m, h …)"
                ))
            }
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?}")),
        };
        total += value * factor;
        rest = tail;
    }
    let d = std::time::Duration::try_from_secs_f64(total)
        .map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    if d > MAX_GO_DURATION {
        return Err(format!(
            "invalid duration {s:?}: longer than the largest duration, 2562047h47m16.854775807s"
        ));
    }
    Ok(d)
}

/// Go's largest `time.Duration`: `i64::MAX` nanoseconds, 2562047h47m16.854775807s.
pub const MAX_GO_DURATION: std::time::Duration =
    std::time::Duration::new(9_223_372_036, 854_775_807);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = time::macros::datetime!(2026-01-01 00:00:00.123456789 UTC);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now().nanosecond(), 123_456_000, "truncated to micros");
        clock.advance(Duration::hours(2));
        assert_eq!(clock.now().hour(), 2);
        assert_eq!(clock.now(), clock.now());
    }

    #[test]
    fn go_durations_longer_than_go_allows_are_refused() {
        assert_eq!(
            parse_go_duration("2562047h").unwrap(),
            std::time::Duration::from_secs(2_562_047 * 3600)
        );
        assert_eq!(parse_go_duration("1h30m").unwrap().as_secs(), 5400);
        for s in ["690249975h", "2562048h", "9999999999999999999999s"] {
            let err = parse_go_duration(s).unwrap_err();
            assert!(err.contains("invalid duration"), "{s}: {err}");
        }
        // The largest accepted duration still fits after today's date.
        let d = Duration::try_from(MAX_GO_DURATION).unwrap();
        assert!(SystemClock.now().checked_add(d).is_some());
    }

    #[test]
    fn system_clock_is_utc_and_micro_precise() {
        let now = SystemClock.now();
        assert_eq!(now.offset(), time::UtcOffset::UTC);
        assert_eq!(now.nanosecond() % 1000, 0);
    }
}
