//! Logs and traces. Logs: readable lines in development, JSON in production;
//! RUST_LOG overrides `[logging] level`. Traces: every span goes through
//! OpenTelemetry (filtered by `[telemetry] level`), so trace ids are real
//! W3C ids everywhere; with `[telemetry] otlp_endpoint` set they are exported
//! over OTLP/HTTP.

use std::collections::HashMap;
use std::io::IsTerminal;

use hotswap_actors::hooks::SpanContext;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::Filter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub mod settings;

use settings::{LogFormat, LoggingSettings, TelemetrySettings};

/// Keeps the tracer provider; dropping it flushes spans not exported yet.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// The tracer provider: ids for every span, export only with an endpoint.
pub fn tracer_provider(settings: &TelemetrySettings) -> Result<SdkTracerProvider, String> {
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio))))
        .with_resource(Resource::builder().with_service_name(settings.service_name.clone()).build());
    let endpoint = settings.otlp_endpoint.trim().trim_end_matches('/');
    if !endpoint.is_empty() {
        let url = if endpoint.ends_with("/v1/traces") { endpoint.to_string() } else { format!("{endpoint}/v1/traces") };
        crate::notify::install_crypto_provider();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint: cannot build the OTLP exporter: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// The OpenTelemetry layer, for spans at or above `[telemetry] level`.
pub fn otel_layer<S>(provider: &SdkTracerProvider, settings: &TelemetrySettings) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    let tracer = provider.tracer("hotswap");
    tracing_opentelemetry::layer().with_tracer(tracer).with_filter(quiet_dependencies(&settings.level))
}

/// Libraries whose debug and trace events carry what the process must not
/// write down: the PostgreSQL driver logs every statement's parameters
/// (password hashes, sealed secrets, whole artifacts), the WebSocket and HTTP
/// layers log frames and headers (session credentials, tokens). They are held
/// at `info` unless the filter names them itself, so `RUST_LOG=debug` debugs
/// HotSwap without copying its data into the log.
const DEPENDENCIES_HELD_AT_INFO: &[&str] = &[
    "tokio_postgres",
    "postgres_protocol",
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
];

/// The log filter of the process: `RUST_LOG` when it is set, else the
/// configured level, with the chatty dependencies held at `info`.
pub fn log_filter<S: tracing::Subscriber>(configured_level: &str) -> impl Filter<S> + Send + Sync {
    let text = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| configured_level.to_string());
    quiet_dependencies(&text)
}

/// The filter of `directives`, where the dependencies of
/// [`DEPENDENCIES_HELD_AT_INFO`] that the directives do not name let nothing
/// finer than `info` through (and nothing the directives would not let through).
pub fn quiet_dependencies<S: tracing::Subscriber>(directives: &str) -> impl Filter<S> + Send + Sync {
    let held: Vec<&'static str> =
        DEPENDENCIES_HELD_AT_INFO.iter().copied().filter(|target| !directives.contains(target)).collect();
    let is_held = move |target: &str| {
        held.iter().any(|h| target == *h || target.strip_prefix(h).is_some_and(|rest| rest.starts_with("::")))
    };
    EnvFilter::new(directives).and(filter_fn(move |meta| *meta.level() <= Level::INFO || !is_held(meta.target())))
}

/// Installs logging and tracing for the process. A second call (tests start
/// several servers) changes nothing.
#[allow(clippy::expect_used)] // A provider without an exporter has nothing that can fail.
pub fn init(logging: &LoggingSettings, telemetry: &TelemetrySettings) -> TelemetryGuard {
    let provider = match tracer_provider(telemetry) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hotswap: {e}; traces are not exported");
            tracer_provider(&TelemetrySettings { otlp_endpoint: Default::default(), ..telemetry.clone() })
                .expect("a provider without exporter builds")
        }
    };
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![Box::new(
        TraceContextPropagator::new(),
    )]));
    let filter = || log_filter::<Registry>(&logging.level);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match logging.format {
        // The span list already ends with the current span: writing that span
        // again on its own would double every request's line.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_filter(filter())
            .boxed(),
        // Colours only for a terminal: a log redirected to a file or a
        // collector would otherwise be full of escape codes.
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(filter())
            .boxed(),
    };
    let installed = tracing_subscriber::registry().with(fmt).with(otel_layer(&provider, telemetry)).try_init();
    TelemetryGuard { provider: installed.is_ok().then_some(provider) }
}

/// The W3C trace id of a span, when it is traced.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The core's view of trace context, backed by OpenTelemetry.
pub struct OtelSpans;

impl SpanContext for OtelSpans {
    fn context_of(&self, span: &tracing::Span) -> Option<(String, String)> {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            return None;
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
        Some((sc.trace_id().to_string(), carrier.remove("traceparent")?))
    }

    fn adopt(&self, span: &tracing::Span, traceparent: &str) {
        let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TelemetrySettings {
        TelemetrySettings {
            otlp_endpoint: Default::default(),
            service_name: "hotswap-test".into(),
            level: "info".into(),
            sample_ratio: 1.0,
        }
    }

    /// The targets of the events a subscriber with `filter` lets through.
    fn targets_let_through(filter: impl Filter<Registry> + Send + Sync + 'static) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Targets(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> Layer<S> for Targets {
            fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
                self.0.lock().unwrap().push(event.metadata().target().to_string());
            }
        }
        let seen = Targets::default();
        let subscriber = tracing_subscriber::registry().with(seen.clone().with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "tokio_postgres::query", "executing statement with parameters");
            tracing::trace!(target: "tungstenite::protocol", "received frame");
            tracing::debug!(target: "hotswap::coordinator", "step");
            tracing::info!(target: "tokio_postgres::connection", "connected");
        });
        let targets = seen.0.lock().unwrap().clone();
        targets
    }

    #[test]
    fn debug_logging_leaves_out_what_the_database_driver_and_websockets_carry() {
        assert_eq!(
            targets_let_through(quiet_dependencies("trace")),
            ["hotswap::coordinator", "tokio_postgres::connection"],
            "statement parameters and frames hold password hashes, sealed secrets and tokens"
        );
        // Named on purpose, a dependency logs at the level asked for.
        assert_eq!(
            targets_let_through(quiet_dependencies("info,tokio_postgres=debug")),
            ["tokio_postgres::query", "tokio_postgres::connection"]
        );
        // A cap never lets through what the directives hold back.
        assert!(targets_let_through(quiet_dependencies("warn")).is_empty());
    }

    #[test]
    fn spans_have_real_trace_ids_and_can_be_continued() {
        let provider = tracer_provider(&settings()).unwrap();
        let subscriber = tracing_subscriber::registry().with(otel_layer(&provider, &settings()));
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("root");
            let (trace_id, parent) = OtelSpans.context_of(&root).expect("traced");
            assert_eq!(trace_id.len(), 32);
            assert_ne!(trace_id, "0".repeat(32));
            assert!(parent.starts_with(&format!("00-{trace_id}-")), "{parent}");
            let later = tracing::info_span!(parent: None, "later");
            OtelSpans.adopt(&later, &parent);
            assert_eq!(trace_id_of(&later).as_deref(), Some(trace_id.as_str()));
            let child = tracing::info_span!(parent: &later, "child");
            assert_eq!(trace_id_of(&child), Some(trace_id));
        });
        // Without a subscriber nothing is traced.
        assert_eq!(OtelSpans.context_of(&tracing::info_span!("untraced")), None);
    }
}
