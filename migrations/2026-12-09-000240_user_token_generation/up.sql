-- Raised each time a user is disabled; a token is bound to the generation it
-- was issued in, so enabling the user again does not revive its old tokens.
ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
