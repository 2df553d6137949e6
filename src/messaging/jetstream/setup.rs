//! The store itself: connecting, loading the metadata cache, and the
//! handles (streams, consumers) its operations share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer, kv, stream};
use chrono::Utc;
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{MessagingError, RetryPolicy};

use super::error::nats_error;
use super::meta::{Counters, Meta, SubEntry, TopicEntry};
use super::names::{keys, Names};
use super::owner::{claim, Ownership};
use super::records::{self, SubscriptionRecord, TopicRecord};
use super::runtime::SubRuntime;

/// Where the back-end finds its server and how it names what it creates.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub url: String,
    /// Letters, digits and `_`; every stream, subject and bucket starts with it.
    pub prefix: String,
    pub retry: RetryPolicy,
    pub idempotency_window: Duration,
    /// How long a process's hold on the prefix lasts without renewal
    /// (renewed every third of it); see `owner.rs`.
    pub owner_lease: Duration,
}

pub struct JetStreamMessageStore {
    pub(super) js: jetstream::Context,
    pub(super) kv: kv::Store,
    pub(super) names: Names,
    pub(super) retry: RetryPolicy,
    pub(super) idempotency_window: Duration,
    pub(super) notify: Arc<Notify>,
    pub(super) meta: Mutex<Meta>,
    pub(super) runtime: Mutex<HashMap<Uuid, SubRuntime>>,
    streams: Mutex<HashMap<String, stream::Stream>>,
    consumers: Mutex<HashMap<String, PullConsumer>>,
    seq: AtomicU64,
    pub(super) ownership: Ownership,
}

/// The metadata bucket. The client's own `create_key_value` first reads
/// account fields that servers before 2.10 do not send, so the bucket's
/// stream is made here with the key-value conventions (`KV_<bucket>`,
/// `$KV.<bucket>.>`, one value per key, rollups, direct gets) and opened
/// as a bucket.
async fn open_bucket(js: &jetstream::Context, bucket: &str) -> Result<kv::Store, MessagingError> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| nats_error(format!("creating bucket {bucket}: {e}")))?;
    js.get_key_value(bucket).await.map_err(|e| nats_error(format!("opening bucket {bucket}: {e}")))
}

/// How long a duplicate publish of one delivery copy (a retried request) is
/// recognised by its `Nats-Msg-Id`; the bus's own idempotency window is in
/// the metadata bucket.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl JetStreamMessageStore {
    /// Connects, makes the bucket and the dead-letter stream when missing,
    /// and loads the topics and subscriptions kept there.
    pub async fn connect(config: JetStreamConfig) -> Result<Self, MessagingError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(config.url.as_str())
            .await
            .map_err(|e| MessagingError::Unavailable(format!("NATS at {}: {e}", config.url)))?;
        let js = jetstream::new(client);
        let names = Names::new(&config.prefix);
        let kv = open_bucket(&js, &names.bucket()).await?;
        let ownership = claim(&kv, &config.prefix, config.owner_lease).await?;
        js.get_or_create_stream(stream::Config {
            name: names.dlq_stream(),
            subjects: vec![names.dlq_subjects()],
            storage: stream::StorageType::File,
            allow_direct: true,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_error(format!("creating the dead-letter stream: {e}")))?;
        let store = JetStreamMessageStore {
            js,
            kv,
            names,
            retry: config.retry,
            idempotency_window: config.idempotency_window,
            notify: Arc::new(Notify::new()),
            meta: Mutex::new(Meta::default()),
            runtime: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            consumers: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            ownership,
        };
        store.load().await?;
        Ok(store)
    }

    async fn load(&self) -> Result<(), MessagingError> {
        let bucket = self.names.bucket();
        let mut meta = Meta::default();
        let mut highest = 0;
        for key in records::keys(&self.kv, &bucket, keys::TOPICS).await? {
            if let Some((r, _)) = records::get::<TopicRecord>(&self.kv, &key).await? {
                let k = (r.topic.tenant_id, r.topic.spec.name.clone());
                meta.topics.insert(k, TopicEntry { topic: r.topic, rr_counter: 0, counters: Counters::default() });
            }
        }
        for key in records::keys(&self.kv, &bucket, keys::SUBSCRIPTIONS).await? {
            if let Some((r, _)) = records::get::<SubscriptionRecord>(&self.kv, &key).await? {
                highest = highest.max(r.created_seq);
                let k = (r.subscription.tenant_id, r.subscription.subscription_id);
                meta.subs.insert(k, SubEntry { record: r, last_assigned: 0 });
            }
        }
        *self.meta.lock() = meta;
        self.seq.fetch_max(highest, Ordering::SeqCst);
        Ok(())
    }

    /// A number above every one handed out before, here or by an earlier
    /// process (the clock in nanoseconds, or one more than the last).
    pub(super) fn next_seq(&self) -> u64 {
        let clock = Utc::now().timestamp_nanos_opt().unwrap_or(0).max(0) as u64;
        let mut prev = self.seq.load(Ordering::SeqCst);
        loop {
            let next = clock.max(prev + 1);
            match self.seq.compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    pub(super) fn stream_config(&self, tenant: TenantId, topic: &str) -> stream::Config {
        stream::Config {
            name: self.names.stream(tenant, topic),
            subjects: vec![self.names.topic_subjects(tenant, topic)],
            // A copy leaves the stream when its consumer acknowledges (or
            // terminates) it, so "still in the stream" means "not done".
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// The topic's stream, cached.
    pub(super) async fn stream(&self, tenant: TenantId, topic: &str) -> Result<stream::Stream, MessagingError> {
        let name = self.names.stream(tenant, topic);
        if let Some(s) = self.streams.lock().get(&name) {
            return Ok(s.clone());
        }
        let s = self.js.get_stream(&name).await.map_err(nats_error)?;
        self.streams.lock().insert(name, s.clone());
        Ok(s)
    }

    pub(super) async fn dlq(&self) -> Result<stream::Stream, MessagingError> {
        let name = self.names.dlq_stream();
        if let Some(s) = self.streams.lock().get(&name) {
            return Ok(s.clone());
        }
        let s = self.js.get_stream(&name).await.map_err(nats_error)?;
        self.streams.lock().insert(name, s.clone());
        Ok(s)
    }

    pub(super) fn forget_stream(&self, tenant: TenantId, topic: &str) {
        self.streams.lock().remove(&self.names.stream(tenant, topic));
    }

    /// A subscription's consumer (one lane of it on Priority topics), cached.
    pub(super) async fn consumer(
        &self,
        tenant: TenantId,
        topic: &str,
        sub: Uuid,
        lane: Option<u8>,
    ) -> Result<PullConsumer, MessagingError> {
        let name = self.names.consumer(sub, lane);
        if let Some(c) = self.consumers.lock().get(&name) {
            return Ok(c.clone());
        }
        let stream = self.stream(tenant, topic).await?;
        let c: PullConsumer = stream.get_consumer(&name).await.map_err(nats_error)?;
        self.consumers.lock().insert(name, c.clone());
        Ok(c)
    }

    pub(super) fn forget_consumers(&self, sub: Uuid) {
        let prefix = self.names.consumer(sub, None);
        self.consumers.lock().retain(|name, _| !name.starts_with(&prefix));
    }
}
