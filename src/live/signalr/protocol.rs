//! The SignalR JSON hub protocol (version 1): records end with the 0x1e
//! record separator; a handshake comes first; then invocations, completions,
//! pings and a close, told apart by their numeric `type`.

use bytestring::ByteString;
use serde_json::{json, Value};

pub const RECORD_SEPARATOR: char = '\u{1e}';

/// Splits incoming text into complete records; a partial record waits in
/// `buffer` for the next frame.
pub fn records(buffer: &mut String, incoming: &str) -> Vec<String> {
    buffer.push_str(incoming);
    let mut out = Vec::new();
    while let Some(end) = buffer.find(RECORD_SEPARATOR) {
        let record: String = buffer.drain(..end + RECORD_SEPARATOR.len_utf8()).collect();
        out.push(record[..end].to_string());
    }
    out
}

/// Checks the handshake request; Ok(()) for JSON protocol version 1.
pub fn handshake(record: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(record).map_err(|e| format!("the handshake is not JSON: {e}"))?;
    match (value["protocol"].as_str(), value["version"].as_u64()) {
        (Some("json"), Some(1)) => Ok(()),
        (Some("json"), v) => {
            Err(format!("The server does not support version {} of the 'json' protocol.", v.unwrap_or(0)))
        }
        (Some(p), _) => Err(format!("The protocol '{p}' is not supported.")),
        (None, _) => Err("the handshake names no protocol".into()),
    }
}

pub fn handshake_reply(error: Option<&str>) -> String {
    match error {
        None => format!("{{}}{RECORD_SEPARATOR}"),
        Some(e) => format!("{}{RECORD_SEPARATOR}", json!({ "error": e })),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    Invocation {
        invocation_id: Option<String>,
        target: String,
        arguments: Vec<Value>,
    },
    StreamInvocation {
        invocation_id: String,
    },
    CancelInvocation,
    Ping,
    Close,
    /// Types a server does not expect from clients (stream items, completions, acks).
    Other(u64),
}

pub fn parse(record: &str) -> Result<HubMessage, String> {
    let value: Value = serde_json::from_str(record).map_err(|e| format!("the message is not JSON: {e}"))?;
    let kind = value["type"].as_u64().ok_or("the message has no numeric type")?;
    let invocation_id = match &value["invocationId"] {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        _ => return Err("invocationId must be a string".into()),
    };
    Ok(match kind {
        1 => HubMessage::Invocation {
            invocation_id,
            target: value["target"].as_str().ok_or("an invocation needs a target")?.to_string(),
            arguments: match &value["arguments"] {
                Value::Array(a) => a.clone(),
                Value::Null => Vec::new(),
                _ => return Err("arguments must be an array".into()),
            },
        },
        4 => HubMessage::StreamInvocation { invocation_id: invocation_id.unwrap_or_default() },
        5 => HubMessage::CancelInvocation,
        6 => HubMessage::Ping,
        7 => HubMessage::Close,
        other => HubMessage::Other(other),
    })
}

fn record(value: Value) -> ByteString {
    ByteString::from(format!("{value}{RECORD_SEPARATOR}"))
}

pub fn completion(invocation_id: &str, error: Option<&str>) -> ByteString {
    match error {
        None => record(json!({ "type": 3, "invocationId": invocation_id })),
        Some(e) => record(json!({ "type": 3, "invocationId": invocation_id, "error": e })),
    }
}

pub fn invocation(target: &str, arguments: Vec<Value>) -> ByteString {
    record(json!({ "type": 1, "target": target, "arguments": arguments }))
}

pub fn ping() -> ByteString {
    record(json!({ "type": 6 }))
}

pub fn close(error: Option<&str>) -> ByteString {
    match error {
        None => record(json!({ "type": 7 })),
        Some(e) => record(json!({ "type": 7, "error": e, "allowReconnect": false })),
    }
}

/// The close message of a stopping server: clients with automatic reconnect
/// reconnect after it (with `allowReconnect` false they would give up).
pub fn close_allowing_reconnect(error: &str) -> ByteString {
    record(json!({ "type": 7, "error": error, "allowReconnect": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_on_the_separator_and_keep_the_rest() {
        let mut buf = String::new();
        assert_eq!(records(&mut buf, "{\"type\":6}\u{1e}{\"ty"), vec!["{\"type\":6}".to_string()]);
        assert_eq!(records(&mut buf, "pe\":7}\u{1e}"), vec!["{\"type\":7}".to_string()]);
        assert!(buf.is_empty());
    }

    #[test]
    fn handshake_and_messages() {
        assert!(handshake(r#"{"protocol":"json","version":1}"#).is_ok());
        assert!(handshake(r#"{"protocol":"messagepack","version":1}"#).is_err());
        assert!(handshake("nope").is_err());
        let m = parse(r#"{"type":1,"invocationId":"0","target":"SubscribeToAllDeployments","arguments":[]}"#).unwrap();
        assert_eq!(
            m,
            HubMessage::Invocation {
                invocation_id: Some("0".into()),
                target: "SubscribeToAllDeployments".into(),
                arguments: vec![]
            }
        );
        assert_eq!(parse(r#"{"type":6}"#).unwrap(), HubMessage::Ping);
        assert!(parse(r#"{"type":"x"}"#).is_err());
        assert_eq!(&*completion("1", None), "{\"invocationId\":\"1\",\"type\":3}\u{1e}");
    }

    #[test]
    fn random_frames_never_panic() {
        let mut buffer = String::new();
        for input in crate::web::fuzz::inputs(0x5eed_0003, 20_000) {
            for record in records(&mut buffer, &input) {
                let _ = handshake(&record);
                let _ = parse(&record);
            }
            buffer.truncate(buffer.len().min(4096));
            while !buffer.is_char_boundary(buffer.len()) {
                buffer.pop();
            }
        }
    }
}
