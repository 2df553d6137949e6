//! Runs and their events.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{QuotaExceeded, RunRecord, RunSummary, TenantId};
use hotswap_actors::store::{Admission, AdmissionCheck, Page, RunEvent, RunFilter, RunStore, StoreError, StoreResult};
use uuid::Uuid;

use diesel::sql_types::{Array, Jsonb, SmallInt, Text, Timestamptz, Uuid as SqlUuid};

use super::audit::insert_audit;
use super::cached_sql::{self, CachedSql};
use super::codec::{self, join_time, split_time};
use super::errors::Failure;
use super::grouped_saves::PreparedSave;
use super::run_changes::{self, RECORD_WITH_CHANGES};
use super::schema::{run_events, runs, tenant_runs_per_day};
use super::tenants::{count_created, count_created_batch, lock_and_count, lock_and_count_batch};
use super::PgStore;

/// The partial unique index that lets one run per tenant hold a module.
const HOLDER_INDEX: &str = "runs_one_holder_per_module";
const RUNS_PKEY: &str = "runs_pkey";
/// Rows per INSERT, well under PostgreSQL's 65535 bind parameters.
const EVENT_CHUNK: usize = 1_000;
/// How often a write that lost the module lock to a run which finished
/// before we could name it is tried again.
const LOCK_ATTEMPTS: usize = 5;

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = runs, primary_key(tenant_id, execution_id), treat_none_as_null = true)]
pub(super) struct RunRow<'a> {
    tenant_id: Uuid,
    execution_id: Uuid,
    module_name: &'a str,
    version: &'a str,
    target_environment: &'static str,
    status: &'static str,
    created_at: DateTime<Utc>,
    created_at_nanos: i16,
    finished_at: Option<DateTime<Utc>>,
    finished_at_nanos: Option<i16>,
    revision: i64,
    holds_module: bool,
    record: serde_json::Value,
}

impl<'a> RunRow<'a> {
    pub(super) fn new(run: &'a RunRecord) -> StoreResult<Self> {
        Self::encoded(run, run_changes::record_without_changes(run)?)
    }

    /// The row of `run` whose record column, `record`, the caller encoded
    /// (see `run_changes::record_without_changes`).
    pub(super) fn encoded(run: &'a RunRecord, record: serde_json::Value) -> StoreResult<Self> {
        let (created_at, created_at_nanos) = split_time(run.created_at);
        let finished = run.finished_at.map(split_time);
        Ok(RunRow {
            tenant_id: run.tenant_id,
            execution_id: run.execution_id,
            module_name: &run.request.module_name,
            version: &run.request.version,
            target_environment: run.request.target_environment.as_str(),
            status: run.status.as_str(),
            created_at,
            created_at_nanos,
            finished_at: finished.map(|f| f.0),
            finished_at_nanos: finished.map(|f| f.1),
            revision: codec::revision(run.revision)?,
            holds_module: run.holds_module(),
            record,
        })
    }
}

pub(super) struct EventRow<'a> {
    tenant_id: Uuid,
    execution_id: Uuid,
    at: DateTime<Utc>,
    at_nanos: i16,
    kind: &'a str,
    message: &'a str,
    data: &'a serde_json::Value,
}

impl<'a> EventRow<'a> {
    pub(super) fn new(e: &'a RunEvent) -> Self {
        let (at, at_nanos) = split_time(e.at);
        EventRow {
            tenant_id: e.tenant_id,
            execution_id: e.execution_id,
            at,
            at_nanos,
            kind: &e.kind,
            message: &e.message,
            data: &e.data,
        }
    }
}

/// A stored event; also read by name in the outbox's query (`deployment_outbox.rs`).
#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = run_events, check_for_backend(Pg))]
pub(super) struct StoredEvent {
    tenant_id: Uuid,
    execution_id: Uuid,
    at: DateTime<Utc>,
    at_nanos: i16,
    kind: String,
    message: String,
    data: serde_json::Value,
}

impl From<StoredEvent> for RunEvent {
    fn from(e: StoredEvent) -> Self {
        RunEvent {
            tenant_id: e.tenant_id,
            execution_id: e.execution_id,
            at: join_time(e.at, e.at_nanos),
            kind: e.kind,
            message: e.message,
            data: e.data,
        }
    }
}

