//! Logging set-up: readable lines in development, JSON in production; RUST_LOG overrides the level.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingSettings};

pub fn init(settings: &LoggingSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests start several servers) is harmless.
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
