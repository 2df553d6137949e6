-- The knowledge graph: entities and relationships per tenant with jsonb
-- properties, and each tenant's schema. Traversals run on an in-memory index
-- loaded from these tables; the indexes below serve loading, lookups by type,
-- by end, and property filters (GIN).

CREATE TABLE graph_entities (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    entity_type text        NOT NULL,
    properties  jsonb       NOT NULL DEFAULT '{}',
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT graph_entities_type_name CHECK (entity_type ~ '^[A-Za-z0-9_]{1,100}$'),
    CONSTRAINT graph_entities_properties_object CHECK (jsonb_typeof(properties) = 'object'),
    CONSTRAINT graph_entities_version_positive CHECK (version > 0)
);
CREATE INDEX graph_entities_by_type ON graph_entities (tenant_id, entity_type);
CREATE INDEX graph_entities_properties ON graph_entities USING gin (properties);

CREATE TABLE graph_relationships (
    tenant_id         uuid             NOT NULL,
    id                uuid             NOT NULL,
    relationship_type text             NOT NULL,
    source_id         uuid             NOT NULL,
    target_id         uuid             NOT NULL,
    properties        jsonb            NOT NULL DEFAULT '{}',
    weight            double precision NOT NULL DEFAULT 1,
    directed          boolean          NOT NULL DEFAULT true,
    created_at        timestamptz      NOT NULL,
    created_by        text             NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- Both ends in the same tenant; deleting an entity deletes its relationships.
    CONSTRAINT graph_relationships_source FOREIGN KEY (tenant_id, source_id)
        REFERENCES graph_entities (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT graph_relationships_target FOREIGN KEY (tenant_id, target_id)
        REFERENCES graph_entities (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT graph_relationships_type_name CHECK (relationship_type ~ '^[A-Za-z0-9_]{1,100}$'),
    CONSTRAINT graph_relationships_properties_object CHECK (jsonb_typeof(properties) = 'object'),
    CONSTRAINT graph_relationships_weight CHECK (weight >= 0 AND weight < 'Infinity'::double precision)
);
CREATE INDEX graph_relationships_by_type ON graph_relationships (tenant_id, relationship_type);
CREATE INDEX graph_relationships_by_source ON graph_relationships (tenant_id, source_id);
CREATE INDEX graph_relationships_by_target ON graph_relationships (tenant_id, target_id);
CREATE INDEX graph_relationships_properties ON graph_relationships USING gin (properties);

CREATE TABLE graph_schemas (
    tenant_id  uuid        PRIMARY KEY,
    version    text        NOT NULL,
    definition jsonb       NOT NULL,
    updated_at timestamptz NOT NULL
);