/// A run's summary columns; also read by name in the outbox's query.
#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = runs, check_for_backend(Pg))]
pub(super) struct StoredSummary {
    execution_id: Uuid,
    module_name: String,
    version: String,
    target_environment: String,
    status: String,
    created_at: DateTime<Utc>,
    created_at_nanos: i16,
    finished_at: Option<DateTime<Utc>>,
    finished_at_nanos: Option<i16>,
}

impl StoredSummary {
    pub(super) fn decode(self) -> StoreResult<RunSummary> {
        Ok(RunSummary {
            execution_id: self.execution_id,
            module_name: self.module_name,
            version: self.version,
            target_environment: codec::environment(&self.target_environment)?,
            status: codec::status(&self.status)?,
            created_at: join_time(self.created_at, self.created_at_nanos),
            finished_at: self.finished_at.map(|f| join_time(f, self.finished_at_nanos.unwrap_or(0))),
            // The list reads it beside the summary; the outbox has no use for it.
            owner_instance: None,
        })
    }
}

/// The instance that drives a run: the generated column `owner_instance`
/// (read from `record`'s owner). Not in `schema.rs`, whose `runs` has the 16
/// columns diesel's default build takes; read by name for the list.
fn owner_instance() -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Text>> {
    diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>("runs.owner_instance")
}

/// The stored record with its node changes put back.
fn record_with_changes() -> diesel::expression::SqlLiteral<diesel::sql_types::Jsonb> {
    diesel::dsl::sql::<diesel::sql_types::Jsonb>(RECORD_WITH_CHANGES)
}

fn violates(e: &DbError, constraint: &str) -> bool {
    matches!(e, DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) if info.constraint_name() == Some(constraint))
}

fn busy(run: &RunRecord, holder: Uuid) -> StoreError {
    StoreError::ModuleBusy { module: run.request.module_name.clone(), execution_id: holder }
}

/// The run of `module` that holds it in `tenant`, other than `except`.
async fn holder_of(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    module: &str,
    except: Option<Uuid>,
) -> QueryResult<Option<Uuid>> {
    let mut query = runs::table
        .filter(runs::tenant_id.eq(tenant))
        .filter(runs::module_name.eq(module))
        .filter(runs::holds_module.eq(true))
        .select(runs::execution_id)
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(runs::execution_id.ne(id));
    }
    query.first(conn).await.optional()
}

/// The events' insert: one statement text whatever the number of rows (so it
/// stays prepared, see `cached_sql.rs`), in the order given, which is the
/// order of their ids and so the events' order.
const INSERT_EVENTS: &str = "\
    INSERT INTO run_events (tenant_id, execution_id, at, at_nanos, kind, message, data) \
    SELECT tenant_id, execution_id, at, at_nanos, kind, message, data \
    FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int2[], $5::text[], $6::text[], $7::jsonb[]) \
        WITH ORDINALITY AS e(tenant_id, execution_id, at, at_nanos, kind, message, data, position) \
    ORDER BY position";

