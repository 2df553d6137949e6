ALTER TABLE runs RESET (fillfactor);
DROP INDEX runs_active_by_owner;
ALTER TABLE runs DROP COLUMN owner_instance;
CREATE INDEX runs_active_by_owner ON runs ((record->'owner'->>'instance')) WHERE holds_module;
