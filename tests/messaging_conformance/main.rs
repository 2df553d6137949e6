//! One behavioural suite for the message bus back-ends. Each check is an
//! async function taking a `SharedMessageStore`; `conformance!` runs it on
//! every back-end that exists (memory; PostgreSQL with HOTSWAP_TEST_DATABASE_URL). Time is the test's own clock
//! passed to each call, so leases and backoff need no sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    consume, DeliveryGuarantee, LetterRange, MemoryMessageStore, MessageStatus, MessagingError, NackOptions,
    NewMessage, NewSubscription, NewTopic, RetryPolicy, RoutingStrategy, SharedMessageStore, SubscriptionFilter,
    SubscriptionKind, TopicType, MAX_RETENTION,
};
use uuid::Uuid;

#[path = "../support/mod.rs"]
mod support;

/// Retries, dead letters, their pages and replays.
mod dead_letters;
/// Run events on `hotswap.deployments` across a crash (PostgreSQL).
mod deployment_outbox;
mod postgres_instances;
mod postgres_restart;
mod postgres_support;
#[path = "../durability/process.rs"]
#[allow(dead_code)] // Shared with the durability tests, which use more of it.
mod process;
/// Push deliveries resumed by a restarted binary.
mod push_restart;
use dead_letters::{
    a_replay_to_a_deleted_subscription_is_refused_and_keeps_the_letter, dead_letters_are_paged_oldest_first,
    retries_back_off_then_dead_letter,
};
mod restart_scenario;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000, 0).unwrap()
}

fn after(ms: i64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds(ms)
}

fn memory() -> SharedMessageStore {
    // Backoff 100 ms ×2 capped at 400 ms: the test profile's shape.
    let retry = RetryPolicy { initial: Duration::from_millis(100), multiplier: 2, cap: Duration::from_millis(400) };
    Arc::new(MemoryMessageStore::new(retry, Duration::from_secs(24 * 3600)))
}

fn topic(name: &str, strategy: Option<RoutingStrategy>) -> NewTopic {
    let mut t = NewTopic::fan_out(name);
    t.routing_strategy = strategy;
    t
}

fn sub_spec(topic: &str, max_retries: u32) -> NewSubscription {
    NewSubscription {
        topic_name: topic.into(),
        consumer_group: "g".into(),
        consumer_endpoint: "pull".into(),
        kind: SubscriptionKind::Pull,
        filter: None,
        max_retries,
        ack_timeout: Duration::from_secs(1),
    }
}

async fn sub(store: &SharedMessageStore, tenant: TenantId, topic: &str) -> Uuid {
    store.create_subscription(tenant, sub_spec(topic, 3), t0()).await.unwrap().subscription_id
}

async fn publish(store: &SharedMessageStore, tenant: TenantId, topic: &str, payload: &str) -> String {
    store.publish(tenant, NewMessage::new(topic, payload), t0()).await.unwrap().message.message_id.clone()
}

async fn payloads(store: &SharedMessageStore, tenant: TenantId, sub: Uuid, at: DateTime<Utc>) -> Vec<String> {
    store.lease(tenant, sub, 100, at).await.unwrap().into_iter().map(|d| d.message.payload.clone()).collect()
}

// ---------------------------------------------------------------- checks

async fn fan_out_reaches_every_subscription(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", Some(RoutingStrategy::FanOut)), t0()).await.unwrap();
    let (a, b) = (sub(&store, tn, "t").await, sub(&store, tn, "t").await);
    publish(&store, tn, "t", "m1").await;
    assert_eq!(payloads(&store, tn, a, t0()).await, ["m1"]);
    assert_eq!(payloads(&store, tn, b, t0()).await, ["m1"]);
}

async fn direct_goes_to_the_first_subscription(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", Some(RoutingStrategy::Direct)), t0()).await.unwrap();
    let (a, b) = (sub(&store, tn, "t").await, sub(&store, tn, "t").await);
    publish(&store, tn, "t", "m1").await;
    publish(&store, tn, "t", "m2").await;
    assert_eq!(payloads(&store, tn, a, t0()).await, ["m1", "m2"]);
    assert!(payloads(&store, tn, b, t0()).await.is_empty());
}

