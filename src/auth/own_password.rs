//! A user changing its own password, giving the current one. Every user is
//! created with a password an Admin typed; this is how it stops being known
//! to the Admin. The change ends the user's tokens as an Admin's reset does
//! (they were issued for the old password hash), and answers a new token so
//! that the caller stays signed in.

use chrono::{DateTime, Utc};
use hotswap_actors::domain::{AuditActor, AuditCategory, AuditResult, NewAuditEntry, UserRecord};
use serde_json::json;

use super::jwt::IssuedToken;
use super::password::Password;
use super::users::{lockout_unreachable, UserError};
use super::{AuthState, Principal};

/// Why a change is refused when the current password is not the user's.
pub const WRONG_CURRENT_PASSWORD: &str = "currentPassword is not this account's password";

impl AuthState {
    /// Sets `new` as the caller's password when `current` is its password
    /// now. A wrong `current` counts as a failed login from `from`'s address
    /// (five lock the account for that address, as at login), so that a
    /// stolen token cannot be used to guess the password faster than login
    /// allows; the route is in the login rate group too.
    pub async fn change_own_password(
        &self,
        principal: &Principal,
        from: &AuditActor,
        current: &Password,
        new: &Password,
        now: DateTime<Utc>,
    ) -> Result<(UserRecord, IssuedToken), UserError> {
        let mut errors = Vec::new();
        self.check_password(new, &mut errors);
        let mut errors: Vec<String> = errors.into_iter().map(|e| format!("new{}", capitalised(&e))).collect();
        if current.expose() == new.expose() {
            errors.push("newPassword must differ from currentPassword".into());
        }
        if !errors.is_empty() {
            return Err(UserError::Validation(errors));
        }
        let user = self.get_user(principal.tenant_id, principal.user_id).await?;
        let address = from.source_address;
        let matches = self.passwords.verify(current, &user.password_hash).await;
        let locked = self.login_failures.is_locked(&user.username, address).await.map_err(lockout_unreachable)?;
        if !matches || locked {
            let entry = NewAuditEntry::new(
                user.tenant_id,
                from.clone(),
                AuditCategory::Authentication,
                "PasswordChangeRefused",
            )
            .result(AuditResult::Failure)
            .resource("User", user.id)
            .message("password change refused: the current password did not match")
            .details(
                json!({ "reason": if locked { "account locked for this address" } else { "wrong current password" } }),
            );
            self.store.append_audit(&[entry]).await?;
            if !locked {
                let (max, duration) = (self.settings.max_failed_logins, self.settings.lockout_duration);
                self.login_failures
                    .failed(&user.username, address, max, duration)
                    .await
                    .map_err(lockout_unreachable)?;
            }
            return Err(UserError::Validation(vec![WRONG_CURRENT_PASSWORD.into()]));
        }
        let hash = self.passwords.hash(new).await.map_err(|e| UserError::Internal(e.to_string()))?;
        let changed = self
            .change(principal, from, principal.tenant_id, principal.user_id, "own password", |u| {
                u.password_hash = hash;
                u.failed_login_attempts = 0;
                u.lockout_end = None;
            })
            .await?;
        let token = self.tokens.issue(&changed, now).map_err(UserError::Internal)?;
        Ok((changed, token))
    }
}

/// "password must be …" → "Password must be …", for "newPassword must be …".
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
