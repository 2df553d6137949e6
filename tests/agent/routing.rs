//! Two instances on one PostgreSQL database and one Redis: an agent whose
//! session instance `b` holds gets the node calls of a run instance `a`
//! drives (over Redis); `b` is killed, the agent reconnects to `a`, and the
//! next run works.

use std::time::Duration;

use serde_json::Value;

use crate::agents::{enrolment_token, logging_hooks, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment;
use crate::support::TestDb;

const M: &str = "kmod-routed";

async fn instance(db: &TestDb, name: &str, root: &std::path::Path, prefix: &str) -> Server {
    instance_beating(db, name, root, prefix, ("1s", "4s")).await
}

/// An instance whose steps wait for a host far longer than a routed call
/// may take (`agent.command_timeout`, 10 s in the test profile, plus Redis's
/// legs): a step fails only if the call does.
async fn patient_instance(db: &TestDb, name: &str, root: &std::path::Path, prefix: &str) -> Server {
    let vars = instance_vars(db, name, root, prefix, ("1s", "4s"), "120s");
    Server::start(free_port(), &vars, root.join(format!("{name}.log"))).await
}

/// An instance whose agents send a heartbeat every `interval` and are lost after `timeout`.
async fn instance_beating(
    db: &TestDb,
    name: &str,
    root: &std::path::Path,
    prefix: &str,
    beats: (&str, &str),
) -> Server {
    let vars = instance_vars(db, name, root, prefix, beats, "20s");
    Server::start(free_port(), &vars, root.join(format!("{name}.log"))).await
}

fn instance_vars(
    db: &TestDb,
    name: &str,
    root: &std::path::Path,
    prefix: &str,
    (interval, timeout): (&str, &str),
    node_request_timeout: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__CLUSTER__INSTANCE_ID", name.to_string()),
        ("HOTSWAP__CLUSTER__LEASE_TTL", "3s".to_string()),
        ("HOTSWAP__REDIS__URL", "redis://127.0.0.1:6379".to_string()),
        ("HOTSWAP__REDIS__KEY_PREFIX", prefix.to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", node_request_timeout.to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_INTERVAL", interval.to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_TIMEOUT", timeout.to_string()),
        // One artifact directory for both, as a shared volume would be.
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ]
}

/// Runs `version` to QA on `server`; the finished run.
async fn run(server: &Server, version: &str) -> Value {
    let (status, run) = server.post("/api/v1/deployments", &deployment(M, version, "QA")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    server.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await
}

/// `hostname` as `server` lists it among the agents.
async fn listed(server: &Server, hostname: &str) -> Result<Value, String> {
    let (_, agents) = server.get("/api/v1/agents").await?;
    let agent = agents.as_array().and_then(|a| a.iter().find(|a| a["hostname"] == hostname).cloned());
    agent.ok_or_else(|| format!("{hostname} is not listed: {agents}"))
}

/// Whether `server` says that instance `holder` holds the session of `hostname`.
async fn held_by(server: &Server, hostname: &str, holder: &str) -> Result<(), String> {
    let agent = listed(server, hostname).await?;
    match (&agent["connected"], &agent["instance"]) {
        (Value::Bool(true), Value::String(instance)) if instance == holder => Ok(()),
        _ => Err(format!("{agent}")),
    }
}

/// The version of `M` that `server`'s cluster view shows on `hostname`.
async fn version_in_view(server: &Server, hostname: &str) -> Result<Value, String> {
    let (_, cluster) = server.get("/api/v1/clusters/QA").await?;
    let node = cluster["nodes"].as_array().and_then(|n| n.iter().find(|n| n["hostname"] == hostname).cloned());
    node.map(|n| n["modules"][M].clone()).ok_or_else(|| format!("{hostname} is not in the view: {cluster}"))
}

#[actix_web::test]
async fn a_run_on_one_instance_reaches_an_agent_connected_to_another_and_follows_it_when_it_moves() {
    let Some(db) = TestDb::migrated("agent::routing_across_instances").await else { return };
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = instance(&db, "a", root.path(), &prefix).await;
    let mut b = instance(&db, "b", root.path(), &prefix).await;
    let key = trusted_key(&a).await;
    let token = enrolment_token(&a, "QA").await;
    // b first; a when b does not answer.
    let servers = format!("{},{}", b.base, a.base);
    let agent = Agent::start_via(&servers, &[], &token, "qa-routed", root.path());
    eventually_ok(Duration::from_secs(60), "b holds the agent's session", async || held_by(&b, "qa-routed", "b").await)
        .await;
    // a learns of the host from b over Redis and makes it a node of its own
    // cluster; it lists the agent as connected, to b.
    wait_joined(&a, "QA", "qa-routed").await;
    eventually_ok(Duration::from_secs(10), "a lists the agent as b's", async || held_by(&a, "qa-routed", "b").await)
        .await;
    let seen_by_a = listed(&a, "qa-routed").await.unwrap();
    assert!(seen_by_a["connectedSince"].is_string() && seen_by_a["lastHeartbeat"].is_string(), "{seen_by_a}");
    publish(&a, &key, M, "1.0.0", logging_hooks(false)).await;
    publish(&a, &key, M, "1.5.0", logging_hooks(false)).await;
    publish(&a, &key, M, "2.0.0", logging_hooks(false)).await;

    let done = run(&a, "1.0.0").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}\n{}", a.log_text(), b.log_text(), agent.log());
    assert_eq!(done["ownerInstance"], "a", "{done:#}");
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
    assert!(agent.hook_log().contains(&format!("activate {M} 1.0.0 qa-routed")), "{}", agent.hook_log());
    // A run that b drives (it holds the session too) never passes through a,
    // whose cluster view shows the change all the same, from the host's own
    // reports that b passes on.
    let done = run(&b, "1.5.0").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}", b.log_text(), agent.log());
    assert_eq!(done["ownerInstance"], "b", "{done:#}");
    for server in [&a, &b] {
        eventually_ok(Duration::from_secs(10), "the view shows 1.5.0 on the host", async || {
            let version = version_in_view(server, "qa-routed").await?;
            (version == "1.5.0").then_some(()).ok_or(format!("{version}"))
        })
        .await;
    }

    b.kill();
    eventually_ok(Duration::from_secs(60), "the agent reconnects to a", async || held_by(&a, "qa-routed", "a").await)
        .await;
    let done = run(&a, "2.0.0").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}", a.log_text(), agent.log());
    assert_eq!(agent.current(M).as_deref(), Some("2.0.0"), "{}", agent.log());
    let hooks = agent.hook_log();
    assert_eq!(hooks.matches(&format!("activate {M} 2.0.0")).count(), 1, "activated once: {hooks}");
}

