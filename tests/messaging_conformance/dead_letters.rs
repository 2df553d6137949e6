//! The conformance checks of retries and dead letters: backoff to the
//! dead-letter queue, its pages, and what a replay may and may not do.

use super::*;

pub(super) async fn retries_back_off_then_dead_letter(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = store.create_subscription(tn, sub_spec("t", 2), t0()).await.unwrap().subscription_id;
    let id = publish(&store, tn, "t", "m").await;
    let mut now = 0;
    let mut attempts = Vec::new();
    // Attempt 1, then retries after 100 ms and 200 ms; the third nack kills it.
    for wait in [0, 100, 200] {
        now += wait;
        assert!(wait == 0 || store.lease(tn, s, 1, after(now - 1)).await.unwrap().is_empty(), "backoff holds");
        let d = store.lease(tn, s, 1, after(now)).await.unwrap();
        attempts.push(d[0].delivery_attempts);
        store.nack(tn, s, &id, NackOptions { reason: Some("boom".into()), requeue: None }, after(now)).await.unwrap();
    }
    assert_eq!(attempts, [1, 2, 3]);
    assert!(store.lease(tn, s, 1, after(10_000)).await.unwrap().is_empty());
    let dlq = store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters;
    assert_eq!(dlq.len(), 1);
    let h = &dlq[0].message.headers;
    assert_eq!(h["X-Original-Topic"], "t");
    assert_eq!(h["X-DLQ-Reason"], "boom");
    assert_eq!(h["X-Delivery-Attempts"], "3");
    assert!(h.contains_key("X-DLQ-Timestamp"));
    assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::DeadLettered);
    let m = store.metrics(tn, "t", t0()).await.unwrap();
    assert_eq!((m.failed, m.dead_lettered), (3, 1));

    store.replay_dead_letter(tn, "t", &id, after(20_000)).await.unwrap();
    assert!(
        store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.is_empty(),
        "replay leaves no copy"
    );
    let d = store.lease(tn, s, 1, after(20_000)).await.unwrap();
    assert_eq!(d[0].delivery_attempts, 1, "attempts reset");
    store.nack(tn, s, &id, NackOptions { reason: None, requeue: Some(false) }, after(20_000)).await.unwrap();
    assert_eq!(
        store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.len(),
        1,
        "requeue=false dead-letters at once"
    );
    store.purge_dead_letter(tn, "t", &id).await.unwrap();
    assert!(store.dead_letters(tn, "t", LetterRange::first(100)).await.unwrap().letters.is_empty());
    assert!(matches!(store.purge_dead_letter(tn, "t", &id).await, Err(MessagingError::MessageNotFound(_))));
}

/// A topic's dead letters come oldest first, a page at a time, with how many
/// there are in all; the pages cover every letter once.
pub(super) async fn dead_letters_are_paged_oldest_first(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = store.create_subscription(tn, sub_spec("t", 0), t0()).await.unwrap().subscription_id;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = publish(&store, tn, "t", &format!("m{i}")).await;
        assert_eq!(store.lease(tn, s, 1, after(i)).await.unwrap().len(), 1);
        let refusal = NackOptions { reason: Some(format!("bad {i}")), requeue: Some(false) };
        store.nack(tn, s, &id, refusal, after(i)).await.unwrap();
        ids.push(id);
    }
    let page = |offset, limit| {
        let store = store.clone();
        async move { store.dead_letters(tn, "t", LetterRange { offset, limit }).await.unwrap() }
    };
    let first = page(0, 2).await;
    assert_eq!(first.total, 5);
    let letter_ids = |p: &hotswap_actors::messaging::DeadLetterPage| {
        p.letters.iter().map(|l| l.message.message_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(letter_ids(&first), ids[..2].to_vec(), "oldest first");
    assert_eq!(letter_ids(&page(2, 2).await), ids[2..4].to_vec());
    let last = page(4, 2).await;
    assert_eq!((letter_ids(&last), last.total), (ids[4..].to_vec(), 5));
    let past = page(10, 2).await;
    assert_eq!((past.letters.len(), past.total), (0, 5), "a page past the end is empty and still counts");
    assert!(matches!(
        store.dead_letters(tn, "other", LetterRange::first(10)).await,
        Err(MessagingError::TopicNotFound(_))
    ));
}

/// A dead letter whose subscription was deleted has nowhere to go back to:
/// the replay is refused naming that subscription, and the letter (the
/// message's only copy) stays to be purged or replayed once it can be.
pub(super) async fn a_replay_to_a_deleted_subscription_is_refused_and_keeps_the_letter(store: SharedMessageStore) {
    let tn = Uuid::new_v4();
    store.create_topic(tn, topic("t", None), t0()).await.unwrap();
    let s = store.create_subscription(tn, sub_spec("t", 0), t0()).await.unwrap().subscription_id;
    let other = sub(&store, tn, "t").await;
    let id = publish(&store, tn, "t", "m").await;
    assert_eq!(store.lease(tn, s, 1, t0()).await.unwrap().len(), 1);
    store.nack(tn, s, &id, NackOptions { reason: None, requeue: Some(false) }, t0()).await.unwrap();
    store.delete_subscription(tn, s).await.unwrap();

    match store.replay_dead_letter(tn, "t", &id, after(10)).await {
        Err(MessagingError::Conflict(why)) => assert!(why.contains(&s.to_string()), "names the subscription: {why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let letters = store.dead_letters(tn, "t", LetterRange::first(10)).await.unwrap().letters;
    assert_eq!(letters.len(), 1, "the letter is kept");
    assert_eq!(store.get_message(tn, &id).await.unwrap().status, MessageStatus::DeadLettered);
    assert_eq!(payloads(&store, tn, other, after(10)).await, ["m"], "the other subscription's copy is untouched");
    store.purge_dead_letter(tn, "t", &id).await.unwrap();
}
