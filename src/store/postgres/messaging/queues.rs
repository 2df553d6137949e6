//! The original API's message operations and the dead-letter queue.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    DeadLetter, DeadLetterPage, LetterRange, Message, MessageStatus, MessagingError, StoredMessage,
};

use super::rows::{decode, CountRow, DeadLetterRow, IdRow, MessageRow, MESSAGE_COLUMNS};
use super::topics::notify;
use super::{Failure, PgMessageStore};

const MAX_LIST: usize = 1000;

impl PgMessageStore {
    pub(super) async fn get_message_row(
        &self,
        tenant: TenantId,
        message_id: &str,
    ) -> Result<StoredMessage, MessagingError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(format!(
            "SELECT {MESSAGE_COLUMNS} FROM msg_messages WHERE tenant_id = $1 AND message_id = $2"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(message_id)
        .load::<MessageRow>(&mut *conn)
        .await;
        match rows {
            Ok(mut rows) => match rows.pop() {
                Some(row) => row.into_stored(),
                None => Err(MessagingError::MessageNotFound(message_id.to_owned())),
            },
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    /// Newest first, at most `limit` (capped at 1000).
    pub(super) async fn list_message_rows(
        &self,
        tenant: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError> {
        let limit = i64::try_from(limit.min(MAX_LIST)).unwrap_or(0);
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(format!(
            "SELECT {MESSAGE_COLUMNS} FROM msg_messages WHERE tenant_id = $1 AND topic_name = $2 \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(topic)
        .bind::<BigInt, _>(limit)
        .load::<MessageRow>(&mut *conn)
        .await;
        match rows {
            Ok(rows) => rows.into_iter().map(MessageRow::into_stored).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    /// Acknowledges a message for every subscription it was routed to and
    /// takes it out of their queues (the original API).
    pub(super) async fn acknowledge_message_row(
        &self,
        tenant: TenantId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            // Deliveries before the message, the order acks lock them in.
            diesel::sql_query("UPDATE msg_deliveries SET state = 'acked', lease_deadline = NULL WHERE tenant_id = $1 AND message_id = $2")
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(message_id)
                .execute(conn)
                .await?;
            let mut rows = diesel::sql_query(
                "WITH before AS (SELECT status FROM msg_messages WHERE tenant_id = $1 AND message_id = $2 FOR UPDATE) \
                 UPDATE msg_messages m SET status = 'Acknowledged', acknowledged_at = COALESCE(m.acknowledged_at, $3) \
                 FROM before WHERE m.tenant_id = $1 AND m.message_id = $2 \
                 RETURNING m.message, before.status, m.routed_to, m.acknowledged_at",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(message_id)
            .bind::<Timestamptz, _>(now)
            .load::<MessageRow>(conn)
            .await?;
            let row = rows.pop().ok_or_else(|| MessagingError::MessageNotFound(message_id.to_owned()))?;
            let mut stored = row.into_stored()?;
            if stored.status != MessageStatus::Acknowledged {
                diesel::sql_query(
                    "UPDATE msg_topics SET acknowledged = acknowledged + 1 WHERE tenant_id = $1 AND name = $2",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(&stored.message.topic_name)
                .execute(conn)
                .await?;
            }
            stored.status = MessageStatus::Acknowledged;
            Ok(stored)
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    /// The message and its deliveries (by cascade).
    pub(super) async fn delete_message_row(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError> {
        let mut conn = self.conn().await?;
        let done = diesel::sql_query("DELETE FROM msg_messages WHERE tenant_id = $1 AND message_id = $2")
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(message_id)
            .execute(&mut *conn)
            .await;
        match done {
            Ok(0) => Err(MessagingError::MessageNotFound(message_id.to_owned())),
            Ok(_) => Ok(()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    pub(super) async fn dead_letter_rows(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        self.get_topic_row(tenant, topic).await?;
        let mut conn = self.conn().await?;
        let bound = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = diesel::sql_query(
            "SELECT message, subscription_id, reason, attempts, dead_lettered_at FROM msg_dead_letters \
             WHERE tenant_id = $1 AND topic_name = $2 ORDER BY seq OFFSET $3 LIMIT $4",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(topic)
        .bind::<BigInt, _>(bound(range.offset))
        .bind::<BigInt, _>(bound(range.limit))
        .load::<DeadLetterRow>(&mut *conn)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        let total =
            diesel::sql_query("SELECT count(*) AS n FROM msg_dead_letters WHERE tenant_id = $1 AND topic_name = $2")
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(topic)
                .get_result::<CountRow>(&mut *conn)
                .await;
        let total = match total {
            Ok(row) => usize::try_from(row.n).unwrap_or(0),
            Err(e) => return Err(self.db_error(&mut conn, e)),
        };
        let letters = rows
            .into_iter()
            .map(|r| {
                Ok(DeadLetter {
                    message: decode::<Message>(r.message, "dead letter")?,
                    subscription_id: r.subscription_id,
                    reason: r.reason,
                    delivery_attempts: u32::try_from(r.attempts).unwrap_or(0),
                    dead_lettered_at: r.dead_lettered_at,
                })
            })
            .collect::<Result<Vec<_>, MessagingError>>()?;
        Ok(DeadLetterPage { letters, total })
    }

    /// Back on the subscriptions it died on, attempts reset, and out of the
    /// dead-letter queue: no copy is left behind. Refused, the letter kept,
    /// when one of those subscriptions was deleted.
    pub(super) async fn replay_dead_letter_row(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.get_topic_row(tenant, topic).await?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let gone: Vec<IdRow> = diesel::sql_query(
                "SELECT d.subscription_id AS id FROM msg_dead_letters d \
                 WHERE d.tenant_id = $1 AND d.topic_name = $2 AND d.message_id = $3 AND NOT EXISTS \
                 (SELECT 1 FROM msg_subscriptions s WHERE s.tenant_id = d.tenant_id AND s.subscription_id = d.subscription_id) \
                 LIMIT 1",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(topic)
            .bind::<Text, _>(message_id)
            .load(conn)
            .await?;
            if let Some(gone) = gone.into_iter().next() {
                return Err(MessagingError::replay_target_gone(message_id, gone.id).into());
            }
            let subs: Vec<IdRow> = diesel::sql_query(
                "DELETE FROM msg_dead_letters WHERE tenant_id = $1 AND topic_name = $2 AND message_id = $3 \
                 RETURNING subscription_id AS id",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(topic)
            .bind::<Text, _>(message_id)
            .load(conn)
            .await?;
            let still_stored = diesel::sql_query(
                "UPDATE msg_messages SET status = 'Pending' WHERE tenant_id = $1 AND message_id = $2",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(message_id)
            .execute(conn)
            .await?;
            if subs.is_empty() || still_stored == 0 {
                return Err(MessagingError::MessageNotFound(message_id.to_owned()).into());
            }
            let ids: Vec<uuid::Uuid> = subs.into_iter().map(|r| r.id).collect();
            diesel::sql_query(
                "UPDATE msg_deliveries SET state = 'queued', attempts = 0, available_at = $3, lease_deadline = NULL \
                 WHERE tenant_id = $1 AND message_id = $2 AND subscription_id = ANY($4)",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(message_id)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<SqlUuid>, _>(&ids)
            .execute(conn)
            .await?;
            notify(conn).await
        })
        .await
        .map_err(|f| self.failure(conn, f))?;
        self.wake_local();
        Ok(())
    }

    pub(super) async fn purge_dead_letter_row(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
    ) -> Result<(), MessagingError> {
        self.get_topic_row(tenant, topic).await?;
        let mut conn = self.conn().await?;
        let done = diesel::sql_query(
            "DELETE FROM msg_dead_letters WHERE tenant_id = $1 AND topic_name = $2 AND message_id = $3",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(topic)
        .bind::<Text, _>(message_id)
        .execute(&mut *conn)
        .await;
        match done {
            Ok(0) => Err(MessagingError::MessageNotFound(message_id.to_owned())),
            Ok(_) => Ok(()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
