-- A run's node changes get a table of their own: each checkpoint appends the
-- changes it adds instead of re-serialising every change of the run into
-- runs.record, so the bytes written per step no longer grow with the run.
CREATE TABLE run_node_changes (
    tenant_id    uuid    NOT NULL,
    execution_id uuid    NOT NULL,
    -- Position in the run's change list, from 0: the order rollbacks walk. A
    -- save appends the changes past the highest stored (found through the key).
    seq          integer NOT NULL,
    node_id      uuid    NOT NULL,
    hostname     text    NOT NULL,
    environment  text    NOT NULL,
    -- The node's module slots before the run changed them (ModuleSlots as JSON).
    before       jsonb   NOT NULL,
    PRIMARY KEY (tenant_id, execution_id, seq),
    CONSTRAINT run_node_changes_seq_positive CHECK (seq >= 0),
    CONSTRAINT run_node_changes_environment_known CHECK (
        environment IN ('Development', 'QA', 'Staging', 'Production')
    ),
    CONSTRAINT run_node_changes_run_fkey FOREIGN KEY (tenant_id, execution_id)
        REFERENCES runs (tenant_id, execution_id) ON DELETE CASCADE
);

-- Runs stored before: their changes move out of the record.
INSERT INTO run_node_changes (tenant_id, execution_id, seq, node_id, hostname, environment, before)
SELECT r.tenant_id, r.execution_id, (c.ord - 1)::integer, (c.value->>'nodeId')::uuid, c.value->>'hostname',
       c.value->>'environment', c.value->'before'
FROM runs r, jsonb_array_elements(r.record->'changes') WITH ORDINALITY AS c(value, ord)
WHERE jsonb_typeof(r.record->'changes') = 'array';

UPDATE runs SET record = record - 'changes' WHERE record ? 'changes';
