//! What a secret is: a value that never prints, a rotation policy, and the
//! metadata that may be shown.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A secret's value. `Debug` and `Display` never show it, and it does not
/// serialize: it can only be read with [`SecretValue::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// A fresh value from the operating system's CSPRNG.
    pub fn generate(len: usize) -> Result<SecretValue, SecretError> {
        crate::crypto::random::secret_string(len).map(SecretValue).map_err(SecretError::Unavailable)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret '{0}' not found")]
    NotFound(String),
    #[error("secret '{0}' changed meanwhile; try again")]
    Conflict(String),
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
}

/// When a secret is rotated and how long its previous version stays good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct RotationPolicy {
    /// Rotated by the background actor when due.
    pub auto_rotate: bool,
    #[serde(with = "humantime_serde")]
    pub rotation_interval: Duration,
    /// A version older than this has expired.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Warnings start this long before expiry.
    #[serde(with = "humantime_serde")]
    pub notice_period: Duration,
    /// After a rotation the previous version stays valid this long.
    #[serde(with = "humantime_serde")]
    pub rotation_window: Duration,
}

impl RotationPolicy {
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if self.rotation_interval.is_zero() || self.max_age.is_zero() {
            return Err(format!("{what}: rotation_interval and max_age must be above zero"));
        }
        if self.rotation_interval > self.max_age {
            return Err(format!("{what}: rotation_interval must not exceed max_age, or versions expire unrotated"));
        }
        if self.notice_period >= self.max_age || self.rotation_window >= self.max_age {
            return Err(format!("{what}: notice_period and rotation_window must be shorter than max_age"));
        }
        Ok(())
    }
}

fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Everything about a secret except its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretMetadata {
    pub id: String,
    pub current_version: u32,
    pub previous_version: Option<u32>,
    pub created_at: DateTime<Utc>,
    /// When the current version was written.
    pub current_since: DateTime<Utc>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The previous version is valid until then.
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub policy: Option<RotationPolicy>,
}

impl SecretMetadata {
    /// The metadata of a secret's first version, written `now`.
    pub fn first(id: &str, policy: Option<RotationPolicy>, now: DateTime<Utc>) -> SecretMetadata {
        SecretMetadata {
            id: id.to_string(),
            current_version: 0,
            previous_version: None,
            created_at: now,
            current_since: now,
            last_rotated_at: None,
            next_rotation_at: policy.as_ref().map(|p| after(now, p.rotation_interval)),
            expires_at: policy.as_ref().map(|p| after(now, p.max_age)),
            previous_valid_until: None,
            policy,
        }
    }

    /// The metadata after a rotation `now`: the schedule starts again from now,
    /// and the old version stays valid for the window.
    pub fn rotated(&self, now: DateTime<Utc>) -> SecretMetadata {
        let policy = self.policy.clone();
        SecretMetadata {
            previous_version: Some(self.current_version),
            current_since: now,
            last_rotated_at: Some(now),
            next_rotation_at: policy.as_ref().map(|p| after(now, p.rotation_interval)),
            expires_at: policy.as_ref().map(|p| after(now, p.max_age)),
            previous_valid_until: Some(after(now, policy.as_ref().map_or(Duration::ZERO, |p| p.rotation_window))),
            ..self.clone()
        }
    }

    pub fn in_rotation_window(&self, now: DateTime<Utc>) -> bool {
        self.previous_valid_until.is_some_and(|t| now < t)
    }

    pub fn rotation_due(&self, now: DateTime<Utc>) -> bool {
        self.policy.as_ref().is_some_and(|p| p.auto_rotate) && self.next_rotation_at.is_some_and(|t| now >= t)
    }

    /// Within the notice period before expiry (or past it).
    pub fn expiring(&self, now: DateTime<Utc>) -> bool {
        match (&self.policy, self.expires_at) {
            (Some(p), Some(expires)) => {
                now >= expires - chrono::Duration::from_std(p.notice_period).unwrap_or_default()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RotationPolicy {
        RotationPolicy {
            auto_rotate: true,
            rotation_interval: Duration::from_secs(30 * 86400),
            max_age: Duration::from_secs(90 * 86400),
            notice_period: Duration::from_secs(7 * 86400),
            rotation_window: Duration::from_secs(48 * 3600),
        }
    }

    #[test]
    fn rotation_restarts_the_schedule_and_opens_a_window_that_ends() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut m = SecretMetadata::first("jwt", Some(policy()), t0);
        m.current_version = 1;
        assert!(!m.rotation_due(t0 + chrono::Duration::days(29)));
        assert!(m.rotation_due(t0 + chrono::Duration::days(30)));
        assert!(!m.expiring(t0 + chrono::Duration::days(82)));
        assert!(m.expiring(t0 + chrono::Duration::days(84)));
        let t1 = t0 + chrono::Duration::days(30);
        let r = m.rotated(t1);
        assert_eq!(r.previous_version, Some(1));
        assert_eq!(r.next_rotation_at, Some(t1 + chrono::Duration::days(30)), "recomputed after a rotation");
        assert!(r.in_rotation_window(t1 + chrono::Duration::hours(47)));
        assert!(!r.in_rotation_window(t1 + chrono::Duration::hours(48)), "the window ends");
        assert_eq!(format!("{:?}", SecretValue::new("hunter2")), "<redacted>");
    }

    #[test]
    fn policies_must_be_coherent() {
        assert!(policy().validate("p").is_ok());
        let mut p = policy();
        p.rotation_interval = p.max_age * 2;
        assert!(p.validate("p").is_err());
        let mut p = policy();
        p.rotation_window = p.max_age;
        assert!(p.validate("p").is_err());
    }
}
