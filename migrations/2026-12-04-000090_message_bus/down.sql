DROP TABLE msg_idempotency;
DROP TABLE msg_dead_letters;
DROP TABLE msg_deliveries;
DROP TABLE msg_messages;
DROP TABLE msg_subscriptions;
DROP TABLE msg_topics;
