DROP INDEX IF EXISTS msg_dead_letters_order;
