//! Clusters, nodes, health and the recorded metrics history.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;

use crate::db::poll::throughout;
use crate::support::spawn_app;

#[actix_web::test]
async fn four_clusters_with_the_configured_sizes_and_hostnames() {
    let app = spawn_app(&[("HOTSWAP__SIMULATION__NODES__QA", "7")]).await;
    let (status, clusters) = app.get("/api/v1/clusters").await;
    assert_eq!(status, StatusCode::OK);
    let sizes: Vec<_> =
        clusters.as_array().unwrap().iter().map(|c| (c["environment"].clone(), c["totalNodes"].clone())).collect();
    assert_eq!(
        sizes,
        [
            (json!("Development"), json!(3)),
            (json!("QA"), json!(7)),
            (json!("Staging"), json!(10)),
            (json!("Production"), json!(20))
        ]
    );
    assert!(clusters.as_array().unwrap().iter().all(|c| c["isHealthy"] == true));
    let (_, qa) = app.get("/api/v1/clusters/qa").await;
    assert_eq!(qa["environment"], "QA");
    assert_eq!(qa["nodes"][3]["hostname"], "qa-node-04");
    let node = &qa["nodes"][0];
    for field in ["nodeId", "hostname", "status", "isHealthy", "lastHeartbeat", "metrics", "modules"] {
        assert!(!node[field].is_null(), "node field {field} present: {node}");
    }
    let (status, reply) = app.get("/api/v1/clusters/moon").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["message"], "Environment 'moon' not found");
}

#[actix_web::test]
async fn idle_clusters_stay_healthy_past_the_heartbeat_timeout() {
    // Test profile: heartbeats every 200 ms, a node without one for 1 s is unhealthy.
    let app = spawn_app(&[]).await;
    throughout(
        Duration::from_millis(2500),
        Duration::from_millis(250),
        "all 20 Production nodes healthy",
        async || {
            let (_, c) = app.get("/api/v1/clusters/Production").await;
            if c["healthyNodes"] == 20 {
                Ok(())
            } else {
                Err(c.to_string())
            }
        },
    )
    .await;
}

#[actix_web::test]
async fn node_metrics_are_a_stable_per_node_baseline() {
    let app = spawn_app(&[]).await;
    let (_, a) = app.get("/api/v1/clusters/Staging").await;
    let (_, b) = app.get("/api/v1/clusters/Staging").await;
    for (x, y) in a["nodes"].as_array().unwrap().iter().zip(b["nodes"].as_array().unwrap()) {
        let (cx, cy) = (x["metrics"]["cpuUsage"].as_f64().unwrap(), y["metrics"]["cpuUsage"].as_f64().unwrap());
        assert!((cx - cy).abs() / cx < 0.03, "{cx} vs {cy}");
        assert!(x["metrics"]["errorRate"].as_f64().unwrap() < 5.0);
    }
    let cpus: Vec<_> =
        a["nodes"].as_array().unwrap().iter().map(|n| n["metrics"]["cpuUsage"].as_f64().unwrap()).collect();
    assert!(cpus.windows(2).any(|w| (w[0] - w[1]).abs() > 0.5), "nodes differ from each other: {cpus:?}");
}

#[actix_web::test]
async fn deployed_versions_and_faults_show_on_the_nodes() {
    let app = spawn_app(&[]).await;
    let id = app
        .deploy("kmod-a", "2.0.0", "Development", json!({ "metadata": { "simulateCpu": "95", "owner": "team-x" } }))
        .await;
    let run = app.finished(&id).await;
    // CPU over 90 % makes every node unhealthy, so validation fails and the stage is rolled back.
    assert_eq!(run["status"], "Failed", "{run:#}");
    let (_, dev) = app.get("/api/v1/clusters/Development").await;
    assert!(
        dev["nodes"].as_array().unwrap().iter().all(|n| n["modules"].get("kmod-a").is_none() && n["isHealthy"] == true),
        "{dev}"
    );
    app.deploy_ok("kmod-a", "2.0.1", "Development").await;
    let (_, dev) = app.get("/api/v1/clusters/Development").await;
    assert!(dev["nodes"].as_array().unwrap().iter().all(|n| n["modules"]["kmod-a"] == "2.0.1"));
}

#[actix_web::test]
async fn metrics_history_honours_range_and_interval() {
    let app = spawn_app(&[]).await;
    // Samples are recorded every 100 ms in the test profile.
    let from = chrono::Utc::now();
    let path = |interval: &str| {
        let to =
            (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        format!(
            "/api/v1/clusters/QA/metrics?from={}&to={to}&interval={interval}",
            from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    };
    let series = crate::db::poll::eventually_ok(Duration::from_secs(10), "samples are being recorded", async || {
        let (status, series) = app.get(&path("1s")).await;
        assert_eq!(status, StatusCode::OK, "{series}");
        let samples: u64 =
            series["dataPoints"].as_array().unwrap().iter().map(|p| p["samples"].as_u64().unwrap()).sum();
        if samples >= 8 {
            Ok(series)
        } else {
            Err(series.to_string())
        }
    })
    .await;
    assert_eq!(series["interval"], "1s");
    let points = series["dataPoints"].as_array().unwrap();
    assert!(points.iter().all(|p| p["cpuUsage"].as_f64().unwrap() > 0.0));
    assert!(points.windows(2).all(|w| w[0]["timestamp"].as_str() < w[1]["timestamp"].as_str()));
    // A wider interval folds the same samples into fewer points.
    let (_, wide) = app.get(&path("1h")).await;
    assert_eq!(wide["dataPoints"].as_array().unwrap().len(), 1, "{wide}");
    let (status, reply) = app.get("/api/v1/clusters/QA/metrics?interval=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, _) = app.get("/api/v1/clusters/QA/metrics?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/v1/clusters/Moon/metrics").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn health_endpoints() {
    let app = spawn_app(&[]).await;
    let (status, _) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    let (status, ready) = app.get("/health/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["store"]["backend"], "memory");
}
