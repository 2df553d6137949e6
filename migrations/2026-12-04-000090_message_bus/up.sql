-- The message bus on PostgreSQL (issue 17). Records are the core's types as
-- jsonb, with the columns that queries filter, order or lock on beside them.
-- Every table carries the tenant; every key starts with it.

-- Topics: their spec, the load-balancing rotation position and the topic's
-- own counters (per-subscription counters live on the subscriptions, so that
-- consumers do not queue on the topic row; they are folded in on delete).
CREATE TABLE msg_topics (
    tenant_id     uuid        NOT NULL,
    name          text        NOT NULL,
    spec          jsonb       NOT NULL,
    retention_ms  bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    rr_counter    bigint      NOT NULL DEFAULT 0,
    published     bigint      NOT NULL DEFAULT 0,
    unrouted      bigint      NOT NULL DEFAULT 0,
    delivered     bigint      NOT NULL DEFAULT 0,
    acknowledged  bigint      NOT NULL DEFAULT 0,
    failed        bigint      NOT NULL DEFAULT 0,
    dead_lettered bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE msg_subscriptions (
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL,
    topic_name      text        NOT NULL,
    spec            jsonb       NOT NULL,
    paused          boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    -- Creation order: Direct routing and listings follow it.
    created_seq     bigserial   NOT NULL,
    -- The rotation position of its last load-balanced assignment.
    last_assigned   bigint      NOT NULL,
    delivered       bigint      NOT NULL DEFAULT 0,
    acknowledged    bigint      NOT NULL DEFAULT 0,
    failed          bigint      NOT NULL DEFAULT 0,
    dead_lettered   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, subscription_id),
    FOREIGN KEY (tenant_id, topic_name) REFERENCES msg_topics (tenant_id, name)
);
CREATE INDEX msg_subscriptions_by_topic ON msg_subscriptions (tenant_id, topic_name, created_seq);

CREATE TABLE msg_messages (
    tenant_id    uuid        NOT NULL,
    message_id   text        NOT NULL,
    topic_name   text        NOT NULL,
    -- Publish order, across the database.
    seq          bigserial   NOT NULL,
    message      jsonb       NOT NULL,
    status       text        NOT NULL,
    routed_to    uuid[]      NOT NULL,
    published_at timestamptz NOT NULL,
    expires_at   timestamptz,
    PRIMARY KEY (tenant_id, message_id),
    CONSTRAINT msg_messages_status CHECK (status IN ('Pending', 'Acknowledged', 'DeadLettered'))
);
CREATE INDEX msg_messages_by_topic ON msg_messages (tenant_id, topic_name, seq);
-- The retention sweep's candidates.
CREATE INDEX msg_messages_done ON msg_messages (published_at) WHERE status = 'Acknowledged' OR expires_at IS NOT NULL;

-- One row per message and subscription it was routed to. The priority,
-- partition key and expiry are copied from the message so that a lease is
-- one statement over this table.
CREATE TABLE msg_deliveries (
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL,
    message_id      text        NOT NULL,
    seq             bigint      NOT NULL,
    priority        smallint    NOT NULL,
    partition_key   text,
    expires_at      timestamptz,
    state           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    available_at    timestamptz NOT NULL,
    lease_deadline  timestamptz,
    PRIMARY KEY (tenant_id, subscription_id, message_id),
    FOREIGN KEY (tenant_id, subscription_id) REFERENCES msg_subscriptions (tenant_id, subscription_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, message_id) REFERENCES msg_messages (tenant_id, message_id) ON DELETE CASCADE,
    CONSTRAINT msg_deliveries_state CHECK (state IN ('queued', 'leased', 'acked', 'dead', 'dropped'))
);
-- What a lease scans: the live deliveries of one subscription in order.
CREATE INDEX msg_deliveries_live ON msg_deliveries (tenant_id, subscription_id, seq) WHERE state IN ('queued', 'leased');
-- Ordered topics: the earlier or in-flight deliveries of one key.
CREATE INDEX msg_deliveries_by_key ON msg_deliveries (tenant_id, subscription_id, partition_key, seq)
    WHERE partition_key IS NOT NULL AND state IN ('queued', 'leased');
CREATE INDEX msg_deliveries_by_message ON msg_deliveries (tenant_id, message_id);

-- A topic's dead-letter queue: the message with the X-DLQ headers added.
CREATE TABLE msg_dead_letters (
    tenant_id        uuid        NOT NULL,
    topic_name       text        NOT NULL,
    message_id       text        NOT NULL,
    subscription_id  uuid        NOT NULL,
    seq              bigserial   NOT NULL,
    message          jsonb       NOT NULL,
    reason           text        NOT NULL,
    attempts         integer     NOT NULL,
    dead_lettered_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, topic_name, message_id, subscription_id)
);

-- ExactlyOnce de-duplication: the first message of each key in the window.
CREATE TABLE msg_idempotency (
    tenant_id  uuid        NOT NULL,
    topic_name text        NOT NULL,
    key        text        NOT NULL,
    message_id text        NOT NULL,
    seen_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, topic_name, key)
);
CREATE INDEX msg_idempotency_seen ON msg_idempotency (seen_at);
