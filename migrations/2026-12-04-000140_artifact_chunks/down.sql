ALTER TABLE artifact_blobs ADD COLUMN bytes bytea;
UPDATE artifact_blobs b
SET bytes = coalesce((SELECT string_agg(c.bytes, ''::bytea ORDER BY c.seq) FROM artifact_chunks c WHERE c.sha256 = b.sha256), ''::bytea);
ALTER TABLE artifact_blobs ALTER COLUMN bytes SET NOT NULL;
DROP TABLE artifact_chunks;
