//! /api/v1/graph queries: match, traverse, shortest path, all paths, impact
//! analysis and the release order of a batch. All read; answers are cached
//! per tenant until a write touches the types a query depends on.

use actix_web::{web, HttpResponse};
use hotswap_actors::graph::{GraphService, ImpactReport, ReleaseItem};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::count_params::count_within;
use super::graph_dto::{
    into_core, ImpactParams, MatchBody, PathBody, QueryView, ReleasePlanBody, TraverseBody, IMPACT_NODES_DEFAULT,
    IMPACT_NODES_MAX,
};
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

api_module! {
    match_graph => Access::Role(RequireRole::VIEWER),
    traverse_graph => Access::Role(RequireRole::VIEWER),
    find_graph_shortest_path => Access::Role(RequireRole::VIEWER),
    find_graph_all_paths => Access::Role(RequireRole::VIEWER),
    analyse_graph_impact => Access::Role(RequireRole::VIEWER),
    plan_graph_release => Access::Role(RequireRole::VIEWER),
}

/// Entities of a type whose properties pass every filter (eq, ne, lt, le, gt,
/// ge, in, contains, startsWith, exists, regex) and that have every
/// relationship pattern, paged by `limit` and `cursor`.
#[utoipa::path(
    post,
    path = "/api/v1/graph/queries/match",
    tag = "graph",
    request_body = MatchBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The matches", body = QueryView),
        (status = 400, description = "Every invalid filter or pattern", body = ErrorBody),
    )
)]
pub async fn match_graph(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    // serde reads a struct from an array too (`[null, null]`); the document
    // says objects, for the body and every filter and pattern in it.
    let body = body.into_inner();
    let items = |v: &serde_json::Value, key: &str| -> Vec<serde_json::Value> {
        v.get(key).and_then(serde_json::Value::as_array).cloned().unwrap_or_default()
    };
    let patterns = items(&body, "relationships");
    let nested = patterns.iter().flat_map(|p| items(p, "filters"));
    let all_objects = body.is_object()
        && items(&body, "filters").iter().chain(patterns.iter()).all(serde_json::Value::is_object)
        && nested.clone().all(|f| f.is_object());
    if !all_objects {
        return Err(ApiError::BadRequest("the JSON body, its filters and its relationships must be objects".into()));
    }
    let body: MatchBody = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body has the wrong shape: {e}")))?;
    let answer = graph.match_entities(tenant.0, into_core(&body)?).await?;
    Ok(HttpResponse::Ok().json(QueryView::from(answer)))
}

