ALTER TABLE msg_messages DROP COLUMN acknowledged_at;
