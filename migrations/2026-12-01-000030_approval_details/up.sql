-- What a pending approval is about, kept with it so that the pending list
-- needs no join with runs, and who asked, for the self-approval rule.
ALTER TABLE approvals
    ADD COLUMN module_name        text NOT NULL DEFAULT '',
    ADD COLUMN version            text NOT NULL DEFAULT '',
    ADD COLUMN target_environment text NOT NULL DEFAULT '',
    ADD COLUMN requester_id       uuid,
    ADD COLUMN requester_email    text NOT NULL DEFAULT '';
