use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ExitGuard;
pub use crate::domain::ActorKind;
use crate::domain::TenantId;
use crate::hooks::{NoObserver, Observer};
use crate::settings::RestartPolicy;

mod queries;
pub use queries::{GetChild, GetTreePage, Settled, StateCounts, SupervisorPage};

/// A child is known by its tenant and id together: tenants' nodes share hostnames.
pub(super) type ChildKey = (Option<TenantId>, String);

/// Starts one incarnation of a child; it must hand the guard to the actor it starts.
pub type StartFn = Arc<dyn Fn(ExitGuard) + Send + Sync>;
/// Called once when a child has used up its restarts.
pub type EscalateFn = Arc<dyn Fn(String) + Send + Sync>;

/// Reaches the current incarnation of a child, whatever its actor type.
pub trait ChildControl: Send + Sync {
    /// Tells the live incarnation to stop; false when none is up right now.
    fn stop(&self) -> bool;
    /// Messages waiting for the incarnation, when that can be known.
    fn backlog(&self) -> Option<usize> {
        None
    }
    /// What keeps the incarnation from doing its work, when it knows (a
    /// coordinator that cannot save its checkpoint); shown in the admin tree.
    fn problem(&self) -> Option<String> {
        None
    }
}

pub struct ChildSpec {
    pub id: String,
    pub kind: ActorKind,
    pub tenant: Option<TenantId>,
    pub start: StartFn,
    pub on_escalate: Option<EscalateFn>,
    /// Without it the child can be neither stopped nor restarted on request.
    pub control: Option<Arc<dyn ChildControl>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChildState {
    Running,
    Restarting,
    /// Told to stop on request; restarted afterwards when `restart` was asked.
    Stopping,
    /// Stopped on request; a restart request starts it again.
    Stopped,
    Failed,
}

/// What an operator can ask of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildAction {
    Restart,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no supervised actor {0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    /// Try again shortly.
    #[error("{0}")]
    Busy(String),
}

struct Child {
    kind: ActorKind,
    tenant: Option<TenantId>,
    start: StartFn,
    on_escalate: Option<EscalateFn>,
    control: Option<Arc<dyn ChildControl>>,
    /// Whether a Stopping child starts again once it has stopped.
    restart_after_stop: bool,
    state: ChildState,
    generation: u64,
    restarts: u32,
    recent_restarts: VecDeque<Instant>,
    last_failure: Option<(String, DateTime<Utc>)>,
    started_at: DateTime<Utc>,
}

/// Supervises children of one or more kinds, one-for-one.
pub struct Supervisor {
    name: String,
    policies: BTreeMap<String, RestartPolicy>,
    children: BTreeMap<ChildKey, Child>,
    total_restarts: u64,
    total_escalations: u64,
    observer: Arc<dyn Observer>,
    /// Escalated (Failed) children, oldest first: only the newest
    /// `failed_window` stay listed, so that a long life of crashes does not
    /// grow the tree without bound.
    failed: VecDeque<ChildKey>,
    failed_window: usize,
}

/// Escalated children kept in the tree by default.
pub const DEFAULT_FAILED_WINDOW: usize = 1_000;

impl Supervisor {
    pub fn new(name: impl Into<String>, policies: impl IntoIterator<Item = (ActorKind, RestartPolicy)>) -> Self {
        Supervisor {
            name: name.into(),
            policies: policies.into_iter().map(|(k, p)| (k.to_string(), p)).collect(),
            children: BTreeMap::new(),
            total_restarts: 0,
            total_escalations: 0,
            observer: Arc::new(NoObserver),
            failed: VecDeque::new(),
            failed_window: DEFAULT_FAILED_WINDOW,
        }
    }

    /// Keeps at most `window` escalated children listed (at least one).
    pub fn with_failed_window(mut self, window: usize) -> Self {
        self.failed_window = window.max(1);
        self
    }

    /// Lists `key` among the escalated children, forgetting the oldest ones
    /// beyond the window (unless an operator started them again since).
    fn remember_failed(&mut self, key: ChildKey) {
        self.failed.retain(|k| k != &key);
        self.failed.push_back(key);
        while self.failed.len() > self.failed_window {
            let Some(oldest) = self.failed.pop_front() else { break };
            if self.children.get(&oldest).is_some_and(|c| c.state == ChildState::Failed) {
                self.children.remove(&oldest);
            }
        }
    }

    /// Tells `observer` of every restart and escalation.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    fn policy(&self, kind: ActorKind) -> RestartPolicy {
        self.policies.get(&kind.to_string()).cloned().unwrap_or_default()
    }

