//! Users and revoked tokens.

use super::audit::insert_audit;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::NewAuditEntry;
use hotswap_actors::domain::{LockoutPolicy, Role, TenantId, TenantStatus, UserRecord};
use hotswap_actors::store::{RevokedTokenStore, StoreError, StoreResult, TokenHolder, UserStore};
use uuid::Uuid;

use super::errors::Failure;
use super::schema::{revoked_tokens, tenants, users};
use super::PgStore;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = users, primary_key(id), treat_none_as_null = true)]
struct UserRow<'a> {
    id: Uuid,
    tenant_id: Uuid,
    username: &'a str,
    email: &'a str,
    full_name: &'a str,
    password_hash: &'a str,
    roles: Vec<Option<&'static str>>,
    is_active: bool,
    failed_login_attempts: i32,
    lockout_end: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
    token_generation: i32,
}

impl<'a> UserRow<'a> {
    fn new(u: &'a UserRecord) -> Self {
        UserRow {
            id: u.id,
            tenant_id: u.tenant_id,
            username: &u.username,
            email: &u.email,
            full_name: &u.full_name,
            password_hash: &u.password_hash,
            roles: u.roles.iter().map(|r| Some(r.as_str())).collect(),
            is_active: u.is_active,
            failed_login_attempts: i32::try_from(u.failed_login_attempts).unwrap_or(i32::MAX),
            lockout_end: u.lockout_end,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            token_generation: i32::try_from(u.token_generation).unwrap_or(i32::MAX),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Pg))]
struct StoredUser {
    id: Uuid,
    tenant_id: Uuid,
    username: String,
    email: String,
    full_name: String,
    password_hash: String,
    roles: Vec<Option<String>>,
    is_active: bool,
    failed_login_attempts: i32,
    lockout_end: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
    token_generation: i32,
}

impl StoredUser {
    fn decode(self) -> StoreResult<UserRecord> {
        let roles = self
            .roles
            .into_iter()
            .flatten()
            .map(|r| r.parse::<Role>().map_err(|e| StoreError::Other(format!("stored {e}"))))
            .collect::<StoreResult<Vec<Role>>>()?;
        Ok(UserRecord {
            id: self.id,
            tenant_id: self.tenant_id,
            username: self.username,
            email: self.email,
            full_name: self.full_name,
            password_hash: self.password_hash,
            roles,
            is_active: self.is_active,
            failed_login_attempts: u32::try_from(self.failed_login_attempts).unwrap_or(0),
            lockout_end: self.lockout_end,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
            token_generation: u32::try_from(self.token_generation).unwrap_or(0),
        })
    }
}

/// Unique-index violations as the conflicts the store contract names.
fn conflict(e: DbError, user: &UserRecord) -> Failure {
    match &e {
        DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => match info.constraint_name() {
            Some("users_username_unique") => {
                StoreError::Conflict(format!("username '{}' is taken", user.username)).into()
            }
            Some("users_email_per_tenant") => StoreError::Conflict(format!("email '{}' is taken", user.email)).into(),
            _ => StoreError::Conflict(format!("user {} exists", user.id)).into(),
        },
        _ => Failure::Db(e),
    }
}

