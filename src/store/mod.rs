//! Store back-ends. The in-memory store lives in the core crate; the
//! PostgreSQL one lives here, beside the other adapters.

pub mod postgres;
pub mod settings;
