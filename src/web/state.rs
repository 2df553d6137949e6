//! The state every handler can reach.

use hotswap_actors::Orchestrator;

pub struct AppState {
    pub orchestrator: Orchestrator,
    pub trace_url: String,
}

impl AppState {
    pub fn trace_url(&self, trace_id: &str) -> String {
        self.trace_url.replace("{traceId}", trace_id)
    }
}
