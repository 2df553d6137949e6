//! /api/v1/deployments/batch: several module versions deployed in the order
//! of the graph's release plan, each run after the runs of the modules it
//! depends on. The batch is stored at once and driven by the core's
//! `BatchRunner`, so it survives a restart; its status is read here.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{
    AuditCategory, BatchRecord, BatchStatus, BatchStep, BatchStepStatus, Environment, NewAuditEntry, Strategy,
};
use hotswap_actors::error::CoreError;
use hotswap_actors::graph::{GraphService, ReleaseItem};
use hotswap_actors::orchestrator::downgrade;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::count_params::count_within;
use super::deployment_dto::{CreateDeploymentBody, ITEM_FIELDS};
use super::graph_dto::ReleaseModule;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::{Audited, RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::{ApiError, AppState, ErrorBody};

api_module! {
    create_deployment_batch => Access::Role(RequireRole::DEPLOYER),
    list_deployment_batches => Access::Role(RequireRole::VIEWER),
    get_deployment_batch => Access::Role(RequireRole::VIEWER),
}

/// Creating and listing batches share it.
const PATH_BATCHES: &str = "/api/v1/deployments/batch";

/// Module versions one batch may hold.
const MAX_BATCH: usize = 50;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBatchBody {
    /// The module versions, in any order: the release plan orders them.
    pub modules: Vec<ReleaseModule>,
    /// Development, QA, Staging or Production, in any case: every run's target.
    #[schema(example = "QA")]
    pub target_environment: String,
    #[schema(example = "me@example.com")]
    pub requester_email: String,
    /// Overrides the target environment's strategy for every run.
    pub strategy: Option<String>,
    /// Metadata every run carries.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Deploy versions lower than the highest one the tenant's nodes run, as
    /// `allowDowngrade` does for one run: without it such an item is refused
    /// (422), and a step that has become one by the time it starts fails the
    /// batch. Each downgrade is audited as `DowngradeAllowed`.
    #[serde(default)]
    pub allow_downgrade: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchStepView {
    module: String,
    version: String,
    wave: u32,
    depends_on: Vec<String>,
    /// Pending, Starting, Running, Succeeded, Failed or Stopped.
    status: String,
    execution_id: Option<Uuid>,
    message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    batch_id: Uuid,
    /// Running, Succeeded or Failed.
    status: String,
    message: String,
    target_environment: String,
    steps: Vec<BatchStepView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn step_status(s: BatchStepStatus) -> &'static str {
    match s {
        BatchStepStatus::Pending => "Pending",
        BatchStepStatus::Starting => "Starting",
        BatchStepStatus::Running => "Running",
        BatchStepStatus::Succeeded => "Succeeded",
        BatchStepStatus::Failed => "Failed",
        BatchStepStatus::Stopped => "Stopped",
    }
}

impl From<&BatchRecord> for BatchView {
    fn from(b: &BatchRecord) -> Self {
        BatchView {
            batch_id: b.batch_id,
            status: b.status.as_str().into(),
            message: b.message.clone(),
            target_environment: b.target_environment.as_str().into(),
            steps: b
                .steps
                .iter()
                .map(|s| BatchStepView {
                    module: s.module.clone(),
                    version: s.version.clone(),
                    wave: s.wave,
                    depends_on: s.depends_on.clone(),
                    status: step_status(s.status).into(),
                    execution_id: s.execution_id,
                    message: s.message.clone(),
                })
                .collect(),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

/// The create body of one item's run: what `POST /deployments` would get.
fn item_body(body: &CreateBatchBody, item: Option<&ReleaseModule>) -> CreateDeploymentBody {
    CreateDeploymentBody {
        module_name: item.map(|i| i.module.clone()),
        version: item.map(|i| i.version.clone()),
        target_environment: Some(body.target_environment.clone()),
        requester_email: Some(body.requester_email.clone()),
        description: None,
        require_approval: None,
        metadata: Some(body.metadata.clone()),
        strategy: body.strategy.clone(),
        canary_steps: None,
        allow_downgrade: None,
    }
}

/// Characters of an item's module or version a problem repeats: the item
/// has not been checked yet and may be anything.
const ITEM_CHARS_NAMED: usize = 64;

/// How a problem names an item: `module version`, each cut when long.
fn item_label(module: &str, version: &str) -> String {
    let cut = |s: &str| {
        let start: String = s.chars().take(ITEM_CHARS_NAMED).collect();
        if start.len() < s.len() {
            format!("{start}…")
        } else {
            start
        }
    };
    format!("{} {}", cut(module), cut(version))
}

/// Every problem with the body's own fields, before the plan is made. Each
/// item is checked as `POST /deployments` checks its body (the same code):
/// a problem with a field the runs share is said once, one with an item's
/// module or version names the item.
fn check_body(body: &CreateBatchBody) -> Result<(Environment, Option<Strategy>), ApiError> {
    let mut problems = Vec::new();
    if body.modules.is_empty() || body.modules.len() > MAX_BATCH {
        problems.push(format!("modules must hold 1 to {MAX_BATCH} module versions"));
    }
    let is_item_field = |field: &str| ITEM_FIELDS.contains(&field);
    problems.extend(item_body(body, None).problems().into_iter().filter(|(f, _)| !is_item_field(f)).map(|(_, m)| m));
    for item in body.modules.iter().take(MAX_BATCH) {
        let label = item_label(&item.module, &item.version);
        let own = item_body(body, Some(item)).problems().into_iter().filter(|(f, _)| is_item_field(f));
        problems.extend(own.map(|(_, m)| format!("{label}: {m}")));
    }
    let env = body.target_environment.parse::<Environment>().ok();
    match (env, problems.is_empty()) {
        (Some(env), true) => Ok((env, body.strategy.as_deref().and_then(Strategy::parse))),
        _ => Err(ApiError::validation(problems)),
    }
}

/// Deploy several module versions in dependency order: the release plan's
/// waves, each run starting once the runs of the modules it depends on have
/// succeeded. The first failure stops the batch (its other runs are aborted
/// and restore what they changed). Answers at once; the batch runs on.
#[utoipa::path(
    post,
    path = PATH_BATCHES,
    tag = "deployments",
    request_body = CreateBatchBody,
    responses(
        Protected, JsonBody,
        (status = 202, description = "The batch is stored and running", body = BatchView,
            headers(("Location" = String, description = "The batch's URL"))),
        (status = 400, description = "Invalid fields, an unknown or repeated module, or a run the request would make invalid", body = ErrorBody),
        (status = 409, description = "A dependency cycle among the modules (named)", body = ErrorBody),
        (status = 422, description = "An item below the highest version the tenant's nodes run, without allowDowngrade (each named)", body = ErrorBody),
    )
)]
pub async fn create_deployment_batch(
    state: web::Data<AppState>,
    graph: web::Data<GraphService>,
    tenant: Tenant,
    body: web::Json<CreateBatchBody>,
    audited: Audited,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (target_environment, strategy) = check_body(&body)?;
    let items: Vec<ReleaseItem> =
        body.modules.iter().map(|m| ReleaseItem { module: m.module.clone(), version: m.version.clone() }).collect();
    let plan = graph.release_plan(tenant.0, &items).await?;
    let now = Utc::now();
    let mut batch = BatchRecord {
        tenant_id: tenant.0,
        batch_id: Uuid::new_v4(),
        target_environment,
        strategy,
        requester_email: body.requester_email,
        metadata: body.metadata,
        allow_downgrade: body.allow_downgrade,
        created_by: audited.0.clone(),
        status: BatchStatus::Running,
        message: format!("{} module versions in {} waves", plan.len(), plan.iter().map(|s| s.wave).max().unwrap_or(0)),
        steps: plan
            .into_iter()
            .map(|s| BatchStep {
                module: s.module,
                version: s.version,
                wave: s.wave,
                depends_on: s.depends_on,
                status: BatchStepStatus::Pending,
                execution_id: None,
                message: String::new(),
                downgrade_audited: false,
            })
            .collect(),
        created_at: now,
        updated_at: now,
    };
    // Each run must be one the API would accept on its own: the core's checks,
    // then the downgrade rule, as `POST /deployments` applies them.
    let mut problems = Vec::new();
    for step in &batch.steps {
        let request = batch.run_request(step);
        match state.orchestrator.check_request(&request) {
            Ok(()) => {}
            Err(CoreError::Validation(found)) => {
                problems.extend(found.into_iter().map(|p| format!("{} {}: {p}", step.module, step.version)))
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let store = state.orchestrator.store();
    let mut downgrades = Vec::new();
    for (i, step) in batch.steps.iter().enumerate() {
        let request = batch.run_request(step);
        if let Some(what) = downgrade::downgrade_of(store.as_ref(), tenant.0, &request).await? {
            downgrades.push((i, request, what));
        }
    }
    if !downgrades.is_empty() && !body.allow_downgrade {
        let whats: Vec<&str> = downgrades.iter().map(|(_, _, what)| what.as_str()).collect();
        let them = if whats.len() == 1 { "it" } else { "them" };
        return Err(ApiError::Unprocessable(format!(
            "{}; send allowDowngrade: true to deploy {them} anyway",
            whats.join("; ")
        )));
    }
    let how = format!("allowDowngrade (deployment batch {})", batch.batch_id);
    let entries: Vec<NewAuditEntry> = downgrades
        .iter()
        .map(|(_, request, what)| downgrade::downgrade_allowed_entry(tenant.0, &audited.0, request, what, &how))
        .collect();
    if !entries.is_empty() {
        // Written first, as a single create writes its entry before the run:
        // a downgrade is never deployed unaudited.
        store.append_audit(&entries).await?;
    }
    for (i, _, _) in downgrades {
        batch.steps[i].downgrade_audited = true;
    }
    batch.updated_at = Utc::now();
    let audit = NewAuditEntry::new(tenant.0, audited.0, AuditCategory::Deployment, "DeploymentBatchCreated")
        .resource("DeploymentBatch", batch.batch_id)
        .message(batch.message.clone());
    store.save_batch(&batch, &audit).await?;
    let location = format!("/api/v1/deployments/batch/{}", batch.batch_id);
    Ok(HttpResponse::Accepted().insert_header(("Location", location)).json(BatchView::from(&batch)))
}

/// The most batches one answer lists.
const MAX_LISTED: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchListQuery {
    /// How many of the newest batches: 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The next page: the batches created before this one (the last batch of the previous page).
    before: Option<Uuid>,
}

/// The tenant's deployment batches, newest first; `before` pages back from
/// a batch of the previous page.
#[utoipa::path(
    get,
    path = PATH_BATCHES,
    tag = "deployments",
    params(BatchListQuery),
    responses(
        Protected,
        (status = 200, description = "The newest batches first", body = Vec<BatchView>),
        (status = 400, description = "A limit outside 1 to 100, or an unknown parameter", body = ErrorBody),
        (status = 404, description = "`before` names no batch of the tenant", body = ErrorBody),
    )
)]
pub async fn list_deployment_batches(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: Query<BatchListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = count_within("limit", query.limit, 20, MAX_LISTED)?;
    let store = state.orchestrator.store();
    let before = match query.before {
        None => None,
        Some(id) => match store.get_batch(tenant.0, id).await? {
            Some(batch) => Some(batch.cursor()),
            None => return Err(ApiError::NotFound(format!("Deployment batch {id} not found (before)"))),
        },
    };
    let batches = store.recent_batches(tenant.0, limit, before).await?;
    Ok(HttpResponse::Ok().json(batches.iter().map(BatchView::from).collect::<Vec<_>>()))
}

/// A deployment batch: its status and each step's run.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/batch/{batchId}",
    tag = "deployments",
    params(("batchId" = String, Path, description = "The batch's id")),
    responses(
        Protected,
        (status = 200, description = "The batch", body = BatchView),
        (status = 404, description = "No such batch in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn get_deployment_batch(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let raw = path.into_inner();
    let not_found = || ApiError::NotFound(format!("Deployment batch {raw} not found"));
    let id = Uuid::parse_str(&raw).map_err(|_| not_found())?;
    let batch = state.orchestrator.store().get_batch(tenant.0, id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(BatchView::from(&batch)))
}
