//! The Security Scan's questions, answered from the registry: is the version
//! registered, do its stored bytes still have their digest, and does its
//! signature verify against a trusted key that is not revoked.

use async_trait::async_trait;
use base64::Engine;
use hotswap_actors::domain::{ModuleVersion, SigningKey, TenantId};
use hotswap_actors::registry::{ModuleVerifier, ScanError, UnverifiedSignature, VerifiedModule};
use hotswap_actors::store::StoreError;

use super::statement::signed_digests;
use super::upload::verifying_key;
use super::{ArtifactError, Registry};

/// Whether a stored version's signature verifies now, as the module views
/// report it: "verified" against one of `keys` that is trusted (not revoked,
/// long enough), with the statement of its name, version, recorded digest and
/// hooks; "unverified" when it is signed but does not; "none" when unsigned.
/// The Security Scan asks the same and re-reads the bytes besides.
pub fn signature_status(registry: &Registry, keys: &[SigningKey], stored: &ModuleVersion) -> &'static str {
    let Some(signature) = stored.signature.as_deref() else { return "none" };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature) else { return "unverified" };
    let Some(digest) = digest_of_hex(&stored.sha256) else { return "unverified" };
    let d = &stored.descriptor;
    let digests = signed_digests(&d.name, &d.version, digest, &d.hooks, registry.security.accept_artifact_signatures);
    match verifying_key(keys, registry.security.min_key_bits, d.signature_algorithm, &digests, &signature) {
        Some(_) => "verified",
        None => "unverified",
    }
}

/// The 32 bytes of a lower-case hex SHA-256.
fn digest_of_hex(hex: &str) -> Option<[u8; 32]> {
    if !crate::crypto::is_sha256_hex(hex) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

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
                    "the stored artifact of {module} {version} cannot be trusted: {e}; upload the version's original file \
                     again (hotswap module push), which rewrites the stored bytes, or delete the version \
                     (hotswap modules delete {module} {version}) and upload it anew"
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
                // The hooks agents will run are part of what the signature must vouch for.
                let digests = signed_digests(module, version, digest, &stored.descriptor.hooks, accept_bare);
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
                        // Say why, naming the key it was verified with at upload,
                        // or else a revoked key that verifies it now: the reason
                        // is then known, not guessed.
                        let min_bits = registry.security.min_key_bits;
                        let verified_by = |k: &SigningKey| {
                            let as_trusted = SigningKey { revoked_at: None, ..k.clone() };
                            verifying_key(std::slice::from_ref(&as_trusted), min_bits, algorithm, &digests, &sig)
                                .is_some()
                        };
                        let named = stored.signing_key_id.as_ref().and_then(|id| keys.iter().find(|k| &k.key_id == id));
                        let named = named
                            .filter(|k| k.is_revoked() || k.bits < min_bits)
                            .or_else(|| keys.iter().filter(|k| k.is_revoked()).find(|k| verified_by(k)));
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
                            _ if !stored.descriptor.hooks.is_empty() => format!(
                                "the signature of {module} {version} does not verify against any trusted, unrevoked signing key for its name, version, digest and hooks (signed with a key the tenant does not trust, or over another statement than hotswap-module-signature-v2, which a version with hooks needs)"
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
