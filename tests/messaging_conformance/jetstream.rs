//! The suite on the NATS JetStream back-end, selected by
//! `HOTSWAP_TEST_NATS_URL` (CI sets it; unset, each test says why it skips).
//! Every test works under a prefix of its own and removes its streams and
//! bucket afterwards, passed or failed.
//!
//! On JetStream the lease is the server's AckWait and a retry's wait its
//! BackOff or Nak delay: those run on the server's clock, so the checks
//! that step the test clock through a deadline have real-time versions
//! here, polling for the outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::TryStreamExt;
use hotswap::messaging::jetstream::{JetStreamConfig, JetStreamMessageStore};
use hotswap_actors::messaging::{
    consume, LetterRange, MessageStatus, MessagingError, NackOptions, NewMessage, NewSubscription, RetryPolicy,
    SharedMessageStore,
};
use uuid::Uuid;

pub(crate) fn nats_url() -> Option<String> {
    match std::env::var("HOTSWAP_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: HOTSWAP_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222 with JetStream)");
            None
        }
    }
}

fn config(url: &str, prefix: &str) -> JetStreamConfig {
    JetStreamConfig {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        // The test profile's shape: 100 ms ×2 capped at 400 ms.
        retry: RetryPolicy { initial: Duration::from_millis(100), multiplier: 2, cap: Duration::from_millis(400) },
        idempotency_window: Duration::from_secs(24 * 3600),
        owner_lease: Duration::from_secs(5),
    }
}

async fn open(url: &str, prefix: &str) -> SharedMessageStore {
    Arc::new(JetStreamMessageStore::connect(config(url, prefix)).await.expect("connect to JetStream"))
}

/// Deletes every stream whose name starts with the prefix (the bucket's
/// stream is `KV_<prefix>_MESSAGING`).
pub(crate) async fn remove_everything(url: &str, prefix: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    for name in names {
        if name.starts_with(&format!("{prefix}_")) || name == format!("KV_{prefix}_MESSAGING") {
            js.delete_stream(&name).await.unwrap();
        }
    }
}

/// Runs a check against a fresh store under a new prefix, then cleans up
/// whether it passed or not (a failure is re-raised afterwards).
async fn with_store<F, Fut>(check: F)
where
    F: FnOnce(SharedMessageStore, String, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(url) = nats_url() else { return };
    let prefix = format!("T{}", &Uuid::new_v4().simple().to_string()[..12]);
    let store = open(&url, &prefix).await;
    let outcome = tokio::spawn(check(store, url.clone(), prefix.clone())).await;
    remove_everything(&url, &prefix).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! shared_checks {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                with_store(|store, _, _| super::$check(store)).await;
            }
        )*
    };
}

