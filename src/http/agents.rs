//! /api/v1/agents: the agents a tenant has, the agents' WebSocket session
//! and their artifact downloads (enrolment tokens are in agent_tokens.rs).
//! The last two are public to the token middleware: an agent presents its
//! own credential.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{Environment, ModuleSlots};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::count_params::page_within;
use super::deployment_dto::EnvironmentName;
use super::responses::{Protected, Public};
use super::route_table::{api_module, Access};
use crate::agents::{bearer, AgentHub, AgentSession, Credential};
use crate::auth::{Audited, RequireRole, Tenant};
use crate::registry::{Registry, RegistryError};
use crate::web::query_params::Query;
use crate::web::{ApiError, ErrorBody};

/// Agents per page unless `pageSize` says otherwise, and at most.
const DEFAULT_AGENT_PAGE: u32 = 100;
const MAX_AGENT_PAGE: u32 = 1000;

api_module! {
    list_agents => Access::Role(RequireRole::VIEWER),
    remove_agent => Access::Role(RequireRole::ADMIN),
    connect_agent => Access::Public,
    download_agent_artifact => Access::Public,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    node_id: Uuid,
    hostname: String,
    #[schema(value_type = EnvironmentName)]
    environment: Environment,
    agent_version: String,
    labels: BTreeMap<String, String>,
    /// Connected to this instance or, with Redis, to another one.
    connected: bool,
    /// The `cluster.instance_id` of the instance holding the session.
    instance: Option<String>,
    connected_since: Option<DateTime<Utc>>,
    /// The last heartbeat heard from the host, kept while it is away (for a
    /// host not heard since this instance started: when it last connected).
    last_heartbeat: Option<DateTime<Utc>>,
    address: Option<String>,
    enrolled_at: DateTime<Utc>,
    /// Module → its versions on the host (as last reported, or as recorded).
    #[schema(value_type = Object)]
    modules: BTreeMap<String, ModuleSlots>,
}

/// Where an agent is connected, as far as this instance knows.
#[derive(Default)]
struct Connection {
    instance: Option<String>,
    since: Option<DateTime<Utc>>,
    last_heartbeat: Option<DateTime<Utc>>,
    address: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentListQuery {
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// Agents per page: at most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// Only the agents of this environment.
    #[param(value_type = Option<EnvironmentName>)]
    environment: Option<String>,
    /// Only the agent of this host name (exact).
    hostname: Option<String>,
    /// Only agents with a session open (true) or without one (false).
    connected: Option<bool>,
}

/// The tenant's agents, connected or not, by host name, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    params(AgentListQuery),
    responses(
        Protected,
        (status = 200, description = "By hostname", body = Vec<AgentView>, headers(
            ("X-Total-Count" = u64, description = "Agents that pass the filters"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Invalid paging or filters", body = ErrorBody),
    )
)]
pub async fn list_agents(
    hub: web::Data<AgentHub>,
    tenant: Tenant,
    query: Query<AgentListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let asked = page_within(q.page, q.page_size, DEFAULT_AGENT_PAGE, MAX_AGENT_PAGE)?;
    let environment = match q.environment.as_deref().map(str::parse::<Environment>).transpose() {
        Ok(env) => env,
        Err(e) => return Err(ApiError::validation(vec![format!("environment: {e}")])),
    };

    let store = hub.orchestrator.store();
    let live = hub.live_sessions(tenant.0);
    // The filters and the connections are all in hand before any page is
    // cut; only the page's agents without a report read their node record.
    let mut matching = Vec::new();
    for agent in store.list_agents(tenant.0).await? {
        if environment.is_some_and(|env| env != agent.environment)
            || q.hostname.as_deref().is_some_and(|h| h != agent.hostname)
        {
            continue;
        }
        // This instance's own session, else what another instance's notices said.
        let (connection, reported) = match live.get(&agent.node_id) {
            Some(session) => {
                let connection = Connection {
                    instance: Some(hub.orchestrator.instance_id().to_string()),
                    since: Some(session.connected_since),
                    last_heartbeat: session.entry.last_heartbeat(),
                    address: session.address.clone(),
                };
                (Some(connection), session.entry.agent_link().and_then(|l| l.last_report()))
            }
            None => match hub.remote_session(agent.node_id) {
                Some(remote) => {
                    let connection = Connection {
                        instance: remote.holder.instance,
                        since: remote.holder.connected_since,
                        last_heartbeat: remote.entry.last_heartbeat(),
                        address: None,
                    };
                    (Some(connection), remote.report)
                }
                None => (None, None),
            },
        };
        if q.connected.is_some_and(|wanted| wanted != connection.is_some()) {
            continue;
        }
        matching.push((agent, connection, reported));
    }

    let total = matching.len();
    let mut views = Vec::new();
    for (agent, connection, reported) in asked.cut(matching) {
        let modules = match reported {
            Some(report) => report.modules,
            None => store.get_node(tenant.0, agent.node_id).await?.map(|n| n.modules).unwrap_or_default(),
        };
        let connected = connection.is_some();
        let connection = connection.unwrap_or_default();
        // A host that is away keeps the last heartbeat heard from it (its
        // node stays in the cluster); one never heard by this instance (it
        // restarted since) shows when it last connected.
        let last_heartbeat = connection.last_heartbeat.or_else(|| {
            let node = hub.orchestrator.nodes_named(tenant.0, &agent.hostname);
            let heard = node.iter().find(|n| n.node_id == agent.node_id).and_then(|n| n.last_heartbeat());
            Some(heard.unwrap_or(agent.last_seen_at))
        });
        views.push(AgentView {
            node_id: agent.node_id,
            hostname: agent.hostname,
            environment: agent.environment,
            agent_version: agent.agent_version,
            labels: agent.labels,
            connected,
            instance: connection.instance,
            connected_since: connection.since,
            last_heartbeat,
            address: connection.address.or(agent.address),
            enrolled_at: agent.enrolled_at,
            modules,
        });
    }
    Ok(asked.answer(total).json(views))
}

/// Retire a host: its node leaves the cluster on every instance, an open
/// session ends, and its session credential connects no more (enrolling it
/// again needs a new token). Refused while a run may still deploy to the
/// host's environment.
#[utoipa::path(
    delete,
    path = "/api/v1/agents/{nodeId}",
    tag = "agents",
    params(("nodeId" = Uuid, Path, description = "The host's node id (GET /api/v1/agents)")),
    responses(
        Protected,
        (status = 204, description = "Removed"),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "A run may still deploy to the host's environment", body = ErrorBody),
    )
)]
pub async fn remove_agent(
    hub: web::Data<AgentHub>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    hub.remove_agent(tenant.0, actor.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn credential(hub: &AgentHub, req: &HttpRequest) -> Result<Credential, ApiError> {
    let secret = bearer(req).ok_or_else(|| ApiError::Unauthorized("an agent credential is required".into()))?;
    hub.authenticate(secret).await.map_err(|e| match e.strip_prefix("unavailable: ") {
        Some(why) => ApiError::Unavailable(why.to_string()),
        None => ApiError::Unauthorized(e),
    })
}

/// An agent's session (WebSocket). `Authorization: Bearer` an enrolment
/// token (first connection) or the session credential it was given.
#[utoipa::path(
    get,
    path = "/api/v1/agents/connect",
    tag = "agents",
    security(),
    responses(
        Public,
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "No valid agent credential", body = ErrorBody),
        (status = 403, description = "The tenant is not active", body = ErrorBody),
    )
)]
pub async fn connect_agent(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<AgentHub>,
) -> Result<HttpResponse, ApiError> {
    let credential = credential(&hub, &req).await?;
    let address = req.peer_addr().map(|a| a.ip().to_string());
    let session = AgentSession::new(hub.into_inner(), credential, address);
    ws::start(session, &req, stream).map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))
}

