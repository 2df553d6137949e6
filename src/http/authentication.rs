//! /api/v1/authentication: log in, who am I, log out, demo credentials.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{Role, UserRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::responses::{JsonBody, Protected, Public};
use super::route_table::{api_module, Access};
use crate::auth::password::Password;
use crate::auth::rate_limit::{too_many, Decision, RateLimits};
use crate::auth::users::DEMO_USERS;
use crate::auth::Audited;
use crate::auth::{AuthState, Caller, RequireRole};
use crate::web::{ApiError, ErrorBody};

api_module! {
    login => Access::Public,
    current_user => Access::Role(RequireRole::VIEWER),
    logout => Access::Role(RequireRole::VIEWER),
    change_own_password => Access::Role(RequireRole::VIEWER),
    demo_credentials => Access::Public,
}

/// Both fields are optional here so that a missing one gets the same 400 as a blank one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    #[schema(required, nullable = false, example = "deployer", pattern = "\\S")]
    pub username: Option<String>,
    #[schema(required, nullable = false, value_type = String, format = Password, example = "Deploy123!", min_length = 1)]
    pub password: Option<Password>,
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: String,
    #[schema(value_type = Vec<RoleName>)]
    pub roles: Vec<&'static str>,
    pub tenant_id: Uuid,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// One of the three roles.
#[derive(ToSchema)]
#[allow(dead_code)] // Only describes the strings in the document.
pub enum RoleName {
    Admin,
    Deployer,
    Viewer,
}

impl From<&UserRecord> for UserInfo {
    fn from(u: &UserRecord) -> Self {
        UserInfo {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            full_name: u.full_name.clone(),
            roles: u.roles.iter().copied().map(Role::as_str).collect(),
            tenant_id: u.tenant_id,
            is_active: u.is_active,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// A bearer token for the Authorization header.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserInfo,
}

/// The caller's current password and the one to replace it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordBody {
    #[schema(value_type = String, format = Password, example = "the-password-i-have-now", min_length = 1)]
    pub current_password: Password,
    /// At least 12 characters (auth.min_password_length), at most 72 bytes.
    #[schema(value_type = String, format = Password, example = "a-new-long-password", min_length = 12, max_length = 72, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub new_password: Password,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DemoCredential {
    pub username: &'static str,
    pub password: &'static str,
    #[schema(value_type = Vec<RoleName>)]
    pub roles: Vec<&'static str>,
    pub description: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DemoCredentials {
    pub message: &'static str,
    pub users: Vec<DemoCredential>,
}

/// Log in with a username and password.
///
/// Every failure answers 401 with the same message, whether the user exists or
/// not. Five bad passwords in a row from one address lock the account for that
/// address for 15 minutes (configurable); during the lockout the answer is the
/// same 401, even to the right password.
#[utoipa::path(
    post,
    path = "/api/v1/authentication/login",
    tag = "authentication",
    request_body = LoginBody,
    responses(
        Public, JsonBody,
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Username or password blank, or a malformed body", body = ErrorBody),
        (status = 401, description = "Invalid username or password", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address, or for this username from this address", body = ErrorBody),
    )
)]
pub async fn login(
    req: HttpRequest,
    auth: web::Data<AuthState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let username = body.username.as_deref().map(str::trim).unwrap_or_default();
    let password = body.password.filter(|p| !p.expose().is_empty());
    let (false, Some(password)) = (username.is_empty(), password) else {
        return Err(ApiError::BadRequest("Username and password are required".into()));
    };
    if let Some(limits) = req.app_data::<web::Data<RateLimits>>() {
        let by_address = req.extensions().get::<Decision>().copied();
        let from = limits.client_address(&req);
        if let Some(decision) = limits.check_login_username(username, from, by_address).await? {
            if decision.retry_after.is_some() {
                return Err(too_many(decision));
            }
            req.extensions_mut().insert(decision);
        }
    }
    let from = Audited::of(&req);
    let (user, issued) = auth.login(username, &password, Utc::now(), &from).await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        token: issued.token,
        expires_at: issued.claims.expires_at(),
        user: UserInfo::from(&user),
    }))
}

/// The user the token belongs to, as stored now.
#[utoipa::path(
    get,
    path = "/api/v1/authentication/me",
    tag = "authentication",
    responses(
        Protected,
        (status = 200, description = "The caller", body = UserInfo),
    )
)]
pub async fn current_user(auth: web::Data<AuthState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let user = auth
        .get_user(caller.0.tenant_id, caller.0.user_id)
        .await
        .map_err(|_| ApiError::Unauthorized("User not found".into()))?;
    Ok(HttpResponse::Ok().json(UserInfo::from(&user)))
}

/// Revokes the token used for this request until it would have expired.
#[utoipa::path(
    post,
    path = "/api/v1/authentication/logout",
    tag = "authentication",
    responses(
        Protected,
        (status = 204, description = "The token is revoked"),
    )
)]
pub async fn logout(auth: web::Data<AuthState>, caller: Caller, audited: Audited) -> Result<HttpResponse, ApiError> {
    auth.logout(&caller.0, &audited.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the caller's own password, giving the current one.
///
/// Every token of the user stops working, as after an Admin's reset (other
/// sessions and live connections end); the answer carries a new token, so
/// that the caller stays signed in. A wrong current password counts as a
/// failed login from the caller's address, and the route shares the login
/// rate limit. Audited as `UserPasswordChanged` (`PasswordChangeRefused` when
/// the current password is wrong).
#[utoipa::path(
    post,
    path = "/api/v1/authentication/password",
    tag = "authentication",
    request_body = ChangePasswordBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "Changed: a new token for the caller; the user's other tokens are refused from now on", body = LoginResponse),
        (status = 400, description = "The current password is wrong, or the new one breaks the password rules", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    )
)]
pub async fn change_own_password(
    auth: web::Data<AuthState>,
    caller: Caller,
    audited: Audited,
    body: web::Json<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (user, issued) =
        auth.change_own_password(&caller.0, &audited.0, &body.current_password, &body.new_password, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        token: issued.token,
        expires_at: issued.claims.expires_at(),
        user: UserInfo::from(&user),
    }))
}

/// The demo users and their passwords, where demo users are enabled
/// (development and test); 404 everywhere else.
#[utoipa::path(
    get,
    path = "/api/v1/authentication/demo-credentials",
    tag = "authentication",
    responses(
        Public,
        (status = 200, description = "The demo users", body = DemoCredentials),
        (status = 404, description = "Demo users are not enabled here", body = ErrorBody),
    )
)]
pub async fn demo_credentials(auth: web::Data<AuthState>) -> Result<HttpResponse, ApiError> {
    if !auth.settings.demo_users {
        return Err(ApiError::NotFound("no route for GET /api/v1/authentication/demo-credentials".into()));
    }
    Ok(HttpResponse::Ok().json(DemoCredentials {
        message: "Demo users for development and testing only; they do not exist in production",
        users: DEMO_USERS
            .iter()
            .map(|d| DemoCredential {
                username: d.username,
                password: d.password,
                roles: d.roles.iter().copied().map(Role::as_str).collect(),
                description: d.description,
            })
            .collect(),
    }))
}
