//! Cluster metric samples, trimmed to a retention count per series.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{Environment, TenantId};
use hotswap_actors::store::{ClusterSample, MetricsStore, StoreResult};

use super::codec::{self, join_time, split_time};
use super::errors::Failure;
use super::schema::cluster_samples;
use super::PgStore;

#[derive(Insertable)]
#[diesel(table_name = cluster_samples)]
struct SampleRow {
    tenant_id: TenantId,
    environment: &'static str,
    at: DateTime<Utc>,
    at_nanos: i16,
    metrics: serde_json::Value,
    healthy_nodes: i64,
    total_nodes: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cluster_samples, check_for_backend(Pg))]
struct StoredSample {
    tenant_id: TenantId,
    environment: String,
    at: DateTime<Utc>,
    at_nanos: i16,
    metrics: serde_json::Value,
    healthy_nodes: i64,
    total_nodes: i64,
}

impl StoredSample {
    fn decode(self) -> StoreResult<ClusterSample> {
        Ok(ClusterSample {
            tenant_id: self.tenant_id,
            environment: codec::environment(&self.environment)?,
            at: join_time(self.at, self.at_nanos),
            metrics: codec::from_json(self.metrics, "metrics")?,
            healthy_nodes: codec::stored_count(self.healthy_nodes, "healthy node count")?,
            total_nodes: codec::stored_count(self.total_nodes, "node count")?,
        })
    }
}

#[async_trait]
impl MetricsStore for PgStore {
    async fn record_sample(&self, sample: &ClusterSample, retain: usize) -> StoreResult<()> {
        let (at, at_nanos) = split_time(sample.at);
        let row = SampleRow {
            tenant_id: sample.tenant_id,
            environment: sample.environment.as_str(),
            at,
            at_nanos,
            metrics: codec::to_json(&sample.metrics, "metrics")?,
            healthy_nodes: codec::count(sample.healthy_nodes),
            total_nodes: codec::count(sample.total_nodes),
        };
        let keep = i64::try_from(retain.max(1)).unwrap_or(i64::MAX);
        let series = format!("cluster_samples/{}/{}", sample.tenant_id, sample.environment.as_str());
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            // Writers of one series take turns, so that each trim counts
            // every sample committed before it.
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<Text, _>(&series)
                .execute(conn)
                .await?;
            diesel::insert_into(cluster_samples::table).values(&row).execute(conn).await?;
            let oldest_kept_beyond: Option<i64> = cluster_samples::table
                .filter(cluster_samples::tenant_id.eq(sample.tenant_id))
                .filter(cluster_samples::environment.eq(row.environment))
                .order(cluster_samples::id.desc())
                .offset(keep)
                .select(cluster_samples::id)
                .first(conn)
                .await
                .optional()?;
            if let Some(cutoff) = oldest_kept_beyond {
                diesel::delete(
                    cluster_samples::table
                        .filter(cluster_samples::tenant_id.eq(sample.tenant_id))
                        .filter(cluster_samples::environment.eq(row.environment))
                        .filter(cluster_samples::id.le(cutoff)),
                )
                .execute(conn)
                .await?;
            }
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn samples(
        &self,
        tenant: TenantId,
        environment: Environment,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ClusterSample>> {
        let (from_at, from_nanos) = split_time(from);
        let (to_at, to_nanos) = split_time(to);
        let mut conn = self.conn().await?;
        let rows = cluster_samples::table
            .filter(cluster_samples::tenant_id.eq(tenant))
            .filter(cluster_samples::environment.eq(environment.as_str()))
            // The microsecond bounds use the index; the nanosecond ones make
            // the range exact at both ends.
            .filter(cluster_samples::at.between(from_at, to_at))
            .filter(cluster_samples::at.gt(from_at).or(cluster_samples::at_nanos.ge(from_nanos)))
            .filter(cluster_samples::at.lt(to_at).or(cluster_samples::at_nanos.le(to_nanos)))
            // Insertion order, the order the in-memory store keeps.
            .order(cluster_samples::id)
            .select(StoredSample::as_select())
            .load(&mut *conn)
            .await;
        match rows {
            Ok(rows) => rows.into_iter().map(StoredSample::decode).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
