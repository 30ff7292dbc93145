-- 005-hooks.sql: every hook run, for audit: which program ran at which
-- point of which job, how it ended, and the start of what it said on stderr.

CREATE TABLE hook_run (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id      INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
	point       TEXT NOT NULL,          -- before_move, after_snapshot, ...
	hook        TEXT NOT NULL,          -- path of the program
	exit_status INTEGER NOT NULL,       -- 128 + signal when killed
	timed_out   INTEGER NOT NULL,
	started_at  REAL NOT NULL,
	seconds     REAL NOT NULL,
	stderr      TEXT
);
