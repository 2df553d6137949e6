//! /api/v1/agents: enrolment tokens (Admin), the agents a tenant has, the
//! agents' WebSocket session and their artifact downloads. The last two are
//! public to the token middleware: an agent presents its own credential.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{EnrolmentToken, Environment, ModuleSlots};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::count_params::page_within;
use super::deployment_dto::EnvironmentName;
use super::responses::{JsonBody, Protected, Public};
use super::route_table::{api_module, Access};
use super::schema_limits::{blank, longer_than};
use crate::agents::{bearer, AgentHub, AgentSession, Credential};
use crate::auth::{Audited, RequireRole, Tenant};
use crate::registry::{Registry, RegistryError};
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_enrolment_token => Access::Role(RequireRole::ADMIN),
    list_enrolment_tokens => Access::Role(RequireRole::ADMIN),
    revoke_enrolment_token => Access::Role(RequireRole::ADMIN),
    list_agents => Access::Role(RequireRole::VIEWER),
    remove_agent => Access::Role(RequireRole::ADMIN),
    connect_agent => Access::Public,
    download_agent_artifact => Access::Public,
}

const PATH_TOKENS: &str = "/api/v1/agents/tokens";

/// Agents (and enrolment tokens) per page unless `pageSize` says otherwise.
const DEFAULT_AGENT_PAGE: u32 = 100;
const MAX_AGENT_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenBody {
    #[schema(value_type = EnvironmentName)]
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
    query: web::Query<TokenListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let asked = page_within(q.page, q.page_size, DEFAULT_AGENT_PAGE, MAX_AGENT_PAGE)?;
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
    let page: Vec<TokenView> =
        tokens.into_iter().skip(asked.skip()).take(asked.size as usize).map(TokenView::from).collect();
    let mut answer = HttpResponse::Ok();
    for header in asked.headers(total) {
        answer.insert_header(header);
    }
    Ok(answer.json(page))
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
    query: web::Query<AgentListQuery>,
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
    for (agent, connection, reported) in matching.into_iter().skip(asked.skip()).take(asked.size as usize) {
        let modules = match reported {
            Some(report) => report.modules,
            None => store.get_node(tenant.0, agent.node_id).await?.map(|n| n.modules).unwrap_or_default(),
        };
        let connected = connection.is_some();
        let connection = connection.unwrap_or_default();
        views.push(AgentView {
            node_id: agent.node_id,
            hostname: agent.hostname,
            environment: agent.environment,
            agent_version: agent.agent_version,
            labels: agent.labels,
            connected,
            instance: connection.instance,
            connected_since: connection.since,
            last_heartbeat: connection.last_heartbeat,
            address: connection.address.or(agent.address),
            enrolled_at: agent.enrolled_at,
            modules,
        });
    }
    let mut answer = HttpResponse::Ok();
    for header in asked.headers(total) {
        answer.insert_header(header);
    }
    Ok(answer.json(views))
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
