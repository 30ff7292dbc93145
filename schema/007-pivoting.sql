-- 007-pivoting.sql: a pivot under way.
--
-- disk.pivoting is set just before snapmove asks libvirt to pivot a disk and
-- cleared once the pivot is journaled: if snapmove dies in between and the
-- domain is gone, the destination overlay may hold the newest writes.

ALTER TABLE disk ADD COLUMN pivoting INTEGER NOT NULL DEFAULT 0;
