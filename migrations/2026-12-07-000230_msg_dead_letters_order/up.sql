-- A topic's dead letters oldest first, a page at a time (GET /api/v1/topics/{name}/dlq?offset=&limit=),
-- read from the index instead of sorting every letter of the topic.
CREATE INDEX msg_dead_letters_order ON msg_dead_letters (tenant_id, topic_name, seq);
