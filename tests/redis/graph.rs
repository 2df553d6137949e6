//! The knowledge graph with two instances: what one commits (a run it
//! drives, then its end) reaches the other's index over Redis. Each
//! instance used to load a tenant's graph once and see only its own writes.
//! Notices published while Redis was away are lost; the instances load
//! their graphs again once it is back, instead of staying stale.

use std::time::Duration;

use serde_json::json;

use crate::cluster::Cluster;
use crate::outage::readiness;
use crate::process::Server;
use crate::redis_server::RedisServer;
use crate::support::poll::{eventually, eventually_ok};

fn run_body(module: &str) -> serde_json::Value {
    json!({ "moduleName": module, "version": "1.0.0", "targetEnvironment": "Development",
        "requesterEmail": "ops@example.com" })
}

/// The run as `server`'s graph holds it, once its status is `status`.
async fn graph_shows(server: &Server, id: &str, status: &str, what: &str) -> serde_json::Value {
    let entity = format!("/api/v1/graph/entities/{id}");
    eventually_ok(Duration::from_secs(15), what, async || {
        let (code, found) = server.get(&entity).await?;
        match (code.as_u16(), found["properties"]["status"].as_str()) {
            (200, Some(s)) if s == status => Ok(found),
            other => Err(format!("{other:?}: {found}")),
        }
    })
    .await
}

#[actix_web::test]
async fn a_run_driven_by_one_instance_is_in_the_other_s_graph() {
    let Some(cluster) = Cluster::start("redis_graph", "redis://127.0.0.1:6379", &[]).await else { return };
    let (status, run) = cluster.a.post("/api/v1/deployments", &run_body("graph-peers")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let id = run["executionId"].as_str().unwrap().to_string();
    let done = cluster.a.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["ownerInstance"], "instance-a", "{done}");

    // B loaded the tenant's graph at its start, before the run existed.
    let entity = format!("/api/v1/graph/entities/{id}");
    let ended = done["status"].as_str().unwrap_or_default();
    let seen = graph_shows(&cluster.b, &id, ended, "b's graph holds the run as it ended").await;
    assert_eq!(seen["type"], "Run", "{seen}");
    // And the nodes it touched, with the relationships A wrote.
    let (_, related) = cluster.b.get(&format!("{entity}/relationships")).await.unwrap();
    let types: Vec<&str> =
        related.as_array().map(|r| r.iter().filter_map(|x| x["type"].as_str()).collect()).unwrap_or_default();
    assert!(types.contains(&"DEPLOYED") && types.contains(&"TOUCHED"), "{related}\n{}", cluster.logs());
    let (_, a_stats) = cluster.a.get("/api/v1/graph/statistics").await.unwrap();
    let (_, b_stats) = cluster.b.get("/api/v1/graph/statistics").await.unwrap();
    assert_eq!(a_stats["entityCount"], b_stats["entityCount"], "{a_stats}\n{b_stats}");
    assert_eq!(a_stats["relationshipCount"], b_stats["relationshipCount"], "{a_stats}\n{b_stats}");
}

#[actix_web::test]
async fn a_graph_that_missed_notices_while_redis_was_away_is_loaded_again() {
    let Some(mut redis) = RedisServer::start().await else { return };
    let Some(cluster) = Cluster::start("redis_graph_gap", &redis.url(), &[]).await else { return };
    eventually(Duration::from_secs(10), "both instances see Redis", async || {
        readiness(&cluster.a).await == "Ready" && readiness(&cluster.b).await == "Ready"
    })
    .await;
    // B holds the tenant's graph in memory from here on.
    let (status, _) = cluster.b.get("/api/v1/graph/statistics").await.unwrap();
    assert_eq!(status.as_u16(), 200);

    redis.stop();
    eventually(Duration::from_secs(10), "both instances say they are degraded", async || {
        readiness(&cluster.a).await == "Degraded" && readiness(&cluster.b).await == "Degraded"
    })
    .await;
    // A run A drives while nobody hears its graph notices.
    let (status, run) = cluster.a.post("/api/v1/deployments", &run_body("graph-gap")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let id = run["executionId"].as_str().unwrap().to_string();
    let done = cluster.a.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}", cluster.logs());

    redis.resume().await.expect("redis-server starts again");
    eventually(Duration::from_secs(15), "both instances see Redis again", async || {
        readiness(&cluster.a).await == "Ready" && readiness(&cluster.b).await == "Ready"
    })
    .await;
    // B's graph matches A's: the run, and everything else A wrote meanwhile.
    let seen = graph_shows(&cluster.b, &id, "Succeeded", "b's graph holds the run A drove without Redis").await;
    assert_eq!(seen["type"], "Run", "{seen}\n{}", cluster.logs());
    eventually_ok(Duration::from_secs(15), "b's graph counts what a's counts", async || {
        let (_, a_stats) = cluster.a.get("/api/v1/graph/statistics").await?;
        let (_, b_stats) = cluster.b.get("/api/v1/graph/statistics").await?;
        let counts = |s: &serde_json::Value| (s["entityCount"].clone(), s["relationshipCount"].clone());
        if counts(&a_stats) == counts(&b_stats) {
            Ok(())
        } else {
            Err(format!("a {a_stats}\nb {b_stats}"))
        }
    })
    .await;
}
