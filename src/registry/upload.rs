//! Uploading a module version: the descriptor is checked, the signature
//! verified against the tenant's trusted keys, the bytes stored by digest
//! and the version recorded. The same name and version again is accepted
//! only with the very same bytes.

use std::sync::LazyLock;

use base64::Engine;
use bytes::Bytes;
use hotswap_actors::domain::{
    holds_nul, json_holds_nul, AuditActor, AuditCategory, AuditResult, ModuleDescriptor, ModuleVersion, NewAuditEntry,
    Quota, QuotaExceeded, QuotaKind, SignatureAlgorithm, SigningKey, TenantId,
};
use hotswap_actors::store::StoreError;
use regex::Regex;
use serde_json::json;

use super::statement::{sha256_off_worker, signed_digests};
use super::{ArtifactError, Registry, RegistryError};
use crate::crypto::rsa_sig::{parse_public_key, verify_digest};

#[allow(clippy::expect_used)] // A constant pattern, checked by the tests.
pub(crate) static MODULE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$").expect("valid regex"));
const MAX_TEXT: usize = 1000;

pub struct Upload {
    pub descriptor: ModuleDescriptor,
    pub artifact: Bytes,
    /// The detached signature's bytes, if any.
    pub signature: Option<Vec<u8>>,
}

pub struct UploadOutcome {
    pub version: ModuleVersion,
    /// False when the same bytes were uploaded before.
    pub created: bool,
    /// The version was there, but its stored bytes were missing or altered:
    /// the upload's bytes, which have the recorded digest, replaced them.
    pub repaired: bool,
    pub warnings: Vec<String>,
}

/// The longest version accepted, in a descriptor or a run: semantic versions
/// have no limit of their own, and a version is repeated in every node's
/// modules, every run and every live update that names it.
pub const MAX_VERSION_CHARS: usize = 128;

/// Every problem with a descriptor, so that a client can fix them at once.
pub fn check_descriptor(d: &ModuleDescriptor) -> Vec<String> {
    let mut problems = Vec::new();
    if !MODULE_NAME.is_match(&d.name) {
        problems.push(
            "descriptor.name must be 3-64 lowercase letters, digits or hyphens, starting and ending with a letter or digit"
                .into(),
        );
    }
    if d.version.chars().count() > MAX_VERSION_CHARS {
        problems.push(format!("descriptor.version may hold at most {MAX_VERSION_CHARS} characters"));
    } else if semver::Version::parse(&d.version).is_err() {
        problems.push(format!("descriptor.version '{}' is not a semantic version such as 1.2.3", d.version));
    }
    // PostgreSQL's text and jsonb hold no NUL: the descriptor is stored as jsonb.
    let hooks = [&d.hooks.activate, &d.hooks.deactivate, &d.hooks.health, &d.hooks.prepare_standby];
    if [&d.description, &d.author].iter().any(|t| holds_nul(t))
        || json_holds_nul(&d.configuration)
        || hooks.iter().any(|h| h.as_deref().is_some_and(holds_nul))
    {
        problems.push("descriptor text may not contain NUL characters".into());
    }
    if d.description.chars().count() > MAX_TEXT || d.author.chars().count() > MAX_TEXT {
        problems.push(format!("descriptor.description and author may hold at most {MAX_TEXT} characters"));
    }
    for (module, requirement) in &d.dependencies {
        if !MODULE_NAME.is_match(module) {
            problems.push(format!("descriptor.dependencies: '{module}' is not a module name"));
        }
        if semver::VersionReq::parse(requirement).is_err() {
            problems.push(format!(
                "descriptor.dependencies.{module}: '{requirement}' is not a semantic-version requirement such as ^1.2"
            ));
        }
    }
    if !d.configuration.is_object() {
        problems.push("descriptor.configuration must be an object".into());
    }
    let r = &d.resource_requirements;
    if !r.cpu_cores.is_finite() || r.cpu_cores < 0.0 {
        problems.push("descriptor.resourceRequirements.cpuCores must be a non-negative number".into());
    }
    let queries = d.analysis.iter().flat_map(|a| a.queries.iter());
    for (i, query) in queries.enumerate() {
        problems.extend(query.problems(&format!("descriptor.analysis.queries[{i}]")));
    }
    problems
}

/// Whether `name` and `version` could name a stored version at all; other
/// path parameters answer 404 without a query.
pub fn plausible(name: &str, version: Option<&str>) -> bool {
    MODULE_NAME.is_match(name) && version.is_none_or(|v| semver::Version::parse(v).is_ok())
}

