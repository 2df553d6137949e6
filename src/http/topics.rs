//! /api/v1/topics: the message bus's topics, their metrics and their
//! dead-letter queues. Viewers read, Deployers write, Admins delete.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use hotswap_actors::messaging::{LetterRange, MessagingError};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::count_params::count_within;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::messaging::message_dto::DeadLetterView;
use crate::messaging::topic_dto::{TopicBody, TopicMetricsView, TopicView};
use crate::messaging::MessageBus;
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_topic => Access::Role(RequireRole::DEPLOYER),
    list_topics => Access::Role(RequireRole::VIEWER),
    get_topic => Access::Role(RequireRole::VIEWER),
    update_topic => Access::Role(RequireRole::DEPLOYER),
    delete_topic => Access::Role(RequireRole::ADMIN),
    get_topic_metrics => Access::Role(RequireRole::VIEWER),
    list_dead_letters => Access::Role(RequireRole::VIEWER),
    replay_dead_letter => Access::Role(RequireRole::DEPLOYER),
    purge_dead_letter => Access::Role(RequireRole::ADMIN),
}

/// Paths that more than one operation serves.
const PATH_TOPICS: &str = "/api/v1/topics";
const PATH_TOPIC: &str = "/api/v1/topics/{name}";
const PATH_DEAD_LETTER: &str = "/api/v1/topics/{name}/dlq/{messageId}";

/// Create a topic.
#[utoipa::path(
    post,
    path = PATH_TOPICS,
    tag = "messaging",
    request_body = TopicBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Created", body = TopicView,
            headers(("Location" = String, description = "The topic's URL"))),
        (status = 409, description = "A topic of that name exists, or the tenant has messaging.max_topics_per_tenant topics", body = ErrorBody),
    )
)]
pub async fn create_topic(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    body: web::Json<TopicBody>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner().into_new_topic().map_err(ApiError::validation)?;
    bus.check_binding(tenant.0, &spec).await?;
    let topic = bus.create_topic(tenant.0, spec).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/topics/{}", topic.spec.name)))
        .json(TopicView::from(topic)))
}

