//! What one hub connection is, whichever transport carries it: the
//! handshake, the original's four hub methods, group membership, and which
//! of the bus's events reach it. The WebSocket actor (`hub.rs`) and the
//! Server-Sent Events and Long Polling connections (`polling.rs`) feed it the
//! client's text and send on what it answers.

use std::collections::HashSet;
use std::sync::Arc;

use actix::Addr;
use bytestring::ByteString;
use hotswap_actors::events::{BusEvent, EventBus, SubscriberId, Topic, Unwatch, Watch};
use serde_json::Value;
use uuid::Uuid;

use super::events::{encoded, Audience};
use super::protocol::{self, HubMessage};
use crate::live::settings::WebsocketSettings;

/// What the transport must do after the connection read the client's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Send(ByteString),
    Close(Ending),
}

/// Why a connection ends on the client's account.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The client sent the hub's close message.
    ClientClosed,
    /// The handshake was refused (its reply, with the reason, is sent first).
    HandshakeRefused(String),
    TooLarge,
    TooManyInvalid,
}

impl Ending {
    /// The error the hub's close message carries, where one is sent.
    pub fn close_error(&self) -> Option<&'static str> {
        match self {
            Ending::ClientClosed | Ending::HandshakeRefused(_) => None,
            Ending::TooLarge => Some("Connection closed with an error: message too large."),
            Ending::TooManyInvalid => Some("Connection closed with an error: too many invalid messages."),
        }
    }
}

pub struct HubConnection {
    bus: Addr<EventBus>,
    settings: Arc<WebsocketSettings>,
    feed_id: SubscriberId,
    handshaken: bool,
    buffer: String,
    all: bool,
    runs: HashSet<Uuid>,
    invalid: u32,
}

impl HubConnection {
    pub fn new(bus: Addr<EventBus>, feed_id: SubscriberId, settings: Arc<WebsocketSettings>) -> Self {
        HubConnection {
            bus,
            settings,
            feed_id,
            handshaken: false,
            buffer: String::new(),
            all: false,
            runs: HashSet::new(),
            invalid: 0,
        }
    }

    pub fn handshaken(&self) -> bool {
        self.handshaken
    }

    /// Reads text from the client (any number of records, possibly ending
    /// in a partial one) and says what to answer.
    pub fn receive(&mut self, text: &str) -> Vec<Reply> {
        if self.buffer.len() + text.len() > self.settings.max_message_bytes * 8 {
            return vec![Reply::Close(Ending::TooLarge)];
        }
        let mut replies = Vec::new();
        for record in protocol::records(&mut self.buffer, text) {
            self.handle_record(&record, &mut replies);
            if replies.iter().any(|r| matches!(r, Reply::Close(_))) {
                break;
            }
        }
        replies
    }

    fn handle_record(&mut self, record: &str, replies: &mut Vec<Reply>) {
        if !self.handshaken {
            match protocol::handshake(record) {
                Ok(()) => {
                    self.handshaken = true;
                    replies.push(Reply::Send(protocol::handshake_reply(None).into()));
                }
                Err(e) => {
                    replies.push(Reply::Send(protocol::handshake_reply(Some(&e)).into()));
                    replies.push(Reply::Close(Ending::HandshakeRefused(e)));
                }
            }
            return;
        }
        match protocol::parse(record) {
            Ok(HubMessage::Invocation { invocation_id, target, arguments }) => {
                let outcome = self.invoke(&target, &arguments);
                if let Err(e) = &outcome {
                    tracing::info!(%target, error = %e, "hub invocation refused");
                }
                // Without an invocation id the client expects no completion.
                if let Some(id) = invocation_id {
                    replies.push(Reply::Send(protocol::completion(&id, outcome.err().as_deref())));
                }
            }
            Ok(HubMessage::StreamInvocation { invocation_id }) => {
                replies.push(Reply::Send(protocol::completion(
                    &invocation_id,
                    Some("This hub has no streaming methods."),
                )));
            }
            Ok(HubMessage::Ping | HubMessage::CancelInvocation | HubMessage::Other(_)) => {}
            Ok(HubMessage::Close) => replies.push(Reply::Close(Ending::ClientClosed)),
            Err(e) => {
                self.invalid += 1;
                tracing::info!(error = %e, "malformed hub message");
                if self.invalid >= self.settings.max_invalid_messages {
                    replies.push(Reply::Close(Ending::TooManyInvalid));
                }
            }
        }
    }

    /// The original hub's methods.
    fn invoke(&mut self, target: &str, args: &[Value]) -> Result<(), String> {
        let expect = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "Failed to invoke '{target}' due to an error on the server. InvalidDataException: Invocation provides {} argument(s) but target expects {n}.",
                    args.len()
                ))
            }
        };
        match target {
            "SubscribeToDeployment" | "UnsubscribeFromDeployment" => {
                expect(1)?;
                let id = match &args[0] {
                    Value::String(s) if !s.trim().is_empty() => s.trim(),
                    Value::String(_) | Value::Null => {
                        return Err(format!("An error occurred invoking '{target}': executionId is required."))
                    }
                    other => {
                        return Err(format!(
                            "An error occurred invoking '{target}': executionId must be a string (the deployment's id), not {}.",
                            json_kind(other)
                        ))
                    }
                };
                let id = Uuid::parse_str(id)
                    .map_err(|_| format!("An error occurred invoking '{target}': '{id}' is not a deployment id."))?;
                if target == "SubscribeToDeployment" {
                    if !self.runs.contains(&id) && self.runs.len() >= self.settings.max_subscriptions {
                        return Err(format!(
                            "An error occurred invoking '{target}': at most {} deployments per connection.",
                            self.settings.max_subscriptions
                        ));
                    }
                    self.runs.insert(id);
                    self.bus.do_send(Watch(self.feed_id, Topic::Run(id)));
                } else {
                    self.runs.remove(&id);
                    self.bus.do_send(Unwatch(self.feed_id, Topic::Run(id)));
                }
                Ok(())
            }
            "SubscribeToAllDeployments" => {
                expect(0)?;
                self.all = true;
                self.bus.do_send(Watch(self.feed_id, Topic::All));
                Ok(())
            }
            "UnsubscribeFromAllDeployments" => {
                expect(0)?;
                self.all = false;
                self.bus.do_send(Unwatch(self.feed_id, Topic::All));
                Ok(())
            }
            other => Err(format!(
                "Failed to invoke '{other}' due to an error on the server. HubException: Method does not exist."
            )),
        }
    }

    /// The frames of `event` this connection's groups receive.
    pub fn frames_for<'e>(&self, event: &'e BusEvent) -> impl Iterator<Item = &'e ByteString> + use<'e, '_> {
        let in_group = self.runs.contains(&event.event.execution_id);
        encoded(event)
            .iter()
            .filter(move |(audience, _)| in_group || (self.all && *audience == Audience::RunAndAll))
            .map(|(_, frame)| frame)
    }
}

/// What kind of JSON value a client sent, for a refusal that names it.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
