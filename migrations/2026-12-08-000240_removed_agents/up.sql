-- Hosts an Admin removed, with the enrolment token each had joined with: that
-- token enrols the host (its node id) no more, though it is multi-use and still
-- valid; a new token does. Rows go with their token when the sweep forgets it.
CREATE TABLE removed_agents (
    tenant_id  uuid        NOT NULL,
    node_id    uuid        NOT NULL,
    token_id   uuid        NOT NULL,
    removed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_id, token_id)
);