async fn direct_moves_on_when_the_first_subscription_is_deleted(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", Some(RoutingStrategy::Direct)), t0()).await.unwrap();
    let (a, b, c) = (sub(&store, tn, "t").await, sub(&store, tn, "t").await, sub(&store, tn, "t").await);
    store.delete_subscription(tn, a).await.unwrap();
    publish(&store, tn, "t", "m1").await;
    assert_eq!(payloads(&store, tn, b, t0()).await, ["m1"], "the oldest subscription left");
    assert!(payloads(&store, tn, c, t0()).await.is_empty());
    // Another topic's subscriptions, even with the same tenant, never take part.
    store.create_topic(tn, topic("other", Some(RoutingStrategy::Direct)), t0()).await.unwrap();
    let d = sub(&store, tn, "other").await;
    publish(&store, tn, "t", "m2").await;
    assert_eq!(payloads(&store, tn, b, t0()).await, ["m2"]);
    assert!(payloads(&store, tn, d, t0()).await.is_empty());
}

async fn a_message_is_acknowledged_once_every_subscription_acked(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", Some(RoutingStrategy::FanOut)), t0()).await.unwrap();
    let (a, b) = (sub(&store, tn, "t").await, sub(&store, tn, "t").await);
    let id = publish(&store, tn, "t", "m").await;
    assert_eq!(payloads(&store, tn, a, t0()).await, ["m"]);
    assert_eq!(payloads(&store, tn, b, t0()).await, ["m"]);
    store.ack(tn, a, &id, t0()).await.unwrap();
    store.ack(tn, a, &id, t0()).await.unwrap();
    assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::Pending, "b has not acked");
    store.ack(tn, b, &id, t0()).await.unwrap();
    assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::Acknowledged);
    store.ack(tn, b, &id, t0()).await.unwrap();
    assert!(payloads(&store, tn, a, after(5000)).await.is_empty(), "an acked copy is never offered again");
}

/// The last subscription's ack times the message's acknowledgement (not run
/// on JetStream, whose records do not learn of consumers' acks).
async fn the_last_ack_times_the_acknowledgement(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", Some(RoutingStrategy::FanOut)), t0()).await.unwrap();
    let (a, b) = (sub(&store, tn, "t").await, sub(&store, tn, "t").await);
    let id = publish(&store, tn, "t", "m").await;
    payloads(&store, tn, a, t0()).await;
    payloads(&store, tn, b, t0()).await;
    store.ack(tn, a, &id, after(1)).await.unwrap();
    assert_eq!(store.get_message(tn, &id).await.unwrap().acknowledged_at, None, "b has not acked");
    store.ack(tn, b, &id, after(2)).await.unwrap();
    assert_eq!(store.get_message(tn, &id).await.unwrap().acknowledged_at, Some(after(2)));
    let acked = store.acknowledge_message(tn, &id, after(3)).await.unwrap();
    assert_eq!(acked.acknowledged_at, Some(after(2)), "already acknowledged");
}

async fn load_balanced_is_fair_as_subscriptions_come_and_go(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    let mut q = topic("q", None);
    q.topic_type = TopicType::Queue;
    q.routing_strategy = None;
    store.create_topic(tn, q, t0()).await.unwrap();
    let a = sub(&store, tn, "q").await;
    let b = sub(&store, tn, "q").await;
    for i in 0..4 {
        publish(&store, tn, "q", &format!("m{i}")).await;
    }
    assert_eq!(payloads(&store, tn, a, t0()).await, ["m0", "m2"]);
    assert_eq!(payloads(&store, tn, b, t0()).await, ["m1", "m3"]);
    // A newcomer joins the rotation's end: no burst, no starvation.
    let c = sub(&store, tn, "q").await;
    for i in 4..10 {
        publish(&store, tn, "q", &format!("m{i}")).await;
    }
    let counts: Vec<usize> = [a, b, c].iter().map(|_| 0).collect();
    let mut got = counts;
    for (i, s) in [a, b, c].iter().enumerate() {
        got[i] = store.lease(tn, *s, 100, t0()).await.unwrap().len();
    }
    assert_eq!(got, [2, 2, 2]);
    store.delete_subscription(tn, b).await.unwrap();
    for i in 10..14 {
        publish(&store, tn, "q", &format!("m{i}")).await;
    }
    assert_eq!(store.lease(tn, a, 100, t0()).await.unwrap().len(), 2);
    assert_eq!(store.lease(tn, c, 100, t0()).await.unwrap().len(), 2);
}

