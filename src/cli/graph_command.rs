//! `hotswap graph rebuild`: recomputes the actors' part of each tenant's
//! knowledge graph from the store and repairs what drifted (a graph write
//! lost to a crash between the state change and its graph update).

use clap::Subcommand;
use hotswap_actors::graph::GraphService;
use hotswap_actors::store::SharedStore;

#[derive(Debug, Subcommand)]
pub enum GraphAction {
    /// Rebuild the actors' entities and relationships from the store. A
    /// running server keeps its own index: restart it afterwards, or ask it
    /// with POST /api/v1/graph/rebuild instead.
    Rebuild {
        /// Only this tenant; every tenant when left out.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
    },
}

/// Rebuilds and answers one line per tenant saying what was repaired.
pub async fn run(
    store: SharedStore,
    settings: &hotswap_actors::graph::GraphSettings,
    action: GraphAction,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let GraphAction::Rebuild { tenant } = action;
    let tenants = match tenant {
        Some(t) => vec![t],
        None => {
            let mut all: Vec<uuid::Uuid> = store.list_tenants(None).await?.into_iter().map(|t| t.tenant_id).collect();
            if !all.contains(&hotswap_actors::domain::DEFAULT_TENANT) {
                all.insert(0, hotswap_actors::domain::DEFAULT_TENANT);
            }
            all
        }
    };
    let graph = GraphService::with_settings(store, settings);
    let mut lines = Vec::new();
    for t in tenants {
        let r = graph.rebuild(t).await?;
        lines.push(format!(
            "tenant {t}: {} entities and {} relationships written, {} entities and {} relationships deleted",
            r.entities_written, r.relationships_written, r.entities_deleted, r.relationships_deleted
        ));
    }
    Ok(lines)
}
