//! Requests whose path holds a NUL character (`%00`) are answered 404 before
//! any handler: PostgreSQL cannot store or compare text holding NUL, so a path
//! segment carrying one would otherwise fail in the database (a 500) instead
//! of naming no resource.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use super::ApiError;

pub async fn refuse(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // No resource is named with NUL. (A query filter holding one is refused
    // by the handlers whose filters reach the database, with their other
    // validation errors.)
    if holds_nul(req.uri().path()) {
        let error =
            ApiError::NotFound("no such resource: the path holds a NUL character (%00), which no name holds".into());
        return Ok(req.into_response(error.error_response()));
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// Whether percent-encoded `text` holds NUL, encoded or not.
fn holds_nul(text: &str) -> bool {
    text.contains('\0') || text.as_bytes().windows(3).any(|w| w == b"%00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_encoded_or_not() {
        assert!(holds_nul("/api/v1/schemas/a%00b"));
        assert!(holds_nul("moduleName=a%00b"));
        assert!(holds_nul("a\0b"));
        assert!(!holds_nul("/api/v1/schemas/a%20b%0A"));
        assert!(!holds_nul("page=100&pageSize=200"));
    }
}
