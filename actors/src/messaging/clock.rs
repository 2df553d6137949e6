//! Instants plus durations that never overflow. Retention, windows, leases
//! and backoffs come from clients and settings; `DateTime + TimeDelta`
//! panics past year 262143, so every back-end adds them here instead and an
//! instant too far ahead is simply "never" (the latest instant there is).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// `at + d`, or the latest representable instant when that overflows.
pub fn later_by(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| at.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_saturates_at_the_latest_instant() {
        let now = DateTime::from_timestamp(1_760_000_000, 0).unwrap();
        assert_eq!(later_by(now, Duration::from_secs(60)), now + chrono::Duration::seconds(60));
        assert_eq!(later_by(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(later_by(now, Duration::from_secs(100_000_000 * 86_400)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(later_by(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)), DateTime::<Utc>::MAX_UTC);
    }
}
