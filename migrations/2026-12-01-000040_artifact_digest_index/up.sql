-- The artifact sweep asks whether any tenant's version still names a digest.
CREATE INDEX module_artifacts_by_digest_any_tenant ON module_artifacts (sha256);
