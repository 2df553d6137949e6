//! Login, the demo users, and user management over the store.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use hotswap_actors::domain::{
    AuditActor, AuditCategory, AuditResult, NewAuditEntry, Role, TenantId, UserRecord, DEFAULT_TENANT,
};
use hotswap_actors::store::StoreError;
use regex::Regex;
use serde_json::json;
use uuid::Uuid;

use super::jwt::IssuedToken;
use super::password::Password;
use super::{AuthState, Principal};

/// The one answer to every failed login, whatever the reason.
pub const INVALID_CREDENTIALS: &str = "Invalid username or password";

/// bcrypt reads at most this many bytes of a password; longer ones are
/// refused rather than silently cut.
pub const MAX_PASSWORD_BYTES: usize = 72;

#[allow(clippy::expect_used)] // A constant pattern, checked by the tests.
static USERNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$").expect("valid regex"));

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("validation failed")]
    Validation(Vec<String>),
    #[error("{INVALID_CREDENTIALS}")]
    InvalidCredentials,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => UserError::Conflict(m),
            StoreError::NotFound(m) => UserError::NotFound(m),
            StoreError::Unavailable(m) => UserError::Unavailable(m),
            other => UserError::Internal(other.to_string()),
        }
    }
}

/// A demo account, seeded when `auth.demo_users` is on.
pub struct DemoUser {
    pub id: Uuid,
    pub username: &'static str,
    pub password: &'static str,
    pub email: &'static str,
    pub full_name: &'static str,
    pub roles: &'static [Role],
    pub description: &'static str,
}

pub const DEMO_USERS: [DemoUser; 3] = [
    DemoUser {
        id: Uuid::from_u128(1),
        username: "admin",
        password: "Admin123!",
        email: "admin@example.com",
        full_name: "System Administrator",
        roles: &[Role::Admin, Role::Deployer, Role::Viewer],
        description: "Everything: deployments, approvals, users and administration",
    },
    DemoUser {
        id: Uuid::from_u128(2),
        username: "deployer",
        password: "Deploy123!",
        email: "deployer@example.com",
        full_name: "Deployment Engineer",
        roles: &[Role::Deployer, Role::Viewer],
        description: "Creates, steers and rolls back deployments; reads everything else",
    },
    DemoUser {
        id: Uuid::from_u128(3),
        username: "viewer",
        password: "Viewer123!",
        email: "viewer@example.com",
        full_name: "Read-Only User",
        roles: &[Role::Viewer],
        description: "Reads deployments and clusters",
    },
];

/// What a new user is made of, as the API or the command line gives it.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub password: Password,
    pub roles: Vec<String>,
    pub tenant_id: Option<TenantId>,
}

fn check_username(username: &str, errors: &mut Vec<String>) {
    if !USERNAME.is_match(username) {
        errors.push(
            "username must be 3-64 letters, digits, dots, underscores or hyphens, starting with a letter or digit"
                .into(),
        );
    }
}

fn parse_roles(raw: &[String], errors: &mut Vec<String>) -> Vec<Role> {
    if raw.is_empty() {
        errors.push("roles must name at least one of Admin, Deployer, Viewer".into());
    }
    let mut roles = Vec::new();
    for r in raw {
        match r.parse::<Role>() {
            Ok(role) if !roles.contains(&role) => roles.push(role),
            Ok(_) => {}
            Err(e) => errors.push(format!("roles: {e}")),
        }
    }
    roles
}

impl AuthState {
    pub(super) fn check_password(&self, password: &Password, errors: &mut Vec<String>) {
        let min = self.settings.min_password_length;
        let pw = password.expose();
        if pw.chars().count() < min {
            errors.push(format!("password must be at least {min} characters"));
        }
        if pw.len() > MAX_PASSWORD_BYTES {
            errors.push(format!("password must be at most {MAX_PASSWORD_BYTES} bytes"));
        }
        // The document promises no control characters; a password holding
        // one is a paste or encoding mistake, not a stronger secret.
        if pw.chars().any(char::is_control) {
            errors.push("password must not contain control characters".into());
        }
    }

