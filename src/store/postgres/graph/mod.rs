//! The knowledge graph on PostgreSQL: entities and relationships with jsonb
//! properties (see the knowledge_graph migration). Writes go in batches
//! through UNNEST, so that a bulk request of 10,000 records is a handful of
//! statements in one transaction, whatever the bind-parameter limit.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{Array, BigInt, Bool, Double, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{
    GraphChange, GraphEntity, GraphRelationship, GraphSchema, GraphSnapshot, NewAuditEntry, TenantId,
};
use hotswap_actors::store::{GraphStore, StoreError, StoreResult};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::audit::insert_audit;
use super::cached_sql::CachedSql;
use super::errors::Failure;
use super::PgStore;

/// Rows per statement; keeps each statement's arrays a few megabytes at most.
const CHUNK: usize = 5_000;

#[derive(diesel::QueryableByName)]
struct EntityRow {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    entity_type: String,
    #[diesel(sql_type = Jsonb)]
    properties: Value,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    created_by: String,
}

#[derive(diesel::QueryableByName)]
struct RelationshipRow {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    relationship_type: String,
    #[diesel(sql_type = SqlUuid)]
    source_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    target_id: Uuid,
    #[diesel(sql_type = Jsonb)]
    properties: Value,
    #[diesel(sql_type = Double)]
    weight: f64,
    #[diesel(sql_type = Bool)]
    directed: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    created_by: String,
}

#[derive(diesel::QueryableByName)]
struct SchemaRow {
    #[diesel(sql_type = Jsonb)]
    definition: Value,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl From<EntityRow> for GraphEntity {
    fn from(r: EntityRow) -> Self {
        GraphEntity {
            tenant_id: r.tenant_id,
            id: r.id,
            entity_type: r.entity_type,
            properties: object(r.properties),
            version: u64::try_from(r.version).unwrap_or(1),
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_by: r.created_by,
        }
    }
}

impl From<RelationshipRow> for GraphRelationship {
    fn from(r: RelationshipRow) -> Self {
        GraphRelationship {
            tenant_id: r.tenant_id,
            id: r.id,
            relationship_type: r.relationship_type,
            source_id: r.source_id,
            target_id: r.target_id,
            properties: object(r.properties),
            weight: r.weight,
            directed: r.directed,
            created_at: r.created_at,
            created_by: r.created_by,
        }
    }
}

const ENTITY_COLUMNS: &str = "tenant_id, id, entity_type, properties, version, created_at, updated_at, created_by";
const RELATIONSHIP_COLUMNS: &str =
    "tenant_id, id, relationship_type, source_id, target_id, properties, weight, directed, created_at, created_by";

/// A relationship whose end does not exist breaks a foreign key.
fn missing_end(e: DbError) -> Failure {
    match &e {
        DbError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
            StoreError::NotFound(format!("a relationship names an entity that does not exist: {}", info.message()))
                .into()
        }
        _ => Failure::Db(e),
    }
}

/// The arrays `bind_entities` binds, placeholders `entity_upsert_sql` writes.
const ENTITY_ARRAYS: usize = 7;
/// The arrays `bind_relationships` binds, placeholders `relationship_upsert_sql` writes.
const RELATIONSHIP_ARRAYS: usize = 9;

/// The entities' upsert, its arrays bound from `$first` on (`$1` is the tenant).
fn entity_upsert_sql(first: usize) -> String {
    let p = |i: usize| first + i;
    format!(
        "INSERT INTO graph_entities ({ENTITY_COLUMNS}) \
         SELECT $1, * FROM UNNEST(${}::uuid[], ${}::text[], ${}::jsonb[], ${}::bigint[], ${}::timestamptz[], ${}::timestamptz[], ${}::text[]) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET entity_type = EXCLUDED.entity_type, \
         properties = EXCLUDED.properties, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
        p(0), p(1), p(2), p(3), p(4), p(5), p(6)
    )
}

fn bind_entities<'a>(statement: CachedSql<'a>, rows: &'a [GraphEntity]) -> CachedSql<'a> {
    let version: Vec<i64> = rows.iter().map(|e| i64::try_from(e.version).unwrap_or(i64::MAX)).collect();
    statement
        .bind::<Array<SqlUuid>, _>(rows.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|e| e.entity_type.as_str()).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(rows.iter().map(|e| Value::Object(e.properties.clone())).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(version)
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|e| e.created_at).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|e| e.updated_at).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|e| e.created_by.as_str()).collect::<Vec<_>>())
}

