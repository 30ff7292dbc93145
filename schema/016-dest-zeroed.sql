-- 016-dest-zeroed.sql: whether the move was told that its destination
-- devices read as zeros already (--dest-zeroed), so that a resumed copy onto
-- a device does not write the source's holes as zeros either.  0 for a job
-- journaled before 016 (its resumed copies write the zeros: the safe side).

ALTER TABLE job ADD COLUMN dest_zeroed INTEGER NOT NULL DEFAULT 0;

-- The disk sequence number (BLKGETDISKSEQ) of a destination device when the
-- copier first wrote it: a loop device detached and attached to another file
-- keeps its device number (dst_rdev) but gets a new sequence number, so a
-- resumed copy refuses it.  0: not known (a file, a kernel without diskseq,
-- a job journaled before 016), not checked.
ALTER TABLE image ADD COLUMN dst_diskseq INTEGER NOT NULL DEFAULT 0;
