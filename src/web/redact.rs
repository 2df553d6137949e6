//! Secrets out of recorded URLs. The request span (tracing-actix-web's root
//! span) records the whole target, query string included, and that span is
//! attached to JSON log lines and exported over OTLP. Browsers must send a
//! live endpoint's token as `?access_token=` (they cannot set headers on a
//! WebSocket upgrade), and SignalR's connection token travels as `?id=`.
//!
//! Two middlewares around the tracing logger keep those values out of it:
//! `hide_query_secrets` (outside it) swaps in a redacted URI before the span
//! is built, and `restore_query_secrets` (inside it) puts the real one back
//! before anything that needs the values sees the request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;
use actix_web::HttpMessage;

/// What a redacted value reads as.
pub const REDACTED: &str = "REDACTED";

/// Parts of parameter names that mark a secret (compared in lower case).
const SECRET_NAME_PARTS: [&str; 8] =
    ["token", "secret", "password", "passwd", "apikey", "api_key", "signature", "credential"];

/// Whether a query parameter of a request to `path` holds a secret.
pub fn is_secret_param(path: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    // SignalR's connection token: whoever holds it can use the connection.
    let signalr_connection = name == "id" && path.starts_with("/hubs/");
    signalr_connection || name == "auth" || SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// `query` with every secret parameter's value replaced, or `None` when it
/// holds none. Names are compared after percent-decoding, so `access%5Ftoken`
/// is caught too.
pub fn redact_query(path: &str, query: &str) -> Option<String> {
    let mut changed = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            let decoded = super::query::percent_decode(name);
            if is_secret_param(path, &decoded) {
                changed = true;
                format!("{name}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect();
    changed.then(|| parts.join("&"))
}

/// A URI as it may be recorded: path and query with secrets redacted.
pub fn redact_uri(uri: &Uri) -> String {
    match uri.query().and_then(|q| redact_query(uri.path(), q)) {
        Some(query) => format!("{}?{query}", uri.path()),
        None => uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
    }
}

/// The request's real URI while the redacted one is in place.
struct RealUri(Uri);

/// Outside the tracing logger: the span sees the redacted URI.
pub async fn hide_query_secrets(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let uri = req.uri().clone();
    if let Some(query) = uri.query().and_then(|q| redact_query(uri.path(), q)) {
        if let Ok(redacted) = format!("{}?{query}", uri.path()).parse::<Uri>() {
            req.head_mut().uri = redacted;
            req.extensions_mut().insert(RealUri(uri));
        }
    }
    next.call(req).await
}

/// Inside the tracing logger: everything after it sees the real URI.
pub async fn restore_query_secrets(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let real = req.extensions_mut().remove::<RealUri>();
    if let Some(RealUri(uri)) = real {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    next.call(req).await
}

/// Run events carry their audit actor (`data.actor`: id, name, trace id,
/// client address, user agent), which the Admin-only audit trail also holds.
/// Anyone else sees the actor's display name alone.
pub fn actor_name_only(data: &mut serde_json::Value) {
    if let Some(actor) = data.get_mut("actor") {
        let name = actor.get("name").cloned().unwrap_or(serde_json::Value::Null);
        *actor = serde_json::json!({ "name": name });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_actors_name_is_kept() {
        let mut data = serde_json::json!({ "verb": "pause", "actor": { "id": "u1", "name": "ops", "sourceAddress": "10.1.2.3", "userAgent": "curl" } });
        actor_name_only(&mut data);
        assert_eq!(data, serde_json::json!({ "verb": "pause", "actor": { "name": "ops" } }));
        let mut none = serde_json::json!({ "verb": "pause" });
        actor_name_only(&mut none);
        assert_eq!(none, serde_json::json!({ "verb": "pause" }));
    }

    #[test]
    fn secret_parameters_are_redacted_and_others_kept() {
        assert_eq!(
            redact_query("/api/v1/ws", "access_token=eyJabc.def&x=1").as_deref(),
            Some("access_token=REDACTED&x=1")
        );
        assert_eq!(redact_query("/api/v1/ws", "x=1&y=2"), None);
        assert_eq!(
            redact_query("/hubs/deployment", "id=conn-token&negotiateVersion=1").as_deref(),
            Some("id=REDACTED&negotiateVersion=1")
        );
        assert_eq!(redact_query("/api/v1/deployments", "id=7"), None, "id is a secret only on the hub");
        assert_eq!(redact_query("/x", "access%5Ftoken=abc").as_deref(), Some("access%5Ftoken=REDACTED"));
        assert_eq!(
            redact_query("/x", "Client_Secret=s&apiKey=k&password").as_deref(),
            Some("Client_Secret=REDACTED&apiKey=REDACTED&password=REDACTED")
        );
        let uri: Uri = "/api/v1/ws?access_token=abc".parse().unwrap();
        assert_eq!(redact_uri(&uri), "/api/v1/ws?access_token=REDACTED");
        let plain: Uri = "/api/v1/clusters?x=1".parse().unwrap();
        assert_eq!(redact_uri(&plain), "/api/v1/clusters?x=1");
    }

    proptest::proptest! {
        #![proptest_config(crate::web::fuzz::config(20_000))]
        #[test]
        fn random_queries_never_panic_and_never_leak(input in crate::web::fuzz::untrusted_text()) {
            let query = format!("access_token=secret-value&{input}");
            let out = redact_query("/api/v1/ws", &query).unwrap_or(query.clone());
            proptest::prop_assert!(!out.contains("secret-value"), "{:?}", input);
            let _ = crate::web::query::web_query_param(&input, "access_token");
        }
    }
}