    /// Checks a username and password. Every failure, an unknown user, a bad
    /// password, a disabled or locked account, answers the same and takes
    /// as long: unknown users are checked against a dummy hash.
    pub async fn login(
        &self,
        username: &str,
        password: &Password,
        now: DateTime<Utc>,
        from: &AuditActor,
    ) -> Result<(UserRecord, IssuedToken), UserError> {
        let Some(mut user) = self.store.find_user_by_username(username).await? else {
            self.passwords.verify_dummy(password).await;
            // Not the name itself: people type their password into the wrong field.
            tracing::info!("login refused: no such user");
            let entry = login_entry(DEFAULT_TENANT, from.clone(), "LoginFailed", AuditResult::Failure)
                .message("login refused: no such user")
                .details(json!({ "reason": "unknown user" }));
            self.store.append_audit(&[entry]).await?;
            return Err(UserError::InvalidCredentials);
        };
        let as_user = AuditActor { id: Some(user.id.to_string()), name: user.username.clone(), ..from.clone() };
        let matches = self.passwords.verify(password, &user.password_hash).await;
        let address = from.source_address;
        if self.login_failures.is_locked(&user.username, address).await.map_err(lockout_unreachable)? {
            tracing::info!(user = %user.id, "login refused: account locked for this address");
            let entry = login_entry(user.tenant_id, as_user, "LoginFailed", AuditResult::Denied)
                .resource("User", user.id)
                .message("login refused: account locked for this address")
                .details(json!({ "reason": "account locked for this address" }));
            self.store.append_audit(&[entry]).await?;
            return Err(UserError::InvalidCredentials);
        }
        if !user.is_active || user.is_locked(now) {
            tracing::info!(user = %user.id, active = user.is_active, "login refused: account disabled or locked");
            let reason = if user.is_active { "account locked" } else { "account disabled" };
            let entry = login_entry(user.tenant_id, as_user, "LoginFailed", AuditResult::Denied)
                .resource("User", user.id)
                .message(format!("login refused: {reason}"))
                .details(json!({ "reason": reason }));
            self.store.append_audit(&[entry]).await?;
            return Err(UserError::InvalidCredentials);
        }
        if !matches {
            let entry = login_entry(user.tenant_id, as_user, "LoginFailed", AuditResult::Failure)
                .resource("User", user.id)
                .message("login refused: wrong password")
                .details(json!({ "reason": "wrong password" }));
            let policy = self.lockout_policy();
            let (max, duration) = (self.settings.max_failed_logins, self.settings.lockout_duration);
            if self.login_failures.failed(&user.username, address, max, duration).await.map_err(lockout_unreachable)? {
                let lockout = login_entry(user.tenant_id, entry.actor.clone(), "AccountLocked", AuditResult::Denied)
                    .resource("User", user.id)
                    .message(format!("account '{}' locked for one address after {max} failed logins", user.username))
                    .details(
                        json!({ "scope": "address", "sourceAddress": address, "lockedFor": format!("{duration:?}") }),
                    );
                self.store.append_audit(&[lockout]).await?;
            }
            let after = self.store.record_failed_login(user.tenant_id, user.id, now, &policy, &entry).await?;
            let locked = after.as_ref().is_some_and(|u| u.is_locked(now));
            tracing::info!(user = %user.id, locked, "login refused: wrong password");
            return Err(UserError::InvalidCredentials);
        }
        // A deleted tenant's users sign in no more (a suspended one's still do).
        if user.tenant_id != DEFAULT_TENANT && !self.tenant_is_live(user.tenant_id).await? {
            tracing::info!(user = %user.id, tenant = %user.tenant_id, "login refused: tenant deleted or unknown");
            return Err(UserError::InvalidCredentials);
        }
        let entry = login_entry(user.tenant_id, as_user, "LoginSucceeded", AuditResult::Success)
            .resource("User", user.id)
            .message("login succeeded");
        self.store.record_successful_login(user.tenant_id, user.id, now, &entry).await?;
        if let Err(e) = self.login_failures.succeeded(&user.username, address).await {
            // The count runs out on its own; the login itself stands.
            tracing::warn!(error = %e, "cannot clear the failed-login count");
        }
        user.register_successful_login(now);
        let token = self.tokens.issue(&user, now).map_err(UserError::Internal)?;
        tracing::info!(user = %user.id, tenant = %user.tenant_id, "login succeeded");
        Ok((user, token))
    }

