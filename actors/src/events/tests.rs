use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use futures::StreamExt;
use uuid::Uuid;

use super::*;
use crate::domain::{DeploymentRequest, Environment, RunRecord, TenantId};
use crate::store::RunEvent;

fn run(tenant: TenantId) -> Arc<RunRecord> {
    let request = DeploymentRequest {
        module_name: "kmod".into(),
        version: "1.0.0".into(),
        target_environment: Environment::Development,
        requester_email: "a@b.io".into(),
        description: None,
        require_approval: false,
        metadata: Default::default(),
        strategy: None,
        canary_steps: None,
    };
    Arc::new(RunRecord::admitted(tenant, Uuid::new_v4(), request))
}

fn publish(run: &Arc<RunRecord>, kinds: &[&str]) -> Publish {
    let events = kinds
        .iter()
        .map(|k| RunEvent {
            tenant_id: run.tenant_id,
            execution_id: run.execution_id,
            at: Utc::now(),
            kind: k.to_string(),
            message: String::new(),
            data: serde_json::Value::Null,
        })
        .collect();
    Publish { run: run.clone(), events }
}

async fn next_kind(feed: &mut Feed) -> Option<String> {
    tokio::time::timeout(Duration::from_millis(200), feed.next()).await.ok().flatten().map(|e| e.event.kind.clone())
}

#[actix::test]
async fn feeds_get_their_tenants_watched_runs_in_order() {
    let stats = Arc::new(BusStats::default());
    let bus = EventBus::new(stats.clone()).start();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (sub_all, mut all) = open_feed(a, 16, stats.clone());
    let (sub_one, mut one) = open_feed(a, 16, stats.clone());
    let (sub_other, mut other_tenant) = open_feed(b, 16, stats.clone());
    for s in [sub_all, sub_one, sub_other] {
        bus.do_send(s);
    }
    let (run1, run2) = (run(a), run(a));
    bus.do_send(Watch(all.id(), Topic::All));
    bus.do_send(Watch(one.id(), Topic::Run(run2.execution_id)));
    bus.do_send(Watch(other_tenant.id(), Topic::All));
    bus.do_send(publish(&run1, &["A1", "A2"]));
    bus.do_send(publish(&run2, &["B1"]));
    bus.do_send(publish(&run1, &["A3"]));
    for kind in ["A1", "A2", "B1", "A3"] {
        assert_eq!(next_kind(&mut all).await.as_deref(), Some(kind));
    }
    assert_eq!(next_kind(&mut one).await.as_deref(), Some("B1"));
    assert_eq!(next_kind(&mut one).await, None);
    // Another tenant sees nothing, even subscribed to all.
    assert_eq!(next_kind(&mut other_tenant).await, None);
    assert_eq!(stats.subscribers.load(std::sync::atomic::Ordering::Relaxed), 3);
    bus.do_send(Unwatch(all.id(), Topic::All));
    bus.do_send(publish(&run1, &["A4"]));
    assert_eq!(next_kind(&mut all).await, None);
}

#[actix::test]
async fn a_full_feed_is_cut_off_without_holding_others_up() {
    let stats = Arc::new(BusStats::default());
    let bus = EventBus::new(stats.clone()).start();
    let tenant = Uuid::new_v4();
    let (slow_sub, mut slow) = open_feed(tenant, 2, stats.clone());
    let (fast_sub, mut fast) = open_feed(tenant, 16, stats.clone());
    bus.do_send(slow_sub);
    bus.do_send(fast_sub);
    bus.do_send(Watch(slow.id(), Topic::All));
    bus.do_send(Watch(fast.id(), Topic::All));
    let r = run(tenant);
    bus.do_send(publish(&r, &["1", "2", "3", "4"]));
    bus.do_send(publish(&r, &["5"]));
    for kind in ["1", "2", "3", "4", "5"] {
        assert_eq!(next_kind(&mut fast).await.as_deref(), Some(kind));
    }
    assert!(slow.overflowed());
    assert_eq!(slow.end(), FeedEnd::Overflowed);
    // What it held is still readable, then the feed ends: no gap is papered over.
    assert_eq!(next_kind(&mut slow).await.as_deref(), Some("1"));
    assert_eq!(next_kind(&mut slow).await.as_deref(), Some("2"));
    assert!(tokio::time::timeout(Duration::from_millis(200), slow.next()).await.unwrap().is_none());
    assert_eq!(stats.overflows.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.subscribers.load(std::sync::atomic::Ordering::Relaxed), 1);
    drop(slow);
    assert_eq!(stats.queued.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn memo_computes_once_per_slot_and_type() {
    let r = run(Uuid::new_v4());
    let e = BusEvent::new(publish(&r, &["X"]).events.remove(0), r);
    let mut calls = 0;
    assert_eq!(
        e.memo(0, |_| {
            calls += 1;
            7u32
        }),
        Some(&7)
    );
    assert_eq!(
        e.memo(0, |_| {
            calls += 1;
            8u32
        }),
        Some(&7)
    );
    assert_eq!(calls, 1);
    assert_eq!(e.memo(0, |_| "other type"), None);
    assert_eq!(e.memo(99, |_| 1u8), None);
}
