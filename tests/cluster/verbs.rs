//! Verbs sent to the instance that does not drive the run: they reach the
//! owner through the store (and a Redis wake-up where there is one) and are
//! answered as on one instance, never with a 503 for the run being elsewhere.

use std::time::Instant;

use super::*;

/// A verb on `server`; its status, reply and how long the answer took.
async fn verb(server: &Server, id: &str, name: &str) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, reply) = server.post(&format!("/api/v1/deployments/{id}/{name}"), &json!({})).await.expect(name);
    (status, reply, started.elapsed())
}

/// Waits until `server` reads the run with `status`.
async fn status_on(server: &Server, id: &str, status: &str) -> Value {
    eventually_ok(Duration::from_secs(30), &format!("run {id} is {status}"), async || {
        let run = run_on(server, id).await;
        if run["status"] == status {
            Ok(run)
        } else {
            Err(format!("{}", run["status"]))
        }
    })
    .await
}

/// Pause, a resume that does not apply, resume, promote and abort, all sent
/// to `b` for a run `a` drives, each answered within `bound`; then a
/// rollback sent to `b` of a run `a` finished.
async fn steer_from_the_other_instance(test: &str, extra: &[(&str, String)], bound: Duration) {
    let Some(db) = TestDb::migrated(test).await else { return };
    let logs = tempfile::tempdir().unwrap();
    let mut vars = vec![("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "30s".to_string())];
    vars.extend(extra.iter().cloned());
    let a = instance(&db, "a", logs.path(), &vars).await;
    let b = instance(&db, "b", logs.path(), &vars).await;
    let mut body = deployment("kmod-steered", "1.0.0", "Production");
    body["canarySteps"] = json!([50, 100]);
    let id = create(&a, &body).await;
    assert_eq!(run_on(&b, &id).await["ownerInstance"], "a");
    status_on(&b, &id, "Running").await;

    let (status, reply, took) = verb(&b, &id, "pause").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}\n{}", a.log_text());
    assert!(took < bound, "pause answered after {took:?}");
    assert_eq!(run_on(&a, &id).await["status"], "Paused", "the owner saved the pause before b answered");

    let (status, reply, took) = verb(&b, &id, "pause").await;
    assert_eq!((status, reply["currentStatus"].as_str()), (StatusCode::ACCEPTED, None), "{reply}");
    assert!(took < bound, "a repeated pause answered after {took:?}");
    let (status, reply, _) = verb(&b, &id, "promote").await;
    assert_eq!(status, StatusCode::CONFLICT, "promote of a paused run does not apply: {reply}");
    assert_eq!(reply["currentStatus"], "Paused", "{reply}");

    let (status, reply, took) = verb(&b, &id, "resume").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert!(took < bound, "resume answered after {took:?}");
    assert_eq!(run_on(&a, &id).await["status"], "Running");

    let (status, reply, took) = verb(&b, &id, "abort").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert!(took < bound, "abort answered after {took:?}");
    let run = a.finished(&id, Duration::from_secs(60)).await;
    assert_eq!((run["status"].as_str(), run["ownerInstance"].as_str()), (Some("Cancelled"), Some("a")), "{run:#}");
    let (status, reply, _) = verb(&b, &id, "pause").await;
    assert_eq!(status, StatusCode::CONFLICT, "a finished run: {reply}");

    // A run a finished, rolled back through b: b takes the run's lease and
    // drives the rollback.
    let done = create(&a, &deployment("kmod-steered", "2.0.0", "QA")).await;
    let run = a.finished(&done, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let (status, reply, _) = verb(&b, &done, "rollback").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = status_on(&a, &done, "RolledBack").await;
    assert_eq!(run["ownerInstance"], "b", "{run:#}");
    // Read on b: each instance's node actors hold the slots of the runs it drove.
    let versions = b.versions("QA", "kmod-steered").await;
    assert!(versions.iter().all(|v| v.as_deref() != Some("2.0.0")), "QA still runs 2.0.0: {versions:?}");
}

#[actix_web::test]
async fn verbs_sent_to_the_other_instance_reach_the_owner_by_its_poll() {
    // cluster.verb_poll_interval is 250ms by default.
    steer_from_the_other_instance(
        "cluster::verbs_sent_to_the_other_instance_reach_the_owner_by_its_poll",
        &[],
        Duration::from_secs(2),
    )
    .await;
}

#[actix_web::test]
async fn verbs_sent_to_the_other_instance_wake_the_owner_over_redis() {
    // A poll too slow to explain a quick answer: only the wake-up can.
    let redis = [
        ("HOTSWAP__REDIS__URL", "redis://127.0.0.1:6379".to_string()),
        ("HOTSWAP__CLUSTER__VERB_POLL_INTERVAL", "5s".to_string()),
    ];
    steer_from_the_other_instance(
        "cluster::verbs_sent_to_the_other_instance_wake_the_owner_over_redis",
        &redis,
        Duration::from_secs(2),
    )
    .await;
}