/// An artifact, for the agent that was asked to install it. The agent
/// checks digest and signature itself.
#[utoipa::path(
    get,
    path = "/api/v1/agents/artifacts/{name}/{version}",
    tag = "agents",
    security(),
    params(("name" = String, Path), ("version" = String, Path)),
    responses(
        Public,
        (status = 200, description = "The artifact's bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The rest of the artifact from the first byte `Range: bytes=N-` names (resuming a download; `If-Range` with the ETag)", content_type = "application/octet-stream"),
        (status = 401, description = "No valid agent session credential", body = ErrorBody),
        (status = 404, description = "No such version in the agent's tenant", body = ErrorBody),
    )
)]
pub async fn download_agent_artifact(
    req: HttpRequest,
    hub: web::Data<AgentHub>,
    registry: web::Data<Registry>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let Credential::Session(agent) = credential(&hub, &req).await? else {
        return Err(ApiError::Unauthorized("downloads need the session credential, not the enrolment token".into()));
    };
    let (name, version) = path.into_inner();
    let stored = registry
        .store
        .get_module_version(agent.tenant_id, &name, &version)
        .await
        .map_err(RegistryError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("{name} {version} is not in the registry")))?;
    let bytes = registry.artifacts.get(&stored.sha256).await.map_err(RegistryError::from)?;
    let etag = format!("\"{}\"", stored.sha256);
    // The rest of a download that broke off: only for this very artifact
    // (If-Range names its ETag) and a range the server can serve; anything
    // else is answered whole, as HTTP allows.
    let same_artifact = req.headers().get(header::IF_RANGE).is_none_or(|v| v.as_bytes() == etag.as_bytes());
    let resume =
        req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|r| resume_from(r, bytes.len()));
    match resume {
        Some(start) if same_artifact => Ok(HttpResponse::PartialContent()
            .insert_header((header::ETAG, etag))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::CONTENT_RANGE, format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len())))
            .content_type("application/octet-stream")
            .body(bytes.slice(start..))),
        _ => Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, etag))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .content_type("application/octet-stream")
            .body(bytes)),
    }
}

/// The first byte of `Range: bytes=N-` (the form agents send to resume),
/// when it lies inside an artifact of `len` bytes.
fn resume_from(range: &str, len: usize) -> Option<usize> {
    let start: usize = range.trim().strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()?;
    (start < len).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::resume_from;

    #[test]
    fn only_an_open_range_inside_the_artifact_resumes() {
        assert_eq!(resume_from("bytes=10-", 100), Some(10));
        assert_eq!(resume_from(" bytes=0-", 1), Some(0));
        assert_eq!(resume_from("bytes=100-", 100), None);
        assert_eq!(resume_from("bytes=10-20", 100), None);
        assert_eq!(resume_from("bytes=-10", 100), None);
        assert_eq!(resume_from("items=1-", 100), None);
        assert_eq!(resume_from("bytes=1-,5-", 100), None);
    }
}
