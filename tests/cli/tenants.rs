//! `hotswap tenants` and `--tenant`: the system tenant's Admin creates a
//! tenant, acts for it (its runs and clusters, not the Admin's own),
//! suspends and activates it, changes its tier and deletes it; a Deployer
//! may do none of it.

use crate::harness::{Operator, Server, ADMIN, DEPLOYER};

#[actix_web::test]
async fn the_system_admin_runs_a_tenant_s_lifecycle_and_acts_for_it() {
    let server = Server::start().await;
    let admin = Operator::logged_in(&server, ADMIN).await;

    let made =
        admin.run(&["tenants", "create", "Acme Corp", "--subdomain", "acme", "--email", "ops@acme.example"]).await;
    assert_eq!(made.code, 0, "{made:?}");
    assert!(made.stdout.starts_with("created tenant acme (Free, Active): id "), "{made:?}");
    let id = made.stdout.trim().rsplit(' ').next().unwrap().to_string();
    let listed = admin.run(&["tenants"]).await;
    assert!(
        listed.stdout.lines().any(|l| l.starts_with(&id) && l.contains("acme") && l.contains("Active")),
        "{listed:?}"
    );
    let active = admin.run(&["tenants", "--status", "Suspended", "-o", "json"]).await.json();
    assert_eq!(active, serde_json::json!([]));
    // The second page of one: acme, after the system tenant.
    let paged = admin.run(&["tenants", "--page", "2", "--page-size", "1"]).await;
    assert!(paged.stdout.lines().nth(1).is_some_and(|l| l.starts_with(&id)), "{paged:?}");
    assert!(paged.stdout.contains("tenants 2–2 of 2"), "{paged:?}");

    // Its quotas are the Free tier's, nothing used yet.
    let shown = admin.run(&["tenants", "show", "acme"]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.lines().any(|l| l.starts_with("concurrentRuns") && l.contains(" 1 ") && l.ends_with('0')),
        "{shown:?}"
    );

    // Acting for it: its own clusters (the Free tier's two nodes each), and a run there.
    let own = admin.run(&["clusters", "-o", "json"]).await.json();
    let theirs = admin.run(&["--tenant", "acme", "clusters", "-o", "json"]).await.json();
    assert_ne!(own, theirs);
    assert!(theirs.as_array().unwrap().iter().all(|c| c["totalNodes"] == 2), "{theirs}");
    let deployed =
        admin.run(&["--tenant", "acme", "deploy", "netfilter-ext", "1.0.0", "--to", "Development", "--watch"]).await;
    assert_eq!(deployed.code, 0, "{deployed:?}");
    let runs = admin.run(&["--tenant", &id, "runs", "-o", "json"]).await.json();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    let mine = admin.run(&["runs", "-o", "json"]).await.json();
    assert!(mine.as_array().unwrap().iter().all(|r| r["moduleName"] != "netfilter-ext"), "{mine}");
    let unknown = admin.run(&["--tenant", "no-such", "runs"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no tenant has the subdomain 'no-such'"), "{unknown:?}");

    // Suspended, it starts no runs; active again, it does.
    let suspended = admin.run(&["tenants", "suspend", "acme", "--reason", "unpaid invoice"]).await;
    assert_eq!(suspended.code, 0, "{suspended:?}");
    let shown = admin.run(&["tenants", "show", "acme"]).await;
    assert!(shown.stdout.contains("Suspended") && shown.stdout.contains("unpaid invoice"), "{shown:?}");
    let refused = admin.run(&["--tenant", "acme", "deploy", "netfilter-ext", "1.0.1", "--to", "Development"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert_eq!(admin.run(&["tenants", "activate", "acme"]).await.code, 0);
    let tier = admin.run(&["tenants", "tier", "acme", "Starter"]).await;
    assert_eq!(tier.stdout.trim(), "acme is on the Starter tier now; its quotas are the tier's", "{tier:?}");

    // Not for a Deployer, in any form.
    let deployer = Operator::logged_in(&server, DEPLOYER).await;
    let denied = deployer.run(&["--tenant", &id, "runs"]).await;
    assert_eq!(denied.code, 2, "{denied:?}");
    assert_eq!(deployer.run(&["tenants", "suspend", &id]).await.code, 2);

    let deleted = admin.run(&["tenants", "delete", "acme"]).await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    let gone = admin.run(&["tenants", "--status", "Deleted", "-o", "json"]).await.json();
    assert_eq!(gone[0]["tenantId"], id.as_str(), "{gone}");
    // Its deletion, not the suspension it had before.
    let shown = admin.run(&["tenants", "show", &id]).await;
    assert!(shown.stdout.contains("deleted at ") && !shown.stdout.contains("unpaid invoice"), "{shown:?}");
}
