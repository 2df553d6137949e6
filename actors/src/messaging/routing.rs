//! Which subscriptions a published message goes to.

use serde_json::Value;
use serde_json_path::JsonPath;

use super::error::MessagingError;
use super::model::{Message, SubscriptionFilter};

/// A parsed `payloadQuery`: a JSONPath, and the value it must select when
/// written `<JSONPath> == <JSON literal>`.
pub(crate) struct PayloadQuery {
    path: JsonPath,
    equals: Option<Value>,
}

pub(crate) fn parse_query(text: &str) -> Result<PayloadQuery, MessagingError> {
    let (path_text, equals) = match text.split_once("==") {
        Some((path, literal)) => {
            let value = serde_json::from_str(literal.trim()).map_err(|e| {
                MessagingError::Invalid(format!("payloadQuery value after '==' is not a JSON literal: {e}"))
            })?;
            (path.trim(), Some(value))
        }
        None => (text.trim(), None),
    };
    let path = JsonPath::parse(path_text)
        .map_err(|e| MessagingError::Invalid(format!("payloadQuery is not a JSONPath: {e}")))?;
    Ok(PayloadQuery { path, equals })
}

/// Whether a message passes a subscription's filter: every header equal,
/// and the payload query selecting something (a payload that is not JSON
/// never matches a query).
pub fn filter_matches(filter: &SubscriptionFilter, message: &Message) -> bool {
    let headers_match = filter.header_matches.iter().all(|(k, v)| message.headers.get(k) == Some(v));
    if !headers_match {
        return false;
    }
    let Some(query) = filter.payload_query.as_deref() else {
        return true;
    };
    let Ok(query) = parse_query(query) else {
        return false;
    };
    let Ok(payload) = serde_json::from_str::<Value>(&message.payload) else {
        return false;
    };
    let selected = query.path.query(&payload).all();
    match &query.equals {
        None => !selected.is_empty(),
        Some(expected) => selected.contains(&expected),
    }
}
