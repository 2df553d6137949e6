//! /api/v1/users: user management for Admins, within their tenant (or the
//! one a system Admin names with X-Tenant-Id).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::authentication::{RoleName, UserInfo};
use super::count_params::page_within;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::password::Password;
use crate::auth::users::NewUser;
use crate::auth::Audited;
use crate::auth::{AuthState, Caller, RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_user => Access::Role(RequireRole::ADMIN),
    list_users => Access::Role(RequireRole::ADMIN),
    get_user => Access::Role(RequireRole::ADMIN),
    disable_user => Access::Role(RequireRole::ADMIN),
    enable_user => Access::Role(RequireRole::ADMIN),
    set_user_roles => Access::Role(RequireRole::ADMIN),
    reset_user_password => Access::Role(RequireRole::ADMIN),
}

/// Users per page of the list when the request names no size, and the most it may name.
const DEFAULT_USER_PAGE: u32 = 100;
const MAX_USER_PAGE: u32 = 1000;

/// Paths that more than one operation serves.
const PATH_USERS: &str = "/api/v1/users";

/// An id that does not parse cannot name a user: 404 like any unknown id.
fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("User {raw} not found")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(example = "jdoe", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")]
    pub username: String,
    #[schema(
        example = "jdoe@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    pub email: String,
    #[schema(max_length = 200)]
    pub full_name: Option<String>,
    /// At least 12 characters (auth.min_password_length), at most 72 bytes.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 72, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub password: Password,
    #[schema(value_type = Vec<RoleName>, min_items = 1)]
    pub roles: Vec<String>,
    /// Defaults to the tenant the request acts in (the caller's, or the one
    /// X-Tenant-Id names); another one needs an Admin of the default tenant.
    pub tenant_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolesBody {
    #[schema(value_type = Vec<RoleName>, min_items = 1)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordBody {
    /// At least 12 characters (auth.min_password_length), at most 72 bytes.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 72, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub password: Password,
}

/// Create a user.
#[utoipa::path(
    post,
    path = PATH_USERS,
    tag = "users",
    request_body = CreateUserBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Created", body = UserInfo,
            headers(("Location" = String, description = "The new user's URL"))),
        (status = 400, description = "Invalid fields, all reported together", body = ErrorBody),
        (status = 403, description = "Not an Admin, or another tenant named without the right", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
    )
)]
pub async fn create_user(
    auth: web::Data<AuthState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    body: web::Json<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    // The user goes to the tenant the request acts in, unless the body names
    // one; a body and an X-Tenant-Id that disagree are refused, not guessed.
    let acting_for_another = tenant.0 != caller.0.tenant_id;
    let tenant_id = match b.tenant_id {
        Some(named) if acting_for_another && named != tenant.0 => {
            return Err(ApiError::validation(vec![format!(
                "tenantId {named} is not the tenant X-Tenant-Id names ({})",
                tenant.0
            )]))
        }
        Some(named) => Some(named),
        None => Some(tenant.0),
    };
    let new = NewUser {
        username: b.username,
        email: b.email,
        full_name: b.full_name,
        password: b.password,
        roles: b.roles,
        tenant_id,
    };
    let user = auth.create_user(Some(&caller.0), new, &audited.0).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
        .json(UserInfo::from(&user)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserListQuery {
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// Users per page: at most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// Only the user of this username (any case); leave it out for every user.
    #[param(min_length = 1)]
    username: Option<String>,
}

/// The users of the caller's tenant, by username, one page at a time.
#[utoipa::path(
    get,
    path = PATH_USERS,
    tag = "users",
    params(UserListQuery),
    responses(
        Protected,
        (status = 200, description = "Users, by username", body = Vec<UserInfo>, headers(
            ("X-Total-Count" = u64, description = "Users that pass the filter"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Invalid paging, or an empty username", body = ErrorBody),
    )
)]
pub async fn list_users(
    auth: web::Data<AuthState>,
    tenant: Tenant,
    query: Query<UserListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let asked = page_within(q.page, q.page_size, DEFAULT_USER_PAGE, MAX_USER_PAGE)?;
    // An empty name matches nobody: more likely a client that left a
    // variable unset than one asking for no user.
    if q.username.as_deref() == Some("") {
        return Err(ApiError::validation(vec![
            "username must not be empty: leave it out to list every user".to_string()
        ]));
    }
    // A tenant's users are few beside its runs: the store reads them all
    // (in username order) and the page is cut here, as for agents.
    let mut users = auth.list_users(tenant.0).await?;
    if let Some(name) = q.username.as_deref() {
        users.retain(|u| u.username.eq_ignore_ascii_case(name));
    }
    let page: Vec<UserInfo> = asked.cut(&users).map(UserInfo::from).collect();
    Ok(asked.answer(users.len()).json(page))
}

/// One user of the caller's tenant.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        Protected,
        (status = 200, description = "The user", body = UserInfo),
        (status = 404, description = "No such user in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn get_user(
    auth: web::Data<AuthState>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.get_user(tenant.0, user_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(UserInfo::from(&user)))
}

/// Disable a user: logins fail and existing tokens stop working.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/disable",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        Protected,
        (status = 200, description = "The user, disabled", body = UserInfo),
        (status = 404, description = "No such user in the caller's tenant", body = ErrorBody),
        (status = 409, description = "The caller's own account", body = ErrorBody),
    )
)]
pub async fn disable_user(
    auth: web::Data<AuthState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.set_active(&caller.0, &audited.0, tenant.0, user_id(&id)?, false).await?;
    Ok(HttpResponse::Ok().json(UserInfo::from(&user)))
}

/// Enable a disabled user again.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/enable",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        Protected,
        (status = 200, description = "The user, enabled", body = UserInfo),
        (status = 404, description = "No such user in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn enable_user(
    auth: web::Data<AuthState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.set_active(&caller.0, &audited.0, tenant.0, user_id(&id)?, true).await?;
    Ok(HttpResponse::Ok().json(UserInfo::from(&user)))
}

/// Replace a user's roles; they apply to the user's existing tokens at once.
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/roles",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = RolesBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The user with the new roles", body = UserInfo),
        (status = 400, description = "Unknown or no roles, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such user in the caller's tenant", body = ErrorBody),
        (status = 409, description = "Removing the caller's own Admin role", body = ErrorBody),
    )
)]
pub async fn set_user_roles(
    auth: web::Data<AuthState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: web::Path<String>,
    body: web::Json<RolesBody>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.set_roles(&caller.0, &audited.0, tenant.0, user_id(&id)?, &body.roles).await?;
    Ok(HttpResponse::Ok().json(UserInfo::from(&user)))
}

/// Set a new password for a user; lifts a lockout.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/password",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = PasswordBody,
    responses(
        Protected, JsonBody,
        (status = 204, description = "The password is changed"),
        (status = 400, description = "Password too short or too long, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such user in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn reset_user_password(
    auth: web::Data<AuthState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: web::Path<String>,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    auth.reset_password(&caller.0, &audited.0, tenant.0, user_id(&id)?, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}
