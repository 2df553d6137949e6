-- Run saves rewrite a run's `record` at every step. The index of each
-- instance's active runs was on an expression of `record` (the owner's
-- instance), so PostgreSQL could never update a run's row in place (a
-- heap-only tuple, "HOT"): every save added an entry to all eight indexes of
-- `runs`, and every lookup of a busy run by its key walked the entries of its
-- dead versions until vacuum caught up. The owner's instance is now a column
-- of its own, computed from `record` by PostgreSQL, and the index is on that
-- column, whose value a save does not change.
ALTER TABLE runs
    ADD COLUMN owner_instance text GENERATED ALWAYS AS (record->'owner'->>'instance') STORED;
DROP INDEX runs_active_by_owner;
CREATE INDEX runs_active_by_owner ON runs (owner_instance) WHERE holds_module;

-- An update stays on its page only if the page has room for the new version:
-- leave a third of each page free for them.
ALTER TABLE runs SET (fillfactor = 70);
