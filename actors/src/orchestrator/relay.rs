//! Verbs for a run another instance drives. The instance that receives the
//! verb cannot carry it out (the run's coordinator lives elsewhere, and the
//! fence refuses its saves), so it stores the verb for the owner
//! (`LeaseStore::relay_verb`), wakes the owner (over Redis when configured)
//! and waits for the answer the owner stores once the verb is saved. The
//! owner also looks for waiting verbs every `cluster.verb_poll_interval`, so
//! a lost wake-up, or no Redis, only delays the answer by that much.
//!
//! A verb the owner never answers (it died meanwhile) is withdrawn before
//! the receiver gives up, so it is either answered or never carried out:
//! the caller's 503 then means what it says.

use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use super::Orchestrator;
use crate::coordinator::{Steer, Verb, VerbReply};
use crate::domain::{AuditActor, RunRecord};
use crate::error::CoreError;
use crate::store::{RelayOutcome, RelayedAnswer, RelayedVerb};

/// How long a coordinator may take to save a verb before the caller is
/// answered 503, on one instance or through the relay.
pub(super) const STEER_WAIT: Duration = Duration::from_secs(5);
/// The longest pause between two looks for the answer.
const ANSWER_POLL_MAX: Duration = Duration::from_millis(50);

impl Orchestrator {
    /// Hands `verb` to the instance that drives `run` and answers what it did.
    pub(super) async fn relay_verb(
        &self,
        run: &RunRecord,
        verb: Verb,
        actor: &AuditActor,
    ) -> Result<VerbReply, CoreError> {
        let store = &self.inner.store;
        let request = RelayedVerb {
            request_id: Uuid::new_v4(),
            tenant_id: run.tenant_id,
            execution_id: run.execution_id,
            verb: verb.as_str().to_string(),
            actor: actor.clone(),
        };
        store.relay_verb(&request).await?;
        self.inner.hooks.wake_up.notify(run.execution_id);
        // The owner's longest way to the verb is one poll, then the save.
        let deadline = Instant::now() + self.inner.settings.cluster.verb_poll_interval + STEER_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(answer) = store.take_relayed_answer(request.request_id).await? {
                return reply_of(verb, answer);
            }
            if Instant::now() >= deadline {
                break;
            }
            actix::clock::sleep(pause).await;
            pause = (pause * 2).min(ANSWER_POLL_MAX);
        }
        if !store.withdraw_relayed_verb(request.request_id).await? {
            // Answered between the last look and the withdrawal.
            if let Some(answer) = store.take_relayed_answer(request.request_id).await? {
                return reply_of(verb, answer);
            }
        }
        let now = self.get_run(run.tenant_id, run.execution_id).await?;
        if !now.status.is_active() {
            return Err(CoreError::WrongState {
                message: format!(
                    "cannot {} a deployment that is {}: it has finished",
                    verb.as_str(),
                    now.status.as_str()
                ),
                status: now.status,
            });
        }
        tracing::warn!(run = %run.execution_id, verb = verb.as_str(), owner = ?now.owner,
            "the instance driving the run did not take a relayed verb in time");
        Err(CoreError::Unavailable(
            "the instance driving this deployment did not answer in time (it may be handing the run over); try again"
                .into(),
        ))
    }

    /// Carries out the verbs other instances stored for the runs driven
    /// here, and stores each answer.
    async fn answer_relayed_verbs(&self) {
        let driven = self.inner.runs.ids();
        if driven.is_empty() {
            return;
        }
        let waiting = match self.inner.store.relayed_verbs(&driven).await {
            Ok(waiting) => waiting,
            Err(e) => return tracing::debug!(error = %e, "cannot read relayed verbs; the next look retries"),
        };
        for request in waiting {
            // A coordinator that stopped meanwhile: its next incarnation (here
            // or on another instance) answers.
            let Some(addr) = self.inner.runs.get(request.execution_id) else { continue };
            let answer = match Verb::parse(&request.verb) {
                None => RelayedAnswer {
                    outcome: RelayOutcome::Refused,
                    status: None,
                    message: format!("unknown verb '{}'", request.verb),
                },
                Some(verb) => {
                    let steered = addr.send(Steer { verb, actor: request.actor.clone() }).timeout(STEER_WAIT).await;
                    answer_of(verb, steered)
                }
            };
            if let Err(e) = self.inner.store.answer_relayed_verb(request.request_id, &answer).await {
                tracing::warn!(run = %request.execution_id, error = %e, "a relayed verb was carried out but its answer was not stored");
            }
        }
    }

    /// Looks for relayed verbs every `cluster.verb_poll_interval` and at
    /// once when woken; one look at a time.
    pub(super) fn start_relay_inbox(&self) {
        let orchestrator = self.clone();
        let every = self.inner.settings.cluster.verb_poll_interval;
        actix::spawn(async move {
            loop {
                let woken = orchestrator.inner.relay_wake.notified();
                let _ = tokio::time::timeout(every, woken).await;
                orchestrator.answer_relayed_verbs().await;
            }
        });
    }
}

/// Why a coordinator gave no answer to a verb. A timeout is not a refusal:
/// the coordinator holds the verb and saves it when the store lets it (the
/// store may be slow or down), so it may still take effect; the caller is
/// told so, and to read the run before sending the verb again.
pub(super) fn unanswered(verb: Verb, e: &MailboxError) -> String {
    match e {
        MailboxError::Timeout => format!(
            "the store did not confirm the {} within {} s, so it is not acknowledged; it may still take effect once the store saves it: read the deployment before sending it again",
            verb.as_str(),
            STEER_WAIT.as_secs()
        ),
        MailboxError::Closed => "the deployment's coordinator is restarting; try again".into(),
    }
}

fn answer_of(verb: Verb, steered: Result<Result<VerbReply, CoreError>, MailboxError>) -> RelayedAnswer {
    match steered {
        Ok(Ok(reply)) => {
            RelayedAnswer { outcome: RelayOutcome::Accepted, status: Some(reply.status), message: reply.message }
        }
        Ok(Err(CoreError::WrongState { message, status })) => {
            RelayedAnswer { outcome: RelayOutcome::Refused, status: Some(status), message }
        }
        Ok(Err(e)) => RelayedAnswer { outcome: RelayOutcome::Failed, status: None, message: e.to_string() },
        Err(e) => RelayedAnswer { outcome: RelayOutcome::Failed, status: None, message: unanswered(verb, &e) },
    }
}

fn reply_of(verb: Verb, answer: RelayedAnswer) -> Result<VerbReply, CoreError> {
    match (answer.outcome, answer.status) {
        (RelayOutcome::Accepted, Some(status)) => Ok(VerbReply { status, message: answer.message }),
        (RelayOutcome::Refused, Some(status)) => Err(CoreError::WrongState { message: answer.message, status }),
        (RelayOutcome::Refused, None) => Err(CoreError::Validation(vec![answer.message])),
        _ => Err(CoreError::Unavailable(format!("cannot {} the deployment now: {}", verb.as_str(), answer.message))),
    }
}
