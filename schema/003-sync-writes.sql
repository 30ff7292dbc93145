-- 003-sync-writes.sql: mirrors that switch to write-blocking mode.
--
-- job.sync_writes is the --sync-writes choice (auto, on, off) and
-- job.converge_timeout its patience in seconds; disk.sync_writes says that
-- disk's mirror runs (or ran) with VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES.

ALTER TABLE job ADD COLUMN sync_writes TEXT NOT NULL DEFAULT 'auto';
ALTER TABLE job ADD COLUMN converge_timeout REAL NOT NULL DEFAULT 30;
ALTER TABLE disk ADD COLUMN sync_writes INTEGER NOT NULL DEFAULT 0;