async fn priority_delivers_higher_first_fifo_within(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("p", Some(RoutingStrategy::Priority)), t0()).await.unwrap();
    let s = sub(&store, tn, "p").await;
    for (payload, priority) in [("low1", 1), ("high1", 9), ("low2", 1), ("mid", 5), ("high2", 9)] {
        let mut m = NewMessage::new("p", payload);
        m.priority = priority;
        store.publish(tn, m, t0()).await.unwrap();
    }
    let first = store.lease(tn, s, 2, t0()).await.unwrap();
    let first: Vec<&str> = first.iter().map(|d| d.message.payload.as_str()).collect();
    assert_eq!(first, ["high1", "high2"]);
    assert_eq!(payloads(&store, tn, s, t0()).await, ["mid", "low1", "low2"]);
}

async fn content_based_routes_by_headers_and_json_path(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("c", Some(RoutingStrategy::ContentBased)), t0()).await.unwrap();
    let mut spec = sub_spec("c", 3);
    spec.filter = Some(SubscriptionFilter {
        header_matches: [("region".to_string(), "eu".to_string())].into(),
        payload_query: Some("$.kind == \"deploy\"".into()),
    });
    let eu = store.create_subscription(tn, spec, t0()).await.unwrap().subscription_id;
    let mut spec = sub_spec("c", 3);
    spec.filter =
        Some(SubscriptionFilter { header_matches: Default::default(), payload_query: Some("$.urgent".into()) });
    let urgent = store.create_subscription(tn, spec, t0()).await.unwrap().subscription_id;

    let mut m = NewMessage::new("c", r#"{"kind":"deploy"}"#);
    m.headers.insert("region".into(), "eu".into());
    assert_eq!(store.publish(tn, m, t0()).await.unwrap().routed_to, [eu]);
    let m = NewMessage::new("c", r#"{"kind":"deploy","urgent":true}"#);
    assert_eq!(store.publish(tn, m, t0()).await.unwrap().routed_to, [urgent]);
    let m = NewMessage::new("c", "not json");
    assert!(store.publish(tn, m, t0()).await.unwrap().routed_to.is_empty());
    let metrics = store.metrics(tn, "c", t0()).await.unwrap();
    assert_eq!((metrics.published, metrics.unrouted), (3, 1));
    // A malformed query is refused when the subscription is made.
    let mut spec = sub_spec("c", 3);
    spec.filter = Some(SubscriptionFilter { header_matches: Default::default(), payload_query: Some("$[".into()) });
    assert!(matches!(store.create_subscription(tn, spec, t0()).await, Err(MessagingError::Invalid(_))));
}

async fn partition_keys_keep_order_one_in_flight(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    let mut t = topic("o", None);
    t.ordered = true;
    store.create_topic(tn, t, t0()).await.unwrap();
    let s = sub(&store, tn, "o").await;
    for (payload, key) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
        let mut m = NewMessage::new("o", payload);
        m.partition_key = Some(key.into());
        store.publish(tn, m, t0()).await.unwrap();
    }
    let first = store.lease(tn, s, 10, t0()).await.unwrap();
    assert_eq!(first.iter().map(|d| d.message.payload.as_str()).collect::<Vec<_>>(), ["a1", "b1"]);
    assert!(payloads(&store, tn, s, t0()).await.is_empty(), "a2 waits for a1");
    store.ack(tn, s, &first[0].message.message_id, t0()).await.unwrap();
    assert_eq!(payloads(&store, tn, s, t0()).await, ["a2"]);
}

async fn expired_lease_is_redelivered_once_with_attempts_plus_one(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    let id = publish(&store, tn, "t", "m").await;
    let d = store.lease(tn, s, 10, t0()).await.unwrap();
    assert_eq!(d[0].delivery_attempts, 1);
    // Before the deadline nothing else is handed out.
    assert!(store.lease(tn, s, 10, after(999)).await.unwrap().is_empty());
    // Deadline at 1 s, then 100 ms backoff.
    assert!(store.lease(tn, s, 10, after(1050)).await.unwrap().is_empty());
    let again = store.lease(tn, s, 10, after(1100)).await.unwrap();
    assert_eq!(again.len(), 1, "exactly one redelivery, no duplicate");
    assert_eq!(again[0].delivery_attempts, 2);
    // The first lease is gone: acking it late is refused, the new one works.
    store.ack(tn, s, &id, after(1200)).await.unwrap();
    assert!(store.lease(tn, s, 10, after(5000)).await.unwrap().is_empty());
}

