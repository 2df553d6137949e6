use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ExitGuard;
use crate::settings::RestartPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ActorKind {
    Node,
    Coordinator,
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Starts one incarnation of a child; it must hand the guard to the actor it starts.
pub type StartFn = Arc<dyn Fn(ExitGuard) + Send + Sync>;
/// Called once when a child has used up its restarts.
pub type EscalateFn = Arc<dyn Fn(String) + Send + Sync>;

pub struct ChildSpec {
    pub id: String,
    pub kind: ActorKind,
    pub start: StartFn,
    pub on_escalate: Option<EscalateFn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChildState {
    Running,
    Restarting,
    Failed,
}

struct Child {
    kind: ActorKind,
    start: StartFn,
    on_escalate: Option<EscalateFn>,
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
    children: BTreeMap<String, Child>,
    total_restarts: u64,
    total_escalations: u64,
}

impl Supervisor {
    pub fn new(name: impl Into<String>, policies: impl IntoIterator<Item = (ActorKind, RestartPolicy)>) -> Self {
        Supervisor {
            name: name.into(),
            policies: policies.into_iter().map(|(k, p)| (k.to_string(), p)).collect(),
            children: BTreeMap::new(),
            total_restarts: 0,
            total_escalations: 0,
        }
    }

    fn policy(&self, kind: ActorKind) -> RestartPolicy {
        self.policies.get(&kind.to_string()).cloned().unwrap_or_default()
    }

    fn launch(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(id) else { return };
        child.generation += 1;
        child.state = ChildState::Running;
        child.started_at = Utc::now();
        let guard = ExitGuard::new(ctx.address(), id.to_string(), child.generation);
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
        let id = spec.id.clone();
        self.children.insert(
            id.clone(),
            Child {
                kind: spec.kind,
                start: spec.start,
                on_escalate: spec.on_escalate,
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
    pub child_id: String,
    pub generation: u64,
    pub panicked: bool,
    pub reason: Option<String>,
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Self::Context) {
        let Some(child) = self.children.get(&msg.child_id) else { return };
        // A late notice from an incarnation that was already replaced.
        if child.generation != msg.generation || child.state != ChildState::Running {
            return;
        }
        if !msg.panicked {
            // A normal stop is final (a "transient" child in OTP terms).
            self.children.remove(&msg.child_id);
            return;
        }
        let policy = self.policy(child.kind);
        let reason = msg.reason.unwrap_or_else(|| "panicked".to_string());
        let child = self.children.get_mut(&msg.child_id).expect("looked up above");
        child.last_failure = Some((reason.clone(), Utc::now()));
        let now = Instant::now();
        while child.recent_restarts.front().is_some_and(|t| now.duration_since(*t) > policy.within) {
            child.recent_restarts.pop_front();
        }
        if child.recent_restarts.len() as u32 >= policy.max_restarts {
            child.state = ChildState::Failed;
            self.total_escalations += 1;
            tracing::error!(supervisor = %self.name, child = %msg.child_id, %reason,
                "child exceeded {} restarts within {:?}; escalating", policy.max_restarts, policy.within);
            if let Some(escalate) = child.on_escalate.clone() {
                escalate(reason);
            }
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
        tracing::warn!(supervisor = %self.name, child = %msg.child_id, %reason, ?backoff, "restarting child after a panic");
        let id = msg.child_id;
        if backoff.is_zero() {
            self.launch(&id, ctx);
        } else {
            ctx.run_later(backoff, move |act, ctx| act.launch(&id, ctx));
        }
    }
}

/// Stops supervising a child; the actor itself is told to stop by its owner.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct StopChild(pub String);

impl Handler<StopChild> for Supervisor {
    type Result = bool;

    fn handle(&mut self, msg: StopChild, _ctx: &mut Self::Context) -> bool {
        self.children.remove(&msg.0).is_some()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildSnapshot {
    pub id: String,
    pub kind: ActorKind,
    pub state: ChildState,
    pub restarts: u32,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorSnapshot {
    pub name: String,
    pub total_restarts: u64,
    pub total_escalations: u64,
    pub children: Vec<ChildSnapshot>,
}

impl SupervisorSnapshot {
    pub fn child(&self, id: &str) -> Option<&ChildSnapshot> {
        self.children.iter().find(|c| c.id == id)
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
            children: self
                .children
                .iter()
                .map(|(id, c)| ChildSnapshot {
                    id: id.clone(),
                    kind: c.kind,
                    state: c.state,
                    restarts: c.restarts,
                    last_failure: c.last_failure.as_ref().map(|(m, _)| m.clone()),
                    last_failure_at: c.last_failure.as_ref().map(|(_, t)| *t),
                    started_at: c.started_at,
                })
                .collect(),
        })
    }
}

