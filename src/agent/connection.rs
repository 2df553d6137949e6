//! The agent's connection to the server: one WebSocket session at a time,
//! reconnecting with capped exponential backoff and jitter. Commands run
//! one after another in a worker that owns the host, so that heartbeats go
//! on while a long hook runs; a command cut off by a lost connection still
//! finishes, and the next `hello` reports where it left the host.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::time::{interval, sleep};
use awc::ws::{Frame, Message};
use futures::{SinkExt, StreamExt};
use hotswap_actors::domain::{AgentFrame, ArtifactInfo, HostReport, ModuleHooks, ServerFrame};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::host::Host;

/// What the agent says when the server closes its session: the server's
/// words, not the WebSocket library's structure.
fn closed_because(reason: Option<&awc::ws::CloseReason>) -> String {
    match reason.and_then(|r| r.description.as_deref()).filter(|d| !d.trim().is_empty()) {
        Some(description) => format!("the server closed the session: {description}"),
        None => match reason {
            Some(r) => format!("the server closed the session (code {})", u16::from(r.code)),
            None => "the server closed the session".into(),
        },
    }
}
use super::settings::AgentConfig;

/// Work for the host's worker, in order.
// Jobs are few and short-lived: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Job {
    Welcome {
        session: Option<String>,
        trusted_keys: Vec<String>,
        accept_bare: bool,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// The tenant's signing keys changed during the session.
    TrustKeys { trusted_keys: Vec<String> },
    Command {
        id: u64,
        command: hotswap_actors::domain::AgentCommand,
        artifact: Option<ArtifactInfo>,
        hooks: ModuleHooks,
        reply: mpsc::UnboundedSender<AgentFrame>,
    },
}

/// What the session loop reads of the host between commands.
pub struct Published {
    pub report: HostReport,
    pub session: Option<String>,
}

/// Runs jobs against the host and publishes its state after each.
pub async fn worker(mut host: Host, mut jobs: mpsc::UnboundedReceiver<Job>, published: Rc<RefCell<Published>>) {
    let mut system = sysinfo::System::new();
    let publish = |host: &Host, system: &mut sysinfo::System, published: &Rc<RefCell<Published>>| {
        let report = HostReport {
            modules: host.state.modules.clone(),
            metrics: host.metrics(system),
            problems: host.problems.clone(),
            accepts_unsigned: !host.config.require_signatures,
        };
        *published.borrow_mut() = Published { report: report.clone(), session: host.state.session.clone() };
        report
    };
    publish(&host, &mut system, &published);
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Welcome { session, trusted_keys, accept_bare, done } => {
                let mut next = host.state.clone();
                next.session = session.or(next.session);
                next.trusted_keys = trusted_keys;
                next.accept_bare_signatures = accept_bare;
                let saved = host.dir.save(&next);
                if saved.is_ok() {
                    host.state = next;
                }
                publish(&host, &mut system, &published);
                let _ = done.send(saved);
            }
            Job::TrustKeys { trusted_keys } => {
                let mut next = host.state.clone();
                next.trusted_keys = trusted_keys;
                // The server's set is the truth even if the disk refuses it
                // now: a revoked key must stop verifying at once. The next
                // welcome writes the set again.
                if let Err(e) = host.dir.save(&next) {
                    tracing::warn!(error = %e, "could not record the changed signing keys on disk");
                }
                tracing::info!(keys = next.trusted_keys.len(), "the server changed the signing keys this agent trusts");
                host.state = next;
            }
            Job::Command { id, command, artifact, hooks, reply } => {
                let module = command.module().to_string();
                let outcome = host.apply(command, artifact, hooks).await;
                let report = publish(&host, &mut system, &published);
                let (slots, error) = match outcome {
                    Ok(slots) => (Some(slots), None),
                    Err(e) => (None, Some(e)),
                };
                // The session may be gone; the next hello says where the host is.
                let _ = reply.send(AgentFrame::Reply { id, slots, error, report });
                // Once answered: the server does not wait for the disk to be tidied.
                host.prune(&module).await;
            }
        }
    }
}