/// Writes `events` inside the caller's transaction, the chunks pipelined (see `insert_audit`).
pub(super) async fn insert_events(conn: &AsyncPgConnection, events: &[EventRow<'_>]) -> QueryResult<()> {
    cached_sql::execute_in_chunks(conn, events, EVENT_CHUNK, |chunk| {
        CachedSql::new(INSERT_EVENTS)
            .bind::<Array<SqlUuid>, _>(chunk.iter().map(|e| e.tenant_id).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(chunk.iter().map(|e| e.execution_id).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(chunk.iter().map(|e| e.at).collect::<Vec<_>>())
            .bind::<Array<SmallInt>, _>(chunk.iter().map(|e| e.at_nanos).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|e| e.kind).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|e| e.message).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(chunk.iter().map(|e| e.data).collect::<Vec<_>>())
    })
    .await
}

/// Replaces the stored run with a newer revision and appends its events and
/// audit entries, on `conn` inside the caller's transaction.
pub(super) async fn write_revision(
    conn: &mut AsyncPgConnection,
    run: &RunRecord,
    row: &RunRow<'_>,
    event_rows: &[EventRow<'_>],
    audit: &[hotswap_actors::domain::NewAuditEntry],
) -> Result<(), Failure> {
    let key = (run.tenant_id, run.execution_id);
    // Only a newer revision replaces the stored one, and only under the
    // lease epoch the run was saved under (the fence); the row lock makes
    // concurrent writers, and a takeover, take turns.
    let mut update = diesel::update(runs::table.find(key).filter(runs::revision.lt(row.revision))).into_boxed();
    if let Some(owner) = &run.owner {
        update = update.filter(runs::owner_epoch.eq(codec::revision(owner.epoch)?));
    }
    let updated = update.set((row, runs::saved_at.eq(diesel::dsl::now))).execute(conn).await?;
    if updated == 0 {
        let stored: Option<(i64, i64, Option<String>)> = runs::table
            .find(key)
            .select((
                runs::revision,
                runs::owner_epoch,
                diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(
                    "record->'owner'->>'instance'",
                ),
            ))
            .first(conn)
            .await
            .optional()?;
        return Err(match stored {
            None => StoreError::NotFound(format!("deployment {} not found", run.execution_id)),
            Some((_, epoch, instance))
                if run.owner.as_ref().is_some_and(|o| codec::revision(o.epoch).ok() != Some(epoch)) =>
            {
                StoreError::Fenced(format!(
                    "deployment {} is now driven by {} (lease epoch {epoch})",
                    run.execution_id,
                    instance.as_deref().unwrap_or("no instance")
                ))
            }
            Some((stored, _, _)) => StoreError::Stale(format!(
                "deployment {} is at revision {stored}, not saving revision {}",
                run.execution_id, run.revision
            )),
        }
        .into());
    }
    // The update above holds the run's row lock: no other save of the run
    // appends changes until this transaction ends. A run that has changed no
    // node yet (every save before its first wave) has nothing to append.
    let saved_changes = if run.changes.is_empty() { 0 } else { run_changes::saved_count(conn, run).await? };
    insert_rest(conn, run, saved_changes, event_rows, audit).await
}

/// The inserts of a new or saved run that follow its row: its node changes
/// from `saved_changes` on, its events and its audit entries. They do not
/// depend on one another, so they are sent together (pipelined): the write
/// waits for one round trip instead of one per insert.
async fn insert_rest(
    conn: &AsyncPgConnection,
    run: &RunRecord,
    saved_changes: usize,
    event_rows: &[EventRow<'_>],
    audit: &[hotswap_actors::domain::NewAuditEntry],
) -> Result<(), Failure> {
    futures::try_join!(
        run_changes::append(conn, run, saved_changes),
        async { insert_events(conn, event_rows).await.map_err(Failure::from) },
        async { insert_audit(conn, audit).await.map_err(Failure::from) },
    )?;
    Ok(())
}

/// How many runs `tenant` has: the sum of the per-day counters that every
/// insert of a run keeps in its own transaction (`count_created`), a row a
/// day, where counting the runs themselves read an index entry per run and
/// made every unfiltered list slower as history grew (about 330 requests a
/// second with 100,000 runs stored, 830 with 1,800; docs/BENCHMARKS.md). Runs are
/// never deleted on PostgreSQL; a retention of runs would have to take its
/// runs off these counters in the same transaction.
async fn runs_created(conn: &mut AsyncPgConnection, tenant: TenantId) -> QueryResult<i64> {
    tenant_runs_per_day::table
        .filter(tenant_runs_per_day::tenant_id.eq(tenant))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>("coalesce(sum(runs), 0)::bigint"))
        .get_result(conn)
        .await
}

/// The runs of `tenant` that `filter` keeps, before ordering and paging.
fn filtered<'a>(tenant: TenantId, filter: &'a RunFilter) -> runs::BoxedQuery<'a, Pg> {
    let mut query = runs::table.filter(runs::tenant_id.eq(tenant)).into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(runs::status.eq(status.as_str()));
    }
    if let Some(module) = filter.module_name.as_deref() {
        query = query.filter(runs::module_name.eq(module));
    }
    if let Some(env) = filter.environment {
        query = query.filter(runs::target_environment.eq(env.as_str()));
    }
    query
}

