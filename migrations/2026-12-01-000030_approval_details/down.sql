ALTER TABLE approvals
    DROP COLUMN module_name,
    DROP COLUMN version,
    DROP COLUMN target_environment,
    DROP COLUMN requester_id,
    DROP COLUMN requester_email;
