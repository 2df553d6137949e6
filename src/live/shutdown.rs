//! The server's announcement that it is stopping. Live sessions wait on it and
//! close as a stopping server should: 1001 (going away) on /api/v1/ws, and on
//! the hub a close message that allows reconnecting, over every transport, so
//! that clients reconnect at once (to another instance, or to this one
//! restarted). Without it the HTTP server's graceful stop waited for these
//! long-lived connections until its timeout and then cut them: the clients saw
//! 1006 (abnormal closure) five seconds later.

use std::future::Future;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::watch;

/// What a session tells its client when the server stops.
pub const SHUTTING_DOWN: &str = "The server is shutting down.";

#[derive(Clone)]
pub struct ShutdownNotice {
    stopping: Arc<watch::Sender<bool>>,
}

impl Default for ShutdownNotice {
    fn default() -> Self {
        ShutdownNotice { stopping: Arc::new(watch::channel(false).0) }
    }
}

impl ShutdownNotice {
    /// Tells every session, those on other worker threads included.
    pub fn announce(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once the stop is announced (at once if it already was).
    fn announced(&self) -> impl Future<Output = ()> + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            // An error means the notice itself is gone: the process is ending.
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }
}

/// Runs `on_stop` in the session's actor when the server announces its stop.
pub fn watch<A>(ctx: &mut A::Context, notice: &ShutdownNotice, on_stop: fn(&mut A, &mut A::Context))
where
    A: Actor,
    A::Context: AsyncContext<A>,
{
    ctx.spawn(actix::fut::wrap_future::<_, A>(notice.announced()).map(move |(), act, ctx| on_stop(act, ctx)));
}