/// Instance `a` drives a run to a host whose session `b` holds, and `b` is
/// SIGKILLed while the host runs the version's `activate` hook (3 s long).
struct HolderKilledMidCall {
    a: Server,
    agent: Agent,
    run_id: String,
    killed_at: std::time::Instant,
    _db: TestDb,
    _root: tempfile::TempDir,
}

/// The agent is given `b`'s URL, then `a`'s too if `may_move`.
async fn holder_killed_mid_call(db_name: &str, hostname: &str, may_move: bool) -> Option<HolderKilledMidCall> {
    let db = TestDb::migrated(db_name).await?;
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = patient_instance(&db, "a", root.path(), &prefix).await;
    let mut b = patient_instance(&db, "b", root.path(), &prefix).await;
    let key = trusted_key(&a).await;
    let token = enrolment_token(&a, "QA").await;
    let servers = if may_move { format!("{},{}", b.base, a.base) } else { b.base.clone() };
    let agent = Agent::start_via(&servers, &[], &token, hostname, root.path());
    wait_joined(&a, "QA", hostname).await;
    eventually_ok(Duration::from_secs(10), "a lists the agent as b's", async || held_by(&a, hostname, "b").await).await;
    let mut hooks = logging_hooks(false);
    hooks["activate"] = serde_json::json!(
        r#"echo "activate-start $HOTSWAP_VERSION" >> "$HOOK_LOG"; sleep 3; echo "activate $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG""#
    );
    publish(&a, &key, M, "1.0.0", hooks).await;
    let (status, run) = a.post("/api/v1/deployments", &deployment(M, "1.0.0", "QA")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    eventually_ok(Duration::from_secs(60), "the host starts activating", async || {
        let hooks = agent.hook_log();
        hooks.contains("activate-start 1.0.0").then_some(()).ok_or(hooks)
    })
    .await;
    b.kill();
    let (run_id, killed_at) = (run["executionId"].as_str().unwrap().to_string(), std::time::Instant::now());
    Some(HolderKilledMidCall { a, agent, run_id, killed_at, _db: db, _root: root })
}

/// The agent reconnects to `a`, which sends the command again there rather
/// than waiting out `agent.command_timeout` for an answer the dead instance
/// will never give and failing the step (it did: "the agent's instance did
/// not answer within 11s", and the run rolled back); the host, which
/// finished the first request on its own, answers the second at once. The
/// run succeeds, and the version was activated once.
#[actix_web::test]
async fn a_call_whose_session_holder_dies_follows_the_agent_to_its_new_instance() {
    // Bound by name, not `..`: the database and the directory must outlive the test.
    let Some(HolderKilledMidCall { a, agent, run_id, killed_at, _db, _root }) =
        holder_killed_mid_call("agent::routing_holder_killed_mid_call", "qa-moved", true).await
    else {
        return;
    };
    let done = a.finished(&run_id, Duration::from_secs(120)).await;
    let took = killed_at.elapsed();
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}", a.log_text(), agent.log());
    assert!(took < Duration::from_secs(40), "the run waited {took:?} after b died\n{}", a.log_text());
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
    let hooks = agent.hook_log();
    assert_eq!(hooks.matches("activate-start 1.0.0").count(), 1, "activated once: {hooks}");
}

