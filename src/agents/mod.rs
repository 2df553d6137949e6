//! The server's side of `hotswap agent`: enrolment tokens kept hashed, the
//! WebSocket session of each connected agent, and the hub that registers
//! hosts as nodes of their tenant's clusters (docs/AGENT.md).
//!
//! Files by job: `settings` (`[agent]`), `credentials` (token and session
//! secrets), `hub` (who may connect, registration, open sessions, tokens),
//! `session` (the WebSocket actor), `link` (the core's `AgentLink` over it),
//! `routing` (sessions held by other instances, reached over Redis).

pub mod credentials;
pub mod hub;
mod link;
pub mod routing;
pub mod session;
pub mod settings;
pub mod token_retention;

pub use hub::{AgentHub, Credential};
pub use session::AgentSession;
pub use settings::{AgentSettings, DriftPolicy};

/// The secret an agent presents: `Authorization: Bearer …`.
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
