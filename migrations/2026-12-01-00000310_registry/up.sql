-- The module registry as the API uses it: named signing keys with their
-- size, signatures kept even when no trusted key verified them at upload
-- (strict mode off; the Security Scan checks again), and artifact bytes for
-- deployments that keep them in the database.

ALTER TABLE signing_keys ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE signing_keys ADD COLUMN bits integer NOT NULL DEFAULT 0;

ALTER TABLE module_artifacts DROP CONSTRAINT module_artifacts_signed_with_key;
-- A key is named only together with a signature.
ALTER TABLE module_artifacts ADD CONSTRAINT module_artifacts_key_needs_signature
    CHECK (signing_key_id IS NULL OR signature IS NOT NULL);

-- Content-addressed: one row per distinct artifact, whichever tenants and
-- versions name it. Reads check the digest again.
CREATE TABLE artifact_blobs (
    sha256     text        PRIMARY KEY,
    bytes      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT artifact_blobs_sha256_shape CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