    /// Revokes the caller's token until it would have expired.
    pub async fn logout(&self, principal: &Principal, from: &AuditActor) -> Result<(), UserError> {
        let entry = login_entry(principal.tenant_id, from.clone(), "Logout", AuditResult::Success)
            .resource("User", principal.user_id)
            .message("logged out; the token is revoked")
            .details(json!({ "jti": principal.jti, "expiresAt": principal.expires_at }));
        self.store.revoke_token(principal.tenant_id, &principal.jti, principal.expires_at, &entry).await?;
        if let Some(cache) = &self.cache {
            cache.forget_token(principal.tenant_id, &principal.jti).await;
        }
        self.signals.user_changed(principal.tenant_id, principal.user_id).await;
        tracing::info!(user = %principal.user_id, "logged out");
        Ok(())
    }

    /// Creates the demo users that do not exist yet (an existing one keeps
    /// whatever was changed about it).
    pub async fn seed_demo_users(&self) -> Result<(), UserError> {
        for demo in &DEMO_USERS {
            if self.store.find_user_by_username(demo.username).await?.is_some() {
                continue;
            }
            let hash = self
                .passwords
                .hash(&Password::new(demo.password))
                .await
                .map_err(|e| UserError::Internal(e.to_string()))?;
            let user = UserRecord {
                id: demo.id,
                tenant_id: DEFAULT_TENANT,
                username: demo.username.into(),
                email: demo.email.into(),
                full_name: demo.full_name.into(),
                password_hash: hash,
                roles: demo.roles.to_vec(),
                is_active: true,
                failed_login_attempts: 0,
                lockout_end: None,
                created_at: Utc::now(),
                last_login_at: None,
                token_generation: 0,
            };
            let entry = user_entry(&AuditActor::system(), &user, "UserCreated", "demo user seeded (auth.demo_users)");
            match self.store.create_user(&user, &entry).await {
                // Another replica seeded it first.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!("demo users are enabled (auth.demo_users); never use them in production");
        Ok(())
    }

    /// Where demo users are off, disables the demo accounts a database may
    /// still hold from a development run, so that their published passwords
    /// open nothing. Users created otherwise never have the demo ids.
    pub async fn retire_demo_users(&self) -> Result<(), UserError> {
        for demo in &DEMO_USERS {
            let Some(mut user) = self.store.get_user(DEFAULT_TENANT, demo.id).await? else { continue };
            if user.is_active {
                user.is_active = false;
                let entry = user_entry(
                    &AuditActor::system(),
                    &user,
                    "UserDisabled",
                    "demo user disabled (auth.demo_users is off)",
                );
                self.store.update_user(&user, &entry).await?;
                tracing::warn!(
                    username = demo.username,
                    "disabled a demo user left in the store (auth.demo_users is off)"
                );
            }
        }
        Ok(())
    }

    /// Creates a user. `tenant_id` defaults to the creator's tenant; naming
    /// another one is for administrators of the default (operator) tenant.
    /// `creator` is `None` on the command line.
    pub async fn create_user(
        &self,
        creator: Option<&Principal>,
        new: NewUser,
        by: &AuditActor,
    ) -> Result<UserRecord, UserError> {
        let tenant = match (new.tenant_id, creator) {
            (Some(t), Some(c)) if t != c.tenant_id && c.tenant_id != DEFAULT_TENANT => {
                return Err(UserError::Forbidden(
                    "only administrators of the default tenant create users elsewhere".into(),
                ))
            }
            (Some(t), _) => t,
            (None, Some(c)) => c.tenant_id,
            (None, None) => DEFAULT_TENANT,
        };
        // Every user belongs to a tenant that exists (the system tenant is seeded at start-up).
        if tenant != DEFAULT_TENANT {
            match self.store.get_tenant(tenant).await? {
                None => return Err(UserError::Validation(vec![format!("tenantId {tenant} names no tenant")])),
                Some(t) if !t.status.is_live() => {
                    return Err(UserError::Validation(vec![format!(
                        "tenantId {tenant} names tenant '{}', which is deleted: a deleted tenant gets no new users",
                        t.subdomain
                    )]))
                }
                Some(_) => {}
            }
        }
        let mut errors = Vec::new();
        let username = new.username;
        check_username(&username, &mut errors);
        // Username and email are not trimmed: the document's patterns refuse
        // white space, and so does the server.
        let email = new.email;
        if !hotswap_actors::domain::is_email(&email) {
            errors.push("email must be a valid email address".into());
        }
        let full_name = new.full_name.unwrap_or_default().trim().to_string();
        if full_name.chars().count() > 200 {
            errors.push("fullName must be at most 200 characters".into());
        }
        self.check_password(&new.password, &mut errors);
        let roles = parse_roles(&new.roles, &mut errors);
        if !errors.is_empty() {
            return Err(UserError::Validation(errors));
        }
        let hash = self.passwords.hash(&new.password).await.map_err(|e| UserError::Internal(e.to_string()))?;
        let user = UserRecord {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            username,
            email,
            full_name,
            password_hash: hash,
            roles,
            is_active: true,
            failed_login_attempts: 0,
            lockout_end: None,
            created_at: Utc::now(),
            last_login_at: None,
            token_generation: 0,
        };
        let entry = user_entry(by, &user, "UserCreated", format!("user '{}' created", user.username));
        match self.store.create_user(&user, &entry).await {
            Ok(()) => {}
            Err(StoreError::Conflict(m)) => {
                return Err(UserError::Conflict(self.taken_by_deleted(&user.username, m).await))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user = %user.id, tenant = %tenant, by = ?creator.map(|c| c.user_id), "user created");
        Ok(user)
    }

    /// The refusal of a username that is taken, saying so when its holder
    /// belongs to a deleted tenant: usernames are unique across tenants and
    /// a deleted tenant keeps its users, so the name stays taken for good.
    async fn taken_by_deleted(&self, username: &str, refusal: String) -> String {
        let Ok(Some(holder)) = self.store.find_user_by_username(username).await else { return refusal };
        if !holder.username.eq_ignore_ascii_case(username)
            || self.tenant_is_live(holder.tenant_id).await.unwrap_or(true)
        {
            return refusal;
        }
        format!(
            "username '{username}' belongs to a user of tenant {}, which is deleted; a deleted tenant keeps its users, \
             and usernames are unique across tenants: choose another username",
            holder.tenant_id
        )
    }

    async fn tenant_is_live(&self, tenant: TenantId) -> Result<bool, UserError> {
        Ok(self.store.get_tenant(tenant).await?.is_some_and(|t| t.status.is_live()))
    }

    pub async fn list_users(&self, tenant: TenantId) -> Result<Vec<UserRecord>, UserError> {
        Ok(self.store.list_users(tenant).await?)
    }

    pub async fn get_user(&self, tenant: TenantId, id: Uuid) -> Result<UserRecord, UserError> {
        self.store.get_user(tenant, id).await?.ok_or_else(|| UserError::NotFound(format!("User {id} not found")))
    }

    /// Changes user `id` of `tenant` (the caller's own, or the one a system
    /// Admin acts for) on behalf of `actor`.
    pub(super) async fn change(
        &self,
        actor: &Principal,
        by: &AuditActor,
        tenant: TenantId,
        id: Uuid,
        what: &str,
        apply: impl FnOnce(&mut UserRecord),
    ) -> Result<UserRecord, UserError> {
        let mut user = self.get_user(tenant, id).await?;
        apply(&mut user);
        let event = match what {
            "enabled" => "UserEnabled",
            "disabled" => "UserDisabled",
            "roles" => "UserRolesChanged",
            "own password" => "UserPasswordChanged",
            _ => "UserPasswordReset",
        };
        let entry = user_entry(by, &user, event, format!("user '{}': {what} changed", user.username));
        self.store.update_user(&user, &entry).await?;
        if let Some(cache) = &self.cache {
            cache.forget_user(user.tenant_id, user.id).await;
        }
        self.signals.user_changed(user.tenant_id, user.id).await;
        tracing::info!(user = %id, by = %actor.user_id, change = what, "user changed");
        Ok(user)
    }

    /// Enables or disables a user; a disabled user's tokens stop working at once.
    pub async fn set_active(
        &self,
        actor: &Principal,
        by: &AuditActor,
        tenant: TenantId,
        id: Uuid,
        active: bool,
    ) -> Result<UserRecord, UserError> {
        if !active && id == actor.user_id {
            return Err(UserError::Conflict("you cannot disable your own account".into()));
        }
        self.change(actor, by, tenant, id, if active { "enabled" } else { "disabled" }, |u| {
            // Only a change ends the tokens: disabling a disabled user again
            // leaves the generation as it is.
            if u.is_active && !active {
                u.token_generation = u.token_generation.saturating_add(1);
            }
            u.is_active = active;
        })
        .await
    }

    pub async fn set_roles(
        &self,
        actor: &Principal,
        by: &AuditActor,
        tenant: TenantId,
        id: Uuid,
        raw: &[String],
    ) -> Result<UserRecord, UserError> {
        let mut errors = Vec::new();
        let roles = parse_roles(raw, &mut errors);
        if !errors.is_empty() {
            return Err(UserError::Validation(errors));
        }
        if id == actor.user_id && !roles.iter().any(|r| r.grants(Role::Admin)) {
            return Err(UserError::Conflict("you cannot remove your own Admin role".into()));
        }
        self.change(actor, by, tenant, id, "roles", |u| u.roles = roles).await
    }

    /// Sets a new password and lifts any lockout.
    pub async fn reset_password(
        &self,
        actor: &Principal,
        by: &AuditActor,
        tenant: TenantId,
        id: Uuid,
        password: &Password,
    ) -> Result<(), UserError> {
        let mut errors = Vec::new();
        self.check_password(password, &mut errors);
        if !errors.is_empty() {
            return Err(UserError::Validation(errors));
        }
        // 404 before the (slow) hash when the user is not in the tenant.
        self.get_user(tenant, id).await?;
        let hash = self.passwords.hash(password).await.map_err(|e| UserError::Internal(e.to_string()))?;
        self.change(actor, by, tenant, id, "password", |u| {
            u.password_hash = hash;
            u.failed_login_attempts = 0;
            u.lockout_end = None;
        })
        .await
        .map(|_| ())
    }
}

/// The shared lockout cannot be read: logins fail closed.
pub(super) fn lockout_unreachable(e: crate::redis::RedisDown) -> UserError {
    tracing::warn!(error = %e, "refusing a login: the shared lockout cannot be checked");
    UserError::Unavailable("logins are paused while the shared lockout cannot be checked".into())
}

fn login_entry(tenant: TenantId, actor: AuditActor, event: &str, result: AuditResult) -> NewAuditEntry {
    NewAuditEntry::new(tenant, actor, AuditCategory::Authentication, event).result(result)
}

/// A user-management entry; never carries the password or its hash.
fn user_entry(by: &AuditActor, user: &UserRecord, event: &str, message: impl Into<String>) -> NewAuditEntry {
    let roles: Vec<_> = user.roles.iter().map(|r| r.as_str()).collect();
    NewAuditEntry::new(user.tenant_id, by.clone(), AuditCategory::UserManagement, event)
        .resource("User", user.id)
        .message(message)
        .details(json!({ "username": user.username, "roles": roles, "isActive": user.is_active }))
}
