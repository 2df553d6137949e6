DROP TABLE artifact_blobs;
ALTER TABLE module_artifacts DROP CONSTRAINT module_artifacts_key_needs_signature;
ALTER TABLE module_artifacts ADD CONSTRAINT module_artifacts_signed_with_key
    CHECK ((signature IS NULL) = (signing_key_id IS NULL));
ALTER TABLE signing_keys DROP COLUMN bits;
ALTER TABLE signing_keys DROP COLUMN name;
