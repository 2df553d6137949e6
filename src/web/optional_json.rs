//! A JSON body a route may go without. actix's `Option<web::Json<T>>` turns
//! any extraction error into `None`, so a body that does not parse was taken
//! as no body at all (a nack's mistyped `requeue: false` requeued). Here only
//! an absent or empty body (or `null`) is `None`; a body that is there is
//! read as `web::Json` reads it, with its limit and its 400/413/415 answers.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

/// The body, or `None` when the request carries none.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if has_no_body(req) {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let body = web::Json::<Option<T>>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJson(body.await?.into_inner())) })
    }
}

/// No `Content-Length` and no chunked body, or a length of zero.
fn has_no_body(req: &HttpRequest) -> bool {
    match req.headers().get(CONTENT_LENGTH) {
        Some(length) => length.to_str().is_ok_and(|l| l.trim() == "0"),
        None => !req.headers().contains_key(TRANSFER_ENCODING),
    }
}
