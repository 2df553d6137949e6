//! The adapters the core and the HTTP layer run on: the store, identity,
//! secrets and the module registry, opened from the settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use hotswap_actors::graph::{GraphService, GraphSyncStore};
use hotswap_actors::store::{MemoryStore, SharedStore, StoreError};
use uuid::Uuid;

use super::StartupError;
use crate::auth::AuthState;
use crate::config::{Settings, StoreBackend};
use crate::metrics::{PoolProbe, PoolUse};
use crate::registry::Registry;
use crate::secrets::SecretManager;
use crate::store::postgres::{migrate, PgStore};

/// What `Adapters::open` opened.
pub struct Adapters {
    pub store: SharedStore,
    /// How busy the PostgreSQL pool is, for the metrics.
    pub pool: Option<PoolProbe>,
    pub auth: web::Data<AuthState>,
    pub secrets: web::Data<SecretManager>,
    pub registry: web::Data<Registry>,
    /// The knowledge graph; `store` writes it as the actors change state.
    pub graph: web::Data<GraphService>,
    /// The message bus over its configured back-end.
    pub bus: web::Data<crate::messaging::MessageBus>,
    /// The backplane shared with other instances, when `[redis] url` is set.
    pub redis: Option<Arc<crate::redis::Redis>>,
    /// The stored run events `hotswap.deployments` has still to carry, on a
    /// store that keeps them across restarts (PostgreSQL).
    pub deployment_outbox: Option<Arc<dyn crate::messaging::deployment_outbox::DeploymentOutbox>>,
}

impl Adapters {
    /// Opens the store, then identity, the secrets, the demo users (seeded or
    /// retired as `auth.demo_users` says) and the registry over it.
    pub async fn open(settings: &Settings) -> Result<Adapters, StartupError> {
        let OpenedStore { store: plain, pool, installation } = open_store(settings).await?;
        // Everything writes through the graph's sync decorator, so that the
        // graph follows each change from the start (seeding included).
        let graph = GraphService::with_settings(plain, &settings.graph);
        let store = GraphSyncStore::wrap(graph.clone());
        let redis = crate::redis::Redis::start(&settings.redis, installation).map_err(StartupError::Config)?;
        let mut auth = AuthState::new(&settings.auth, store.clone()).await.map_err(StartupError::Auth)?;
        if let Some(redis) = &redis {
            super::graph_peers::connect(graph.clone(), redis.clone());
            auth.login_failures = crate::auth::login_failures::LoginFailures::shared(redis.clone());
            auth.cache = crate::auth::auth_cache::AuthCache::start(redis.clone());
            auth.signals = crate::auth::session_signals::SessionSignals::shared(redis.clone());
        }
        let auth = web::Data::new(auth);
        // Before the demo users are seeded or retired: a start the secrets
        // refuse (a published JWT key outside insecure_dev_mode) changes nothing.
        let secrets = open_secrets(settings, store.clone(), auth.clone()).await?;
        if settings.auth.demo_users {
            auth.seed_demo_users().await.map_err(|e| StartupError::Auth(format!("seeding demo users: {e}")))?;
        } else {
            auth.retire_demo_users().await.map_err(|e| StartupError::Auth(format!("retiring demo users: {e}")))?;
        }
        let registry = web::Data::new(open_registry(settings, store.clone()).await?);
        let tenants: Vec<_> =
            store.list_tenants(None).await.map(|ts| ts.into_iter().map(|t| t.tenant_id).collect()).unwrap_or_default();
        graph.preload(&tenants).await.map_err(|e| StartupError::Store(format!("loading the knowledge graph: {e}")))?;
        let bus = web::Data::new(open_message_bus(settings).await?);
        let deployment_outbox = open_deployment_outbox(settings).await?;
        Ok(Adapters {
            store,
            pool,
            auth,
            secrets,
            registry,
            graph: web::Data::from(graph),
            bus,
            redis,
            deployment_outbox,
        })
    }
}