/// Breadth- or depth-first from an entity.
#[utoipa::path(
    post,
    path = "/api/v1/graph/queries/traverse",
    tag = "graph",
    request_body = TraverseBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The entities reached, in visit order, and the relationships used", body = QueryView),
        (status = 404, description = "No such start entity", body = ErrorBody),
    )
)]
pub async fn traverse_graph(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    body: web::Json<TraverseBody>,
) -> Result<HttpResponse, ApiError> {
    let answer = graph.traverse(tenant.0, into_core(&body.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(QueryView::from(answer)))
}

/// The cheapest path by weight (Dijkstra).
#[utoipa::path(
    post,
    path = "/api/v1/graph/queries/shortest-path",
    tag = "graph",
    request_body = PathBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The path, in order, with totalWeight and hops", body = QueryView),
        (status = 404, description = "An end does not exist, or no path joins them", body = ErrorBody),
    )
)]
pub async fn find_graph_shortest_path(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    body: web::Json<PathBody>,
) -> Result<HttpResponse, ApiError> {
    body.check_bounds()?;
    let answer = graph.shortest_path(tenant.0, into_core(&body.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(QueryView::from(answer)))
}

/// Simple paths between two entities, fewest hops first, bounded in depth and number.
#[utoipa::path(
    post,
    path = "/api/v1/graph/queries/all-paths",
    tag = "graph",
    request_body = PathBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The paths (possibly none)", body = QueryView),
        (status = 404, description = "An end does not exist", body = ErrorBody),
    )
)]
pub async fn find_graph_all_paths(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    body: web::Json<PathBody>,
) -> Result<HttpResponse, ApiError> {
    let answer = graph.all_paths(tenant.0, into_core(&body.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(QueryView::from(answer)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DependentView {
    module: String,
    version: String,
    depends_on: String,
    requirement: String,
    /// Direct dependents: whether the analysed version meets the requirement.
    satisfied: Option<bool>,
    depth: u32,
    running_nodes: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AffectedNodeView {
    node_id: Uuid,
    hostname: String,
    environment: String,
    modules: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AffectedClusterView {
    cluster_id: Uuid,
    environment: String,
    nodes: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ImpactView {
    module: String,
    version: String,
    dependents: Vec<DependentView>,
    /// The first `nodeLimit` nodes running the module or a dependent, by environment and host name.
    nodes: Vec<AffectedNodeView>,
    /// How many nodes run the module or a dependent in all.
    nodes_total: usize,
    clusters: Vec<AffectedClusterView>,
    tenants: Vec<Uuid>,
    /// One per dependent version the release would break, naming a few of the nodes that run both and counting the rest.
    conflicts: Vec<String>,
}

impl From<ImpactReport> for ImpactView {
    fn from(r: ImpactReport) -> Self {
        ImpactView {
            module: r.module,
            version: r.version,
            dependents: r
                .dependents
                .into_iter()
                .map(|d| DependentView {
                    module: d.module,
                    version: d.version,
                    depends_on: d.depends_on,
                    requirement: d.requirement,
                    satisfied: d.satisfied,
                    depth: d.depth,
                    running_nodes: d.running_nodes,
                })
                .collect(),
            nodes: r
                .nodes
                .into_iter()
                .map(|n| AffectedNodeView {
                    node_id: n.node_id,
                    hostname: n.hostname,
                    environment: n.environment,
                    modules: n.modules,
                })
                .collect(),
            nodes_total: r.nodes_total,
            clusters: r
                .clusters
                .into_iter()
                .map(|c| AffectedClusterView { cluster_id: c.cluster_id, environment: c.environment, nodes: c.nodes })
                .collect(),
            tenants: r.tenants,
            conflicts: r.conflicts,
        }
    }
}

/// What releasing `version` of `module` touches: every module that depends
/// on it (transitively, with the requirement and whether the version meets
/// it), the nodes and clusters running them, the tenants affected.
#[utoipa::path(
    get,
    path = "/api/v1/graph/impact",
    tag = "graph",
    params(ImpactParams),
    responses(
        Protected,
        (status = 200, description = "The impact", body = ImpactView),
        (status = 400, description = "The version is not semver, a parameter is missing, or nodeLimit is outside 1 to 1000", body = ErrorBody),
        (status = 404, description = "The module is not in the graph", body = ErrorBody),
    )
)]
pub async fn analyse_graph_impact(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    query: Query<ImpactParams>,
) -> Result<HttpResponse, ApiError> {
    let node_limit = count_within("nodeLimit", query.node_limit, IMPACT_NODES_DEFAULT, IMPACT_NODES_MAX)?;
    let report = graph.impact(tenant.0, &query.module, &query.version, node_limit).await?;
    Ok(HttpResponse::Ok().json(ImpactView::from(report)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReleaseStepView {
    module: String,
    version: String,
    /// Steps of one wave do not depend on each other.
    wave: u32,
    depends_on: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReleasePlanView {
    steps: Vec<ReleaseStepView>,
}

/// The order in which a batch of module versions must go out: each after the
/// modules of the batch its version depends on (from the registry).
#[utoipa::path(
    post,
    path = "/api/v1/graph/release-plan",
    tag = "graph",
    request_body = ReleasePlanBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "The steps in order", body = ReleasePlanView),
        (status = 400, description = "Every unknown or repeated module", body = ErrorBody),
        (status = 409, description = "A dependency cycle (named in message and details)", body = ErrorBody),
    )
)]
pub async fn plan_graph_release(
    graph: web::Data<GraphService>,
    tenant: Tenant,
    body: web::Json<ReleasePlanBody>,
) -> Result<HttpResponse, ApiError> {
    let items: Vec<ReleaseItem> =
        body.into_inner().modules.into_iter().map(|m| ReleaseItem { module: m.module, version: m.version }).collect();
    let steps = graph.release_plan(tenant.0, &items).await?;
    Ok(HttpResponse::Ok().json(ReleasePlanView {
        steps: steps
            .into_iter()
            .map(|s| ReleaseStepView { module: s.module, version: s.version, wave: s.wave, depends_on: s.depends_on })
            .collect(),
    }))
}
