//! Live updates. Coordinators publish every event they have saved to one
//! [`EventBus`] actor; adapters (WebSocket sessions, the SignalR hub) open a
//! [`Feed`] on it. Each feed has a bounded queue: the bus never waits on a
//! feed, and a feed that falls too far behind is cut off and told so, so a
//! slow client can neither grow memory nor slow a run.

mod bus;
mod feed;

pub use bus::{
    AddRelay, BusEvent, BusStats, EventBus, Publish, Relay, Relayed, SetRelay, Subscribe, Topic, Unsubscribe, Unwatch,
    Watch,
};
pub use feed::{open_feed, Feed, FeedEnd, FeedStatus, SubscriberId};

#[cfg(test)]
mod tests;
