//! The checks that span sections: what `server.insecure_dev_mode` alone
//! allows, and the registry's and secrets' needs of the store. Each section's
//! own checks live beside its settings type.

use super::{ArtifactBackend, MessagingBackend, SecretsBackend, Settings, StoreBackend, MIN_SAFE_BCRYPT_COST};

impl Settings {
    /// Every problem that spans sections, each a sentence naming its keys.
    pub(super) fn problems_across_sections(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.registry.artifact_backend == ArtifactBackend::Postgres && self.store.backend != StoreBackend::Postgres {
            problems.push("registry.artifact_backend = \"postgres\" needs store.backend = \"postgres\"".into());
        }
        if self.secrets.backend == SecretsBackend::Postgres && self.store.backend != StoreBackend::Postgres {
            problems.push("secrets.backend = \"postgres\" needs store.backend = \"postgres\"".into());
        }
        if !self.server.insecure_dev_mode {
            problems.extend(self.dev_only_settings().into_iter().map(|unsafe_setting| {
                format!(
                    "{unsafe_setting}; this is allowed only with server.insecure_dev_mode = true \
                     (development and test profiles)"
                )
            }));
        }
        problems
    }

    /// The settings in force that only a developer's machine may use, each
    /// named with its key.
    fn dev_only_settings(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.auth.has_published_secret() {
            found.push(
                "auth.jwt_secret is a published default: anyone can sign an Admin token with it \
                 (set HOTSWAP__AUTH__JWT_SECRET)"
                    .to_string(),
            );
        }
        if self.auth.demo_users {
            found.push("auth.demo_users is on: admin/Admin123! and the other demo accounts sign in".into());
        }
        if self.approvals.allow_self_approval {
            found.push("approvals.allow_self_approval is on: a requester may approve their own run".into());
        }
        if self.auth.bcrypt_cost < MIN_SAFE_BCRYPT_COST {
            found.push(format!(
                "auth.bcrypt_cost {} is below {MIN_SAFE_BCRYPT_COST}: stolen hashes are cheap to guess",
                self.auth.bcrypt_cost
            ));
        }
        if self.secrets.backend == SecretsBackend::Vault && !self.secrets.vault.address.starts_with("https://") {
            found.push("secrets.vault.address is not https: Vault tokens and secrets would cross in clear".into());
        }
        found
    }

    /// What an operator must hear at every start: the dev-only settings in
    /// force under `insecure_dev_mode`, and the weaker choices allowed anywhere.
    pub fn safety_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.server.insecure_dev_mode {
            warnings.push(
                "server.insecure_dev_mode is ON: this instance accepts settings that are unsafe anywhere but a \
                 developer's machine"
                    .to_string(),
            );
            warnings.extend(self.dev_only_settings());
        } else {
            if !(self.security.strict_mode && self.security.require_registered_modules) {
                warnings.push("security.strict_mode or require_registered_modules is off".into());
            }
            if self.secrets.backend == SecretsBackend::Memory {
                warnings.push(
                    "secrets.backend = \"memory\": rotated keys (the JWT signing key included) are lost at restart, \
                     when the key from auth.jwt_secret comes back, and each instance holds its own, so a key rotated \
                     in one is refused by the others; use secrets.backend = \"postgres\" or \"vault\""
                        .into(),
                );
            }
            if self.messaging.backend == MessagingBackend::Memory {
                warnings.push(
                    "messaging.backend = \"memory\": topics, subscriptions and messages are lost at restart, and \
                     each instance has its own; use messaging.backend = \"postgres\" or \"jetstream\""
                        .into(),
                );
            }
        }
        warnings
    }
}