/// The secret store, with the JWT signing key seeded from auth.jwt_secret
/// (unless the store holds it already) and installed in the token service,
/// (the rotation actor is background work, started with the core).
async fn open_secrets(
    settings: &Settings,
    store: SharedStore,
    auth: web::Data<crate::auth::AuthState>,
) -> Result<web::Data<crate::secrets::SecretManager>, StartupError> {
    use crate::config::SecretsBackend;
    use crate::secrets::manager::JWT_SIGNING_KEY;
    use crate::secrets::{memory::MemorySecrets, vault::VaultSecrets, SecretManager, SecretValue};
    let backend: Arc<dyn crate::secrets::SecretBackend> = match settings.secrets.backend {
        SecretsBackend::Memory => Arc::new(MemorySecrets::new()),
        SecretsBackend::Vault => {
            Arc::new(VaultSecrets::new(settings.secrets.vault.clone()).map_err(StartupError::Config)?)
        }
        SecretsBackend::Postgres => {
            let key = crate::secrets::sealing::SealingKey::from_base64(settings.secrets.encryption_key.expose())
                .map_err(StartupError::Config)?;
            // A small pool of its own: secrets are read at start and on each rotation check.
            let pool = crate::store::postgres::PgPoolSettings { max_size: 2, ..settings.store.pool.clone() };
            let pg =
                PgStore::connect(&settings.store.url, &pool).await.map_err(|e| StartupError::Store(e.to_string()))?;
            Arc::new(crate::store::postgres::PgSecrets::new(pg, key))
        }
    };
    let manager = web::Data::new(SecretManager::new(backend, store.clone(), auth.clone()));
    // A token signed with a key rotated on another instance reloads the ring
    // here at once rather than at the next periodic reload. Weak: the manager
    // holds the authentication state this closure lives in.
    let reloads = std::sync::Arc::downgrade(&manager.clone().into_inner());
    auth.key_refresh.install(Box::new(move || {
        let manager = reloads.upgrade();
        Box::pin(async move {
            let Some(manager) = manager else { return };
            if let Err(e) = manager.load_jwt_keys().await {
                tracing::warn!(secret = JWT_SIGNING_KEY, error = %e, "cannot reload the JWT signing keys");
            }
        })
    }));
    let secret_error = |e: crate::secrets::SecretError| StartupError::Auth(format!("secret {JWT_SIGNING_KEY}: {e}"));
    let seed = SecretValue::new(settings.auth.jwt_secret.expose());
    manager
        .ensure(JWT_SIGNING_KEY, Some(settings.secrets.jwt_policy.clone()), Some(seed))
        .await
        .map_err(secret_error)?;
    // The back-end's key wins over auth.jwt_secret once it holds one: the
    // configuration's check of a published secret must look there too.
    manager
        .check_jwt_key_at_start(settings.auth.jwt_secret.expose(), settings.server.insecure_dev_mode)
        .await
        .map_err(StartupError::Auth)?;
    manager.load_jwt_keys().await.map_err(secret_error)?;
    Ok(manager)
}

/// The outbox of run events on PostgreSQL, on a small pool of its own so that
/// publishing never waits for the runs' connections; none on the memory store.
async fn open_deployment_outbox(
    settings: &Settings,
) -> Result<Option<Arc<dyn crate::messaging::deployment_outbox::DeploymentOutbox>>, StartupError> {
    match settings.store.backend {
        StoreBackend::Memory => Ok(None),
        StoreBackend::Postgres => {
            let pool = crate::store::postgres::PgPoolSettings { max_size: 2, ..settings.store.pool.clone() };
            let outbox =
                PgStore::connect(&settings.store.url, &pool).await.map_err(|e| StartupError::Store(e.to_string()))?;
            Ok(Some(Arc::new(outbox)))
        }
    }
}

/// The module registry over the store, with its artifacts in a directory or
/// in PostgreSQL. The database artifacts get a small pool of their own, so
/// that large transfers never starve run checkpoints of connections.
async fn open_registry(settings: &Settings, store: SharedStore) -> Result<crate::registry::Registry, StartupError> {
    use crate::config::ArtifactBackend;
    use crate::registry::{Artifacts, DirectoryArtifacts, Registry};
    let backend: Arc<dyn crate::registry::ArtifactBackend> = match settings.registry.artifact_backend {
        ArtifactBackend::Filesystem => Arc::new(DirectoryArtifacts::new(&settings.registry.artifact_dir)),
        ArtifactBackend::Postgres => {
            let pool = crate::store::postgres::PgPoolSettings { max_size: 4, ..settings.store.pool.clone() };
            let blobs =
                PgStore::connect(&settings.store.url, &pool).await.map_err(|e| StartupError::Store(e.to_string()))?;
            Arc::new(blobs)
        }
    };
    Ok(Registry {
        store,
        artifacts: Artifacts::new(backend),
        security: settings.security.clone(),
        max_artifact_bytes: settings.registry.max_artifact_bytes,
        upload_read_timeout: settings.registry.upload_read_timeout,
        upload_slots: crate::registry::UploadSlots::new(settings.registry.max_concurrent_uploads),
        quota_locks: crate::registry::QuotaLocks::default(),
    })
}

/// The message bus on the back-end `[messaging] backend` names, with the
/// push deliveries of the subscriptions it kept restarted.
async fn open_message_bus(settings: &Settings) -> Result<crate::messaging::MessageBus, StartupError> {
    use crate::config::MessagingBackend;
    use hotswap_actors::messaging::{MemoryMessageStore, SharedMessageStore};
    let config = &settings.messaging;
    let store: SharedMessageStore = match config.backend {
        MessagingBackend::Memory => Arc::new(MemoryMessageStore::new(config.retry_policy(), config.idempotency_window)),
        MessagingBackend::Postgres => Arc::new(open_postgres_messages(settings).await?),
        MessagingBackend::Jetstream => {
            use crate::messaging::jetstream::{JetStreamConfig, JetStreamMessageStore};
            let jetstream = JetStreamConfig {
                url: config.nats_url.to_string(),
                prefix: config.nats_prefix.clone(),
                retry: config.retry_policy(),
                idempotency_window: config.idempotency_window,
                owner_lease: config.nats_owner_lease,
            };
            let store = JetStreamMessageStore::connect(jetstream)
                .await
                .map_err(|e| StartupError::Store(format!("messaging on JetStream: {e}")))?;
            Arc::new(store)
        }
    };
    let bus = crate::messaging::MessageBus::new(store, config.clone()).map_err(StartupError::Config)?;
    let bus = bus.with_schemas(open_schema_registry(settings).await?);
    let resumed = bus
        .resume_push_deliveries()
        .await
        .map_err(|e| StartupError::Store(format!("restarting push deliveries: {e}")))?;
    if resumed > 0 {
        tracing::info!(subscriptions = resumed, "push deliveries resumed");
    }
    Ok(bus)
}

