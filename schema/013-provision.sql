-- 013-provision.sql: block devices made by provisioners (docs/provisioners.md),
-- and every run of a provisioner, for audit.
--
-- A device row is written before the provisioner is asked to create it
-- (creating) and after (created, with the path it printed and the device
-- number snapmove found there; or failed).  'remove' is asked only of a
-- created row whose path still names that device number (removing, then
-- removed).  job_id is the move that owns the device, NULL for one made by
-- 'snapmove provision create'; a job forgotten leaves its devices' rows, so a
-- device that still exists is never lost from the record.

CREATE TABLE provisioned_device (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id      INTEGER REFERENCES job(id) ON DELETE SET NULL,
	provisioner TEXT NOT NULL,          -- absolute path of the program
	settings    TEXT NOT NULL,          -- SNAPMOVE_NAME=VALUE lines it gets
	name        TEXT NOT NULL,          -- create NAME
	path        TEXT,                   -- what create printed
	rdev        INTEGER,                -- st_rdev of the block device there
	bytes       INTEGER NOT NULL,       -- asked for (create, then extend)
	size        INTEGER,                -- BLKGETSIZE64 when last checked
	state       TEXT NOT NULL,          -- creating, created, removing, removed, failed
	error       TEXT,
	created_at  REAL NOT NULL,
	updated_at  REAL NOT NULL
);

CREATE TABLE provision_run (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id   INTEGER NOT NULL REFERENCES provisioned_device(id) ON DELETE CASCADE,
	op          TEXT NOT NULL,          -- create, extend, remove
	provisioner TEXT NOT NULL,
	argument    TEXT NOT NULL,          -- NAME (create) or PATH (extend, remove)
	bytes       INTEGER,                -- create, extend
	exit_status INTEGER NOT NULL,       -- 128 + signal when killed
	timed_out   INTEGER NOT NULL,
	started_at  REAL NOT NULL,
	seconds     REAL NOT NULL,
	stdout      TEXT,                   -- the start of each
	stderr      TEXT
);

CREATE INDEX provisioned_device_by_name ON provisioned_device (provisioner, name);
