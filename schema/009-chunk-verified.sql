-- 009-chunk-verified.sql: the direct copy path checks chunk N while it copies
-- chunk N+1, so a chunk is journaled twice: when it is durable (verified = 0,
-- its source checksum recorded) and when its re-read matched (verified = 1).
-- A resume re-reads the durable, unverified chunks instead of copying them
-- again.  Rows from before (and of copies without verify) are final: 1.

ALTER TABLE chunk ADD COLUMN verified INTEGER NOT NULL DEFAULT 1;
