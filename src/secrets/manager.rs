//! Creating and rotating secrets, auditing both (never the value), and
//! keeping the JWT key ring in step with the `jwt-signing-key` secret.

use std::sync::Arc;

use actix_web::web;
use chrono::{DateTime, SubsecRound, Utc};
use hotswap_actors::domain::{AuditActor, AuditCategory, AuditResult, NewAuditEntry, DEFAULT_TENANT};
use hotswap_actors::store::SharedStore;
use serde_json::json;

use super::{RotationPolicy, SecretBackend, SecretError, SecretMetadata, SecretValue};
use crate::auth::jwt::SigningKeys;
use crate::auth::AuthState;

/// The secret the API's tokens are signed with.
pub const JWT_SIGNING_KEY: &str = "jwt-signing-key";
/// Generated values: 64 symbols of 6 bits, 384 bits in all.
const GENERATED_LEN: usize = 64;

pub struct SecretManager {
    backend: Arc<dyn SecretBackend>,
    /// For the audit trail; secrets belong to the system, so entries go to the default tenant.
    store: SharedStore,
    auth: web::Data<AuthState>,
    /// The versions of `jwt-signing-key` the token service holds (current,
    /// and previous while its window lasts): a reload that finds the same
    /// leaves the service, and the tokens it verified, as they are.
    installed: parking_lot::Mutex<Option<(u32, Option<u32>)>>,
}

