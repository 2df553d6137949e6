-- The store behind the orchestration core: runs and their events, nodes and
-- their module slots, cluster metric samples.
--
-- Every table carries tenant_id, and every query filters on it.
--
-- timestamptz keeps microseconds while the core's timestamps carry
-- nanoseconds. Each timestamp that is read back or ordered on therefore has a
-- *_nanos companion with the nanoseconds below the microsecond (0..999), so
-- that the store hands back exactly what it was given.

CREATE TABLE runs (
    tenant_id          uuid        NOT NULL,
    execution_id       uuid        NOT NULL,
    module_name        text        NOT NULL,
    version            text        NOT NULL,
    target_environment text        NOT NULL,
    status             text        NOT NULL,
    created_at         timestamptz NOT NULL,
    created_at_nanos   smallint    NOT NULL,
    finished_at        timestamptz,
    finished_at_nanos  smallint,
    revision           bigint      NOT NULL,
    -- Mirrors RunRecord::holds_module(): the run, or a manual rollback of it,
    -- may still change nodes.
    holds_module       boolean     NOT NULL,
    -- The whole RunRecord; the columns above are copies for querying.
    record             jsonb       NOT NULL,
    saved_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, execution_id),
    CONSTRAINT runs_created_at_nanos_range CHECK (created_at_nanos BETWEEN 0 AND 999),
    CONSTRAINT runs_finished_at_nanos_range CHECK (
        (finished_at IS NULL) = (finished_at_nanos IS NULL) AND finished_at_nanos BETWEEN 0 AND 999
    ),
    CONSTRAINT runs_revision_positive CHECK (revision >= 0),
    CONSTRAINT runs_target_environment_known CHECK (
        target_environment IN ('Development', 'QA', 'Staging', 'Production')
    ),
    CONSTRAINT runs_status_known CHECK (
        status IN ('Running', 'PendingApproval', 'Paused', 'Succeeded', 'Failed', 'RolledBack', 'Cancelled')
    )
);

-- At most one run per tenant holds a module. The store maps a violation of
-- this index to "module busy"; it also serves the start-up recovery scan.
CREATE UNIQUE INDEX runs_one_holder_per_module ON runs (tenant_id, module_name) WHERE holds_module;

-- list_runs: newest first, optionally narrowed by status, module or environment.
CREATE INDEX runs_newest_first ON runs
    (tenant_id, created_at DESC, created_at_nanos DESC, execution_id DESC);
CREATE INDEX runs_by_status ON runs
    (tenant_id, status, created_at DESC, created_at_nanos DESC, execution_id DESC);
CREATE INDEX runs_by_module ON runs
    (tenant_id, module_name, created_at DESC, created_at_nanos DESC, execution_id DESC);
CREATE INDEX runs_by_environment ON runs
    (tenant_id, target_environment, created_at DESC, created_at_nanos DESC, execution_id DESC);

CREATE TABLE run_events (
    -- Insertion order is event order.
    id           bigserial   PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    execution_id uuid        NOT NULL,
    at           timestamptz NOT NULL,
    at_nanos     smallint    NOT NULL,
    kind         text        NOT NULL,
    message      text        NOT NULL,
    data         jsonb       NOT NULL,
    CONSTRAINT run_events_at_nanos_range CHECK (at_nanos BETWEEN 0 AND 999),
    CONSTRAINT run_events_run_fkey FOREIGN KEY (tenant_id, execution_id)
        REFERENCES runs (tenant_id, execution_id) ON DELETE CASCADE
);

CREATE INDEX run_events_by_run ON run_events (tenant_id, execution_id, id);

CREATE TABLE nodes (
    tenant_id        uuid        NOT NULL,
    node_id          uuid        NOT NULL,
    -- Byte order, the order Rust sorts strings in: nodes_in lists by hostname.
    hostname         text        COLLATE "C" NOT NULL,
    environment      text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    updated_at_nanos smallint    NOT NULL,
    registered_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, node_id),
    CONSTRAINT nodes_updated_at_nanos_range CHECK (updated_at_nanos BETWEEN 0 AND 999),
    CONSTRAINT nodes_environment_known CHECK (
        environment IN ('Development', 'QA', 'Staging', 'Production')
    )
);

CREATE INDEX nodes_by_environment ON nodes (tenant_id, environment, hostname, node_id);

-- One row per node and module: a rollout wave rewrites a module's slots on
-- many nodes, each a single-row upsert, and never rewrites a node's other modules.
CREATE TABLE node_modules (
    tenant_id   uuid  NOT NULL,
    node_id     uuid  NOT NULL,
    module_name text  NOT NULL,
    -- ModuleSlots as JSON.
    slots       jsonb NOT NULL,
    PRIMARY KEY (tenant_id, node_id, module_name),
    CONSTRAINT node_modules_node_fkey FOREIGN KEY (tenant_id, node_id)
        REFERENCES nodes (tenant_id, node_id) ON DELETE CASCADE
);

-- module_slots: one module on thousands of nodes, `node_id = ANY($ids)`.
CREATE INDEX node_modules_by_module ON node_modules (tenant_id, module_name, node_id);

CREATE TABLE cluster_samples (
    -- Insertion order: retention keeps the newest rows by id.
    id            bigserial   PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    environment   text        NOT NULL,
    at            timestamptz NOT NULL,
    at_nanos      smallint    NOT NULL,
    -- NodeMetrics as JSON.
    metrics       jsonb       NOT NULL,
    -- bigint: the core counts nodes in u32.
    healthy_nodes bigint      NOT NULL,
    total_nodes   bigint      NOT NULL,
    CONSTRAINT cluster_samples_at_nanos_range CHECK (at_nanos BETWEEN 0 AND 999),
    CONSTRAINT cluster_samples_counts_range CHECK (
        healthy_nodes BETWEEN 0 AND 4294967295 AND total_nodes BETWEEN 0 AND 4294967295
    ),
    CONSTRAINT cluster_samples_environment_known CHECK (
        environment IN ('Development', 'QA', 'Staging', 'Production')
    )
);

CREATE INDEX cluster_samples_series ON cluster_samples (tenant_id, environment, id);
CREATE INDEX cluster_samples_by_time ON cluster_samples (tenant_id, environment, at, at_nanos);
