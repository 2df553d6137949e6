//! The module registry: versions and signing keys, tenant-scoped, written
//! atomically with their audit entries; and artifact bytes in PostgreSQL.

use super::*;
use hotswap_actors::domain::{
    AuditActor, AuditCategory, AuditQuery, MetricQuery, ModuleAnalysis, ModuleDescriptor, ModuleVersion, NewAuditEntry,
    ResourceRequirements, SignatureAlgorithm, SigningKey,
};

fn audit(tenant: TenantId, kind: &str) -> NewAuditEntry {
    NewAuditEntry::new(tenant, AuditActor::user(Uuid::new_v4(), "alice"), AuditCategory::ModuleRegistry, kind)
        .resource("Module", kind)
}

fn version(tenant: TenantId, name: &str, v: &str, signed: bool) -> ModuleVersion {
    ModuleVersion {
        tenant_id: tenant,
        descriptor: ModuleDescriptor {
            name: name.into(),
            version: v.into(),
            description: NASTY.join("|"),
            author: NASTY[5].into(),
            dependencies: BTreeMap::from([("kmod-base".to_string(), "^2.1".to_string())]),
            resource_requirements: ResourceRequirements { memory_mb: 64, cpu_cores: 0.1 + 0.2, disk_mb: 7 },
            configuration: json!({ "nasty": NASTY, "n": 1e-7 }),
            signature_algorithm: SignatureAlgorithm::RsaPssSha256,
            // Hooks round-trip with the descriptor (what agents run on hosts).
            hooks: hotswap_actors::domain::ModuleHooks {
                activate: Some("insmod \"$HOTSWAP_ARTIFACT\"".into()),
                deactivate: Some(NASTY[5].into()),
                ..Default::default()
            },
            // The canary analysis's queries travel with the descriptor.
            analysis: Some(ModuleAnalysis {
                queries: vec![MetricQuery {
                    name: NASTY[1].into(),
                    query: r#"sum(rate(errors_total{instance="$node"}[1m]))"#.into(),
                    max_rise_percent: Some(50.0),
                    floor: 0.1,
                    max: Some(2.5),
                    unit: "%".into(),
                }],
            }),
        },
        sha256: format!("{:064x}", v.len()),
        size_bytes: 1234,
        storage_uri: "fs:sha256/00/00".into(),
        signature: signed.then(|| "c2lnbmF0dXJl".to_string()),
        signing_key_id: None,
        uploaded_by: Some(NASTY[0].into()),
        uploaded_at: micros(at(1, 0)),
    }
}

fn key(tenant: TenantId, id: &str, secs: i64) -> SigningKey {
    SigningKey {
        tenant_id: tenant,
        key_id: id.into(),
        name: NASTY[1].into(),
        algorithm: "RSA".into(),
        bits: 3072,
        public_key_pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
        created_at: micros(at(secs, 0)),
        revoked_at: None,
    }
}

async fn audit_count(store: &SharedStore, tenant: TenantId) -> u64 {
    store.list_audit(tenant, &AuditQuery { limit: 100, ..AuditQuery::default() }).await.unwrap().total
}

