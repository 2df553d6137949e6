//! What only the PostgreSQL store has: an index that guards saves, and its
//! answers when the server is unreachable, goes away, restarts, or runs out
//! of connections.

use super::*;
use hotswap::store::postgres::{PgPoolSettings, PgStore};
use hotswap_actors::store::{NodeStore, RunStore, Store};

/// The partial unique index also guards saves: a manual rollback of an
/// old run cannot start while another run holds the module. (The memory
/// store does not check saves.)
#[actix::test]
async fn save_that_would_take_a_held_module_is_refused() {
    let Some(db) = support::TestDb::migrated("postgres_only::save_that_would_take_a_held_module_is_refused").await
    else {
        return;
    };
    let store = db.store().await;
    let t = tenant();
    let old = run(t, "kmod-rb", at(0, 0), RunStatus::Succeeded);
    store.create_run(&old, &[]).await.unwrap();
    let current = run(t, "kmod-rb", at(1, 0), RunStatus::Running);
    store.create_run(&current, &[]).await.unwrap();
    let mut rollback = old.clone();
    rollback.revision = 2;
    rollback.rollback = Some(rollback_in_progress(1, at(2, 0)));
    assert_busy(
        store.save_run(&rollback, &[event(&old, "RollbackRequested", 0)]).await,
        "kmod-rb",
        current.execution_id,
    );
    assert_eq!(store.get_run(t, old.execution_id).await.unwrap(), Some(old.clone()));
    assert!(store.run_events(t, old.execution_id).await.unwrap().is_empty());
}

