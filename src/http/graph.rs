//! /api/v1/graph: the knowledge graph's entities, relationships, schema and
//! statistics. Viewers read; Deployers write their own entities and
//! relationships (the actors' are read-only); Admins change the schema and
//! rebuild the actors' part. Queries are in `graph_queries`.

use actix_web::{web, HttpResponse};
use hotswap_actors::graph::{EndRef, GraphService, NewEntity, NewRelationship, RelationshipDirection};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::graph_dto::{
    BulkBody, BulkView, CreateEntityBody, CreateRelationshipBody, EntityView, RelationshipView, RelationshipsParams,
    SchemaBody, SchemaParams, SchemaView, UpdateEntityBody, UpdateRelationshipBody,
};
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{Audited, RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_graph_entity => Access::Role(RequireRole::DEPLOYER),
    get_graph_entity => Access::Role(RequireRole::VIEWER),
    update_graph_entity => Access::Role(RequireRole::DEPLOYER),
    delete_graph_entity => Access::Role(RequireRole::DEPLOYER),
    list_graph_entity_relationships => Access::Role(RequireRole::VIEWER),
    bulk_create_graph => Access::Role(RequireRole::DEPLOYER),
    create_graph_relationship => Access::Role(RequireRole::DEPLOYER),
    get_graph_relationship => Access::Role(RequireRole::VIEWER),
    update_graph_relationship => Access::Role(RequireRole::DEPLOYER),
    delete_graph_relationship => Access::Role(RequireRole::DEPLOYER),
    get_graph_schema => Access::Role(RequireRole::VIEWER),
    replace_graph_schema => Access::Role(RequireRole::ADMIN),
    get_graph_statistics => Access::Role(RequireRole::VIEWER),
    rebuild_graph => Access::Role(RequireRole::ADMIN),
}

const PATH_ENTITY: &str = "/api/v1/graph/entities/{id}";
const PATH_RELATIONSHIP: &str = "/api/v1/graph/relationships/{id}";
const PATH_SCHEMA: &str = "/api/v1/graph/schema";

/// Create an entity.
#[utoipa::path(
    post,
    path = "/api/v1/graph/entities",
    tag = "graph",
    request_body = CreateEntityBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Created", body = EntityView),
        (status = 400, description = "Every schema violation", body = ErrorBody),
    )
)]
pub async fn create_graph_entity(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    body: web::Json<CreateEntityBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let entity = NewEntity { entity_type: body.entity_type, properties: body.properties, reference: None };
    let (mut entities, _) = graph.create(tenant.0, &actor.0, vec![entity], Vec::new()).await?;
    let created = entities.pop().ok_or_else(|| ApiError::Internal("nothing was created".into()))?;
    Ok(HttpResponse::Created().json(EntityView::from(created)))
}

/// One entity.
#[utoipa::path(
    get,
    path = PATH_ENTITY,
    tag = "graph",
    params(("id" = Uuid, Path, description = "The entity's id")),
    responses(
        Protected,
        (status = 200, description = "The entity", body = EntityView),
        (status = 404, description = "No such entity in the tenant", body = ErrorBody),
    )
)]
pub async fn get_graph_entity(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let entity = graph.entity(tenant.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(EntityView::from(entity)))
}

/// Replace an entity's properties.
#[utoipa::path(
    put,
    path = PATH_ENTITY,
    tag = "graph",
    params(("id" = Uuid, Path, description = "The entity's id")),
    request_body = UpdateEntityBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "Updated", body = EntityView),
        (status = 403, description = "Maintained by the actors, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No such entity", body = ErrorBody),
        (status = 409, description = "The stored version is not the one given", body = ErrorBody),
    )
)]
pub async fn update_graph_entity(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<Uuid>,
    body: web::Json<UpdateEntityBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let entity = graph.update_entity(tenant.0, &actor.0, path.into_inner(), body.properties, body.version).await?;
    Ok(HttpResponse::Ok().json(EntityView::from(entity)))
}

