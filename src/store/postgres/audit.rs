//! The audit trail. Writers of other tables call [`insert_audit`] inside
//! their own transaction, so that an entry and the change it records commit
//! together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{AuditActor, AuditCategory, AuditEntry, AuditQuery, AuditResult, NewAuditEntry, TenantId};
use hotswap_actors::store::{AuditStore, Page, StoreError, StoreResult};
use uuid::Uuid;

use super::cached_sql::{self, CachedSql};
use super::schema::audit_log;
use super::PgStore;

/// Rows per INSERT, well under PostgreSQL's 65535 bind parameters.
const AUDIT_CHUNK: usize = 1_000;

struct AuditRow<'a> {
    tenant_id: Uuid,
    at: DateTime<Utc>,
    actor_id: Option<&'a str>,
    actor_name: Option<&'a str>,
    category: &'static str,
    event_type: &'a str,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    result: &'static str,
    message: &'a str,
    details: &'a serde_json::Value,
    trace_id: Option<&'a str>,
    source_address: Option<String>,
    user_agent: Option<&'a str>,
}

impl<'a> AuditRow<'a> {
    fn new(e: &'a NewAuditEntry) -> Self {
        AuditRow {
            tenant_id: e.tenant_id,
            at: e.at,
            actor_id: e.actor.id.as_deref(),
            actor_name: Some(e.actor.name.as_str()),
            category: e.category.as_str(),
            event_type: &e.event_type,
            resource_type: e.resource_type.as_deref(),
            resource_id: e.resource_id.as_deref(),
            result: e.result.as_str(),
            message: &e.message,
            details: &e.details,
            trace_id: e.actor.trace_id.as_deref(),
            source_address: e.actor.source_address.map(|a| a.to_string()),
            user_agent: e.actor.user_agent.as_deref(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(Pg))]
struct StoredAudit {
    id: i64,
    tenant_id: Uuid,
    at: DateTime<Utc>,
    actor_id: Option<String>,
    actor_name: Option<String>,
    category: String,
    event_type: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    result: String,
    message: String,
    details: serde_json::Value,
    trace_id: Option<String>,
    source_address: Option<String>,
    user_agent: Option<String>,
}

impl StoredAudit {
    fn decode(self) -> StoreResult<AuditEntry> {
        let unknown =
            |what: &str, value: &str| StoreError::Other(format!("unknown audit {what} '{value}' in the store"));
        let category = AuditCategory::parse(&self.category).ok_or_else(|| unknown("category", &self.category))?;
        let result = AuditResult::parse(&self.result).ok_or_else(|| unknown("result", &self.result))?;
        Ok(AuditEntry {
            id: self.id,
            entry: NewAuditEntry {
                tenant_id: self.tenant_id,
                at: self.at,
                actor: AuditActor {
                    id: self.actor_id,
                    name: self.actor_name.unwrap_or_default(),
                    trace_id: self.trace_id,
                    source_address: self.source_address.and_then(|a| a.parse().ok()),
                    user_agent: self.user_agent,
                },
                category,
                event_type: self.event_type,
                resource_type: self.resource_type,
                resource_id: self.resource_id,
                result,
                message: self.message,
                details: self.details,
            },
        })
    }
}

/// The entries' insert: one statement text whatever the number of rows (so it
/// stays prepared, see `cached_sql.rs`), in the order given.
const INSERT_AUDIT: &str = "\
    INSERT INTO audit_log (tenant_id, at, actor_id, actor_name, category, event_type, resource_type, \
                           resource_id, result, message, details, trace_id, source_address, user_agent) \
    SELECT tenant_id, at, actor_id, actor_name, category, event_type, resource_type, \
           resource_id, result, message, details, trace_id, source_address, user_agent \
    FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::text[], $13::text[], $14::text[]) \
        WITH ORDINALITY AS a(tenant_id, at, actor_id, actor_name, category, event_type, resource_type, \
                             resource_id, result, message, details, trace_id, source_address, user_agent, position) \
    ORDER BY position";

/// Writes `entries` on `conn`, inside the caller's transaction. The chunks
/// do not depend on one another, so they are sent together (pipelined), and
/// a caller may send other statements beside them the same way.
pub(super) async fn insert_audit<'a>(
    conn: &AsyncPgConnection,
    entries: impl IntoIterator<Item = &'a NewAuditEntry>,
) -> QueryResult<()> {
    let rows: Vec<AuditRow> = entries.into_iter().map(AuditRow::new).collect();
    cached_sql::execute_in_chunks(conn, &rows, AUDIT_CHUNK, |chunk| {
        let column = |f: fn(&AuditRow<'a>) -> Option<&'a str>| chunk.iter().map(f).collect::<Vec<_>>();
        CachedSql::new(INSERT_AUDIT)
            .bind::<Array<SqlUuid>, _>(chunk.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(chunk.iter().map(|r| r.at).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(column(|r| r.actor_id))
            .bind::<Array<Nullable<Text>>, _>(column(|r| r.actor_name))
            .bind::<Array<Text>, _>(chunk.iter().map(|r| r.category).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|r| r.event_type).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(column(|r| r.resource_type))
            .bind::<Array<Nullable<Text>>, _>(column(|r| r.resource_id))
            .bind::<Array<Text>, _>(chunk.iter().map(|r| r.result).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|r| r.message).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(chunk.iter().map(|r| r.details).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(column(|r| r.trace_id))
            .bind::<Array<Nullable<Text>>, _>(chunk.iter().map(|r| r.source_address.clone()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(column(|r| r.user_agent))
    })
    .await
}

/// The entries of `tenant` that the filters of `q` keep, without cursor or paging.
fn filtered<'a>(tenant: TenantId, q: &'a AuditQuery) -> audit_log::BoxedQuery<'a, Pg> {
    let mut query = audit_log::table.filter(audit_log::tenant_id.eq(tenant)).into_boxed();
    if let Some(from) = q.from {
        query = query.filter(audit_log::at.ge(from));
    }
    if let Some(to) = q.to {
        query = query.filter(audit_log::at.le(to));
    }
    if let Some(category) = q.category {
        query = query.filter(audit_log::category.eq(category.as_str()));
    }
    if let Some(kind) = q.event_type.as_deref() {
        query = query.filter(audit_log::event_type.eq(kind));
    }
    if let Some(actor) = q.actor.as_deref() {
        query = query.filter(audit_log::actor_id.eq(actor).or(audit_log::actor_name.ilike(escape_like(actor))));
    }
    if let Some(kind) = q.resource_type.as_deref() {
        query = query.filter(audit_log::resource_type.eq(kind));
    }
    if let Some(id) = q.resource_id.as_deref() {
        query = query.filter(audit_log::resource_id.eq(id));
    }
    if let Some(trace) = q.trace_id.as_deref() {
        query = query.filter(audit_log::trace_id.eq(trace));
    }
    query
}

/// An ILIKE pattern matching `s` exactly, ignoring case.
fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        match insert_audit(&conn, entries).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn list_audit(&self, tenant: TenantId, q: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        let mut conn = self.conn().await?;
        let total: i64 = match filtered(tenant, q).count().get_result(&mut *conn).await {
            Ok(n) => n,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        let mut page = filtered(tenant, q);
        if let Some(before) = q.before_id {
            page = page.filter(audit_log::id.lt(before));
        }
        let rows: Vec<StoredAudit> = match page
            .order(audit_log::id.desc())
            .offset(i64::try_from(q.offset).unwrap_or(i64::MAX))
            .limit(i64::from(q.limit))
            .select(StoredAudit::as_select())
            .load(&mut *conn)
            .await
        {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        let items = rows.into_iter().map(StoredAudit::decode).collect::<StoreResult<_>>()?;
        Ok(Page { items, total: total as u64 })
    }

    async fn purge_audit(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        // One bounded batch per statement: the index on `at` finds the oldest
        // rows, and no statement locks more than `batch` of them.
        let query = diesel::sql_query(
            "DELETE FROM audit_log WHERE id IN \
             (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(i64::from(batch));
        match query.execute(&mut *conn).await {
            Ok(n) => Ok(n as u64),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
