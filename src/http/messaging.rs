//! /api/v1/messages: publishing, pull consumers' long-poll, ack and nack.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use hotswap_actors::messaging::{consume, NackOptions, Published, SubscriptionKind};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::publish_json::PublishJson;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::messaging::message_dto::{ConsumeView, DeliveryView, MessageView, NackBody, PublishBody};
use crate::messaging::{MessageBus, TopicCreation};
use crate::web::optional_json::OptionalJson;
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    publish_message => Access::Role(RequireRole::DEPLOYER),
    consume_messages => Access::Role(RequireRole::DEPLOYER.changing_state()),
    ack_message => Access::Role(RequireRole::DEPLOYER),
    nack_message => Access::Role(RequireRole::DEPLOYER),
}

/// Deliveries one consume request may take, by default and at most.
const DEFAULT_MAX_DELIVERIES: usize = 10;
const MAX_DELIVERIES: usize = 100;

/// The header that makes a publish to an ExactlyOnce topic idempotent.
pub(super) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Publish to an existing topic. On an ExactlyOnce topic a repeated
/// `Idempotency-Key` (or message id) answers the first message with 200.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messaging",
    request_body = PublishBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "De-duplicates publishes on ExactlyOnce topics")),
    responses(
        Protected, JsonBody,
        (status = 201, description = "Stored and routed", body = MessageView,
            headers(("Location" = String, description = "The message's URL"))),
        (status = 200, description = "A repeat of an ExactlyOnce publish: the first message", body = MessageView),
        (status = 400, description = "Invalid message, an expiresAt already past, or the payload does not match the topic's schema", body = ErrorBody),
        (status = 403, description = "Not a Deployer, the tenant is suspended, or reserved_topic: hotswap.deployments, where only the server publishes", body = ErrorBody),
        (status = 413, description = "The payload is over messaging.max_payload_bytes, or the body over six times that (JSON escaping) plus server.json_limit", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "A message with this id exists", body = ErrorBody),
    )
)]
pub async fn publish_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    req: HttpRequest,
    body: PublishJson,
) -> Result<HttpResponse, ApiError> {
    let published = publish(&bus, tenant, &req, body.0, TopicCreation::Never).await?;
    Ok(published_response(published))
}

/// Publishing as both APIs do it: the header, the checks, the store.
pub(super) async fn publish(
    bus: &MessageBus,
    tenant: Tenant,
    req: &HttpRequest,
    body: PublishBody,
    creation: TopicCreation,
) -> Result<Published, ApiError> {
    let key = req.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let message = body.into_new_message(key).map_err(|e| ApiError::validation(vec![e]))?;
    Ok(bus.publish(tenant.0, message, creation).await?)
}

/// `text` as one URL path segment: unreserved ASCII kept, every other byte
/// percent-encoded.
fn path_segment(text: &str) -> String {
    text.bytes().fold(String::with_capacity(text.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        out
    })
}

/// 201 with Location for a new message, 200 for an ExactlyOnce repeat.
fn published_response(published: Published) -> HttpResponse {
    let duplicate = published.duplicate;
    let location = message_location(&published.message.message_id);
    let view = MessageView::published(published.message, published.routed_to);
    if duplicate {
        HttpResponse::Ok().json(view)
    } else {
        HttpResponse::Created().insert_header(("Location", location)).json(view)
    }
}

