//! What every HTTP-facing adapter shares, and nothing else: the one error type
//! and its status table, the request's trace id, the application state handed
//! to handlers, query-string helpers, durations as answers write them, and
//! secrets kept out of recorded URLs. It sits below `auth`, `live` and `http`
//! and imports none of them.

pub mod durations;
pub mod error;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod json_refusals;
pub mod nul_in_url;
pub mod optional_json;
pub mod path_template;
pub mod query;
pub mod query_params;
pub mod redact;
pub mod request_span;
mod state;
pub mod trace;

pub use error::{ApiError, ErrorBody};
pub use state::AppState;