async fn at_most_once_never_retries(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    let mut t = topic("t", None);
    t.delivery_guarantee = DeliveryGuarantee::AtMostOnce;
    store.create_topic(tn, t, t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    let id = publish(&store, tn, "t", "m").await;
    assert_eq!(payloads(&store, tn, s, t0()).await, ["m"]);
    store.nack(tn, s, &id, NackOptions::default(), t0()).await.unwrap();
    assert!(payloads(&store, tn, s, after(60_000)).await.is_empty());
    assert!(store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.is_empty());
}

async fn exactly_once_deduplicates_publish_and_ack(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    let mut t = topic("t", None);
    t.delivery_guarantee = DeliveryGuarantee::ExactlyOnce;
    store.create_topic(tn, t, t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    let mut m = NewMessage::new("t", "m");
    m.idempotency_key = Some("k1".into());
    let first = store.publish(tn, m.clone(), t0()).await.unwrap();
    let second = store.publish(tn, m.clone(), after(1000)).await.unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(first.message.message_id, second.message.message_id);
    let d = store.lease(tn, s, 10, after(1000)).await.unwrap();
    assert_eq!(d.len(), 1, "delivered once");
    store.ack(tn, s, &first.message.message_id, after(1000)).await.unwrap();
    store.ack(tn, s, &first.message.message_id, after(1000)).await.unwrap();
    // After the window the key is fresh again.
    store.sweep(after(25 * 3600 * 1000), Duration::from_secs(24 * 3600)).await.unwrap();
    let third = store.publish(tn, m, after(25 * 3600 * 1000)).await.unwrap();
    assert!(!third.duplicate);
}

async fn pause_holds_deliveries_until_resume(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    store.set_paused(tn, s, true).await.unwrap();
    publish(&store, tn, "t", "m").await;
    assert!(payloads(&store, tn, s, t0()).await.is_empty());
    store.set_paused(tn, s, false).await.unwrap();
    assert_eq!(payloads(&store, tn, s, t0()).await, ["m"]);
}

async fn expired_messages_are_never_delivered(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    let mut m = NewMessage::new("t", "old");
    m.expires_at = Some(after(10));
    store.publish(tn, m, t0()).await.unwrap();
    assert!(payloads(&store, tn, s, after(10)).await.is_empty());
}

async fn tenants_are_isolated(store: SharedMessageStore) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    store.create_topic(a, topic("t", None), t0()).await.unwrap();
    let s = sub(&store, a, "t").await;
    let id = publish(&store, a, "t", "m").await;
    assert!(matches!(store.get_topic(b, "t").await, Err(MessagingError::TopicNotFound(_))));
    assert!(matches!(store.get_subscription(b, s).await, Err(MessagingError::SubscriptionNotFound(_))));
    assert!(matches!(store.get_message(b, &id).await, Err(MessagingError::MessageNotFound(_))));
    assert!(matches!(store.lease(b, s, 1, t0()).await, Err(MessagingError::SubscriptionNotFound(_))));
    assert!(store.list_topics(b).await.unwrap().is_empty());
    // The same topic name in another tenant is another topic.
    store.create_topic(b, topic("t", None), t0()).await.unwrap();
    assert!(store.list_messages(b, "t", 10).await.unwrap().is_empty());
}

/// What a starting process resumes: every tenant's push subscriptions, and
/// no pull subscription or deleted one.
async fn push_subscriptions_are_listed_across_tenants(store: SharedMessageStore) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let push = |topic: &str| NewSubscription {
        consumer_endpoint: "http://hooks.example/in".into(),
        kind: SubscriptionKind::Push,
        ..sub_spec(topic, 3)
    };
    let mut expected = Vec::new();
    for tenant in [a, b] {
        store.create_topic(tenant, topic("t", None), t0()).await.unwrap();
        sub(&store, tenant, "t").await;
        expected.push((tenant, store.create_subscription(tenant, push("t"), t0()).await.unwrap().subscription_id));
    }
    let gone = store.create_subscription(a, push("t"), t0()).await.unwrap().subscription_id;
    store.delete_subscription(a, gone).await.unwrap();
    let listed: Vec<(TenantId, Uuid)> = store
        .list_push_subscriptions()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.tenant_id == a || s.tenant_id == b)
        .map(|s| (s.tenant_id, s.subscription_id))
        .collect();
    assert_eq!(listed, expected);
}

