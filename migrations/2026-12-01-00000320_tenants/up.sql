-- Tenants as the product now runs them: the whole lifecycle, a tier with its
-- quotas, contact details, and a revision for compare-and-set saves.

ALTER TABLE tenants DROP CONSTRAINT tenants_status_known;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_known
    CHECK (status IN ('Provisioning', 'Active', 'Suspended', 'Deprovisioning', 'Deleted'));
ALTER TABLE tenants ADD CONSTRAINT tenants_tier_known
    CHECK (tier IN ('Free', 'Starter', 'Professional', 'Enterprise', 'Custom'));

ALTER TABLE tenants
    ADD COLUMN custom_domain text,
    ADD COLUMN contact_email text        NOT NULL DEFAULT '',
    -- The limits by name (camelCase, as the API shows them).
    ADD COLUMN quota         jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Runs that suspension paused, resumed on activation.
    ADD COLUMN paused_runs   uuid[]      NOT NULL DEFAULT '{}',
    ADD COLUMN revision      bigint      NOT NULL DEFAULT 1,
    ADD CONSTRAINT tenants_revision_positive CHECK (revision > 0);

-- Admission counts a tenant's runs created today on every new run.
CREATE INDEX runs_by_tenant_created ON runs (tenant_id, created_at);