/// The relationships' upsert, its arrays bound from `$first` on (`$1` is the tenant).
fn relationship_upsert_sql(first: usize) -> String {
    let p = |i: usize| first + i;
    format!(
        "INSERT INTO graph_relationships ({RELATIONSHIP_COLUMNS}) \
         SELECT $1, * FROM UNNEST(${}::uuid[], ${}::text[], ${}::uuid[], ${}::uuid[], ${}::jsonb[], ${}::float8[], ${}::bool[], ${}::timestamptz[], ${}::text[]) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET relationship_type = EXCLUDED.relationship_type, \
         source_id = EXCLUDED.source_id, target_id = EXCLUDED.target_id, properties = EXCLUDED.properties, \
         weight = EXCLUDED.weight, directed = EXCLUDED.directed",
        p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8)
    )
}

fn bind_relationships<'a>(statement: CachedSql<'a>, rows: &'a [GraphRelationship]) -> CachedSql<'a> {
    statement
        .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.relationship_type.as_str()).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.source_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.target_id).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(rows.iter().map(|r| Value::Object(r.properties.clone())).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(rows.iter().map(|r| r.weight).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(rows.iter().map(|r| r.directed).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.created_by.as_str()).collect::<Vec<_>>())
}

fn tenant_statement<'a>(sql: String, tenant: TenantId) -> CachedSql<'a> {
    CachedSql::new(sql).bind::<SqlUuid, _>(tenant)
}

fn check_tenant<T>(
    rows: &[T],
    tenant: TenantId,
    of: impl Fn(&T) -> (TenantId, Uuid),
    what: &str,
) -> Result<(), Failure> {
    match rows.iter().map(of).find(|(t, _)| *t != tenant) {
        Some((_, id)) => Err(StoreError::Other(format!("{what} {id} belongs to another tenant")).into()),
        None => Ok(()),
    }
}

async fn upsert_entities(conn: &mut AsyncPgConnection, tenant: TenantId, rows: &[GraphEntity]) -> Result<(), Failure> {
    for chunk in rows.chunks(CHUNK) {
        check_tenant(chunk, tenant, |e| (e.tenant_id, e.id), "entity")?;
        bind_entities(tenant_statement(entity_upsert_sql(2), tenant), chunk).execute(conn).await?;
    }
    Ok(())
}

async fn upsert_relationships(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    rows: &[GraphRelationship],
) -> Result<(), Failure> {
    for chunk in rows.chunks(CHUNK) {
        check_tenant(chunk, tenant, |r| (r.tenant_id, r.id), "relationship")?;
        bind_relationships(tenant_statement(relationship_upsert_sql(2), tenant), chunk)
            .execute(conn)
            .await
            .map_err(missing_end)?;
    }
    Ok(())
}

/// Whether `change` may be written as one statement. Its parts run side by
/// side there, on one snapshot, where the transaction runs the upserts first
/// and the deletions after them; the two agree when no deletion names a
/// record the change upserts, or an entity one of its relationships ends
/// at. Those the actors make (a run's relationships written, the oldest
/// ones of its nodes and the runs that leave the window deleted) are such.
fn fits_one_statement(change: &GraphChange) -> bool {
    let within = |n: usize| n <= CHUNK;
    if !(within(change.upsert_entities.len())
        && within(change.upsert_relationships.len())
        && within(change.delete_entities.len())
        && within(change.delete_relationships.len()))
    {
        return false;
    }
    let deleted_entities: HashSet<Uuid> = change.delete_entities.iter().copied().collect();
    let deleted_relationships: HashSet<Uuid> = change.delete_relationships.iter().copied().collect();
    !change.upsert_entities.iter().any(|e| deleted_entities.contains(&e.id))
        && !change.upsert_relationships.iter().any(|r| {
            deleted_relationships.contains(&r.id)
                || deleted_entities.contains(&r.source_id)
                || deleted_entities.contains(&r.target_id)
        })
}