/// A message's URL in the original API.
pub(super) fn message_location(message_id: &str) -> String {
    // The id comes from the client and may hold anything: percent-encoded, a
    // header value cannot be malformed.
    format!("/api/messages/{}", path_segment(message_id))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ConsumeQuery {
    /// The pull subscription to lease for; it must be on this topic.
    subscription_id: Uuid,
    /// Most deliveries to answer (1-100, 10 by default).
    #[param(minimum = 1, maximum = 100)]
    max: Option<usize>,
    /// How long to wait for a first delivery (0 by default; at most
    /// `messaging.max_consume_wait`, 30 s unless configured otherwise).
    #[param(minimum = 0, maximum = 30000)]
    wait_ms: Option<u64>,
}

/// Lease deliveries for a pull subscription, long-polling up to `waitMs`.
/// Each must be acked or nacked before its `ackDeadline`, else it is
/// redelivered (attempts + 1).
#[utoipa::path(
    get,
    path = "/api/v1/messages/consume/{topic}",
    tag = "messaging",
    params(("topic" = String, Path, description = "The topic's name"), ConsumeQuery),
    responses(
        Protected,
        (status = 200, description = "Leased deliveries (maybe none)", body = ConsumeView),
        (status = 400, description = "max or waitMs out of range, or a Push subscription", body = ErrorBody),
        (status = 404, description = "No such topic, or no such subscription on it", body = ErrorBody),
    )
)]
pub async fn consume_messages(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    topic: web::Path<String>,
    query: Query<ConsumeQuery>,
) -> Result<HttpResponse, ApiError> {
    let max = query.max.unwrap_or(DEFAULT_MAX_DELIVERIES);
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0));
    let mut problems = Vec::new();
    if !(1..=MAX_DELIVERIES).contains(&max) {
        problems.push(format!("max must be between 1 and {MAX_DELIVERIES}"));
    }
    if wait > bus.settings.max_consume_wait {
        problems.push(format!("waitMs must be at most {}", bus.settings.max_consume_wait.as_millis()));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    bus.store.get_topic(tenant.0, &topic).await?;
    let subscription = bus.store.get_subscription(tenant.0, query.subscription_id).await?;
    if subscription.spec.topic_name != *topic {
        return Err(ApiError::NotFound(format!("subscription '{}' is not on topic '{topic}'", query.subscription_id)));
    }
    // As on the WebSocket: a Push subscription's loop leases its messages;
    // a pull here would compete with it for them.
    if subscription.spec.kind == SubscriptionKind::Push {
        return Err(ApiError::BadRequest(format!(
            "subscription '{}' is a Push subscription: it is delivered to its endpoint; consume a Pull one",
            query.subscription_id
        )));
    }
    let deliveries = consume(bus.store.as_ref(), tenant.0, query.subscription_id, max, wait).await?;
    Ok(HttpResponse::Ok().json(ConsumeView { messages: deliveries.into_iter().map(DeliveryView::from).collect() }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct LeaseQuery {
    /// The subscription that holds the lease.
    subscription_id: Uuid,
}

/// Acknowledge a delivery (again is harmless).
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/ack",
    tag = "messaging",
    params(("id" = String, Path, description = "The message id"), LeaseQuery),
    responses(
        Protected,
        (status = 204, description = "Acknowledged"),
        (status = 400, description = "subscriptionId missing or not a UUID", body = ErrorBody),
        (status = 404, description = "No such subscription or message", body = ErrorBody),
        (status = 409, description = "The lease expired; the message is being redelivered", body = ErrorBody),
    )
)]
pub async fn ack_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
    query: Query<LeaseQuery>,
) -> Result<HttpResponse, ApiError> {
    bus.store.ack(tenant.0, query.subscription_id, &id, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Refuse a delivery: retried after the backoff while attempts remain, else
/// (or with `requeue: false`) dead-lettered.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/nack",
    tag = "messaging",
    params(("id" = String, Path, description = "The message id"), LeaseQuery),
    request_body(content = Option<NackBody>, description = "Optional reason and requeue"),
    responses(
        Protected, JsonBody,
        (status = 204, description = "Refused"),
        (status = 400, description = "The body does not parse (an absent or empty body means the defaults), or the reason holds a NUL character", body = ErrorBody),
        (status = 404, description = "No such subscription or message", body = ErrorBody),
        (status = 409, description = "The lease expired; the message is being redelivered", body = ErrorBody),
    )
)]
pub async fn nack_message(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
    query: Query<LeaseQuery>,
    body: OptionalJson<NackBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().unwrap_or_default();
    let options = NackOptions { reason: body.reason, requeue: body.requeue };
    options.validate()?;
    bus.store.nack(tenant.0, query.subscription_id, &id, options, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_id_becomes_a_valid_header_value() {
        assert_eq!(super::path_segment("a-b.c_d~9"), "a-b.c_d~9");
        let odd = super::path_segment("x\ny é/");
        assert_eq!(odd, "x%0Ay%20%C3%A9%2F");
        assert!(actix_web::http::header::HeaderValue::from_str(&format!("/api/messages/{odd}")).is_ok());
    }
}
