-- Real hosts: enrolment tokens (only their SHA-256), the agents that
-- enrolled, and the desired state of each node's modules. The records are
-- kept whole as jsonb; the columns beside them are what is looked up.

CREATE TABLE enrolment_tokens (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    token_hash text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    record     jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE agents (
    tenant_id    uuid  NOT NULL,
    node_id      uuid  NOT NULL,
    hostname     text  NOT NULL,
    session_hash text  NOT NULL UNIQUE,
    record       jsonb NOT NULL,
    PRIMARY KEY (tenant_id, node_id)
);

CREATE TABLE desired_modules (
    tenant_id   uuid  NOT NULL,
    node_id     uuid  NOT NULL,
    module_name text  NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, node_id, module_name)
);
