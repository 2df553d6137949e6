-- Deployment batches: the whole record as jsonb (steps, their runs, the
-- status), with the columns the runner and readers filter on beside it.
CREATE TABLE deployment_batches (
    tenant_id  uuid        NOT NULL,
    batch_id   uuid        NOT NULL,
    status     text        NOT NULL,
    record     jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, batch_id),
    CONSTRAINT deployment_batches_status CHECK (status IN ('Running', 'Succeeded', 'Failed'))
);
-- The runner's work list: running batches, oldest first.
CREATE INDEX deployment_batches_running ON deployment_batches (created_at, batch_id) WHERE status = 'Running';
