//! Two installations (each its own database) that share one Redis and one
//! key prefix never hear each other: a client of one does not see the other's
//! runs (nor would its agents, sessions or limits cross).

use std::time::Duration;

use crate::live::{create_run, Watcher};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::TestDb;

/// An instance of its own installation on `db`, with Redis under `prefix`.
async fn installation(db: &TestDb, prefix: &str, logs: &std::path::Path, name: &str) -> Server {
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__REDIS__URL", "redis://127.0.0.1:6379".to_string()),
        ("HOTSWAP__REDIS__KEY_PREFIX", prefix.to_string()),
        ("HOTSWAP__CLUSTER__INSTANCE_ID", name.to_string()),
    ];
    Server::start(free_port(), &vars, logs.join(format!("{name}.log"))).await
}

#[actix_web::test]
async fn installations_sharing_a_redis_and_its_prefix_do_not_hear_each_other() {
    let Some(first_db) = TestDb::migrated("redis_installation_one").await else { return };
    let Some(second_db) = TestDb::migrated("redis_installation_two").await else { return };
    let logs = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let one = installation(&first_db, &prefix, logs.path(), "one").await;
    let two = installation(&second_db, &prefix, logs.path(), "two").await;
    let (on_one, on_two) = (Watcher::connect(&one).await, Watcher::connect(&two).await);

    let theirs = create_run(&one, "kmod-installation-one").await;
    assert_eq!(one.finished(&theirs, Duration::from_secs(60)).await["status"], "Succeeded");
    eventually(Duration::from_secs(10), "the first installation's client heard its run end", async || {
        on_one.heard_end(&theirs)
    })
    .await;
    // The second installation's channel works: its client hears its own run.
    let ours = create_run(&two, "kmod-installation-two").await;
    assert_eq!(two.finished(&ours, Duration::from_secs(60)).await["status"], "Succeeded");
    eventually(Duration::from_secs(10), "the second installation's client heard its run end", async || {
        on_two.heard_end(&ours)
    })
    .await;
    assert!(
        on_two.of_run(&theirs).is_empty(),
        "a client of one installation heard another's run: {:#?}",
        on_two.of_run(&theirs)
    );
    assert!(on_one.of_run(&ours).is_empty(), "{:#?}", on_one.of_run(&ours));
}
