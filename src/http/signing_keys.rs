//! /api/v1/signing-keys: the RSA public keys module signatures are checked
//! against. Admins add and revoke them; everyone sees their fingerprints.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::SigningKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::auth::{RequireRole, Tenant};
use crate::registry::{Registry, RegistryError};
use crate::web::{ApiError, ErrorBody};

api_module! {
    add_signing_key => Access::Role(RequireRole::ADMIN),
    list_signing_keys => Access::Role(RequireRole::VIEWER),
    revoke_signing_key => Access::Role(RequireRole::ADMIN),
}

/// Paths that more than one operation serves.
const PATH_SIGNING_KEYS: &str = "/api/v1/signing-keys";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddKeyBody {
    #[schema(example = "release-2027", max_length = 100)]
    pub name: String,
    /// An RSA public key of at least 2048 bits, PEM: SubjectPublicKeyInfo
    /// ("BEGIN PUBLIC KEY") or PKCS#1 ("BEGIN RSA PUBLIC KEY").
    pub public_key_pem: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyView {
    /// "sha256:" and the hex SHA-256 of the key's SubjectPublicKeyInfo DER.
    id: String,
    name: String,
    algorithm: String,
    bits: u32,
    fingerprint: String,
    public_key_pem: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoked: bool,
}

impl From<SigningKey> for SigningKeyView {
    fn from(k: SigningKey) -> Self {
        SigningKeyView {
            fingerprint: k.key_id.clone(),
            id: k.key_id,
            name: k.name,
            algorithm: k.algorithm,
            bits: k.bits,
            public_key_pem: k.public_key_pem,
            created_at: k.created_at,
            revoked: k.revoked_at.is_some(),
            revoked_at: k.revoked_at,
        }
    }
}

/// Trust an RSA public key.
#[utoipa::path(
    post,
    path = PATH_SIGNING_KEYS,
    tag = "modules",
    request_body = AddKeyBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Trusted", body = SigningKeyView),
        (status = 400, description = "Not an RSA public key in PEM", body = ErrorBody),
        (status = 409, description = "Trusted already", body = ErrorBody),
        (status = 422, description = "Shorter than security.min_key_bits (2048)", body = ErrorBody),
    )
)]
pub async fn add_signing_key(
    registry: web::Data<Registry>,
    tenant: Tenant,
    actor: Audited,
    body: web::Json<AddKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let key = registry.add_signing_key(tenant.0, actor.0, &body.name, &body.public_key_pem).await?;
    Ok(HttpResponse::Created().json(SigningKeyView::from(key)))
}

/// The trusted keys, oldest first.
#[utoipa::path(
    get,
    path = PATH_SIGNING_KEYS,
    tag = "modules",
    responses(
        Protected,
        (status = 200, description = "Keys with fingerprints", body = Vec<SigningKeyView>),
    )
)]
pub async fn list_signing_keys(registry: web::Data<Registry>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let keys = registry.store.list_signing_keys(tenant.0).await.map_err(RegistryError::from)?;
    Ok(HttpResponse::Ok().json(keys.into_iter().map(SigningKeyView::from).collect::<Vec<_>>()))
}

/// Revoke a key: modules signed with it fail the Security Scan in strict mode.
#[utoipa::path(
    post,
    path = "/api/v1/signing-keys/{id}/revoke",
    tag = "modules",
    params(("id" = String, Path, description = "The key's id (its fingerprint)")),
    responses(
        Protected,
        (status = 200, description = "Revoked (again harmless)", body = SigningKeyView),
        (status = 404, description = "No such key", body = ErrorBody),
    )
)]
pub async fn revoke_signing_key(
    registry: web::Data<Registry>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = registry.revoke_signing_key(tenant.0, actor.0, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(SigningKeyView::from(key)))
}