async fn module_versions_round_trip_conflict_and_isolation(store: SharedStore) {
    let (a, b) = (tenant(), tenant());
    let v1 = version(a, "kmod-net", "1.0.0", true);
    let v2 = version(a, "kmod-net", "1.10.0", false);
    store.add_module_version(&v1, &audit(a, "up1")).await.unwrap();
    store.add_module_version(&v2, &audit(a, "up2")).await.unwrap();
    store.add_module_version(&version(a, "kmod-fs", "1.0.0", false), &audit(a, "up3")).await.unwrap();
    store.add_module_version(&version(b, "kmod-net", "1.0.0", false), &audit(b, "upb")).await.unwrap();

    let again = store.add_module_version(&v1, &audit(a, "again")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(audit_count(&store, a).await, 3, "a refused insert writes no audit entry");

    let got = store.get_module_version(a, "kmod-net", "1.0.0").await.unwrap();
    assert_eq!(got.as_ref(), Some(&v1), "every field round-trips");
    assert_eq!(store.get_module_version(a, "kmod-net", "9.9.9").await.unwrap(), None);
    let mut net: Vec<_> =
        store.module_versions(a, "kmod-net").await.unwrap().into_iter().map(|v| v.descriptor.version).collect();
    net.sort();
    assert_eq!(net, ["1.0.0", "1.10.0"]);
    assert_eq!(store.all_module_versions(a).await.unwrap().len(), 3);
    assert_eq!(store.all_module_versions(b).await.unwrap().len(), 1, "tenant B sees only its own");
    assert_eq!(store.get_module_version(b, "kmod-fs", "1.0.0").await.unwrap(), None);

    assert!(store.delete_module_version(a, "kmod-net", "1.0.0", &audit(a, "del")).await.unwrap());
    assert!(!store.delete_module_version(a, "kmod-net", "1.0.0", &audit(a, "del2")).await.unwrap());
    assert_eq!(audit_count(&store, a).await, 4, "only the real delete is audited");
    assert!(store.get_module_version(b, "kmod-net", "1.0.0").await.unwrap().is_some(), "B's copy stays");
    // The version can be published again after its deletion.
    store.add_module_version(&v1, &audit(a, "re")).await.unwrap();
}

async fn signing_keys_round_trip_and_revocation(store: SharedStore) {
    let (a, b) = (tenant(), tenant());
    let k2 = key(a, "sha256:bbb", 2);
    let k1 = key(a, "sha256:aaa", 1);
    store.add_signing_key(&k2, &audit(a, "k2")).await.unwrap();
    store.add_signing_key(&k1, &audit(a, "k1")).await.unwrap();
    store.add_signing_key(&key(b, "sha256:aaa", 1), &audit(b, "kb")).await.unwrap();
    let dup = store.add_signing_key(&k1, &audit(a, "dup")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let ids: Vec<_> = store.list_signing_keys(a).await.unwrap().into_iter().map(|k| k.key_id).collect();
    assert_eq!(ids, ["sha256:aaa", "sha256:bbb"], "oldest first");
    assert_eq!(store.get_signing_key(a, "sha256:bbb").await.unwrap(), Some(k2.clone()));

    let when = micros(at(5, 0));
    let revoked = store.revoke_signing_key(a, "sha256:aaa", when, &audit(a, "rev")).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(when));
    let later = store.revoke_signing_key(a, "sha256:aaa", micros(at(9, 0)), &audit(a, "rev2")).await.unwrap();
    assert_eq!(later.unwrap().revoked_at, Some(when), "the first revocation stays");
    assert_eq!(store.revoke_signing_key(a, "sha256:none", when, &audit(a, "none")).await.unwrap(), None);
    assert_eq!(audit_count(&store, a).await, 3, "two adds and one revocation");
    assert_eq!(store.get_signing_key(b, "sha256:aaa").await.unwrap().unwrap().revoked_at, None, "B's key is its own");
}

/// A version is admitted only when the registry's check passes on what the
/// tenant stores; a refusal stores nothing and writes no audit entry.
async fn versions_are_admitted_only_when_the_check_passes(store: SharedStore) {
    use hotswap_actors::domain::{QuotaExceeded, QuotaKind};
    let (a, b) = (tenant(), tenant());
    store.add_module_version(&version(b, "kmod-other", "1.0.0", false), &audit(b, "upb")).await.unwrap();
    let at_most_one = |stored: &[ModuleVersion]| match stored.len() {
        0 => Ok(()),
        n => Err(QuotaExceeded { quota: QuotaKind::Modules, limit: 1, current: n as u64 }),
    };
    let first = version(a, "kmod-net", "1.0.0", false);
    assert_eq!(store.admit_module_version(&first, &audit(a, "up1"), &at_most_one).await.unwrap(), Ok(()));
    assert_eq!(store.get_module_version(a, "kmod-net", "1.0.0").await.unwrap().as_ref(), Some(&first));
    let second = version(a, "kmod-fs", "1.0.0", false);
    let refused = store.admit_module_version(&second, &audit(a, "up2"), &at_most_one).await.unwrap();
    assert_eq!(
        refused,
        Err(QuotaExceeded { quota: QuotaKind::Modules, limit: 1, current: 1 }),
        "sees its own tenant's"
    );
    assert_eq!(store.get_module_version(a, "kmod-fs", "1.0.0").await.unwrap(), None, "nothing stored");
    assert_eq!(audit_count(&store, a).await, 1, "a refusal writes no audit entry");
    let again = store.admit_module_version(&first, &audit(a, "again"), &|_: &[ModuleVersion]| Ok(())).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

conformance!(
    module_versions_round_trip_conflict_and_isolation,
    signing_keys_round_trip_and_revocation,
    versions_are_admitted_only_when_the_check_passes
);

mod postgres_artifacts {
    use super::*;
    use hotswap::crypto::sha256_hex;
    use hotswap::registry::{ArtifactError, Artifacts};

    /// Bytes in the database come back only while they match their digest.
    #[actix::test]
    async fn artifact_bytes_in_postgres_are_checked_on_read() {
        let Some(db) = support::TestDb::migrated("registry::artifact_bytes_in_postgres_are_checked_on_read").await
        else {
            return;
        };
        let artifacts = Artifacts::new(Arc::new(db.store().await));
        let bytes = bytes::Bytes::from(vec![0u8, 1, 2, 255, 254]);
        let digest = sha256_hex(&bytes);
        assert_eq!(artifacts.put(&digest, bytes.clone()).await.unwrap(), format!("pg:sha256/{digest}"));
        artifacts.put(&digest, bytes.clone()).await.unwrap();
        assert_eq!(artifacts.get(&digest).await.unwrap(), bytes);
        db.execute(&format!("UPDATE artifact_chunks SET bytes = '\\x00' WHERE sha256 = '{digest}'")).await;
        assert!(matches!(artifacts.get(&digest).await, Err(ArtifactError::Corrupt { .. })));
        let missing = sha256_hex(b"missing");
        assert!(matches!(artifacts.get(&missing).await, Err(ArtifactError::NotFound(_))));
    }

    /// What a client of a download receives: the bytes before the first
    /// error, how many chunks carried them, and whether it ended in an error.
    async fn drain(mut chunks: hotswap::registry::artifact_stream::ArtifactChunks) -> (Vec<u8>, usize, bool) {
        use futures::StreamExt;
        let (mut got, mut pieces) = (Vec::new(), 0);
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    got.extend_from_slice(&bytes);
                    pieces += 1;
                }
                Err(_) => return (got, pieces, true),
            }
        }
        (got, pieces, false)
    }

    /// A download from the database streams chunk rows, and keeps the
    /// filesystem back-end's promise: altered bytes never reach the client
    /// whole (the last chunk is withheld), another length, or an altered
    /// artifact of up to 1 MiB, is refused before the first byte.
    #[actix::test]
    async fn artifacts_in_postgres_stream_in_chunks_and_withhold_altered_bytes() {
        use hotswap::registry::artifact_stream::CHUNK_BYTES;
        let Some(db) = support::TestDb::migrated("registry::artifacts_in_postgres_stream_in_chunks").await else {
            return;
        };
        let artifacts = Artifacts::new(Arc::new(db.store().await));
        // Past CHECKED_WHOLE_BYTES: streamed rather than checked whole first.
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 5 + 100).map(|i| (i % 251) as u8).collect();
        assert!(bytes.len() as u64 > hotswap::registry::artifacts::CHECKED_WHOLE_BYTES);
        let digest = sha256_hex(&bytes);
        let len = bytes.len() as u64;
        artifacts.put(&digest, bytes::Bytes::from(bytes.clone())).await.unwrap();
        let opened = artifacts.open(&digest, len).await.unwrap();
        assert_eq!(opened.len, len);
        let (got, pieces, failed) = drain(opened.chunks).await;
        assert!(!failed);
        assert_eq!(got, bytes);
        assert_eq!(pieces, 6, "one piece per chunk row");
        assert_eq!(hotswap::crypto::hex(&artifacts.verify(&digest).await.unwrap()), digest);

        // One byte altered in place, first in the second chunk, then in the last.
        for seq in [1, 5] {
            artifacts.put(&digest, bytes::Bytes::from(bytes.clone())).await.unwrap();
            db.execute(&format!(
                "UPDATE artifact_chunks SET bytes = set_byte(bytes, 7, get_byte(bytes, 7) # 255) \
                 WHERE sha256 = '{digest}' AND seq = {seq}"
            ))
            .await;
            let (got, _, failed) = drain(artifacts.open(&digest, len).await.unwrap().chunks).await;
            assert!(failed, "the download ends in an error (chunk {seq} altered)");
            assert!((got.len() as u64) < len, "the last chunk is withheld (chunk {seq} altered)");
            assert!(matches!(artifacts.verify(&digest).await, Err(ArtifactError::Corrupt { .. })));
        }
        // Writing the good bytes again repairs them; a chunk cut short is
        // another length, refused before a byte is sent.
        artifacts.put(&digest, bytes::Bytes::from(bytes.clone())).await.unwrap();
        assert!(!drain(artifacts.open(&digest, len).await.unwrap().chunks).await.2);
        db.execute(&format!("UPDATE artifact_chunks SET bytes = '\\x00' WHERE sha256 = '{digest}' AND seq = 2")).await;
        assert!(matches!(artifacts.open(&digest, len).await, Err(ArtifactError::Corrupt { .. })));

        // A small artifact altered in place (its length kept): refused before the first byte.
        let small: Vec<u8> = (0..CHUNK_BYTES + 10).map(|i| (i % 241) as u8).collect();
        let small_digest = sha256_hex(&small);
        artifacts.put(&small_digest, bytes::Bytes::from(small.clone())).await.unwrap();
        assert!(!drain(artifacts.open(&small_digest, small.len() as u64).await.unwrap().chunks).await.2);
        db.execute(&format!(
            "UPDATE artifact_chunks SET bytes = set_byte(bytes, 7, get_byte(bytes, 7) # 255) \
             WHERE sha256 = '{small_digest}' AND seq = 0"
        ))
        .await;
        let refused = artifacts.open(&small_digest, small.len() as u64).await;
        assert!(matches!(refused, Err(ArtifactError::Corrupt { .. })));
    }
}
