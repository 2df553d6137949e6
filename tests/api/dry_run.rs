//! `POST /api/v1/deployments?dryRun=true`: the plan of a run, with nothing changed
//! but an audit entry saying a plan was asked for.

use crate::db::requests::{deployment, deployment_with};
use awc::http::StatusCode;
use serde_json::json;

use crate::support::spawn_app;

#[actix_web::test]
async fn a_dry_run_answers_the_plan_and_creates_no_run() {
    let app = spawn_app(&[]).await;
    let body = deployment_with("kmod-plan", "1.0.0", "Production", json!({ "requireApproval": true }));
    let (status, plan) = app.post("/api/v1/deployments?dryRun=true", &body).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["environments"], json!(["Development", "QA", "Staging", "Production"]));
    let strategies: Vec<_> = plan["stages"].as_array().unwrap().iter().map(|s| s["strategy"].clone()).collect();
    assert_eq!(strategies, vec![json!("Direct"), json!("Rolling"), json!("BlueGreen"), json!("Canary")]);
    // Every node of every cluster is in exactly one wave of its stage.
    for stage in plan["stages"].as_array().unwrap() {
        let in_waves: usize =
            stage["waves"].as_array().unwrap().iter().map(|w| w["nodes"].as_array().unwrap().len()).sum();
        assert_eq!(in_waves, stage["nodeCount"].as_u64().unwrap() as usize, "{stage:#}");
        assert!(stage["nodeCount"].as_u64().unwrap() > 0);
    }
    let qa = &plan["stages"][1];
    assert_eq!(qa["waves"][0]["label"], format!("batch 1 of {}", qa["waves"].as_array().unwrap().len()));
    assert_eq!(qa["waves"][0]["wait"]["kind"], "HealthCheckDelay");
    assert_eq!(plan["approval"]["reason"], "the request asks for approval");
    // The test profile lets unregistered versions pass, with a warning.
    assert_eq!(plan["securityScan"]["outcome"], "Warning", "{plan:#}");
    assert_eq!(plan["securityScan"]["checks"][2]["outcome"], "Warning", "{plan:#}");
    let checks: Vec<_> = plan["securityScan"]["checks"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(
        checks,
        vec![
            json!("Version"),
            json!("Clusters"),
            json!("Registry"),
            json!("Signature"),
            json!("Dependencies"),
            json!("Dependents")
        ]
    );
    assert!(plan["estimatedDuration"]["iso8601"].as_str().unwrap().starts_with("PT"));
    assert_eq!(plan["wouldDeploy"], true);

    let (_, runs) = app.get("/api/v1/deployments").await;
    assert_eq!(runs.as_array().unwrap().len(), 0, "a dry run creates no run: {runs}");
    let (_, audit) = app.get("/api/v1/auditlogs?eventType=DeploymentPlanned").await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit:#}");
    assert_eq!(items[0]["resourceId"], "kmod-plan@1.0.0");

    // The module is not held: a real run of it starts at once.
    let (status, reply) = app.post("/api/v1/deployments", &deployment("kmod-plan", "1.0.0", "QA")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

#[actix_web::test]
async fn a_dry_run_validates_like_a_run_and_dry_run_false_creates() {
    let app = spawn_app(&[]).await;
    let (status, reply) = app.post("/api/v1/deployments?dryRun=true", &json!({ "moduleName": "x" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["code"], "validation_failed");
    let (status, reply) = app.post("/api/v1/deployments?dryRun=maybe", &deployment("kmod-a", "1.0.0", "QA")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, reply) = app.post("/api/v1/deployments?dryRun=false", &deployment("kmod-a", "1.0.0", "QA")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

#[actix_web::test]
async fn canary_steps_without_a_canary_stage_are_refused_not_ignored() {
    let app = spawn_app(&[]).await;
    let refused = [
        // A named strategy other than Canary.
        ("Production", json!({ "strategy": "Rolling", "canarySteps": [10, 100] }), "not to the Rolling strategy"),
        // No strategy named, and no environment on the way to QA deploys as a canary.
        ("QA", json!({ "canarySteps": [10, 100] }), "QA deploys with Rolling"),
    ];
    for (target, extra, why) in refused {
        let body = deployment_with("kmod-steps", "1.0.0", target, extra.clone());
        for path in ["/api/v1/deployments?dryRun=true", "/api/v1/deployments"] {
            let (status, reply) = app.post(path, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {extra}: {reply}");
            assert_eq!(reply["code"], "validation_failed");
            let details = reply["details"].to_string();
            assert!(
                details.contains("canarySteps applies only to the Canary strategy") && details.contains(why),
                "{reply}"
            );
        }
    }
    // Where a stage is a canary, the steps shape it.
    for (target, extra) in [
        ("QA", json!({ "strategy": "Canary", "canarySteps": [40, 100] })),
        ("Production", json!({ "canarySteps": [50, 100] })),
    ] {
        let body = deployment_with("kmod-steps", "1.0.0", target, extra.clone());
        let (status, plan) = app.post("/api/v1/deployments?dryRun=true", &body).await;
        assert_eq!(status, StatusCode::OK, "{extra}: {plan}");
        let last = plan["stages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["strategy"], "Canary", "{plan:#}");
        assert_eq!(last["waves"].as_array().unwrap().len(), 2, "{last:#}");
    }
}

/// Walkthrough w3 F1: an environment without nodes on the path stops the run,
/// and the scan (and the plan) say what gives it nodes.
#[actix_web::test]
async fn an_empty_environment_on_the_path_is_refused_saying_how_to_give_it_nodes() {
    let app = spawn_app(&[("HOTSWAP__SIMULATION__NODES__STAGING", "0")]).await;
    let body = deployment("kmod-empty-env", "1.0.0", "Production");
    let (status, plan) = app.post("/api/v1/deployments?dryRun=true", &body).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let text = plan.to_string();
    assert!(text.contains("no nodes available in the Staging cluster"), "{text}");
    assert!(
        text.contains("hotswap agents token --to Staging") && text.contains("[simulation.nodes] staging"),
        "{text}"
    );
    let id = app.deploy("kmod-empty-env", "1.0.0", "Production", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    let scan = crate::support::stage(&run, "Security Scan");
    assert!(scan["message"].as_str().unwrap().contains("hotswap agents token --to Staging"), "{scan:#}");
}
