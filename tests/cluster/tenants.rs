//! A tenant created or changed through one instance, as the other sees it:
//! each instance has an actor per tenant, and only one of them applies a
//! change, so the others must take the tenant's status and quota from the
//! store, not from what their actor saw last.

use std::time::Duration;

use super::*;

/// Creates a run of `module` (held at its approval gate, so that it stays
/// active) for the tenant `server` acts for; the status and the reply.
async fn try_create(server: &Server, module: &str) -> (StatusCode, Value) {
    let mut body = deployment(module, "1.0.0", "Staging");
    body["requireApproval"] = json!(true);
    server.post("/api/v1/deployments", &body).await.expect("create answered")
}

#[actix_web::test]
async fn a_tenant_created_suspended_or_moved_to_another_tier_on_one_instance_is_so_on_the_other() {
    let Some(db) = TestDb::migrated("cluster::a_tenant_created_suspended_or_moved_to_another_tier").await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let mut a = instance(&db, "a", logs.path(), &[]).await;
    let mut b = instance(&db, "b", logs.path(), &[]).await;
    // Created on a after b started: b has never heard of it.
    let free =
        json!({ "name": "Walk HA", "subdomain": "walkha", "tier": "Free", "contactEmail": "ops@walkha.example.com" });
    let (status, reply) = a.post("/api/tenants", &free).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let tenant = reply["tenantId"].as_str().unwrap().to_string();

    // b starts the tenant's actor and clusters when first asked.
    b.act_for(Some(&tenant));
    let (status, clusters) = b.get("/api/v1/clusters").await.unwrap();
    assert_eq!(status, StatusCode::OK, "{clusters}");
    let clusters = clusters.as_array().expect("a list of clusters");
    assert!(!clusters.is_empty() && clusters.iter().all(|c| c["totalNodes"].as_u64() > Some(0)), "{clusters:?}");
    let (status, reply) = try_create(&b, "kmod-ha-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "a run of a tenant created on a, created on b: {reply}");
    let held = reply["executionId"].as_str().unwrap().to_string();
    // The list, like the run's own view, names b as the instance driving it.
    owned_by(&b, &held, "b", Duration::from_secs(20)).await;
    let (status, listed) = b.get("/api/v1/deployments").await.unwrap();
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["executionId"], held.as_str(), "{listed}");
    assert_eq!(listed[0]["ownerInstance"], "b", "{listed}");

    // Free: one concurrent run; Starter (set on a): three, at once on b.
    let (status, reply) = try_create(&b, "kmod-ha-2").await;
    assert_eq!((status, reply["quota"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("concurrentRuns")), "{reply}");
    let (status, reply) =
        a.put(&format!("/api/tenants/{tenant}/subscription"), &json!({ "tier": "Starter" })).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = try_create(&b, "kmod-ha-2").await;
    assert_eq!(status, StatusCode::ACCEPTED, "b admits per the tier set on a: {reply}");

    // Suspended on a: b refuses its runs and its verbs at once.
    let (status, reply) = a.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = try_create(&b, "kmod-ha-3").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a run of a tenant suspended on a, created on b: {reply}");
    let (status, reply) = b.post(&format!("/api/v1/deployments/{held}/pause"), &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "a verb on a run of a tenant suspended on a, sent to b: {reply}");

    // Activated on b, whose actor saw it Active last: the command is checked
    // against the stored (Suspended) tenant, and a then admits its runs.
    b.act_for(None);
    let (status, reply) = b.post(&format!("/api/tenants/{tenant}/activate"), &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::OK, "activated on b: {reply}");
    a.act_for(Some(&tenant));
    let (status, reply) = try_create(&a, "kmod-ha-3").await;
    assert_eq!(status, StatusCode::ACCEPTED, "a run of a tenant activated on b, created on a: {reply}");
}

/// Deleted through b, the tenant that a provisioned loses its actor and
/// simulated nodes on a too, without Redis (the periodic refresh): before, a
/// kept them (and reported healthy nodes of a deleted tenant) until restarted,
/// as only an admission would have made it read the tenant again.
#[actix_web::test]
async fn a_tenant_deleted_through_one_instance_loses_its_nodes_on_the_other() {
    let Some(db) = TestDb::migrated("cluster::a_tenant_deleted_through_one_instance").await else { return };
    let logs = tempfile::tempdir().unwrap();
    let refresh = [("HOTSWAP__TENANTS__REFRESH_INTERVAL", "500ms".to_string())];
    let mut a = instance(&db, "a", logs.path(), &refresh).await;
    let b = instance(&db, "b", logs.path(), &refresh).await;
    let body =
        json!({ "name": "Gone Soon", "subdomain": "gonesoon", "tier": "Free", "contactEmail": "ops@gone.example.com" });
    let (status, reply) = a.post("/api/tenants", &body).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let tenant = reply["tenantId"].as_str().unwrap().to_string();
    a.act_for(Some(&tenant));
    let nodes_on_a = async || {
        let (_, cluster) = a.get("/api/v1/clusters/Development").await?;
        cluster["totalNodes"].as_u64().ok_or(format!("{cluster}"))
    };
    eventually_ok(Duration::from_secs(30), "a provisions the tenant's nodes", async || match nodes_on_a().await? {
        0 => Err("no nodes yet".to_string()),
        _ => Ok(()),
    })
    .await;

    let (status, reply) = b.delete(&format!("/api/tenants/{tenant}")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{reply}");
    eventually_ok(Duration::from_secs(10), "a drops the deleted tenant's nodes", async || match nodes_on_a().await? {
        0 => Ok(()),
        n => Err(format!("{n} nodes still")),
    })
    .await;
}
