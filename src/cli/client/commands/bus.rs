//! The message bus's verbs: topics, subscriptions and the schema registry.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create a topic (Deployers).
    Create {
        name: String,
        /// PubSub (every subscription gets each message) or Queue (one of them does).
        #[arg(long = "type", default_value = "PubSub", value_name = "TYPE", ignore_case = true, value_parser = super::choices::topic_type())]
        topic_type: String,
        /// AtMostOnce, AtLeastOnce (the default) or ExactlyOnce.
        #[arg(long, ignore_case = true, value_parser = super::choices::delivery_guarantee())]
        guarantee: Option<String>,
        /// How long messages are kept, such as 7days or 12h.
        #[arg(long)]
        retention: Option<String>,
        /// 1-16.
        #[arg(long)]
        partitions: Option<u8>,
        /// Direct, FanOut, LoadBalanced, Priority or ContentBased (the type's default when left out).
        #[arg(long, ignore_case = true, value_parser = super::choices::routing_strategy())]
        routing: Option<String>,
        /// One message per partition key in flight at a time, in publishing order.
        #[arg(long)]
        ordered: bool,
        /// The registered schema its messages must match.
        #[arg(long, value_name = "SCHEMA_ID")]
        schema: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// A topic with its counters and each subscription's backlog.
    Show { name: String },
    /// Delete a topic that no subscription uses (Admins).
    Delete { name: String },
    /// The messages that ran out of retries on a topic, oldest first, a page at a time.
    Dlq {
        name: String,
        /// Which page (1 = the oldest letters).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Letters per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
    },
    /// Deliver a dead letter again to its subscription (Deployers).
    Replay {
        name: String,
        #[arg(value_name = "MESSAGE_ID")]
        message_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionsCommand {
    /// Subscribe a consumer group to a topic (Deployers): pulled with `hotswap consume`,
    /// or pushed to --push URL.
    Create {
        topic: String,
        /// The consumer group's name.
        #[arg(long)]
        group: String,
        /// Deliver by POSTing each message to this http(s) URL instead of waiting to be pulled.
        #[arg(long, value_name = "URL")]
        push: Option<String>,
        /// Deliveries after the first before a message goes to the dead letters (0-10).
        #[arg(long)]
        max_retries: Option<u32>,
        /// How long a consumer has to acknowledge a message, such as 30s.
        #[arg(long, value_name = "DURATION")]
        ack_timeout: Option<String>,
        /// Only messages with this header (repeatable), under the ContentBased strategy.
        #[arg(long = "header", value_name = "KEY=VALUE")]
        headers: Vec<String>,
        /// Only messages whose JSON payload this JSONPath selects (`$.kind == "deploy"` compares).
        #[arg(long = "query", value_name = "JSONPATH")]
        payload_query: Option<String>,
    },
    /// Stop delivering (the backlog is kept).
    Pause { id: String },
    /// Deliver again, backlog first.
    Resume { id: String },
    /// Delete a subscription and its backlog (Admins).
    Delete { id: String },
}

/// FILE, in each of these, is a path or `-` for standard input.
#[derive(Subcommand, Debug)]
pub enum SchemasCommand {
    /// Register FILE (a JSON Schema, draft 7 or 2020-12) as the subject's next version
    /// (Deployers): approved at once when compatible with the approved versions, else a Draft.
    Register {
        id: String,
        file: String,
        /// None, Backward (the default), Forward, Full, or their Transitive forms.
        #[arg(long)]
        compatibility: Option<String>,
    },
    /// A subject's latest version (or --version N) with its definition.
    Show {
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Every version of a subject, oldest first, with who decided it and why.
    Versions { id: String },
    /// Approve a Draft version (Admins).
    Approve {
        id: String,
        version: u32,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a Draft version (Admins).
    Reject {
        id: String,
        version: u32,
        #[arg(long)]
        reason: String,
    },
    /// Deprecate a subject: no new versions or topic bindings (Admins).
    Deprecate {
        id: String,
        /// Why; kept on the subject and in the audit entry.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Check the JSON payload in FILE against the subject's latest approved version (or
    /// --version N); exit code 1 when it does not match.
    Validate {
        id: String,
        file: String,
        #[arg(long)]
        version: Option<u32>,
    },
}
