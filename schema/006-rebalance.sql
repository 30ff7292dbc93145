-- 006-rebalance.sql: rebalances and the moves they plan.
--
-- A rebalance is a plan of ordinary move jobs; each rebalance_move row says
-- which disk goes where and, once started, which job carries it, so an
-- interrupted rebalance resumes by skipping the moves already done.

CREATE TABLE rebalance (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	goal        TEXT NOT NULL,           -- "drain STORAGE" or "target-free PCT"
	state       TEXT NOT NULL,           -- running, done, failed
	max_parallel INTEGER NOT NULL,
	bandwidth_mib INTEGER NOT NULL,
	stop_on_error INTEGER NOT NULL,
	job_floor   INTEGER NOT NULL,        -- the highest job id before it began
	created_at  REAL NOT NULL,
	finished_at REAL
);

CREATE TABLE rebalance_move (
	rebalance_id INTEGER NOT NULL REFERENCES rebalance(id) ON DELETE CASCADE,
	seq          INTEGER NOT NULL,
	domain       TEXT NOT NULL,
	disk         TEXT NOT NULL,
	running      INTEGER NOT NULL,       -- the domain ran when planned
	from_storage TEXT NOT NULL,
	to_dir       TEXT NOT NULL,
	bytes        INTEGER NOT NULL,
	state        TEXT NOT NULL,          -- planned, running, done, failed
	job_id       INTEGER,
	error        TEXT,
	PRIMARY KEY (rebalance_id, seq)
);