/// Stores a new run with its events, audit entries and the tenant's
/// counters, on `conn` inside the caller's transaction; first, with
/// `admission`, takes the tenant's admission lock and refuses the run when
/// `check` fails on the counts.
async fn insert_new(
    conn: &mut AsyncPgConnection,
    new: &NewRun<'_>,
    admission: Option<(DateTime<Utc>, AdmissionCheck<'_>)>,
) -> Result<Result<(), QuotaExceeded>, Failure> {
    let run = new.run;
    if let Some((since, check)) = admission {
        let counts = lock_and_count(conn, run.tenant_id, since, &run.request.module_name).await?;
        if let Err(over) = check(&counts) {
            return Ok(Err(over));
        }
    }
    // Refused while another run holds the module, whether or not this one
    // would hold it: the in-memory store's rule. A holding run is refused by
    // the unique index on insert, which saves the query on the common path.
    if !run.holds_module() {
        if let Some(holder) = holder_of(conn, run.tenant_id, &run.request.module_name, None).await? {
            return Err(busy(run, holder).into());
        }
    }
    let owner = run.owner.as_ref();
    let lease_expires_at = owner.map(|_| Utc::now() + new.lease_ttl);
    diesel::insert_into(runs::table)
        .values((
            &new.row,
            runs::owner_epoch.eq(owner.map_or(Ok(0), |o| codec::revision(o.epoch))?),
            runs::lease_expires_at.eq(lease_expires_at),
        ))
        .execute(conn)
        .await?;
    insert_rest(conn, run, 0, &new.events, &new.audit).await?;
    count_created(conn, run).await?;
    Ok(Ok(()))
}

/// A run about to be inserted, in the shapes the statements bind.
struct NewRun<'a> {
    run: &'a RunRecord,
    row: RunRow<'a>,
    events: Vec<EventRow<'a>>,
    audit: Vec<hotswap_actors::domain::NewAuditEntry>,
    lease_ttl: chrono::TimeDelta,
}

impl PgStore {
    /// Inserts a new run (see `insert_new`), trying again when the module
    /// changed hands under it.
    pub(super) async fn insert_run(
        &self,
        run: &RunRecord,
        events: &[RunEvent],
        admission: Option<(DateTime<Utc>, AdmissionCheck<'_>)>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        let new = NewRun {
            run,
            row: RunRow::new(run)?,
            events: events.iter().map(EventRow::new).collect(),
            audit: hotswap_actors::audit::run_entries(run, events),
            lease_ttl: chrono::TimeDelta::from_std(self.lease_ttl).unwrap_or(chrono::TimeDelta::MAX),
        };
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        for _ in 0..LOCK_ATTEMPTS {
            let result = conn.transaction::<_, Failure, _>(async |conn| insert_new(conn, &new, admission).await).await;
            match result {
                Ok(admitted) => return Ok(admitted),
                // A concurrent create took the module after our check.
                Err(Failure::Db(e)) if violates(&e, HOLDER_INDEX) => match self.name_holder(conn, run, None).await? {
                    Some(busy) => return Err(busy),
                    None => continue,
                },
                Err(Failure::Db(e)) if violates(&e, RUNS_PKEY) => {
                    return Err(StoreError::Other(format!("deployment {} already exists", run.execution_id)));
                }
                Err(f) => return Err(self.failure(conn, f)),
            }
        }
        Err(StoreError::Unavailable(format!("module '{}' kept changing hands; try again", run.request.module_name)))
    }

