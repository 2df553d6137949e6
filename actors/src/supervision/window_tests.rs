//! The supervisor keeps a bounded window of escalated children.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;

use super::*;
use crate::settings::RestartPolicy;

/// A child whose every incarnation fails at once: with no restarts allowed
/// it is escalated on its first failure.
fn failing_child(id: String) -> ChildSpec {
    ChildSpec {
        id,
        kind: ActorKind::Coordinator,
        tenant: None,
        start: Arc::new(|mut guard: ExitGuard| {
            guard.fail("fails on start (test)");
            drop(guard);
        }),
        on_escalate: None,
        control: None,
    }
}

/// The tree once `count` children have escalated (or after ten seconds).
async fn after_escalations(supervisor: &actix::Addr<Supervisor>, count: u64) -> SupervisorSnapshot {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tree = supervisor.send(GetTree).await.unwrap();
        if tree.total_escalations == count || std::time::Instant::now() > deadline {
            return tree;
        }
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
}

#[actix::test]
async fn only_the_newest_escalated_children_stay_listed() {
    let policy = RestartPolicy { max_restarts: 0, within: Duration::from_secs(60), ..RestartPolicy::default() };
    let supervisor = Supervisor::new("runs", [(ActorKind::Coordinator, policy)]).with_failed_window(3).start();
    for i in 0..10 {
        supervisor.do_send(StartChild(failing_child(format!("run:{i}"))));
    }
    // Each failure is one more message to the supervisor: poll until the last is in.
    let tree = after_escalations(&supervisor, 10).await;
    assert_eq!(tree.total_escalations, 10, "every child escalated");
    let ids: Vec<&str> = tree.children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["run:7", "run:8", "run:9"], "the window keeps the three newest");
    assert!(tree.children.iter().all(|c| c.state == ChildState::Failed));
}

#[actix::test]
async fn a_live_child_is_never_dropped_for_the_window() {
    let policy = RestartPolicy { max_restarts: 0, within: Duration::from_secs(60), ..RestartPolicy::default() };
    let supervisor = Supervisor::new("runs", [(ActorKind::Coordinator, policy)]).with_failed_window(1).start();
    // Holds its guard: it runs for the whole test.
    let held = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = held.clone();
    supervisor.do_send(StartChild(ChildSpec {
        id: "run:live".into(),
        kind: ActorKind::Coordinator,
        tenant: None,
        start: Arc::new(move |guard| keep.lock().push(guard)),
        on_escalate: None,
        control: None,
    }));
    for i in 0..3 {
        supervisor.do_send(StartChild(failing_child(format!("run:{i}"))));
    }
    let tree = after_escalations(&supervisor, 3).await;
    let ids: Vec<&str> = tree.children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["run:2", "run:live"]);
    assert_eq!(held.lock().len(), 1);
}
