-- 001-initial.sql: the snapmove journal, version 1.
--
-- One row per move (job), per moved disk (disk), per image of a disk's chain
-- (image), per step that changes the world (step), and per file a job creates
-- (file), so that an interrupted move can be understood, resumed or undone.
-- States and phases are stored by name (see src/job.h); new names are only
-- ever appended.

CREATE TABLE job (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	domain_name   TEXT NOT NULL,
	domain_uuid   TEXT NOT NULL,
	persistent    INTEGER NOT NULL,
	dest_dir      TEXT NOT NULL,
	bandwidth_mib INTEGER NOT NULL DEFAULT 0,
	keep_overlay  INTEGER NOT NULL DEFAULT 0,
	quiesce       INTEGER NOT NULL DEFAULT 0,
	state         TEXT NOT NULL,          -- running, failed, done
	phase         TEXT NOT NULL,          -- see enum sm_phase
	error         TEXT,
	pid           INTEGER,
	created_at    REAL NOT NULL,
	updated_at    REAL NOT NULL,
	finished_at   REAL
);

CREATE TABLE disk (
	job_id        INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
	target        TEXT NOT NULL,
	state         TEXT NOT NULL,          -- see enum sm_disk_state
	src_overlay   TEXT NOT NULL,
	dst_overlay   TEXT NOT NULL,
	virtual_size  INTEGER NOT NULL,
	error         TEXT,
	PRIMARY KEY (job_id, target)
);

CREATE TABLE image (
	job_id             INTEGER NOT NULL,
	target             TEXT NOT NULL,
	depth              INTEGER NOT NULL,  -- 0 is the old active image
	src_path           TEXT NOT NULL,
	dst_path           TEXT NOT NULL,
	format             TEXT NOT NULL,
	src_backing        TEXT,
	dst_backing        TEXT,
	dst_backing_format TEXT,
	virtual_size       INTEGER NOT NULL,
	allocated          INTEGER NOT NULL,
	state              TEXT NOT NULL,     -- see enum sm_image_state
	bytes_copied       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job_id, target, depth),
	FOREIGN KEY (job_id, target) REFERENCES disk(job_id, target) ON DELETE CASCADE
);

CREATE TABLE step (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id      INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
	phase       TEXT NOT NULL,
	target      TEXT,                     -- NULL for a step of the whole job
	started_at  REAL NOT NULL,
	finished_at REAL,
	error       TEXT
);

CREATE TABLE file (
	job_id      INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
	path        TEXT NOT NULL,
	role        TEXT NOT NULL,            -- src_overlay, dst_overlay, dst_image
	state       TEXT NOT NULL,            -- planned, created, removed
	PRIMARY KEY (job_id, path)
);

CREATE INDEX disk_by_target ON disk (target);
CREATE INDEX job_by_uuid ON job (domain_uuid, state);
