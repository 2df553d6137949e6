//! Requests whose path holds a NUL character (`%00`) are answered 404 before
//! any handler: PostgreSQL cannot store or compare text holding NUL, so a path
//! segment carrying one would otherwise fail in the database (a 500) instead
//! of naming no resource.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use hotswap_actors::domain::holds_nul;

use super::ApiError;

pub async fn refuse(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // No resource is named with NUL. (A query filter holding one is refused
    // by the handlers whose filters reach the database, with their other
    // validation errors.)
    if path_holds_nul(req.uri().path()) {
        let error =
            ApiError::NotFound("no such resource: the path holds a NUL character (%00), which no name holds".into());
        return Ok(req.into_response(error.error_response()));
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// Whether a percent-encoded path holds NUL, encoded or not.
fn path_holds_nul(path: &str) -> bool {
    path.contains("%00") || holds_nul(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_encoded_or_not() {
        assert!(path_holds_nul("/api/v1/schemas/a%00b"));
        assert!(path_holds_nul("moduleName=a%00b"));
        assert!(path_holds_nul("a\0b"));
        assert!(!path_holds_nul("/api/v1/schemas/a%20b%0A"));
        assert!(!path_holds_nul("page=100&pageSize=200"));
    }
}
