//! Nodes and the module slots they hold.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{Environment, ModuleSlots, NodeRecord, TenantId};
use hotswap_actors::store::{NodeStore, RunFence, SlotWrite, StoreError, StoreResult};
use uuid::Uuid;

use super::cached_sql::CachedSql;
use super::codec::{self, join_time, split_time};
use super::errors::Failure;
use super::schema::{node_modules, nodes};
use super::slot_batches;
use super::PgStore;

/// Rows per INSERT, well under PostgreSQL's 65535 bind parameters.
const MODULE_CHUNK: usize = 5_000;

#[derive(Insertable)]
#[diesel(table_name = nodes)]
struct NodeRow<'a> {
    tenant_id: Uuid,
    node_id: Uuid,
    hostname: &'a str,
    environment: &'static str,
    updated_at: DateTime<Utc>,
    updated_at_nanos: i16,
}

#[derive(Insertable)]
#[diesel(table_name = node_modules)]
struct ModuleRow<'a> {
    tenant_id: Uuid,
    node_id: Uuid,
    module_name: &'a str,
    slots: serde_json::Value,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = nodes, check_for_backend(Pg))]
struct StoredNode {
    tenant_id: Uuid,
    node_id: Uuid,
    hostname: String,
    environment: String,
    updated_at: DateTime<Utc>,
    updated_at_nanos: i16,
}

type NodeWithModule = (StoredNode, Option<(String, serde_json::Value)>);

/// Folds join rows, ordered by node, into records with their modules.
fn assemble(rows: Vec<NodeWithModule>) -> StoreResult<Vec<NodeRecord>> {
    let mut found: Vec<NodeRecord> = Vec::new();
    for (node, module) in rows {
        if found.last().is_none_or(|n| n.node_id != node.node_id) {
            found.push(NodeRecord {
                tenant_id: node.tenant_id,
                node_id: node.node_id,
                hostname: node.hostname,
                environment: codec::environment(&node.environment)?,
                modules: BTreeMap::new(),
                updated_at: join_time(node.updated_at, node.updated_at_nanos),
            });
        }
        if let (Some((name, slots)), Some(record)) = (module, found.last_mut()) {
            record.modules.insert(name, codec::from_json(slots, "module slots")?);
        }
    }
    Ok(found)
}

/// The nodes of `tenant`, each joined with its modules, by hostname then id;
/// callers narrow it further. A macro: the query's type is long to spell.
macro_rules! nodes_with_modules {
    ($tenant:expr) => {
        nodes::table
            .left_join(
                node_modules::table
                    .on(node_modules::tenant_id.eq(nodes::tenant_id).and(node_modules::node_id.eq(nodes::node_id))),
            )
            .filter(nodes::tenant_id.eq($tenant))
            .select((StoredNode::as_select(), (node_modules::module_name, node_modules::slots).nullable()))
            .order((nodes::hostname, nodes::node_id))
    };
}

/// The slots of `module` on whichever of `node_ids` have it: one array
/// parameter, `node_id = ANY($n)`, however many nodes are asked about.
fn slots_of<'a>(
    tenant: TenantId,
    node_ids: &'a [Uuid],
    module: &'a str,
) -> node_modules::BoxedQuery<'a, Pg, (diesel::sql_types::Uuid, diesel::sql_types::Jsonb)> {
    node_modules::table
        .filter(node_modules::tenant_id.eq(tenant))
        .filter(node_modules::module_name.eq(module))
        .filter(node_modules::node_id.eq_any(node_ids))
        .select((node_modules::node_id, node_modules::slots))
        .into_boxed()
}

async fn load_node(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    node_id: Uuid,
) -> Result<Option<NodeRecord>, Failure> {
    let rows: Vec<NodeWithModule> = nodes_with_modules!(tenant).filter(nodes::node_id.eq(node_id)).load(conn).await?;
    Ok(assemble(rows)?.pop())
}

