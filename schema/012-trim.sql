-- 012-trim.sql: whether the move was asked to trim the guest's file systems
-- once it is done (--trim, through the guest agent), so that a resume that
-- finishes it trims too.  0 for a job journaled before 012.

ALTER TABLE job ADD COLUMN trim INTEGER NOT NULL DEFAULT 0;