/// A change that fits one statement (`fits_one_statement`) written as one,
/// which is its own transaction (no `BEGIN` and `COMMIT` round trips). The
/// relationships' foreign keys are checked at the statement's end, so they
/// see the entities written beside them, and a deleted entity's relationships
/// go with it then. `false` when the change needs the transaction of `write_graph`.
async fn write_in_one_statement(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    change: &GraphChange,
) -> Result<bool, Failure> {
    if !fits_one_statement(change) {
        return Ok(false);
    }
    let (entities, relationships) = (&change.upsert_entities, &change.upsert_relationships);
    check_tenant(entities, tenant, |e| (e.tenant_id, e.id), "entity")?;
    check_tenant(relationships, tenant, |r| (r.tenant_id, r.id), "relationship")?;
    // Each part present adds its placeholders after the tenant's `$1`; the
    // few combinations are each one statement text, kept prepared.
    let mut parts = Vec::new();
    let mut next = 2;
    if !entities.is_empty() {
        parts.push(format!("entities AS ({})", entity_upsert_sql(next)));
        next += ENTITY_ARRAYS;
    }
    if !relationships.is_empty() {
        parts.push(format!("relationships AS ({})", relationship_upsert_sql(next)));
        next += RELATIONSHIP_ARRAYS;
    }
    if !change.delete_relationships.is_empty() {
        parts.push(format!(
            "gone_relationships AS (DELETE FROM graph_relationships WHERE tenant_id = $1 AND id = ANY(${next}::uuid[]))"
        ));
        next += 1;
    }
    if !change.delete_entities.is_empty() {
        parts.push(format!(
            "gone_entities AS (DELETE FROM graph_entities WHERE tenant_id = $1 AND id = ANY(${next}::uuid[]))"
        ));
    }
    if parts.is_empty() {
        return Ok(true);
    }
    let mut statement = tenant_statement(format!("WITH {} SELECT 1", parts.join(", ")), tenant);
    if !entities.is_empty() {
        statement = bind_entities(statement, entities);
    }
    if !relationships.is_empty() {
        statement = bind_relationships(statement, relationships);
    }
    if !change.delete_relationships.is_empty() {
        statement = statement.bind::<Array<SqlUuid>, _>(&change.delete_relationships);
    }
    if !change.delete_entities.is_empty() {
        statement = statement.bind::<Array<SqlUuid>, _>(&change.delete_entities);
    }
    statement.execute(conn).await.map_err(missing_end)?;
    Ok(true)
}

async fn delete_ids(conn: &mut AsyncPgConnection, table: &str, tenant: TenantId, ids: &[Uuid]) -> Result<(), Failure> {
    for chunk in ids.chunks(CHUNK) {
        CachedSql::new(format!("DELETE FROM {table} WHERE tenant_id = $1 AND id = ANY($2)"))
            .bind::<SqlUuid, _>(tenant)
            .bind::<Array<SqlUuid>, _>(chunk)
            .execute(conn)
            .await?;
    }
    Ok(())
}

impl PgStore {
    /// The tenant's rows of `table` (read as `columns`) whose id is among
    /// `ids`, a chunk of ids per query.
    async fn graph_rows_by_id<Row>(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
        columns: &str,
        table: &str,
    ) -> StoreResult<Vec<Row>>
    where
        Row: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
    {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK * 4) {
            let rows: Vec<Row> =
                match diesel::sql_query(format!("SELECT {columns} FROM {table} WHERE tenant_id = $1 AND id = ANY($2)"))
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<Array<SqlUuid>, _>(chunk)
                    .load(&mut *conn)
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => return Err(self.db_error(&mut conn, e)),
                };
            out.extend(rows);
        }
        Ok(out)
    }
}

