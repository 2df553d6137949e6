//! One connection per store that LISTENs on the bus's channel and wakes the
//! store's `changes()` on every notification, so that a publish on any
//! instance wakes long-polls on all of them. A lost connection is opened
//! again with backoff; waiters are woken after each reconnect, since
//! notifications sent while it was down are lost.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::super::errors::Redactor;
use super::super::pool::establish;
use super::CHANNEL;

const RECONNECT_FIRST: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Aborts the listening task when dropped.
pub(super) struct ListenerGuard(JoinHandle<()>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn start(url: String, connect_timeout: Duration, redactor: Redactor, notify: Arc<Notify>) -> ListenerGuard {
    ListenerGuard(tokio::spawn(async move {
        let mut delay = RECONNECT_FIRST;
        loop {
            match listen(&url, connect_timeout).await {
                Ok(mut conn) => {
                    delay = RECONNECT_FIRST;
                    notify.notify_waiters();
                    let mut stream = std::pin::pin!(conn.notifications_stream());
                    // Ends when the connection fails or closes.
                    while let Some(Ok(_)) = stream.next().await {
                        notify.notify_waiters();
                    }
                    tracing::warn!("the message bus lost its LISTEN connection; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(error = %redactor.scrub(e), ?delay, "the message bus cannot LISTEN; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RECONNECT_MAX);
        }
    }))
}

async fn listen(url: &str, timeout: Duration) -> Result<AsyncPgConnection, String> {
    let mut conn = establish(url, timeout).await.map_err(|e| e.to_string())?;
    // The channel is this module's constant, not input.
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).await.map_err(|e| e.to_string())?;
    Ok(conn)
}
