//! Live sessions outlive the request that opened them, so the checks the
//! authentication middleware made once are made again while they last: the
//! token is not revoked (logout, password reset), its user still exists, is
//! enabled and still may read (a role change), and its tenant is still
//! active (suspension, deletion). The first failed check closes the session:
//! 1008 on /api/v1/ws, a SignalR close message with the reason on the hub
//! (over every transport).
//!
//! A session checks itself when it is told that its user or tenant changed
//! (`auth::session_signals`: logout, reset, disable, roles, suspension and
//! deletion, on this instance or, with Redis, any other), reading the store
//! past the auth cache. It also checks itself every
//! `websocket.revalidate_interval` (30 s by default) as a safety net for the
//! changes no signal announces (an edit straight in the database, a signal
//! lost while Redis was down). Never two checks at once: a signal that
//! arrives during a check runs another right after it. A store that does
//! not answer keeps the session (an outage must not drop every client at
//! once) and the next tick asks again.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, HttpRequest};
use hotswap_actors::domain::{Role, TenantId, TenantStatus, DEFAULT_TENANT};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::auth::jwt::TokenError;
use crate::auth::AuthState;
use crate::crypto::Secret;

/// What a session needs to check itself again: the token it was opened with,
/// and whose it is (to tell which signals concern it).
#[derive(Clone)]
pub struct Revalidation {
    auth: web::Data<AuthState>,
    token: Secret,
    owner: Option<(TenantId, Uuid)>,
}

// The token stays out of Debug output (SessionIdentity is logged).
impl std::fmt::Debug for Revalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revalidation").finish_non_exhaustive()
    }
}

impl Revalidation {
    /// From an upgrade request that the middleware authenticated.
    pub fn of(req: &HttpRequest) -> Option<Revalidation> {
        let auth = req.app_data::<web::Data<AuthState>>()?.clone();
        let token = super::identity::bearer_token(req)?;
        let owner = crate::auth::principal_of(req).ok().map(|p| (p.tenant_id, p.user_id));
        Some(Revalidation { auth, token: Secret::new(token), owner })
    }

    /// `Err` with the reason to give the client when the session must end.
    /// `fresh` reads the store past the auth cache (after a signal).
    pub async fn check(&self, fresh: bool) -> Result<(), String> {
        let verdict = if fresh {
            self.auth.authenticate_uncached(self.token.expose()).await
        } else {
            self.auth.authenticate(self.token.expose()).await
        };
        let principal = match verdict {
            Ok(p) => p,
            Err(TokenError::Unavailable) => return Ok(()),
            Err(e) => return Err(format!("access ended: {e}")),
        };
        if !principal.has_role(Role::Viewer) {
            return Err("access ended: the user may no longer read".into());
        }
        if principal.tenant_id == DEFAULT_TENANT {
            return Ok(());
        }
        match self.auth.store.get_tenant(principal.tenant_id).await {
            Ok(Some(t)) if matches!(t.status, TenantStatus::Active | TenantStatus::Provisioning) => Ok(()),
            Ok(_) => Err("access ended: the tenant is suspended or deleted".into()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot revalidate a live session's tenant");
                Ok(())
            }
        }
    }

    /// Whether a signal (`None`: signals were missed) asks this session to
    /// check itself.
    fn concerned_by(&self, signal: Option<crate::auth::session_signals::SessionSignal>) -> bool {
        match (signal, self.owner) {
            (Some(signal), Some((tenant, user))) => signal.concerns(tenant, user),
            _ => true,
        }
    }
}

/// Where a session's checks stand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Idle,
    Running,
    /// Running, and a signal asked for another check since it began (the
    /// running one may have read the store before the change).
    RunningThenAgain,
    /// A check refused the session: it is closing and never checks again.
    Ended,
}

/// What the session's check passes share.
struct Watch<A: Actor> {
    check: Revalidation,
    pass: Cell<Pass>,
    end: fn(&mut A, &mut A::Context, &str),
}

/// Checks the session when a signal concerns it and every `every`; on a
/// refusal calls `end` with the reason.
pub fn watch<A>(ctx: &mut A::Context, check: Revalidation, every: Duration, end: fn(&mut A, &mut A::Context, &str))
where
    A: Actor,
    A::Context: AsyncContext<A>,
{
    let signals = check.auth.signals.subscribe();
    let watch = Rc::new(Watch { check, pass: Cell::new(Pass::Idle), end });
    let polled = watch.clone();
    ctx.run_interval(every, move |act, ctx| start(act, ctx, polled.clone(), false));
    let heard = futures::stream::unfold(signals, |mut signals| async move {
        match signals.recv().await {
            Ok(signal) => Some((Some(signal), signals)),
            // Some were missed: any of them may have been this session's.
            Err(RecvError::Lagged(_)) => Some((None, signals)),
            Err(RecvError::Closed) => None,
        }
    });
    ctx.spawn(
        actix::fut::wrap_stream::<_, A>(heard)
            .map(move |signal, act, ctx| {
                if watch.check.concerned_by(signal) {
                    start(act, ctx, watch.clone(), true);
                }
            })
            .finish(),
    );
}

/// Starts a check, or (after a signal) asks for another once the running one ends.
fn start<A>(act: &mut A, ctx: &mut A::Context, watch: Rc<Watch<A>>, fresh: bool)
where
    A: Actor,
    A::Context: AsyncContext<A>,
{
    match watch.pass.get() {
        Pass::Idle => watch.pass.set(Pass::Running),
        Pass::Ended => return,
        Pass::Running | Pass::RunningThenAgain => {
            if fresh {
                watch.pass.set(Pass::RunningThenAgain);
            }
            return;
        }
    }
    let check = watch.check.clone();
    let pass = async move { check.check(fresh).await };
    ctx.spawn(pass.into_actor(act).map(move |outcome, act, ctx| {
        let again = watch.pass.replace(Pass::Idle) == Pass::RunningThenAgain;
        match outcome {
            Err(why) => {
                watch.pass.set(Pass::Ended);
                tracing::info!(reason = %why, "closing a live session");
                (watch.end)(act, ctx, &why);
            }
            Ok(()) if again => start(act, ctx, watch, true),
            Ok(()) => {}
        }
    }));
}
