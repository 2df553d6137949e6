-- The schema registry (issue 17): a subject per tenant and schemaId, its
-- versions kept whole as jsonb beside the columns they are found by.
CREATE TABLE schema_subjects (
    tenant_id uuid NOT NULL,
    schema_id text NOT NULL,
    created_at timestamptz NOT NULL,
    deprecated jsonb,
    PRIMARY KEY (tenant_id, schema_id)
);

CREATE TABLE schema_versions (
    tenant_id uuid NOT NULL,
    schema_id text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (tenant_id, schema_id, version),
    FOREIGN KEY (tenant_id, schema_id) REFERENCES schema_subjects (tenant_id, schema_id) ON DELETE CASCADE
);
