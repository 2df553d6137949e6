//! A tenant's quota across instances, and an approval decided on the
//! instance that does not drive the run.

use std::time::Duration;

use super::*;

#[actix_web::test]
async fn fifty_concurrent_creates_over_two_instances_admit_exactly_the_concurrent_quota() {
    let Some(db) = TestDb::migrated("cluster::fifty_concurrent_creates_over_two_instances_admit_exactly").await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let mut a = instance(&db, "a", logs.path(), &[]).await;
    // Starter: three concurrent runs. Made before b starts, so that both
    // instances' tenant actors hold its quota; the system admin acts for it.
    let starter =
        json!({ "name": "Burst", "subdomain": "burst", "tier": "Starter", "contactEmail": "ops@burst.example.com" });
    let (status, reply) = a.post("/api/tenants", &starter).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let tenant = reply["tenantId"].as_str().unwrap().to_string();
    let mut b = instance(&db, "b", logs.path(), &[]).await;
    a.act_for(Some(&tenant));
    b.act_for(Some(&tenant));

    // Each run waits for approval (asked for, on the way to Staging), so that none ends and frees its slot meanwhile.
    let creates = (0..50).map(|i| {
        let (name, server) = if i % 2 == 0 { ("a", &a) } else { ("b", &b) };
        let mut body = deployment(&format!("kmod-quota-{i}"), "1.0.0", "Staging");
        body["requireApproval"] = json!(true);
        async move {
            let (status, reply) = server.post("/api/v1/deployments", &body).await.expect("create answered");
            (status, reply, name)
        }
    });
    let answers = futures::future::join_all(creates).await;
    let admitted: Vec<_> = answers.iter().filter(|(status, _, _)| *status == StatusCode::ACCEPTED).collect();
    assert_eq!(admitted.len(), 3, "{answers:#?}");
    for (status, reply, _) in answers.iter().filter(|(status, _, _)| *status != StatusCode::ACCEPTED) {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
        assert_eq!((reply["code"].as_str(), reply["quota"].as_str()), (Some("quota_exceeded"), Some("concurrentRuns")));
        assert_eq!(reply["current"], 3, "{reply}");
    }
    // Each admitted run is driven by the instance that admitted it, and
    // stops at its approval gate once its Development and QA stages are done
    // (it is Running until then, so the status is waited for).
    for (_, reply, name) in &admitted {
        let id = reply["executionId"].as_str().unwrap();
        eventually_ok(Duration::from_secs(20), "the admitted run waits for approval", async || {
            let run = run_on(&a, id).await;
            match (run["status"].as_str(), run["ownerInstance"].as_str()) {
                (Some("PendingApproval"), Some(owner)) if owner == *name => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    b.act_for(None);
    let (_, usage) = b.get(&format!("/api/tenants/{tenant}/usage")).await.unwrap();
    let concurrent = usage["quotas"].as_array().unwrap().iter().find(|q| q["quota"] == "concurrentRuns").unwrap();
    assert_eq!(concurrent["used"], 3, "{usage}");
}

#[actix_web::test]
async fn concurrent_uploads_over_two_instances_store_exactly_the_modules_quota() {
    use base64::Engine;

    let Some(db) = TestDb::migrated("cluster::concurrent_uploads_store_exactly_the_modules_quota").await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    // Every upload is read at once (none is turned away for want of a slot).
    let extra = [("HOTSWAP__REGISTRY__MAX_CONCURRENT_UPLOADS", "16".to_string())];
    let mut a = instance(&db, "a", logs.path(), &extra).await;
    // Free: three modules.
    let free =
        json!({ "name": "Uploads", "subdomain": "uploads", "tier": "Free", "contactEmail": "ops@uploads.example.com" });
    let (status, reply) = a.post("/api/tenants", &free).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let tenant = reply["tenantId"].as_str().unwrap().to_string();
    let mut b = instance(&db, "b", logs.path(), &extra).await;
    a.act_for(Some(&tenant));
    b.act_for(Some(&tenant));

    let uploads = (0..12).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        let artifact = format!("the artifact of kmod-upload-{i} {}", uuid::Uuid::new_v4());
        let body = json!({
            "descriptor": { "name": format!("kmod-upload-{i}"), "version": "1.0.0" },
            "artifact": base64::engine::general_purpose::STANDARD.encode(artifact),
        });
        async move { server.post("/api/v1/modules", &body).await.expect("upload answered") }
    });
    let answers = futures::future::join_all(uploads).await;
    let stored = answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    assert_eq!(stored, 3, "{answers:#?}");
    for (status, reply) in answers.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{reply}");
        assert_eq!((reply["code"].as_str(), reply["quota"].as_str()), (Some("quota_exceeded"), Some("modules")));
        assert_eq!(reply["current"], 3, "{reply}");
    }
    b.act_for(None);
    let (_, usage) = b.get(&format!("/api/tenants/{tenant}/usage")).await.unwrap();
    let modules = usage["quotas"].as_array().unwrap().iter().find(|q| q["quota"] == "modules").unwrap();
    assert_eq!(modules["used"], 3, "{usage}");
}

/// A run created on `a` waits for approval; `b` approves it; `a` must move
/// the run on within `within` of the decision.
async fn approve_on_the_other_instance(test: &str, extra: &[(&str, String)], within: Duration) {
    let Some(db) = TestDb::migrated(test).await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let a = instance(&db, "a", logs.path(), extra).await;
    let b = instance(&db, "b", logs.path(), extra).await;
    let mut body = deployment("kmod-approved", "1.0.0", "Staging");
    body["requireApproval"] = json!(true);
    let id = create(&a, &body).await;
    eventually_ok(Duration::from_secs(20), "the run waits for approval", async || {
        let run = run_on(&b, &id).await;
        if run["status"] == "PendingApproval" {
            Ok(())
        } else {
            Err(format!("{}", run["status"]))
        }
    })
    .await;

    let decided = std::time::Instant::now();
    let path = format!("/api/v1/approvals/deployments/{id}/approve");
    let (status, reply) = b.post(&path, &json!({ "reason": "looks good" })).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{reply}");
    eventually_ok(Duration::from_secs(20), "the run goes on past its approval", async || {
        let run = run_on(&a, &id).await;
        let gate = run["stages"].as_array().and_then(|s| s.iter().find(|st| st["name"] == "Approval")).cloned();
        match gate {
            Some(g) if g["status"] == "Succeeded" => Ok(()),
            _ => Err(format!("{} {:#}", run["status"], run["stages"])),
        }
    })
    .await;
    let waited = decided.elapsed();
    assert!(waited < within, "the owner noticed the decision only after {waited:?}");
    let run = a.finished(&id, Duration::from_secs(60)).await;
    assert_eq!((run["status"].as_str(), run["ownerInstance"].as_str()), (Some("Succeeded"), Some("a")), "{run:#}");
}

#[actix_web::test]
async fn an_approval_decided_on_the_other_instance_reaches_the_owner_by_its_poll() {
    // approvals.poll_interval is 100ms in the test profile.
    approve_on_the_other_instance(
        "cluster::an_approval_decided_on_the_other_instance_reaches_the_owner_by_its_poll",
        &[],
        Duration::from_secs(2),
    )
    .await;
}

#[actix_web::test]
async fn an_approval_decided_on_the_other_instance_wakes_the_owner_over_redis() {
    // A poll too slow to explain a quick answer: only the wake-up can.
    let redis = [
        ("HOTSWAP__REDIS__URL", "redis://127.0.0.1:6379".to_string()),
        ("HOTSWAP__APPROVALS__POLL_INTERVAL", "60s".to_string()),
    ];
    approve_on_the_other_instance(
        "cluster::an_approval_decided_on_the_other_instance_wakes_the_owner_over_redis",
        &redis,
        Duration::from_secs(5),
    )
    .await;
}
