use std::fmt;

use serde::Serialize;

/// The kinds of supervised actor, as the supervision tree and the metrics name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ActorKind {
    Node,
    Coordinator,
    Approval,
    Tenant,
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
