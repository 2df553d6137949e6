//! Leases, acks and nacks, and the failure path they share: retry after
//! backoff, dead-letter once the retries are spent, drop on AtMostOnce.
//! Expired leases of a subscription are returned as failed attempts at the
//! start of each of these operations, as the in-memory back-end does.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    Delivery, DeliveryGuarantee, Message, MessagingError, NackOptions, NewSubscription, RetryPolicy, RoutingStrategy,
    Topic,
};
use std::sync::Arc;
use uuid::Uuid;

use super::rows::{decode, encode, DeliveryState, LeasedRow, TopicRow};
use super::topics::notify;
use super::{Failure, PgMessageStore};

/// A subscription with its topic, as leases and failures need them.
struct Context {
    tenant: TenantId,
    subscription: Uuid,
    paused: bool,
    spec: NewSubscription,
    topic: Topic,
}

#[derive(QueryableByName)]
struct ContextRow {
    #[diesel(sql_type = Bool)]
    paused: bool,
    #[diesel(sql_type = Jsonb)]
    sub_spec: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    topic_spec: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    topic_created_at: DateTime<Utc>,
}

async fn context(conn: &mut AsyncPgConnection, tenant: TenantId, subscription: Uuid) -> Result<Context, Failure> {
    let mut rows = diesel::sql_query(
        "SELECT s.paused, s.spec AS sub_spec, t.spec AS topic_spec, t.created_at AS topic_created_at \
         FROM msg_subscriptions s JOIN msg_topics t ON t.tenant_id = s.tenant_id AND t.name = s.topic_name \
         WHERE s.tenant_id = $1 AND s.subscription_id = $2",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(subscription)
    .load::<ContextRow>(conn)
    .await?;
    let row = rows.pop().ok_or_else(|| MessagingError::SubscriptionNotFound(subscription.to_string()))?;
    Ok(Context {
        tenant,
        subscription,
        paused: row.paused,
        spec: decode(row.sub_spec, "subscription")?,
        topic: TopicRow { spec: row.topic_spec, created_at: row.topic_created_at }.into_topic(tenant)?,
    })
}

/// The delivery of one message to one subscription, locked.
async fn delivery(
    conn: &mut AsyncPgConnection,
    cx: &Context,
    message_id: &str,
) -> Result<Option<DeliveryState>, Failure> {
    let mut rows = diesel::sql_query(
        "SELECT message_id, state, attempts, lease_deadline FROM msg_deliveries \
         WHERE tenant_id = $1 AND subscription_id = $2 AND message_id = $3 FOR UPDATE",
    )
    .bind::<SqlUuid, _>(cx.tenant)
    .bind::<SqlUuid, _>(cx.subscription)
    .bind::<Text, _>(message_id)
    .load::<DeliveryState>(conn)
    .await?;
    Ok(rows.pop())
}

/// Picks ready deliveries in order (priority first on Priority topics) and
/// leases them. On ordered topics a delivery waits while its key has an
/// earlier queued or any leased delivery, judged on the committed state, so
/// consumers skipping each other's locked rows still cannot overtake a key.
const LEASE: &str = "\
    WITH picked AS ( \
        SELECT d.message_id FROM msg_deliveries d \
        WHERE d.tenant_id = $1 AND d.subscription_id = $2 AND d.state = 'queued' AND d.available_at <= $3 \
          AND (NOT $5 OR d.partition_key IS NULL OR NOT EXISTS ( \
              SELECT 1 FROM msg_deliveries e \
              WHERE e.tenant_id = d.tenant_id AND e.subscription_id = d.subscription_id \
                AND e.partition_key = d.partition_key AND e.state IN ('queued', 'leased') \
                AND (e.state = 'leased' OR e.seq < d.seq))) \
        ORDER BY CASE WHEN $6 THEN d.priority ELSE 0 END DESC, d.seq \
        LIMIT $4 FOR UPDATE OF d SKIP LOCKED) \
    UPDATE msg_deliveries d SET state = 'leased', attempts = d.attempts + 1, lease_deadline = $7 \
    FROM picked, msg_messages m \
    WHERE d.tenant_id = $1 AND d.subscription_id = $2 AND d.message_id = picked.message_id \
      AND m.tenant_id = d.tenant_id AND m.message_id = d.message_id \
    RETURNING m.message, d.attempts, d.seq, d.priority";

impl PgMessageStore {
    pub(super) async fn lease_rows(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let retry = self.retry;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let cx = context(conn, tenant, subscription).await?;
            expire_leases(conn, &cx, &retry, now).await?;
            if cx.paused || max == 0 {
                return Ok(Vec::new());
            }
            // Expired messages are never delivered.
            diesel::sql_query(
                "UPDATE msg_deliveries SET state = 'dropped' WHERE tenant_id = $1 AND subscription_id = $2 \
                 AND state = 'queued' AND expires_at <= $3",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(subscription)
            .bind::<Timestamptz, _>(now)
            .execute(conn)
            .await?;
            let priority_first = cx.topic.effective_strategy() == RoutingStrategy::Priority;
            let deadline = super::report::add(now, cx.spec.ack_timeout);
            let mut rows = diesel::sql_query(LEASE)
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(subscription)
                .bind::<Timestamptz, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(i64::try_from(max).unwrap_or(i64::MAX))
                .bind::<Bool, _>(cx.topic.spec.ordered)
                .bind::<Bool, _>(priority_first)
                .bind::<Timestamptz, _>(deadline)
                .load::<LeasedRow>(conn)
                .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            if priority_first {
                rows.sort_by_key(|r| (std::cmp::Reverse(r.priority), r.seq));
            } else {
                rows.sort_by_key(|r| r.seq);
            }
            add_to_counters(conn, &cx, "delivered", rows.len()).await?;
            let mut deliveries = Vec::with_capacity(rows.len());
            for row in rows {
                deliveries.push(Delivery {
                    message: Arc::new(decode::<Message>(row.message, "message")?),
                    subscription_id: subscription,
                    delivery_attempts: u32::try_from(row.attempts).unwrap_or(0),
                    ack_deadline: deadline,
                });
            }
            Ok(deliveries)
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    pub(super) async fn ack_row(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let retry = self.retry;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let cx = context(conn, tenant, subscription).await?;
            expire_leases(conn, &cx, &retry, now).await?;
            let state = delivery(conn, &cx, message_id).await?.map(|d| d.state);
            match state.as_deref() {
                Some("acked") => return Ok(()),
                Some("leased") => {}
                Some("queued") => return Err(MessagingError::LeaseNotHeld(message_id.to_owned()).into()),
                _ => return Err(MessagingError::MessageNotFound(message_id.to_owned()).into()),
            }
            set_state(conn, &cx, message_id, "acked").await?;
            add_to_counters(conn, &cx, "acknowledged", 1).await?;
            // Acks of one message by several subscriptions queue on its row,
            // so the last one sees every other ack committed.
            diesel::sql_query("SELECT 1 FROM msg_messages WHERE tenant_id = $1 AND message_id = $2 FOR UPDATE")
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(message_id)
                .execute(conn)
                .await?;
            diesel::sql_query(
                "UPDATE msg_messages SET status = 'Acknowledged', acknowledged_at = COALESCE(acknowledged_at, $3) \
                 WHERE tenant_id = $1 AND message_id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM msg_deliveries WHERE tenant_id = $1 AND message_id = $2 \
                                 AND state <> 'acked')",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(message_id)
            .bind::<Timestamptz, _>(now)
            .execute(conn)
            .await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    pub(super) async fn nack_row(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let retry = self.retry;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let cx = context(conn, tenant, subscription).await?;
            expire_leases(conn, &cx, &retry, now).await?;
            let held = delivery(conn, &cx, message_id).await?.filter(|d| d.state == "leased");
            let Some(held) = held else {
                return Err(MessagingError::LeaseNotHeld(message_id.to_owned()).into());
            };
            let reason = options.reason.clone().unwrap_or_else(|| "rejected by consumer".into());
            fail(conn, &cx, &held, reason, options.requeue, &retry, now).await?;
            notify(conn).await
        })
        .await
        .map_err(|f| self.failure(conn, f))?;
        self.wake_local();
        Ok(())
    }

    pub(super) async fn next_due_row(
        &self,
        tenant: TenantId,
        subscription: Uuid,
    ) -> Result<Option<DateTime<Utc>>, MessagingError> {
        #[derive(QueryableByName)]
        struct DueRow {
            #[diesel(sql_type = Bool)]
            paused: bool,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            at: Option<DateTime<Utc>>,
        }
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(
            "SELECT s.paused, (SELECT min(CASE WHEN d.state = 'queued' THEN d.available_at ELSE d.lease_deadline END) \
                 FROM msg_deliveries d WHERE d.tenant_id = s.tenant_id AND d.subscription_id = s.subscription_id \
                 AND d.state IN ('queued', 'leased')) AS at \
             FROM msg_subscriptions s WHERE s.tenant_id = $1 AND s.subscription_id = $2",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(subscription)
        .load::<DueRow>(&mut *conn)
        .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) if row.paused => Ok(None),
                Some(row) => Ok(row.at),
                None => Err(MessagingError::SubscriptionNotFound(subscription.to_string())),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}

/// Returns a subscription's expired leases to the retry path. The attempt
/// failed at its deadline, whenever that is noticed, so the backoff counts
/// from there. Rows another transaction holds are left to it.
async fn expire_leases(
    conn: &mut AsyncPgConnection,
    cx: &Context,
    retry: &RetryPolicy,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let expired = diesel::sql_query(
        "SELECT message_id, state, attempts, lease_deadline FROM msg_deliveries \
         WHERE tenant_id = $1 AND subscription_id = $2 AND state = 'leased' AND lease_deadline <= $3 \
         ORDER BY seq FOR UPDATE SKIP LOCKED",
    )
    .bind::<SqlUuid, _>(cx.tenant)
    .bind::<SqlUuid, _>(cx.subscription)
    .bind::<Timestamptz, _>(now)
    .load::<DeliveryState>(&mut *conn)
    .await?;
    for lease in expired {
        let at = lease.lease_deadline.unwrap_or(now);
        fail(conn, cx, &lease, "ack deadline passed".into(), None, retry, at).await?;
    }
    Ok(())
}

/// One failed attempt (nack or expired lease) of a locked, leased delivery.
async fn fail(
    conn: &mut AsyncPgConnection,
    cx: &Context,
    lease: &DeliveryState,
    reason: String,
    requeue: Option<bool>,
    retry: &RetryPolicy,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    add_to_counters(conn, cx, "failed", 1).await?;
    let attempts = u32::try_from(lease.attempts).unwrap_or(0);
    if cx.topic.spec.delivery_guarantee == DeliveryGuarantee::AtMostOnce {
        return set_state(conn, cx, &lease.message_id, "dropped").await;
    }
    if requeue != Some(false) && attempts <= cx.spec.max_retries {
        let available_at = super::report::add(now, retry.backoff(attempts));
        diesel::sql_query(
            "UPDATE msg_deliveries SET state = 'queued', lease_deadline = NULL, available_at = $4 \
             WHERE tenant_id = $1 AND subscription_id = $2 AND message_id = $3",
        )
        .bind::<SqlUuid, _>(cx.tenant)
        .bind::<SqlUuid, _>(cx.subscription)
        .bind::<Text, _>(&lease.message_id)
        .bind::<Timestamptz, _>(available_at)
        .execute(conn)
        .await?;
        return Ok(());
    }
    set_state(conn, cx, &lease.message_id, "dead").await?;
    add_to_counters(conn, cx, "dead_lettered", 1).await?;
    #[derive(QueryableByName)]
    struct Body {
        #[diesel(sql_type = Jsonb)]
        message: serde_json::Value,
    }
    let mut rows = diesel::sql_query(
        "UPDATE msg_messages SET status = 'DeadLettered' WHERE tenant_id = $1 AND message_id = $2 RETURNING message",
    )
    .bind::<SqlUuid, _>(cx.tenant)
    .bind::<Text, _>(&lease.message_id)
    .load::<Body>(&mut *conn)
    .await?;
    let Some(body) = rows.pop() else { return Ok(()) };
    let mut message: Message = decode(body.message, "message")?;
    let topic = &cx.topic.spec.name;
    message.headers.insert("X-Original-Topic".into(), topic.clone());
    message.headers.insert("X-DLQ-Reason".into(), reason.clone());
    message.headers.insert("X-DLQ-Timestamp".into(), now.to_rfc3339());
    message.headers.insert("X-Delivery-Attempts".into(), attempts.to_string());
    diesel::sql_query(
        "INSERT INTO msg_dead_letters (tenant_id, topic_name, message_id, subscription_id, message, reason, attempts, \
             dead_lettered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, topic_name, message_id, subscription_id) DO UPDATE SET message = EXCLUDED.message, \
             reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, dead_lettered_at = EXCLUDED.dead_lettered_at",
    )
    .bind::<SqlUuid, _>(cx.tenant)
    .bind::<Text, _>(topic)
    .bind::<Text, _>(&lease.message_id)
    .bind::<SqlUuid, _>(cx.subscription)
    .bind::<Jsonb, _>(encode(&message, "dead letter")?)
    .bind::<Text, _>(&reason)
    .bind::<Integer, _>(lease.attempts)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_state(conn: &mut AsyncPgConnection, cx: &Context, message_id: &str, state: &str) -> Result<(), Failure> {
    diesel::sql_query(
        "UPDATE msg_deliveries SET state = $4, lease_deadline = NULL \
         WHERE tenant_id = $1 AND subscription_id = $2 AND message_id = $3",
    )
    .bind::<SqlUuid, _>(cx.tenant)
    .bind::<SqlUuid, _>(cx.subscription)
    .bind::<Text, _>(message_id)
    .bind::<Text, _>(state)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds to one of the subscription's counters; `counter` is one of this
/// file's constants, never input.
async fn add_to_counters(conn: &mut AsyncPgConnection, cx: &Context, counter: &str, n: usize) -> Result<(), Failure> {
    diesel::sql_query(format!(
        "UPDATE msg_subscriptions SET {counter} = {counter} + $3 WHERE tenant_id = $1 AND subscription_id = $2"
    ))
    .bind::<SqlUuid, _>(cx.tenant)
    .bind::<SqlUuid, _>(cx.subscription)
    .bind::<diesel::sql_types::BigInt, _>(i64::try_from(n).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}
