//! The tenants facade the orchestrator hands to adapters: provisioning,
//! reads, lifecycle commands, quota use and usage reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::actor::{spawn_tenant, AdmitRun, ApplyCommand, CrashTenant, GetTenant, TenantDeps};
use super::admission::start_of_day;
use super::lifecycle::{TenantChanges, TenantCommand};
use crate::domain::{
    check_subdomain, AuditActor, AuditCategory, Environment, NewAuditEntry, QuotaKind, RunRecord, TenantId,
    TenantRecord, TenantStatus, Tier, DEFAULT_TENANT,
};
use crate::error::CoreError;
use crate::store::{RunEvent, StoreError};
use crate::supervision::Settled;

/// How long a request waits for a tenant actor (provisioning included).
const ACTOR_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub subdomain: String,
    pub tier: Tier,
    pub contact_email: String,
    pub custom_domain: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// One quota with its use now; `used` is `None` where the core does not
/// measure it: live sessions are counted by the HTTP adapter that holds them.
/// Artifact storage is limited in whole GB but used by the byte: its `used`
/// is the GB rounded to the nearest (so a few KB read as 0, not as a full
/// 1 GB quota), and `usedBytes` and `limitBytes` give it exactly.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUse {
    pub quota: &'static str,
    pub limit: u32,
    pub used: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    pub tenant_id: TenantId,
    pub tier: Tier,
    pub status: TenantStatus,
    pub quotas: Vec<QuotaUse>,
    pub measured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub tenant_id: TenantId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total_runs: u64,
    pub runs_by_status: BTreeMap<String, u64>,
    pub node_updates: u64,
    pub approval_events: u64,
    /// Not measured in this build (see [`QuotaUse`]).
    pub artifact_storage_bytes: Option<u64>,
    pub generated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Tenants {
    deps: Arc<TenantDeps>,
    /// Held while an actor is started for a tenant another instance
    /// created, so that two requests do not start two.
    adopting: Arc<tokio::sync::Mutex<()>>,
}

fn check_metadata(metadata: &BTreeMap<String, String>, errors: &mut Vec<String>) {
    if metadata.len() > 50 {
        errors.push("metadata may hold at most 50 keys".into());
    }
    // Characters, not bytes, and keys of ASCII white space alone refused, as
    // the API document states them.
    let chars = |s: &str| s.chars().count();
    let blank = |s: &str| s.chars().all(|c| c.is_ascii_whitespace());
    if metadata.iter().any(|(k, v)| blank(k) || chars(k) > 100 || chars(v) > 1000) {
        errors.push("metadata keys must be 1-100 characters and values at most 1000".into());
    }
}

/// Checks the fields an update may change, normalising them in place.
fn check_changes(changes: &mut TenantChanges, errors: &mut Vec<String>) {
    if let Some(name) = &mut changes.name {
        *name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push("name must be 1-200 characters".into());
        }
    }
    // Fields with a pattern in the API document are not trimmed: the server
    // refuses what the document refuses.
    if let Some(email) = &changes.contact_email {
        if !crate::domain::is_email(email) {
            errors.push("contactEmail must be a valid email address".into());
        }
    }
    if let Some(domain) = &mut changes.custom_domain {
        *domain = domain.to_lowercase();
        if !domain.is_empty() && !crate::domain::is_host_name(domain) {
            errors.push("customDomain must be a host name such as deploy.example.com".into());
        }
    }
    if let Some(metadata) = &changes.metadata {
        check_metadata(metadata, errors);
    }
}

impl Tenants {
    pub(crate) fn new(deps: TenantDeps) -> Tenants {
        Tenants { deps: Arc::new(deps), adopting: Default::default() }
    }

