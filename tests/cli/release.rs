//! Releasing modules that depend on each other: `hotswap release --plan`
//! orders them, `hotswap release --to ENV --wait` runs the batch to its end,
//! `hotswap batch ID` shows it, and `hotswap impact` says what a later
//! version would break on the nodes that now run both (exit 1).

use crate::harness::{Operator, Server, ADMIN};

/// Signs and uploads `name` `version` with `dependencies`.
async fn publish(admin: &Operator, dir: &std::path::Path, name: &str, version: &str, dependencies: serde_json::Value) {
    let at = |file: &str| dir.join(file).to_str().unwrap().to_string();
    let descriptor = serde_json::json!({ "name": name, "version": version, "dependencies": dependencies });
    std::fs::write(at("descriptor.json"), descriptor.to_string()).unwrap();
    std::fs::write(at("module.ko"), format!("{name} {version}")).unwrap();
    let signed = admin
        .run(&["module", "sign", "--key", &at("team.pem"), "--descriptor", &at("descriptor.json"), &at("module.ko")])
        .await;
    assert_eq!(signed.code, 0, "{signed:?}");
    let pushed = admin.run(&["module", "push", "--descriptor", &at("descriptor.json"), &at("module.ko")]).await;
    assert_eq!(pushed.code, 0, "{pushed:?}");
}

#[actix_web::test]
async fn a_release_goes_out_in_dependency_order_and_impact_names_what_would_break() {
    let server = Server::start().await;
    let admin = Operator::logged_in(&server, ADMIN).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("team.pem").to_str().unwrap().to_string();
    assert_eq!(admin.run(&["keygen", "--out", &key]).await.code, 0);
    assert_eq!(admin.run(&["keys", "add", &format!("{key}.pub")]).await.code, 0);
    publish(&admin, dir.path(), "kbase", "1.0.0", serde_json::json!({})).await;
    publish(&admin, dir.path(), "netx", "1.0.0", serde_json::json!({ "kbase": "^1" })).await;

    // The order, named in the wrong one: kbase first, netx after it.
    let plan = admin.run(&["release", "netx@1.0.0", "kbase@1.0.0", "--plan"]).await;
    assert_eq!(plan.code, 0, "{plan:?}");
    let rows: Vec<&str> = plan.stdout.lines().filter(|l| l.contains("1.0.0")).collect();
    assert!(rows.len() == 2 && rows[0].contains("kbase") && rows[1].contains("netx"), "{plan:?}");
    assert!(rows[1].trim_end().ends_with("kbase"), "netx goes out after kbase: {plan:?}");

    let released = admin.run(&["release", "netx@1.0.0", "kbase@1.0.0", "--to", "Development", "--wait"]).await;
    assert_eq!(released.code, 0, "{released:?}\n{}", server.log());
    assert!(released.stdout.contains("Batch") && released.stdout.contains("Succeeded"), "{released:?}");
    let id = released.stdout.split_whitespace().nth(1).unwrap_or_default().to_string();
    let shown = admin.run(&["batch", &id, "-o", "json"]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let batch = shown.json();
    assert_eq!(batch["status"], "Succeeded", "{batch:#}");
    let order: Vec<(&str, &str)> = batch["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["module"].as_str().unwrap_or_default(), s["status"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(order, vec![("kbase", "Succeeded"), ("netx", "Succeeded")]);
    // The table's RUN column holds ids that the run commands take.
    let table = admin.run(&["batch", &id]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let kbase_run = batch["steps"][0]["executionId"].as_str().unwrap();
    let row = table.stdout.lines().find(|l| l.contains("kbase")).unwrap_or_default().to_string();
    assert!(row.split_whitespace().any(|cell| cell == kbase_run), "{table:?}");
    let status = admin.run(&["status", kbase_run]).await;
    assert_eq!(status.code, 0, "{status:?}");
    // Listed, newest first, when the id was not kept.
    let listed = admin.run(&["batch"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    let row = listed.stdout.lines().find(|l| l.starts_with(&id)).unwrap_or_default().to_string();
    assert!(row.contains("Succeeded") && row.contains("kbase@1.0.0 netx@1.0.0"), "{listed:?}");
    // The page after the only batch is empty; a limit out of range is the caller's mistake.
    let older = admin.run(&["batch", "--before", &id, "-o", "json"]).await;
    assert_eq!(older.code, 0, "{older:?}");
    assert_eq!(older.json(), serde_json::json!([]), "{older:?}");
    let too_many = admin.run(&["batch", "--limit", "500"]).await;
    assert_eq!(too_many.code, 2, "{too_many:?}");
    assert!(too_many.stderr.contains("500"), "{too_many:?}");

    // netx 1.0.0 runs beside kbase 1.0.0 now: kbase 2.0.0 would break it, 1.1.0 would not.
    let breaking = admin.run(&["impact", "kbase", "2.0.0"]).await;
    assert_eq!(breaking.code, 1, "{breaking:?}");
    assert!(breaking.stdout.contains("Would break:"), "{breaking:?}");
    assert!(breaking.stdout.contains("netx 1.0.0 requires kbase ^1, which 2.0.0 does not meet"), "{breaking:?}");
    // The nodes are kbase's own (the count comes from nodesTotal); each dependent's are in its row.
    assert!(
        breaking.stdout.contains("Impact of kbase 2.0.0: kbase runs on 3 nodes in 1 cluster; 1 dependent"),
        "{breaking:?}"
    );
    let dependent = breaking.stdout.lines().find(|l| l.starts_with("netx")).unwrap_or_default().to_string();
    assert!(dependent.contains("kbase ^1") && dependent.contains("NO"), "{breaking:?}");
    let compatible = admin.run(&["impact", "kbase", "1.1.0", "-o", "json"]).await;
    assert_eq!(compatible.code, 0, "{compatible:?}");
    let report = compatible.json();
    assert_eq!(report["conflicts"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["dependents"][0]["satisfied"], true, "{report:#}");

    // Mistakes are the caller's: exit 2 with the reason.
    let bare = admin.run(&["release", "kbase", "--to", "Development"]).await;
    assert_eq!(bare.code, 2, "{bare:?}");
    assert!(bare.stderr.contains("'kbase' is not MODULE@VERSION"), "{bare:?}");
    let unknown = admin.run(&["release", "kbase@9.9.9", "--to", "Development"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("9.9.9"), "{unknown:?}");
    assert_eq!(admin.run(&["batch", "not-an-id"]).await.code, 2);

    // A release below what the nodes run needs --allow-downgrade, as deploy does.
    publish(&admin, dir.path(), "kalone", "1.0.0", serde_json::json!({})).await;
    publish(&admin, dir.path(), "kalone", "1.1.0", serde_json::json!({})).await;
    let up = admin.run(&["release", "kalone@1.1.0", "--to", "Development", "--wait"]).await;
    assert_eq!(up.code, 0, "{up:?}");
    let down = admin.run(&["release", "kalone@1.0.0", "--to", "Development", "--wait"]).await;
    assert_eq!(down.code, 2, "{down:?}");
    assert!(down.stderr.contains("kalone 1.0.0 is lower than 1.1.0"), "{down:?}");
    assert!(down.stderr.contains("give --allow-downgrade"), "{down:?}");
    let allowed = admin.run(&["release", "kalone@1.0.0", "--to", "Development", "--allow-downgrade", "--wait"]).await;
    assert_eq!(allowed.code, 0, "{allowed:?}");
}
