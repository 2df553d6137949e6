//! Loading, layering and validation of the settings.

use super::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn load(profile: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load_from(&dir(), profile, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn profiles_layer_over_the_defaults() {
    let dev = load("development", &[]).unwrap();
    assert_eq!(dev.pipeline.canary_bake_time, Duration::from_secs(900));
    assert_eq!(dev.simulation.nodes.production, 20);
    let test = load("test", &[]).unwrap();
    assert!(test.pipeline.canary_bake_time <= Duration::from_secs(1));
    assert!(test.pipeline.rolling_health_check_delay <= Duration::from_secs(1));
    assert!(test.pipeline.bluegreen_smoke_test_timeout <= Duration::from_secs(1));
}

#[test]
fn environment_variables_win() {
    let s = load(
        "development",
        &[
            ("HOTSWAP__SERVER__BIND", "127.0.0.1:18080"),
            ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "2s"),
            ("HOTSWAP__SIMULATION__NODES__PRODUCTION", "10000"),
            ("HOTSWAP__PIPELINE__CANARY_STEPS", "25,50,100"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.bind, "127.0.0.1:18080");
    assert_eq!(s.pipeline.canary_bake_time, Duration::from_secs(2));
    assert_eq!(s.simulation.nodes.production, 10000);
    assert_eq!(s.pipeline.canary_steps, vec![25, 50, 100]);
}

#[test]
fn bad_values_name_their_key() {
    let e = load("development", &[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "soon")]).unwrap_err();
    assert!(e.to_string().contains("canary_bake_time"), "{e}");
    let e = load("development", &[("HOTSWAP__PIPELINE__CANARY_STEPS", "50,10")]).unwrap_err();
    assert!(e.to_string().contains("pipeline.canary_steps"), "{e}");
    let e = load("development", &[("HOTSWAP__SERVER__BIND", "nowhere")]).unwrap_err();
    assert!(e.to_string().contains("server.bind"), "{e}");
    let e = load("development", &[("HOTSWAP__PIPELINE__NO_SUCH_KEY", "1")]).unwrap_err();
    assert!(e.to_string().contains("no_such_key"), "{e}");
}

const PROD_SECRET: (&str, &str) = ("HOTSWAP__AUTH__JWT_SECRET", "a-production-secret-of-at-least-32-bytes!");
const PROD_URL: (&str, &str) = ("HOTSWAP__STORE__URL", "postgres://u:secret@db/hotswap");
const PROD_KEY: (&str, &str) = ("HOTSWAP__SECRETS__ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");

#[test]
fn live_update_and_telemetry_keys_are_checked() {
    let d = load("development", &[]).unwrap();
    assert_eq!(d.websocket.ping_interval, Duration::from_secs(5));
    assert_eq!(d.websocket.client_timeout, Duration::from_secs(10));
    assert!(d.telemetry.otlp_endpoint.is_empty() && d.metrics.enabled);
    let e = load("development", &[("HOTSWAP__WEBSOCKET__CLIENT_TIMEOUT", "1s")]).unwrap_err();
    assert!(e.to_string().contains("websocket.client_timeout"), "{e}");
    let e = load("development", &[("HOTSWAP__WEBSOCKET__SEND_BUFFER", "0")]).unwrap_err();
    assert!(e.to_string().contains("send_buffer"), "{e}");
    let e = load("development", &[("HOTSWAP__TELEMETRY__OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
    assert!(e.to_string().contains("telemetry.otlp_endpoint"), "{e}");
    let e = load("development", &[("HOTSWAP__TELEMETRY__SAMPLE_RATIO", "2")]).unwrap_err();
    assert!(e.to_string().contains("sample_ratio"), "{e}");
    let e = load("development", &[("HOTSWAP__METRICS__PATH", "metrics")]).unwrap_err();
    assert!(e.to_string().contains("metrics.path"), "{e}");
}

#[test]
fn production_requires_a_database_url() {
    let e = load("production", &[PROD_SECRET]).unwrap_err();
    assert!(e.to_string().contains("store.url"), "{e}");
    let p = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap();
    assert!(!p.simulation.enabled);
    assert!(!format!("{:?}", p.store).contains("secret"));
}

#[test]
fn production_refuses_weak_secrets_and_demo_users() {
    let e = load("production", &[PROD_URL]).unwrap_err();
    assert!(e.to_string().contains("auth.jwt_secret"), "{e}");
    for weak in KNOWN_DEFAULT_SECRETS.into_iter().chain(["short-secret"]) {
        let e = load("production", &[PROD_URL, ("HOTSWAP__AUTH__JWT_SECRET", weak)]).unwrap_err();
        assert!(e.to_string().contains("auth.jwt_secret"), "{e}");
    }
    let e = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY, ("HOTSWAP__AUTH__DEMO_USERS", "true")]).unwrap_err();
    assert!(e.to_string().contains("auth.demo_users"), "{e}");
    let p = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap();
    assert!(!p.auth.demo_users);
    assert!(p.cors.allowed_origins.is_empty());
    assert!(!p.api_docs.swagger_ui);
    assert_eq!(p.auth.bcrypt_cost, 12);
    // Secrets stay out of `hotswap config`.
    assert!(!format!("{p:?}").contains(PROD_SECRET.1));
}

/// A new production profile with several mistakes hears of all of them at
/// its first start, each naming its key, not of one per attempt.
#[test]
fn every_configuration_problem_is_reported_at_once() {
    let e = load(
        "production",
        &[("HOTSWAP__AUTH__DEMO_USERS", "true"), ("HOTSWAP__APPROVALS__ALLOW_SELF_APPROVAL", "true")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("5 problems:\n  - "), "{e}");
    for key in [
        "store.url",
        "HOTSWAP__SECRETS__ENCRYPTION_KEY",
        "auth.jwt_secret",
        "auth.demo_users",
        "approvals.allow_self_approval",
    ] {
        assert!(e.contains(key), "{key} is not named: {e}");
    }
    // One problem reads as before: a sentence of its own.
    let e = load("production", &[PROD_URL, PROD_KEY]).unwrap_err().to_string();
    assert!(!e.contains("problems:") && e.contains("auth.jwt_secret"), "{e}");
}

#[test]
fn only_insecure_dev_mode_allows_the_published_secret_and_demo_users() {
    // Safety follows the settings, not the profile's name: a profile whose
    // file sets nothing (staging here) gets the defaults.
    let staging = tempfile::tempdir().unwrap();
    std::fs::copy(dir().join("default.toml"), staging.path().join("default.toml")).unwrap();
    std::fs::write(staging.path().join("staging.toml"), "# Only the defaults.\n").unwrap();
    let load = |profile: &str, vars: &[(&str, &str)]| match profile {
        "staging" => {
            Settings::load_from(staging.path(), profile, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        }
        _ => load(profile, vars),
    };
    for profile in ["staging", "production"] {
        let e = load(profile, &[PROD_URL]).unwrap_err();
        assert!(e.to_string().contains("auth.jwt_secret is a published default"), "{profile}: {e}");
        assert!(e.to_string().contains("server.insecure_dev_mode"), "{profile}: {e}");
        let e = load(profile, &[PROD_URL, PROD_SECRET, PROD_KEY, ("HOTSWAP__AUTH__DEMO_USERS", "true")]).unwrap_err();
        assert!(e.to_string().contains("auth.demo_users"), "{profile}: {e}");
        let e = load(profile, &[PROD_URL, PROD_SECRET, PROD_KEY, ("HOTSWAP__APPROVALS__ALLOW_SELF_APPROVAL", "true")])
            .unwrap_err();
        assert!(e.to_string().contains("approvals.allow_self_approval"), "{profile}: {e}");
        let ok = load(profile, &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap();
        assert!(!ok.server.insecure_dev_mode && !ok.auth.demo_users && !ok.approvals.allow_self_approval);
        assert!(ok.safety_warnings().iter().all(|w| !w.contains("insecure_dev_mode")));
    }
    // Saying so explicitly allows them, and the start-up warnings say so.
    let dev_mode = ("HOTSWAP__SERVER__INSECURE_DEV_MODE", "true");
    let s = load("staging", &[dev_mode, ("HOTSWAP__AUTH__DEMO_USERS", "true")]).unwrap();
    let warnings = s.safety_warnings().join("\n");
    assert!(warnings.contains("insecure_dev_mode is ON"), "{warnings}");
    assert!(warnings.contains("auth.jwt_secret") && warnings.contains("auth.demo_users"), "{warnings}");
    for profile in ["development", "test"] {
        assert!(load(profile, &[]).unwrap().server.insecure_dev_mode, "{profile}");
    }
    assert!(!load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap().server.insecure_dev_mode);
}

#[test]
fn cheap_password_hashes_need_insecure_dev_mode() {
    let e = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY, ("HOTSWAP__AUTH__BCRYPT_COST", "4")]).unwrap_err();
    assert!(e.to_string().contains("auth.bcrypt_cost"), "{e}");
    let ok = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY, ("HOTSWAP__AUTH__BCRYPT_COST", "10")]).unwrap();
    assert_eq!(ok.auth.bcrypt_cost, 10);
    assert_eq!(load("test", &[]).unwrap().auth.bcrypt_cost, 4);
}

#[test]
fn a_memory_secrets_back_end_is_announced_outside_dev_mode() {
    let memory = [("HOTSWAP__SECRETS__BACKEND", "memory"), ("HOTSWAP__MESSAGING__BACKEND", "memory")];
    let p = load("production", &[PROD_URL, PROD_SECRET, memory[0], memory[1]]).unwrap();
    let warnings = p.safety_warnings().join("\n");
    assert!(warnings.contains("secrets.backend = \"memory\""), "{warnings}");
    assert!(warnings.contains("messaging.backend = \"memory\""), "{warnings}");
    let warnings = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap().safety_warnings().join("\n");
    assert!(!warnings.contains("messaging.backend") && !warnings.contains("secrets.backend"), "{warnings}");
}

/// The production profile keeps the message bus and the secrets in its
/// database: in memory, acknowledged publishes and rotated keys were lost at
/// restart. Their sealing key has no default, and its absence names the
/// variable that sets it.
#[test]
fn production_keeps_messages_and_secrets_in_postgres() {
    let p = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap();
    assert_eq!(p.store.backend, StoreBackend::Postgres);
    assert_eq!(p.messaging.backend, MessagingBackend::Postgres);
    assert_eq!(p.secrets.backend, SecretsBackend::Postgres);
    assert!(p.safety_warnings().iter().all(|w| !w.contains("\"memory\"")), "{:?}", p.safety_warnings());
    let e = load("production", &[PROD_URL, PROD_SECRET]).unwrap_err().to_string();
    assert!(e.contains("secrets.encryption_key is not set") && e.contains("HOTSWAP__SECRETS__ENCRYPTION_KEY"), "{e}");
    assert!(!e.contains("problems:"), "one problem, said once: {e}");
    // The bus, like the secrets, lives in the store's database.
    let e = load("test", &[("HOTSWAP__MESSAGING__BACKEND", "postgres")]).unwrap_err().to_string();
    assert!(e.contains("messaging.backend = \"postgres\" needs store.backend = \"postgres\""), "{e}");
}

#[test]
fn ipv6_clients_are_keyed_by_a_configurable_prefix() {
    assert_eq!(load("test", &[]).unwrap().rate_limit.ipv6_prefix, 64);
    let e = load("test", &[("HOTSWAP__RATE_LIMIT__IPV6_PREFIX", "0")]).unwrap_err();
    assert!(e.to_string().contains("rate_limit.ipv6_prefix"), "{e}");
    assert_eq!(load("test", &[("HOTSWAP__RATE_LIMIT__IPV6_PREFIX", "56")]).unwrap().rate_limit.ipv6_prefix, 56);
}

#[test]
fn registry_and_security_keys_are_checked() {
    let p = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap();
    assert!(p.security.strict_mode && p.security.require_registered_modules);
    assert_eq!(p.registry.max_artifact_bytes, 64 * 1024 * 1024);
    let t = load("test", &[]).unwrap();
    assert!(!t.security.strict_mode && !t.security.require_registered_modules);
    let e = load("test", &[("HOTSWAP__SECURITY__MIN_KEY_BITS", "1024")]).unwrap_err();
    assert!(e.to_string().contains("security.min_key_bits"), "{e}");
    let e = load("test", &[("HOTSWAP__REGISTRY__ARTIFACT_BACKEND", "postgres")]).unwrap_err();
    assert!(e.to_string().contains("registry.artifact_backend"), "{e}");
    let e = load("test", &[("HOTSWAP__REGISTRY__MAX_ARTIFACT_BYTES", "0")]).unwrap_err();
    assert!(e.to_string().contains("max_artifact_bytes"), "{e}");
}

#[test]
fn secrets_keys_are_checked() {
    let d = load("development", &[]).unwrap();
    assert_eq!(d.secrets.backend, SecretsBackend::Memory);
    assert_eq!(d.secrets.jwt_policy.rotation_window, Duration::from_secs(48 * 3600));
    let vault = ("HOTSWAP__SECRETS__BACKEND", "vault");
    let e = load("development", &[vault, ("HOTSWAP__SECRETS__VAULT__ADDRESS", "vault:8200")]).unwrap_err();
    assert!(e.to_string().contains("secrets.vault.address"), "{e}");
    let addr = ("HOTSWAP__SECRETS__VAULT__ADDRESS", "https://vault:8200");
    let e = load("development", &[vault, addr]).unwrap_err();
    assert!(e.to_string().contains("needs token"), "{e}");
    let token = ("HOTSWAP__SECRETS__VAULT__TOKEN", "s.vault-token-value");
    let ok = load("development", &[vault, addr, token]).unwrap();
    assert!(!format!("{ok:?}").contains("s.vault-token-value"), "the token stays out of `hotswap config`");
    let plain = ("HOTSWAP__SECRETS__VAULT__ADDRESS", "http://vault:8200");
    let e = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY, vault, plain, token]).unwrap_err();
    assert!(e.to_string().contains("secrets.vault.address is not https"), "{e}");
    let e = load("test", &[("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_WINDOW", "1000d")]).unwrap_err();
    assert!(e.to_string().contains("secrets.jwt_policy"), "{e}");
}

