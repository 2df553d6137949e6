//! Topics and subscriptions.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{MessagingError, NewSubscription, NewTopic, Subscription, Topic};
use uuid::Uuid;

use super::rows::{encode, millis, CountRow, SubscriptionRow, TenantSubscriptionRow, TopicRow, SUBSCRIPTION_COLUMNS};
use super::{Failure, PgMessageStore, CHANNEL};

impl PgMessageStore {
    pub(super) async fn create_topic_row(
        &self,
        tenant: TenantId,
        spec: NewTopic,
        now: DateTime<Utc>,
    ) -> Result<Topic, MessagingError> {
        spec.validate()?;
        let json = encode(&spec, "topic")?;
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(
            "INSERT INTO msg_topics (tenant_id, name, spec, retention_ms, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, name) DO NOTHING RETURNING spec, created_at",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(&spec.name)
        .bind::<Jsonb, _>(&json)
        .bind::<BigInt, _>(millis(spec.retention))
        .bind::<Timestamptz, _>(now)
        .load::<TopicRow>(&mut *conn)
        .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) => row.into_topic(tenant),
                None => Err(MessagingError::TopicExists(spec.name)),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn get_topic_row(&self, tenant: TenantId, name: &str) -> Result<Topic, MessagingError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query("SELECT spec, created_at FROM msg_topics WHERE tenant_id = $1 AND name = $2")
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(name)
            .load::<TopicRow>(&mut *conn)
            .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) => row.into_topic(tenant),
                None => Err(MessagingError::TopicNotFound(name.to_owned())),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn list_topic_rows(&self, tenant: TenantId) -> Result<Vec<Topic>, MessagingError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query("SELECT spec, created_at FROM msg_topics WHERE tenant_id = $1 ORDER BY name")
            .bind::<SqlUuid, _>(tenant)
            .load::<TopicRow>(&mut *conn)
            .await;
        match rows {
            Ok(rows) => rows.into_iter().map(|r| r.into_topic(tenant)).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn update_topic_row(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        spec.validate()?;
        let json = encode(&spec, "topic")?;
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(
            "UPDATE msg_topics SET spec = $3, retention_ms = $4 WHERE tenant_id = $1 AND name = $2 \
             RETURNING spec, created_at",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(&spec.name)
        .bind::<Jsonb, _>(&json)
        .bind::<BigInt, _>(millis(spec.retention))
        .load::<TopicRow>(&mut *conn)
        .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) => row.into_topic(tenant),
                None => Err(MessagingError::TopicNotFound(spec.name)),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    /// Refused while subscribed; takes the topic's messages, dead letters
    /// and idempotency keys with it, as the in-memory back-end does.
    pub(super) async fn delete_topic_row(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            lock_topic(conn, tenant, name).await?;
            let subs = diesel::sql_query(
                "SELECT count(*) AS n FROM msg_subscriptions WHERE tenant_id = $1 AND topic_name = $2",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(name)
            .get_result::<CountRow>(conn)
            .await?;
            if subs.n > 0 {
                return Err(MessagingError::Conflict(format!("topic '{name}' still has subscriptions")).into());
            }
            for table in ["msg_messages", "msg_dead_letters", "msg_idempotency"] {
                // The table names are constants of this file, not input.
                diesel::sql_query(format!("DELETE FROM {table} WHERE tenant_id = $1 AND topic_name = $2"))
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<Text, _>(name)
                    .execute(conn)
                    .await?;
            }
            diesel::sql_query("DELETE FROM msg_topics WHERE tenant_id = $1 AND name = $2")
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(name)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    /// A new subscription joins the load-balancing rotation at the topic's
    /// current position (no burst for newcomers).
    pub(super) async fn create_subscription_row(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        spec.validate()?;
        let json = encode(&spec, "subscription")?;
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(format!(
            "INSERT INTO msg_subscriptions (tenant_id, subscription_id, topic_name, spec, created_at, last_assigned) \
             SELECT $1, $2, t.name, $4, $5, t.rr_counter FROM msg_topics t WHERE t.tenant_id = $1 AND t.name = $3 \
             RETURNING {SUBSCRIPTION_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(Uuid::new_v4())
        .bind::<Text, _>(&spec.topic_name)
        .bind::<Jsonb, _>(&json)
        .bind::<Timestamptz, _>(now)
        .load::<SubscriptionRow>(&mut *conn)
        .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) => row.into_subscription(tenant),
                None => Err(MessagingError::TopicNotFound(spec.topic_name)),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn get_subscription_row(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Subscription, MessagingError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM msg_subscriptions WHERE tenant_id = $1 AND subscription_id = $2"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(id)
        .load::<SubscriptionRow>(&mut *conn)
        .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) => row.into_subscription(tenant),
                None => Err(MessagingError::SubscriptionNotFound(id.to_string())),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn list_subscription_rows(
        &self,
        tenant: TenantId,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, MessagingError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM msg_subscriptions \
             WHERE tenant_id = $1 AND ($2::text IS NULL OR topic_name = $2) ORDER BY created_seq"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<diesel::sql_types::Nullable<Text>, _>(topic)
        .load::<SubscriptionRow>(&mut *conn)
        .await;
        match rows {
            Ok(rows) => rows.into_iter().map(|r| r.into_subscription(tenant)).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn list_push_subscription_rows(&self) -> Result<Vec<Subscription>, MessagingError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(format!(
            "SELECT tenant_id, {SUBSCRIPTION_COLUMNS} FROM msg_subscriptions \
             WHERE spec->>'kind' = 'Push' ORDER BY created_seq"
        ))
        .load::<TenantSubscriptionRow>(&mut *conn)
        .await;
        match rows {
            Ok(rows) => rows.into_iter().map(|r| r.row.into_subscription(r.tenant_id)).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    /// Its deliveries go with it; its counters are folded into the topic's
    /// so that the topic's metrics do not shrink. The topic's row is locked
    /// first, in the order a publish takes the two rows, so the two never
    /// deadlock.
    pub(super) async fn delete_subscription_row(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError> {
        #[derive(diesel::QueryableByName)]
        struct TopicName {
            #[diesel(sql_type = Text)]
            topic_name: String,
        }
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let mut rows = diesel::sql_query(
                "SELECT topic_name FROM msg_subscriptions WHERE tenant_id = $1 AND subscription_id = $2",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(id)
            .load::<TopicName>(conn)
            .await?;
            let topic = rows.pop().ok_or_else(|| MessagingError::SubscriptionNotFound(id.to_string()))?.topic_name;
            lock_topic(conn, tenant, &topic).await?;
            let done = diesel::sql_query(
                "WITH gone AS (DELETE FROM msg_subscriptions WHERE tenant_id = $1 AND subscription_id = $2 \
                     RETURNING topic_name, delivered, acknowledged, failed, dead_lettered) \
                 UPDATE msg_topics t SET delivered = t.delivered + gone.delivered, \
                     acknowledged = t.acknowledged + gone.acknowledged, failed = t.failed + gone.failed, \
                     dead_lettered = t.dead_lettered + gone.dead_lettered \
                 FROM gone WHERE t.tenant_id = $1 AND t.name = gone.topic_name",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(id)
            .execute(conn)
            .await?;
            if done == 0 {
                return Err(MessagingError::SubscriptionNotFound(id.to_string()).into());
            }
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    pub(super) async fn set_paused_row(
        &self,
        tenant: TenantId,
        id: Uuid,
        paused: bool,
    ) -> Result<Subscription, MessagingError> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let row = conn
            .transaction::<_, Failure, _>(async |conn| {
                let mut rows = diesel::sql_query(format!(
                    "UPDATE msg_subscriptions SET paused = $3 WHERE tenant_id = $1 AND subscription_id = $2 \
                     RETURNING {SUBSCRIPTION_COLUMNS}"
                ))
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id)
                .bind::<Bool, _>(paused)
                .load::<SubscriptionRow>(conn)
                .await?;
                let row = rows.pop().ok_or_else(|| MessagingError::SubscriptionNotFound(id.to_string()))?;
                notify(conn).await?;
                Ok(row)
            })
            .await
            .map_err(|f| self.failure(conn, f))?;
        self.wake_local();
        row.into_subscription(tenant)
    }
}

/// Locks a topic's row for the rest of the transaction and reads it.
pub(super) async fn lock_topic(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    name: &str,
) -> Result<(Topic, i64), Failure> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Jsonb)]
        spec: serde_json::Value,
        #[diesel(sql_type = Timestamptz)]
        created_at: DateTime<Utc>,
        #[diesel(sql_type = BigInt)]
        rr_counter: i64,
    }
    let mut rows = diesel::sql_query(
        "SELECT spec, created_at, rr_counter FROM msg_topics WHERE tenant_id = $1 AND name = $2 FOR UPDATE",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<Text, _>(name)
    .load::<Locked>(conn)
    .await?;
    let row = rows.pop().ok_or_else(|| MessagingError::TopicNotFound(name.to_owned()))?;
    let topic = TopicRow { spec: row.spec, created_at: row.created_at }.into_topic(tenant)?;
    Ok((topic, row.rr_counter))
}

/// Tells every instance's listener that something may have become
/// leasable; delivered when (and only if) the transaction commits.
pub(super) async fn notify(conn: &mut AsyncPgConnection) -> Result<(), Failure> {
    diesel::sql_query("SELECT pg_notify($1, '')").bind::<Text, _>(CHANNEL).execute(conn).await?;
    Ok(())
}
