-- 011-copy-options.sql: the copy options a move was started with, so that a
-- resume copies the way the move was asked to (before 011 a resume fell back
-- to 'auto' and the destination's device count).
--
-- asked_copy_method: auto, reflink, copy_file_range, readwrite, direct
--              (--copy-method; image.copy_method says which ran)
-- parallel:    how many disks copy at once (--parallel); 0 for a job
--              journaled before 011: chosen from the destination again.

ALTER TABLE job ADD COLUMN asked_copy_method TEXT NOT NULL DEFAULT 'auto';
ALTER TABLE job ADD COLUMN parallel INTEGER NOT NULL DEFAULT 0;
