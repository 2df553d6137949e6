-- Operator verbs sent to an instance that does not drive the run: the
-- receiving instance stores the verb here and waits for the answer; the
-- run's owner finds it (woken over Redis, or by polling), carries it out and
-- stores the answer. The receiver deletes the row when it reads the answer,
-- or withdraws it (deletes it unanswered) when it gives up waiting.
CREATE TABLE relayed_verbs (
    request_id   uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    execution_id uuid        NOT NULL,
    request      jsonb       NOT NULL,
    answer       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Owners look only at the verbs still waiting for their runs.
CREATE INDEX relayed_verbs_waiting ON relayed_verbs (execution_id) WHERE answer IS NULL;
