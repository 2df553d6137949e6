//! The artifact sweep: bytes no version names any more are removed once
//! their grace period has passed; bytes another version or tenant still
//! names stay. On both stores and both artifact back-ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hotswap::config::SecuritySettings;
use hotswap::crypto::sha256_hex;
use hotswap::registry::{ArtifactBackend, ArtifactError, Artifacts, DirectoryArtifacts, Registry, Upload};
use hotswap_actors::domain::AuditActor;
use hotswap_actors::store::{MemoryStore, SharedStore};
use uuid::Uuid;

use crate::registry_support::descriptor;

fn registry(store: SharedStore, backend: Arc<dyn ArtifactBackend>) -> Registry {
    Registry {
        store,
        artifacts: Artifacts::new(backend),
        security: SecuritySettings {
            strict_mode: false,
            require_registered_modules: false,
            min_key_bits: 2048,
            accept_artifact_signatures: true,
        },
        max_artifact_bytes: 1 << 20,
        upload_read_timeout: std::time::Duration::from_secs(10),
        upload_slots: hotswap::registry::UploadSlots::new(1),
        quota_locks: hotswap::registry::QuotaLocks::default(),
    }
}

async fn upload(r: &Registry, tenant: Uuid, name: &str, version: &str, bytes: &[u8]) {
    let upload = Upload {
        descriptor: serde_json::from_value(descriptor(name, version)).unwrap(),
        artifact: Bytes::copy_from_slice(bytes),
        signature: None,
    };
    r.upload(tenant, AuditActor::system(), upload).await.expect("upload");
}

async fn sweep_keeps_what_is_named(r: Registry) {
    let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
    let shared = format!("shared bytes {}", Uuid::new_v4()).into_bytes();
    let own = format!("own bytes {}", Uuid::new_v4()).into_bytes();
    upload(&r, t1, "kmod-gc", "1.0.0", &shared).await;
    upload(&r, t2, "kmod-other", "1.0.0", &shared).await;
    upload(&r, t1, "kmod-gc", "1.1.0", &own).await;
    let store = r.store.clone();
    assert_eq!(r.artifacts.collect_garbage(store.as_ref(), Duration::ZERO).await.unwrap(), 0, "all named");

    r.delete(t1, AuditActor::system(), "kmod-gc", "1.1.0").await.unwrap();
    r.delete(t1, AuditActor::system(), "kmod-gc", "1.0.0").await.unwrap();
    let hour = Duration::from_secs(3600);
    assert_eq!(r.artifacts.collect_garbage(store.as_ref(), hour).await.unwrap(), 0, "within the grace period");
    assert_eq!(r.artifacts.collect_garbage(store.as_ref(), Duration::ZERO).await.unwrap(), 1);
    assert!(matches!(r.artifacts.get(&sha256_hex(&own)).await, Err(ArtifactError::NotFound(_))));
    assert_eq!(r.artifacts.get(&sha256_hex(&shared)).await.unwrap().as_ref(), shared.as_slice(), "t2 still names it");
    // Uploading the removed bytes again stores them again.
    upload(&r, t1, "kmod-gc", "1.2.0", &own).await;
    assert_eq!(r.artifacts.get(&sha256_hex(&own)).await.unwrap().as_ref(), own.as_slice());
}

#[actix_web::test]
async fn the_sweep_on_memory_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(MemoryStore::new());
    sweep_keeps_what_is_named(registry(store, Arc::new(DirectoryArtifacts::new(dir.path())))).await;
}

#[actix_web::test]
async fn the_sweep_on_postgres_with_artifacts_in_the_database() {
    let Some(db) = crate::db::TestDb::migrated("api::artifact_sweep").await else { return };
    let pg = Arc::new(db.store().await);
    sweep_keeps_what_is_named(registry(pg.clone(), pg)).await;
}
