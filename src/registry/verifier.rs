//! The Security Scan's questions, answered from the registry: is the version
//! registered, do its stored bytes still have their digest, and does its
//! signature verify against a trusted key that is not revoked.

use async_trait::async_trait;
use base64::Engine;
use hotswap_actors::domain::TenantId;
use hotswap_actors::registry::{ModuleVerifier, ScanError, UnverifiedSignature, VerifiedModule};
use hotswap_actors::store::StoreError;

use super::statement::signed_digests;
use super::upload::verifying_key;
use super::{ArtifactError, Registry};

pub struct RegistryVerifier {
    pub registry: Registry,
}

fn store_error(e: StoreError) -> ScanError {
    ScanError::Unavailable(e.to_string())
}

#[async_trait]
impl ModuleVerifier for RegistryVerifier {
    async fn verify(&self, tenant: TenantId, module: &str, version: &str) -> Result<VerifiedModule, ScanError> {
        let registry = &self.registry;
        let strict = registry.security.strict_mode;
        let Some(stored) = registry.store.get_module_version(tenant, module, version).await.map_err(store_error)?
        else {
            if registry.security.require_registered_modules {
                return Err(ScanError::Refused(format!(
                    "{module} {version} is not in the module registry; upload it (hotswap module push, or POST /api/v1/modules) and deploy again"
                )));
            }
            return Ok(VerifiedModule {
                notes: vec![format!(
                    "Warning: {module} {version} is not in the module registry, so neither its digest nor its signature was checked (security.require_registered_modules is off)."
                )],
                ..VerifiedModule::default()
            });
        };
        // Hashed in chunks: the artifact is never held whole for the scan.
        let digest = match registry.artifacts.verify(&stored.sha256).await {
            Ok(digest) => digest,
            Err(ArtifactError::Unavailable(e)) => return Err(ScanError::Unavailable(e)),
            Err(e @ (ArtifactError::Corrupt { .. } | ArtifactError::NotFound(_))) => {
                return Err(ScanError::Refused(format!(
                    "the stored artifact of {module} {version} cannot be trusted: {e}; delete the version and upload it again"
                )))
            }
        };
        let mut notes = vec![format!("Artifact SHA-256 {} verified.", stored.sha256)];
        let signature = stored
            .signature
            .as_deref()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
            .transpose()
            .map_err(|_| ScanError::Refused(format!("the stored signature of {module} {version} is not base64")))?;
        let signed = signature.is_some();
        let problem = match signature {
            None => Some(format!("{module} {version} is not signed")),
            Some(sig) => {
                let keys = registry.store.list_signing_keys(tenant).await.map_err(store_error)?;
                let algorithm = stored.descriptor.signature_algorithm;
                let accept_bare = registry.security.accept_artifact_signatures;
                let digests = signed_digests(module, version, digest, accept_bare);
                match verifying_key(&keys, registry.security.min_key_bits, algorithm, &digests, &sig) {
                    Some(key) => {
                        notes.push(format!(
                            "Signature ({}) verified with trusted key '{}' ({}).",
                            algorithm.as_str(),
                            key.name,
                            key.key_id
                        ));
                        None
                    }
                    None => {
                        // Say why, naming the key it was verified with at upload.
                        let named = stored.signing_key_id.as_ref().and_then(|id| keys.iter().find(|k| &k.key_id == id));
                        Some(match named {
                            Some(k) if k.bits < registry.security.min_key_bits => format!(
                                "{module} {version} was signed with key '{}' ({}), which has {} bits; keys under {} bits are not trusted",
                                k.name, k.key_id, k.bits, registry.security.min_key_bits
                            ),
                            Some(k) if k.is_revoked() => format!(
                                "{module} {version} was signed with key '{}' ({}), which was revoked at {}; re-sign it with a trusted key and upload a new version",
                                k.name,
                                k.key_id,
                                k.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                            ),
                            _ => format!(
                                "the signature of {module} {version} does not verify against any trusted, unrevoked signing key"
                            ),
                        })
                    }
                }
            }
        };
        let mut unverified_signature = None;
        if let Some(problem) = problem {
            if strict {
                return Err(ScanError::Refused(format!("{problem} (security.strict_mode is on)")));
            }
            notes.push(format!("Warning: {problem}; passed because security.strict_mode is off."));
            unverified_signature = Some(UnverifiedSignature { signed, problem });
        }
        Ok(VerifiedModule {
            digest: Some(stored.sha256),
            dependencies: stored.descriptor.dependencies,
            notes,
            unverified_signature,
            dependents: None,
        })
    }
}