/// The first of `keys` that is not revoked, has at least `min_bits`, and
/// whose signature of one of `digests` is `signature`.
pub fn verifying_key<'a>(
    keys: &'a [SigningKey],
    min_bits: u32,
    algorithm: SignatureAlgorithm,
    digests: &[[u8; 32]],
    signature: &[u8],
) -> Option<&'a SigningKey> {
    keys.iter().filter(|k| !k.is_revoked()).find(|k| {
        parse_public_key(&k.public_key_pem, min_bits)
            .is_ok_and(|t| digests.iter().any(|digest| verify_digest(&t.key, algorithm, digest, signature)))
    })
}

impl Registry {
    /// Audits an upload refused before its descriptor was read (its body too
    /// large), as `ModuleUploadRefused` with result Failure.
    pub async fn record_refused_upload(
        &self,
        tenant: TenantId,
        actor: &AuditActor,
        why: &str,
    ) -> Result<(), RegistryError> {
        let entry = NewAuditEntry::new(tenant, actor.clone(), AuditCategory::ModuleRegistry, "ModuleUploadRefused")
            .resource("Module", "unknown (the body was not read)")
            .result(AuditResult::Failure)
            .message(why.to_string());
        self.store.append_audit(&[entry]).await?;
        Ok(())
    }

