//! The schema registry: subjects (a `schemaId`) with numbered versions of a
//! JSON Schema, a compatibility rule per subject, approval of breaking
//! versions by an Admin, and validation of payloads. No HTTP, no SQL: the
//! [`SchemaStore`] trait is the storage contract (memory here, PostgreSQL in
//! the root crate) and [`SchemaRegistry`] holds the rules over it.

mod compat_support;
mod compatibility;
mod error;
mod memory;
mod model;
mod registry;
mod store;
mod validation;

pub use compatibility::breaking_changes;
pub use error::SchemaError;
pub use memory::MemorySchemaStore;
pub use model::{
    BreakingChange, Compatibility, Deprecation, NewSchema, Registrant, SchemaDecision, SchemaStatus, SchemaSubject,
    SchemaVersion,
};
pub use registry::{Registered, SchemaRegistry, COMPATIBILITY_CHANGED};
pub use store::{decide, SchemaStore, SharedSchemaStore};
pub use validation::{CompiledSchema, PayloadError, INLINE_VALIDATION_BYTES};
