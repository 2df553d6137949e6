//! /api/v1/secrets: secrets' metadata and rotation, for Admins of the default
//! tenant (secrets such as the JWT signing key belong to the whole system).
//! No answer ever carries a value.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::DEFAULT_TENANT;
use serde::Serialize;
use utoipa::ToSchema;

use super::responses::Protected;
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::auth::{RequireRole, Tenant};
use crate::secrets::{SecretError, SecretManager, SecretMetadata};
use crate::web::{ApiError, ErrorBody};

api_module! {
    list_secrets => Access::Role(RequireRole::ADMIN),
    get_secret_metadata => Access::Role(RequireRole::ADMIN),
    rotate_secret => Access::Role(RequireRole::ADMIN),
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::NotFound(id) => ApiError::NotFound(format!("Secret {id} not found")),
            SecretError::Conflict(_) => ApiError::Conflict { message: e.to_string(), extra: Default::default() },
            SecretError::Unavailable(m) => ApiError::Unavailable(m),
            SecretError::Invalid(m) => ApiError::Internal(m),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    id: String,
    current_version: u32,
    previous_version: Option<u32>,
    created_at: DateTime<Utc>,
    last_rotated_at: Option<DateTime<Utc>>,
    next_rotation_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    /// The previous version stays valid until then.
    previous_valid_until: Option<DateTime<Utc>>,
    in_rotation_window: bool,
    expiring: bool,
    auto_rotate: bool,
    policy: Option<PolicyView>,
}

/// Durations as humans write them, such as "30days" or "48h".
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    auto_rotate: bool,
    rotation_interval: String,
    max_age: String,
    notice_period: String,
    rotation_window: String,
}

impl From<&crate::secrets::RotationPolicy> for PolicyView {
    fn from(p: &crate::secrets::RotationPolicy) -> Self {
        let human = crate::web::durations::human;
        PolicyView {
            auto_rotate: p.auto_rotate,
            rotation_interval: human(p.rotation_interval),
            max_age: human(p.max_age),
            notice_period: human(p.notice_period),
            rotation_window: human(p.rotation_window),
        }
    }
}

impl From<SecretMetadata> for SecretView {
    fn from(m: SecretMetadata) -> Self {
        let now = Utc::now();
        SecretView {
            in_rotation_window: m.in_rotation_window(now),
            expiring: m.expiring(now),
            auto_rotate: m.policy.as_ref().is_some_and(|p| p.auto_rotate),
            policy: m.policy.as_ref().map(PolicyView::from),
            id: m.id,
            current_version: m.current_version,
            previous_version: m.previous_version,
            created_at: m.created_at,
            last_rotated_at: m.last_rotated_at,
            next_rotation_at: m.next_rotation_at,
            expires_at: m.expires_at,
            previous_valid_until: m.previous_valid_until,
        }
    }
}

fn system_admin(tenant: &Tenant) -> Result<(), ApiError> {
    if tenant.0 != DEFAULT_TENANT {
        return Err(ApiError::Forbidden("secrets are managed by Admins of the default tenant".into()));
    }
    Ok(())
}

/// Every secret's metadata.
#[utoipa::path(
    get,
    path = "/api/v1/secrets",
    tag = "secrets",
    responses(
        Protected,
        (status = 200, description = "Metadata only, never values", body = Vec<SecretView>),
        (status = 403, description = "Not an Admin of the default tenant", body = ErrorBody),
    )
)]
pub async fn list_secrets(secrets: web::Data<SecretManager>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    system_admin(&tenant)?;
    let all = secrets.list().await?;
    Ok(HttpResponse::Ok().json(all.into_iter().map(SecretView::from).collect::<Vec<_>>()))
}

/// One secret's metadata.
#[utoipa::path(
    get,
    path = "/api/v1/secrets/{id}/metadata",
    tag = "secrets",
    params(("id" = String, Path, description = "Such as jwt-signing-key")),
    responses(
        Protected,
        (status = 200, description = "Metadata", body = SecretView),
        (status = 403, description = "Not an Admin of the default tenant", body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
    )
)]
pub async fn get_secret_metadata(
    secrets: web::Data<SecretManager>,
    tenant: Tenant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    system_admin(&tenant)?;
    Ok(HttpResponse::Ok().json(SecretView::from(secrets.metadata(&path.into_inner()).await?)))
}

/// Rotate a secret now: a new generated version; the previous one stays
/// valid for the policy's rotation window.
#[utoipa::path(
    post,
    path = "/api/v1/secrets/{id}/rotate",
    tag = "secrets",
    params(("id" = String, Path)),
    responses(
        Protected,
        (status = 200, description = "Rotated; the metadata after", body = SecretView),
        (status = 403, description = "Not an Admin of the default tenant", body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 409, description = "Rotated by someone else meanwhile", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    secrets: web::Data<SecretManager>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    system_admin(&tenant)?;
    Ok(HttpResponse::Ok().json(SecretView::from(secrets.rotate(&path.into_inner(), actor.0).await?)))
}
