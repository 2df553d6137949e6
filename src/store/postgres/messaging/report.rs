//! Topic metrics and the retention sweep.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{MessagingError, TopicMetrics};
use uuid::Uuid;

use super::rows::{span_ms, SQL_SPAN_CAP_MS};
use super::PgMessageStore;

/// Rows removed per statement, so that one sweep never holds many locks.
const SWEEP_BATCH: i64 = 1000;

pub(super) fn add(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    hotswap_actors::messaging::later_by(at, d)
}

#[derive(QueryableByName)]
struct Counters {
    #[diesel(sql_type = BigInt)]
    published: i64,
    #[diesel(sql_type = BigInt)]
    unrouted: i64,
    #[diesel(sql_type = BigInt)]
    delivered: i64,
    #[diesel(sql_type = BigInt)]
    acknowledged: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    dead_lettered: i64,
}

#[derive(QueryableByName)]
struct SubscriptionCounters {
    #[diesel(sql_type = SqlUuid)]
    subscription_id: Uuid,
    #[diesel(sql_type = BigInt)]
    delivered: i64,
    #[diesel(sql_type = BigInt)]
    acknowledged: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    dead_lettered: i64,
    #[diesel(sql_type = BigInt)]
    depth: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<DateTime<Utc>>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgMessageStore {
    /// The topic's own counters plus its subscriptions' (those of deleted
    /// subscriptions were folded into the topic's).
    pub(super) async fn metrics_rows(
        &self,
        tenant: TenantId,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<TopicMetrics, MessagingError> {
        let mut conn = self.conn().await?;
        let topic_row = diesel::sql_query(
            "SELECT published, unrouted, delivered, acknowledged, failed, dead_lettered FROM msg_topics \
             WHERE tenant_id = $1 AND name = $2",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(topic)
        .load::<Counters>(&mut *conn)
        .await;
        let c = match topic_row {
            Ok(mut rows) => rows.pop().ok_or_else(|| MessagingError::TopicNotFound(topic.to_owned()))?,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        let subs = diesel::sql_query(
            "SELECT s.subscription_id, s.delivered, s.acknowledged, s.failed, s.dead_lettered, \
                 count(d.message_id) AS depth, min(m.published_at) AS oldest \
             FROM msg_subscriptions s \
             LEFT JOIN msg_deliveries d ON d.tenant_id = s.tenant_id AND d.subscription_id = s.subscription_id \
                 AND d.state IN ('queued', 'leased') \
             LEFT JOIN msg_messages m ON m.tenant_id = d.tenant_id AND m.message_id = d.message_id \
             WHERE s.tenant_id = $1 AND s.topic_name = $2 GROUP BY s.tenant_id, s.subscription_id",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(topic)
        .load::<SubscriptionCounters>(&mut *conn)
        .await;
        let subs = match subs {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        let mut m = TopicMetrics {
            published: count(c.published),
            delivered: count(c.delivered),
            acknowledged: count(c.acknowledged),
            failed: count(c.failed),
            dead_lettered: count(c.dead_lettered),
            unrouted: count(c.unrouted),
            depth: BTreeMap::new(),
            oldest_unacked_age_ms: None,
        };
        let mut oldest: Option<DateTime<Utc>> = None;
        for s in subs {
            m.delivered += count(s.delivered);
            m.acknowledged += count(s.acknowledged);
            m.failed += count(s.failed);
            m.dead_lettered += count(s.dead_lettered);
            m.depth.insert(s.subscription_id, count(s.depth));
            oldest = match (oldest, s.oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        m.oldest_unacked_age_ms = oldest.map(|o| (now - o).num_milliseconds());
        Ok(m)
    }

    /// Removes acknowledged and expired messages older than their topic's
    /// retention (their deliveries by cascade), in batches, and idempotency
    /// keys older than the window.
    pub(super) async fn sweep_rows(&self, now: DateTime<Utc>, window: Duration) -> Result<usize, MessagingError> {
        let mut conn = self.conn().await?;
        let mut removed = 0usize;
        loop {
            let done = diesel::sql_query(
                "DELETE FROM msg_messages WHERE ctid IN ( \
                     SELECT m.ctid FROM msg_messages m \
                     JOIN msg_topics t ON t.tenant_id = m.tenant_id AND t.name = m.topic_name \
                     WHERE (m.status = 'Acknowledged' OR m.expires_at <= $1) \
                       AND m.published_at + LEAST(t.retention_ms, $3) * interval '1 millisecond' <= $1 \
                     LIMIT $2)",
            )
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(SWEEP_BATCH)
            .bind::<BigInt, _>(SQL_SPAN_CAP_MS)
            .execute(&mut *conn)
            .await;
            match done {
                Ok(n) => {
                    removed += n;
                    if i64::try_from(n).unwrap_or(0) < SWEEP_BATCH {
                        break;
                    }
                }
                Err(e) => return Err(self.db_error(&mut conn, e)),
            }
        }
        let keys = diesel::sql_query("DELETE FROM msg_idempotency WHERE seen_at + $2 * interval '1 millisecond' <= $1")
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(span_ms(window))
            .execute(&mut *conn)
            .await;
        match keys {
            Ok(_) => Ok(removed),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
