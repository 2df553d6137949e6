//! Publishing: de-duplication on ExactlyOnce topics, routing by the topic's
//! strategy (the core's `route`), and one queued delivery per subscription
//! chosen, all in one transaction under the topic's row lock.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    route, DeliveryGuarantee, Message, MessagingError, NewMessage, NewSubscription, Published, RouteCandidate,
    RoutingStrategy, Topic,
};
use std::sync::Arc;
use uuid::Uuid;

use super::rows::{decode, encode, span_ms, MessageRow, SubscriptionRow, SUBSCRIPTION_COLUMNS};
use super::topics::{lock_topic, notify};
use super::{Failure, PgMessageStore};

#[derive(QueryableByName)]
struct SeqRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

impl PgMessageStore {
    pub(super) async fn publish_row(
        &self,
        tenant: TenantId,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Published, MessagingError> {
        new.validate()?;
        let window_ms = span_ms(self.idempotency_window);
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let published = conn
            .transaction::<_, Failure, _>(async |conn| {
                let (topic, rr_counter) = lock_topic(conn, tenant, &new.topic_name).await?;
                let exactly_once = topic.spec.delivery_guarantee == DeliveryGuarantee::ExactlyOnce;
                let dedup_key = new.idempotency_key.clone().or_else(|| new.message_id.clone()).filter(|_| exactly_once);
                if let Some(key) = &dedup_key {
                    if let Some(first) = first_of_key(conn, tenant, &topic.spec.name, key, now, window_ms).await? {
                        let stored = first.into_stored()?;
                        return Ok((
                            Published {
                                message: Arc::new(stored.message),
                                duplicate: true,
                                routed_to: stored.routed_to,
                            },
                            false,
                        ));
                    }
                }
                let message = Message {
                    tenant_id: tenant,
                    message_id: new.message_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string()),
                    topic_name: new.topic_name.clone(),
                    payload: new.payload.clone(),
                    headers: new.headers.clone(),
                    priority: new.priority,
                    partition_key: new.partition_key.clone(),
                    schema_version: new.schema_version,
                    correlation_id: new.correlation_id.clone(),
                    published_at: now,
                    expires_at: new.expires_at,
                };
                let routed_to = route_message(conn, &topic, rr_counter, &message).await?;
                let seq = insert_message(conn, &message, &routed_to).await?;
                insert_deliveries(conn, &message, seq, &routed_to).await?;
                if let Some(key) = &dedup_key {
                    diesel::sql_query(
                        "INSERT INTO msg_idempotency (tenant_id, topic_name, key, message_id, seen_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, topic_name, key) \
                         DO UPDATE SET message_id = EXCLUDED.message_id, seen_at = EXCLUDED.seen_at",
                    )
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<Text, _>(&topic.spec.name)
                    .bind::<Text, _>(key)
                    .bind::<Text, _>(&message.message_id)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                }
                diesel::sql_query(
                    "UPDATE msg_topics SET published = published + 1, unrouted = unrouted + $3 \
                     WHERE tenant_id = $1 AND name = $2",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(&topic.spec.name)
                .bind::<BigInt, _>(i64::from(routed_to.is_empty()))
                .execute(conn)
                .await?;
                let woke = !routed_to.is_empty();
                if woke {
                    notify(conn).await?;
                }
                Ok((Published { message: Arc::new(message), duplicate: false, routed_to }, woke))
            })
            .await
            .map_err(|f| self.failure(conn, f))?;
        let (published, woke) = published;
        if woke {
            self.wake_local();
        }
        Ok(published)
    }
}

/// The first message of an idempotency key, while the window holds and the
/// message is still stored.
async fn first_of_key(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    topic: &str,
    key: &str,
    now: DateTime<Utc>,
    window_ms: i64,
) -> Result<Option<MessageRow>, Failure> {
    let mut rows = diesel::sql_query(
        "SELECT m.message, m.status, m.routed_to, m.acknowledged_at FROM msg_idempotency i \
         JOIN msg_messages m ON m.tenant_id = i.tenant_id AND m.message_id = i.message_id \
         WHERE i.tenant_id = $1 AND i.topic_name = $2 AND i.key = $3 \
           AND i.seen_at + $5 * interval '1 millisecond' > $4",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<Text, _>(topic)
    .bind::<Text, _>(key)
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(window_ms)
    .load::<MessageRow>(conn)
    .await?;
    Ok(rows.pop())
}

/// The subscriptions the message goes to; a load-balanced choice takes the
/// topic's next rotation position (the topic row is locked by the caller).
async fn route_message(
    conn: &mut AsyncPgConnection,
    topic: &Topic,
    rr_counter: i64,
    message: &Message,
) -> Result<Vec<Uuid>, Failure> {
    let rows = diesel::sql_query(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM msg_subscriptions WHERE tenant_id = $1 AND topic_name = $2 \
         ORDER BY created_seq"
    ))
    .bind::<SqlUuid, _>(topic.tenant_id)
    .bind::<Text, _>(&topic.spec.name)
    .load::<SubscriptionRow>(conn)
    .await?;
    let mut specs = Vec::with_capacity(rows.len());
    for row in &rows {
        specs.push(decode::<NewSubscription>(row.spec.clone(), "subscription")?);
    }
    let candidates: Vec<RouteCandidate<'_>> = rows
        .iter()
        .zip(&specs)
        .map(|(row, spec)| RouteCandidate {
            id: row.subscription_id,
            paused: row.paused,
            filter: spec.filter.as_ref(),
            last_assigned: u64::try_from(row.last_assigned).unwrap_or(0),
        })
        .collect();
    let strategy = topic.effective_strategy();
    let chosen = route(strategy, &candidates, message);
    if let (RoutingStrategy::LoadBalanced, Some(id)) = (strategy, <[Uuid]>::first(&chosen)) {
        let position = rr_counter + 1;
        diesel::sql_query("UPDATE msg_topics SET rr_counter = $3 WHERE tenant_id = $1 AND name = $2")
            .bind::<SqlUuid, _>(topic.tenant_id)
            .bind::<Text, _>(&topic.spec.name)
            .bind::<BigInt, _>(position)
            .execute(&mut *conn)
            .await?;
        diesel::sql_query(
            "UPDATE msg_subscriptions SET last_assigned = $3 WHERE tenant_id = $1 AND subscription_id = $2",
        )
        .bind::<SqlUuid, _>(topic.tenant_id)
        .bind::<SqlUuid, _>(*id)
        .bind::<BigInt, _>(position)
        .execute(conn)
        .await?;
    }
    Ok(chosen)
}

/// Stores the message; a message id already stored is a conflict.
async fn insert_message(conn: &mut AsyncPgConnection, message: &Message, routed_to: &[Uuid]) -> Result<i64, Failure> {
    let json = encode(message, "message")?;
    let mut rows = diesel::sql_query(
        "INSERT INTO msg_messages (tenant_id, message_id, topic_name, message, status, routed_to, published_at, \
             expires_at) VALUES ($1, $2, $3, $4, 'Pending', $5, $6, $7) \
         ON CONFLICT (tenant_id, message_id) DO NOTHING RETURNING seq",
    )
    .bind::<SqlUuid, _>(message.tenant_id)
    .bind::<Text, _>(&message.message_id)
    .bind::<Text, _>(&message.topic_name)
    .bind::<Jsonb, _>(&json)
    .bind::<Array<SqlUuid>, _>(routed_to)
    .bind::<Timestamptz, _>(message.published_at)
    .bind::<Nullable<Timestamptz>, _>(message.expires_at)
    .load::<SeqRow>(conn)
    .await?;
    match rows.pop() {
        Some(row) => Ok(row.seq),
        None => Err(MessagingError::Conflict(format!("message '{}' already exists", message.message_id)).into()),
    }
}

async fn insert_deliveries(
    conn: &mut AsyncPgConnection,
    message: &Message,
    seq: i64,
    routed_to: &[Uuid],
) -> Result<(), Failure> {
    if routed_to.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO msg_deliveries (tenant_id, subscription_id, message_id, seq, priority, partition_key, \
             expires_at, state, attempts, available_at) \
         SELECT $1, s, $2, $3, $4, $5, $6, 'queued', 0, $7 FROM unnest($8::uuid[]) AS s",
    )
    .bind::<SqlUuid, _>(message.tenant_id)
    .bind::<Text, _>(&message.message_id)
    .bind::<BigInt, _>(seq)
    .bind::<SmallInt, _>(i16::from(message.priority))
    .bind::<Nullable<Text>, _>(message.partition_key.as_deref())
    .bind::<Nullable<Timestamptz>, _>(message.expires_at)
    .bind::<Timestamptz, _>(message.published_at)
    .bind::<Array<SqlUuid>, _>(routed_to)
    .execute(conn)
    .await?;
    Ok(())
}
