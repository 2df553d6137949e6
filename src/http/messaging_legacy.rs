//! /api/messages: the original's messages API, kept for its clients. Topics
//! it names are created on first use (FanOut, no schema) unless
//! `messaging.auto_create_topics` is off.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use hotswap_actors::messaging::{MessageStatus, MessagingError, Published, StoredMessage};
use serde::Deserialize;
use utoipa::IntoParams;

use super::messaging::{message_location, publish};
use super::publish_json::PublishJson;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::messaging::message_dto::{OriginalMessageView, PublishBody};
use crate::messaging::{MessageBus, TopicCreation};
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    publish_original_message => Access::Role(RequireRole::DEPLOYER),
    get_message => Access::Role(RequireRole::VIEWER),
    list_topic_messages => Access::Role(RequireRole::VIEWER),
    acknowledge_message => Access::Role(RequireRole::DEPLOYER),
    delete_message => Access::Role(RequireRole::ADMIN),
}

/// Paths that more than one operation serves.
const PATH_MESSAGE: &str = "/api/messages/{id}";
/// The most messages one topic listing answers.
const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 100;

/// Publish a message (the original's route); its topic is created on first use.
#[utoipa::path(
    post,
    path = "/api/messages/publish",
    tag = "messaging",
    request_body = PublishBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "De-duplicates publishes on ExactlyOnce topics")),
    responses(
        Protected, JsonBody,
        (status = 201, description = "Stored and routed", body = OriginalMessageView,
            headers(("Location" = String, description = "The message's URL"))),
        (status = 200, description = "A repeat of an ExactlyOnce publish: the first message", body = OriginalMessageView),
        (status = 400, description = "No topic, a priority outside 0-9, an expiresAt already past, a schemaVersion naming no registry version, or a payload that breaks the topic's schema", body = ErrorBody),
        (status = 403, description = "Not a Deployer, the tenant is suspended, or reserved_topic: hotswap.deployments, where only the server publishes", body = ErrorBody),
        (status = 413, description = "The payload is over messaging.max_payload_bytes, or the body over six times that (JSON escaping) plus server.json_limit", body = ErrorBody),
        (status = 404, description = "No such topic (with messaging.auto_create_topics off)", body = ErrorBody),
        (status = 409, description = "A message with this id exists, or its topic would be created past messaging.max_topics_per_tenant", body = ErrorBody),
    )
)]
pub async fn publish_original_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    req: HttpRequest,
    body: PublishJson,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = tenant.0;
    let published = publish(&bus, tenant, &req, body.0, TopicCreation::IfMissing).await?;
    let location = message_location(&published.message.message_id);
    if published.duplicate {
        // The first message may have moved on since (acknowledged): its
        // stored state is the answer, unless it was deleted meanwhile.
        let first = match bus.store.get_message(tenant_id, &published.message.message_id).await {
            Ok(stored) => stored,
            Err(MessagingError::MessageNotFound(_)) => pending(published),
            Err(e) => return Err(e.into()),
        };
        return Ok(HttpResponse::Ok().json(OriginalMessageView::from(first)));
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .json(OriginalMessageView::from(pending(published))))
}

/// A message just published, as stored: Pending, acknowledged by nobody.
fn pending(published: Published) -> StoredMessage {
    StoredMessage {
        message: std::sync::Arc::unwrap_or_clone(published.message),
        status: MessageStatus::Pending,
        routed_to: published.routed_to,
        acknowledged_at: None,
    }
}

/// One message with its status.
#[utoipa::path(
    get,
    path = PATH_MESSAGE,
    tag = "messaging",
    params(("id" = String, Path, description = "The message id")),
    responses(
        Protected,
        (status = 200, description = "The message", body = OriginalMessageView),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn get_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let message = bus.store.get_message(tenant.0, &id).await?;
    Ok(HttpResponse::Ok().json(OriginalMessageView::from(message)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Most messages to answer (100 by default; more than 1000 answers 1000).
    #[param(minimum = 0, maximum = 2147483647)]
    limit: Option<u32>,
}

/// A topic's messages, newest first.
#[utoipa::path(
    get,
    path = "/api/messages/topic/{topic}",
    tag = "messaging",
    params(("topic" = String, Path, description = "The topic's name"), ListQuery),
    responses(
        Protected,
        (status = 200, description = "Messages, newest first", body = Vec<OriginalMessageView>),
        (status = 400, description = "limit is not a whole number from 0 to 2147483647", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn list_topic_messages(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    topic: web::Path<String>,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit {
        None => DEFAULT_LIST,
        // The document's bound (its largest integer), held to here as well.
        Some(l) if l > i32::MAX as u32 => {
            return Err(ApiError::BadRequest("limit must be a whole number from 0 to 2147483647".into()))
        }
        Some(l) => (l as usize).min(MAX_LIST),
    };
    let messages = bus.store.list_messages(tenant.0, &topic, limit).await?;
    Ok(HttpResponse::Ok().json(messages.into_iter().map(OriginalMessageView::from).collect::<Vec<_>>()))
}

/// Acknowledge a message for every subscription it was routed to.
#[utoipa::path(
    post,
    path = "/api/messages/{id}/acknowledge",
    tag = "messaging",
    params(("id" = String, Path, description = "The message id")),
    responses(
        Protected,
        (status = 200, description = "Acknowledged", body = OriginalMessageView),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn acknowledge_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let message = bus.store.acknowledge_message(tenant.0, &id, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(OriginalMessageView::from(message)))
}

/// Delete a message: 204, then 404.
#[utoipa::path(
    delete,
    path = PATH_MESSAGE,
    tag = "messaging",
    params(("id" = String, Path, description = "The message id")),
    responses(
        Protected,
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn delete_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    bus.store.delete_message(tenant.0, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
