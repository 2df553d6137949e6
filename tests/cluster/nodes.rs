//! Node views across instances: a run one instance drives changes nodes
//! that the other instance's cluster view shows at once.

use std::time::Duration;

use super::*;

#[actix_web::test]
async fn the_other_instance_shows_the_versions_a_run_installed() {
    let Some(db) = TestDb::migrated("cluster::the_other_instance_shows_the_versions_a_run_installed").await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    // Both up before the runs: b's node actors never see what a's runs do.
    let a = instance(&db, "a", logs.path(), &[]).await;
    let b = instance(&db, "b", logs.path(), &[]).await;
    assert!(b.versions("Development", "kmod-view").await.iter().all(Option::is_none));

    for version in ["1.0.0", "1.1.0"] {
        let id = create(&a, &deployment("kmod-view", version, "Development")).await;
        let run = a.finished(&id, Duration::from_secs(60)).await;
        assert_eq!((run["status"].as_str(), run["ownerInstance"].as_str()), (Some("Succeeded"), Some("a")), "{run:#}");
        let on_a = a.versions("Development", "kmod-view").await;
        let on_b = b.versions("Development", "kmod-view").await;
        assert!(!on_a.is_empty(), "Development has nodes");
        assert!(on_a.iter().all(|v| v.as_deref() == Some(version)), "instance a: {on_a:?}");
        assert_eq!(on_b, on_a, "instance b shows what a's run installed");
        // The filter reads the same view.
        let (status, filtered) =
            b.get(&format!("/api/v1/clusters/Development?module=kmod-view&version={version}")).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{filtered}");
        assert_eq!(filtered["nodes"].as_array().unwrap().len(), on_a.len(), "{filtered:#}");
    }
}