// Every shared check that does not step the clock through a lease deadline
// or a backoff.
shared_checks!(
    fan_out_reaches_every_subscription,
    direct_goes_to_the_first_subscription,
    direct_moves_on_when_the_first_subscription_is_deleted,
    a_message_is_acknowledged_once_every_subscription_acked,
    load_balanced_is_fair_as_subscriptions_come_and_go,
    priority_delivers_higher_first_fifo_within,
    content_based_routes_by_headers_and_json_path,
    partition_keys_keep_order_one_in_flight,
    at_most_once_never_retries,
    dead_letters_are_paged_oldest_first,
    a_replay_to_a_deleted_subscription_is_refused_and_keeps_the_letter,
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

const PATIENCE: Duration = Duration::from_secs(15);

async fn topic_and_sub(store: &SharedMessageStore, tenant: Uuid, max_retries: u32) -> Uuid {
    store.create_topic(tenant, super::topic("t", None), Utc::now()).await.unwrap();
    store.create_subscription(tenant, super::sub_spec("t", max_retries), Utc::now()).await.unwrap().subscription_id
}

/// Long-polls until a delivery comes, failing after `PATIENCE`.
async fn next_delivery(store: &SharedMessageStore, tenant: Uuid, sub: Uuid) -> hotswap_actors::messaging::Delivery {
    let got = consume(&**store, tenant, sub, 1, PATIENCE).await.unwrap();
    got.into_iter().next().expect("a delivery within the patience")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_redelivered_once_after_ack_wait_and_backoff() {
    with_store(|store, _, _| async move {
        let tn = Uuid::new_v4();
        let s = topic_and_sub(&store, tn, 3).await;
        let id = super::publish(&store, tn, "t", "m").await;
        // Taken before the lease is asked for, so the server's clock for
        // the lease cannot have started earlier.
        let leased_at = Instant::now();
        let first = next_delivery(&store, tn, s).await;
        assert_eq!(first.delivery_attempts, 1);
        assert!(store.lease(tn, s, 10, Utc::now()).await.unwrap().is_empty(), "nothing else while leased");
        let again = next_delivery(&store, tn, s).await;
        let waited = leased_at.elapsed();
        assert_eq!(again.delivery_attempts, 2);
        // ackTimeout 1 s, then the first backoff (100 ms).
        assert!(waited >= Duration::from_millis(1100), "redelivered after {waited:?}");
        assert!(store.lease(tn, s, 10, Utc::now()).await.unwrap().is_empty(), "exactly one redelivery");
        store.ack(tn, s, &id, Utc::now()).await.unwrap();
        store.ack(tn, s, &id, Utc::now()).await.unwrap();
        assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::Acknowledged);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacks_back_off_then_dead_letter_replay_and_purge() {
    with_store(|store, _, _| async move {
        let tn = Uuid::new_v4();
        let s = topic_and_sub(&store, tn, 2).await;
        let id = super::publish(&store, tn, "t", "m").await;
        let mut attempts = Vec::new();
        let mut gaps = Vec::new();
        let mut nacked_at: Option<Instant> = None;
        for _ in 0..3 {
            let d = next_delivery(&store, tn, s).await;
            if let Some(at) = nacked_at {
                gaps.push(at.elapsed());
            }
            attempts.push(d.delivery_attempts);
            let boom = NackOptions { reason: Some("boom".into()), requeue: None };
            // Before the nack is sent: the server's delay cannot start earlier.
            nacked_at = Some(Instant::now());
            store.nack(tn, s, &id, boom, Utc::now()).await.unwrap();
        }
        assert_eq!(attempts, [1, 2, 3]);
        assert!(gaps[0] >= Duration::from_millis(100) && gaps[1] >= Duration::from_millis(200), "backoff {gaps:?}");
        let dlq = store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters;
        assert_eq!(dlq.len(), 1);
        let h = &dlq[0].message.headers;
        assert_eq!(h["X-Original-Topic"], "t");
        assert_eq!(h["X-DLQ-Reason"], "boom");
        assert_eq!(h["X-Delivery-Attempts"], "3");
        assert!(h.contains_key("X-DLQ-Timestamp"));
        assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::DeadLettered);
        let m = store.metrics(tn, "t", Utc::now()).await.unwrap();
        assert_eq!((m.failed, m.dead_lettered), (3, 1));
        assert!(consume(&*store, tn, s, 1, Duration::from_millis(700)).await.unwrap().is_empty(), "no 4th delivery");

        store.replay_dead_letter(tn, "t", &id, Utc::now()).await.unwrap();
        assert!(
            store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.is_empty(),
            "replay leaves no copy"
        );
        let d = next_delivery(&store, tn, s).await;
        assert_eq!(d.delivery_attempts, 1, "attempts reset");
        store.nack(tn, s, &id, NackOptions { reason: None, requeue: Some(false) }, Utc::now()).await.unwrap();
        assert_eq!(
            store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.len(),
            1,
            "requeue=false dead-letters at once"
        );
        store.purge_dead_letter(tn, "t", &id).await.unwrap();
        assert!(store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.is_empty());
        assert!(matches!(store.purge_dead_letter(tn, "t", &id).await, Err(MessagingError::MessageNotFound(_))));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_attempt_that_expires_is_dead_lettered() {
    with_store(|store, _, _| async move {
        let tn = Uuid::new_v4();
        let s = topic_and_sub(&store, tn, 0).await;
        super::publish(&store, tn, "t", "m").await;
        let d = next_delivery(&store, tn, s).await;
        assert_eq!(d.delivery_attempts, 1);
        let started = Instant::now();
        // The lease ends at its deadline; the next look at the subscription notices.
        loop {
            store.lease(tn, s, 1, Utc::now()).await.unwrap();
            let dlq = store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters;
            if let Some(letter) = dlq.first() {
                assert_eq!(letter.message.headers["X-DLQ-Reason"], "ack deadline passed");
                assert!(started.elapsed() < PATIENCE);
                break;
            }
            assert!(started.elapsed() < PATIENCE, "never dead-lettered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// HotSwap stops (its store and connection go) and starts again on the same
/// server: every acknowledged publish is still there, the acknowledged
/// delivery is not offered again, and the unacknowledged one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_no_acknowledged_publish_and_redelivers_unacked_ones() {
    with_store(|store, url, prefix| async move {
        let tn = Uuid::new_v4();
        let s = topic_and_sub(&store, tn, 3).await;
        let ids: Vec<String> = {
            let mut ids = Vec::new();
            for p in ["m1", "m2", "m3"] {
                ids.push(
                    store.publish(tn, NewMessage::new("t", p), Utc::now()).await.unwrap().message.message_id.clone(),
                );
            }
            ids
        };
        let leased = store.lease(tn, s, 2, Utc::now()).await.unwrap();
        assert_eq!(leased.len(), 2);
        store.ack(tn, s, &ids[0], Utc::now()).await.unwrap();
        drop(store);

        let store = open(&url, &prefix).await;
        assert_eq!(store.list_subscriptions(tn, Some("t")).await.unwrap().len(), 1, "the subscription survives");
        for id in &ids {
            store.get_message(tn, id).await.unwrap();
        }
        assert_eq!(store.get_message(tn, &ids[0]).await.unwrap().status, MessageStatus::Acknowledged);
        let mut seen = Vec::new();
        let started = Instant::now();
        while seen.len() < 2 && started.elapsed() < PATIENCE {
            for d in consume(&*store, tn, s, 10, Duration::from_secs(3)).await.unwrap() {
                seen.push((d.message.payload.clone(), d.delivery_attempts));
                store.ack(tn, s, &d.message.message_id, Utc::now()).await.unwrap();
            }
        }
        seen.sort();
        assert_eq!(seen, [("m2".to_string(), 2), ("m3".to_string(), 1)], "m1 was acked; m2 comes again");
        assert!(consume(&*store, tn, s, 10, Duration::from_millis(1500)).await.unwrap().is_empty());
    })
    .await;
}

/// A page deep in a long dead-letter queue: the letters are read in batches
/// up to the page's end (more than one batch here), oldest first, and the
/// total counts them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_deep_in_many_dead_letters() {
    with_store(|store, _, _| async move {
        let tn = Uuid::new_v4();
        // Leases long enough for 600 nacks one by one on a busy machine (the
        // shared one second ran out before the last of them in a CI run).
        store.create_topic(tn, super::topic("t", None), Utc::now()).await.unwrap();
        let spec = NewSubscription { ack_timeout: Duration::from_secs(120), ..super::sub_spec("t", 0) };
        let s = store.create_subscription(tn, spec, Utc::now()).await.unwrap().subscription_id;
        let mut ids = Vec::new();
        for i in 0..600 {
            ids.push(super::publish(&store, tn, "t", &format!("m{i}")).await);
        }
        let mut leased = Vec::new();
        while leased.len() < ids.len() {
            let got = consume(&*store, tn, s, 600, PATIENCE).await.unwrap();
            assert!(!got.is_empty(), "every message is delivered");
            leased.extend(got);
        }
        // Dead-lettered in the order published.
        for id in &ids {
            let refusal = NackOptions { reason: Some("bad".into()), requeue: Some(false) };
            store.nack(tn, s, id, refusal, Utc::now()).await.unwrap();
        }
        let started = Instant::now();
        let page = store.dead_letters(tn, "t", LetterRange { offset: 550, limit: 40 }).await.unwrap();
        eprintln!("a page at offset 550 of 600 letters read in {:?}", started.elapsed());
        let listed: Vec<String> = page.letters.iter().map(|l| l.message.message_id.clone()).collect();
        assert_eq!((listed, page.total), (ids[550..590].to_vec(), 600));
        let last = store.dead_letters(tn, "t", LetterRange { offset: 590, limit: 40 }).await.unwrap();
        assert_eq!(last.letters.len(), 10);

        // A replayed letter that dies again is one letter, now the newest.
        store.replay_dead_letter(tn, "t", &ids[0], Utc::now()).await.unwrap();
        let again = next_delivery(&store, tn, s).await;
        assert_eq!(again.message.message_id, ids[0]);
        let refusal = NackOptions { reason: Some("still bad".into()), requeue: Some(false) };
        store.nack(tn, s, &ids[0], refusal, Utc::now()).await.unwrap();
        let tail = store.dead_letters(tn, "t", LetterRange { offset: 595, limit: 10 }).await.unwrap();
        let listed: Vec<&str> = tail.letters.iter().map(|l| l.message.message_id.as_str()).collect();
        assert_eq!(tail.total, 600);
        assert_eq!(listed.last().copied(), Some(ids[0].as_str()), "{listed:?}");
    })
    .await;
}
