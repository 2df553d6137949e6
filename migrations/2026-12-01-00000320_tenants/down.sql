DROP INDEX runs_by_tenant_created;

ALTER TABLE tenants
    DROP CONSTRAINT tenants_revision_positive,
    DROP COLUMN revision,
    DROP COLUMN paused_runs,
    DROP COLUMN updated_at,
    DROP COLUMN quota,
    DROP COLUMN contact_email,
    DROP COLUMN custom_domain;

ALTER TABLE tenants DROP CONSTRAINT tenants_tier_known;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_known;
-- The older vocabulary has no in-between states.
UPDATE tenants SET status = 'Deleted', deleted_at = coalesce(deleted_at, now())
    WHERE status IN ('Provisioning', 'Deprovisioning');
ALTER TABLE tenants ADD CONSTRAINT tenants_status_known CHECK (status IN ('Active', 'Suspended', 'Deleted'));
