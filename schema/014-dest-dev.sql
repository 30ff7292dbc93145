-- 014-dest-dev.sql: a copy that goes onto a block device (move --dest-dev):
-- the device number (st_rdev) of the device checked at plan time, rechecked
-- before every write to it; 0 for a copy into a file (every job before 015).
-- A device is never a file of the job: never created, deleted or truncated.

ALTER TABLE image ADD COLUMN dst_rdev INTEGER NOT NULL DEFAULT 0;
