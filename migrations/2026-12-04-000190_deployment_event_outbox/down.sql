DROP TRIGGER run_events_into_deployment_outbox ON run_events;
DROP FUNCTION deployment_event_outbox_add();
DROP TABLE deployment_event_outbox;