/// Delete an entity and its relationships.
#[utoipa::path(
    delete,
    path = PATH_ENTITY,
    tag = "graph",
    params(("id" = Uuid, Path, description = "The entity's id")),
    responses(
        Protected,
        (status = 204, description = "Deleted"),
        (status = 403, description = "Maintained by the actors, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No such entity", body = ErrorBody),
    )
)]
pub async fn delete_graph_entity(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    graph.delete_entity(tenant.0, &actor.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The relationships at an entity: outgoing, incoming or both.
#[utoipa::path(
    get,
    path = "/api/v1/graph/entities/{id}/relationships",
    tag = "graph",
    params(("id" = Uuid, Path, description = "The entity's id"), RelationshipsParams),
    responses(
        Protected,
        (status = 200, description = "Its relationships", body = Vec<RelationshipView>),
        (status = 400, description = "Unknown direction", body = ErrorBody),
        (status = 404, description = "No such entity", body = ErrorBody),
    )
)]
pub async fn list_graph_entity_relationships(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    path: web::Path<Uuid>,
    query: Query<RelationshipsParams>,
) -> Result<HttpResponse, ApiError> {
    let direction = match query.direction.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("both") => RelationshipDirection::Both,
        Some("outgoing") => RelationshipDirection::Outgoing,
        Some("incoming") => RelationshipDirection::Incoming,
        Some(other) => {
            return Err(ApiError::validation(vec![format!(
                "direction '{other}' is not one of outgoing, incoming, both"
            )]))
        }
    };
    let rels =
        graph.entity_relationships(tenant.0, path.into_inner(), direction, query.relationship_type.as_deref()).await?;
    Ok(HttpResponse::Ok().json(rels.into_iter().map(RelationshipView::from).collect::<Vec<_>>()))
}

/// Create up to 10,000 entities and relationships at once, all or nothing.
#[utoipa::path(
    post,
    path = "/api/v1/graph/bulk",
    tag = "graph",
    request_body = BulkBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "All created", body = BulkView),
        (status = 400, description = "Every violation; nothing was created", body = ErrorBody),
    )
)]
pub async fn bulk_create_graph(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let mut end = |i: usize, what: &str, id: Option<Uuid>, reference: Option<String>| match (id, reference) {
        (Some(id), None) => EndRef::Id(id),
        (None, Some(r)) => EndRef::Ref(r),
        _ => {
            problems.push(format!("relationships[{i}]: give exactly one of {what}Id and {what}Ref"));
            EndRef::Id(Uuid::nil())
        }
    };
    let relationships: Vec<NewRelationship> = body
        .relationships
        .into_iter()
        .enumerate()
        .map(|(i, r)| NewRelationship {
            source: end(i, "source", r.source_id, r.source_ref),
            target: end(i, "target", r.target_id, r.target_ref),
            relationship_type: r.relationship_type,
            weight: r.weight,
            directed: r.directed,
            properties: r.properties,
        })
        .collect();
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let entities = body
        .entities
        .into_iter()
        .map(|e| NewEntity { entity_type: e.entity_type, properties: e.properties, reference: e.reference })
        .collect();
    let (entities, relationships) = graph.create(tenant.0, &actor.0, entities, relationships).await?;
    Ok(HttpResponse::Created().json(BulkView {
        entities: entities.into_iter().map(EntityView::from).collect(),
        relationships: relationships.into_iter().map(RelationshipView::from).collect(),
    }))
}

/// Create a relationship between two entities of the tenant.
#[utoipa::path(
    post,
    path = "/api/v1/graph/relationships",
    tag = "graph",
    request_body = CreateRelationshipBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "Created", body = RelationshipView),
        (status = 400, description = "Every violation (a missing end included)", body = ErrorBody),
    )
)]
pub async fn create_graph_relationship(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    body: web::Json<CreateRelationshipBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let rel = NewRelationship {
        relationship_type: b.relationship_type,
        source: EndRef::Id(b.source_id),
        target: EndRef::Id(b.target_id),
        weight: b.weight,
        directed: b.directed,
        properties: b.properties,
    };
    let (_, mut rels) = graph.create(tenant.0, &actor.0, Vec::new(), vec![rel]).await?;
    let created = rels.pop().ok_or_else(|| ApiError::Internal("nothing was created".into()))?;
    Ok(HttpResponse::Created().json(RelationshipView::from(created)))
}

/// One relationship.
#[utoipa::path(
    get,
    path = PATH_RELATIONSHIP,
    tag = "graph",
    params(("id" = Uuid, Path, description = "The relationship's id")),
    responses(
        Protected,
        (status = 200, description = "The relationship", body = RelationshipView),
        (status = 404, description = "No such relationship in the tenant", body = ErrorBody),
    )
)]
pub async fn get_graph_relationship(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let rel = graph.relationship(tenant.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RelationshipView::from(rel)))
}

