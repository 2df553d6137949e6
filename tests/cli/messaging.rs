//! The message bus from the terminal: a Deployer makes a topic and a pull
//! subscription, publishes (from an argument and from standard input),
//! consumes and acknowledges, reads the topic's counters, and replays a
//! dead letter; deleting is an Admin's.

use std::time::Duration;

use crate::harness::{Operator, Server, ADMIN, DEPLOYER};
use crate::support::poll::eventually;

#[actix_web::test]
async fn a_deployer_publishes_consumes_and_replays_a_dead_letter() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;

    let made = op.run(&["topics", "create", "orders", "--type", "Queue", "--retention", "12h"]).await;
    assert_eq!(made.code, 0, "{made:?}");
    assert_eq!(made.stdout.trim(), "created topic orders (Queue, AtLeastOnce, routed LoadBalanced, kept 12h)");
    let listed = op.run(&["topics"]).await;
    assert!(listed.stdout.lines().any(|l| l.starts_with("orders") && l.contains("12h")), "{listed:?}");

    let subscribed = op.run(&["subscriptions", "create", "orders", "--group", "billing", "-o", "json"]).await.json();
    let id = subscribed["subscriptionId"].as_str().unwrap().to_string();
    let short = &id[..8];

    let first = op.run(&["publish", "orders", r#"{"order":1}"#, "--header", "region=eu", "--key", "c-7"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains("routed to 1 subscription"), "{first:?}");
    // Standard input, without the line ending `echo` adds.
    let second = op.run_with_input(&["publish", "orders", "-o", "json"], "{\"order\":2}\n").await.json();
    assert_eq!(second["payload"], r#"{"order":2}"#);

    // Consumed without --ack: printed, and said to come back.
    let pulled = op.run(&["consume", "orders", "-s", short]).await;
    assert_eq!(pulled.code, 0, "{pulled:?}");
    assert!(pulled.stdout.contains(r#"{"order":1}"#) && pulled.stdout.contains(r#"{"order":2}"#), "{pulled:?}");
    assert!(pulled.stdout.contains("not acknowledged"), "{pulled:?}");
    // Leased until the ack timeout: nothing waits now.
    let none = op.run(&["consume", "orders", "-s", short]).await;
    assert!(none.stdout.starts_with("no message waits"), "{none:?}");

    // What is taken with --ack is acknowledged: the counters say so.
    op.run(&["publish", "orders", r#"{"order":3}"#]).await;
    let acked = op.run(&["consume", "orders", "-s", &id, "--wait", "1s", "--ack"]).await;
    assert!(acked.stdout.contains(r#"{"order":3}"#) && acked.stdout.contains("acknowledged 1"), "{acked:?}");
    let shown = op.run(&["topics", "show", "orders", "-o", "json"]).await.json();
    assert_eq!((&shown["metrics"]["published"], &shown["metrics"]["acknowledged"]), (&3.into(), &1.into()), "{shown}");
    let shown = op.run(&["topics", "show", "orders"]).await;
    assert!(shown.stdout.contains("3 published, 3 delivered, 1 acknowledged"), "{shown:?}");
    assert!(shown.stdout.lines().any(|l| l.starts_with(&id) && l.trim_end().ends_with('2')), "{shown:?}");

    // A message taken and never acknowledged runs out of retries after its
    // ack timeout and becomes a dead letter, which a Deployer replays.
    op.run(&["topics", "create", "alerts"]).await;
    let quick = op
        .run(&["subscriptions", "create", "alerts", "--group", "pager", "--max-retries", "0", "--ack-timeout", "1s"])
        .await;
    assert_eq!(quick.code, 0, "{quick:?}");
    let quick_id = quick.stdout.rsplit("id ").next().unwrap().trim().to_string();
    op.run(&["publish", "alerts", "disk full"]).await;
    eventually(Duration::from_secs(20), "a dead letter on alerts", async || {
        op.run(&["consume", "alerts", "-s", &quick_id]).await;
        let dlq = op.run(&["topics", "dlq", "alerts", "-o", "json"]).await.json();
        !dlq.as_array().unwrap().is_empty()
    })
    .await;
    let dlq = op.run(&["topics", "dlq", "alerts", "-o", "json"]).await.json();
    let dead = dlq[0]["messageId"].as_str().unwrap().to_string();
    let table = op.run(&["topics", "dlq", "alerts"]).await;
    assert!(table.stdout.contains(&dead), "{table:?}");
    let replayed = op.run(&["topics", "replay", "alerts", &dead]).await;
    assert_eq!(replayed.code, 0, "{replayed:?}");
    let dlq = op.run(&["topics", "dlq", "alerts", "-o", "json"]).await.json();
    assert_eq!(dlq, serde_json::json!([]), "replayed");
    let again = op.run(&["consume", "alerts", "-s", &quick_id, "--ack"]).await;
    assert!(again.stdout.contains("disk full") && again.stdout.contains("acknowledged 1"), "{again:?}");

    // Pausing and resuming by the id's start; deleting is an Admin's.
    assert_eq!(op.run(&["subscriptions", "pause", short]).await.code, 0);
    let paused = op.run(&["subscriptions", "--topic", "orders"]).await;
    assert!(paused.stdout.lines().any(|l| l.starts_with(&id) && l.contains("paused")), "{paused:?}");
    assert_eq!(op.run(&["subscriptions", "resume", short]).await.code, 0);
    let refused = op.run(&["subscriptions", "delete", short]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("Admin"), "{refused:?}");
    let unknown = op.run(&["subscriptions", "pause", "zzzz"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no subscription has the id 'zzzz'"), "{unknown:?}");

    let admin = Operator::logged_in(&server, ADMIN).await;
    let in_use = admin.run(&["topics", "delete", "orders"]).await;
    assert_eq!(in_use.code, 2, "a topic with subscriptions stays: {in_use:?}");
    for sub in [&id, &quick_id] {
        let deleted = admin.run(&["subscriptions", "delete", sub]).await;
        assert_eq!(deleted.code, 0, "{deleted:?}");
    }
    for topic in ["orders", "alerts"] {
        let deleted = admin.run(&["topics", "delete", topic]).await;
        assert_eq!(deleted.code, 0, "{deleted:?}");
    }
    assert_eq!(admin.run(&["topics", "-o", "json"]).await.json(), serde_json::json!([]));
}

/// Messages taken without --ack are settled afterwards by id: `ack` keeps
/// them from coming back, `nack` sends one back for another attempt, and
/// `nack --dead-letter` moves one to the dead letters with the reason given.
#[actix_web::test]
async fn messages_taken_without_ack_are_acknowledged_or_refused_by_id() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    assert_eq!(op.run(&["topics", "create", "jobs", "--type", "Queue"]).await.code, 0);
    let subscribed = op.run(&["subscriptions", "create", "jobs", "--group", "workers", "-o", "json"]).await.json();
    let id = subscribed["subscriptionId"].as_str().unwrap().to_string();
    for n in 1..=3 {
        assert_eq!(op.run(&["publish", "jobs", &format!(r#"{{"job":{n}}}"#)]).await.code, 0);
    }
    let taken = op.run(&["consume", "jobs", "-s", &id, "-o", "json"]).await.json();
    let ids: Vec<String> =
        taken["messages"].as_array().unwrap().iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 3, "{taken}");

    let acked = op.run(&["ack", &ids[0], "-s", &id[..8]]).await;
    assert_eq!(acked.code, 0, "{acked:?}");
    assert_eq!(acked.stdout.trim(), format!("acknowledged 1 message for subscription {id}"));
    let refused = op.run(&["nack", &ids[1], "-s", &id]).await;
    assert_eq!(refused.code, 0, "{refused:?}");
    let dead = op.run(&["nack", &ids[2], "-s", &id, "--dead-letter", "--reason", "malformed job", "-o", "json"]).await;
    assert_eq!(dead.code, 0, "{dead:?}");
    assert_eq!(dead.json(), serde_json::json!({ "dead-lettered": [ids[2]] }));

    let dlq = op.run(&["topics", "dlq", "jobs", "-o", "json"]).await.json();
    let letters = dlq.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{dlq}");
    assert_eq!(letters[0]["messageId"], ids[2].as_str(), "{dlq}");
    assert!(letters[0]["reason"].as_str().unwrap().contains("malformed job"), "{dlq}");
    let past = op.run(&["topics", "dlq", "jobs", "--page-size", "1", "--page", "2"]).await;
    assert!(past.stdout.contains("page 2 is past the last: 1 dead letter in all"), "{past:?}");
    assert_eq!(op.run(&["topics", "dlq", "jobs", "--page-size", "5000"]).await.code, 2, "1-1000 per page");
    // The refused one comes back for a second attempt; the acknowledged one never does.
    let mut seen = Vec::new();
    eventually(Duration::from_secs(20), "the refused message delivered again", async || {
        let again = op.run(&["consume", "jobs", "-s", &id, "--ack", "-o", "json"]).await.json();
        seen.extend(
            again["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["messageId"].as_str().unwrap().to_string(), m["deliveryAttempts"].as_u64().unwrap())),
        );
        !seen.is_empty()
    })
    .await;
    assert_eq!(seen, vec![(ids[1].clone(), 2)], "only the refused message, on its second attempt");

    // A lease that is not there any more is the server's answer, naming the message.
    let late = op.run(&["ack", &ids[1], "no-such-message", "-s", &id]).await;
    assert_ne!(late.code, 0, "{late:?}");
    assert!(late.stderr.contains("1 acknowledged, then") && late.stderr.contains("no-such-message"), "{late:?}");
    assert_eq!(op.run(&["nack", "-s", &id]).await.code, 2, "a message id is required");
}