    fn launch(&mut self, key: &ChildKey, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(key) else { return };
        child.generation += 1;
        child.state = ChildState::Running;
        child.started_at = Utc::now();
        let guard = ExitGuard::new(ctx.address(), key.clone(), child.generation);
        (child.start)(guard);
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Deployments start thousands of children at once.
        ctx.set_mailbox_capacity(usize::MAX >> 4);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StartChild(pub ChildSpec);

impl Handler<StartChild> for Supervisor {
    type Result = ();

    fn handle(&mut self, StartChild(spec): StartChild, ctx: &mut Self::Context) {
        let id = (spec.tenant, spec.id.clone());
        self.children.insert(
            id.clone(),
            Child {
                kind: spec.kind,
                tenant: spec.tenant,
                start: spec.start,
                on_escalate: spec.on_escalate,
                control: spec.control,
                restart_after_stop: false,
                state: ChildState::Running,
                generation: 0,
                restarts: 0,
                recent_restarts: VecDeque::new(),
                last_failure: None,
                started_at: Utc::now(),
            },
        );
        self.launch(&id, ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ChildExited {
    pub child: ChildKey,
    pub generation: u64,
    pub panicked: bool,
    pub reason: Option<String>,
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Self::Context) {
        let Some(child) = self.children.get_mut(&msg.child) else { return };
        // A late notice from an incarnation that was already replaced.
        if child.generation != msg.generation || !matches!(child.state, ChildState::Running | ChildState::Stopping) {
            return;
        }
        if child.state == ChildState::Stopping {
            if std::mem::take(&mut child.restart_after_stop) {
                child.restarts += 1;
                self.total_restarts += 1;
                tracing::warn!(supervisor = %self.name, child = %msg.child.1, "restarting child on request");
                self.launch(&msg.child, ctx);
            } else {
                child.state = ChildState::Stopped;
                tracing::warn!(supervisor = %self.name, child = %msg.child.1, "child stopped on request");
            }
            return;
        }
        if !msg.panicked {
            // A normal stop is final (a "transient" child in OTP terms).
            self.children.remove(&msg.child);
            return;
        }
        let kind = child.kind;
        let policy = self.policy(kind);
        let reason = msg.reason.unwrap_or_else(|| "panicked".to_string());
        #[allow(clippy::expect_used)] // The child was looked up just above, on this same thread.
        let child = self.children.get_mut(&msg.child).expect("looked up above");
        child.last_failure = Some((reason.clone(), Utc::now()));
        let now = Instant::now();
        while child.recent_restarts.front().is_some_and(|t| now.duration_since(*t) > policy.within) {
            child.recent_restarts.pop_front();
        }
        if child.recent_restarts.len() as u32 >= policy.max_restarts {
            child.state = ChildState::Failed;
            self.total_escalations += 1;
            self.observer.actor_escalated(child.kind);
            tracing::error!(supervisor = %self.name, child = %msg.child.1, %reason,
                "child exceeded {} restarts within {:?}; escalating", policy.max_restarts, policy.within);
            if let Some(escalate) = child.on_escalate.clone() {
                escalate(reason);
            }
            self.remember_failed(msg.child);
            return;
        }
        let backoff = policy
            .backoff
            .saturating_mul(1u32 << child.recent_restarts.len().min(16))
            .min(policy.max_backoff.max(policy.backoff));
        child.recent_restarts.push_back(now);
        child.restarts += 1;
        child.state = ChildState::Restarting;
        self.total_restarts += 1;
        self.observer.actor_restarted(child.kind);
        tracing::warn!(supervisor = %self.name, child = %msg.child.1, %reason, ?backoff, "restarting child after a panic");
        let id = msg.child;
        if backoff.is_zero() {
            self.launch(&id, ctx);
        } else {
            let generation = child.generation;
            ctx.run_later(backoff, move |act, ctx| {
                // Unless an operator stopped or restarted it in the meantime.
                if act
                    .children
                    .get(&id)
                    .is_some_and(|c| c.state == ChildState::Restarting && c.generation == generation)
                {
                    act.launch(&id, ctx);
                }
            });
        }
    }
}

/// An operator's request to restart or stop a child. Answers with the
/// child as it is once the request has been taken in.
#[derive(Message)]
#[rtype(result = "Result<ChildSnapshot, ControlError>")]
pub struct ControlChild {
    pub tenant: Option<TenantId>,
    pub id: String,
    pub action: ChildAction,
}

impl Handler<ControlChild> for Supervisor {
    type Result = Result<ChildSnapshot, ControlError>;

    fn handle(&mut self, msg: ControlChild, ctx: &mut Self::Context) -> Self::Result {
        let key = (msg.tenant, msg.id.clone());
        let Some(child) = self.children.get_mut(&key) else {
            return Err(ControlError::NotFound(msg.id));
        };
        let Some(control) = child.control.clone() else {
            return Err(ControlError::Refused(format!("{} cannot be controlled on request", msg.id)));
        };
        match (msg.action, child.state) {
            (_, ChildState::Stopping) => {
                // A restart request wins over a stop request still under way.
                child.restart_after_stop |= msg.action == ChildAction::Restart;
            }
            (ChildAction::Stop, ChildState::Stopped | ChildState::Failed) => {}
            (ChildAction::Stop, ChildState::Restarting) => child.state = ChildState::Stopped,
            (action, ChildState::Running) => {
                if !control.stop() {
                    return Err(ControlError::Busy(format!("{} is starting; try again shortly", msg.id)));
                }
                child.state = ChildState::Stopping;
                child.restart_after_stop = action == ChildAction::Restart;
            }
            (ChildAction::Restart, ChildState::Failed) if child.on_escalate.is_some() => {
                return Err(ControlError::Refused(format!(
                    "{} was escalated and its work handed over; it cannot be restarted",
                    msg.id
                )));
            }
            (ChildAction::Restart, ChildState::Restarting | ChildState::Stopped | ChildState::Failed) => {
                child.recent_restarts.clear();
                child.restarts += 1;
                self.total_restarts += 1;
                tracing::warn!(supervisor = %self.name, child = %msg.id, "starting child on request");
                self.launch(&key, ctx);
            }
        }
        #[allow(clippy::expect_used)] // The child was looked up just above, on this same thread.
        Ok(self.snapshot_of(&key).expect("child looked up above"))
    }
}

/// Stops supervising a child; the actor itself is told to stop by its owner.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct StopChild {
    pub tenant: Option<TenantId>,
    pub id: String,
}

impl Handler<StopChild> for Supervisor {
    type Result = bool;

    fn handle(&mut self, msg: StopChild, _ctx: &mut Self::Context) -> bool {
        self.children.remove(&(msg.tenant, msg.id)).is_some()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildSnapshot {
    pub id: String,
    pub kind: ActorKind,
    pub supervisor: String,
    pub tenant_id: Option<TenantId>,
    pub state: ChildState,
    pub restarts: u32,
    /// Which incarnation runs now (1 for the first).
    pub incarnation: u64,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    /// Requests waiting for the actor, where it can be known.
    pub mailbox_backlog: Option<usize>,
    pub controllable: bool,
    /// What keeps a live incarnation from working, such as a coordinator
    /// whose checkpoint cannot be saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorSnapshot {
    pub name: String,
    pub total_restarts: u64,
    pub total_escalations: u64,
    /// Restart policy by actor kind.
    pub policies: BTreeMap<String, RestartPolicy>,
    pub children: Vec<ChildSnapshot>,
}

impl SupervisorSnapshot {
    pub fn child(&self, id: &str) -> Option<&ChildSnapshot> {
        self.children.iter().find(|c| c.id == id)
    }

    /// The child `id` of `tenant` (ids repeat across tenants).
    pub fn child_of(&self, tenant: TenantId, id: &str) -> Option<&ChildSnapshot> {
        self.children.iter().find(|c| c.id == id && c.tenant_id.is_none_or(|t| t == tenant))
    }
}

#[derive(Message)]
#[rtype(result = "SupervisorSnapshot")]
pub struct GetTree;

impl Handler<GetTree> for Supervisor {
    type Result = MessageResult<GetTree>;

    fn handle(&mut self, _: GetTree, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(SupervisorSnapshot {
            name: self.name.clone(),
            total_restarts: self.total_restarts,
            total_escalations: self.total_escalations,
            policies: self.policies.clone(),
            children: self.children.keys().filter_map(|id| self.snapshot_of(id)).collect(),
        })
    }
}

impl Supervisor {
    fn snapshot_of(&self, key: &ChildKey) -> Option<ChildSnapshot> {
        let c = self.children.get(key)?;
        let live = matches!(c.state, ChildState::Running | ChildState::Stopping);
        Some(ChildSnapshot {
            id: key.1.clone(),
            kind: c.kind,
            supervisor: self.name.clone(),
            tenant_id: c.tenant,
            state: c.state,
            restarts: c.restarts,
            incarnation: c.generation,
            last_failure: c.last_failure.as_ref().map(|(m, _)| m.clone()),
            last_failure_at: c.last_failure.as_ref().map(|(_, t)| *t),
            started_at: c.started_at,
            mailbox_backlog: if live { c.control.as_ref().and_then(|ctl| ctl.backlog()) } else { None },
            controllable: c.control.is_some(),
            problem: if live { c.control.as_ref().and_then(|ctl| ctl.problem()) } else { None },
        })
    }
}
