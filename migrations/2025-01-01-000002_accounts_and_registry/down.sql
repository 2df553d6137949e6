DROP TABLE module_artifacts;
DROP TABLE signing_keys;
DROP TABLE modules;
DROP TABLE audit_log;
DROP TABLE approvals;
DROP TABLE revoked_tokens;
DROP TABLE users;
DROP TABLE tenants;
