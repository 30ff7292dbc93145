-- 008-delete-source.sql: a move asked to delete its source when done
-- (--delete-source), so a resumed move still does.

ALTER TABLE job ADD COLUMN delete_source INTEGER NOT NULL DEFAULT 0;