impl PgStore {
    /// Stores a node's slots of `module`; with a fence, only while the run's
    /// lease is still at the fence's epoch. The run's row is read `FOR SHARE`,
    /// so a takeover (which updates that row) waits for this write, and a
    /// write after a takeover sees the new epoch.
    pub(super) async fn write_module_slots(
        &self,
        tenant: TenantId,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
        fence: Option<&RunFence>,
    ) -> StoreResult<()> {
        let value = codec::to_json(slots, "module slots")?;
        let (updated_at, updated_at_nanos) = split_time(Utc::now());
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            if let Some(fence) = fence {
                check_fences(conn, &[(*fence, node_id)]).await?;
            }
            // Touching the node first locks it, and tells whether it exists.
            let touched = diesel::update(nodes::table.find((tenant, node_id)))
                .set((nodes::updated_at.eq(updated_at), nodes::updated_at_nanos.eq(updated_at_nanos)))
                .execute(conn)
                .await?;
            if touched == 0 {
                return Err(StoreError::NotFound(format!("node {node_id} not found")).into());
            }
            if slots.is_empty() {
                diesel::delete(node_modules::table.find((tenant, node_id, module))).execute(conn).await?;
            } else {
                diesel::insert_into(node_modules::table)
                    .values(ModuleRow { tenant_id: tenant, node_id, module_name: module, slots: value })
                    .on_conflict((node_modules::tenant_id, node_modules::node_id, node_modules::module_name))
                    .do_update()
                    .set(node_modules::slots.eq(excluded(node_modules::slots)))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }
}

/// Refuses the writes when a run's lease has moved past its fence's epoch:
/// each fence comes with one of its nodes, for the message. One statement
/// per tenant (a batch holds one tenant's nodes in practice), which locks
/// the runs' rows against a takeover until the writes commit.
async fn check_fences(conn: &mut AsyncPgConnection, fences: &[(RunFence, Uuid)]) -> Result<(), Failure> {
    use super::schema::runs;
    let tenants: std::collections::BTreeSet<TenantId> = fences.iter().map(|(f, _)| f.tenant_id).collect();
    for tenant in tenants {
        let of_tenant: Vec<&(RunFence, Uuid)> = fences.iter().filter(|(f, _)| f.tenant_id == tenant).collect();
        let ids: Vec<Uuid> = of_tenant.iter().map(|(f, _)| f.execution_id).collect();
        let epochs: Vec<(Uuid, i64)> = runs::table
            .filter(runs::tenant_id.eq(tenant))
            .filter(runs::execution_id.eq_any(&ids))
            .select((runs::execution_id, runs::owner_epoch))
            // Rows are locked in the order read: the same for every batch.
            .order(runs::execution_id)
            .for_share()
            .load(conn)
            .await?;
        for (fence, node_id) in of_tenant {
            let stored = epochs.iter().find(|(id, _)| *id == fence.execution_id).map(|(_, epoch)| *epoch);
            fenced_out(fence, stored, *node_id)?;
        }
    }
    Ok(())
}

/// `Fenced` when the run's stored epoch is not the fence's (a run that is
/// not stored fences nothing, as before leases existed).
fn fenced_out(fence: &RunFence, stored: Option<i64>, node_id: Uuid) -> Result<(), Failure> {
    match stored {
        Some(epoch) if codec::revision(fence.epoch).ok() != Some(epoch) => Err(StoreError::Fenced(format!(
            "deployment {} has lease epoch {epoch}, not {}: node {node_id} not changed",
            fence.execution_id, fence.epoch
        ))
        .into()),
        _ => Ok(()),
    }
}

/// The versions a tenant's nodes have active or as previous for a module,
/// each once: the database reads every holder's slots, the answer is a row
/// per distinct version.
const VERSIONS_HELD_SQL: &str = "SELECT DISTINCT held.version FROM node_modules AS m \
     CROSS JOIN LATERAL (VALUES (m.slots -> 'active' ->> 'version'), (m.slots -> 'previous' ->> 'version')) \
     AS held(version) \
     WHERE m.tenant_id = $1 AND m.module_name = $2 AND held.version IS NOT NULL";

#[derive(diesel::QueryableByName)]
struct HeldVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

#[async_trait]
impl NodeStore for PgStore {
    async fn register_node(&self, node: &NodeRecord) -> StoreResult<NodeRecord> {
        let (updated_at, updated_at_nanos) = split_time(node.updated_at);
        let row = NodeRow {
            tenant_id: node.tenant_id,
            node_id: node.node_id,
            hostname: &node.hostname,
            environment: node.environment.as_str(),
            updated_at,
            updated_at_nanos,
        };
        let modules = node
            .modules
            .iter()
            .map(|(name, slots)| {
                Ok(ModuleRow {
                    tenant_id: node.tenant_id,
                    node_id: node.node_id,
                    module_name: name,
                    slots: codec::to_json(slots, "module slots")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let inserted = diesel::insert_into(nodes::table)
                .values(&row)
                .on_conflict((nodes::tenant_id, nodes::node_id))
                .do_nothing()
                .execute(conn)
                .await?;
            if inserted == 1 {
                for chunk in modules.chunks(MODULE_CHUNK) {
                    diesel::insert_into(node_modules::table).values(chunk).execute(conn).await?;
                }
                return Ok(node.clone());
            }
            // Known already: it keeps its state, as the in-memory store does.
            load_node(conn, node.tenant_id, node.node_id)
                .await?
                .ok_or_else(|| StoreError::Other(format!("node {} vanished while registering", node.node_id)).into())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn get_node(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Option<NodeRecord>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One statement, so the node and its modules come from one snapshot.
        load_node(conn, tenant, node_id).await.map_err(|f| self.failure(conn, f))
    }

    async fn set_module_slots(
        &self,
        tenant: TenantId,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
    ) -> StoreResult<()> {
        self.write_module_slots(tenant, node_id, module, slots, None).await
    }

    async fn module_placements(
        &self,
        tenant: TenantId,
        module: &str,
    ) -> StoreResult<Vec<(Environment, String, ModuleSlots)>> {
        let mut conn = self.conn().await?;
        let rows = node_modules::table
            .inner_join(
                nodes::table
                    .on(nodes::tenant_id.eq(node_modules::tenant_id).and(nodes::node_id.eq(node_modules::node_id))),
            )
            .filter(node_modules::tenant_id.eq(tenant))
            .filter(node_modules::module_name.eq(module))
            .select((nodes::environment, nodes::hostname, node_modules::slots))
            .load::<(String, String, serde_json::Value)>(&mut *conn)
            .await
            .map_err(|e| self.db_error(&mut conn, e))?;
        let mut found = Vec::with_capacity(rows.len());
        for (env, hostname, slots) in rows {
            found.push((codec::environment(&env)?, hostname, codec::from_json(slots, "module slots")?));
        }
        // Environments in promotion order, nodes by name within each.
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(found)
    }

    async fn versions_held(&self, tenant: TenantId, module: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn().await?;
        let rows = CachedSql::new(VERSIONS_HELD_SQL)
            .bind::<diesel::sql_types::Uuid, _>(tenant)
            .bind::<diesel::sql_types::Text, _>(module)
            .load::<HeldVersion>(&mut *conn)
            .await
            .map_err(|e| self.db_error(&mut conn, e))?;
        Ok(rows.into_iter().map(|row| row.version).collect())
    }

    async fn set_module_slots_batch(&self, writes: &[SlotWrite]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // The last write of each node and module wins, as it would one at a time
        // (and one upsert may not touch a row twice).
        let mut last: HashMap<(TenantId, Uuid, &str), &ModuleSlots> = HashMap::new();
        for w in writes {
            last.insert((w.tenant, w.node_id, w.module.as_str()), &w.slots);
        }
        let mut touch: Vec<(TenantId, Uuid)> = last.keys().map(|(t, n, _)| (*t, *n)).collect();
        touch.sort();
        touch.dedup();
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for ((tenant, node_id, module), slots) in &last {
            if slots.is_empty() {
                removals.push((*tenant, *node_id, *module));
            } else {
                upserts.push((*tenant, *node_id, *module, codec::to_json(*slots, "module slots")?));
            }
        }
        let fences = SlotWrite::distinct_fences(writes);
        let batch =
            slot_batches::SlotBatch { fences: &fences, touch: &touch, at: Utc::now(), removals: &removals, upserts };
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One transaction of four statements sent together (see slot_batches.rs).
        slot_batches::write(conn, batch).await.map_err(|f| self.failure(conn, f))
    }

    async fn module_slots(&self, tenant: TenantId, node_ids: &[Uuid], module: &str) -> StoreResult<Vec<ModuleSlots>> {
        if node_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let rows = slots_of(tenant, node_ids, module).load::<(Uuid, serde_json::Value)>(&mut *conn).await;
        let rows = rows.map_err(|e| self.db_error(&mut conn, e))?;
        let mut by_node: HashMap<Uuid, ModuleSlots> = HashMap::with_capacity(rows.len());
        for (id, slots) in rows {
            by_node.insert(id, codec::from_json(slots, "module slots")?);
        }
        Ok(node_ids.iter().map(|id| by_node.get(id).cloned().unwrap_or_default()).collect())
    }

    async fn nodes_in(&self, tenant: TenantId, environment: Environment) -> StoreResult<Vec<NodeRecord>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // hostname is COLLATE "C": byte order, as the in-memory store sorts.
        let rows: Result<Vec<NodeWithModule>, _> =
            nodes_with_modules!(tenant).filter(nodes::environment.eq(environment.as_str())).load(conn).await;
        match rows {
            Ok(rows) => assemble(rows),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn forget_nodes(&self, tenant: TenantId, node_ids: &[Uuid]) -> StoreResult<usize> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // Their module slots go by cascade. An agent's node stays, even one
        // enrolled (on any instance) since the caller listed the nodes.
        let gone = diesel::sql_query(
            "DELETE FROM nodes n WHERE n.tenant_id = $1 AND n.node_id = ANY($2) \
             AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.tenant_id = n.tenant_id AND a.node_id = n.node_id)",
        )
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(node_ids)
        .execute(conn)
        .await;
        gone.map_err(|e| self.db_error(conn, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_slots_sends_the_ids_as_one_array() {
        let ids = vec![Uuid::new_v4(); 5_000];
        let sql = diesel::debug_query::<Pg, _>(&slots_of(Uuid::nil(), &ids, "m")).to_string();
        assert!(sql.contains("\"node_id\" = ANY($3)"), "{sql}");
        assert!(!sql.contains("$4"), "{sql}");
    }
}