#[async_trait]
impl GraphStore for PgStore {
    async fn graph_schema(&self, tenant: TenantId) -> StoreResult<Option<GraphSchema>> {
        let mut conn = self.conn().await?;
        let rows: Vec<SchemaRow> = match diesel::sql_query("SELECT definition FROM graph_schemas WHERE tenant_id = $1")
            .bind::<SqlUuid, _>(tenant)
            .load(&mut *conn)
            .await
        {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        rows.into_iter()
            .next()
            .map(|r| {
                serde_json::from_value(r.definition)
                    .map_err(|e| StoreError::Other(format!("stored graph schema is unreadable: {e}")))
            })
            .transpose()
    }

    async fn save_graph_schema(&self, schema: &GraphSchema, audit: &NewAuditEntry) -> StoreResult<()> {
        let definition = serde_json::to_value(schema)
            .map_err(|e| StoreError::Other(format!("graph schema cannot be stored: {e}")))?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            diesel::sql_query(
                "INSERT INTO graph_schemas (tenant_id, version, definition, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, \
                 definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at",
            )
            .bind::<SqlUuid, _>(schema.tenant_id)
            .bind::<Text, _>(&schema.version)
            .bind::<Jsonb, _>(&definition)
            .bind::<Timestamptz, _>(schema.updated_at)
            .execute(conn)
            .await?;
            insert_audit(conn, std::slice::from_ref(audit)).await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    /// The GIN index on `properties` answers containment.
    fn graph_has_property_index(&self) -> bool {
        true
    }

    async fn graph_entity_ids_where(
        &self,
        tenant: TenantId,
        entity_type: Option<&str>,
        property: &str,
        value: &Value,
    ) -> StoreResult<Vec<Uuid>> {
        #[derive(diesel::QueryableByName)]
        struct IdRow {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        // `@>` with a one-key object is what the GIN index on properties serves.
        let wanted = Value::Object(Map::from_iter([(property.to_string(), value.clone())]));
        let mut conn = self.conn().await?;
        let rows: Vec<IdRow> = match diesel::sql_query(
            "SELECT id FROM graph_entities WHERE tenant_id = $1 AND ($2::text IS NULL OR entity_type = $2) \
             AND properties @> $3",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<diesel::sql_types::Nullable<Text>, _>(entity_type)
        .bind::<Jsonb, _>(&wanted)
        .load(&mut *conn)
        .await
        {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    async fn write_graph(
        &self,
        tenant: TenantId,
        change: &GraphChange,
        audit: Option<&NewAuditEntry>,
    ) -> StoreResult<()> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        if audit.is_none() {
            match write_in_one_statement(conn, tenant, change).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(f) => return Err(self.failure(conn, f)),
            }
        }
        conn.transaction::<_, Failure, _>(async |conn| {
            upsert_entities(conn, tenant, &change.upsert_entities).await?;
            upsert_relationships(conn, tenant, &change.upsert_relationships).await?;
            delete_ids(conn, "graph_relationships", tenant, &change.delete_relationships).await?;
            delete_ids(conn, "graph_entities", tenant, &change.delete_entities).await?;
            if let Some(audit) = audit {
                insert_audit(conn, std::slice::from_ref(audit)).await?;
            }
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn graph_entity(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<GraphEntity>> {
        let mut conn = self.conn().await?;
        let rows: Vec<EntityRow> = match diesel::sql_query(format!(
            "SELECT {ENTITY_COLUMNS} FROM graph_entities WHERE tenant_id = $1 AND id = $2"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(id)
        .load(&mut *conn)
        .await
        {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        Ok(rows.into_iter().next().map(GraphEntity::from))
    }

    async fn graph_entities(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphEntity>> {
        let rows: Vec<EntityRow> = self.graph_rows_by_id(tenant, ids, ENTITY_COLUMNS, "graph_entities").await?;
        Ok(rows.into_iter().map(GraphEntity::from).collect())
    }

    async fn graph_relationships(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphRelationship>> {
        let rows: Vec<RelationshipRow> =
            self.graph_rows_by_id(tenant, ids, RELATIONSHIP_COLUMNS, "graph_relationships").await?;
        Ok(rows.into_iter().map(GraphRelationship::from).collect())
    }

    async fn load_graph(&self, tenant: TenantId) -> StoreResult<GraphSnapshot> {
        let mut conn = self.conn().await?;
        let entities: Vec<EntityRow> =
            match diesel::sql_query(format!("SELECT {ENTITY_COLUMNS} FROM graph_entities WHERE tenant_id = $1"))
                .bind::<SqlUuid, _>(tenant)
                .load(&mut *conn)
                .await
            {
                Ok(rows) => rows,
                Err(e) => return Err(self.db_error(&mut conn, e)),
            };
        let relationships: Vec<RelationshipRow> = match diesel::sql_query(format!(
            "SELECT {RELATIONSHIP_COLUMNS} FROM graph_relationships WHERE tenant_id = $1"
        ))
        .bind::<SqlUuid, _>(tenant)
        .load(&mut *conn)
        .await
        {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        Ok(GraphSnapshot {
            entities: entities.into_iter().map(GraphEntity::from).collect(),
            relationships: relationships.into_iter().map(GraphRelationship::from).collect(),
        })
    }
}
