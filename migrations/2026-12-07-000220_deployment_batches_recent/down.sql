DROP INDEX IF EXISTS deployment_batches_recent;
