-- Several instances on one database.
--
-- Run leases: the instance that drives each active run (the record's
-- `owner.instance`), the epoch of its lease (raised by one at every
-- takeover) and when the lease expires unless renewed. They live on the
-- run's row so that the fence on a save is one condition of the same UPDATE
-- (`owner_epoch = $epoch`), serialised with a takeover by the row lock. No
-- owner: no instance has claimed the run yet (runs stored before this
-- migration).
ALTER TABLE runs
    ADD COLUMN owner_epoch      bigint NOT NULL DEFAULT 0,
    ADD COLUMN lease_expires_at timestamptz;

-- Renewal looks only at an instance's active runs.
CREATE INDEX runs_active_by_owner ON runs ((record->'owner'->>'instance')) WHERE holds_module;

-- Cluster-wide periodic tasks (sweeps, retention): one instance at a time.
CREATE TABLE task_leases (
    task       text        PRIMARY KEY,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Admission reads counters kept in the transaction that inserts a run,
-- instead of counting the tenant's whole history.
CREATE TABLE tenant_modules (
    tenant_id   uuid NOT NULL,
    module_name text NOT NULL,
    PRIMARY KEY (tenant_id, module_name)
);
INSERT INTO tenant_modules (tenant_id, module_name)
    SELECT DISTINCT tenant_id, module_name FROM runs;

CREATE TABLE tenant_runs_per_day (
    tenant_id uuid   NOT NULL,
    day       date   NOT NULL,
    runs      bigint NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
INSERT INTO tenant_runs_per_day (tenant_id, day, runs)
    SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, count(*) FROM runs GROUP BY 1, 2;