async fn load_user(conn: &mut AsyncPgConnection, tenant: TenantId, id: Uuid) -> Result<Option<StoredUser>, DbError> {
    users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .select(StoredUser::as_select())
        .first(conn)
        .await
        .optional()
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, DbError, _>(async |conn| {
                diesel::insert_into(users::table).values(UserRow::new(user)).execute(conn).await?;
                insert_audit(conn, std::slice::from_ref(audit)).await
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(conn, conflict(e, user))),
        }
    }

    async fn get_user(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<UserRecord>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        match load_user(conn, tenant, id).await {
            Ok(found) => found.map(StoredUser::decode).transpose(),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // The one query not scoped by tenant: login does not know it yet, and
        // users_username_unique keeps names unique across tenants.
        let found = users::table
            .filter(lower(users::username).eq(lower(username)))
            .select(StoredUser::as_select())
            .first(conn)
            .await
            .optional();
        match found {
            Ok(found) => found.map(StoredUser::decode).transpose(),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<UserRecord>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let found = users::table
            .filter(users::tenant_id.eq(tenant))
            .order((lower(users::username), users::id))
            .select(StoredUser::as_select())
            .load(conn)
            .await;
        match found {
            Ok(rows) => rows.into_iter().map(StoredUser::decode).collect(),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn update_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, DbError, _>(async |conn| {
                let key = users::table.filter(users::tenant_id.eq(user.tenant_id)).filter(users::id.eq(user.id));
                let updated = diesel::update(key).set(UserRow::new(user)).execute(conn).await?;
                if updated > 0 {
                    insert_audit(conn, std::slice::from_ref(audit)).await?;
                }
                Ok(updated)
            })
            .await;
        match result {
            Ok(0) => Err(StoreError::NotFound(format!("user {} not found", user.id))),
            Ok(_) => Ok(()),
            Err(e) => Err(self.failure(conn, conflict(e, user))),
        }
    }

    async fn record_failed_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<UserRecord>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // The row lock makes concurrent bad passwords count one after another.
        conn.transaction::<_, Failure, _>(async |conn| {
            let Some(stored) = users::table
                .filter(users::tenant_id.eq(tenant))
                .filter(users::id.eq(id))
                .select(StoredUser::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(None);
            };
            let mut user = stored.decode()?;
            let was_locked = user.is_locked(now);
            user.register_failed_login(now, policy);
            diesel::update(users::table.filter(users::tenant_id.eq(tenant)).filter(users::id.eq(id)))
                .set((
                    users::failed_login_attempts.eq(i32::try_from(user.failed_login_attempts).unwrap_or(i32::MAX)),
                    users::lockout_end.eq(user.lockout_end),
                ))
                .execute(conn)
                .await?;
            let mut entries = vec![audit.clone()];
            if !was_locked && user.is_locked(now) {
                entries.push(hotswap_actors::audit::lockout_entry(audit, &user));
            }
            insert_audit(conn, &entries).await?;
            Ok(Some(user))
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn record_successful_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, DbError, _>(async |conn| {
                diesel::update(users::table.filter(users::tenant_id.eq(tenant)).filter(users::id.eq(id)))
                    .set((
                        users::failed_login_attempts.eq(0),
                        users::lockout_end.eq(None::<DateTime<Utc>>),
                        users::last_login_at.eq(Some(now)),
                    ))
                    .execute(conn)
                    .await?;
                insert_audit(conn, std::slice::from_ref(audit)).await
            })
            .await;
        result.map_err(|e| self.db_error(conn, e))
    }
}

#[async_trait]
impl RevokedTokenStore for PgStore {
    async fn revoke_token(
        &self,
        tenant: TenantId,
        jti: &str,
        expires_at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, DbError, _>(async |conn| {
                diesel::insert_into(revoked_tokens::table)
                    .values((
                        revoked_tokens::tenant_id.eq(tenant),
                        revoked_tokens::jti.eq(jti),
                        revoked_tokens::expires_at.eq(expires_at),
                    ))
                    .on_conflict((revoked_tokens::tenant_id, revoked_tokens::jti))
                    .do_update()
                    .set(revoked_tokens::expires_at.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                        "GREATEST(revoked_tokens.expires_at, excluded.expires_at)",
                    )))
                    .execute(conn)
                    .await?;
                insert_audit(conn, std::slice::from_ref(audit)).await
            })
            .await;
        result.map_err(|e| self.db_error(conn, e))
    }

    async fn is_token_revoked(&self, tenant: TenantId, jti: &str) -> StoreResult<bool> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let found = diesel::select(diesel::dsl::exists(
            revoked_tokens::table.filter(revoked_tokens::tenant_id.eq(tenant)).filter(revoked_tokens::jti.eq(jti)),
        ))
        .get_result::<bool>(conn)
        .await;
        found.map_err(|e| self.db_error(conn, e))
    }

    async fn token_holder(&self, tenant: TenantId, user_id: Uuid, jti: &str) -> StoreResult<TokenHolder> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let revoked = diesel::dsl::exists(
            revoked_tokens::table.filter(revoked_tokens::tenant_id.eq(tenant)).filter(revoked_tokens::jti.eq(jti)),
        );
        let tenant_status = tenants::table.filter(tenants::tenant_id.eq(tenant)).select(tenants::status).single_value();
        // The user's row with the revocation and the tenant's status beside
        // it: one statement for what every authenticated request asks.
        let found = users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::id.eq(user_id))
            .select((StoredUser::as_select(), revoked, tenant_status))
            .first::<(StoredUser, bool, Option<String>)>(conn)
            .await
            .optional();
        match found {
            Ok(Some((user, revoked, status))) => Ok(TokenHolder {
                revoked,
                user: Some(user.decode()?),
                tenant_status: status.as_deref().and_then(TenantStatus::parse),
            }),
            // No such user (rare: deleted, or a token of another database):
            // the revocation is still asked, as it decides the answer first.
            Ok(None) => {
                drop(pooled);
                let revoked = self.is_token_revoked(tenant, jti).await?;
                Ok(TokenHolder { revoked, user: None, tenant_status: None })
            }
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result =
            diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(now))).execute(conn).await;
        result.map(|n| n as u64).map_err(|e| self.db_error(conn, e))
    }
}