/// The agent knows only the instance that died: it cannot reconnect. The
/// call fails once the holder has been silent for the heartbeat timeout (4 s
/// here), naming the instance it lost, instead of when
/// `agent.command_timeout` runs out with a message that says nothing of why.
#[actix_web::test]
async fn a_call_whose_session_holder_dies_fails_naming_it_when_the_agent_does_not_come_back() {
    let Some(HolderKilledMidCall { a, run_id, _db, _root, .. }) =
        holder_killed_mid_call("agent::routing_holder_killed_agent_stranded", "qa-stranded", false).await
    else {
        return;
    };
    let done = a.finished(&run_id, Duration::from_secs(120)).await;
    assert_ne!(done["status"], "Succeeded", "{done:#}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(message.contains("of instance b, which held the agent's session"), "{done:#}\n{}", a.log_text());
}

/// With heartbeats far apart, an instance that does not hold the session
/// still shows what a run of the holder changed on the host as soon as the
/// run has ended: the holder passes on the report of each answer, not only
/// of each heartbeat. Then the host is removed through that other instance.
#[actix_web::test]
async fn the_other_instance_shows_a_host_s_new_version_without_waiting_for_a_heartbeat() {
    let Some(db) = TestDb::migrated("agent::routing_reports_passed_on").await else { return };
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let slow = ("30s", "90s");
    let a = instance_beating(&db, "a", root.path(), &prefix, slow).await;
    let b = instance_beating(&db, "b", root.path(), &prefix, slow).await;
    let key = trusted_key(&b).await;
    let token = enrolment_token(&b, "QA").await;
    let agent = Agent::start(&b, &token, "qa-reported", root.path());
    eventually_ok(Duration::from_secs(60), "b holds the agent's session", async || {
        held_by(&b, "qa-reported", "b").await
    })
    .await;
    wait_joined(&a, "QA", "qa-reported").await;
    publish(&b, &key, M, "1.0.0", logging_hooks(false)).await;

    let done = run(&b, "1.0.0").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}", b.log_text(), agent.log());
    // The next heartbeat is up to 30 s away; the report of the activation is not.
    eventually_ok(Duration::from_secs(3), "a's view shows 1.0.0 on the host", async || {
        let version = version_in_view(&a, "qa-reported").await?;
        (version == "1.0.0").then_some(()).ok_or(format!("{version}"))
    })
    .await;
    let listed_by_a = listed(&a, "qa-reported").await.unwrap();
    assert_eq!(listed_by_a["modules"][M]["active"]["version"], "1.0.0", "{listed_by_a}");

    // Retired through a, which does not hold its session: b ends the session,
    // and the host leaves both instances' clusters.
    let node_id = listed_by_a["nodeId"].as_str().unwrap().to_string();
    let (status, body) = a.delete(&format!("/api/v1/agents/{node_id}")).await.unwrap();
    assert_eq!(status.as_u16(), 204, "{body}");
    for server in [&a, &b] {
        eventually_ok(Duration::from_secs(10), "the host leaves the cluster", async || {
            let (_, cluster) = server.get("/api/v1/clusters/QA").await?;
            let nodes = cluster["nodes"].as_array().cloned().unwrap_or_default();
            match nodes.iter().any(|n| n["hostname"] == "qa-reported") {
                false => Ok(()),
                true => Err(format!("{cluster}")),
            }
        })
        .await;
    }
    assert!(listed(&b, "qa-reported").await.is_err(), "b lists the removed host no more");
}