    pub async fn upload(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        upload: Upload,
    ) -> Result<UploadOutcome, RegistryError> {
        let d = &upload.descriptor;
        let refused = |event: &str, result: AuditResult, why: &str| {
            NewAuditEntry::new(tenant, actor.clone(), AuditCategory::ModuleRegistry, event)
                .resource("Module", format!("{}@{}", d.name, d.version))
                .result(result)
                .message(why.to_string())
        };
        let mut problems = check_descriptor(d);
        if upload.artifact.is_empty() {
            problems.push("artifact is empty".into());
        }
        if !problems.is_empty() {
            return Err(RegistryError::Invalid(problems));
        }
        if upload.artifact.len() > self.max_artifact_bytes {
            let why = format!("the artifact is larger than {} bytes", self.max_artifact_bytes);
            self.store.append_audit(&[refused("ModuleUploadRefused", AuditResult::Failure, &why)]).await?;
            return Err(RegistryError::TooLarge(why));
        }
        let artifact_digest = sha256_off_worker(upload.artifact.clone()).await;
        let digest_hex = crate::crypto::hex(&artifact_digest);
        if let Some(existing) = self.store.get_module_version(tenant, &d.name, &d.version).await? {
            return self.same_again(existing, d, &upload.artifact, &digest_hex, &actor).await;
        }

        // The signature, against the tenant's trusted keys.
        let mut warnings = Vec::new();
        let keys = self.store.list_signing_keys(tenant).await?;
        let signing_key = match &upload.signature {
            Some(sig) => {
                let accept_bare = self.security.accept_artifact_signatures;
                let digests = signed_digests(&d.name, &d.version, artifact_digest, &d.hooks, accept_bare);
                verifying_key(&keys, self.security.min_key_bits, d.signature_algorithm, &digests, sig).cloned()
            }
            None => None,
        };
        let problem = match (&upload.signature, &signing_key) {
            (None, _) => Some(format!(
                "{} {} is not signed; sign it (hotswap module sign --key key.pem FILE) with a trusted key",
                d.name, d.version
            )),
            (Some(_), None) => Some(format!(
                "the signature does not verify ({}) against any trusted, unrevoked signing key: sign the statement of \
                 this name, version{} (see docs/SECURITY.md){}; or the artifact was altered, or it was signed \
                 with another key or padding",
                d.signature_algorithm.as_str(),
                if d.hooks.is_empty() {
                    " and digest"
                } else {
                    ", digest and hooks (hotswap module sign --descriptor signs the hooks the descriptor has)"
                },
                if self.security.accept_artifact_signatures && d.hooks.is_empty() {
                    " or the artifact itself"
                } else {
                    ""
                }
            )),
            (Some(_), Some(_)) => None,
        };
        if let Some(problem) = problem {
            if self.security.strict_mode {
                self.store.append_audit(&[refused("ModuleUploadRefused", AuditResult::Denied, &problem)]).await?;
                return Err(RegistryError::Refused(problem));
            }
            warnings.push(format!("{problem} (accepted because security.strict_mode is off)"));
        }

        // Checked before the bytes are written, so that an upload past the
        // quota stores nothing; checked again by the store as it inserts,
        // under the tenant's admission lock, which every instance shares.
        // The instance's own lock keeps its uploads of one tenant from
        // waiting for that one on several connections.
        let _quota_lock = self.quota_locks.lock(tenant).await;
        let quota = self.store.get_tenant(tenant).await?.map(|t| t.quota);
        let size = upload.artifact.len() as u64;
        let check = |versions: &[ModuleVersion]| match &quota {
            Some(quota) => fits_quotas(quota, versions, &d.name, &digest_hex, size),
            // A tenant the store does not know (none in tests that use the
            // core alone) has no quota to check.
            None => Ok(()),
        };
        if let Err(over) = check(&self.store.all_module_versions(tenant).await?) {
            let why = over.to_string();
            self.store.append_audit(&[refused("ModuleUploadRefused", AuditResult::Denied, &why)]).await?;
            return Err(RegistryError::Quota(over));
        }
        let uri = self.artifacts.put(&digest_hex, upload.artifact.clone()).await?;
        let version = ModuleVersion {
            tenant_id: tenant,
            descriptor: upload.descriptor.clone(),
            sha256: digest_hex.clone(),
            size_bytes: upload.artifact.len() as u64,
            storage_uri: uri,
            signature: upload.signature.as_ref().map(|s| base64::engine::general_purpose::STANDARD.encode(s)),
            signing_key_id: signing_key.as_ref().map(|k| k.key_id.clone()),
            uploaded_by: Some(actor.name.clone()),
            uploaded_at: super::now_micros(),
        };
        let audit = NewAuditEntry::new(tenant, actor.clone(), AuditCategory::ModuleRegistry, "ModuleUploaded")
            .resource("Module", format!("{}@{}", d.name, d.version))
            .message(format!("{} {} uploaded ({} bytes)", d.name, d.version, version.size_bytes))
            .details(json!({ "sha256": version.sha256, "signingKeyId": version.signing_key_id, "warnings": warnings }));
        match self.store.admit_module_version(&version, &audit, &check).await {
            Ok(Ok(())) => Ok(UploadOutcome { version, created: true, repaired: false, warnings }),
            // Another instance stored a module of the tenant meanwhile; the
            // bytes written stay until the artifact sweep finds no version naming them.
            Ok(Err(over)) => {
                let why = over.to_string();
                self.store.append_audit(&[refused("ModuleUploadRefused", AuditResult::Denied, &why)]).await?;
                Err(RegistryError::Quota(over))
            }
            // A concurrent upload of the same version won the race.
            Err(StoreError::Conflict(_)) => match self.store.get_module_version(tenant, &d.name, &d.version).await? {
                Some(existing) => self.same_again(existing, d, &upload.artifact, &version.sha256, &actor).await,
                None => Err(RegistryError::Unavailable("the version changed during the upload; try again".into())),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The answer to an upload of a version that is stored already: 200 for
    /// the same bytes and descriptor, else 409 naming what differs. A
    /// descriptor's changes are never dropped silently: new dependencies or
    /// hooks would otherwise read as accepted.
    async fn same_again(
        &self,
        existing: ModuleVersion,
        descriptor: &ModuleDescriptor,
        artifact: &Bytes,
        digest_hex: &str,
        actor: &AuditActor,
    ) -> Result<UploadOutcome, RegistryError> {
        let refused = |why: &str| {
            NewAuditEntry::new(existing.tenant_id, actor.clone(), AuditCategory::ModuleRegistry, "ModuleUploadRefused")
                .resource("Module", format!("{}@{}", existing.name(), existing.version()))
                .result(AuditResult::Failure)
                .message(why.to_string())
        };
        if existing.sha256 == digest_hex {
            let differs = descriptor_differences(&existing.descriptor, descriptor);
            if differs.is_empty() {
                let repaired = self.repair_stored_bytes(&existing, artifact, actor).await?;
                return Ok(UploadOutcome { version: existing, created: false, repaired, warnings: Vec::new() });
            }
            let why = format!(
                "{} {} exists with the same bytes but another descriptor ({} differ{}); a stored version never \
                 changes: publish a new version instead",
                existing.name(),
                existing.version(),
                differs.join(", "),
                if differs.len() == 1 { "s" } else { "" }
            );
            self.store.append_audit(&[refused(&why)]).await?;
            return Err(RegistryError::Conflict(why));
        }
        let why = format!(
            "{} {} exists with other bytes (SHA-256 {}); publish a new version instead",
            existing.name(),
            existing.version(),
            existing.sha256
        );
        self.store.append_audit(&[refused(&why)]).await?;
        Err(RegistryError::Conflict(why))
    }

    /// Checks the stored bytes of `existing`, whose digest `artifact` has,
    /// and writes `artifact` in their place when they are missing or were
    /// altered (audited as `ModuleArtifactRepaired`); true when it did. An
    /// upload of the right bytes is the one repair a damaged version has
    /// short of deleting it, which a node running it may forbid.
    async fn repair_stored_bytes(
        &self,
        existing: &ModuleVersion,
        artifact: &Bytes,
        actor: &AuditActor,
    ) -> Result<bool, RegistryError> {
        let damage = match self.artifacts.verify(&existing.sha256).await {
            Ok(_) => return Ok(false),
            Err(ArtifactError::Unavailable(m)) => return Err(RegistryError::Unavailable(m)),
            Err(ArtifactError::NotFound(_)) => "missing".to_string(),
            Err(ArtifactError::Corrupt { actual, .. }) => format!("altered (SHA-256 {actual})"),
        };
        self.artifacts.put(&existing.sha256, artifact.clone()).await?;
        let (name, version) = (existing.name(), existing.version());
        tracing::warn!(module = name, version, damage = %damage, "stored artifact rewritten from an upload of the same bytes");
        let entry = NewAuditEntry::new(
            existing.tenant_id,
            actor.clone(),
            AuditCategory::ModuleRegistry,
            "ModuleArtifactRepaired",
        )
        .resource("Module", format!("{name}@{version}"))
        .message(format!(
            "the stored artifact of {name} {version} was {damage}; rewritten with the uploaded bytes (SHA-256 {})",
            existing.sha256
        ))
        .details(json!({ "sha256": existing.sha256, "damage": damage }));
        self.store.append_audit(&[entry]).await?;
        Ok(true)
    }
}

/// Whether a version of `name` with the artifact `digest_hex` of `size`
/// bytes fits the tenant's modules and artifact storage quotas, beside the
/// `versions` it stores.
fn fits_quotas(
    quota: &Quota,
    versions: &[ModuleVersion],
    name: &str,
    digest_hex: &str,
    size: u64,
) -> Result<(), QuotaExceeded> {
    let mut names: Vec<&str> = versions.iter().map(|v| v.name()).collect();
    names.sort_unstable();
    names.dedup();
    if !names.contains(&name) && names.len() as u64 + 1 > u64::from(quota.max_modules) {
        return Err(QuotaExceeded { quota: QuotaKind::Modules, limit: quota.max_modules, current: names.len() as u64 });
    }
    let used = hotswap_actors::domain::stored_bytes(versions);
    let adds = if versions.iter().any(|v| v.sha256 == digest_hex) { 0 } else { size };
    let limit_bytes = u64::from(quota.max_artifact_storage_gb).saturating_mul(hotswap_actors::domain::BYTES_PER_GB);
    if used.saturating_add(adds) > limit_bytes {
        return Err(QuotaExceeded {
            quota: QuotaKind::ArtifactStorage,
            limit: quota.max_artifact_storage_gb,
            current: used.div_ceil(hotswap_actors::domain::BYTES_PER_GB),
        });
    }
    Ok(())
}

/// The descriptor fields (as the API spells them) in which `new` differs
/// from `stored`. Compared as JSON: the PostgreSQL store keeps the descriptor
/// as jsonb, which does not keep the order of an object's keys.
pub fn descriptor_differences(stored: &ModuleDescriptor, new: &ModuleDescriptor) -> Vec<String> {
    let as_fields = |d: &ModuleDescriptor| match serde_json::to_value(d) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let (stored, new) = (as_fields(stored), as_fields(new));
    let mut keys: Vec<&String> = stored.keys().chain(new.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().filter(|k| stored.get(*k) != new.get(*k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_differences_name_the_fields_that_changed() {
        let stored: ModuleDescriptor = serde_json::from_value(
            serde_json::json!({ "name": "kmod", "version": "1.0.0", "configuration": {"a": 1, "b": 2} }),
        )
        .unwrap();
        let same: ModuleDescriptor = serde_json::from_value(
            serde_json::json!({ "name": "kmod", "version": "1.0.0", "configuration": {"b": 2, "a": 1} }),
        )
        .unwrap();
        assert!(descriptor_differences(&stored, &same).is_empty());
        let changed: ModuleDescriptor = serde_json::from_value(serde_json::json!({
            "name": "kmod", "version": "1.0.0", "configuration": {"a": 1, "b": 2},
            "dependencies": {"base": "^1"}, "hooks": {"activate": "true"}
        }))
        .unwrap();
        assert_eq!(descriptor_differences(&stored, &changed), ["dependencies", "hooks"]);
    }

    #[test]
    fn a_descriptors_analysis_queries_are_checked() {
        let descriptor = |queries: serde_json::Value| -> ModuleDescriptor {
            serde_json::from_value(serde_json::json!({
                "name": "kmod", "version": "1.0.0", "analysis": { "queries": queries }
            }))
            .unwrap()
        };
        let good = descriptor(serde_json::json!([{ "name": "errors", "query": "up", "maxRisePercent": 50 }]));
        assert!(check_descriptor(&good).is_empty());
        let judged_by_nothing = descriptor(serde_json::json!([{ "name": "errors", "query": "up" }]));
        assert_eq!(
            check_descriptor(&judged_by_nothing),
            vec!["descriptor.analysis.queries[0] needs maxRisePercent, max or both: otherwise nothing is judged"]
        );
    }
}
