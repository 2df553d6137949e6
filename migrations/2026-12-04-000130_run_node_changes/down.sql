-- The changes go back into each run's record, in order.
UPDATE runs r
SET record = r.record || jsonb_build_object('changes', coalesce((
    SELECT jsonb_agg(jsonb_build_object('nodeId', c.node_id, 'hostname', c.hostname,
                                        'environment', c.environment, 'before', c.before) ORDER BY c.seq)
    FROM run_node_changes c
    WHERE c.tenant_id = r.tenant_id AND c.execution_id = r.execution_id), '[]'::jsonb));

DROP TABLE run_node_changes;
