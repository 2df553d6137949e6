//! `cargo bench --bench messaging`: the message bus end to end, publish →
//! consume (long-poll lease) → ack, on each back-end in the same run:
//! messages per second and the p50/p99 latency from the start of a publish
//! to the end of its ack. The memory back-end is the baseline; PostgreSQL
//! (needs HOTSWAP_BENCH_DATABASE_URL or HOTSWAP_TEST_DATABASE_URL; uses a
//! database `hotswap_messaging_bench` it creates and drops) is reported
//! with its ratio to it.
//!
//! Four publishers and two consumers (leases of up to 32, each delivery
//! acked on its own) on one FanOut topic with one subscription.
//! Optional arguments: messages for memory, messages for PostgreSQL
//! (defaults 20000 2000).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotswap_actors::messaging::{
    consume, MemoryMessageStore, NewMessage, NewSubscription, NewTopic, RetryPolicy, SharedMessageStore,
    SubscriptionKind,
};
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PUBLISHERS: usize = 4;
const CONSUMERS: usize = 2;
const LEASE_MAX: usize = 32;
const BENCH_DB: &str = "hotswap_messaging_bench";

struct Figures {
    messages: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// Publishes `n` messages and consumes and acks them all; the payload
/// carries the publish's start (µs since `origin`) for the latency.
async fn publish_consume_ack(store: SharedMessageStore, n: usize) -> Figures {
    let tenant = Uuid::new_v4();
    store.create_topic(tenant, NewTopic::fan_out("bench"), Utc::now()).await.unwrap();
    let spec = NewSubscription {
        topic_name: "bench".into(),
        consumer_group: "bench".into(),
        consumer_endpoint: "pull".into(),
        kind: SubscriptionKind::Pull,
        filter: None,
        max_retries: 3,
        ack_timeout: Duration::from_secs(60),
    };
    let sub = store.create_subscription(tenant, spec, Utc::now()).await.unwrap().subscription_id;
    let origin = Instant::now();
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(n));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (store, remaining) = (store.clone(), remaining.clone());
        consumers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while remaining.load(std::sync::atomic::Ordering::Acquire) > 0 {
                let batch = consume(&*store, tenant, sub, LEASE_MAX, Duration::from_millis(200)).await.unwrap();
                for d in batch {
                    store.ack(tenant, sub, &d.message.message_id, Utc::now()).await.unwrap();
                    let sent: u64 = d.message.payload.parse().unwrap();
                    latencies.push(origin.elapsed().saturating_sub(Duration::from_micros(sent)));
                    remaining.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                }
            }
            latencies
        }));
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let store = store.clone();
        let count = n / PUBLISHERS + usize::from(p < n % PUBLISHERS);
        publishers.push(tokio::spawn(async move {
            for _ in 0..count {
                let sent = origin.elapsed().as_micros().to_string();
                store.publish(tenant, NewMessage::new("bench", &sent), Utc::now()).await.unwrap();
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let mut latencies = Vec::with_capacity(n);
    for c in consumers {
        latencies.extend(c.await.unwrap());
    }
    let elapsed = origin.elapsed();
    assert_eq!(latencies.len(), n, "every message consumed once");
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures { messages: n, elapsed, p50: at(0.50), p99: at(0.99) }
}

fn retry() -> RetryPolicy {
    RetryPolicy { initial: Duration::from_millis(100), multiplier: 2, cap: Duration::from_millis(400) }
}

async fn postgres(n: usize) -> Option<Figures> {
    // Here only: its `load` and `first` would shadow the atomics' and slices' elsewhere.
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let base =
        std::env::var("HOTSWAP_BENCH_DATABASE_URL").or_else(|_| std::env::var("HOTSWAP_TEST_DATABASE_URL")).ok()?;
    let (server, _) = base.rsplit_once('/')?;
    let url = format!("{server}/{BENCH_DB}");
    let mut admin = AsyncPgConnection::establish(&base).await.expect("bench database server");
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    diesel::sql_query(format!("CREATE DATABASE {BENCH_DB}")).execute(&mut admin).await.unwrap();
    hotswap::store::postgres::migrate::run_pending(&url).await.unwrap();
    let store = hotswap::store::postgres::PgMessageStore::connect(
        &url,
        &Default::default(),
        retry(),
        Duration::from_secs(24 * 3600),
    )
    .await
    .unwrap();
    let figures = publish_consume_ack(Arc::new(store), n).await;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    Some(figures)
}

fn row(name: &str, f: &Figures, baseline: &Figures) {
    println!(
        "| {name} | {} | {:.0} | {:.1} | {:.1} | {:.3} |",
        f.messages,
        f.per_second(),
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.per_second() / baseline.per_second(),
    );
}

fn main() {
    // The server's memory settings (`hotswap serve`): no transparent huge pages.
    hotswap::huge_pages::opt_out().expect("set the process's transparent huge pages flag");
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let memory_n = args.first().copied().unwrap_or(20_000);
    let postgres_n = args.get(1).copied().unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let memory =
            publish_consume_ack(Arc::new(MemoryMessageStore::new(retry(), Duration::from_secs(24 * 3600))), memory_n)
                .await;
        println!("| back-end | messages | msgs/s | p50 ms | p99 ms | × memory |");
        println!("|---|---|---|---|---|---|");
        row("memory", &memory, &memory);
        match postgres(postgres_n).await {
            Some(pg) => row("postgres", &pg, &memory),
            None => println!("PostgreSQL: skipped (set HOTSWAP_BENCH_DATABASE_URL or HOTSWAP_TEST_DATABASE_URL)"),
        }
    });
}
