-- Artifacts kept in the database are read in chunks of 256 KiB, one row
-- each, so that a download holds one chunk at a time instead of the whole
-- bytea (issue 14, finding 7). artifact_blobs keeps one row per digest with
-- when it was last written (the sweep's grace period).
CREATE TABLE artifact_chunks (
    sha256 text    NOT NULL REFERENCES artifact_blobs (sha256) ON DELETE CASCADE,
    seq    integer NOT NULL,
    bytes  bytea   NOT NULL,
    PRIMARY KEY (sha256, seq),
    CONSTRAINT artifact_chunks_seq_not_negative CHECK (seq >= 0),
    CONSTRAINT artifact_chunks_at_most_256_kib CHECK (octet_length(bytes) <= 262144)
);

-- Stored artifacts move into chunks; an empty one keeps one empty chunk.
INSERT INTO artifact_chunks (sha256, seq, bytes)
SELECT b.sha256, g.seq, substring(b.bytes FROM g.seq * 262144 + 1 FOR 262144)
FROM artifact_blobs b
CROSS JOIN LATERAL generate_series(0, greatest((octet_length(b.bytes) - 1) / 262144, 0)) AS g(seq);

ALTER TABLE artifact_blobs DROP COLUMN bytes;
