//! Redis stopped during a run and started again: the run finishes, the
//! instances say they are degraded meanwhile, and live updates from the
//! other instance come back with Redis.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::live::{create_run, Watcher};
use crate::process::Server;
use crate::redis_server::RedisServer;
use crate::support::poll::eventually;

pub async fn readiness(server: &Server) -> String {
    match server.get("/health/ready").await {
        Ok((_, body)) => body["status"].as_str().unwrap_or_default().to_string(),
        Err(e) => format!("no answer: {e}"),
    }
}

#[actix_web::test]
async fn redis_stopped_and_started_during_a_run_the_run_finishes_and_live_updates_resume() {
    let Some(mut redis) = RedisServer::start().await else { return };
    // Slow enough that Redis is stopped while the run is still going.
    let vars = [("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "700ms".to_string())];
    let Some(cluster) = Cluster::start("redis_outage", &redis.url(), &vars).await else { return };
    eventually(Duration::from_secs(10), "both instances see Redis", async || {
        readiness(&cluster.a).await == "Ready" && readiness(&cluster.b).await == "Ready"
    })
    .await;
    let (on_a, on_b) = (Watcher::connect(&cluster.a).await, Watcher::connect(&cluster.b).await);
    let first = create_run(&cluster.a, "kmod-outage").await;
    eventually(Duration::from_secs(10), "B's client hears the run start", async || !on_b.of_run(&first).is_empty())
        .await;

    redis.stop();
    let (_, run) = cluster.a.get(&format!("/api/v1/deployments/{first}")).await.unwrap();
    assert_eq!(run["status"], "Running", "Redis must go while the run is in progress: {run:#}");
    eventually(Duration::from_secs(10), "both instances say they are degraded", async || {
        readiness(&cluster.a).await == "Degraded" && readiness(&cluster.b).await == "Degraded"
    })
    .await;
    let ended = cluster.a.finished(&first, Duration::from_secs(60)).await;
    assert_eq!(ended["status"], "Succeeded", "{ended:#}\n{}", cluster.logs());
    // This instance's own clients heard the whole run without Redis.
    eventually(Duration::from_secs(10), "A's client hears the run end", async || on_a.heard_end(&first)).await;

    redis.resume().await.expect("redis-server starts again");
    eventually(Duration::from_secs(15), "both instances see Redis again", async || {
        readiness(&cluster.a).await == "Ready" && readiness(&cluster.b).await == "Ready"
    })
    .await;
    let second = create_run(&cluster.a, "kmod-after-outage").await;
    eventually(Duration::from_secs(60), "B's client hears the next run end", async || on_b.heard_end(&second)).await;
    let kinds = |heard: Vec<serde_json::Value>| -> Vec<String> {
        heard.iter().map(|m| format!("{} {}", m["type"], m["timestamp"])).collect()
    };
    assert_eq!(kinds(on_b.of_run(&second)), kinds(on_a.of_run(&second)), "live updates resumed whole and in order");
    assert_eq!(on_b.of_run(&second), on_a.of_run(&second));
}

/// An instance started while its Redis does not answer says so in its log
/// at once (it said nothing until a request needed Redis).
#[actix_web::test]
async fn an_instance_that_cannot_reach_redis_at_start_up_says_so() {
    let Some(mut redis) = RedisServer::start().await else { return };
    let url = redis.url();
    redis.stop();
    let logs = tempfile::tempdir().unwrap();
    let vars = [("HOTSWAP__REDIS__URL", url)];
    // Logins are refused while Redis is down: no token is needed here.
    let server =
        Server::start_with_token(crate::process::free_port(), &vars, logs.path().join("alone.log"), "unused").await;
    eventually(Duration::from_secs(10), "the log says Redis does not answer", async || {
        server.log_text().contains("redis does not answer; falling back to this instance alone")
    })
    .await;
    assert_eq!(readiness(&server).await, "Degraded");
}
