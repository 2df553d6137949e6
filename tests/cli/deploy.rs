//! deploy --watch, --plan and the listings, as a deployer runs them.

use crate::harness::{Operator, Server, DEPLOYER};

#[actix_web::test]
async fn deploy_watch_to_qa_shows_each_batch_and_exits_0() {
    // A health-check delay long enough that the watch, reading the run after
    // each wave, sees it even on a loaded machine (the test profile has 50 ms).
    let server = Server::start_with(&[("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "400ms")]).await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let run = op.run(&["deploy", "kmod-cli", "1.0.0", "--to", "QA", "--watch"]).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", server.log());
    // Not a terminal: plain lines, no escape sequences.
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
    // QA has 5 nodes in batches of 2: three batches, each on a line of its own.
    for line in ["Development all nodes", "QA batch 1", "QA batch 2", "QA batch 3", "qa-node-05"] {
        assert!(run.stdout.contains(line), "missing {line:?} in:\n{}", run.stdout);
    }
    let batch = |n: &str| run.stdout.find(n).unwrap();
    assert!(batch("QA batch 1") < batch("QA batch 2") && batch("QA batch 2") < batch("QA batch 3"));
    assert!(run.stdout.contains("health-check delay after QA batch"), "the wait is shown:\n{}", run.stdout);
    assert!(run.stdout.contains("Deploy to QA: Succeeded"), "{}", run.stdout);
    assert!(run.stdout.contains("Succeeded in"), "{}", run.stdout);

    // The run as `status` and `runs` see it, in both output formats.
    let runs = op.run(&["runs", "--output", "json"]).await;
    assert_eq!(runs.code, 0, "{runs:?}");
    let list = runs.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = list[0]["executionId"].as_str().unwrap().to_string();
    assert_eq!(list[0]["status"], "Succeeded");
    let table = op.run(&["runs", "ls", "--module", "kmod-cli"]).await;
    assert!(table.stdout.starts_with("ID") && table.stdout.contains(&id), "{table:?}");
    let status = op.run(&["status", &id, "--output", "json"]).await;
    assert_eq!((status.code, status.json()["status"].as_str()), (0, Some("Succeeded")), "{status:?}");
    let events = op.run(&["events", &id, "-o", "json"]).await;
    let kinds: Vec<String> =
        events.json().as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    assert!(
        kinds.contains(&"WaveCompleted".to_string()) && kinds.last().unwrap() == "DeploymentCompleted",
        "{kinds:?}"
    );
    let nodes = op.run(&["nodes", "QA"]).await;
    assert!(nodes.stdout.contains("qa-node-05") && nodes.stdout.contains("kmod-cli 1.0.0"), "{nodes:?}");
    assert!(!nodes.stdout.contains(" of 5"), "one page holds them all: no footer:\n{}", nodes.stdout);
    // A page of fewer than all says which, and how to see the rest.
    let first = op.run(&["nodes", "QA", "--page-size", "2"]).await;
    assert_eq!(first.stdout.lines().filter(|l| l.starts_with("qa-node-")).count(), 2, "{first:?}");
    assert!(first.stdout.contains("nodes 1–2 of 5; --page 2 for the next"), "{first:?}");
    let last = op.run(&["nodes", "QA", "--page-size", "2", "--page", "3"]).await;
    assert!(last.stdout.contains("qa-node-05") && last.stdout.contains("nodes 5–5 of 5"), "{last:?}");
    let past = op.run(&["nodes", "QA", "--page-size", "2", "--page", "9"]).await;
    assert!(past.stdout.contains("page 9 is past the last: 5 nodes in all"), "{past:?}");
    let filtered = op.run(&["nodes", "QA", "--module", "kmod-cli", "--version", "1.0.0", "-o", "json"]).await;
    assert_eq!(filtered.json()["nodes"].as_array().unwrap().len(), 5, "{filtered:?}");
    let unhealthy = op.run(&["nodes", "QA", "--unhealthy", "-o", "json"]).await;
    assert_eq!(unhealthy.json()["nodes"], serde_json::json!([]), "{unhealthy:?}");
}

#[actix_web::test]
async fn a_failing_canary_exits_3() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let run = op
        .run(&[
            "deploy",
            "kmod-cli",
            "2.0.0",
            "--to",
            "QA",
            "--strategy",
            "Canary",
            "--canary-steps",
            "40,100",
            "--meta",
            "simulateErrorRate@QA=5",
            "--watch",
        ])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("QA step 1"), "{}", run.stdout);
    assert!(run.stdout.contains("Deploy to QA: RolledBack"), "{}", run.stdout);
    assert!(run.stdout.contains("canary analysis"), "the stage's message names why:\n{}", run.stdout);
    assert!(!run.stdout.contains("QA step 2"), "no wave after the regression:\n{}", run.stdout);
}

