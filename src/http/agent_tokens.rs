//! /api/v1/agents/tokens: the enrolment tokens with which an Admin lets new
//! hosts join a tenant's environment (made, listed, revoked). The secret is
//! shown once, when made; only its SHA-256 is stored.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{EnrolmentToken, Environment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::count_params::page_within;
use super::deployment_dto::EnvironmentName;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use super::schema_limits::{blank, longer_than};
use crate::agents::AgentHub;
use crate::auth::{Audited, RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_enrolment_token => Access::Role(RequireRole::ADMIN),
    list_enrolment_tokens => Access::Role(RequireRole::ADMIN),
    revoke_enrolment_token => Access::Role(RequireRole::ADMIN),
}

const PATH_TOKENS: &str = "/api/v1/agents/tokens";

/// Tokens per page unless `pageSize` says otherwise, and at most.
const DEFAULT_TOKEN_PAGE: u32 = 100;
const MAX_TOKEN_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenBody {
    /// Development, QA, Staging or Production, in any case.
    #[schema(value_type = EnvironmentName)]
    #[serde(deserialize_with = "super::schema_limits::environment_any_case")]
    pub environment: Environment,
    /// Labels every agent enrolled with the token carries.
    #[serde(default)]
    #[schema(schema_with = labels_schema)]
    pub labels: BTreeMap<String, String>,
    /// Seconds the token can be used for enrolment (default `agent.token_ttl`;
    /// at most `agent.max_token_ttl`, 30 days unless configured otherwise).
    #[schema(minimum = 1, maximum = 2592000, example = 3600)]
    #[serde(default, deserialize_with = "super::schema_limits::whole_number")]
    pub expires_in: Option<u64>,
}

/// The labels `create_enrolment_token` takes.
fn labels_schema() -> utoipa::openapi::schema::Object {
    super::schema_limits::string_map(
        32,
        63,
        253,
        "Labels every agent enrolled with the token carries: at most 32; keys 1-63 characters, not only white \
         space; values at most 253 characters",
        false,
    )
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    id: Uuid,
    #[schema(value_type = EnvironmentName)]
    environment: Environment,
    labels: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    created_by: Option<String>,
}

impl From<EnrolmentToken> for TokenView {
    fn from(t: EnrolmentToken) -> Self {
        TokenView {
            id: t.id,
            environment: t.environment,
            labels: t.labels,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            created_by: t.created_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    id: Uuid,
    /// The secret for `hotswap agent --token`; shown this once only.
    token: String,
    expires_at: DateTime<Utc>,
}

/// Create an enrolment token for one environment of the caller's tenant.
#[utoipa::path(
    post,
    path = PATH_TOKENS,
    tag = "agents",
    request_body = CreateTokenBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Created; the token is shown once", body = CreatedToken),
        (status = 400, description = "Invalid fields", body = ErrorBody),
    )
)]
pub async fn create_enrolment_token(
    hub: web::Data<AgentHub>,
    tenant: Tenant,
    actor: Audited,
    body: web::Json<CreateTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let max = hub.settings.max_token_ttl;
    let ttl = match body.expires_in {
        None => hub.settings.token_ttl,
        Some(secs) if secs >= 1 && secs <= max.as_secs() => std::time::Duration::from_secs(secs),
        Some(_) => {
            return Err(ApiError::Validation {
                message: "invalid fields".into(),
                details: vec![format!("expiresIn must be between 1 and {} seconds", max.as_secs())],
            })
        }
    };
    let bad_label = body.labels.iter().any(|(k, v)| blank(k) || longer_than(k, 63) || longer_than(v, 253));
    if bad_label || body.labels.len() > 32 {
        return Err(ApiError::Validation {
            message: "invalid fields".into(),
            details: vec!["labels: at most 32, keys 1-63 characters, values at most 253".into()],
        });
    }
    let (token, secret) = hub.create_token(tenant.0, actor.0, body.environment, body.labels, ttl).await?;
    Ok(HttpResponse::Created().json(CreatedToken { id: token.id, token: secret, expires_at: token.expires_at }))
}

/// Which enrolment tokens to list: a page of them, of one state or all.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenListQuery {
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// Tokens per page: at most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// Only the tokens that still enrol hosts (`usable`), or those past
    /// their time (`expired`), or revoked (`revoked`).
    #[param(inline)]
    state: Option<TokenState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Usable,
    Expired,
    Revoked,
}

impl TokenState {
    fn of(token: &EnrolmentToken, now: DateTime<Utc>) -> TokenState {
        if token.revoked_at.is_some() {
            TokenState::Revoked
        } else if token.is_usable(now) {
            TokenState::Usable
        } else {
            TokenState::Expired
        }
    }
}

/// The tenant's enrolment tokens (metadata only; never the secret), newest
/// first, a page at a time: every token made is kept, so they add up.
#[utoipa::path(
    get,
    path = PATH_TOKENS,
    tag = "agents",
    params(TokenListQuery),
    responses(
        Protected,
        (status = 200, description = "Newest first", body = Vec<TokenView>, headers(
            ("X-Total-Count" = u64, description = "Tokens in that state (all when none is asked for)"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Invalid paging or state", body = ErrorBody),
    )
)]
pub async fn list_enrolment_tokens(
    hub: web::Data<AgentHub>,
    tenant: Tenant,
    query: Query<TokenListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let asked = page_within(q.page, q.page_size, DEFAULT_TOKEN_PAGE, MAX_TOKEN_PAGE)?;
    let now = Utc::now();
    let tokens: Vec<EnrolmentToken> = hub
        .orchestrator
        .store()
        .list_enrolment_tokens(tenant.0)
        .await?
        .into_iter()
        .filter(|t| q.state.is_none_or(|state| TokenState::of(t, now) == state))
        .collect();
    let total = tokens.len();
    let page: Vec<TokenView> = asked.cut(tokens).map(TokenView::from).collect();
    Ok(asked.answer(total).json(page))
}

/// Revoke a token: agents enrolled with it are disconnected and cannot reconnect.
#[utoipa::path(
    post,
    path = "/api/v1/agents/tokens/{id}/revoke",
    tag = "agents",
    params(("id" = Uuid, Path, description = "The token's id")),
    responses(
        Protected,
        (status = 200, description = "Revoked (again harmless)", body = TokenView),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    )
)]
pub async fn revoke_enrolment_token(
    hub: web::Data<AgentHub>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    match hub.revoke_token(tenant.0, actor.0, id).await? {
        Some(token) => Ok(HttpResponse::Ok().json(TokenView::from(token))),
        None => Err(ApiError::NotFound(format!("enrolment token {id} not found"))),
    }
}