    /// Admits a batch of one tenant's new runs in one transaction (one
    /// commit for all): the admission lock and the counts once, each run
    /// checked against the counts plus the runs admitted before it in the
    /// batch, then the admitted runs, their events, audit entries and
    /// counters in a few multi-row statements. When the transaction fails
    /// (a module taken by a write that does not take the admission lock, a
    /// duplicate id, a lost connection), each run is admitted on its own
    /// instead, which answers each as a single create would.
    pub(super) async fn admit_batch(
        &self,
        batch: &[Admission<'_>],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> Vec<StoreResult<Result<(), QuotaExceeded>>> {
        let single_tenant = batch.windows(2).all(|w| w[0].run.tenant_id == w[1].run.tenant_id);
        if batch.len() > 1 && single_tenant {
            match self.try_batch(batch, since, check).await {
                Ok(results) => return results,
                Err(e) => {
                    tracing::debug!(error = %e, runs = batch.len(), "batch admission failed; admitting one by one")
                }
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        for one in batch {
            results.push(self.insert_run(one.run, one.events, Some((since, check))).await);
        }
        results
    }

    async fn try_batch(
        &self,
        batch: &[Admission<'_>],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> StoreResult<Vec<StoreResult<Result<(), QuotaExceeded>>>> {
        let lease_ttl = chrono::TimeDelta::from_std(self.lease_ttl).unwrap_or(chrono::TimeDelta::MAX);
        let rows = batch.iter().map(|a| RunRow::new(a.run)).collect::<StoreResult<Vec<_>>>()?;
        let epochs = batch
            .iter()
            .map(|a| a.run.owner.as_ref().map_or(Ok(0), |o| codec::revision(o.epoch)))
            .collect::<StoreResult<Vec<_>>>()?;
        let modules: Vec<&str> = batch.iter().map(|a| a.run.request.module_name.as_str()).collect();
        let tenant = batch[0].run.tenant_id;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                let mut start = lock_and_count_batch(conn, tenant, since, &modules).await?;
                let mut results = Vec::with_capacity(batch.len());
                let mut admitted = Vec::new();
                let mut new_modules = std::collections::HashSet::new();
                for (i, one) in batch.iter().enumerate() {
                    let run = one.run;
                    let module = run.request.module_name.as_str();
                    let mut counts = start.counts;
                    counts.modules += new_modules.len() as u64;
                    counts.module_known = start.known.contains(module) || new_modules.contains(module);
                    if let Err(over) = check(&counts) {
                        results.push(Ok(Err(over)));
                        continue;
                    }
                    // As on a single create: refused while another run holds the module.
                    if let Some(holder) = start.held.get(module) {
                        results.push(Err(busy(run, *holder)));
                        continue;
                    }
                    if run.holds_module() {
                        start.held.insert(module.to_string(), run.execution_id);
                        start.counts.active += 1;
                    }
                    start.counts.created_since += 1;
                    if !start.known.contains(module) {
                        new_modules.insert(module);
                    }
                    admitted.push(i);
                    results.push(Ok(Ok(())));
                }
                if admitted.is_empty() {
                    return Ok(results);
                }
                let now = Utc::now();
                let values: Vec<_> = admitted
                    .iter()
                    .map(|&i| {
                        (
                            &rows[i],
                            runs::owner_epoch.eq(epochs[i]),
                            runs::lease_expires_at.eq(batch[i].run.owner.as_ref().map(|_| now + lease_ttl)),
                        )
                    })
                    .collect();
                diesel::insert_into(runs::table).values(values).execute(conn).await?;
                let mut events = Vec::new();
                let mut audit = Vec::new();
                let mut admitted_runs = Vec::with_capacity(admitted.len());
                for &i in &admitted {
                    let one = &batch[i];
                    events.extend(one.events.iter().map(EventRow::new));
                    audit.extend(hotswap_actors::audit::run_entries(one.run, one.events));
                    admitted_runs.push(one.run);
                }
                // With the runs stored, the rest depends only on them: sent
                // together (pipelined), one round trip for all of it.
                let conn: &AsyncPgConnection = conn;
                futures::try_join!(
                    async {
                        futures::future::try_join_all(admitted_runs.iter().map(|r| run_changes::append(conn, r, 0)))
                            .await
                    },
                    async { insert_events(conn, &events).await.map_err(Failure::from) },
                    async { insert_audit(conn, &audit).await.map_err(Failure::from) },
                    async { count_created_batch(conn, &admitted_runs).await.map_err(Failure::from) },
                )?;
                Ok(results)
            })
            .await;
        result.map_err(|f| self.failure(conn, f))
    }

    /// Writes one prepared save in a transaction of its own: the fenced
    /// update of the run, then its events, audit entries and new node
    /// changes. A refused save is named exactly: `Stale`, `Fenced`,
    /// `NotFound`, or `ModuleBusy` when it would take a held module.
    pub(super) async fn save_one(&self, save: PreparedSave) -> StoreResult<()> {
        let PreparedSave { run, record, events, audit } = save;
        let run = &run;
        let row = RunRow::encoded(run, record)?;
        let event_rows: Vec<EventRow> = events.iter().map(EventRow::new).collect();
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        for _ in 0..LOCK_ATTEMPTS {
            let result = conn
                .transaction::<_, Failure, _>(async |conn| write_revision(conn, run, &row, &event_rows, &audit).await)
                .await;
            match result {
                Ok(()) => return Ok(()),
                // The run would hold its module (a manual rollback) while
                // another run holds it.
                Err(Failure::Db(e)) if violates(&e, HOLDER_INDEX) => {
                    match self.name_holder(conn, run, Some(run.execution_id)).await? {
                        Some(busy) => return Err(busy),
                        None => continue,
                    }
                }
                Err(f) => return Err(self.failure(conn, f)),
            }
        }
        Err(StoreError::Unavailable(format!("module '{}' kept changing hands; try again", run.request.module_name)))
    }

    /// Turns a lost race for the module lock into `ModuleBusy`, or into
    /// `None` when the holder finished before it could be named.
    async fn name_holder(
        &self,
        conn: &mut AsyncPgConnection,
        run: &RunRecord,
        except: Option<Uuid>,
    ) -> StoreResult<Option<StoreError>> {
        match holder_of(conn, run.tenant_id, &run.request.module_name, except).await {
            Ok(holder) => Ok(holder.map(|h| busy(run, h))),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }
}

#[async_trait]
impl RunStore for PgStore {
    async fn create_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        self.insert_run(run, events, None).await.map(|_| ())
    }

    async fn save_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        // Written in a group with whatever other saves wait at the same
        // time (`grouped_saves`), or on its own as `save_one` does.
        self.save_in_group(PreparedSave::new(run, events)?).await
    }

    async fn get_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<RunRecord>> {
        let mut conn = self.conn().await?;
        let found = runs::table
            .find((tenant, execution_id))
            .select(record_with_changes())
            .first::<serde_json::Value>(&mut *conn)
            .await
            .optional();
        match found {
            Ok(Some(record)) => codec::from_json(record, "deployment").map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn list_runs(&self, tenant: TenantId, filter: &RunFilter) -> StoreResult<Page<RunSummary>> {
        let page_size = i64::from(filter.page_size);
        // Saturating: the far pages of u32 × u32 overflow i64, and are empty anyway.
        let offset = i64::from(filter.page.max(1) - 1).saturating_mul(page_size);
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One snapshot for the count and the page, as the memory store's read lock gives.
        let result = conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run::<_, DbError, _>(async |conn| {
                let total: i64 = if filter.narrows() {
                    filtered(tenant, filter).count().get_result(conn).await?
                } else {
                    runs_created(conn, tenant).await?
                };
                let rows: Vec<(StoredSummary, Option<String>)> = filtered(tenant, filter)
                    .select((StoredSummary::as_select(), owner_instance()))
                    .order((runs::created_at.desc(), runs::created_at_nanos.desc(), runs::execution_id.desc()))
                    .limit(page_size)
                    .offset(offset)
                    .load(conn)
                    .await?;
                Ok((total, rows))
            })
            .await;
        let (total, rows) = result.map_err(|e| self.db_error(conn, e))?;
        let items = rows
            .into_iter()
            .map(|(summary, owner)| Ok(RunSummary { owner_instance: owner, ..summary.decode()? }))
            .collect::<StoreResult<_>>()?;
        Ok(Page { items, total: total as u64 })
    }

    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>> {
        let mut conn = self.conn().await?;
        // The one query across tenants: start-up recovery resumes them all.
        let records = runs::table
            .filter(runs::holds_module.eq(true))
            .order((runs::tenant_id, runs::created_at, runs::created_at_nanos, runs::execution_id))
            .select(record_with_changes())
            .load::<serde_json::Value>(&mut *conn)
            .await;
        match records {
            Ok(records) => records.into_iter().map(|r| codec::from_json(r, "deployment")).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn run_events(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Vec<RunEvent>> {
        let mut conn = self.conn().await?;
        let events = run_events::table
            .filter(run_events::tenant_id.eq(tenant))
            .filter(run_events::execution_id.eq(execution_id))
            .order(run_events::id)
            .select(StoredEvent::as_select())
            .load(&mut *conn)
            .await;
        match events {
            Ok(events) => Ok(events.into_iter().map(RunEvent::from).collect()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
