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
        *now += by;
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
    std::time::Duration::try_from_secs_f64(total)
        .map_err(|e| format!("invalid duration {s:?}: {e}"))
}

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
    fn system_clock_is_utc_and_micro_precise() {
        let now = SystemClock.now();
        assert_eq!(now.offset(), time::UtcOffset::UTC);
        assert_eq!(now.nanosecond() % 1000, 0);
    }
}
