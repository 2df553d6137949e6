//! Trusted signing keys: added by Admins from a PEM public key, listed with
//! fingerprints, revoked (never deleted: versions name the key they were
//! verified with).

use hotswap_actors::domain::{AuditActor, AuditCategory, AuditResult, NewAuditEntry, SigningKey, TenantId};
use serde_json::json;

use super::{Registry, RegistryError};
use crate::crypto::rsa_sig::{parse_public_key, KeyError};

const MAX_NAME: usize = 100;

impl Registry {
    pub async fn add_signing_key(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        name: &str,
        pem: &str,
    ) -> Result<SigningKey, RegistryError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(RegistryError::Invalid(vec![format!(
                "name must be 1 to {MAX_NAME} characters, none of them control characters"
            )]));
        }
        let refuse = |why: String, result: AuditResult| {
            NewAuditEntry::new(tenant, actor.clone(), AuditCategory::Security, "SigningKeyRefused")
                .result(result)
                .message(why)
                .details(json!({ "name": name }))
        };
        let trusted = match parse_public_key(pem, self.security.min_key_bits) {
            Ok(k) => k,
            Err(KeyError::TooShort { bits, min }) => {
                let why = format!("the key has {bits} bits; keys under {min} bits are not trusted");
                self.store.append_audit(&[refuse(why.clone(), AuditResult::Denied)]).await?;
                return Err(RegistryError::Refused(why));
            }
            Err(e) => return Err(RegistryError::Invalid(vec![format!("publicKeyPem: {e}")])),
        };
        let key = SigningKey {
            tenant_id: tenant,
            key_id: trusted.fingerprint.clone(),
            name: name.to_string(),
            algorithm: "RSA".into(),
            bits: trusted.bits,
            public_key_pem: trusted.spki_pem,
            created_at: super::now_micros(),
            revoked_at: None,
        };
        let audit = NewAuditEntry::new(tenant, actor, AuditCategory::Security, "SigningKeyAdded")
            .resource("SigningKey", &key.key_id)
            .message(format!("trusted RSA-{} key '{}'", key.bits, key.name))
            .details(json!({ "name": key.name, "bits": key.bits }));
        match self.store.add_signing_key(&key, &audit).await {
            Ok(()) => Ok(key),
            Err(hotswap_actors::store::StoreError::Conflict(_)) => {
                // Keys are never deleted: the one stored may be revoked, and stays so.
                let stored = self.store.list_signing_keys(tenant).await?.into_iter().find(|k| k.key_id == key.key_id);
                Err(RegistryError::Conflict(match stored.and_then(|k| k.revoked_at.map(|at| (k.name, at))) {
                    Some((name, at)) => format!(
                        "the key {} was trusted as '{name}' and revoked at {}; a revoked key is never trusted again: \
                         make a new key pair (hotswap keygen)",
                        key.key_id,
                        at.to_rfc3339()
                    ),
                    None => format!("the key {} is trusted already", key.key_id),
                }))
            }
            Err(other) => Err(other.into()),
        }
    }

    pub async fn revoke_signing_key(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        key_id: &str,
    ) -> Result<SigningKey, RegistryError> {
        let not_found = || RegistryError::NotFound(format!("Signing key {key_id} not found"));
        // Ids are fingerprints; anything else names no key (and is not queried).
        let Some(hex) = key_id.strip_prefix("sha256:").filter(|h| crate::crypto::is_sha256_hex(h)) else {
            return Err(not_found());
        };
        debug_assert_eq!(hex.len(), 64);
        let audit = NewAuditEntry::new(tenant, actor, AuditCategory::Security, "SigningKeyRevoked")
            .resource("SigningKey", key_id)
            .message("revoked; modules signed with it fail the Security Scan in strict mode");
        self.store.revoke_signing_key(tenant, key_id, super::now_micros(), &audit).await?.ok_or_else(not_found)
    }
}
