//! Conversions between domain values and column values.

use chrono::{DateTime, TimeDelta, Utc};
use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::store::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A timestamp as two columns: the microsecond `timestamptz` keeps, and the
/// nanoseconds below it, so that values come back exactly as written.
pub(super) fn split_time(t: DateTime<Utc>) -> (DateTime<Utc>, i16) {
    let below_micro = t.timestamp_subsec_nanos() % 1_000;
    (t - TimeDelta::nanoseconds(i64::from(below_micro)), below_micro as i16)
}

pub(super) fn join_time(t: DateTime<Utc>, nanos: i16) -> DateTime<Utc> {
    t + TimeDelta::nanoseconds(i64::from(nanos))
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Other(format!("cannot encode {what}: {e}")))
}

pub(super) fn from_json<T: DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Other(format!("stored {what} does not decode: {e}")))
}

pub(super) fn environment(s: &str) -> Result<Environment, StoreError> {
    s.parse().map_err(|_| StoreError::Other(format!("stored environment '{s}' is unknown")))
}

pub(super) fn status(s: &str) -> Result<RunStatus, StoreError> {
    RunStatus::ALL
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| StoreError::Other(format!("stored status '{s}' is unknown")))
}

pub(super) fn revision(r: u64) -> Result<i64, StoreError> {
    i64::try_from(r).map_err(|_| StoreError::Other(format!("revision {r} is beyond what the database stores")))
}

pub(super) fn count(n: u32) -> i64 {
    i64::from(n)
}

pub(super) fn stored_count(n: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Other(format!("stored {what} {n} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_keep_every_nanosecond() {
        for nanos in [0, 1, 999, 1_000, 123_456_789, 999_999_999] {
            let t = DateTime::from_timestamp(1_700_000_000, nanos).unwrap();
            let (micros, below) = split_time(t);
            assert_eq!(micros.timestamp_subsec_nanos() % 1_000, 0);
            assert!((0..1_000).contains(&below));
            assert_eq!(join_time(micros, below), t);
        }
        // Before the epoch the split still floors.
        let t = DateTime::from_timestamp(-5, 999_999_999).unwrap();
        let (micros, below) = split_time(t);
        assert_eq!(below, 999);
        assert_eq!(join_time(micros, below), t);
    }
}