/// The schema registry, kept in HotSwap's own store (`[store] backend`):
/// PostgreSQL gets a small pool of its own, as registry artifacts do.
async fn open_schema_registry(
    settings: &Settings,
) -> Result<Arc<hotswap_actors::schemas::SchemaRegistry>, StartupError> {
    use hotswap_actors::schemas::{MemorySchemaStore, SchemaRegistry, SharedSchemaStore};
    let store: SharedSchemaStore = match settings.store.backend {
        StoreBackend::Memory => Arc::new(MemorySchemaStore::new()),
        StoreBackend::Postgres => {
            let pool = crate::store::postgres::PgPoolSettings { max_size: 4, ..settings.store.pool.clone() };
            let pg =
                PgStore::connect(&settings.store.url, &pool).await.map_err(|e| StartupError::Store(e.to_string()))?;
            Arc::new(pg)
        }
    };
    Ok(Arc::new(SchemaRegistry::new(store)))
}

/// The message bus in the `[store]` database, with a small pool of its own
/// so that long-polling consumers never starve run checkpoints. Migrates
/// first, as the store does (a no-op when the store already did).
async fn open_postgres_messages(settings: &Settings) -> Result<crate::store::postgres::PgMessageStore, StartupError> {
    let url = &settings.store.url;
    migrate::run_pending(url).await.map_err(|e| StartupError::Store(format!("migrations failed: {e}")))?;
    let pool = crate::store::postgres::PgPoolSettings { max_size: 8, ..settings.store.pool.clone() };
    let config = &settings.messaging;
    crate::store::postgres::PgMessageStore::connect(url, &pool, config.retry_policy(), config.idempotency_window)
        .await
        .map_err(|e| StartupError::Store(format!("opening the message bus: {e}")))
}

/// How long start-up waits for PostgreSQL to accept connections.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// The configured store, opened.
pub struct OpenedStore {
    pub store: SharedStore,
    /// How the PostgreSQL pool is used, for `/health/ready` and metrics.
    pub pool: Option<PoolProbe>,
    /// Shared by every instance of this store and by no other store: what
    /// the instances' Redis keys and channels are named with.
    pub installation: Uuid,
}

/// Opens the configured store. PostgreSQL is migrated before anything is
/// served (or, for `hotswap user`, written); start-up waits a while for a database that is still starting.
pub async fn open_store(settings: &Settings) -> Result<OpenedStore, StartupError> {
    match settings.store.backend {
        StoreBackend::Memory => {
            let store = MemoryStore::with_finished_window(settings.store.memory_finished_runs)
                .with_lease_ttl(settings.cluster.lease_ttl);
            // A memory store is its own installation: no other process shares it.
            Ok(OpenedStore { store: Arc::new(store), pool: None, installation: Uuid::new_v4() })
        }
        StoreBackend::Postgres => {
            let url = &settings.store.url;
            let deadline = Instant::now() + DATABASE_WAIT;
            let mut delay = Duration::from_millis(200);
            loop {
                match migrate::run_pending(url).await {
                    Ok(applied) => {
                        for name in applied {
                            tracing::info!(migration = %name, "applied migration");
                        }
                        break;
                    }
                    Err(StoreError::Unavailable(e)) if Instant::now() < deadline => {
                        tracing::warn!(error = %e, ?delay, "PostgreSQL is not reachable yet; retrying");
                        actix_web::rt::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => return Err(StartupError::Store(format!("migrations failed: {e}"))),
                }
            }
            let store = PgStore::connect(url, &settings.store.pool)
                .await
                .map_err(|e| StartupError::Store(e.to_string()))?
                .with_lease_ttl(settings.cluster.lease_ttl);
            let installation = store
                .installation_id()
                .await
                .map_err(|e| StartupError::Store(format!("reading the installation's id: {e}")))?;
            let probed = store.clone();
            let probe: PoolProbe = Arc::new(move || {
                let (max, open, in_use) = probed.pool_use();
                let saves = probed.grouped_saves();
                PoolUse { max, open, in_use, run_saves: saves.saves, run_save_transactions: saves.transactions }
            });
            Ok(OpenedStore { store: Arc::new(store), pool: Some(probe), installation })
        }
    }
}