/// An enrolment token revoked through the instance that does not hold its
/// host's session: the holder ends the session at once, and the agent is
/// refused when it tries again (a session held elsewhere used to stay open
/// until its holder restarted).
#[actix_web::test]
async fn a_token_revoked_on_another_instance_ends_the_session_its_holder_keeps() {
    let Some(db) = TestDb::migrated("agent::routing_token_revoked").await else { return };
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = instance(&db, "a", root.path(), &prefix).await;
    let b = instance(&db, "b", root.path(), &prefix).await;
    let (status, created) = b.post("/api/v1/agents/tokens", &serde_json::json!({ "environment": "QA" })).await.unwrap();
    assert_eq!(status.as_u16(), 201, "{created}");
    let (token, token_id) = (created["token"].as_str().unwrap(), created["id"].as_str().unwrap());
    let agent = Agent::start(&b, token, "qa-revoked", root.path());
    eventually_ok(Duration::from_secs(60), "b holds the agent's session", async || {
        held_by(&b, "qa-revoked", "b").await
    })
    .await;
    let (status, body) =
        a.post(&format!("/api/v1/agents/tokens/{token_id}/revoke"), &serde_json::json!({})).await.unwrap();
    assert_eq!(status.as_u16(), 200, "{body}");
    eventually_ok(Duration::from_secs(5), "b ends the session", async || {
        let listed = listed(&b, "qa-revoked").await?;
        match listed["connected"] {
            Value::Bool(false) => Ok(()),
            _ => Err(format!("{listed}")),
        }
    })
    .await;
    eventually_ok(Duration::from_secs(10), "the agent hears why", async || {
        let log = agent.log();
        log.contains("enrolment token was revoked").then_some(()).ok_or(log)
    })
    .await;
}

/// An instance that cannot reach Redis cannot reach the hosts other
/// instances hold either. A run it drives fails there, and restoring those
/// hosts needs nothing from them: the run's change never left this instance.
/// They are not reported as left on the new version (they were, wrongly:
/// every one quarantined).
#[actix_web::test]
async fn hosts_a_run_never_reached_are_not_reported_left_on_its_version() {
    let Some(db) = TestDb::migrated("agent::routing_never_reached").await else { return };
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = instance(&db, "a", root.path(), &prefix).await;
    let key = trusted_key(&a).await;
    let token = enrolment_token(&a, "QA").await;
    let agent = Agent::start(&a, &token, "qa-elsewhere", root.path());
    wait_joined(&a, "QA", "qa-elsewhere").await;
    publish(&a, &key, M, "1.0.0", logging_hooks(false)).await;
    let first = run(&a, "1.0.0").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", agent.log());
    publish(&a, &key, M, "2.0.0", logging_hooks(false)).await;

    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__CLUSTER__INSTANCE_ID", "cut-off".to_string()),
        ("HOTSWAP__CLUSTER__LEASE_TTL", "3s".to_string()),
        // Nothing listens there.
        ("HOTSWAP__REDIS__URL", "redis://127.0.0.1:1".to_string()),
        ("HOTSWAP__REDIS__KEY_PREFIX", prefix.clone()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "2s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let cut_off = Server::start_with_token(free_port(), &vars, root.path().join("cut-off.log"), a.token()).await;
    let done = run(&cut_off, "2.0.0").await;
    assert_ne!(done["status"], "Succeeded", "{done:#}");
    let left = done["nodesLeftOnNewVersion"].as_array().cloned().unwrap_or_default();
    assert!(left.is_empty(), "the host never got 2.0.0: {done:#}\n{}", cut_off.log_text());
    let id = done["executionId"].as_str().unwrap();
    let (_, events) = cut_off.get(&format!("/api/v1/deployments/{id}/events")).await.unwrap();
    let kinds: Vec<_> = events.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(!kinds.contains(&"NodesQuarantined"), "{kinds:?}");
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
}
