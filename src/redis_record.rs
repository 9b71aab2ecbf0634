//! The deduplication records kept in Redis, shared by `RedisStore` and `RedisQueue::push_once`
//! (with the same prefix on the same server they read each other's records).
//!
//! A record is a string value with an expiry:
//!
//! | format | done | claimed |
//! | --- | --- | --- |
//! | 1 (this version writes it) | `v1:done` | `v1:claim:<token>` |
//! | 0 (version 0.1 wrote it; still read) | `done` | `claim:<token>` |
//!
//! Any other value is a record of a format this version does not know (a later version wrote
//! it): the scripts answer [`UNKNOWN`], and the caller refuses with an error (503) rather than
//! taking the key for free or for done.

/// The value of a done record.
pub(crate) const DONE: &str = "v1:done";

/// The prefix of a claim's value; the claim's token follows.
pub(crate) const CLAIM_PREFIX: &str = "v1:claim:";

/// What the scripts answer for a record of an unknown format.
pub(crate) const UNKNOWN: i64 = -1;

/// Lua shared by the scripts that read records: `record_state(value)` is `'free'` (no record),
/// `'done'`, `'claim'` or `'unknown'`.
pub(crate) const LUA: &str = r"
local function record_state(value)
  if not value then return 'free' end
  if value == 'v1:done' or value == 'done' then return 'done' end
  if string.sub(value, 1, 9) == 'v1:claim:' or string.sub(value, 1, 6) == 'claim:' then
    return 'claim'
  end
  return 'unknown'
end
";

/// A claim's value: [`CLAIM_PREFIX`] then the token.
pub(crate) fn claim_value(token: &str) -> String {
    let mut value = String::with_capacity(CLAIM_PREFIX.len() + token.len());
    value.push_str(CLAIM_PREFIX);
    value.push_str(token);
    value
}

/// Milliseconds for an expiry (`PX`): rounded up, at least 1 (Redis refuses 0), at most about
/// a century (Redis refuses values near `u64::MAX`).
pub(crate) fn expiry_millis(duration: std::time::Duration) -> u64 {
    const MAX: u128 = 100 * 365 * 24 * 3600 * 1000;
    let ms = duration.as_nanos().div_ceil(1_000_000).clamp(1, MAX);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiries_are_whole_positive_milliseconds() {
        assert_eq!(expiry_millis(Duration::ZERO), 1);
        assert_eq!(expiry_millis(Duration::from_nanos(1)), 1);
        assert_eq!(expiry_millis(Duration::from_micros(1500)), 2);
        assert_eq!(expiry_millis(Duration::from_secs(300)), 300_000);
        assert_eq!(expiry_millis(Duration::MAX), 100 * 365 * 24 * 3600 * 1000);
    }

    #[test]
    fn a_claim_is_never_the_done_marker() {
        assert_eq!(claim_value("abc"), "v1:claim:abc");
        assert_ne!(claim_value("done"), DONE);
        assert_ne!(claim_value(""), DONE);
        assert!(!DONE.starts_with(CLAIM_PREFIX));
    }
}