/// Saves that arrive together commit together: thirty saves of thirty runs,
/// all queued before the writer takes its first group, are written in one
/// transaction (`grouped_saves`). A group whose transaction fails is saved
/// again one by one: here one save would take a held module, which fails
/// the group's update, and only that save is refused.
#[actix::test]
async fn saves_arriving_together_commit_together() {
    let Some(db) = support::TestDb::migrated("postgres_only::saves_arriving_together_commit_together").await else {
        return;
    };
    let store = db.store().await;
    let t = tenant();
    // A finished run of the first module, stored before the module is taken again.
    let old = run(t, "kmod-together-0", at(-1, 0), RunStatus::Succeeded);
    store.create_run(&old, &[]).await.unwrap();
    let mut runs = Vec::new();
    for i in 0..30 {
        let r = run(t, &format!("kmod-together-{i}"), at(i, 0), RunStatus::Running);
        store.create_run(&r, &[]).await.unwrap();
        runs.push(r);
    }
    let next = |r: &RunRecord| RunRecord { revision: r.revision + 1, message: "saved together".into(), ..r.clone() };
    let before = store.grouped_saves();
    let saves: Vec<RunRecord> = runs.iter().map(next).collect();
    let events: Vec<[RunEvent; 1]> = saves.iter().map(|r| [event(r, "Saved", 1)]).collect();
    let answers = futures::future::join_all(saves.iter().zip(&events).map(|(r, e)| store.save_run(r, e))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let after = store.grouped_saves();
    assert_eq!(after.saves - before.saves, 30, "{after:?}");
    assert_eq!(after.transactions - before.transactions, 1, "thirty saves in one transaction: {after:?}");

    // The finished run rolled back while runs[0] holds its module: its
    // save fails the group's update.
    let mut rollback = next(&old);
    rollback.rollback = Some(rollback_in_progress(1, at(2, 0)));
    let mut group: Vec<RunRecord> = saves[1..].iter().map(next).collect();
    group.push(rollback);
    let answers = futures::future::join_all(group.iter().map(|r| store.save_run(r, &[]))).await;
    let (refused, saved) = answers.split_last().unwrap();
    assert!(saved.iter().all(Result::is_ok), "{saved:?}");
    assert_busy(refused.clone(), "kmod-together-0", runs[0].execution_id);
    for r in &group[..group.len() - 1] {
        assert_eq!(store.get_run(t, r.execution_id).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.get_run(t, old.execution_id).await.unwrap(), Some(old));
}

/// Lease renewals and grouped saves lock the same runs' rows. Both lock them
/// in key order, so neither ever waits for the other in a cycle; PostgreSQL
/// would break such a deadlock after `deadlock_timeout` by failing one of
/// them: a renewal refused, or a group written again save by save (more
/// transactions than groups).
#[actix::test]
async fn renewals_and_grouped_saves_never_deadlock() {
    use hotswap_actors::domain::RunOwner;
    use hotswap_actors::store::LeaseStore;
    const RUNS: usize = 120;
    const ROUNDS: usize = 12;
    let Some(db) = support::TestDb::migrated("postgres_only::renewals_and_grouped_saves_never_deadlock").await else {
        return;
    };
    let store = db.store().await;
    let t = tenant();
    for i in 0..RUNS {
        store
            .create_run(&run(t, &format!("kmod-renewed-{i}"), at(i as i64, 0), RunStatus::Running), &[])
            .await
            .unwrap();
    }
    let claimed = store.claim_runs("instance-a", RUNS as u32).await.unwrap();
    assert_eq!(claimed.len(), RUNS);
    let mut runs = Vec::new();
    for claim in &claimed {
        let mut r = store.get_run(t, claim.execution_id).await.unwrap().unwrap();
        assert_eq!(r.owner, Some(RunOwner { instance: "instance-a".into(), epoch: claim.epoch }));
        r.message = "claimed".into();
        runs.push(r);
    }
    let before = store.grouped_saves();
    for round in 0..ROUNDS {
        let next: Vec<RunRecord> = runs
            .iter()
            .map(|r| RunRecord { revision: r.revision + 1, message: format!("round {round}"), ..r.clone() })
            .collect();
        let saves = futures::future::join_all(next.iter().map(|r| store.save_run(r, &[])));
        let renewals = async {
            let mut renewed = Vec::new();
            for _ in 0..4 {
                renewed.push(store.renew_runs("instance-a").await);
            }
            renewed
        };
        let (saved, renewed) = futures::join!(saves, renewals);
        assert!(saved.iter().all(Result::is_ok), "round {round}: {saved:?}");
        for renewal in renewed {
            match renewal {
                Ok(ids) => assert_eq!(ids.len(), RUNS, "round {round}"),
                Err(e) => panic!("round {round}: a renewal failed: {e}"),
            }
        }
        runs = next;
    }
    let after = store.grouped_saves();
    assert_eq!(after.saves - before.saves, (RUNS * ROUNDS) as u64);
    assert_eq!(after.transactions - before.transactions, ROUNDS as u64, "one group per round: {after:?}");
}

#[actix::test]
async fn unreachable_server_is_unavailable_and_the_password_stays_secret() {
    let settings = PgPoolSettings { connect_timeout: std::time::Duration::from_millis(500), ..Default::default() };
    // Port 1 on loopback: nothing listens there.
    match PgStore::connect("postgres://hotswap:s3cr3t-pw@127.0.0.1:1/hotswap", &settings).await {
        Err(StoreError::Unavailable(m)) => assert!(!m.contains("s3cr3t-pw"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[actix::test]
async fn a_database_that_goes_away_makes_the_store_unavailable() {
    let Some(db) =
        support::TestDb::migrated("postgres_only::a_database_that_goes_away_makes_the_store_unavailable").await
    else {
        return;
    };
    let settings = PgPoolSettings { connect_timeout: std::time::Duration::from_secs(2), ..Default::default() };
    let store = PgStore::connect(&db.url, &settings).await.unwrap();
    let r = run(tenant(), "kmod-gone", at(0, 0), RunStatus::Running);
    store.create_run(&r, &[]).await.unwrap();
    // Kills the pooled connections too.
    db.drop_now();
    for _ in 0..3 {
        match store.get_run(r.tenant_id, r.execution_id).await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
}

/// What a server restart does to pooled connections: the pool replaces
/// them; a connection reused within a second may fail one call first.
#[actix::test]
async fn terminated_connections_are_replaced() {
    let Some(db) = support::TestDb::migrated("postgres_only::terminated_connections_are_replaced").await else {
        return;
    };
    let store = db.store().await;
    let r = run(tenant(), "kmod-restart", at(0, 0), RunStatus::Running);
    store.create_run(&r, &[]).await.unwrap();
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    // A connection handed out again within a second of its last use is not
    // tested first (pool.rs), so a call may meet a connection whose server
    // process is just ending: it answers Unavailable (which every caller
    // retries), that connection is dropped, and the next call gets a fresh
    // one. Never another error; one failed call per pooled connection at most.
    let (max_size, _, _) = store.pool_use();
    let mut unavailable = 0;
    loop {
        match store.get_run(r.tenant_id, r.execution_id).await {
            Ok(found) => {
                assert_eq!(found, Some(r.clone()));
                break;
            }
            Err(StoreError::Unavailable(_)) => unavailable += 1,
            Err(other) => panic!("a terminated connection must read as Unavailable, got {other:?}"),
        }
        assert!(unavailable <= max_size, "{unavailable} failed calls with a pool of {max_size}");
    }
    for _ in 0..3 {
        assert_eq!(store.get_run(r.tenant_id, r.execution_id).await.unwrap(), Some(r.clone()));
    }
}

#[actix::test]
async fn pool_exhaustion_is_unavailable() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

    let Some(db) = support::TestDb::migrated("postgres_only::pool_exhaustion_is_unavailable").await else {
        return;
    };
    let settings =
        PgPoolSettings { max_size: 1, wait_timeout: std::time::Duration::from_millis(200), ..Default::default() };
    let store = PgStore::connect(&db.url, &settings).await.unwrap();
    let t = tenant();
    let n = node(t, "busy", Environment::Qa);
    store.register_node(&n).await.unwrap();

    // Another session locks the node, so that a write to it holds the
    // pool's only connection until that session commits.
    let mut other = AsyncPgConnection::establish(&db.url).await.unwrap();
    other
        .batch_execute(&format!("BEGIN; SELECT 1 FROM nodes WHERE node_id = '{}' FOR UPDATE", n.node_id))
        .await
        .unwrap();
    let writer = store.clone();
    let blocked = actix::spawn(async move { writer.set_module_slots(t, n.node_id, "kmod-p", &slots("1.0")).await });
    actix::clock::sleep(std::time::Duration::from_millis(300)).await;

    match store.ping().await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable while the pool is exhausted, got {other:?}"),
    }
    other.batch_execute("COMMIT").await.unwrap();
    blocked.await.unwrap().unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.module_slots(t, &[n.node_id], "kmod-p").await.unwrap(), vec![slots("1.0")]);
}

/// A statement stuck behind a lock is cancelled by the pool's
/// `statement_timeout` and answered Unavailable (which callers retry),
/// instead of holding its caller for as long as the lock lasts.
#[actix::test]
async fn a_statement_stuck_behind_a_lock_times_out_as_unavailable() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let Some(db) =
        support::TestDb::migrated("postgres_only::a_statement_stuck_behind_a_lock_times_out_as_unavailable").await
    else {
        return;
    };
    let settings = PgPoolSettings { statement_timeout: std::time::Duration::from_millis(300), ..Default::default() };
    let store = PgStore::connect(&db.url, &settings).await.unwrap();
    let t = tenant();
    let stored = run(t, "kmod-lock", at(0, 0), RunStatus::Running);
    store.create_run(&stored, &[]).await.unwrap();

    // Another session holds the runs table until it is dropped.
    let mut locker = AsyncPgConnection::establish(&db.url).await.unwrap();
    locker.batch_execute("BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE").await.unwrap();

    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), store.get_run(t, stored.execution_id))
        .await
        .expect("the read waited for the lock instead of timing out");
    assert!(matches!(answer, Err(StoreError::Unavailable(_))), "{answer:?}");
    drop(locker);
}

/// A save that changes only what a step changes (the record, its revision)
/// updates the run's row in place (a heap-only tuple, which adds no index
/// entries): no index of `runs` reads `record`, and its pages keep room. The
/// owner's instance, which lease renewal looks runs up by, follows the record.
#[actix::test]
async fn a_runs_save_updates_its_row_in_place() {
    use diesel::sql_types::{BigInt, Nullable, Text};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
    use hotswap_actors::store::LeaseStore;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    #[derive(diesel::QueryableByName)]
    struct Owner {
        #[diesel(sql_type = Nullable<Text>)]
        owner_instance: Option<String>,
    }

    let Some(db) = support::TestDb::migrated("postgres_only::a_runs_save_updates_its_row_in_place").await else {
        return;
    };
    let store = db.store().await;
    let t = tenant();
    let r = run(t, "kmod-in-place", at(0, 0), RunStatus::Running);
    store.create_run(&r, &[]).await.unwrap();
    assert_eq!(store.claim_runs("instance-a", 10).await.unwrap().len(), 1);

    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let owner: Owner =
        diesel::sql_query(format!("SELECT owner_instance FROM runs WHERE execution_id = '{}'", r.execution_id))
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(owner.owner_instance.as_deref(), Some("instance-a"));

    // What a step's save writes, each in its own transaction as saves are;
    // then this session's counts are handed to the statistics at once.
    for step in 0..5 {
        conn.batch_execute(&format!(
            "UPDATE runs SET record = jsonb_set(record, '{{message}}', to_jsonb('step {step}'::text)), \
             revision = revision + 1, saved_at = now() WHERE execution_id = '{}'",
            r.execution_id
        ))
        .await
        .unwrap();
    }
    conn.batch_execute("SELECT pg_stat_force_next_flush()").await.unwrap();
    let hot: Count = diesel::sql_query("SELECT n_tup_hot_upd AS n FROM pg_stat_user_tables WHERE relname = 'runs'")
        .get_result(&mut conn)
        .await
        .unwrap();
    // A page holds several versions of this row; one save may still move it
    // to a new page when its page filled before PostgreSQL pruned the dead
    // versions (which a busy machine can delay), and the new page has room.
    // With an index on `record` none of the five is a heap-only update.
    assert!(hot.n >= 4, "saves of the record alone are heap-only updates: {} of 5", hot.n);
}
