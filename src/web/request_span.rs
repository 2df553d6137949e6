//! The request span every request's log lines and traces carry: actix's
//! default, except that the error it records is written with its control
//! characters escaped. An error message often repeats what the request said
//! (an unknown environment named in the path), and a raw line break in it
//! would start a line of the client's making in a `pretty` log.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        DefaultRootSpanBuilder::on_request_start(request)
    }

    /// What the default records, with the error's message escaped: the
    /// default's own record cannot be overwritten (a second record of a
    /// field is appended to the line, not put in its place).
    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error().map(Error::as_response_error)),
            Err(error) => (error.as_response_error().status_code(), Some(error.as_response_error())),
        };
        span.record("http.status_code", i64::from(status.as_u16()));
        // As the default: a client's error is not the server's.
        span.record("otel.status_code", if error.is_some() && !status.is_client_error() { "ERROR" } else { "OK" });
        if let Some(error) = error {
            span.record("exception.message", tracing::field::display(escaped(&error.to_string())));
            // Debug writes line breaks as escapes already.
            span.record("exception.details", tracing::field::display(format!("{error:?}")));
        }
    }
}

/// `text` with every control character written as its escape (`\n`, `\u{1b}`).
pub fn escaped(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(
            escaped("Environment 'x\n2026 INFO granted' not found"),
            "Environment 'x\\n2026 INFO granted' not found"
        );
        assert_eq!(escaped("a\u{1b}]0;title\u{7}b\0"), "a\\u{1b}]0;title\\u{7}b\\u{0}");
        assert_eq!(escaped("plain, é and \u{202e} stay"), "plain, é and \u{202e} stay");
    }
}
