//! How the JetStream back-end names its streams, subjects, consumers and
//! metadata keys. Everything starts with one prefix so that several HotSwap
//! installations (or test runs) can share a NATS server without meeting.
//!
//! Topic names may contain `.` (a subject separator) and message ids may be
//! any string, so both enter names as short SHA-256 digests; the records
//! keep the real names.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use hotswap_actors::domain::TenantId;

/// The number of priority lanes (priorities 0-9).
pub const LANES: u8 = 10;

#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

/// A digest short enough for names, long enough not to collide in practice
/// (64 bits per topic name within one tenant; 128 bits per message id).
/// Made on every publish (the copy's subject and the record's key), so the
/// hex is written straight from the hash's bytes.
fn digest(text: &str, hex_chars: usize) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut out = crate::crypto::hex(&hash[..hex_chars.div_ceil(2).min(hash.len())]);
    out.truncate(hex_chars);
    out
}

pub fn topic_key(topic: &str) -> String {
    digest(topic, 16)
}

pub fn id_key(message_id: &str) -> String {
    digest(message_id, 32)
}

impl Names {
    /// `prefix`: letters, digits and `_` (checked by the settings).
    pub fn new(prefix: &str) -> Self {
        Names { prefix: prefix.to_owned() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key-value bucket of topics, subscriptions, message records and
    /// idempotency keys.
    pub fn bucket(&self) -> String {
        format!("{}_MESSAGING", self.prefix)
    }

    /// The stream of one tenant's topic: every delivery copy of its messages.
    pub fn stream(&self, tenant: TenantId, topic: &str) -> String {
        format!("{}_{}_{}", self.prefix, tenant.simple(), topic_key(topic))
    }

    fn topic_subjects_root(&self, tenant: TenantId, topic: &str) -> String {
        format!("{}.{}.{}", self.prefix, tenant.simple(), topic_key(topic))
    }

    pub fn topic_subjects(&self, tenant: TenantId, topic: &str) -> String {
        format!("{}.>", self.topic_subjects_root(tenant, topic))
    }

    /// One delivery copy: subscription, priority lane and message. The
    /// message part makes "is this copy still pending" one direct get.
    pub fn delivery_subject(&self, tenant: TenantId, topic: &str, sub: Uuid, priority: u8, message_id: &str) -> String {
        format!("{}.{}.p{}.{}", self.topic_subjects_root(tenant, topic), sub.simple(), priority, id_key(message_id))
    }

    /// Every copy waiting for a subscription, all lanes.
    pub fn subscription_filter(&self, tenant: TenantId, topic: &str, sub: Uuid) -> String {
        format!("{}.{}.>", self.topic_subjects_root(tenant, topic), sub.simple())
    }

    pub fn lane_filter(&self, tenant: TenantId, topic: &str, sub: Uuid, lane: u8) -> String {
        format!("{}.{}.p{}.*", self.topic_subjects_root(tenant, topic), sub.simple(), lane)
    }

    /// The durable consumer of a subscription (`lane` on Priority topics).
    pub fn consumer(&self, sub: Uuid, lane: Option<u8>) -> String {
        match lane {
            None => sub.simple().to_string(),
            Some(l) => format!("{}-p{l}", sub.simple()),
        }
    }

    /// One stream holds the dead letters of every topic under the prefix.
    pub fn dlq_stream(&self) -> String {
        format!("{}_DLQ", self.prefix)
    }

    pub fn dlq_subjects(&self) -> String {
        format!("{}dlq.>", self.prefix)
    }

    pub fn dlq_topic_filter(&self, tenant: TenantId, topic: &str) -> String {
        format!("{}dlq.{}.{}.>", self.prefix, tenant.simple(), topic_key(topic))
    }

    pub fn dlq_message_filter(&self, tenant: TenantId, topic: &str, message_id: &str) -> String {
        format!("{}dlq.{}.{}.{}.*", self.prefix, tenant.simple(), topic_key(topic), id_key(message_id))
    }

    pub fn dlq_subject(&self, tenant: TenantId, topic: &str, message_id: &str, sub: Uuid) -> String {
        format!("{}dlq.{}.{}.{}.{}", self.prefix, tenant.simple(), topic_key(topic), id_key(message_id), sub.simple())
    }
}

/// Keys of the metadata bucket.
pub mod keys {
    use super::{id_key, topic_key};
    use hotswap_actors::domain::TenantId;
    use uuid::Uuid;

    pub const TOPICS: &str = "topic.>";
    pub const SUBSCRIPTIONS: &str = "sub.>";
    pub const MESSAGES: &str = "msg.>";
    pub const IDEMPOTENCY: &str = "idem.>";

    pub fn topic(tenant: TenantId, name: &str) -> String {
        format!("topic.{}.{}", tenant.simple(), topic_key(name))
    }

    pub fn subscription(tenant: TenantId, id: Uuid) -> String {
        format!("sub.{}.{}", tenant.simple(), id.simple())
    }

    pub fn message(tenant: TenantId, message_id: &str) -> String {
        format!("msg.{}.{}", tenant.simple(), id_key(message_id))
    }

    pub fn tenant_messages(tenant: TenantId) -> String {
        format!("msg.{}.*", tenant.simple())
    }

    pub fn idempotency(tenant: TenantId, topic: &str, key: &str) -> String {
        format!("idem.{}.{}.{}", tenant.simple(), topic_key(topic), id_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_topic_names_and_odd_ids_make_single_tokens() {
        let names = Names::new("HS");
        let tenant = Uuid::nil();
        let subject = names.delivery_subject(tenant, "a.b.c", Uuid::nil(), 7, "id with spaces.and dots");
        assert_eq!(subject.split('.').count(), 6, "{subject}");
        assert!(names.stream(tenant, "a.b").chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_ne!(topic_key("a.b"), topic_key("a_b"));
    }

    /// Streams, subjects and keys already stored are found again only if
    /// these never change: the leading hex digits of the name's SHA-256.
    #[test]
    fn keys_are_the_leading_digits_of_the_sha256() {
        assert_eq!(topic_key("orders"), "1c168adb00d208e4");
        assert_eq!(id_key("id with spaces.and dots"), "1e440fc6ec3dcac42951441a0d7ed9a3");
    }
}
