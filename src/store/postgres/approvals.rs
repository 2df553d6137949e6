//! Approval gates. A decision is a conditional update of a pending row, so
//! that exactly one of several concurrent decisions (or the expiry) wins, on
//! one instance or many.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, DecisionOutcome, NewAuditEntry, RunRecord, TenantId,
};
use hotswap_actors::store::{ApprovalStore, RunEvent, StoreError, StoreResult};
use uuid::Uuid;

use super::audit::insert_audit;
use super::codec;
use super::errors::Failure;
use super::runs::{write_revision, EventRow, RunRow};
use super::schema::approvals;
use super::PgStore;

/// The partial unique index that lets a run wait on one approval at a time.
const ONE_PENDING_INDEX: &str = "approvals_one_pending_per_run";

#[derive(Insertable)]
#[diesel(table_name = approvals)]
struct ApprovalRow<'a> {
    tenant_id: Uuid,
    approval_id: Uuid,
    execution_id: Uuid,
    status: &'static str,
    requested_at: DateTime<Utc>,
    timeout_at: DateTime<Utc>,
    module_name: &'a str,
    version: &'a str,
    target_environment: &'static str,
    requester_id: Option<Uuid>,
    requester_email: &'a str,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = approvals, check_for_backend(Pg))]
struct StoredApproval {
    tenant_id: Uuid,
    approval_id: Uuid,
    execution_id: Uuid,
    status: String,
    requested_at: DateTime<Utc>,
    timeout_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by_id: Option<Uuid>,
    decided_by_email: Option<String>,
    reason: Option<String>,
    module_name: String,
    version: String,
    target_environment: String,
    requester_id: Option<Uuid>,
    requester_email: String,
}

impl StoredApproval {
    fn decode(self) -> StoreResult<ApprovalRecord> {
        let status = ApprovalStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Other(format!("unknown approval status '{}' in the store", self.status)))?;
        Ok(ApprovalRecord {
            tenant_id: self.tenant_id,
            approval_id: self.approval_id,
            execution_id: self.execution_id,
            module_name: self.module_name,
            version: self.version,
            target_environment: codec::environment(&self.target_environment)?,
            requester_id: self.requester_id,
            requester_email: self.requester_email,
            status,
            requested_at: self.requested_at,
            timeout_at: self.timeout_at,
            decided_at: self.decided_at,
            decided_by_id: self.decided_by_id,
            decided_by_email: self.decided_by_email,
            reason: self.reason,
        })
    }
}

fn decode_all(rows: Vec<StoredApproval>) -> StoreResult<Vec<ApprovalRecord>> {
    rows.into_iter().map(StoredApproval::decode).collect()
}

#[async_trait]
impl ApprovalStore for PgStore {
    async fn open_approval(&self, approval: &ApprovalRecord, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        let run_row = RunRow::new(run)?;
        let event_rows: Vec<EventRow> = events.iter().map(EventRow::new).collect();
        let audit = hotswap_actors::audit::run_entries(run, events);
        let row = ApprovalRow {
            tenant_id: approval.tenant_id,
            approval_id: approval.approval_id,
            execution_id: approval.execution_id,
            status: approval.status.as_str(),
            requested_at: approval.requested_at,
            timeout_at: approval.timeout_at,
            module_name: &approval.module_name,
            version: &approval.version,
            target_environment: approval.target_environment.as_str(),
            requester_id: approval.requester_id,
            requester_email: &approval.requester_email,
        };
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                write_revision(conn, run, &run_row, &event_rows, &audit).await?;
                diesel::insert_into(approvals::table)
                    .values(&row)
                    .on_conflict((approvals::tenant_id, approvals::approval_id))
                    .do_nothing()
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(Failure::Db(DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)))
                if info.constraint_name() == Some(ONE_PENDING_INDEX) =>
            {
                Err(StoreError::Conflict(format!("deployment {} already waits on another approval", run.execution_id)))
            }
            Err(f) => Err(self.failure(conn, f)),
        }
    }

    async fn decide_approval(
        &self,
        tenant: TenantId,
        approval_id: Uuid,
        decision: &ApprovalDecision,
        audit: &NewAuditEntry,
    ) -> StoreResult<DecisionOutcome> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                let key = (tenant, approval_id);
                let decided: Option<StoredApproval> = diesel::update(
                    approvals::table.find(key).filter(approvals::status.eq(ApprovalStatus::Pending.as_str())),
                )
                .set((
                    approvals::status.eq(decision.status.as_str()),
                    approvals::decided_at.eq(decision.at),
                    approvals::decided_by_id.eq(decision.by_id),
                    approvals::decided_by_email.eq(decision.by_email.as_deref()),
                    approvals::reason.eq(decision.reason.as_deref()),
                ))
                .returning(StoredApproval::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                if let Some(row) = decided {
                    insert_audit(conn, std::slice::from_ref(audit)).await?;
                    return Ok(DecisionOutcome::Decided(row.decode()?));
                }
                let current: Option<StoredApproval> =
                    approvals::table.find(key).select(StoredApproval::as_select()).first(conn).await.optional()?;
                Ok(match current {
                    Some(row) => DecisionOutcome::AlreadyDecided(row.decode()?),
                    None => DecisionOutcome::NotFound,
                })
            })
            .await;
        result.map_err(|f| self.failure(conn, f))
    }

    async fn get_approval(&self, tenant: TenantId, approval_id: Uuid) -> StoreResult<Option<ApprovalRecord>> {
        let mut conn = self.conn().await?;
        let found = approvals::table
            .find((tenant, approval_id))
            .select(StoredApproval::as_select())
            .first(&mut *conn)
            .await
            .optional();
        match found {
            Ok(row) => row.map(StoredApproval::decode).transpose(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn approval_for_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<ApprovalRecord>> {
        let mut conn = self.conn().await?;
        let found = approvals::table
            .filter(approvals::tenant_id.eq(tenant))
            .filter(approvals::execution_id.eq(execution_id))
            .order((approvals::requested_at.desc(), approvals::approval_id.desc()))
            .select(StoredApproval::as_select())
            .first(&mut *conn)
            .await
            .optional();
        match found {
            Ok(row) => row.map(StoredApproval::decode).transpose(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn pending_approvals(&self, tenant: TenantId) -> StoreResult<Vec<ApprovalRecord>> {
        let mut conn = self.conn().await?;
        let rows = approvals::table
            .filter(approvals::tenant_id.eq(tenant))
            .filter(approvals::status.eq(ApprovalStatus::Pending.as_str()))
            .order((approvals::requested_at.asc(), approvals::approval_id.asc()))
            .select(StoredApproval::as_select())
            .load(&mut *conn)
            .await;
        match rows {
            Ok(rows) => decode_all(rows),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