    /// Seeds the system tenant on a fresh store and starts an actor for
    /// every live tenant, waiting until each has settled (clusters up).
    pub(crate) async fn start(&self) -> Result<(), CoreError> {
        let store = &self.deps.store;
        if store.get_tenant(DEFAULT_TENANT).await?.is_none() {
            let system = TenantRecord::system(super::now());
            let audit = NewAuditEntry::new(
                DEFAULT_TENANT,
                AuditActor::system(),
                AuditCategory::TenantManagement,
                "TenantCreated",
            )
            .resource("Tenant", DEFAULT_TENANT)
            .message("system tenant seeded at start-up");
            match store.create_tenant(&system, std::slice::from_ref(&audit)).await {
                // Another replica seeded it first.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let live: Vec<TenantRecord> =
            store.list_tenants(None).await?.into_iter().filter(|t| t.status.is_live()).collect();
        for record in &live {
            spawn_tenant(self.deps.clone(), record.clone());
        }
        self.settled(live.iter().map(|t| t.tenant_id)).await
    }

    /// Waits until the actors of `tenants` have started and settled.
    async fn settled(&self, tenants: impl IntoIterator<Item = TenantId>) -> Result<(), CoreError> {
        // The supervisor handles messages in order: once it answers, every start function ran.
        self.deps.supervisor.send(Settled).await.map_err(|e| CoreError::Internal(e.to_string()))?;
        for tenant in tenants {
            if let Some(addr) = self.deps.directory.get(tenant) {
                // Answered once `started` has finished settling; a deleted one has stopped.
                let _ = addr.send(GetTenant).timeout(ACTOR_TIMEOUT).await;
            }
        }
        Ok(())
    }

    /// Creates a tenant, provisions its clusters and answers it once Active.
    pub async fn create(&self, new: NewTenant, actor: AuditActor) -> Result<TenantRecord, CoreError> {
        let mut errors = Vec::new();
        let subdomain = check_subdomain(&new.subdomain).unwrap_or_else(|e| {
            errors.push(e);
            String::new()
        });
        let mut changes = TenantChanges {
            name: Some(new.name),
            contact_email: Some(new.contact_email),
            custom_domain: new.custom_domain,
            metadata: Some(new.metadata),
        };
        check_changes(&mut changes, &mut errors);
        if !errors.is_empty() {
            return Err(CoreError::Validation(errors));
        }
        self.ensure_domain_free(TenantId::nil(), changes.custom_domain.as_deref()).await?;
        let now = super::now();
        let record = TenantRecord {
            tenant_id: Uuid::new_v4(),
            name: changes.name.unwrap_or_default(),
            subdomain,
            custom_domain: changes.custom_domain.filter(|d| !d.is_empty()),
            contact_email: changes.contact_email.unwrap_or_default(),
            status: TenantStatus::Provisioning,
            tier: new.tier,
            quota: new.tier.default_quota(),
            metadata: changes.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
            suspended_at: None,
            deleted_at: None,
            paused_runs: Vec::new(),
            revision: 1,
        };
        let audit = NewAuditEntry::new(record.tenant_id, actor, AuditCategory::TenantManagement, "TenantCreated")
            .resource("Tenant", record.tenant_id)
            .message(format!("tenant '{}' ({}) created on tier {}", record.name, record.subdomain, record.tier))
            .details(serde_json::json!({ "subdomain": record.subdomain, "tier": record.tier.as_str() }));
        match self.deps.store.create_tenant(&record, &super::actor::in_both_trails(audit)).await {
            Ok(()) => {}
            Err(StoreError::Conflict(m)) => {
                return Err(CoreError::Refused(self.taken_by_deleted(&record.subdomain, m).await))
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(tenant = %record.tenant_id, subdomain = %record.subdomain, "tenant created; provisioning");
        let id = record.tenant_id;
        spawn_tenant(self.deps.clone(), record);
        self.settled([id]).await?;
        self.get(id).await
    }

    /// Refuses (409) a custom domain another tenant that is not deleted
    /// claims (domains are kept lowercase): one host name for two tenants
    /// would make it useless for routing. Checked, not locked: two tenants
    /// claiming one domain at the same moment may both get it.
    async fn ensure_domain_free(&self, tenant: TenantId, domain: Option<&str>) -> Result<(), CoreError> {
        let Some(domain) = domain.filter(|d| !d.is_empty()) else { return Ok(()) };
        let tenants = self.deps.store.list_tenants(None).await?;
        let holder = tenants.iter().find(|t| {
            t.tenant_id != tenant
                && t.status.is_live()
                && t.custom_domain.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(domain))
        });
        match holder {
            Some(t) => Err(CoreError::Refused(format!(
                "customDomain '{domain}' is taken by tenant {} ({}); a host name names one tenant",
                t.tenant_id, t.subdomain
            ))),
            None => Ok(()),
        }
    }

    /// The refusal of a subdomain that is taken, saying so when a deleted
    /// tenant holds it: a deletion is soft, and the tenant keeps its
    /// subdomain, which otherwise reads as if someone were using it.
    async fn taken_by_deleted(&self, subdomain: &str, refusal: String) -> String {
        let deleted = self.deps.store.list_tenants(Some(TenantStatus::Deleted)).await.unwrap_or_default();
        match deleted.iter().find(|t| t.subdomain.eq_ignore_ascii_case(subdomain)) {
            Some(holder) => format!(
                "Subdomain '{subdomain}' belongs to tenant {} ('{}'), deleted{}; a deleted tenant keeps its subdomain \
                 (and its users' usernames) for good: choose another subdomain",
                holder.tenant_id,
                holder.name,
                holder.deleted_at.map(|at| format!(" at {}", at.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default()
            ),
            None => refusal,
        }
    }

    pub async fn get(&self, tenant: TenantId) -> Result<TenantRecord, CoreError> {
        self.deps
            .store
            .get_tenant(tenant)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("Tenant {tenant} not found")))
    }

    /// Every tenant, or those with `status`, oldest first.
    pub async fn list(&self, status: Option<TenantStatus>) -> Result<Vec<TenantRecord>, CoreError> {
        Ok(self.deps.store.list_tenants(status).await?)
    }

    /// Applies an operator's command through the tenant's actor.
    pub async fn apply(
        &self,
        tenant: TenantId,
        command: TenantCommand,
        actor: AuditActor,
    ) -> Result<TenantRecord, CoreError> {
        let mut command = command;
        if let TenantCommand::Update(changes) = &mut command {
            let mut errors = Vec::new();
            check_changes(changes, &mut errors);
            if !errors.is_empty() {
                return Err(CoreError::Validation(errors));
            }
            self.ensure_domain_free(tenant, changes.custom_domain.as_deref()).await?;
        }
        let addr = self.actor(tenant).await?;
        addr.send(ApplyCommand { command, actor })
            .timeout(ACTOR_TIMEOUT)
            .await
            .map_err(|_| CoreError::Unavailable(format!("tenant {tenant} is restarting; try again")))?
    }

    /// The live actor of `tenant`: 404 for an unknown tenant, 409 for a deleted one.
    async fn actor(&self, tenant: TenantId) -> Result<Addr<super::TenantActor>, CoreError> {
        if let Some(addr) = self.deps.directory.get(tenant) {
            return Ok(addr);
        }
        let record = self.get(tenant).await?;
        match record.status {
            TenantStatus::Deleted => Err(CoreError::Refused(format!("Tenant {tenant} is Deleted"))),
            _ => self.adopt(record).await,
        }
    }

    /// Starts the actor (and the simulated clusters) of a tenant this
    /// instance has none for: one created on another instance since this one
    /// started. It settles as at start-up; node ids derive from the tenant and
    /// the host name, so instances provisioning the same tenant share its
    /// stored nodes. A tenant whose actor is restarting here, or that another
    /// instance is still provisioning or deleting, is not adopted: 503.
    async fn adopt(&self, record: TenantRecord) -> Result<Addr<super::TenantActor>, CoreError> {
        let tenant = record.tenant_id;
        let unavailable = || CoreError::Unavailable(format!("tenant {tenant} is restarting; try again"));
        if !matches!(record.status, TenantStatus::Active | TenantStatus::Suspended) {
            return Err(unavailable());
        }
        let _one = self.adopting.lock().await;
        if let Some(addr) = self.deps.directory.get(tenant) {
            return Ok(addr);
        }
        if self.deps.directory.known(tenant) {
            return Err(unavailable());
        }
        tracing::info!(%tenant, status = %record.status, "tenant created on another instance; starting its actor here");
        spawn_tenant(self.deps.clone(), record);
        self.settled([tenant]).await?;
        self.deps.directory.get(tenant).ok_or_else(unavailable)
    }

    /// Makes sure this instance has the tenant's actor and clusters, if the
    /// tenant is live; for views (the clusters) that read the local ones.
    pub async fn here(&self, tenant: TenantId) {
        if self.deps.directory.known(tenant) {
            return;
        }
        match self.deps.store.get_tenant(tenant).await {
            Ok(Some(record)) => {
                if let Err(e) = self.adopt(record).await {
                    tracing::debug!(%tenant, error = %e, "tenant not started here");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(%tenant, error = %e, "cannot look the tenant up"),
        }
    }

    /// Stores a new run through its tenant's actor, which refuses it when the
    /// tenant is not active or the run would exceed a quota.
    pub(crate) async fn admit(
        &self,
        run: RunRecord,
        events: Vec<RunEvent>,
        actor: AuditActor,
        span: tracing::Span,
    ) -> Result<(), CoreError> {
        let tenant = run.tenant_id;
        let addr = match self.deps.directory.get(tenant) {
            Some(addr) => addr,
            None => match self.deps.store.get_tenant(tenant).await? {
                None => return Err(CoreError::Forbidden(format!("Tenant {tenant} does not exist; runs cannot start"))),
                Some(t) if t.status != TenantStatus::Active => {
                    return Err(CoreError::Forbidden(format!("Tenant {tenant} is {}; runs cannot start", t.status)))
                }
                // Created on another instance: its actor starts here.
                Some(t) => self.adopt(t).await?,
            },
        };
        addr.send(AdmitRun { run, events, actor, span })
            .timeout(ACTOR_TIMEOUT)
            .await
            .map_err(|_| CoreError::Unavailable(format!("tenant {tenant} is restarting; try again")))?
    }

    /// Refuses steering a run (verbs, rollback) of a tenant that is not
    /// active as stored: another instance may have suspended it.
    pub async fn ensure_active_stored(&self, tenant: TenantId) -> Result<(), CoreError> {
        match self.deps.store.get_tenant(tenant).await? {
            Some(t) if t.status != TenantStatus::Active => {
                Err(CoreError::Forbidden(format!("Tenant {tenant} is {}; its runs cannot be steered", t.status)))
            }
            _ => Ok(()),
        }
    }

    /// Refuses steering a run of a tenant that is neither active nor
    /// suspended as stored (for an Admin of the system tenant, who may abort
    /// a suspended tenant's runs).
    pub async fn ensure_active_or_suspended_stored(&self, tenant: TenantId) -> Result<(), CoreError> {
        match self.deps.store.get_tenant(tenant).await? {
            Some(t) if !matches!(t.status, TenantStatus::Active | TenantStatus::Suspended) => {
                Err(CoreError::Forbidden(format!("Tenant {tenant} is {}; its runs cannot be steered", t.status)))
            }
            _ => Ok(()),
        }
    }

    /// Has this instance's actor of `tenant` read the tenant again from the
    /// store, when told that another instance changed it. Answers at once.
    pub fn refresh(&self, tenant: TenantId) {
        if let Some(addr) = self.deps.directory.get(tenant) {
            addr.do_send(super::actor::RefreshTenant);
        }
    }

    /// Refuses steering a run of a tenant that is not active as this
    /// instance's actor last saw it (no store read; for agent sessions).
    pub fn ensure_active(&self, tenant: TenantId) -> Result<(), CoreError> {
        match self.deps.directory.status(tenant) {
            Some(status) if status != TenantStatus::Active => {
                Err(CoreError::Forbidden(format!("Tenant {tenant} is {status}; its runs cannot be steered")))
            }
            _ => Ok(()),
        }
    }

    /// The tenant's status as its actor last saw it, without a store read.
    pub fn status(&self, tenant: TenantId) -> Option<TenantStatus> {
        self.deps.directory.status(tenant)
    }

    /// Current use against each quota.
    pub async fn usage(&self, tenant: TenantId) -> Result<TenantUsage, CoreError> {
        let record = self.get(tenant).await?;
        let now = super::now();
        let counts = self.deps.store.run_counts(tenant, start_of_day(now), "").await?;
        let nodes = Environment::ALL
            .into_iter()
            .map(|env| self.deps.clusters.directory.nodes(tenant, env).len() as u64)
            .max()
            .unwrap_or(0);
        let versions = self.deps.store.all_module_versions(tenant).await?;
        let stored = crate::domain::stored_bytes(&versions);
        // The registry's modules, counted as its upload quota check counts
        // them: distinct names with at least one stored version.
        let modules = versions.iter().map(|v| v.name()).collect::<std::collections::BTreeSet<_>>().len() as u64;
        let q = &record.quota;
        let row = |quota: QuotaKind, limit, used| QuotaUse {
            quota: quota.as_str(),
            limit,
            used,
            used_bytes: None,
            limit_bytes: None,
        };
        let gb = crate::domain::BYTES_PER_GB;
        let storage = QuotaUse {
            used_bytes: Some(stored),
            limit_bytes: Some(u64::from(q.max_artifact_storage_gb).saturating_mul(gb)),
            ..row(QuotaKind::ArtifactStorage, q.max_artifact_storage_gb, Some(stored.saturating_add(gb / 2) / gb))
        };
        let quotas = vec![
            row(QuotaKind::ConcurrentRuns, q.max_concurrent_runs, Some(counts.active)),
            row(QuotaKind::RunsPerDay, q.max_runs_per_day, Some(counts.created_since)),
            row(QuotaKind::NodesPerEnvironment, q.max_nodes_per_environment, Some(nodes)),
            row(QuotaKind::Modules, q.max_modules, Some(modules)),
            storage,
            row(QuotaKind::WebsocketSessions, q.max_websocket_sessions, None),
        ];
        Ok(TenantUsage { tenant_id: tenant, tier: record.tier, status: record.status, quotas, measured_at: now })
    }

    /// What the tenant's runs did in `[from, to]`.
    pub async fn report(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<UsageReport, CoreError> {
        let counts = self.deps.store.usage_counts(tenant, from, to).await?;
        // What the tenant's artifacts take now (storage is not kept per period).
        let stored = crate::domain::stored_bytes(&self.deps.store.all_module_versions(tenant).await?);
        Ok(UsageReport {
            tenant_id: tenant,
            from,
            to,
            total_runs: counts.runs_by_status.values().sum(),
            runs_by_status: counts.runs_by_status,
            node_updates: counts.node_updates,
            approval_events: counts.approval_events,
            artifact_storage_bytes: Some(stored),
            generated_at: super::now(),
        })
    }

    /// Makes the tenant's actor panic; false when it has none running.
    pub fn crash(&self, tenant: TenantId) -> bool {
        match self.deps.directory.get(tenant) {
            Some(addr) => {
                addr.do_send(CrashTenant);
                true
            }
            None => false,
        }
    }
}