#[test]
fn shared_secrets_need_postgres_and_a_32_byte_key() {
    let postgres = ("HOTSWAP__SECRETS__BACKEND", "postgres");
    let e = load("production", &[PROD_URL, PROD_SECRET, postgres]).unwrap_err();
    assert!(e.to_string().contains("secrets.encryption_key is not set"), "{e}");
    let short = ("HOTSWAP__SECRETS__ENCRYPTION_KEY", "c2hvcnQ=");
    let e = load("production", &[PROD_URL, PROD_SECRET, postgres, short]).unwrap_err();
    assert!(e.to_string().contains("holds 5 bytes"), "{e}");
    let key = ("HOTSWAP__SECRETS__ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    let e = load("test", &[postgres, key]).unwrap_err();
    assert!(e.to_string().contains("secrets.backend = \"postgres\" needs store.backend = \"postgres\""), "{e}");
    let ok = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY, postgres, key]).unwrap();
    assert_eq!(ok.secrets.backend, SecretsBackend::Postgres);
    assert!(!format!("{ok:?}").contains("MDEyMzQ1Njc4"), "the key stays out of `hotswap config`");
    let warnings = ok.safety_warnings().join("\n");
    assert!(!warnings.contains("secrets.backend"), "{warnings}");
}

#[test]
fn profiles_set_the_security_defaults() {
    let dev = load("development", &[]).unwrap();
    assert!(dev.auth.demo_users);
    assert_eq!(dev.rate_limit.deployments, 100);
    assert!(dev.api_docs.swagger_ui);
    let test = load("test", &[]).unwrap();
    assert!(test.auth.demo_users);
    assert_eq!(test.auth.bcrypt_cost, 4);
    assert!(!test.rate_limit.enabled);
    let e = load("test", &[("HOTSWAP__AUTH__TOKEN_LEEWAY", "5m")]).unwrap_err();
    assert!(e.to_string().contains("auth.token_leeway"), "{e}");
    let e = load("test", &[("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "10.0.0.1,nowhere")]).unwrap_err();
    assert!(e.to_string().contains("rate_limit.trusted_proxies"), "{e}");
    let ok = load("test", &[("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "10.0.0.1,192.168.0.0/16,::1")]).unwrap();
    assert_eq!(ok.rate_limit.trusted_proxies.len(), 3);
}

#[test]
fn webhook_urls_stay_out_of_hotswap_config() {
    let hook = "https://hooks.example.com:8443/services/T000/B000/XXXXsecretXXXX?token=abc";
    let s = load("test", &[("HOTSWAP__NOTIFICATIONS__WEBHOOKS", hook)]).unwrap();
    assert_eq!(s.notifications.webhooks, [hook]);
    let printed = format!("{s:#?}");
    assert!(!printed.contains("XXXXsecretXXXX") && !printed.contains("token=abc"), "{printed}");
    assert!(printed.contains("https://hooks.example.com:8443/<redacted>"));
    let e =
        load("test", &[("HOTSWAP__NOTIFICATIONS__WEBHOOKS", "ftp://files.example.com/drop/secret-path")]).unwrap_err();
    assert!(!e.to_string().contains("secret-path"), "{e}");
}

#[test]
fn credentials_in_service_addresses_stay_out_of_hotswap_config() {
    let s = load(
        "test",
        &[
            ("HOTSWAP__MESSAGING__NATS_URL", "nats://user:natspw123@127.0.0.1:4222"),
            ("HOTSWAP__ANALYSIS__URL", "http://u:prompw789@127.0.0.1:9090"),
            ("HOTSWAP__TELEMETRY__OTLP_ENDPOINT", "http://collector:otlppw456@127.0.0.1:4318"),
        ],
    )
    .unwrap();
    assert_eq!(s.messaging.nats_url.as_str(), "nats://user:natspw123@127.0.0.1:4222", "connecting uses them");
    let printed = format!("{s:#?}");
    for password in ["natspw123", "prompw789", "otlppw456"] {
        assert!(!printed.contains(password), "{password} in {printed}");
    }
    assert!(printed.contains("nats://<redacted>@127.0.0.1:4222"), "{printed}");
    assert!(printed.contains("http://<redacted>@127.0.0.1:9090"), "{printed}");
}

/// A binary without a config directory loads the profiles built into it: the
/// same settings, key for key, as the checkout's files give.
#[test]
fn the_built_in_profiles_are_the_checkouts() {
    let vars = [PROD_URL, PROD_SECRET, PROD_KEY];
    for profile in ["development", "test", "production"] {
        let owned = || vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let from_dir = format!("{:?}", Settings::load_from(&dir(), profile, owned()).unwrap());
        let built_in = format!("{:?}", Settings::load_embedded(profile, owned()).unwrap());
        assert_eq!(built_in, from_dir, "profile {profile}");
    }
    // Every profile file of the checkout is built in: one added later and not
    // listed in `embedded` would be missing from a binary run alone.
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(profile) = name.strip_suffix(".toml") else { continue };
        if profile != "default" {
            assert!(embedded::profile(profile).is_some(), "config/{name} is not built into the binary");
        }
    }
}

#[test]
fn enrolment_token_retention_is_a_setting_and_its_sweep_needs_an_interval() {
    let d = load("development", &[]).unwrap();
    assert_eq!(d.agent.token_retention, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(d.agent.token_sweep_interval, Duration::from_secs(3600));
    let keep_all = load("development", &[("HOTSWAP__AGENT__TOKEN_RETENTION", "0s")]).unwrap();
    assert!(keep_all.agent.token_retention.is_zero());
    let e = load("development", &[("HOTSWAP__AGENT__TOKEN_SWEEP_INTERVAL", "0s")]).unwrap_err();
    assert!(e.to_string().contains("agent.token_sweep_interval"), "{e}");
}

/// A level that is not one (a typo) would be read as a target and turn all
/// logging off: it stops start-up instead, naming its key.
#[test]
fn log_and_trace_levels_are_levels() {
    for bad in ["loud", "warnn", "info,hotswap=loud", "=debug", "info,,warn", ""] {
        let e = load("test", &[("HOTSWAP__LOGGING__LEVEL", bad)]).unwrap_err();
        assert!(e.to_string().contains("logging.level"), "{bad}: {e}");
        let e = load("test", &[("HOTSWAP__TELEMETRY__LEVEL", bad)]).unwrap_err();
        assert!(e.to_string().contains("telemetry.level"), "{bad}: {e}");
    }
    for good in ["info", "WARN", "off", "warn,hotswap=debug", "hotswap::coordinator=trace", "error,tokio_postgres=off"]
    {
        let s = load("test", &[("HOTSWAP__LOGGING__LEVEL", good), ("HOTSWAP__TELEMETRY__LEVEL", good)]).unwrap();
        assert_eq!(s.logging.level, good);
    }
}

/// /metrics served on server.bind must not hide a route, and its own address
/// must not be the API's.
#[test]
fn metrics_keep_out_of_the_apis_paths_and_address() {
    for taken in [
        "/",
        "/health",
        "/health/ready",
        "/api",
        "/api/v1/deployments",
        "/hubs/deployment",
        "/swagger-ui",
        "/api-docs/openapi.json",
        "/dashboard",
        "/dashboard/app.js",
        "/health/",
    ] {
        let e = load("test", &[("HOTSWAP__METRICS__PATH", taken)]).unwrap_err();
        assert!(e.to_string().contains("metrics.path"), "{taken}: {e}");
    }
    for free in ["/metrics", "/internal/metrics", "/healthz", "/apis"] {
        assert_eq!(load("test", &[("HOTSWAP__METRICS__PATH", free)]).unwrap().metrics.path, free);
    }
    let api = ("HOTSWAP__SERVER__BIND", "127.0.0.1:8080");
    for same in ["127.0.0.1:8080", "0.0.0.0:8080"] {
        let e = load("test", &[api, ("HOTSWAP__METRICS__BIND", same)]).unwrap_err();
        assert!(e.to_string().contains("metrics.bind") && e.to_string().contains("server.bind"), "{same}: {e}");
    }
    assert!(load("test", &[api, ("HOTSWAP__METRICS__BIND", "127.0.0.1:9090")]).is_ok());
    // Two ephemeral ports are two addresses.
    assert!(load("test", &[("HOTSWAP__METRICS__BIND", "127.0.0.1:0")]).is_ok());
}

/// A misspelt HOTSWAP_ENV used to start on the bare defaults (memory store,
/// simulated clusters) under the misspelt name.
#[test]
fn a_profile_without_a_file_or_a_built_in_one_is_refused() {
    let owned =
        || [PROD_URL, PROD_SECRET, PROD_KEY].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    for profile in ["prodution", "Production", "staging"] {
        for e in [Settings::load_from(&dir(), profile, owned()), Settings::load_embedded(profile, owned())] {
            let e = e.unwrap_err().to_string();
            assert!(e.contains(&format!("HOTSWAP_ENV '{profile}' names no profile")), "{e}");
            assert!(e.contains("development, production, test"), "{e}");
        }
    }
    // A profile of the operator's own, with its file in the config directory, is one.
    let own = tempfile::tempdir().unwrap();
    std::fs::copy(dir().join("default.toml"), own.path().join("default.toml")).unwrap();
    std::fs::write(own.path().join("staging.toml"), "[logging]\nformat = \"json\"\n").unwrap();
    let staging = Settings::load_from(own.path(), "staging", owned()).unwrap();
    assert_eq!(staging.logging.format, LogFormat::Json);
    let e = Settings::load_from(own.path(), "stagin", owned()).unwrap_err().to_string();
    assert!(e.contains("development, production, staging, test"), "{e}");
}

#[test]
fn a_memory_store_is_announced_outside_dev_mode() {
    let memory = [
        ("HOTSWAP__STORE__BACKEND", "memory"),
        ("HOTSWAP__SECRETS__BACKEND", "memory"),
        ("HOTSWAP__MESSAGING__BACKEND", "memory"),
    ];
    let p = load("production", &[PROD_SECRET, memory[0], memory[1], memory[2]]).unwrap();
    let warnings = p.safety_warnings().join("\n");
    assert!(warnings.contains("store.backend = \"memory\""), "{warnings}");
    let p = load("production", &[PROD_URL, PROD_SECRET, PROD_KEY]).unwrap();
    assert!(!p.safety_warnings().join("\n").contains("store.backend"));
    // Development and test use it on purpose.
    assert!(!load("test", &[]).unwrap().safety_warnings().join("\n").contains("store.backend"));
}

/// An origin that is not scheme://host[:port] never matches a browser's
/// Origin header: it used to be accepted and silently allowed no one.
#[test]
fn cors_origins_are_origins() {
    for bad in ["[\"https://a.example\"]", "notanorigin", "https://a.example/app", "https://a.example:port", "https://"]
    {
        let e = load("test", &[("HOTSWAP__CORS__ALLOWED_ORIGINS", bad)]).unwrap_err();
        assert!(e.to_string().contains("cors.allowed_origins"), "{bad}: {e}");
    }
    let good = "https://a.example,http://localhost:3000,http://[::1]:8080,*";
    let s = load("test", &[("HOTSWAP__CORS__ALLOWED_ORIGINS", good)]).unwrap();
    assert_eq!(s.cors.allowed_origins.len(), 4);
    assert_eq!(load("development", &[]).unwrap().cors.allowed_origins.len(), 2);
}
