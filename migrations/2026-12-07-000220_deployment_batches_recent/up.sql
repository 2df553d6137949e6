-- A tenant's batches newest first (GET /api/v1/deployments/batch), read from
-- the index instead of sorting every batch the tenant ever made.
CREATE INDEX deployment_batches_recent ON deployment_batches (tenant_id, created_at DESC, batch_id DESC);
