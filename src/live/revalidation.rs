//! Live sessions outlive the request that opened them, so the checks the
//! authentication middleware made once are made again while they last: the
//! token is not revoked (logout, password reset), its user still exists, is
//! enabled and still may read (a role change), and its tenant is still
//! active (suspension, deletion). The first failed check closes the session:
//! 1008 on /api/v1/ws, a SignalR close message with the reason on the hub
//! (over every transport).
//!
//! One check per session per `websocket.revalidate_interval`, never two at
//! once; a store that does not answer keeps the session (an outage must not
//! drop every client at once) and the next tick asks again.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, HttpRequest};
use hotswap_actors::domain::{Role, TenantStatus, DEFAULT_TENANT};

use crate::auth::jwt::TokenError;
use crate::auth::AuthState;
use crate::crypto::Secret;

/// What a session needs to check itself again: the token it was opened with.
#[derive(Clone)]
pub struct Revalidation {
    auth: web::Data<AuthState>,
    token: Secret,
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
        Some(Revalidation { auth, token: Secret::new(token) })
    }

    /// `Err` with the reason to give the client when the session must end.
    pub async fn check(&self) -> Result<(), String> {
        let principal = match self.auth.authenticate(self.token.expose()).await {
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
}

/// Checks the session every `every`; on a refusal calls `end` with the reason.
pub fn watch<A>(ctx: &mut A::Context, check: Revalidation, every: Duration, end: fn(&mut A, &mut A::Context, &str))
where
    A: Actor,
    A::Context: AsyncContext<A>,
{
    let busy = Rc::new(Cell::new(false));
    ctx.run_interval(every, move |act, ctx| {
        if busy.replace(true) {
            return;
        }
        let (check, busy) = (check.clone(), busy.clone());
        let pass = async move { check.check().await };
        ctx.spawn(pass.into_actor(act).map(move |outcome, act, ctx| {
            busy.set(false);
            if let Err(why) = outcome {
                tracing::info!(reason = %why, "closing a live session");
                end(act, ctx, &why);
            }
        }));
    });
}