async fn original_api_operations(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    let first = publish(&store, tn, "t", "m1").await;
    let second = publish(&store, tn, "t", "m2").await;
    let listed: Vec<String> =
        store.list_messages(tn, "t", 10).await.unwrap().into_iter().map(|m| m.message.message_id).collect();
    assert_eq!(listed, [second.clone(), first.clone()], "newest first");
    let pending = store.get_message(tn, &first).await.unwrap();
    assert_eq!((pending.status, pending.acknowledged_at), (MessageStatus::Pending, None));
    let acked = store.acknowledge_message(tn, &first, after(5)).await.unwrap();
    assert_eq!((acked.status, acked.acknowledged_at), (MessageStatus::Acknowledged, Some(after(5))));
    let again = store.acknowledge_message(tn, &first, after(9)).await.unwrap();
    assert_eq!(again.acknowledged_at, Some(after(5)), "the first acknowledgement's time stays");
    assert_eq!(store.get_message(tn, &first).await.unwrap().acknowledged_at, Some(after(5)));
    let mut correlated = NewMessage::new("t", "m3");
    correlated.correlation_id = Some("conversation-1".into());
    let third = store.publish(tn, correlated, t0()).await.unwrap().message.message_id.clone();
    let read = store.get_message(tn, &third).await.unwrap();
    assert_eq!(read.message.correlation_id.as_deref(), Some("conversation-1"));
    assert_eq!(store.list_messages(tn, "t", 10).await.unwrap().len(), 3, "no duplicates after an ack");
    assert_eq!(payloads(&store, tn, s, t0()).await, ["m2", "m3"], "an acknowledged message is not delivered");
    store.delete_message(tn, &second).await.unwrap();
    assert!(matches!(store.get_message(tn, &second).await, Err(MessagingError::MessageNotFound(_))));
}

async fn bad_input_is_refused(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let mut m = NewMessage::new("t", "x");
    m.priority = 10;
    assert!(matches!(store.publish(tn, m, t0()).await, Err(MessagingError::Invalid(_))));
    let big = "x".repeat(1024 * 1024 + 1);
    assert!(matches!(
        store.publish(tn, NewMessage::new("t", &big), t0()).await,
        Err(MessagingError::PayloadTooLarge(_))
    ));
    assert!(matches!(
        store.publish(tn, NewMessage::new("nope", "x"), t0()).await,
        Err(MessagingError::TopicNotFound(_))
    ));
    assert!(matches!(store.create_topic(tn, topic("t", None), t0()).await, Err(MessagingError::TopicExists(_))));
    let mut t = topic("u", None);
    t.partition_count = 17;
    assert!(matches!(store.create_topic(tn, t, t0()).await, Err(MessagingError::Invalid(_))));
    assert!("fanout".parse::<RoutingStrategy>().is_ok());
    assert!("roundrobin".parse::<RoutingStrategy>().is_err());
    sub(&store, tn, "t").await;
    assert!(matches!(store.delete_topic(tn, "t").await, Err(MessagingError::Conflict(_))));
}

/// The tester's panic ("DateTime + TimeDelta overflowed" in the JetStream
/// sweep): a retention or window added to a time near the end of chrono's
/// range saturates on every back-end; the message is kept, nothing panics.
async fn retention_near_the_end_of_time_never_overflows(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    let mut t = topic("t", None);
    t.retention = MAX_RETENTION;
    t.delivery_guarantee = DeliveryGuarantee::ExactlyOnce;
    store.create_topic(tn, t, t0()).await.unwrap();
    let s = sub(&store, tn, "t").await;
    let far = DateTime::<Utc>::MAX_UTC - TimeDelta::days(1);
    let mut m = NewMessage::new("t", "m");
    m.idempotency_key = Some("k".into());
    let id = store.publish(tn, m, far).await.unwrap().message.message_id.clone();
    assert_eq!(store.lease(tn, s, 1, far).await.unwrap().len(), 1);
    store.ack(tn, s, &id, far).await.unwrap();
    assert_eq!(store.sweep(far, Duration::MAX).await.unwrap(), 0, "retention not over: kept");
    assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::Acknowledged);
    // A retention longer than ten years is refused by every back-end.
    let mut long = topic("long", None);
    long.retention = MAX_RETENTION + Duration::from_secs(1);
    assert!(
        matches!(store.create_topic(tn, long, t0()).await, Err(MessagingError::Invalid(m)) if m.contains("3650 days"))
    );
}

