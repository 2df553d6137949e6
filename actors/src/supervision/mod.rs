//! Supervision that survives panics, in the manner of OTP.
//!
//! actix's own `Supervisor` restarts an actor only when it stops and never
//! after a panic. Here every supervised actor holds an [`ExitGuard`]; when the
//! actor is dropped, normally or while unwinding from a panic, the guard tells
//! its [`Supervisor`], which restarts a fresh actor from the child's start
//! function (the actor reloads its state from the store) within the kind's
//! restart intensity, and escalates once that is exhausted.

mod guard;
mod panic_note;
mod supervisor;
mod threads;

pub use guard::ExitGuard;
pub use panic_note::{install_panic_hook, panic_message};
pub use supervisor::{
    ActorKind, ChildAction, ChildControl, ChildSnapshot, ChildSpec, ChildState, ControlChild, ControlError, GetChild,
    GetTree, GetTreePage, Settled, StartChild, StateCounts, StopChild, Supervisor, SupervisorPage, SupervisorSnapshot,
    DEFAULT_FAILED_WINDOW,
};
pub use threads::ActorThreads;

#[cfg(test)]
mod window_tests;
