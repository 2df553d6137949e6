//! What the adapters plug into the core without the core knowing them: an
//! [`Observer`] of what happens (the root crate turns it into Prometheus
//! metrics) and a [`SpanContext`] that reads and continues the trace context
//! of `tracing` spans (the root crate backs it with OpenTelemetry). The
//! defaults do nothing, so the core runs the same without either.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{ActorKind, ApprovalStatus, Environment, RunEvent, RunRecord, RunStatus, StageStatus, Strategy};

/// Told about domain facts as they become durable. Calls are cheap and
/// synchronous; an implementation must not block.
pub trait Observer: Send + Sync {
    fn deployment_started(&self, _env: Environment, _strategy: Strategy) {}
    /// A run ended with `status` after `duration`.
    fn deployment_finished(&self, _env: Environment, _strategy: Strategy, _status: RunStatus, _duration: Duration) {}
    /// The nodes a run changed in `env` were put back (automatically or on request).
    fn environment_rolled_back(&self, _env: Environment, _strategy: Strategy) {}
    fn stage_finished(&self, _stage: &str, _status: StageStatus, _duration: Duration) {}
    /// `count` nodes of `env` now serve a new version.
    fn nodes_updated(&self, _env: Environment, _count: u64) {}
    /// An approval for a run to `env` was requested (Pending) or settled.
    fn approval(&self, _env: Environment, _status: ApprovalStatus) {}
    fn actor_restarted(&self, _kind: ActorKind) {}
    fn actor_escalated(&self, _kind: ActorKind) {}
}

pub struct NoObserver;
impl Observer for NoObserver {}

/// Told of the saved events people want to hear about outside the API
/// (approval requests and decisions), to send them on. Must not block: an
/// implementation queues and delivers in the background.
pub trait Notifier: Send + Sync {
    fn notify(&self, _run: &RunRecord, _event: &RunEvent) {}
}

pub struct NoNotifier;
impl Notifier for NoNotifier {}

/// The trace context behind `tracing` spans.
pub trait SpanContext: Send + Sync {
    /// The W3C trace id of `span` (32 hex digits) and a `traceparent` with
    /// which a later span, in this process or the next, can continue it.
    /// None when spans are not traced.
    fn context_of(&self, span: &tracing::Span) -> Option<(String, String)>;
    /// Makes `span`, not yet entered, a child of the span `traceparent` names.
    fn adopt(&self, span: &tracing::Span, traceparent: &str);
}

pub struct NoSpanContext;
impl SpanContext for NoSpanContext {
    fn context_of(&self, _span: &tracing::Span) -> Option<(String, String)> {
        None
    }
    fn adopt(&self, _span: &tracing::Span, _traceparent: &str) {}
}

/// Gives the memory the allocator keeps for reuse back to the operating
/// system, on the thread it is called on. The core calls it on every actor
/// thread once no run has been in flight for a moment: a run frees most of
/// what it allocated when it ends, but an allocator keeps freed pages until
/// that thread is busy again, so an idle process would otherwise stay at the
/// resident size of its largest run. The root crate backs it with its global
/// allocator's collect; the default does nothing.
pub trait MemoryRelease: Send + Sync {
    fn release_this_thread(&self);
}

pub struct NoMemoryRelease;
impl MemoryRelease for NoMemoryRelease {
    fn release_this_thread(&self) {}
}

#[derive(Clone)]
pub struct CoreHooks {
    pub observer: Arc<dyn Observer>,
    pub spans: Arc<dyn SpanContext>,
    pub notifier: Arc<dyn Notifier>,
    /// The Security Scan's view of the module registry.
    pub verifier: Arc<dyn crate::registry::ModuleVerifier>,
    /// Where canary metrics come from; `None` for the nodes' own reports.
    pub analysis: Option<Arc<dyn crate::analysis::MetricsProvider>>,
    /// Tells a run's owner, on whichever instance, that the store has news
    /// for the run (an approval decided elsewhere).
    pub wake_up: Arc<dyn crate::cluster::WakeUp>,
    /// Run on every actor thread when the process falls idle.
    pub memory_release: Arc<dyn MemoryRelease>,
}

impl Default for CoreHooks {
    fn default() -> Self {
        CoreHooks {
            observer: Arc::new(NoObserver),
            spans: Arc::new(NoSpanContext),
            notifier: Arc::new(NoNotifier),
            verifier: Arc::new(crate::registry::NoRegistry),
            analysis: None,
            wake_up: Arc::new(crate::cluster::PollOnly),
            memory_release: Arc::new(NoMemoryRelease),
        }
    }
}
