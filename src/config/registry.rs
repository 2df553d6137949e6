//! The checks of `[registry]`, `[security]` and `[secrets]` that need more than
//! their own section (the store back-end, the profile).

use super::{ArtifactBackend, ConfigError, SecretsBackend, Settings, StoreBackend, VaultAuth};

impl Settings {
    pub(super) fn validate_registry(&self) -> Result<(), ConfigError> {
        let r = &self.registry;
        if r.max_artifact_bytes == 0 {
            return Err(ConfigError("registry.max_artifact_bytes must be above zero".into()));
        }
        if r.gc_interval.is_zero() {
            return Err(ConfigError("registry.gc_interval must be above zero".into()));
        }
        if r.artifact_backend == ArtifactBackend::Filesystem && r.artifact_dir.as_os_str().is_empty() {
            return Err(ConfigError("registry.artifact_dir is required with artifact_backend = \"filesystem\"".into()));
        }
        if r.artifact_backend == ArtifactBackend::Postgres && self.store.backend != StoreBackend::Postgres {
            return Err(ConfigError(
                "registry.artifact_backend = \"postgres\" needs store.backend = \"postgres\"".into(),
            ));
        }
        if self.security.min_key_bits < crate::crypto::rsa_sig::MIN_KEY_BITS {
            return Err(ConfigError(format!(
                "security.min_key_bits must be at least {}",
                crate::crypto::rsa_sig::MIN_KEY_BITS
            )));
        }
        if self.is_production() && !(self.security.strict_mode && self.security.require_registered_modules) {
            tracing::warn!("security.strict_mode or require_registered_modules is off in production");
        }
        Ok(())
    }
}

impl Settings {
    pub(super) fn validate_secrets(&self) -> Result<(), ConfigError> {
        let s = &self.secrets;
        if s.check_interval.is_zero() {
            return Err(ConfigError("secrets.check_interval must be above zero".into()));
        }
        s.jwt_policy.validate("secrets.jwt_policy").map_err(ConfigError)?;
        if s.backend == SecretsBackend::Vault {
            let v = &s.vault;
            let https = v.address.starts_with("https://");
            if !https && !v.address.starts_with("http://") {
                return Err(ConfigError(
                    "secrets.vault.address must be an https:// URL such as https://vault:8200".into(),
                ));
            }
            // Vault tokens and secrets must not cross the network in clear.
            if self.is_production() && !https {
                return Err(ConfigError("secrets.vault.address must use https in production".into()));
            }
            if v.mount.trim_matches('/').is_empty() || v.timeout.is_zero() {
                return Err(ConfigError("secrets.vault.mount must be set and secrets.vault.timeout above zero".into()));
            }
            let missing = match v.auth {
                VaultAuth::Token => v.token.expose().is_empty(),
                VaultAuth::Approle => v.role_id.expose().is_empty() || v.secret_id.expose().is_empty(),
            };
            if missing {
                return Err(ConfigError(
                    "secrets.vault: auth = \"token\" needs token; auth = \"approle\" needs role_id and secret_id"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
