//! What an operator (or the lease keeper) does to a coordinator itself,
//! apart from the run it drives: stop this incarnation, or make it panic to
//! watch supervision at work.

use actix::prelude::*;

use super::actor::Coordinator;

/// Stops this incarnation without touching the run: it stays at its
/// checkpoint until the supervisor (or the next process) starts another.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCoordinator;

impl Handler<StopCoordinator> for Coordinator {
    type Result = ();
    fn handle(&mut self, _: StopCoordinator, ctx: &mut Self::Context) {
        tracing::warn!(run = %self.run.execution_id, "coordinator stopped on request");
        ctx.stop();
    }
}

/// Makes the coordinator panic; lets tests and operators see supervision at work.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CrashCoordinator;

impl Handler<CrashCoordinator> for Coordinator {
    type Result = ();
    fn handle(&mut self, _: CrashCoordinator, _ctx: &mut Self::Context) {
        panic!("coordinator of run {} crashed on request", self.run.execution_id);
    }
}
