//! Message bus throughput and latency: publish → consume → ack, for the
//! memory and JetStream back-ends beside raw NATS core publish/subscribe and
//! raw JetStream (publish, pull, double ack), all in one run so that the
//! ratios compare like with like on a shared, noisy machine.
//!
//! `HOTSWAP_BENCH_NATS_URL` (default nats://127.0.0.1:4222); `HOTSWAP_BENCH_MESSAGES`
//! (default 2000: the JetStream pair); `HOTSWAP_BENCH_FAST_MESSAGES` (default ten
//! times that: the core and memory pair, which run a hundred times faster, so
//! that their window is not a few milliseconds of start-up); `HOTSWAP_BENCH_ROWS`
//! (a comma list of core, memory, raw-jetstream, raw-jetstream-2, jetstream;
//! default all). raw-jetstream-2 stores a second message per publish in a
//! stream of its own, as the back-end stores its message record beside the
//! delivery copy: not a goal's baseline, a measure of what that layout costs.
//! Prints messages/s and p99 end-to-end latency per row and the two ratios
//! the issue sets goals for.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark: a panic is a failed run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use hotswap::messaging::jetstream::{JetStreamConfig, JetStreamMessageStore};
use hotswap_actors::messaging::{
    consume, MemoryMessageStore, NewMessage, NewSubscription, NewTopic, RetryPolicy, SharedMessageStore,
    SubscriptionKind,
};
use uuid::Uuid;

// The server's allocator (src/main.rs), so that the bus's allocations cost here what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Row {
    name: &'static str,
    per_second: f64,
    p99: Duration,
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

fn stamp(start: Instant) -> String {
    start.elapsed().as_nanos().to_string()
}

fn since(start: Instant, payload: &[u8]) -> Duration {
    let sent: u64 = std::str::from_utf8(payload).unwrap().parse().unwrap();
    start.elapsed().saturating_sub(Duration::from_nanos(sent))
}

async fn raw_core(url: &str, n: usize) -> Row {
    let client = async_nats::connect(url).await.unwrap();
    let subject = format!("bench.core.{}", Uuid::new_v4().simple());
    let mut sub = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let start = Instant::now();
    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                client.publish(subject.clone(), stamp(start).into()).await.unwrap();
            }
            client.flush().await.unwrap();
        })
    };
    // Core NATS delivers at most once: a subscriber that falls behind loses
    // messages (the server drops them for a slow consumer), so the row
    // counts what arrived until a second passed without any, and its rate
    // is that count over the time to the last one.
    let mut latencies = Vec::with_capacity(n);
    let mut last = start.elapsed();
    while latencies.len() < n {
        match tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
            Ok(Some(m)) => {
                latencies.push(since(start, &m.payload));
                last = start.elapsed();
            }
            Ok(None) | Err(_) => break,
        }
    }
    publisher.await.unwrap();
    if latencies.len() < n {
        println!(
            "raw NATS core: {} of {n} messages arrived (the rest were dropped as to a slow consumer)",
            latencies.len()
        );
    }
    let per_second = latencies.len() as f64 / last.as_secs_f64();
    Row { name: "raw NATS core pub/sub", per_second, p99: p99(latencies) }
}

/// Raw JetStream: publish (each publish also storing a second message in a
/// stream of its own when `records` is set, as the back-end stores its
/// message record beside the delivery copy), pull, double ack.
async fn raw_jetstream(url: &str, n: usize, records: bool) -> Row {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let name = format!("BENCH_{}", Uuid::new_v4().simple());
    let subject = format!("bench.js.{}", Uuid::new_v4().simple());
    let s = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .unwrap();
    let records_stream = format!("BENCH_{}", Uuid::new_v4().simple());
    let records_subject = format!("bench.records.{}", Uuid::new_v4().simple());
    if records {
        js.create_stream(stream::Config {
            name: records_stream.clone(),
            subjects: vec![format!("{records_subject}.*")],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        s.create_consumer(pull::Config { durable_name: Some("c".into()), ..Default::default() }).await.unwrap();
    let start = Instant::now();
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for i in 0..n {
                let copy = js.publish(subject.clone(), stamp(start).into()).await.unwrap();
                if records {
                    let record = js.publish(format!("{records_subject}.{i}"), stamp(start).into()).await.unwrap();
                    let (copy, record) = tokio::join!(
                        std::future::IntoFuture::into_future(copy),
                        std::future::IntoFuture::into_future(record)
                    );
                    copy.unwrap();
                    record.unwrap();
                } else {
                    copy.await.unwrap();
                }
            }
        })
    };
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let mut batch = consumer.fetch().max_messages(100).messages().await.unwrap();
        let mut got = 0;
        while let Some(m) = batch.try_next().await.unwrap() {
            m.double_ack().await.unwrap();
            latencies.push(since(start, &m.payload));
            got += 1;
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    publisher.await.unwrap();
    let per_second = n as f64 / start.elapsed().as_secs_f64();
    js.delete_stream(&name).await.unwrap();
    if records {
        js.delete_stream(&records_stream).await.unwrap();
    }
    let name = if records { "raw JetStream, 2 stored per publish" } else { "raw JetStream publish/pull/ack" };
    Row { name, per_second, p99: p99(latencies) }
}

async fn bus(name: &'static str, store: SharedMessageStore, n: usize) -> Row {
    let tenant = Uuid::new_v4();
    store.create_topic(tenant, NewTopic::fan_out("bench"), Utc::now()).await.unwrap();
    let spec = NewSubscription {
        topic_name: "bench".into(),
        consumer_group: "g".into(),
        consumer_endpoint: "pull".into(),
        kind: SubscriptionKind::Pull,
        filter: None,
        max_retries: 3,
        ack_timeout: Duration::from_secs(30),
    };
    let sub = store.create_subscription(tenant, spec, Utc::now()).await.unwrap().subscription_id;
    let start = Instant::now();
    let publisher = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                store.publish(tenant, NewMessage::new("bench", &stamp(start)), Utc::now()).await.unwrap();
            }
        })
    };
    // The consumer waits as the consume route's long-poll does (woken by
    // the bus when a message arrives) rather than sleeping a fixed
    // millisecond whenever it finds nothing: the path the route's clients take.
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let got = consume(store.as_ref(), tenant, sub, 100, Duration::from_secs(5)).await.unwrap();
        for d in got {
            store.ack(tenant, sub, &d.message.message_id, Utc::now()).await.unwrap();
            latencies.push(since(start, d.message.payload.as_bytes()));
        }
    }
    publisher.await.unwrap();
    Row { name, per_second: n as f64 / start.elapsed().as_secs_f64(), p99: p99(latencies) }
}