/// PostgreSQL cannot store NUL; every back-end refuses it alike, naming the
/// field, and stores nothing.
async fn text_with_nul_is_refused_naming_the_field(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    let refused = |r: Result<_, MessagingError>, field: &str| match r {
        Err(MessagingError::Invalid(m)) => assert!(m.starts_with(field) && m.contains("NUL"), "{field}: {m}"),
        Err(e) => panic!("{field}: {e:?}"),
        Ok(_) => panic!("{field}: accepted"),
    };
    let mut t = topic("t", None);
    t.description = Some("a\0b".into());
    refused(store.create_topic(tn, t, t0()).await.map(|_| ()), "description");
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let mut group = sub_spec("t", 3);
    group.consumer_group = "g\0".into();
    refused(store.create_subscription(tn, group, t0()).await.map(|_| ()), "consumerGroup");
    let with = |change: fn(&mut NewMessage)| {
        let mut m = NewMessage::new("t", "ok");
        change(&mut m);
        m
    };
    for (m, field) in [
        (with(|m| m.payload = "{\"a\":\"\0\"}".into()), "payload"),
        (with(|m| m.message_id = Some("id\0".into())), "messageId"),
        (with(|m| m.partition_key = Some("\0".into())), "partitionKey"),
        (with(|m| _ = m.headers.insert("h".into(), "v\0".into())), "headers.h"),
        (with(|m| _ = m.headers.insert("h\0".into(), "v".into())), "headers"),
    ] {
        refused(store.publish(tn, m, t0()).await.map(|_| ()), field);
    }
    assert!(store.list_messages(tn, "t", 10).await.unwrap().is_empty(), "nothing stored");
    let mut filter = sub_spec("t", 3);
    filter.filter =
        Some(SubscriptionFilter { header_matches: [("k".into(), "\0".into())].into(), payload_query: None });
    refused(store.create_subscription(tn, filter, t0()).await.map(|_| ()), "filter.headerMatches");
    // A nack's reason is checked before the nack (it becomes the dead letter's X-DLQ-Reason).
    refused(NackOptions { reason: Some("bad\0".into()), requeue: Some(false) }.validate(), "reason");
}

async fn long_poll_wakes_on_publish_and_times_out(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), Utc::now()).await.unwrap();
    let s = store.create_subscription(tn, sub_spec("t", 3), Utc::now()).await.unwrap().subscription_id;
    let empty = consume(&*store, tn, s, 10, Duration::from_millis(50)).await.unwrap();
    assert!(empty.is_empty());
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let got = consume(&*store, tn, s, 10, Duration::from_secs(30)).await.unwrap();
            (got, started.elapsed())
        })
    };
    // On the test's single-threaded runtime one yield lets the consumer
    // run until it parks, so the publish below really lands mid-wait.
    tokio::task::yield_now().await;
    store.publish(tn, NewMessage::new("t", "m"), Utc::now()).await.unwrap();
    let (got, waited) = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < Duration::from_secs(10), "woken by the publish, not the timeout ({waited:?})");
}

