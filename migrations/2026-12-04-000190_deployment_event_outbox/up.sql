-- The outbox of the system topic `hotswap.deployments`: the run events the
-- bus has still to carry. A trigger adds a row in the very transaction that
-- stores the event, so an event is in the outbox exactly when it is stored;
-- the publisher deletes the rows once the bus has taken their messages. A
-- process that dies in between leaves the rows behind, and the next one
-- publishes them (the messages' stable ids make a repeat harmless).
--
-- A table of pending rows rather than a high-water mark: event ids come from
-- a sequence, and a transaction holding a lower id may commit after one
-- holding a higher id, so a mark could pass over an event not yet visible.
CREATE TABLE deployment_event_outbox (
    event_id  bigint PRIMARY KEY REFERENCES run_events (id) ON DELETE CASCADE,
    tenant_id uuid   NOT NULL
);

CREATE FUNCTION deployment_event_outbox_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deployment_event_outbox (event_id, tenant_id) VALUES (NEW.id, NEW.tenant_id);
    RETURN NULL;
END
$$;

-- Only the kinds the system topic carries (`kind_of` in
-- src/messaging/deployment_events.rs; the two lists must agree).
CREATE TRIGGER run_events_into_deployment_outbox
AFTER INSERT ON run_events
FOR EACH ROW
WHEN (NEW.kind IN ('DeploymentCreated', 'StageStarted', 'StageCompleted', 'DeploymentCompleted',
                   'DeploymentFailed', 'DeploymentCancelled', 'DeploymentRolledBack'))
EXECUTE FUNCTION deployment_event_outbox_add();
