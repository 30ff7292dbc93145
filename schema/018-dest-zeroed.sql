-- 018-dest-zeroed.sql: whether the move was told that its destination
-- devices read as zeros already (--dest-zeroed), so that a resumed copy onto
-- a device does not write the source's holes as zeros either.  0 for a job
-- journaled before 018 (its resumed copies write the zeros: the safe side).

ALTER TABLE job ADD COLUMN dest_zeroed INTEGER NOT NULL DEFAULT 0;
