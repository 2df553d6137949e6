DROP TABLE tenant_runs_per_day;
DROP TABLE tenant_modules;
DROP TABLE task_leases;
DROP INDEX runs_active_by_owner;
ALTER TABLE runs DROP COLUMN lease_expires_at, DROP COLUMN owner_epoch;
