use thiserror::Error;

/// What the registry refuses. Adapters map each kind to one status code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SchemaError {
    #[error("schema '{0}' not found")]
    NotFound(String),
    #[error("schema '{schema_id}' has no version {version}")]
    VersionNotFound { schema_id: String, version: u32 },
    /// The request itself is wrong (a bad id, an invalid JSON Schema).
    #[error("{0}")]
    Invalid(String),
    /// A concurrent writer won (the same version number registered twice).
    #[error("{0}")]
    Conflict(String),
    /// A decision that does not apply to the version's status.
    #[error("schema '{schema_id}' version {version} is {current}, not Draft")]
    InvalidState { schema_id: String, version: u32, current: String },
    /// The subject is deprecated: no new versions, no new topics.
    #[error("schema '{0}' is deprecated")]
    Deprecated(String),
    /// The store cannot be reached now; worth retrying (503).
    #[error("the schema store is unavailable: {0}")]
    Unavailable(String),
    #[error("the schema store failed: {0}")]
    Backend(String),
}
