//! The receiving end of one subscription.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use super::bus::{BusEvent, BusStats, Subscribe};
use crate::domain::TenantId;

pub type SubscriberId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Shared between the bus's sending end and the feed.
pub(super) struct FeedShared {
    pub(super) overflowed: AtomicBool,
}

/// Why a feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnd {
    /// More events were due than the queue holds; the bus dropped the feed.
    Overflowed,
    /// The bus went away.
    Closed,
}

/// Opens a subscription for `tenant` holding at most `capacity` undelivered
/// events. Send the [`Subscribe`] to the bus and read events from the
/// [`Feed`]; it watches no run until told with `Watch`.
pub fn open_feed(tenant: TenantId, capacity: usize, stats: Arc<BusStats>) -> (Subscribe, Feed) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(FeedShared { overflowed: AtomicBool::new(false) });
    let subscribe = Subscribe { id, tenant, sender: tx, shared: shared.clone() };
    (subscribe, Feed { id, rx, shared, stats })
}

#[derive(Clone)]
pub struct FeedStatus(Arc<FeedShared>);

impl FeedStatus {
    pub fn overflowed(&self) -> bool {
        self.0.overflowed.load(Ordering::Acquire)
    }
}

/// A stream of the events of the runs a subscriber watches, in the order
/// they were published (and so, per run, in the order they happened).
pub struct Feed {
    id: SubscriberId,
    rx: mpsc::Receiver<Arc<BusEvent>>,
    shared: Arc<FeedShared>,
    stats: Arc<BusStats>,
}

impl Feed {
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// True once the bus has cut this feed off for falling behind.
    pub fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// A handle that still tells about the feed once the stream is handed on.
    pub fn status(&self) -> FeedStatus {
        FeedStatus(self.shared.clone())
    }

    /// Why the stream ended (meaningful once it has).
    pub fn end(&self) -> FeedEnd {
        if self.overflowed() {
            FeedEnd::Overflowed
        } else {
            FeedEnd::Closed
        }
    }
}

impl Stream for Feed {
    type Item = Arc<BusEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        polled
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.rx.close();
        while self.rx.try_recv().is_ok() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
