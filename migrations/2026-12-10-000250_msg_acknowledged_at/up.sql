-- When a message became Acknowledged (by the original API's acknowledge, or
-- by the last of its subscriptions acking it); the original API answers it as
-- acknowledgedAt. Messages acknowledged before this column existed keep NULL.
ALTER TABLE msg_messages ADD COLUMN acknowledged_at timestamptz;
