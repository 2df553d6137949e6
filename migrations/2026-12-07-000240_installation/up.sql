-- The identity of this installation: every instance on this database shares
-- it, and no other installation has it. Instances name their Redis keys and
-- channels with it, so that two installations sharing a Redis never hear
-- each other (runs, agents, sessions, limits).
CREATE TABLE installation (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One row only.
    singleton boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton)
);
INSERT INTO installation (id) VALUES (gen_random_uuid());
