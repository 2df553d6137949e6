//! The checks that span sections: what `server.insecure_dev_mode` alone
//! allows, and the registry's and secrets' needs of the store. Each section's
//! own checks live beside its settings type.

use crate::dashboard::ASSETS_PREFIX;

use super::{ArtifactBackend, MessagingBackend, SecretsBackend, Settings, StoreBackend, MIN_SAFE_BCRYPT_COST};

/// The paths the API, its documents, the live hubs and the dashboard serve,
/// each with everything under it (the dashboard's page is `/` alone).
const RESERVED_PATHS: [&str; 6] = ["/api", "/api-docs", "/health", "/hubs", "/swagger-ui", ASSETS_PREFIX];

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
        // The bus opens store.url itself: without a PostgreSQL store it would
        // fail at start-up on an empty URL, naming no key.
        if self.messaging.backend == MessagingBackend::Postgres && self.store.backend != StoreBackend::Postgres {
            problems.push("messaging.backend = \"postgres\" needs store.backend = \"postgres\"".into());
        }
        problems.extend(self.metrics_clashes());
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

    /// secrets.backend = "postgres" (the production profile's) without its
    /// sealing key, as a sentence naming the variable that sets it.
    pub(super) fn missing_sealing_key(&self) -> Option<String> {
        (self.secrets.backend == SecretsBackend::Postgres && self.secrets.encryption_key.expose().trim().is_empty())
            .then(|| {
                "secrets.encryption_key is not set: secrets.backend = \"postgres\" seals the stored secrets with it; \
                 set HOTSWAP__SECRETS__ENCRYPTION_KEY to 32 random bytes in base64 (openssl rand -base64 32), \
                 the same on every instance"
                    .to_string()
            })
    }

    /// Where /metrics would take a place the API already holds: served on
    /// server.bind, the Prometheus middleware answers its path before any
    /// route, so `/health` would stop answering the image's health check and
    /// `/api/v1/deployments` would list metrics instead of runs. The same
    /// address for both servers fails only at bind time, without naming a key.
    fn metrics_clashes(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let path = self.metrics.path.trim_end_matches('/');
        let taken = RESERVED_PATHS.iter().find(|reserved| {
            path.is_empty() || path == **reserved || path.strip_prefix(**reserved).is_some_and(|r| r.starts_with('/'))
        });
        if let Some(reserved) = taken {
            let what = if path.is_empty() { "is the dashboard's page /".to_string() } else { format!("is {reserved}") };
            problems.push(format!(
                "metrics.path '{}' {what} or under it, a path the API or the dashboard serves; \
                 choose another such as /metrics (paths under {} are taken)",
                self.metrics.path,
                RESERVED_PATHS.join(", ")
            ));
        }
        if let (Ok(api), Ok(metrics)) =
            (self.server.bind.parse::<std::net::SocketAddr>(), self.metrics.bind.trim().parse::<std::net::SocketAddr>())
        {
            let same_ip = api.ip() == metrics.ip() || api.ip().is_unspecified() || metrics.ip().is_unspecified();
            if api.port() != 0 && api.port() == metrics.port() && same_ip {
                problems.push(format!(
                    "metrics.bind '{}' is the address of server.bind '{}': give /metrics a port of its own, \
                     or leave metrics.bind empty to serve it on server.bind",
                    self.metrics.bind, self.server.bind
                ));
            }
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
            if self.store.backend == StoreBackend::Memory {
                warnings.push(
                    "store.backend = \"memory\": runs, users, audit and every other record are lost at restart, \
                     and each instance has its own; use store.backend = \"postgres\" (HOTSWAP__STORE__BACKEND, \
                     HOTSWAP__STORE__URL)"
                        .into(),
                );
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
