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

/// A scheme's clock, shared by its clones; `Debug` names it only.
#[derive(Clone)]
pub(crate) struct SharedClock(pub(crate) std::sync::Arc<dyn Clock>);

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The system's clock: [`SystemTime::now`], or where the system has one (Linux, Android,
/// FreeBSD) its coarse real-time clock, which the kernel updates every tick (1 to 10 ms) and
/// which costs a fifth as much to read. A replay window counts whole seconds and minutes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fn now(&self) -> SystemTime {
        use rustix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::RealtimeCoarse);
        // The clock is after 1970 on any system this runs on; before it, the exact clock.
        match (u64::try_from(now.tv_sec), u32::try_from(now.tv_nsec)) {
            (Ok(seconds), Ok(nanos)) if nanos < 1_000_000_000 => {
                UNIX_EPOCH + Duration::new(seconds, nanos)
            }
            _ => SystemTime::now(),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
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
    /// An RFC 3339 date-time string such as `2026-03-30T10:15:00Z` (VideoNest's `timestamp`):
    /// `T`, `t` or a space between the date and the time, any number of fractional digits, `Z`
    /// (either case) or an offset of at most `±23:59`. Dates a calendar does not have
    /// (`2026-02-31`, `2025-02-29`) are refused, and so is a leap second (`:60`) anywhere but
    /// the last second of a month, UTC.
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
    if text.is_empty() || text.len() > MAX_DIGITS {
        return None;
    }
    // One pass: 18 digits cannot overflow, and a byte that is not a digit marks the text (the
    // value, which then wraps harmlessly, is thrown away).
    let (seconds, invalid) = text.iter().fold((0i64, false), |(n, invalid), byte| {
        let digit = byte.wrapping_sub(b'0');
        (
            n.wrapping_mul(10).wrapping_add(i64::from(digit)),
            invalid | (digit > 9),
        )
    });
    (!invalid).then_some(seconds)
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

/// Milliseconds since the epoch of an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`),
/// rounded down; `None` for anything else.
///
/// The `time` crate's RFC 3339 parser checks the calendar (no 31 April, no 29 February outside
/// leap years), offsets (hours up to 23, minutes up to 59) and leap seconds (`:60` only as the
/// last second of a month, UTC, read as the instant before the next minute). It takes any byte
/// between the date and the time; RFC 3339 names `T` and allows a space, and only those (`T`,
/// `t`, space) are taken here. `Z` may be lower case; the fraction may have any number of digits
/// (the instant is kept to the nanosecond, then rounded down to the millisecond).
fn rfc3339_millis(text: &str) -> Option<i128> {
    use time::{OffsetDateTime, format_description::well_known::Rfc3339};
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let instant = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(instant.unix_timestamp_nanos().div_euclid(1_000_000))
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
    fn the_system_clock_reads_the_time_of_day() {
        // The coarse clock trails the exact one by at most a tick (10 ms at most).
        let exact = SystemTime::now();
        let coarse = SystemClock.now();
        let apart = exact
            .duration_since(coarse)
            .unwrap_or_else(|ahead| ahead.duration());
        assert!(apart < Duration::from_secs(1), "{apart:?} apart");
    }

    #[test]
    fn seconds_parse_only_plain_digits() {
        assert_eq!(parse_seconds(b"1767225600"), Some(1_767_225_600));
        assert_eq!(parse_seconds(b"0"), Some(0));
        assert_eq!(
            parse_seconds(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        assert_eq!(
            parse_seconds(
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
            ),
            None
        );
        // Signs, spaces, fractions, exponents, trailing text, 19 digits, Arabic-Indic digits.
        let refused = "|-1|+1| 1|1.5|1e9|1767225600abc|9999999999999999999|١٢٣";
        for bad in refused.split('|') {
            assert_eq!(parse_seconds(bad.as_bytes()), None, "{bad:?}");
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
        // VideoNest's documented example, and the form JavaScript's `toISOString` writes.
        assert_eq!(
            rfc3339_millis("2026-03-30T10:15:00Z"),
            Some(1_774_865_700_000)
        );
        assert_eq!(
            rfc3339_millis("2026-03-30T10:15:00.000Z"),
            Some(1_774_865_700_000)
        );
        // What was accepted before stays accepted: `t` or a space as the separator, `z`, up to
        // nine fractional digits (rounded down), a negative offset, `-00:00`.
        for (text, millis) in [
            ("2026-03-30t10:15:00z", 1_774_865_700_000),
            ("2026-03-30 10:15:00Z", 1_774_865_700_000),
            ("2026-03-30T10:15:00.123456789Z", 1_774_865_700_123),
            ("2026-03-30T10:15:00.9Z", 1_774_865_700_900),
            ("2026-03-30T05:15:00-05:00", 1_774_865_700_000),
            ("2026-03-30T10:15:00-00:00", 1_774_865_700_000),
            ("2026-03-30T23:59:00+23:59", 1_774_828_800_000),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("2000-02-29T12:00:00Z", 951_825_600_000),
            // More than nine fractional digits: RFC 3339 allows any number.
            ("2026-03-30T10:15:00.1234567891Z", 1_774_865_700_123),
        ] {
            assert_eq!(rfc3339_millis(text), Some(millis), "{text}");
        }
        // A leap second is the last second of a month, UTC: read as the instant before the next
        // minute.
        assert_eq!(
            rfc3339_millis("2016-12-31T23:59:60Z"),
            Some(1_483_228_800_000 - 1)
        );
        assert_eq!(
            rfc3339_millis("2017-01-01T00:59:60+01:00"),
            Some(1_483_228_800_000 - 1)
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-32T00:00:00Z",
            // Days a month does not have.
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-06-31T00:00:00Z",
            "2026-09-31T00:00:00Z",
            "2026-11-31T00:00:00Z",
            // Offsets out of range.
            "2026-01-01T00:00:00+99:99",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+23:60",
            "2026-01-01T00:00:00-24:00",
            "2026-01-01T00:00:00-00:60",
            // Times out of range, and a leap second anywhere but at the end of a month.
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2026-01-01T23:59:61Z",
            "2026-03-30T10:15:60Z",
            "2016-12-31T23:59:60+01:00",
            // Not the format.
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00Z",
            "2026-01-01X00:00:00Z",
            "2026-01-01_00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00+01",
            "2026-01-01T00:00:00Z ",
            " 2026-01-01T00:00:00Z",
            "+2026-01-01T00:00:00Z",
            "20260101T000000Z",
            "2026-1-01T00:00:00Z",
            "2026-01-01T00:00:00,5Z",
            "2026-01-01T00:00:00.5\u{2212}01:00",
            "2026-01-01\u{00e9}00:00:00Z",
            "x",
            "",
        ] {
            assert_eq!(rfc3339_millis(bad), None, "{bad}");
        }
    }

    /// Days from 1970-01-01 of a civil date (Howard Hinnant's algorithm): the reference the
    /// property test holds the parser to.
    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn days_in_month(year: i64, month: i64) -> i64 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    proptest::proptest! {
        /// Every valid date-time, in any of the accepted spellings, is the instant the reference
        /// computes; a day past the end of its month never parses.
        #[test]
        fn valid_date_times_give_the_reference_instant(
            year in 0i64..=9999,
            month in 1i64..=12,
            day_seed in 0i64..31,
            hour in 0i64..24,
            minute in 0i64..60,
            second in 0i64..60,
            fraction in proptest::option::of("[0-9]{1,9}"),
            offset in proptest::option::of((proptest::bool::ANY, 0i64..24, 0i64..60)),
            separator in proptest::sample::select(vec!['T', 't', ' ']),
            zulu in proptest::sample::select(vec!['Z', 'z']),
        ) {
            let day = day_seed % days_in_month(year, month) + 1;
            let fraction_text = fraction.as_ref().map_or(String::new(), |digits| format!(".{digits}"));
            let (offset_text, offset_minutes) = match offset {
                None => (zulu.to_string(), 0),
                Some((negative, h, m)) => (
                    format!("{}{h:02}:{m:02}", if negative { '-' } else { '+' }),
                    if negative { -(h * 60 + m) } else { h * 60 + m },
                ),
            };
            let text = format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction_text}{offset_text}"
            );
            let millis_of_fraction = fraction.map_or(0, |digits| {
                format!("{digits:0<3}")[..3].parse::<i64>().unwrap()
            });
            let seconds = days_from_civil(year, month, day) * 86_400
                + hour * 3600
                + minute * 60
                + second
                - offset_minutes * 60;
            let expected = i128::from(seconds) * 1000 + i128::from(millis_of_fraction);
            proptest::prop_assert_eq!(rfc3339_millis(&text), Some(expected), "{}", text);

            let past_the_end = format!(
                "{year:04}-{month:02}-{:02}T{hour:02}:{minute:02}:{second:02}Z",
                days_in_month(year, month) + 1
            );
            proptest::prop_assert_eq!(rfc3339_millis(&past_the_end), None, "{}", past_the_end);
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
