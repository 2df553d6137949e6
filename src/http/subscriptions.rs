//! /api/v1/subscriptions: who receives a topic's messages, by pull or push.
//! Viewers read, Deployers write, Admins delete.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::messaging::topic_dto::{SubscriptionBody, SubscriptionView};
use crate::messaging::MessageBus;
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_subscription => Access::Role(RequireRole::DEPLOYER),
    list_subscriptions => Access::Role(RequireRole::VIEWER),
    get_subscription => Access::Role(RequireRole::VIEWER),
    delete_subscription => Access::Role(RequireRole::ADMIN),
    pause_subscription => Access::Role(RequireRole::DEPLOYER),
    resume_subscription => Access::Role(RequireRole::DEPLOYER),
}

/// Paths that more than one operation serves.
const PATH_SUBSCRIPTIONS: &str = "/api/v1/subscriptions";
const PATH_SUBSCRIPTION: &str = "/api/v1/subscriptions/{id}";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct SubscriptionQuery {
    /// Only the subscriptions of this topic.
    topic_name: Option<String>,
}

/// Subscribe to a topic. Push subscriptions start delivering at once.
#[utoipa::path(
    post,
    path = PATH_SUBSCRIPTIONS,
    tag = "messaging",
    request_body = SubscriptionBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Subscribed", body = SubscriptionView,
            headers(("Location" = String, description = "The subscription's URL"))),
        (status = 400, description = "Invalid fields, or a filter on a topic whose routing is not ContentBased", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The tenant has messaging.max_subscriptions_per_tenant subscriptions", body = ErrorBody),
    )
)]
pub async fn create_subscription(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    body: web::Json<SubscriptionBody>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner().into_new_subscription().map_err(ApiError::validation)?;
    let subscription = bus.create_subscription(tenant.0, spec).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/subscriptions/{}", subscription.subscription_id)))
        .json(SubscriptionView::from(subscription)))
}

/// The tenant's subscriptions, oldest first.
#[utoipa::path(
    get,
    path = PATH_SUBSCRIPTIONS,
    tag = "messaging",
    params(SubscriptionQuery),
    responses(Protected, (status = 200, description = "Subscriptions", body = Vec<SubscriptionView>))
)]
pub async fn list_subscriptions(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    query: Query<SubscriptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let found = bus.store.list_subscriptions(tenant.0, query.topic_name.as_deref()).await?;
    Ok(HttpResponse::Ok().json(found.into_iter().map(SubscriptionView::from).collect::<Vec<_>>()))
}

/// One subscription.
#[utoipa::path(
    get,
    path = PATH_SUBSCRIPTION,
    tag = "messaging",
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        Protected,
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "No such subscription", body = ErrorBody),
    )
)]
pub async fn get_subscription(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subscription = bus.store.get_subscription(tenant.0, *id).await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}

/// Unsubscribe; a push subscription stops delivering.
#[utoipa::path(
    delete,
    path = PATH_SUBSCRIPTION,
    tag = "messaging",
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        Protected,
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = ErrorBody),
    )
)]
pub async fn delete_subscription(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    bus.store.delete_subscription(tenant.0, *id).await?;
    bus.subscription_deleted(*id);
    Ok(HttpResponse::NoContent().finish())
}

/// Stop leasing to this subscription; its backlog keeps growing.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/pause",
    tag = "messaging",
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        Protected,
        (status = 200, description = "Paused", body = SubscriptionView),
        (status = 404, description = "No such subscription", body = ErrorBody),
    )
)]
pub async fn pause_subscription(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subscription = bus.store.set_paused(tenant.0, *id, true).await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}

/// Deliver again, backlog first.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/resume",
    tag = "messaging",
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        Protected,
        (status = 200, description = "Resumed", body = SubscriptionView),
        (status = 404, description = "No such subscription", body = ErrorBody),
    )
)]
pub async fn resume_subscription(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subscription = bus.store.set_paused(tenant.0, *id, false).await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}
