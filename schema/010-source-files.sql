-- 010-source-files.sql: the source files a job may delete, and who they are.
--
-- At plan time a move journals every member of the chain it moves (as
-- libvirt reported it; the whole chain for --flatten) and, after the
-- snapshot, its own source overlay, each with its identity: the device and
-- inode of the file and of its folder, its size and modification time.
-- 'cleanup', '--delete-source' and finalize delete only these files, and only
-- when what is at real_path right then is still that file (a new file at the
-- old path is someone else's).  size and mtime are re-read once the snapshot
-- has made the chain read-only (an image the job moved is not written after).

CREATE TABLE source_file (
	job_id     INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
	path       TEXT NOT NULL,     -- as libvirt named it
	real_path  TEXT NOT NULL,     -- its folder resolved (no symlink, no '..') + its name
	target     TEXT NOT NULL,     -- the disk
	role       TEXT NOT NULL,     -- image (a member of the moved chain), src_overlay
	format     TEXT NOT NULL,
	dev        INTEGER NOT NULL,
	ino        INTEGER NOT NULL,
	size       INTEGER NOT NULL,
	mtime_sec  INTEGER NOT NULL,
	mtime_nsec INTEGER NOT NULL,
	dir_dev    INTEGER NOT NULL,
	dir_ino    INTEGER NOT NULL,
	PRIMARY KEY (job_id, path)
);
