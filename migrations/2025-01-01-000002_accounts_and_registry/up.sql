-- Tables for the features that come after the core store: tenants, users and
-- tokens, approvals, the audit log, and the module registry. Nothing reads
-- them yet; they are shaped for the queries those features will make.

CREATE TABLE tenants (
    tenant_id    uuid        PRIMARY KEY,
    name         text        NOT NULL,
    subdomain    text        NOT NULL,
    status       text        NOT NULL DEFAULT 'Active',
    tier         text        NOT NULL DEFAULT 'Free',
    created_at   timestamptz NOT NULL DEFAULT now(),
    suspended_at timestamptz,
    deleted_at   timestamptz,
    metadata     jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT tenants_status_known CHECK (status IN ('Active', 'Suspended', 'Deleted'))
);

-- Requests are routed to a tenant by subdomain, whatever its case.
CREATE UNIQUE INDEX tenants_subdomain_unique ON tenants (lower(subdomain));
CREATE INDEX tenants_by_status ON tenants (status, created_at);

CREATE TABLE users (
    id                    uuid        PRIMARY KEY,
    tenant_id             uuid        NOT NULL,
    username              text        NOT NULL,
    email                 text        NOT NULL,
    full_name             text        NOT NULL DEFAULT '',
    password_hash         text        NOT NULL,
    roles                 text[]      NOT NULL DEFAULT '{}',
    is_active             boolean     NOT NULL DEFAULT true,
    failed_login_attempts integer     NOT NULL DEFAULT 0,
    lockout_end           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    last_login_at         timestamptz,
    CONSTRAINT users_failed_login_attempts_positive CHECK (failed_login_attempts >= 0)
);

-- Login finds a user by name before any tenant is known, so a name is unique
-- across tenants (ignoring case).
CREATE UNIQUE INDEX users_username_unique ON users (lower(username));
CREATE UNIQUE INDEX users_email_per_tenant ON users (tenant_id, lower(email));
CREATE INDEX users_by_tenant ON users (tenant_id, username);

-- Logged-out tokens until they would have expired anyway.
CREATE TABLE revoked_tokens (
    tenant_id  uuid        NOT NULL,
    jti        text        NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, jti)
);

-- The purge of expired entries runs across tenants.
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

CREATE TABLE approvals (
    tenant_id        uuid        NOT NULL,
    approval_id      uuid        NOT NULL,
    execution_id     uuid        NOT NULL,
    status           text        NOT NULL DEFAULT 'Pending',
    requested_at     timestamptz NOT NULL DEFAULT now(),
    timeout_at       timestamptz NOT NULL,
    decided_at       timestamptz,
    -- Kept as given rather than as a foreign key: a decision outlives its user.
    decided_by_id    uuid,
    decided_by_email text,
    reason           text,
    PRIMARY KEY (tenant_id, approval_id),
    CONSTRAINT approvals_run_fkey FOREIGN KEY (tenant_id, execution_id)
        REFERENCES runs (tenant_id, execution_id) ON DELETE CASCADE,
    CONSTRAINT approvals_status_known CHECK (status IN ('Pending', 'Approved', 'Rejected', 'Expired')),
    CONSTRAINT approvals_decided_when_not_pending CHECK ((status = 'Pending') = (decided_at IS NULL))
);

CREATE INDEX approvals_by_run ON approvals (tenant_id, execution_id, requested_at);
CREATE INDEX approvals_pending_by_tenant ON approvals (tenant_id, requested_at) WHERE status = 'Pending';
-- The expiry sweep runs across tenants.
CREATE INDEX approvals_pending_by_timeout ON approvals (timeout_at) WHERE status = 'Pending';
-- A run waits on at most one approval at a time.
CREATE UNIQUE INDEX approvals_one_pending_per_run ON approvals (tenant_id, execution_id) WHERE status = 'Pending';

CREATE TABLE audit_log (
    id             bigserial   PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    -- Text rather than uuid: actors include services and API keys, not only users.
    actor_id       text,
    actor_name     text,
    category       text        NOT NULL,
    event_type     text        NOT NULL,
    resource_type  text,
    resource_id    text,
    result         text        NOT NULL,
    message        text        NOT NULL DEFAULT '',
    details        jsonb       NOT NULL DEFAULT '{}',
    trace_id       text,
    source_address text,
    user_agent     text
);

CREATE INDEX audit_log_by_time ON audit_log (tenant_id, at DESC, id DESC);
CREATE INDEX audit_log_by_category ON audit_log (tenant_id, category, event_type, at DESC);
CREATE INDEX audit_log_by_actor ON audit_log (tenant_id, actor_id, at DESC);
CREATE INDEX audit_log_by_resource ON audit_log (tenant_id, resource_type, resource_id, at DESC);
CREATE INDEX audit_log_by_trace ON audit_log (tenant_id, trace_id) WHERE trace_id IS NOT NULL;
-- Retention deletes old entries across tenants.
CREATE INDEX audit_log_by_age ON audit_log (at);

CREATE TABLE modules (
    tenant_id   uuid        NOT NULL,
    module_name text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    owner_email text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    metadata    jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, module_name)
);

-- Public keys that module signatures are checked against.
CREATE TABLE signing_keys (
    tenant_id   uuid        NOT NULL,
    -- The key's fingerprint.
    key_id      text        NOT NULL,
    algorithm   text        NOT NULL,
    public_key  text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, key_id)
);

CREATE TABLE module_artifacts (
    tenant_id      uuid        NOT NULL,
    module_name    text        NOT NULL,
    version        text        NOT NULL,
    sha256         text        NOT NULL,
    size_bytes     bigint      NOT NULL,
    storage_uri    text        NOT NULL,
    signature      text,
    signing_key_id text,
    uploaded_by    text,
    uploaded_at    timestamptz NOT NULL DEFAULT now(),
    metadata       jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, module_name, version),
    CONSTRAINT module_artifacts_module_fkey FOREIGN KEY (tenant_id, module_name)
        REFERENCES modules (tenant_id, module_name) ON DELETE CASCADE,
    -- Unchecked while signing_key_id is null (MATCH SIMPLE).
    CONSTRAINT module_artifacts_signing_key_fkey FOREIGN KEY (tenant_id, signing_key_id)
        REFERENCES signing_keys (tenant_id, key_id),
    CONSTRAINT module_artifacts_size_positive CHECK (size_bytes >= 0),
    CONSTRAINT module_artifacts_signed_with_key CHECK ((signature IS NULL) = (signing_key_id IS NULL))
);

CREATE INDEX module_artifacts_by_digest ON module_artifacts (tenant_id, sha256);
CREATE INDEX module_artifacts_by_upload ON module_artifacts (tenant_id, module_name, uploaded_at DESC);
-- A key cannot be deleted while artifacts name it; this finds them quickly.
CREATE INDEX module_artifacts_by_signing_key ON module_artifacts (tenant_id, signing_key_id)
    WHERE signing_key_id IS NOT NULL;