async fn remove_prefix(url: &str, prefix: &str) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    for name in
        names.into_iter().filter(|n| n.starts_with(&format!("{prefix}_")) || *n == format!("KV_{prefix}_MESSAGING"))
    {
        js.delete_stream(&name).await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The server's memory settings (`hotswap serve`): no transparent huge pages.
    hotswap::huge_pages::opt_out().expect("set the process's transparent huge pages flag");
    let url = std::env::var("HOTSWAP_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let count = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0);
    let n = count("HOTSWAP_BENCH_MESSAGES").unwrap_or(2000);
    let fast = count("HOTSWAP_BENCH_FAST_MESSAGES").unwrap_or(n * 10);
    let retry = RetryPolicy::default();
    let memory: SharedMessageStore = Arc::new(MemoryMessageStore::new(retry, Duration::from_secs(24 * 3600)));
    let prefix = format!("B{}", &Uuid::new_v4().simple().to_string()[..12]);
    let config = JetStreamConfig {
        url: url.clone(),
        prefix: prefix.clone(),
        retry,
        idempotency_window: Duration::from_secs(24 * 3600),
        owner_lease: Duration::from_secs(5),
    };
    let on_jetstream: SharedMessageStore = Arc::new(JetStreamMessageStore::connect(config).await.unwrap());
    // HOTSWAP_BENCH_ROWS=memory (or any comma list of core, memory,
    // raw-jetstream, raw-jetstream-2, jetstream) runs only those rows: for a profiler.
    let only = std::env::var("HOTSWAP_BENCH_ROWS").ok();
    let wanted = |row: &str| only.as_deref().is_none_or(|list| list.split(',').any(|r| r.trim() == row));
    let mut rows = Vec::new();
    if wanted("core") {
        rows.push(raw_core(&url, fast).await);
    }
    if wanted("memory") {
        rows.push(bus("memory back-end", memory, fast).await);
    }
    if wanted("raw-jetstream") {
        rows.push(raw_jetstream(&url, n, false).await);
    }
    if wanted("raw-jetstream-2") {
        rows.push(raw_jetstream(&url, n, true).await);
    }
    if wanted("jetstream") {
        rows.push(bus("jetstream back-end", on_jetstream, n).await);
    }
    remove_prefix(&url, &prefix).await;
    println!("publish -> consume -> ack: {fast} messages for raw NATS core and the memory back-end, {n} for the JetStream rows");
    for r in &rows {
        println!("{:<34} {:>10.0} msg/s   p99 {:>8.2} ms", r.name, r.per_second, r.p99.as_secs_f64() * 1000.0);
    }
    let rate = |name: &str| rows.iter().find(|r| r.name.starts_with(name)).map(|r| r.per_second);
    if let (Some(memory), Some(core)) = (rate("memory"), rate("raw NATS core")) {
        println!("memory back-end / raw NATS core:   {:.0} % (goal >= 50 %)", 100.0 * memory / core);
    }
    if let (Some(bus), Some(raw)) = (rate("jetstream back-end"), rate("raw JetStream publish")) {
        println!("jetstream back-end / raw JetStream: {:.0} % (goal >= 70 %)", 100.0 * bus / raw);
    }
    // Not a goal: how near the back-end comes to raw JetStream doing the
    // same two stores per publish, which tells its layout's cost from its own.
    if let (Some(bus), Some(raw2)) = (rate("jetstream back-end"), rate("raw JetStream, 2")) {
        println!("jetstream back-end / raw JetStream with 2 stored per publish: {:.0} %", 100.0 * bus / raw2);
    }
}
