//! The knowledge graph of the fleet: tenants, environments, clusters, nodes,
//! modules, versions and runs as the actors keep them, beside what users add.
//!
//! - `schema`: type names, the built-in schema, checks of writes and schema changes
//! - `index`: the per-tenant index the queries run on
//! - `adjacency`: its graph, whose edges unlink in constant time
//! - `query`: match, traversal, shortest path, all paths
//! - `dijkstra`: the cheapest path between two entities, searched from both ends
//! - `service`: `GraphService`, which owns the indexes, the query cache and every write
//! - `system`: what the actors' state looks like as entities and relationships
//! - `run_history`: the bound on the runs each node's TOUCHED relationships name
//! - `run_window`: the bound on the finished runs the graph keeps per tenant
//! - `sync`: the store decorator that writes those as the state changes
//! - `write_queue`: group commit of those writes, per tenant
//! - `impact`: impact analysis and the release order of a batch
//! - `scan`: the Security Scan's dependency check, from the impact analysis

mod adjacency;
mod dijkstra;
mod impact;
pub mod index;
pub mod peers;
pub mod query;
pub mod run_history;
pub mod run_window;
mod scan;
pub mod schema;
mod service;
mod sync;
pub mod system;
mod write_queue;

pub use impact::{DependentModule, ImpactReport, ReleaseItem, ReleaseStep};
pub use run_window::GraphSettings;
pub use scan::DependencyCheckedVerifier;
pub use service::{
    EndRef, GraphError, GraphService, GraphStatistics, NewEntity, NewRelationship, PathView, QueryAnswer,
    RebuildReport, RelationshipDirection,
};
pub use sync::GraphSyncStore;
