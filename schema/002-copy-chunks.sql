-- 002-copy-chunks.sql: the copier's chunk journal and the copy options.
--
-- A chunk row is written only after the chunk is durable at the destination
-- (fdatasync) and, with verify on, read back and compared; so the rows of an
-- image form the prefix of chunks a resumed copy can skip.

CREATE TABLE chunk (
	job_id      INTEGER NOT NULL,
	target      TEXT NOT NULL,
	depth       INTEGER NOT NULL,
	idx         INTEGER NOT NULL,
	offset      INTEGER NOT NULL,
	length      INTEGER NOT NULL,
	data_bytes  INTEGER NOT NULL,
	checksum    TEXT NOT NULL,            -- XXH3-64 of the chunk, see copy/checksum.h
	PRIMARY KEY (job_id, target, depth, idx),
	FOREIGN KEY (job_id, target, depth) REFERENCES image(job_id, target, depth)
		ON DELETE CASCADE
);

ALTER TABLE image ADD COLUMN dst_format TEXT;       -- NULL: same as format
ALTER TABLE image ADD COLUMN copy_method TEXT;      -- reflink, copy_file_range, readwrite, convert
ALTER TABLE image ADD COLUMN chunk_size INTEGER;
ALTER TABLE job ADD COLUMN verify INTEGER NOT NULL DEFAULT 1;
ALTER TABLE job ADD COLUMN dest_format TEXT;
