use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TenantId;

/// What a user may do. Each role includes the ones below it: an Admin may do
/// everything a Deployer may, and a Deployer everything a Viewer may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Viewer,
    Deployer,
    Admin,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role '{0}' (expected Admin, Deployer or Viewer)")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Deployer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Deployer => "Deployer",
            Role::Viewer => "Viewer",
        }
    }

    /// Whether holding `self` is enough for something that needs `needed`.
    pub fn grants(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    /// Case-insensitive, so that `admin` on a command line works.
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| UnknownRole(s.into()))
    }
}

/// A person or service account that can log in.
///
/// `password_hash` is a bcrypt hash; `Debug` leaves it out so that it never
/// reaches a log line.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub password_hash: String,
    /// Distinct, in the order given.
    pub roles: Vec<Role>,
    pub is_active: bool,
    pub failed_login_attempts: u32,
    pub lockout_end: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Raised each time the user is disabled: tokens carry the generation
    /// they were issued in (within their password binding), so that
    /// enabling the user again does not bring back the tokens it had before.
    #[serde(default)]
    pub token_generation: u32,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("full_name", &self.full_name)
            .field("password_hash", &"<redacted>")
            .field("roles", &self.roles)
            .field("is_active", &self.is_active)
            .field("failed_login_attempts", &self.failed_login_attempts)
            .field("lockout_end", &self.lockout_end)
            .field("created_at", &self.created_at)
            .field("last_login_at", &self.last_login_at)
            .finish()
    }
}

/// When repeated bad passwords lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failed_attempts: u32,
    pub duration: Duration,
}

impl UserRecord {
    /// Whether the user holds a role that grants `needed`.
    pub fn has_role(&self, needed: Role) -> bool {
        self.roles.iter().any(|r| r.grants(needed))
    }

    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.lockout_end.is_some_and(|end| end > now)
    }

    /// Counts a bad password. An expired lockout first clears the count; the
    /// attempt that reaches the policy's maximum locks the account.
    pub fn register_failed_login(&mut self, now: DateTime<Utc>, policy: &LockoutPolicy) {
        if self.is_locked(now) {
            return;
        }
        if self.lockout_end.is_some() {
            self.lockout_end = None;
            self.failed_login_attempts = 0;
        }
        self.failed_login_attempts = self.failed_login_attempts.saturating_add(1);
        if self.failed_login_attempts >= policy.max_failed_attempts.max(1) {
            let lock = chrono::Duration::from_std(policy.duration).unwrap_or(chrono::Duration::MAX);
            self.lockout_end = Some(now.checked_add_signed(lock).unwrap_or(DateTime::<Utc>::MAX_UTC));
        }
    }

    /// A good password clears the count and any lockout.
    pub fn register_successful_login(&mut self, now: DateTime<Utc>) {
        self.failed_login_attempts = 0;
        self.lockout_end = None;
        self.last_login_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            username: "u".into(),
            email: "u@example.com".into(),
            full_name: String::new(),
            password_hash: "$2b$04$secret".into(),
            roles: vec![Role::Deployer],
            is_active: true,
            failed_login_attempts: 0,
            lockout_end: None,
            created_at: Utc::now(),
            last_login_at: None,
            token_generation: 0,
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        let u = user();
        assert!(u.has_role(Role::Viewer));
        assert!(u.has_role(Role::Deployer));
        assert!(!u.has_role(Role::Admin));
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn lockout_counts_locks_and_expires() {
        let policy = LockoutPolicy { max_failed_attempts: 3, duration: Duration::from_secs(60) };
        let now = Utc::now();
        let mut u = user();
        for _ in 0..2 {
            u.register_failed_login(now, &policy);
        }
        assert!(!u.is_locked(now));
        u.register_failed_login(now, &policy);
        assert!(u.is_locked(now));
        // Attempts during the lockout change nothing.
        u.register_failed_login(now, &policy);
        assert_eq!(u.failed_login_attempts, 3);
        let later = now + chrono::Duration::seconds(61);
        assert!(!u.is_locked(later));
        u.register_failed_login(later, &policy);
        assert_eq!(u.failed_login_attempts, 1);
        assert!(u.lockout_end.is_none());
        u.register_successful_login(later);
        assert_eq!(u.failed_login_attempts, 0);
        assert_eq!(u.last_login_at, Some(later));
    }

    #[test]
    fn debug_hides_the_hash() {
        assert!(!format!("{:?}", user()).contains("secret"));
    }
}
