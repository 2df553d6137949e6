//! One HotSwap process per prefix. The JetStream back-end keeps state in the
//! process (the topic and subscription cache, the load-balancing rotation,
//! the metric counters, the leases' ackers), so two processes sharing a
//! prefix would disagree; instead of spreading that state, the process
//! holds the prefix: an `owner` record in the metadata bucket, renewed every
//! third of the lease. A process starting on a held prefix takes it over
//! when the holder is gone (on the same host: its process id no longer
//! runs, or it is this very process, as after a store is reopened; else:
//! its record was not renewed for a lease), waits up to a lease for that,
//! and otherwise refuses to start, naming the holder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, UpdateErrorKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use hotswap_actors::messaging::MessagingError;

use super::error::nats_error;

const KEY: &str = "owner";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OwnerRecord {
    instance: Uuid,
    host: String,
    pid: u32,
    renewed_at: DateTime<Utc>,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn me(instance: Uuid) -> OwnerRecord {
    OwnerRecord { instance, host: host(), pid: std::process::id(), renewed_at: Utc::now() }
}

/// Whether the holder is known to be gone, or is this process.
fn gone(holder: &OwnerRecord, lease: Duration, now: DateTime<Utc>) -> bool {
    let stale = hotswap_actors::messaging::later_by(holder.renewed_at, lease) < now;
    let local = holder.host == host();
    let this_process = local && holder.pid == std::process::id();
    let dead = local
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists();
    stale || this_process || dead
}

/// The prefix, held: renewed by a task until dropped.
pub struct Ownership {
    renewal: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Ownership {
    /// True once another process took the prefix over (this one's renewals
    /// stalled past the lease): logged, and the process should be restarted.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

fn encode(record: &OwnerRecord) -> Result<bytes::Bytes, MessagingError> {
    serde_json::to_vec(record).map(Into::into).map_err(|e| MessagingError::Backend(e.to_string()))
}

/// Takes the prefix (waiting up to `lease` for a gone holder's record to go
/// stale) or refuses with the holder's name.
pub async fn claim(kv: &kv::Store, prefix: &str, lease: Duration) -> Result<Ownership, MessagingError> {
    let instance = Uuid::new_v4();
    let give_up = tokio::time::Instant::now() + lease + lease / 2;
    let revision = loop {
        match kv.create(KEY, encode(&me(instance))?).await {
            Ok(revision) => break revision,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(nats_error(e)),
        }
        let Some(entry) = kv.entry(KEY).await.map_err(nats_error)? else { continue };
        let holder: Option<OwnerRecord> = serde_json::from_slice(&entry.value).ok();
        if holder.as_ref().is_none_or(|h| gone(h, lease, Utc::now())) {
            match kv.update(KEY, encode(&me(instance))?, entry.revision).await {
                Ok(revision) => break revision,
                // Someone else moved first: look again.
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(nats_error(e)),
            }
        }
        if tokio::time::Instant::now() >= give_up {
            let who = holder.map_or_else(|| "unknown".into(), |h| format!("{} pid {}", h.host, h.pid));
            return Err(MessagingError::Unavailable(format!(
                "the JetStream prefix '{prefix}' is held by another HotSwap instance ({who}); \
                 one instance per prefix: give this one a [messaging] nats_prefix of its own"
            )));
        }
        tokio::time::sleep(lease / 4).await;
    };
    let lost = Arc::new(AtomicBool::new(false));
    let renewal = tokio::spawn(renew(kv.clone(), instance, revision, lease, lost.clone()));
    Ok(Ownership { renewal, lost })
}

async fn renew(kv: kv::Store, instance: Uuid, mut revision: u64, lease: Duration, lost: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Ok(value) = encode(&me(instance)) else { continue };
        match kv.update(KEY, value, revision).await {
            Ok(r) => revision = r,
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                lost.store(true, Ordering::Relaxed);
                tracing::error!("another HotSwap instance took over this JetStream prefix; this one must be restarted");
                return;
            }
            // The server is away for now: try again at the next tick.
            Err(e) => tracing::warn!(error = %e, "could not renew the JetStream prefix"),
        }
    }
}
