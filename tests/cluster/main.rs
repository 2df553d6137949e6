//! Two `hotswap serve` processes on one PostgreSQL database, as a cluster
//! behind a load balancer runs them: a run survives the loss of the instance
//! that drives it, a stalled former owner is fenced off, a tenant's quota
//! holds across instances, an approval or a verb sent to either instance
//! reaches the run, each cluster-wide sweep runs on one instance, each
//! instance shows the node versions the other's runs installed, and a JWT
//! key rotated through one instance is the other's too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

#[path = "../durability/process.rs"]
#[allow(dead_code)] // Shared with the durability tests, which use all of it.
mod process;

mod admission;
mod failover;
mod nodes;
mod secrets;
mod tasks;
mod tenants;
mod verbs;

use std::path::Path;
use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use process::{free_port, Server};
use support::poll::eventually_ok;
use support::TestDb;

/// `cluster.lease_ttl` of every instance here.
const LEASE_TTL: Duration = Duration::from_millis(1500);

/// One instance named `name` on `db`, with `extra` settings.
async fn instance(db: &TestDb, name: &str, logs: &Path, extra: &[(&str, String)]) -> Server {
    let mut vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__CLUSTER__INSTANCE_ID", name.to_string()),
        ("HOTSWAP__CLUSTER__LEASE_TTL", format!("{}ms", LEASE_TTL.as_millis())),
        // Two instances per test on a machine shared with other tests: a node
        // that persists its change slowly is not a failed node here.
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "10s".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    Server::start(free_port(), &vars, logs.join(format!("{name}.log"))).await
}

fn deployment(module: &str, version: &str, target: &str) -> Value {
    json!({ "moduleName": module, "version": version, "targetEnvironment": target, "requesterEmail": "ops@example.com" })
}

/// Creates a run on `server`; its execution id.
async fn create(server: &Server, body: &Value) -> String {
    let (status, reply) = server.post("/api/v1/deployments", body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    reply["executionId"].as_str().unwrap().to_string()
}

/// The run as `server` reads it.
async fn run_on(server: &Server, id: &str) -> Value {
    let (status, run) = server.get(&format!("/api/v1/deployments/{id}")).await.expect("run read");
    assert_eq!(status, StatusCode::OK, "{run}");
    run
}

/// Waits until `server` reads the run as `owner`'s.
async fn owned_by(server: &Server, id: &str, owner: &str, within: Duration) -> Value {
    eventually_ok(within, &format!("run {id} is driven by {owner}"), async || {
        let run = run_on(server, id).await;
        if run["ownerInstance"] == owner {
            Ok(run)
        } else {
            Err(format!("owner {} status {}", run["ownerInstance"], run["status"]))
        }
    })
    .await
}
