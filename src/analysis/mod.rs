//! Canary analysis providers beyond the nodes' own reports (the core's
//! default): Prometheus. `[analysis]` picks one; `provider` builds it.

mod prometheus;
pub mod settings;

use std::sync::Arc;

use hotswap_actors::analysis::MetricsProvider;
use hotswap_actors::store::SharedStore;

pub use prometheus::{fill_placeholders, PrometheusProvider};
pub use settings::{AnalysisProvider, AnalysisSettings};

/// The provider `[analysis]` names; `None` leaves the core on the nodes' reports.
pub fn provider(settings: &AnalysisSettings, store: SharedStore) -> Result<Option<Arc<dyn MetricsProvider>>, String> {
    match settings.provider {
        AnalysisProvider::Nodes => Ok(None),
        AnalysisProvider::Prometheus => Ok(Some(Arc::new(PrometheusProvider::new(settings, store)?))),
    }
}