/// Connects again and again until the process is stopped.
pub async fn connect_forever(
    config: Arc<AgentConfig>,
    client: awc::Client,
    node_id: Uuid,
    hostname: String,
    jobs: mpsc::UnboundedSender<Job>,
    published: Rc<RefCell<Published>>,
    current: Rc<RefCell<String>>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(200);
    let servers = config.servers();
    let mut next_server = 0;
    let mut backoff = FIRST_BACKOFF;
    let mut use_token = false;
    loop {
        let server = servers.get(next_server % servers.len().max(1)).cloned().unwrap_or_default();
        *current.borrow_mut() = server.clone();
        let session = Session {
            server: &server,
            config: &config,
            client: &client,
            node_id,
            hostname: &hostname,
            jobs: &jobs,
            published: &published,
        };
        let outcome = session.run(use_token).await;
        if outcome.welcomed {
            backoff = FIRST_BACKOFF;
        } else {
            // This instance did not take the agent: try the next one.
            next_server += 1;
        }
        // A session credential the server no longer knows: enrol again with the token.
        use_token = outcome.refused && !use_token && config.token.is_some();
        tracing::warn!(%server, error = %outcome.error, retry_in = ?backoff, "agent session ended");
        sleep(backoff + jitter(backoff)).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// Up to half of `backoff`, so that agents cut off together do not all
/// come back in the same instant.
fn jitter(backoff: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    let fraction = u32::from_le_bytes(bytes) as f64 / u32::MAX as f64;
    backoff.mul_f64(fraction / 2.0)
}

struct Session<'a> {
    server: &'a str,
    config: &'a AgentConfig,
    client: &'a awc::Client,
    node_id: Uuid,
    hostname: &'a str,
    jobs: &'a mpsc::UnboundedSender<Job>,
    published: &'a Rc<RefCell<Published>>,
}

struct Outcome {
    welcomed: bool,
    /// The server refused the credential (401).
    refused: bool,
    error: String,
}

impl Session<'_> {
    async fn run(&self, use_token: bool) -> Outcome {
        let mut outcome = Outcome { welcomed: false, refused: false, error: String::new() };
        let stored = self.published.borrow().session.clone();
        let with_token = use_token || stored.is_none();
        let credential = if with_token { self.config.token.clone() } else { stored };
        let Some(credential) = credential else {
            outcome.error = "no session credential is stored and no --token was given".into();
            return outcome;
        };
        let url = format!("{}/api/v1/agents/connect", self.server);
        let mut framed = match self.client.ws(url).bearer_auth(&credential).connect().await {
            Ok((_, framed)) => framed,
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                outcome.refused = status == awc::http::StatusCode::UNAUTHORIZED;
                outcome.error = match (outcome.refused, with_token, self.config.token.is_some()) {
                    (true, true, _) => {
                        "the server refused the enrolment token (401): it is unknown, expired or revoked, \
                                        or its tenant is suspended; an Admin creates a new one (POST /api/v1/agents/tokens)"
                            .into()
                    }
                    (true, false, true) => {
                        "the server refused this host's session credential (401); enrolling again with --token".into()
                    }
                    (true, false, false) => "the server refused this host's session credential (401): its token was \
                                             revoked, the host removed or its tenant suspended; enrol again with --token"
                        .into(),
                    (false, ..) => format!("the server answered {status}"),
                };
                return outcome;
            }
            Err(e) => {
                outcome.error = format!("cannot connect: {e}");
                return outcome;
            }
        };
        let (replies, mut reply_rx) = mpsc::unbounded_channel::<AgentFrame>();
        let hello = AgentFrame::Hello {
            node_id: self.node_id,
            hostname: self.hostname.to_string(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            report: self.published.borrow().report.clone(),
        };
        if let Err(e) = send(&mut framed, &hello).await {
            outcome.error = e;
            return outcome;
        }
        let mut heartbeat = interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                frame = framed.next() => {
                    let text = match frame {
                        Some(Ok(Frame::Text(text))) => text,
                        Some(Ok(Frame::Ping(bytes))) => {
                            let _ = framed.send(Message::Pong(bytes)).await;
                            continue;
                        }
                        Some(Ok(Frame::Close(reason))) => {
                            outcome.error = closed_because(reason.as_ref());
                            return outcome;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            outcome.error = format!("the session broke: {e}");
                            return outcome;
                        }
                        None => {
                            outcome.error = "the connection closed".into();
                            return outcome;
                        }
                    };
                    match serde_json::from_slice::<ServerFrame>(&text) {
                        Ok(ServerFrame::Welcome { session, heartbeat_interval_ms, trusted_keys, accept_bare_signatures, .. }) => {
                            let (done, saved) = oneshot::channel();
                            let job = Job::Welcome { session, trusted_keys, accept_bare: accept_bare_signatures, done };
                            if self.jobs.send(job).is_err() || !matches!(saved.await, Ok(Ok(()))) {
                                outcome.error = "could not record the session credential on disk".into();
                                return outcome;
                            }
                            heartbeat = interval(Duration::from_millis(heartbeat_interval_ms.max(50)));
                            outcome.welcomed = true;
                            tracing::info!(node = %self.hostname, server = %self.server, "agent session open");
                        }
                        Ok(ServerFrame::TrustedKeys { trusted_keys }) => {
                            // Queued before the command that follows it, so that load checks against this set.
                            let _ = self.jobs.send(Job::TrustKeys { trusted_keys });
                        }
                        Ok(ServerFrame::Command { id, command, artifact, hooks }) => {
                            let _ = self.jobs.send(Job::Command { id, command, artifact, hooks, reply: replies.clone() });
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring a frame the agent does not understand"),
                    }
                }
                Some(reply) = reply_rx.recv() => {
                    if let Err(e) = send(&mut framed, &reply).await {
                        outcome.error = e;
                        return outcome;
                    }
                }
                _ = heartbeat.tick(), if outcome.welcomed => {
                    let beat = AgentFrame::Heartbeat { report: self.published.borrow().report.clone() };
                    if let Err(e) = send(&mut framed, &beat).await {
                        outcome.error = e;
                        return outcome;
                    }
                }
            }
        }
    }
}

async fn send(
    framed: &mut actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
    frame: &AgentFrame,
) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    framed.send(Message::Text(text.into())).await.map_err(|e| format!("cannot send to the server: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use awc::ws::{CloseCode, CloseReason};

    #[test]
    fn a_closed_session_is_told_in_the_servers_words() {
        let removed = CloseReason { code: CloseCode::Policy, description: Some("the host was removed".into()) };
        assert_eq!(closed_because(Some(&removed)), "the server closed the session: the host was removed");
        let bare = CloseReason { code: CloseCode::Away, description: None };
        assert_eq!(closed_because(Some(&bare)), "the server closed the session (code 1001)");
        assert_eq!(closed_because(None), "the server closed the session");
    }
}