/// Publishers and consumers on several threads at once (the memory back-end
/// locks per subscription and per message shard, PostgreSQL per row): every
/// message reaches each subscription exactly once and ends acknowledged, and
/// one ExactlyOnce key published by all of them together stores one message.
async fn concurrent_publishers_and_consumers_lose_and_repeat_nothing(store: SharedMessageStore) {
    const PUBLISHERS: usize = 2;
    const EACH: usize = 150;
    const DISTINCT: usize = PUBLISHERS * EACH + 1;
    let tn = Uuid::new_v4();
    let mut t = topic("t", None);
    t.delivery_guarantee = DeliveryGuarantee::ExactlyOnce;
    store.create_topic(tn, t, t0()).await.unwrap();
    let subs = [sub(&store, tn, "t").await, sub(&store, tn, "t").await];
    // Threads of their own, so that the calls really overlap whatever the
    // test's runtime; each drives its futures on this runtime's handle.
    let handle = tokio::runtime::Handle::current();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let (store, handle) = (store.clone(), handle.clone());
        publishers.push(tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                for i in 0..EACH {
                    store.publish(tn, NewMessage::new("t", &format!("{p}-{i}")), t0()).await.unwrap();
                    let mut shared = NewMessage::new("t", "shared");
                    shared.idempotency_key = Some("once".into());
                    store.publish(tn, shared, t0()).await.unwrap();
                }
            })
        }));
    }
    let mut consumers = Vec::new();
    for s in subs {
        let (store, handle) = (store.clone(), handle.clone());
        consumers.push(tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                let mut seen = Vec::new();
                while seen.len() < DISTINCT {
                    let got = consume(store.as_ref(), tn, s, 50, Duration::from_secs(10)).await.unwrap();
                    assert!(!got.is_empty(), "{} of {DISTINCT} messages arrived, then none for 10 s", seen.len());
                    for d in got {
                        store.ack(tn, s, &d.message.message_id, t0()).await.unwrap();
                        seen.push(d.message.payload.clone());
                    }
                }
                seen
            })
        }));
    }
    let mut expected: Vec<String> = (0..PUBLISHERS).flat_map(|p| (0..EACH).map(move |i| format!("{p}-{i}"))).collect();
    expected.push("shared".into());
    expected.sort();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for consumer in consumers {
        let mut seen = consumer.await.unwrap();
        seen.sort();
        assert_eq!(seen, expected, "each subscription receives every message once");
    }
    for s in subs {
        assert!(store.lease(tn, s, 10, t0()).await.unwrap().is_empty(), "nothing left or delivered twice");
    }
    let stored = store.list_messages(tn, "t", 1000).await.unwrap();
    assert_eq!(stored.len(), DISTINCT, "one stored message per distinct publish");
    assert!(stored.iter().all(|m| m.status == MessageStatus::Acknowledged));
    let m = store.metrics(tn, "t", t0()).await.unwrap();
    assert_eq!((m.published, m.delivered, m.acknowledged), (DISTINCT as u64, 2 * DISTINCT as u64, 2 * DISTINCT as u64));
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::memory()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    let name = concat!("messaging_conformance::postgres::", stringify!($check));
                    let Some((_db, store)) = super::postgres_support::store(name).await else { return };
                    super::$check(store).await;
                }
            )*
        }
    };
}

/// The NATS JetStream back-end (`HOTSWAP_TEST_NATS_URL`).
mod jetstream;
/// The real binary on JetStream, killed and restarted.
mod jetstream_restart;

conformance!(
    fan_out_reaches_every_subscription,
    direct_goes_to_the_first_subscription,
    direct_moves_on_when_the_first_subscription_is_deleted,
    a_message_is_acknowledged_once_every_subscription_acked,
    the_last_ack_times_the_acknowledgement,
    load_balanced_is_fair_as_subscriptions_come_and_go,
    priority_delivers_higher_first_fifo_within,
    content_based_routes_by_headers_and_json_path,
    partition_keys_keep_order_one_in_flight,
    expired_lease_is_redelivered_once_with_attempts_plus_one,
    retries_back_off_then_dead_letter,
    dead_letters_are_paged_oldest_first,
    a_replay_to_a_deleted_subscription_is_refused_and_keeps_the_letter,
    at_most_once_never_retries,
    exactly_once_deduplicates_publish_and_ack,
    pause_holds_deliveries_until_resume,
    expired_messages_are_never_delivered,
    tenants_are_isolated,
    push_subscriptions_are_listed_across_tenants,
    original_api_operations,
    bad_input_is_refused,
    long_poll_wakes_on_publish_and_times_out,
    concurrent_publishers_and_consumers_lose_and_repeat_nothing,
    retention_near_the_end_of_time_never_overflows,
    text_with_nul_is_refused_naming_the_field,
);

/// The default policy is the issue's: 2 s, ×2, capped at 32 s.
#[test]
fn default_backoff_doubles_to_its_cap() {
    let p = RetryPolicy::default();
    let secs: Vec<u64> = (1..=7).map(|a| p.backoff(a).as_secs()).collect();
    assert_eq!(secs, [2, 4, 8, 16, 32, 32, 32]);
    assert_eq!(p.backoff(u32::MAX).as_secs(), 32, "no overflow on absurd attempt counts");
}
