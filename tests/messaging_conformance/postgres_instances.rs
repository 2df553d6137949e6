//! Two stores on one database stand for two HotSwap instances: a publish on
//! one wakes a long-poll on the other (LISTEN/NOTIFY), and consumers on both
//! leasing one subscription at once never receive the same delivery.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::messaging::{consume, NewMessage, NewTopic, SharedMessageStore};
use uuid::Uuid;

use crate::postgres_support::open;
use crate::support::TestDb;

/// How many connections of this database are LISTENing for the bus.
async fn listeners(db: &TestDb) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND query = 'LISTEN hotswap_messages'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    row.n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_instance_wakes_a_long_poll_on_another() {
    let Some(db) = TestDb::migrated("messaging_conformance::postgres_instances::wakes").await else { return };
    let (a, b): (SharedMessageStore, SharedMessageStore) = (Arc::new(open(&db).await), Arc::new(open(&db).await));
    crate::support::poll::eventually(Duration::from_secs(10), "both instances LISTEN", async || {
        listeners(&db).await == 2
    })
    .await;
    let tn = Uuid::new_v4();
    a.create_topic(tn, NewTopic::fan_out("t"), Utc::now()).await.unwrap();
    let s = a.create_subscription(tn, crate::sub_spec("t", 3), Utc::now()).await.unwrap().subscription_id;
    // A's publish wakes only A's own waiters directly: B hears of it
    // through PostgreSQL or not at all.
    let changes = b.changes();
    let heard = changes.notified();
    tokio::pin!(heard);
    heard.as_mut().enable();
    a.publish(tn, NewMessage::new("t", "m"), Utc::now()).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), heard).await;
    assert!(woke.is_ok(), "B was not notified of A's publish");
    // And B's long-poll, parked with nothing due, ends on the next publish.
    let started = Instant::now();
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { consume(&*b, tn, s, 10, Duration::from_secs(30)).await.unwrap() })
    };
    assert_eq!(waiting.await.unwrap().len(), 1, "the first message is there at once");
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { consume(&*b, tn, s, 10, Duration::from_secs(30)).await.unwrap() })
    };
    a.publish(tn, NewMessage::new("t", "m2"), Utc::now()).await.unwrap();
    let got = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10), "woken, not timed out ({:?})", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_on_two_instances_never_share_a_delivery() {
    let Some(db) = TestDb::migrated("messaging_conformance::postgres_instances::share").await else { return };
    let (a, b): (SharedMessageStore, SharedMessageStore) = (Arc::new(open(&db).await), Arc::new(open(&db).await));
    let tn = Uuid::new_v4();
    a.create_topic(tn, NewTopic::fan_out("t"), Utc::now()).await.unwrap();
    // Leases long enough that acks on a loaded machine still land in time.
    let mut spec = crate::sub_spec("t", 3);
    spec.ack_timeout = Duration::from_secs(120);
    let s = a.create_subscription(tn, spec, Utc::now()).await.unwrap().subscription_id;
    const N: usize = 200;
    for i in 0..N {
        a.publish(tn, NewMessage::new("t", &format!("m{i}")), Utc::now()).await.unwrap();
    }
    let mut workers = Vec::new();
    for store in [a.clone(), b.clone(), a.clone(), b.clone()] {
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store.lease(tn, s, 7, Utc::now()).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                for d in batch {
                    store.ack(tn, s, &d.message.message_id, Utc::now()).await.unwrap();
                    got.push(d.message.payload.clone());
                }
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a delivery was handed out twice");
    assert_eq!(all.len(), N, "every message was delivered");
}