/// What the topic list may carry besides the topics.
#[derive(Debug, Deserialize, ToSchema)]
pub enum TopicInclude {
    /// Each topic's counters, as `GET /api/v1/topics/{name}/metrics` answers them.
    #[serde(rename = "metrics")]
    Metrics,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopicListQuery {
    /// `metrics`: each topic with its counters, in one answer instead of a request per topic.
    #[param(inline)]
    include: Option<TopicInclude>,
}

/// The tenant's topics, by name.
#[utoipa::path(
    get,
    path = PATH_TOPICS,
    tag = "messaging",
    params(TopicListQuery),
    responses(
        Protected,
        (status = 200, description = "Topics", body = Vec<TopicView>),
        (status = 400, description = "An unknown include or parameter", body = ErrorBody),
    )
)]
pub async fn list_topics(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    query: Query<TopicListQuery>,
) -> Result<HttpResponse, ApiError> {
    let topics = bus.store.list_topics(tenant.0).await?;
    let Some(TopicInclude::Metrics) = query.include else {
        return Ok(HttpResponse::Ok().json(topics.into_iter().map(TopicView::from).collect::<Vec<_>>()));
    };
    let now = Utc::now();
    let mut views = Vec::with_capacity(topics.len());
    // One at a time: a tenant's topics are bounded (messaging.max_topics_per_tenant),
    // and the store's pool is shared with everything else.
    for topic in topics {
        let name = topic.spec.name.clone();
        match bus.store.metrics(tenant.0, &name, now).await {
            Ok(metrics) => views.push(TopicView::from(topic).with_metrics(TopicMetricsView::new(name, metrics))),
            // Deleted since it was listed: it leaves the list.
            Err(MessagingError::TopicNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(HttpResponse::Ok().json(views))
}

/// One topic.
#[utoipa::path(
    get,
    path = PATH_TOPIC,
    tag = "messaging",
    params(("name" = String, Path, description = "The topic's name")),
    responses(
        Protected,
        (status = 200, description = "The topic", body = TopicView),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn get_topic(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let topic = bus.store.get_topic(tenant.0, &name).await?;
    Ok(HttpResponse::Ok().json(TopicView::from(topic)))
}

/// Change a topic; the body's name must be the URL's. Fields left out keep
/// the topic's values (`null` clears description, schemaId and
/// config.routingStrategy); a type or guarantee sent changes it for the
/// subscriptions the topic has.
#[utoipa::path(
    put,
    path = PATH_TOPIC,
    tag = "messaging",
    params(("name" = String, Path, description = "The topic's name")),
    request_body = TopicBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "Changed", body = TopicView),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn update_topic(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    name: web::Path<String>,
    body: web::Json<TopicBody>,
) -> Result<HttpResponse, ApiError> {
    if body.name != *name {
        return Err(ApiError::validation(vec![format!(
            "name: the body names '{}' but the URL names '{}'",
            body.name, name
        )]));
    }
    let current = bus.store.get_topic(tenant.0, &name).await?.spec;
    let kept_binding = current.schema_id.clone();
    let spec = body.into_inner().applied_to(current).map_err(ApiError::validation)?;
    // A topic keeps a binding it has (its schema may be deprecated since);
    // a new binding must name a live schema.
    if kept_binding != spec.schema_id {
        bus.check_binding(tenant.0, &spec).await?;
    }
    let topic = bus.store.update_topic(tenant.0, spec).await?;
    Ok(HttpResponse::Ok().json(TopicView::from(topic)))
}

/// Delete a topic that has no subscriptions.
#[utoipa::path(
    delete,
    path = PATH_TOPIC,
    tag = "messaging",
    params(("name" = String, Path, description = "The topic's name")),
    responses(
        Protected,
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The topic still has subscriptions", body = ErrorBody),
    )
)]
pub async fn delete_topic(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    bus.store.delete_topic(tenant.0, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Counters and depth of a topic.
#[utoipa::path(
    get,
    path = "/api/v1/topics/{name}/metrics",
    tag = "messaging",
    params(("name" = String, Path, description = "The topic's name")),
    responses(
        Protected,
        (status = 200, description = "The topic's metrics", body = TopicMetricsView),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn get_topic_metrics(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let metrics = bus.store.metrics(tenant.0, &name, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(TopicMetricsView::new(name, metrics)))
}

/// The most dead letters one answer lists.
const MAX_LETTERS: u32 = 1000;

/// The largest offset into a dead-letter queue, as the document states it.
const MAX_LETTER_OFFSET: u32 = 100_000_000;

/// Which dead letters to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// How many: 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// How many of the oldest to skip: 0 to 100,000,000; default 0.
    #[param(minimum = 0, maximum = 100_000_000)]
    offset: Option<u32>,
}

/// The topic's dead-letter queue, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/topics/{name}/dlq",
    tag = "messaging",
    params(("name" = String, Path, description = "The topic's name"), DeadLetterQuery),
    responses(
        Protected,
        (status = 200, description = "Dead letters, oldest first", body = Vec<DeadLetterView>, headers(
            ("X-Total-Count" = u64, description = "Dead letters the topic holds in all"),
        )),
        (status = 400, description = "A limit outside 1 to 1000, or an unknown parameter", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn list_dead_letters(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    name: web::Path<String>,
    query: Query<DeadLetterQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = count_within("limit", query.limit, 100, MAX_LETTERS)?;
    let offset = query.offset.unwrap_or(0);
    if offset > MAX_LETTER_OFFSET {
        return Err(ApiError::validation(vec![format!("offset must be at most {MAX_LETTER_OFFSET}, not {offset}")]));
    }
    let range = LetterRange { offset: offset as usize, limit };
    let page = bus.store.dead_letters(tenant.0, &name, range).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", page.total.to_string()))
        .json(page.letters.into_iter().map(DeadLetterView::from).collect::<Vec<_>>()))
}

/// Send a dead letter back to the subscription it died on, attempts reset;
/// it leaves the dead-letter queue. When that subscription was deleted the
/// replay is refused (409) and the letter kept.
#[utoipa::path(
    post,
    path = "/api/v1/topics/{name}/dlq/{messageId}/replay",
    tag = "messaging",
    params(
        ("name" = String, Path, description = "The topic's name"),
        ("messageId" = String, Path, description = "The dead letter's message id"),
    ),
    responses(
        Protected,
        (status = 204, description = "Re-queued"),
        (status = 404, description = "No such topic or dead letter", body = ErrorBody),
        (status = 409, description = "The subscription it died on was deleted; the letter is kept", body = ErrorBody),
    )
)]
pub async fn replay_dead_letter(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (topic, message_id) = path.into_inner();
    bus.store.replay_dead_letter(tenant.0, &topic, &message_id, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a dead letter for good.
#[utoipa::path(
    delete,
    path = PATH_DEAD_LETTER,
    tag = "messaging",
    params(
        ("name" = String, Path, description = "The topic's name"),
        ("messageId" = String, Path, description = "The dead letter's message id"),
    ),
    responses(
        Protected,
        (status = 204, description = "Purged"),
        (status = 404, description = "No such topic or dead letter", body = ErrorBody),
    )
)]
pub async fn purge_dead_letter(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (topic, message_id) = path.into_inner();
    bus.store.purge_dead_letter(tenant.0, &topic, &message_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
