//! The body of a publish (both APIs), read with a limit of its own. The
//! server's `json_limit` (1 MiB) would refuse a payload at
//! `messaging.max_payload_bytes` (also 1 MiB) before the bus saw it: the
//! payload travels as a JSON string inside the message's envelope, and JSON
//! escaping makes it up to six times longer (`\u0000`-style escapes; a quote
//! or backslash doubles). So a publish body may be six payloads plus
//! `json_limit` for the envelope, and its 413 says which limit it met.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::{web, FromRequest, HttpRequest};

use crate::messaging::message_dto::PublishBody;
use crate::messaging::MessageBus;
use crate::web::ApiError;

/// The longest JSON escape of one byte of payload (`\u001f`).
const ESCAPED_BYTE: usize = 6;

/// `server.json_limit`, which the envelope around the payload may take.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeLimit(pub usize);

pub struct PublishJson(pub PublishBody);

/// The largest publish body: the payload at its limit, every byte escaped,
/// and an envelope up to `json_limit`.
pub fn publish_body_limit(max_payload_bytes: usize, json_limit: usize) -> usize {
    max_payload_bytes.saturating_mul(ESCAPED_BYTE).saturating_add(json_limit)
}

impl FromRequest for PublishJson {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let max_payload = req.app_data::<web::Data<MessageBus>>().map(|bus| bus.settings.max_payload_bytes);
        let envelope = req.app_data::<EnvelopeLimit>().map(|l| l.0);
        let (Some(max_payload), Some(envelope)) = (max_payload, envelope) else {
            return Box::pin(async {
                Err(ApiError::Internal("the publish body's limits are not set up".into()).into())
            });
        };
        let limit = publish_body_limit(max_payload, envelope);
        let body = web::JsonBody::<PublishBody>::new(req, payload, None, true).limit(limit);
        let req = req.clone();
        Box::pin(async move {
            match body.await {
                Ok(body) => Ok(PublishJson(body)),
                Err(JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. }) => {
                    Err(ApiError::PayloadTooLarge(format!(
                        "the publish body is larger than {limit} bytes, the most a message may take: its payload \
                         may be up to messaging.max_payload_bytes ({max_payload} bytes), with room for JSON escaping \
                         and {envelope} bytes (server.json_limit) for the rest of the message"
                    ))
                    .into())
                }
                Err(other) => Err(super::json_error(other, &req)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_payload_at_its_limit_fits_escaped_with_its_envelope() {
        let mib = 1 << 20;
        let escaped = serde_json::to_string(&"\u{1f}".repeat(mib)).unwrap();
        assert!(escaped.len() + 200 <= super::publish_body_limit(mib, mib));
    }
}
