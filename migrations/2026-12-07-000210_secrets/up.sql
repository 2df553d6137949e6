-- secrets.backend = "postgres": secrets every instance shares. The values
-- are sealed (AES-256-GCM) by the instances before they are written; the
-- database never holds one in clear.
CREATE TABLE secrets (
    id              text    PRIMARY KEY,
    -- A rotation moves it from the version it read to the next, or fails.
    current_version integer NOT NULL CHECK (current_version >= 1),
    -- SecretMetadata as JSON: policy, rotation times, the previous version's window.
    metadata        jsonb   NOT NULL
);

CREATE TABLE secret_versions (
    id         text        NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version    integer     NOT NULL CHECK (version >= 1),
    -- The nonce, then the ciphertext and its tag.
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);