#[actix_web::test]
async fn a_blue_green_watch_shows_the_smoke_test_wait_and_a_failed_one_exits_3() {
    let server = Server::start_with(&[("HOTSWAP__PIPELINE__BLUEGREEN_SMOKE_TEST_TIMEOUT", "1s")]).await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let args = ["deploy", "kmod-cli", "2.0.0", "--to", "QA", "--strategy", "BlueGreen"];
    let run = op.run(&[&args[..], &["--meta", "simulateErrorRate@QA=25", "--watch"]].concat()).await;
    assert_eq!(run.code, 3, "{run:?}");
    let wait = run.stdout.find("waiting: smoke test").unwrap_or_else(|| panic!("no smoke test wait:\n{}", run.stdout));
    assert!(wait < run.stdout.find("Deploy to QA: RolledBack").unwrap(), "{}", run.stdout);
    // The run's history keeps it too.
    let runs = op.run(&["runs", "--output", "json"]).await.json();
    let id = runs[0]["executionId"].as_str().unwrap().to_string();
    let events = op.run(&["events", &id, "-o", "json"]).await.json();
    let started = events.as_array().unwrap().iter().find(|e| e["kind"] == "SmokeTestStarted");
    assert_eq!(started.map(|e| e["data"]["environment"].clone()), Some("QA".into()), "{events:#}");
}

#[actix_web::test]
async fn plan_shows_the_waves_and_changes_nothing() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let before = op.run(&["nodes", "QA", "-o", "json"]).await.json();
    let plan = op.run(&["deploy", "kmod-cli", "1.0.0", "--to", "Production", "--plan"]).await;
    assert_eq!(plan.code, 0, "{plan:?}");
    for text in [
        "Path: Development → QA → Staging → Production",
        "batch 1 of 3",
        "batch 3 of 3",
        "step 1 of 4 (10 %)",
        "production-node-01, production-node-02",
        "Signature",
        "Dependencies",
        "Dependents",
        "Estimated duration",
    ] {
        assert!(plan.stdout.contains(text), "missing {text:?}:\n{}", plan.stdout);
    }
    let json = op.run(&["plan", "kmod-cli", "1.0.0", "--to", "QA", "-o", "json"]).await;
    let body = json.json();
    assert_eq!(body["dryRun"], true);
    assert_eq!(body["stages"][1]["waves"].as_array().unwrap().len(), 3);
    assert!(body["approval"].is_null(), "QA has no approval gate: {body}");
    // Asking for one anyway is refused by the client (tests/cli/choices.rs), not planned without it.

    let runs = op.run(&["runs", "-o", "json"]).await.json();
    assert_eq!(runs.as_array().unwrap().len(), 0, "a plan creates no run");
    let after = op.run(&["nodes", "QA", "-o", "json"]).await.json();
    assert_eq!(
        before["nodes"].as_array().unwrap().iter().map(|n| &n["modules"]).collect::<Vec<_>>(),
        after["nodes"].as_array().unwrap().iter().map(|n| &n["modules"]).collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn a_downgrade_is_refused_with_the_flag_to_give_and_goes_through_with_it() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let first = op.run(&["deploy", "kmod-back", "2.0.0", "--to", "Development", "--watch"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    let refused = op.run(&["deploy", "kmod-back", "1.0.0", "--to", "Development"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("give --allow-downgrade"), "{refused:?}");
    let plan = op.run(&["deploy", "kmod-back", "1.0.0", "--to", "Development", "--plan"]).await;
    assert_eq!(plan.code, 1, "the plan says the run would not go ahead: {plan:?}");
    assert!(plan.stdout.contains("would refuse this run as a downgrade: give --allow-downgrade"), "{plan:?}");
    let allowed_plan = op.run(&["plan", "kmod-back", "1.0.0", "--to", "Development", "--allow-downgrade"]).await;
    assert_eq!(allowed_plan.code, 0, "{allowed_plan:?}");
    let allowed =
        op.run(&["deploy", "kmod-back", "1.0.0", "--to", "Development", "--allow-downgrade", "--watch"]).await;
    assert_eq!(allowed.code, 0, "{allowed:?}");
}

/// `hotswap events` reads every page of a run that has more events than the
/// server answers at once (1,000): 600 QA nodes in batches of one.
#[actix_web::test]
async fn events_lists_every_event_of_a_long_run() {
    let server = Server::start_with(&[
        ("HOTSWAP__SIMULATION__NODES__QA", "600"),
        ("HOTSWAP__PIPELINE__ROLLING_BATCH_SIZE", "1"),
        ("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "1ms"),
    ])
    .await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let started = std::time::Instant::now();
    let run = op.run(&["deploy", "kmod-long", "1.0.0", "--to", "QA", "-o", "json"]).await;
    let id = run.json()["executionId"].as_str().unwrap().to_string();
    let watched = op.run(&["status", &id, "--watch"]).await;
    assert_eq!(watched.code, 0, "{watched:?}\n{}", server.log());
    eprintln!("the run of 600 waves took {:?}", started.elapsed());
    let events = op.run(&["events", &id, "-o", "json"]).await;
    let events = events.json();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.len() > 1000, "{} events", kinds.len());
    // Each batch but the last is completed by a wave event (the last by
    // its stage's end), each once, whatever page it came on.
    assert_eq!(kinds.iter().filter(|k| **k == "WaveCompleted").count(), 599);
    assert_eq!(
        (kinds.first().copied(), kinds.last().copied()),
        (Some("DeploymentCreated"), Some("DeploymentCompleted"))
    );
}