/// Change a relationship's weight or properties.
#[utoipa::path(
    put,
    path = PATH_RELATIONSHIP,
    tag = "graph",
    params(("id" = Uuid, Path, description = "The relationship's id")),
    request_body = UpdateRelationshipBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "Updated", body = RelationshipView),
        (status = 403, description = "Maintained by the actors, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No such relationship", body = ErrorBody),
    )
)]
pub async fn update_graph_relationship(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    // serde reads a struct from an array too (`[null, null]`); the
    // document says an object.
    let body = body.into_inner();
    if !body.is_object() {
        return Err(ApiError::BadRequest("the JSON body must be an object".into()));
    }
    let b: UpdateRelationshipBody = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body has the wrong shape: {e}")))?;
    let rel = graph.update_relationship(tenant.0, &actor.0, path.into_inner(), b.weight, b.properties).await?;
    Ok(HttpResponse::Ok().json(RelationshipView::from(rel)))
}

/// Delete a relationship.
#[utoipa::path(
    delete,
    path = PATH_RELATIONSHIP,
    tag = "graph",
    params(("id" = Uuid, Path, description = "The relationship's id")),
    responses(
        Protected,
        (status = 204, description = "Deleted"),
        (status = 403, description = "Maintained by the actors, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No such relationship", body = ErrorBody),
    )
)]
pub async fn delete_graph_relationship(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    graph.delete_relationship(tenant.0, &actor.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's graph schema (the built-in one until an Admin saves one).
#[utoipa::path(
    get,
    path = PATH_SCHEMA,
    tag = "graph",
    responses(
        Protected,
        (status = 200, description = "The schema", body = SchemaView),
    )
)]
pub async fn get_graph_schema(graph: web::Data<GraphService>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SchemaView::from(graph.schema(tenant.0).await?)))
}

/// Replace the schema with a higher version. Refused (409, each offending
/// record in `details`) when stored records would break it, unless `force=true`.
#[utoipa::path(
    put,
    path = PATH_SCHEMA,
    tag = "graph",
    params(SchemaParams),
    request_body = SchemaBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The new schema", body = SchemaView),
        (status = 409, description = "Stored records would break it (details lists them)", body = ErrorBody),
    )
)]
pub async fn replace_graph_schema(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    actor: Audited,
    query: Query<SchemaParams>,
    body: web::Json<SchemaBody>,
) -> Result<HttpResponse, ApiError> {
    let schema = body.into_inner().into_schema(tenant.0)?;
    let saved = graph.replace_schema(tenant.0, &actor.0, schema, query.force).await?;
    Ok(HttpResponse::Ok().json(SchemaView::from(saved)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TypeCount {
    #[serde(rename = "type")]
    type_name: String,
    count: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatisticsView {
    entity_count: usize,
    relationship_count: usize,
    entities_by_type: Vec<TypeCount>,
    relationships_by_type: Vec<TypeCount>,
    schema_version: String,
    cached_queries: usize,
}

fn counts(v: Vec<(String, usize)>) -> Vec<TypeCount> {
    v.into_iter().map(|(type_name, count)| TypeCount { type_name, count }).collect()
}

/// Counts by type, the schema version and the query cache's size.
#[utoipa::path(
    get,
    path = "/api/v1/graph/statistics",
    tag = "graph",
    responses(
        Protected,
        (status = 200, description = "Statistics", body = StatisticsView),
    )
)]
pub async fn get_graph_statistics(graph: web::Data<GraphService>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let s = graph.statistics(tenant.0).await?;
    Ok(HttpResponse::Ok().json(StatisticsView {
        entity_count: s.entity_count,
        relationship_count: s.relationship_count,
        entities_by_type: counts(s.entities_by_type),
        relationships_by_type: counts(s.relationships_by_type),
        schema_version: s.schema_version,
        cached_queries: s.cached_queries,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RebuildView {
    entities_written: usize,
    relationships_written: usize,
    entities_deleted: usize,
    relationships_deleted: usize,
}

/// Recompute the actors' part of the tenant's graph from the store and repair
/// any drift (as `hotswap graph rebuild` does); all zeros when none.
#[utoipa::path(
    post,
    path = "/api/v1/graph/rebuild",
    tag = "graph",
    responses(
        Protected,
        (status = 200, description = "What was repaired", body = RebuildView),
    )
)]
pub async fn rebuild_graph(graph: web::Data<GraphService>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let r = graph.rebuild(tenant.0).await?;
    Ok(HttpResponse::Ok().json(RebuildView {
        entities_written: r.entities_written,
        relationships_written: r.relationships_written,
        entities_deleted: r.entities_deleted,
        relationships_deleted: r.relationships_deleted,
    }))
}
