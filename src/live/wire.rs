//! The JSON of /api/v1/ws: what the server sends for each run event, and
//! what clients may send.

use bytestring::ByteString;
use hotswap_actors::events::BusEvent;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The memo slot of this encoding in each `BusEvent`.
const MEMO_SLOT: usize = 0;

/// The types of server messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    DeploymentStatusChanged,
    DeploymentProgress,
    StageStarted,
    StageCompleted,
    NodeUpdated,
    ApprovalRequested,
    ApprovalDecided,
    DeploymentCompleted,
    DeploymentFailed,
    DeploymentRolledBack,
    SmokeTestWaiting,
}

impl ServerEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerEvent::DeploymentStatusChanged => "DeploymentStatusChanged",
            ServerEvent::DeploymentProgress => "DeploymentProgress",
            ServerEvent::StageStarted => "StageStarted",
            ServerEvent::StageCompleted => "StageCompleted",
            ServerEvent::NodeUpdated => "NodeUpdated",
            ServerEvent::ApprovalRequested => "ApprovalRequested",
            ServerEvent::ApprovalDecided => "ApprovalDecided",
            ServerEvent::DeploymentCompleted => "DeploymentCompleted",
            ServerEvent::DeploymentFailed => "DeploymentFailed",
            ServerEvent::DeploymentRolledBack => "DeploymentRolledBack",
            ServerEvent::SmokeTestWaiting => "SmokeTestWaiting",
        }
    }
}

/// What a run event means to live clients: zero or more server events with
/// their data. A run's end also changes its status, so it yields a
/// `DeploymentStatusChanged` before the event that names the outcome.
pub fn server_events(e: &BusEvent) -> Vec<(ServerEvent, Value)> {
    use ServerEvent::*;
    let ev = &e.event;
    let mut data = match &ev.data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    data.insert("message".into(), json!(ev.message));
    let status_changed = |status: &str| {
        (DeploymentStatusChanged, json!({ "status": status, "message": ev.message, "currentStage": current_stage(e) }))
    };
    let mut data = Value::Object(data);
    // Live clients are any role: the actor's address and agent are the
    // (Admin-only) audit trail's.
    crate::web::redact::actor_name_only(&mut data);
    match ev.kind.as_str() {
        "DeploymentCreated" => vec![status_changed("Running")],
        "DeploymentStatusChanged" => vec![status_changed(ev.data["status"].as_str().unwrap_or_default())],
        // A stage change is a change of the run's state too: SignalR clients
        // of the original follow runs through DeploymentStatusChanged alone.
        // Not when the same save ended the run: its terminal event below
        // announces the end once (it was announced twice).
        "StageStarted" | "StageCompleted" => {
            let kind = if ev.kind == "StageStarted" { StageStarted } else { StageCompleted };
            let mut out = vec![(kind, data)];
            if e.run.status.is_active() {
                out.push(status_changed(run_status(e)));
            }
            out
        }
        "DeploymentProgress" => vec![(DeploymentProgress, data)],
        "NodeUpdated" => vec![(NodeUpdated, data)],
        "ApprovalRequested" => vec![status_changed("PendingApproval"), (ApprovalRequested, data)],
        "ApprovalDecided" => vec![(ApprovalDecided, data)],
        "DeploymentCompleted" => vec![status_changed("Succeeded"), (DeploymentCompleted, data)],
        "DeploymentFailed" => vec![status_changed("Failed"), (DeploymentFailed, data)],
        "DeploymentCancelled" => vec![status_changed("Cancelled")],
        // A rollback on request ends with the run RolledBack; an automatic
        // restore of one environment leaves the run to fail afterwards.
        "DeploymentRolledBack" if ev.data.get("status").is_some() => {
            vec![status_changed("RolledBack"), (DeploymentRolledBack, data)]
        }
        "DeploymentRolledBack" => vec![(DeploymentRolledBack, data)],
        "SmokeTestWaiting" => vec![(SmokeTestWaiting, data)],
        _ => Vec::new(),
    }
}

/// The run's status as its JSON names it.
fn run_status(e: &BusEvent) -> &'static str {
    e.run.status.as_str()
}

/// The name of the stage running when the event was saved, if any.
pub fn current_stage(e: &BusEvent) -> Option<String> {
    use hotswap_actors::domain::StageStatus;
    e.run.stages.iter().find(|s| s.status == StageStatus::Running).map(|s| s.name.clone())
}

/// The frames for one event, encoded once for every session.
pub fn encoded(e: &BusEvent) -> &[ByteString] {
    e.memo(MEMO_SLOT, |e| {
        server_events(e)
            .into_iter()
            .map(|(kind, data)| {
                let msg = json!({
                    "type": kind.as_str(),
                    "executionId": e.event.execution_id,
                    "timestamp": e.event.at,
                    "traceId": e.run.trace_id,
                    "data": data,
                });
                ByteString::from(msg.to_string())
            })
            .collect::<Vec<_>>()
    })
    .map(Vec::as_slice)
    .unwrap_or_default()
}

/// What a client may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe(Target),
    Unsubscribe(Target),
    Ping,
    /// A message-bus consumer's request (`live::consumer`).
    Consumer(super::consumer::ConsumerRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    All,
    Run(Uuid),
}

/// Parses a client message, or says what is wrong with it.
pub fn parse_client(text: &str) -> Result<ClientMessage, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("the message is not JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("the message must be a JSON object with a \"type\"".into());
    };
    let kind = obj.get("type").and_then(Value::as_str).ok_or("the message has no string \"type\"")?;
    if let Some(request) = super::consumer::parse(kind, &obj) {
        return request.map(ClientMessage::Consumer);
    }
    let target = || -> Result<Target, String> {
        let all = match obj.get("all") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("\"all\" must be true or false".into()),
        };
        match (obj.get("executionId"), all) {
            (Some(Value::String(id)), false) => {
                Uuid::parse_str(id).map(Target::Run).map_err(|_| format!("executionId '{id}' is not a deployment id"))
            }
            (Some(Value::String(_)), true) => Err("give either \"executionId\" or \"all\": true, not both".into()),
            (None | Some(Value::Null), true) => Ok(Target::All),
            (None | Some(Value::Null), false) => Err("give \"executionId\" or \"all\": true".into()),
            (Some(_), _) => Err("\"executionId\" must be a string".into()),
        }
    };
    match kind {
        "subscribe" => target().map(ClientMessage::Subscribe),
        "unsubscribe" => target().map(ClientMessage::Unsubscribe),
        "ping" => Ok(ClientMessage::Ping),
        other => Err(format!("unknown message type '{other}'; expected subscribe, unsubscribe, ping, ack or nack")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_or_say_why_not() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse_client(&format!(r#"{{"type":"subscribe","executionId":"{id}"}}"#)),
            Ok(ClientMessage::Subscribe(Target::Run(id)))
        );
        assert_eq!(parse_client(r#"{"type":"unsubscribe","all":true}"#), Ok(ClientMessage::Unsubscribe(Target::All)));
        assert_eq!(parse_client(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        for bad in [
            "nope",
            "[]",
            r#"{"type":5}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","executionId":"x"}"#,
            r#"{"type":"subscribe","all":"yes"}"#,
            r#"{"type":"subscribe","all":true,"executionId":"6b0f2a1e-7d51-4c3a-9a53-0d7f7e0f5d11"}"#,
            r#"{"type":"dance"}"#,
        ] {
            assert!(parse_client(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::web::fuzz::config(20_000))]
        #[test]
        fn random_client_messages_never_panic(input in crate::web::fuzz::untrusted_text()) {
            let _ = parse_client(&input);
        }
    }
}