/// Secret ids become path segments of the back-end (Vault's URLs): only
/// plain names, so that an id can never reach another path.
fn check_id(id: &str) -> Result<(), SecretError> {
    let plain = (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if plain {
        Ok(())
    } else {
        Err(SecretError::NotFound(id.chars().take(128).collect()))
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn kid(version: u32) -> String {
    format!("v{version}")
}

impl SecretManager {
    pub fn new(backend: Arc<dyn SecretBackend>, store: SharedStore, auth: web::Data<AuthState>) -> SecretManager {
        SecretManager { backend, store, auth, installed: parking_lot::Mutex::new(None) }
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    async fn audit(&self, entry: NewAuditEntry) {
        // The secret changed already; a lost audit entry is logged, not undone.
        if let Err(e) = self.store.append_audit(&[entry]).await {
            tracing::error!(error = %e, "cannot write the audit entry of a secret change");
        }
    }

    /// Creates `id` with `initial` (or a generated value) unless it exists;
    /// answers its metadata either way.
    pub async fn ensure(
        &self,
        id: &str,
        policy: Option<RotationPolicy>,
        initial: Option<SecretValue>,
    ) -> Result<SecretMetadata, SecretError> {
        check_id(id)?;
        if let Some(existing) = self.backend.metadata(id).await? {
            return Ok(existing);
        }
        let generated = initial.is_none();
        let value = match initial {
            Some(v) => v,
            None => SecretValue::generate(GENERATED_LEN)?,
        };
        let meta = SecretMetadata::first(id, policy, now());
        let version = match self.backend.write(id, &value, 0, &meta).await {
            Ok(v) => v,
            // Another replica created it first: theirs stands.
            Err(SecretError::Conflict(_)) => {
                return self.backend.metadata(id).await?.ok_or_else(|| SecretError::NotFound(id.into()))
            }
            Err(e) => return Err(e),
        };
        tracing::info!(secret = %id, version, "secret created");
        self.audit(
            NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::Security, "SecretCreated")
                .resource("Secret", id)
                .message(format!("secret {id} created at version {version}"))
                .details(json!({ "version": version, "generated": generated })),
        )
        .await;
        Ok(SecretMetadata { current_version: version, ..meta })
    }

    pub async fn metadata(&self, id: &str) -> Result<SecretMetadata, SecretError> {
        check_id(id)?;
        self.backend.metadata(id).await?.ok_or_else(|| SecretError::NotFound(id.to_string()))
    }

    pub async fn list(&self) -> Result<Vec<SecretMetadata>, SecretError> {
        let mut all = Vec::new();
        for id in self.backend.list().await? {
            if check_id(&id).is_err() {
                continue;
            }
            if let Some(meta) = self.backend.metadata(&id).await? {
                all.push(meta);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// Writes a new, generated version; the previous one stays valid for the
    /// policy's rotation window.
    pub async fn rotate(&self, id: &str, actor: AuditActor) -> Result<SecretMetadata, SecretError> {
        let meta = self.metadata(id).await?;
        let next = meta.rotated(now());
        let value = SecretValue::generate(GENERATED_LEN)?;
        let result = self.backend.write(id, &value, meta.current_version, &next).await;
        let version = match result {
            Ok(v) => v,
            Err(e) => {
                self.audit(
                    NewAuditEntry::new(DEFAULT_TENANT, actor, AuditCategory::Security, "SecretRotationFailed")
                        .resource("Secret", id)
                        .result(AuditResult::Failure)
                        .message(e.to_string()),
                )
                .await;
                return Err(e);
            }
        };
        tracing::info!(secret = %id, version, previous = meta.current_version, "secret rotated");
        self.audit(
            NewAuditEntry::new(DEFAULT_TENANT, actor, AuditCategory::Security, "SecretRotated")
                .resource("Secret", id)
                .message(format!("secret {id} rotated to version {version}"))
                .details(json!({ "version": version, "previousVersion": meta.current_version,
                    "previousValidUntil": next.previous_valid_until })),
        )
        .await;
        if id == JWT_SIGNING_KEY {
            self.load_jwt_keys().await?;
        }
        Ok(SecretMetadata { current_version: version, ..next })
    }

    /// Installs the JWT signing key's current version, and its previous one
    /// while the rotation window lasts, in the token service.
    pub async fn load_jwt_keys(&self) -> Result<(), SecretError> {
        let meta = self.metadata(JWT_SIGNING_KEY).await?;
        let in_window = meta.previous_version.filter(|_| meta.in_rotation_window(Utc::now()));
        let wanted = (meta.current_version, in_window);
        if *self.installed.lock() == Some(wanted) {
            return Ok(());
        }
        let LiveJwtKeys { current: (_, current), previous } = self.live_jwt_keys(&meta).await?;
        let (current_kid, previous_kid) = (kid(meta.current_version), previous.as_ref().map(|(v, _, _)| kid(*v)));
        let keys = SigningKeys {
            current: (&current_kid, current.expose().as_bytes()),
            previous: previous
                .as_ref()
                .zip(previous_kid.as_ref())
                .map(|((_, value, until), k)| (k.as_str(), value.expose().as_bytes(), *until)),
        };
        self.auth.tokens.install(keys).map_err(SecretError::Invalid)?;
        *self.installed.lock() = Some(wanted);
        Ok(())
    }
}

/// The versions of `jwt-signing-key` that verify tokens now, by version
/// (the previous one with the end of its rotation window).
struct LiveJwtKeys {
    current: (u32, SecretValue),
    previous: Option<(u32, SecretValue, DateTime<Utc>)>,
}

/// What start-up makes of the JWT key the back-end holds (`keys`) beside
/// `auth.jwt_secret` (`configured`), which only seeds an empty back-end:
/// `Err` (refuse to start) when a key still accepted is a published default
/// outside `insecure_dev_mode`; `Ok(Some(warning))` when the configured secret
/// is not the key in use. The sentences name versions, never values.
fn judge_jwt_keys(
    backend: &str,
    configured: &str,
    current: (u32, &str),
    previous: Option<(u32, &str)>,
    insecure_dev_mode: bool,
) -> Result<Option<String>, String> {
    let published = |value: &str| crate::auth::settings::KNOWN_DEFAULT_SECRETS.contains(&value);
    let rotate = format!(
        "rotate it (POST /api/v1/secrets/{JWT_SIGNING_KEY}/rotate as an Admin of the system tenant, or \
         `hotswap secrets rotate {JWT_SIGNING_KEY}`)"
    );
    if !insecure_dev_mode {
        let which = match (published(current.1), previous.filter(|(_, v)| published(v))) {
            (true, _) => Some(format!("its current version (v{})", current.0)),
            (false, Some((v, _))) => {
                Some(format!("its previous version (v{v}), still accepted in the rotation window"))
            }
            (false, None) => None,
        };
        if let Some(which) = which {
            return Err(format!(
                "the {backend} secrets back-end holds {JWT_SIGNING_KEY} with a published default as {which}: \
                 anyone can sign an Admin token with it, whatever auth.jwt_secret says (that only seeds an empty \
                 back-end). Start once with server.insecure_dev_mode = true on a trusted network, {rotate} (twice, \
                 or wait out the rotation window, when the previous version is the published one), then start \
                 again"
            ));
        }
    }
    if configured != current.1 {
        return Ok(Some(format!(
            "auth.jwt_secret differs from {JWT_SIGNING_KEY} v{} that the {backend} secrets back-end holds: tokens \
             are signed and checked with the back-end's key, and auth.jwt_secret only seeds an empty back-end; to \
             replace the key, {rotate}",
            current.0
        )));
    }
    Ok(None)
}

impl SecretManager {
    /// The start-up check of the JWT key in use against `auth.jwt_secret`
    /// (see [`judge_jwt_keys`]): `Err` refuses to start, a warning is logged.
    pub async fn check_jwt_key_at_start(&self, configured: &str, insecure_dev_mode: bool) -> Result<(), String> {
        let read = async { self.live_jwt_keys(&self.metadata(JWT_SIGNING_KEY).await?).await };
        let keys = read.await.map_err(|e| format!("secret {JWT_SIGNING_KEY}: {e}"))?;
        let previous = keys.previous.as_ref().map(|(v, value, _)| (*v, value.expose()));
        let current = (keys.current.0, keys.current.1.expose());
        if let Some(warning) = judge_jwt_keys(self.backend.name(), configured, current, previous, insecure_dev_mode)? {
            tracing::warn!(secret = JWT_SIGNING_KEY, version = keys.current.0, "{warning}");
        }
        Ok(())
    }

    /// Reads the versions `meta` says verify tokens now.
    async fn live_jwt_keys(&self, meta: &SecretMetadata) -> Result<LiveJwtKeys, SecretError> {
        let missing = |v: u32| SecretError::Unavailable(format!("version {v} of {JWT_SIGNING_KEY} cannot be read"));
        let current = self
            .backend
            .value(JWT_SIGNING_KEY, meta.current_version)
            .await?
            .ok_or_else(|| missing(meta.current_version))?;
        let previous = match (meta.previous_version, meta.previous_valid_until) {
            (Some(v), Some(until)) if meta.in_rotation_window(Utc::now()) => {
                Some((v, self.backend.value(JWT_SIGNING_KEY, v).await?.ok_or_else(|| missing(v))?, until))
            }
            _ => None,
        };
        Ok(LiveJwtKeys { current: (meta.current_version, current), previous })
    }
}

#[cfg(test)]
mod tests {
    use super::judge_jwt_keys;

    const PUBLISHED: &str = "hotswap-development-only-jwt-secret-change-me-0123456789";
    const MINE: &str = "a-long-enough-secret-of-the-operators-own-choosing";
    const ROTATED: &str = "a-generated-value-the-back-end-rotated-to-000000";

    #[test]
    fn a_published_key_in_the_back_end_refuses_to_start_outside_dev_mode_whatever_is_configured() {
        let refused = judge_jwt_keys("postgres", MINE, (1, PUBLISHED), None, false).unwrap_err();
        assert!(refused.contains("published default as its current version (v1)"), "{refused}");
        assert!(refused.contains("hotswap secrets rotate jwt-signing-key"), "{refused}");
        assert!(!refused.contains(PUBLISHED) && !refused.contains(MINE), "no value is named: {refused}");
        // The previous version is still accepted while its window lasts.
        let refused = judge_jwt_keys("postgres", MINE, (2, ROTATED), Some((1, PUBLISHED)), false).unwrap_err();
        assert!(refused.contains("previous version (v1)"), "{refused}");
        // insecure_dev_mode allows it (the configuration's own checks said so already).
        let warned = judge_jwt_keys("postgres", MINE, (1, PUBLISHED), None, true).unwrap().unwrap();
        assert!(warned.contains("auth.jwt_secret differs from jwt-signing-key v1"), "{warned}");
    }

    #[test]
    fn a_configured_secret_the_back_end_does_not_use_is_a_warning() {
        assert_eq!(judge_jwt_keys("postgres", MINE, (1, MINE), None, false), Ok(None));
        let warned = judge_jwt_keys("vault", MINE, (3, ROTATED), Some((2, MINE)), false).unwrap().unwrap();
        assert!(warned.contains("the vault secrets back-end holds"), "{warned}");
        assert!(warned.contains("to replace the key, rotate it"), "{warned}");
        assert!(!warned.contains(MINE) && !warned.contains(ROTATED), "no value is named: {warned}");
    }

    #[test]
    fn only_plain_ids_are_secret_ids() {
        for ok in ["jwt-signing-key", "db_password", "a1"] {
            assert!(super::check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../sys/seal", "a/b", "-x", "UPPER", "a?list=true", &"x".repeat(129)] {
            assert!(super::check_id(bad).is_err(), "{bad}");
        }
    }
}
