//! Replay windows: the clock, timestamp parsing without overflow, and the tolerance check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::SignatureError;

/// The clock a replay window reads.
///
/// [`SystemClock`] unless a scheme is given another; any `Fn() -> SystemTime` closure is one,
/// so tests fix the time instead of sleeping:
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use tower_webhook::scheme::Clock;
///
/// let fixed = || UNIX_EPOCH + Duration::from_secs(1_767_225_600);
/// assert_eq!(fixed.now(), UNIX_EPOCH + Duration::from_secs(1_767_225_600));
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The system's clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How a timestamp in a signed body is written; see
/// [`TimestampSource::BodyField`](super::TimestampSource::BodyField).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampUnit {
    /// An integer number of Unix seconds.
    Seconds,
    /// An integer number of Unix milliseconds (Linear's `webhookTimestamp`).
    Millis,
    /// An RFC 3339 date-time string such as `2026-03-30T10:15:00Z` (VideoNest's `timestamp`).
    Rfc3339,
}

impl TimestampUnit {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Seconds => "Unix seconds",
            Self::Millis => "Unix milliseconds",
            Self::Rfc3339 => "an RFC 3339 date-time",
        }
    }
}

/// Milliseconds since the Unix epoch, negative before it; saturating far outside any real clock.
pub(crate) fn unix_millis(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_millis()).unwrap_or(i128::MAX),
    }
}

/// Whole Unix seconds of `time`.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    i64::try_from(unix_millis(time).div_euclid(1000)).unwrap_or(i64::MAX)
}

/// The most digits a header timestamp may have: any such number fits an `i64`.
pub(crate) const MAX_DIGITS: usize = 18;

/// A header timestamp: 1 to 18 ASCII digits, nothing else (no sign, no space, no fraction), so
/// that it always fits an `i64` and its text is what was signed.
pub(crate) fn parse_seconds(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0i64, |n, d| {
        n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })
}

/// The timestamp in a top-level field of a JSON body, in milliseconds.
pub(crate) fn body_field_millis(body: &[u8], field: &str, unit: TimestampUnit) -> Option<i128> {
    #[derive(serde::Deserialize)]
    struct Fields(serde_json::Map<String, Value>);
    let Fields(map) = serde_json::from_slice(body).ok()?;
    let value = map.get(field)?;
    match unit {
        TimestampUnit::Seconds => Some(i128::from(value.as_i64()?) * 1000),
        TimestampUnit::Millis => Some(i128::from(value.as_i64()?)),
        TimestampUnit::Rfc3339 => rfc3339_millis(value.as_str()?),
    }
}

/// Milliseconds since the epoch of an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
fn rfc3339_millis(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_ascii() {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        for (i, d) in fraction[..digits.min(3)].iter().enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1][i];
        }
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let part = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let minutes = part(*h1, *h2)? * 60 + part(*m1, *m2)?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(i128::from(seconds) * 1000 + i128::from(millis))
}

/// Refuses a timestamp (in milliseconds) further than `tolerance` from `now`, either way.
pub(crate) fn check(
    timestamp_millis: i128,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let offset = timestamp_millis - unix_millis(now);
    let limit = i128::try_from(tolerance.as_millis()).unwrap_or(i128::MAX);
    if offset.abs() <= limit {
        return Ok(());
    }
    let seconds = |millis: i128| {
        i64::try_from(millis / 1000).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
    };
    Err(SignatureError::OutOfTolerance {
        offset_seconds: seconds(offset),
        tolerance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_only_plain_digits() {
        assert_eq!(parse_seconds(b"1767225600"), Some(1_767_225_600));
        assert_eq!(parse_seconds(b"0"), Some(0));
        assert_eq!(
            parse_seconds(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.5",
            b"1e9",
            b"1767225600abc",
            b"9999999999999999999",
            "١٢٣".as_bytes(),
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_millis("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            rfc3339_millis("2026-01-01T01:00:00.250+01:00"),
            Some(1_767_225_600_250)
        );
        assert_eq!(
            rfc3339_millis("2026-03-30T10:15:00Z"),
            Some(1_774_865_700_000)
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "x",
        ] {
            assert_eq!(rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_window_is_symmetric_and_never_overflows() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let tolerance = Duration::from_secs(300);
        assert!(check(1_000_300_000, now, tolerance).is_ok());
        assert!(check(999_700_000, now, tolerance).is_ok());
        assert!(check(1_000_301_000, now, tolerance).is_err());
        assert!(check(999_699_000, now, tolerance).is_err());
        assert!(check(i128::from(i64::MAX) * 1000, now, tolerance).is_err());
        assert!(check(i128::from(i64::MIN) * 1000, now, Duration::MAX).is_ok());
    }
}
