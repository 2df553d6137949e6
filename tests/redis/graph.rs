//! The knowledge graph with two instances: what one commits (a run it
//! drives, then its end) reaches the other's index over Redis. Each
//! instance used to load a tenant's graph once and see only its own writes.

use std::time::Duration;

use serde_json::json;

use crate::cluster::Cluster;
use crate::support::poll::eventually_ok;

#[actix_web::test]
async fn a_run_driven_by_one_instance_is_in_the_other_s_graph() {
    let Some(cluster) = Cluster::start("redis_graph", "redis://127.0.0.1:6379", &[]).await else { return };
    let body = json!({ "moduleName": "graph-peers", "version": "1.0.0", "targetEnvironment": "Development",
        "requesterEmail": "ops@example.com" });
    let (status, run) = cluster.a.post("/api/v1/deployments", &body).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let id = run["executionId"].as_str().unwrap().to_string();
    let done = cluster.a.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["ownerInstance"], "instance-a", "{done}");

    // B loaded the tenant's graph at its start, before the run existed.
    let entity = format!("/api/v1/graph/entities/{id}");
    let seen = eventually_ok(Duration::from_secs(15), "b's graph holds the run as it ended", async || {
        let (status, found) = cluster.b.get(&entity).await?;
        match (status.as_u16(), found["properties"]["status"].as_str()) {
            (200, Some(s)) if s == done["status"].as_str().unwrap_or_default() => Ok(found),
            other => Err(format!("{other:?}: {found}")),
        }
    })
    .await;
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
