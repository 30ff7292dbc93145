/* journal.c: the SQLite journal.  It stores and answers; deciding what a row
 * means for a move is move.c's job.
 */
#include "journal.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const schema_sql[] = {
#include "schema.inc"
};

struct sm_journal {
	sqlite3 *db;
	char *path;
	int depth;    /* nesting of sm_journal_begin calls */
	bool failed;  /* an inner level rolled back: the outer commit must too */
	/* Held from the outermost begin to its commit or rollback, so threads
	 * (parallel copies) take turns with whole transactions. */
	pthread_mutex_t tx_lock;
};

char *sm_journal_default_path(void)
{
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	if (geteuid() == 0)
		return sm_xstrdup("/var/lib/snapmove/journal.db");
	if (state && *state)
		return sm_xasprintf("%s/snapmove/journal.db", state);
	return sm_xasprintf("%s/.local/state/snapmove/journal.db", home ? home : ".");
}

static int db_error(struct sm_journal *j, const char *what)
{
	sm_error("the journal '%s' failed (%s): %s; check the file system that holds it, "
		 "then run the command again", j->path, what, sqlite3_errmsg(j->db));
	return -1;
}

static int collect(struct sm_journal *j, sqlite3_stmt *st, size_t elem_size,
		   void (*fill)(sqlite3_stmt *, void *), void **out, size_t *n);

static int exec(struct sm_journal *j, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sm_error("the journal '%s' refused a statement: %s", j->path,
			 msg ? msg : sqlite3_errmsg(j->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Prepare sql and bind arguments described by types: 'i' long long, 's' const
 * char * (NULL binds NULL), 'd' double. */
static sqlite3_stmt *prepare_v(struct sm_journal *j, const char *sql, const char *types,
			       va_list ap)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_error(j, "cannot prepare a statement");
		return NULL;
	}
	for (int i = 0; types[i]; i++) {
		int rc = SQLITE_OK;

		switch (types[i]) {
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, long long));
			break;
		case 'd':
			rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);

			rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(st, i + 1);
			break;
		}
		}
		if (rc != SQLITE_OK) {
			db_error(j, "cannot bind a value");
			sqlite3_finalize(st);
			return NULL;
		}
	}
	return st;
}

static sqlite3_stmt *prepare(struct sm_journal *j, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, types);
	st = prepare_v(j, sql, types, ap);
	va_end(ap);
	return st;
}

/* Run one statement that returns no rows. */
static int run_v(struct sm_journal *j, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = prepare_v(j, sql, types, ap);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_error(j, "cannot write");
}

static int run(struct sm_journal *j, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = run_v(j, sql, types, ap);
	va_end(ap);
	return rc;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? sm_xstrdup((const char *)s) : NULL;
}

/* Create the directory dir and its missing parents for the journal at path. */
static int make_dirs(const char *dir, const char *journal)
{
	SM_AUTOFREE char *parent = sm_path_dirname(dir);
	struct stat sb;

	if (stat(dir, &sb) == 0)
		return 0;
	if (!sm_str_eq(parent, dir) && make_dirs(parent, journal) < 0)
		return -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		sm_error("cannot open the journal '%s': cannot create '%s': %s; "
			 "pass --db with a writable path", journal, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int make_parent_dir(const char *path)
{
	SM_AUTOFREE char *dir = sm_path_dirname(path);

	return make_dirs(dir, path);
}

static int read_version(struct sm_journal *j, int *version)
{
	sqlite3_stmt *st = prepare(j, "PRAGMA user_version", "");

	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_error(j, "cannot read the schema version");
	}
	*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Bring the schema up to date in one write transaction, reading the version
 * inside it: two snapmove processes opening a new or old journal at once
 * take turns, and the second finds nothing left to do. */
static int upgrade_schema(struct sm_journal *j)
{
	int version;

	if (sm_journal_begin(j) < 0)
		return -1;
	if (read_version(j, &version) < 0)
		goto error;
	if (version > (int)SM_ARRAY_LEN(schema_sql)) {
		sm_error("journal '%s' has schema version %d but this snapmove knows only "
			 "up to %zu; use a newer snapmove", j->path, version,
			 SM_ARRAY_LEN(schema_sql));
		goto error;
	}
	for (size_t v = (size_t)version; v < SM_ARRAY_LEN(schema_sql); v++) {
		SM_AUTOFREE char *bump = sm_xasprintf("PRAGMA user_version = %zu", v + 1);

		if (exec(j, schema_sql[v]) < 0 || exec(j, bump) < 0)
			goto error;
	}
	return sm_journal_commit(j);

error:
	sm_journal_rollback(j);
	return -1;
}

int sm_journal_open_existing(const char *path, struct sm_journal **out, bool *missing)
{
	struct stat sb;

	*out = NULL;
	if (missing)
		*missing = false;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT) {
			sm_error("cannot open the journal '%s': %s; pass --db with a readable "
				 "journal", path, strerror(errno));
			return -1;
		}
		if (missing)
			*missing = true;
		sm_error("there is no journal at '%s'; check the --db path (the first "
			 "'snapmove move' creates the journal)", path);
		return -1;
	}
	return sm_journal_open(path, out);
}

/* SQLite does not wait on every lock a fresh journal's setup takes: two
 * processes switching a new file to WAL at once can get "database is locked"
 * at once, busy timeout or not.  So the setup (the switch to WAL and the schema
 * upgrade) runs under a flock on the journal's directory, waited for up to the
 * same 10 s as SQLite's busy timeout.  A lock on the directory, not on the
 * journal: closing any other descriptor of the journal file would drop
 * SQLite's own POSIX locks on it.  Returns the descriptor to pass to
 * unlock_setup, or -1 when the directory cannot be locked (then the setup runs
 * unserialized, as it did before). */
static int lock_setup(const char *path)
{
	SM_AUTOFREE char *dir = sm_path_dirname(path);
	double deadline = sm_monotonic() + 10.0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		struct timespec pause = { 0, 10 * 1000 * 1000 };

		if ((errno != EWOULDBLOCK && errno != EINTR) || sm_monotonic() > deadline) {
			close(fd);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	return fd;
}

static void unlock_setup(int fd)
{
	if (fd >= 0)
		close(fd);
}

int sm_journal_open(const char *path, struct sm_journal **out)
{
	struct sm_journal *j;
	int rc, setup_lock;

	*out = NULL;
	if (make_parent_dir(path) < 0)
		return -1;
	j = sm_xcalloc(1, sizeof(*j));
	j->path = sm_xstrdup(path);
	{
		pthread_mutexattr_t attr;

		pthread_mutexattr_init(&attr);
		pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&j->tx_lock, &attr);
		pthread_mutexattr_destroy(&attr);
	}
	rc = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sm_error("cannot open the journal '%s': %s; pass --db with a writable path",
			 path, j->db ? sqlite3_errmsg(j->db) : sqlite3_errstr(rc));
		sm_journal_free(j);
		return -1;
	}
	sqlite3_busy_timeout(j->db, 10000);
	setup_lock = lock_setup(path);
	rc = exec(j, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		  "PRAGMA foreign_keys = ON") < 0 || upgrade_schema(j) < 0 ? -1 : 0;
	unlock_setup(setup_lock);
	if (rc < 0) {
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s", sm_error_message());
		sm_error("cannot open the journal '%s' (%s); pass --db with a valid journal "
			 "path", path, msg);
		sm_journal_free(j);
		return -1;
	}
	*out = j;
	return 0;
}

void sm_journal_free(struct sm_journal *j)
{
	if (!j)
		return;
	sqlite3_close(j->db);
	pthread_mutex_destroy(&j->tx_lock);
	free(j->path);
	free(j);
}

/* Transactions nest: only the outermost level talks to SQLite.  An inner
 * rollback marks the whole transaction failed, so the outer commit rolls back
 * instead of saving half of it. */
int sm_journal_begin(struct sm_journal *j)
{
	pthread_mutex_lock(&j->tx_lock);
	if (j->depth++ > 0)
		return 0;
	j->failed = false;
	if (exec(j, "BEGIN IMMEDIATE") < 0) {
		j->depth = 0;
		pthread_mutex_unlock(&j->tx_lock);
		return -1;
	}
	return 0;
}

/* ROLLBACK without replacing the error that led to it. */
static void rollback_quietly(struct sm_journal *j)
{
	char *msg = NULL;

	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, &msg);
	sqlite3_free(msg);
}

static int commit_locked(struct sm_journal *j)
{
	if (--j->depth > 0)
		return j->failed ? -1 : 0;
	if (j->failed) {
		rollback_quietly(j);
		sm_error("journal '%s': a step of the transaction failed; nothing of it "
			 "was saved", j->path);
		return -1;
	}
	if (exec(j, "COMMIT") < 0) {
		rollback_quietly(j);
		return -1;
	}
	return 0;
}

int sm_journal_commit(struct sm_journal *j)
{
	int rc;

	if (j->depth <= 0) {
		sm_error("journal '%s': commit without a transaction", j->path);
		return -1;
	}
	rc = commit_locked(j);
	pthread_mutex_unlock(&j->tx_lock);
	return rc;
}

void sm_journal_rollback(struct sm_journal *j)
{
	if (j->depth <= 0)
		return;
	if (--j->depth > 0)
		j->failed = true;
	else
		rollback_quietly(j);
	pthread_mutex_unlock(&j->tx_lock);
}

int sm_journal_job_insert(struct sm_journal *j, const struct sm_job_row *job, long long *id)
{
	double now = sm_now();

	if (run(j, "INSERT INTO job (domain_name, domain_uuid, persistent, dest_dir, "
		"bandwidth_mib, keep_overlay, quiesce, verify, dest_format, sync_writes, "
		"converge_timeout, delete_source, state, phase, pid, created_at, updated_at) "
		"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", "ssisiiiissdissidd",
		job->domain_name, job->domain_uuid, (long long)job->persistent, job->dest_dir,
		(long long)job->bandwidth_mib, (long long)job->keep_overlay,
		(long long)job->quiesce, (long long)job->verify, job->dest_format,
		job->sync_writes ? job->sync_writes : "auto",
		job->converge_timeout > 0 ? job->converge_timeout : 30.0,
		(long long)job->delete_source, sm_job_state_name(SM_JOB_RUNNING), sm_phase_name(SM_PHASE_PLANNED),
		(long long)getpid(), now, now) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(j->db);
	return 0;
}

int sm_journal_disk_insert(struct sm_journal *j, long long job_id, const struct sm_plan_disk *p)
{
	if (run(j, "INSERT INTO disk (job_id, target, state, src_overlay, dst_overlay, "
		"virtual_size, kept, kept_format, kept_user, flat) VALUES (?,?,?,?,?,?,?,?,?,?)",
		"issssisssi", job_id, p->target, sm_disk_state_name(SM_DISK_PLANNED),
		p->src_overlay, p->dst_overlay, (long long)p->virtual_size, p->kept,
		p->kept_format, p->kept_user, (long long)p->flat) < 0)
		return -1;
	for (size_t i = 0; i < p->nimages; i++) {
		const struct sm_plan_image *img = &p->images[i];

		if (run(j, "INSERT INTO image (job_id, target, depth, src_path, dst_path, "
			"format, dst_format, src_backing, dst_backing, dst_backing_format, "
			"virtual_size, allocated, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
			"isisssssssiis", job_id, p->target, (long long)i, img->src, img->dst,
			img->format, img->dst_format, img->src_backing, img->dst_backing,
			img->dst_backing_format, (long long)img->virtual_size,
			(long long)img->allocated, sm_image_state_name(SM_IMAGE_PLANNED)) < 0)
			return -1;
		if (sm_journal_file_set(j, job_id, img->dst, "dst_image", "planned") < 0)
			return -1;
	}
	if (sm_journal_file_set(j, job_id, p->src_overlay, "src_overlay", "planned") < 0 ||
	    sm_journal_file_set(j, job_id, p->dst_overlay, "dst_overlay", "planned") < 0)
		return -1;
	return 0;
}

int sm_journal_file_set(struct sm_journal *j, long long job_id, const char *path,
			const char *role, const char *state)
{
	return run(j, "INSERT INTO file (job_id, path, role, state) VALUES (?,?,?,?) "
		   "ON CONFLICT (job_id, path) DO UPDATE SET state = excluded.state",
		   "isss", job_id, path, role, state);
}

#define IN_TX SM_JOURNAL_TX

static int touch_job(struct sm_journal *j, long long job_id)
{
	return run(j, "UPDATE job SET updated_at = ? WHERE id = ?", "di", sm_now(), job_id);
}

static int phase_start(struct sm_journal *j, long long job_id, enum sm_phase phase)
{
	if (run(j, "UPDATE job SET phase = ?, updated_at = ? WHERE id = ?", "sdi",
		sm_phase_name(phase), sm_now(), job_id) < 0)
		return -1;
	return run(j, "INSERT INTO step (job_id, phase, started_at) VALUES (?,?,?)", "isd",
		   job_id, sm_phase_name(phase), sm_now());
}

int sm_journal_phase_start(struct sm_journal *j, long long job_id, enum sm_phase phase)
{
	return IN_TX(j, phase_start(j, job_id, phase));
}

static int phase_finish(struct sm_journal *j, long long job_id, enum sm_phase phase,
			const char *error)
{
	if (touch_job(j, job_id) < 0)
		return -1;
	return run(j, "UPDATE step SET finished_at = ?, error = ? WHERE id = (SELECT max(id) "
		   "FROM step WHERE job_id = ? AND phase = ? AND target IS NULL)", "dsis",
		   sm_now(), error, job_id, sm_phase_name(phase));
}

int sm_journal_phase_finish(struct sm_journal *j, long long job_id, enum sm_phase phase,
			    const char *error)
{
	return IN_TX(j, phase_finish(j, job_id, phase, error));
}

static int disk_set_state(struct sm_journal *j, long long job_id, const char *target,
			  enum sm_disk_state state, const char *error)
{
	if (touch_job(j, job_id) < 0)
		return -1;
	return run(j, "UPDATE disk SET state = ?, error = ? WHERE job_id = ? AND target = ?",
		   "ssis", sm_disk_state_name(state), error, job_id, target);
}

int sm_journal_disk_set_state(struct sm_journal *j, long long job_id, const char *target,
			      enum sm_disk_state state, const char *error)
{
	return IN_TX(j, disk_set_state(j, job_id, target, state, error));
}

static int image_set_state(struct sm_journal *j, long long job_id, const char *target,
			   size_t depth, enum sm_image_state state, unsigned long long bytes)
{
	return run(j, "UPDATE image SET state = ?, bytes_copied = ? WHERE job_id = ? AND "
		   "target = ? AND depth = ?", "siisi", sm_image_state_name(state),
		   (long long)bytes, job_id, target, (long long)depth);
}

int sm_journal_image_set_state(struct sm_journal *j, long long job_id, const char *target,
			       size_t depth, enum sm_image_state state,
			       unsigned long long bytes_copied)
{
	return IN_TX(j, image_set_state(j, job_id, target, depth, state, bytes_copied));
}

static int job_finish(struct sm_journal *j, long long job_id, enum sm_job_state state,
		      const char *error)
{
	double now = sm_now();

	if (state == SM_JOB_RUNNING)
		return run(j, "UPDATE job SET state = ?, error = NULL, updated_at = ?, "
			   "finished_at = NULL, pid = ? WHERE id = ?", "sdii",
			   sm_job_state_name(state), now, (long long)getpid(), job_id);
	return run(j, "UPDATE job SET state = ?, error = ?, updated_at = ?, finished_at = ? "
		   "WHERE id = ?", "ssddi", sm_job_state_name(state), error, now, now, job_id);
}

int sm_journal_disk_set_pivoting(struct sm_journal *j, long long job_id, const char *target,
				  bool on)
{
	return IN_TX(j, run(j, "UPDATE disk SET pivoting = ? WHERE job_id = ? AND target = ?",
			    "iis", (long long)on, job_id, target));
}

int sm_journal_disk_set_sync_writes(struct sm_journal *j, long long job_id, const char *target,
				    bool on)
{
	return IN_TX(j, run(j, "UPDATE disk SET sync_writes = ? WHERE job_id = ? AND target = ?",
			    "iis", (long long)on, job_id, target));
}

int sm_journal_disk_set_size(struct sm_journal *j, long long job_id, const char *target,
			     unsigned long long virtual_size)
{
	return IN_TX(j, run(j, "UPDATE disk SET virtual_size = ? WHERE job_id = ? AND target = ?",
			    "iis", (long long)virtual_size, job_id, target));
}

int sm_journal_image_set_method(struct sm_journal *j, long long job_id, const char *target,
				size_t depth, const char *method, unsigned long long chunk_size)
{
	return IN_TX(j, run(j, "UPDATE image SET copy_method = ?, chunk_size = ? WHERE "
			    "job_id = ? AND target = ? AND depth = ?", "siisi", method,
			    (long long)chunk_size, job_id, target, (long long)depth));
}

int sm_journal_chunks_done(struct sm_journal *j, long long job_id, const char *target,
			   size_t depth, const struct sm_journal_chunk *c, size_t n)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (n == 0)
		return 0;
	/* One statement for all n rows: a sparse terabyte journals thousands of
	 * hole chunks at once, and preparing a statement per row cost more than
	 * the copy of its data. */
	if (sm_journal_begin(j) < 0)
		return -1;
	st = prepare(j, "INSERT OR REPLACE INTO chunk (job_id, target, depth, idx, offset, "
		     "length, data_bytes, checksum, verified) VALUES (?,?,?,?,?,?,?,?,?)",
		     "isi", job_id, target, (long long)depth);
	if (!st) {
		sm_journal_rollback(j);
		return -1;
	}
	for (size_t i = 0; ret == 0 && i < n; i++) {
		int rc;

		sqlite3_reset(st);
		if (sqlite3_bind_int64(st, 4, (sqlite3_int64)c[i].index) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 5, (sqlite3_int64)c[i].offset) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 6, (sqlite3_int64)c[i].length) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 7, (sqlite3_int64)c[i].data_bytes) != SQLITE_OK ||
		    sqlite3_bind_text(st, 8, c[i].checksum, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int(st, 9, c[i].verified) != SQLITE_OK) {
			ret = db_error(j, "cannot bind a value");
			continue;
		}
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			ret = db_error(j, "cannot write");
	}
	sqlite3_finalize(st);
	if (ret < 0) {
		sm_journal_rollback(j);
		return -1;
	}
	return sm_journal_commit(j);
}

static void fill_chunk(sqlite3_stmt *st, void *p)
{
	struct sm_journal_chunk *c = p;
	const unsigned char *sum = sqlite3_column_text(st, 4);

	c->index = (unsigned long long)sqlite3_column_int64(st, 0);
	c->offset = (unsigned long long)sqlite3_column_int64(st, 1);
	c->length = (unsigned long long)sqlite3_column_int64(st, 2);
	c->data_bytes = (unsigned long long)sqlite3_column_int64(st, 3);
	snprintf(c->checksum, sizeof(c->checksum), "%s", sum ? (const char *)sum : "");
	c->verified = sqlite3_column_int(st, 5) != 0;
}

int sm_journal_chunk_list(struct sm_journal *j, long long job_id, const char *target,
			  size_t depth, struct sm_journal_chunk **out, size_t *n)
{
	return collect(j, prepare(j, "SELECT idx, offset, length, data_bytes, checksum, "
				  "verified FROM chunk WHERE job_id = ? AND target = ? AND depth = ? ORDER BY idx",
				  "isi", job_id, target, (long long)depth),
		       sizeof(**out), fill_chunk, (void **)out, n);
}

int sm_journal_chunk_forget(struct sm_journal *j, long long job_id, const char *target,
			    size_t depth)
{
	return run(j, "DELETE FROM chunk WHERE job_id = ? AND target = ? AND depth = ?", "isi",
		   job_id, target, (long long)depth);
}

int sm_journal_job_finish(struct sm_journal *j, long long job_id, enum sm_job_state state,
			  const char *error)
{
	return IN_TX(j, job_finish(j, job_id, state, error));
}

int sm_journal_image_progress(struct sm_journal *j, long long job_id, const char *target,
			      size_t depth, enum sm_image_state *state,
			      unsigned long long *chunks_done)
{
	sqlite3_stmt *st = prepare(j, "SELECT state, (SELECT count(*) FROM chunk c WHERE "
				   "c.job_id = i.job_id AND c.target = i.target AND c.depth = "
				   "i.depth), (SELECT coalesce(max(idx) + 1, 0) FROM chunk c WHERE "
				   "c.job_id = i.job_id AND c.target = i.target AND c.depth = "
				   "i.depth) FROM image i WHERE job_id = ? AND target = ? AND depth = ?",
				   "isi", job_id, target, (long long)depth);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		long long count = sqlite3_column_int64(st, 1);
		long long next = sqlite3_column_int64(st, 2);

		*state = SM_IMAGE_PLANNED;
		for (int s = 0; s < SM_IMAGE_STATE_LAST; s++)
			if (sm_str_eq(sm_image_state_name((enum sm_image_state)s), name))
				*state = (enum sm_image_state)s;
		/* Chunks are journaled in order: the rows are a prefix, unless the
		 * journal was edited; then trust none of them. */
		*chunks_done = count == next ? (unsigned long long)count : 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		sm_error("journal '%s' has no image %zu of disk '%s' in job %lld", j->path, depth,
			 target, job_id);
		return -1;
	}
	return 0;
}

int sm_journal_file_state(struct sm_journal *j, long long job_id, const char *path,
			  char **state)
{
	sqlite3_stmt *st = prepare(j, "SELECT state FROM file WHERE job_id = ? AND path = ?",
				   "is", job_id, path);
	int rc;

	*state = NULL;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*state = col_text(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(j, "cannot read files");
}

int sm_journal_unfinished_jobs_for_domain(struct sm_journal *j, const char *name,
					  long long **ids, size_t *n)
{
	sqlite3_stmt *st = prepare(j, "SELECT id FROM job WHERE domain_name = ? AND state NOT "
				   "IN ('done', 'aborted') ORDER BY id", "s", name);
	int rc;

	*ids = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*ids = sm_xrealloc(*ids, (*n + 1) * sizeof(**ids));
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_error(j, "cannot read jobs");
}

int sm_journal_job_delete(struct sm_journal *j, long long job_id)
{
	return IN_TX(j, run(j, "DELETE FROM job WHERE id = ?", "i", job_id));
}

int sm_journal_hook_run(struct sm_journal *j, long long job_id, const char *point,
			const char *hook, int exit_status, bool timed_out, double started,
			double seconds, const char *err)
{
	return IN_TX(j, run(j, "INSERT INTO hook_run (job_id, point, hook, exit_status, "
			    "timed_out, started_at, seconds, stderr) VALUES (?,?,?,?,?,?,?,?)",
			    "issiidds", job_id, point, hook, (long long)exit_status,
			    (long long)timed_out, started, seconds, err));
}

int sm_journal_sql(struct sm_journal *j, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = run_v(j, sql, types, ap);
	va_end(ap);
	return rc;
}

long long sm_journal_last_id(struct sm_journal *j)
{
	return sqlite3_last_insert_rowid(j->db);
}

int sm_journal_query(struct sm_journal *j, const char *sql, const char *types,
		     struct sm_journal_rows *rows, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	memset(rows, 0, sizeof(*rows));
	va_start(ap, rows);
	st = prepare_v(j, sql, types, ap);
	va_end(ap);
	if (!st)
		return -1;
	rows->ncols = (size_t)sqlite3_column_count(st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows->cells = sm_xrealloc(rows->cells, (rows->nrows + 1) * rows->ncols *
					  sizeof(*rows->cells));
		for (size_t c = 0; c < rows->ncols; c++) {
			const unsigned char *t = sqlite3_column_text(st, (int)c);

			rows->cells[rows->nrows * rows->ncols + c] = sm_xstrdup(t ? (const char *)t : "");
		}
		rows->nrows++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		sm_journal_rows_release(rows);
		return db_error(j, "cannot read");
	}
	return 0;
}

void sm_journal_rows_release(struct sm_journal_rows *rows)
{
	for (size_t i = 0; i < rows->nrows * rows->ncols; i++)
		free(rows->cells[i]);
	free(rows->cells);
	memset(rows, 0, sizeof(*rows));
}

const char *sm_journal_path(const struct sm_journal *j)
{
	return j->path;
}

int sm_journal_next_job_id(struct sm_journal *j, long long *id)
{
	sqlite3_stmt *st = prepare(j, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE "
				   "name = 'job'), 0) + 1", "");
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_error(j, "cannot read the job sequence");
}

int sm_journal_unfinished_job_for_disk(struct sm_journal *j, const char *domain_uuid,
				       const char *target, long long *job_id)
{
	sqlite3_stmt *st = prepare(j, "SELECT job.id FROM job JOIN disk ON disk.job_id = "
				   "job.id WHERE job.domain_uuid = ? AND disk.target = ? AND "
				   "job.state NOT IN ('done', 'aborted') ORDER BY job.id DESC LIMIT 1", "ss",
				   domain_uuid, target);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*job_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(j, "cannot read jobs");
	return rc == SQLITE_ROW;
}

#define JOB_COLUMNS "id, domain_name, domain_uuid, persistent, dest_dir, bandwidth_mib, " \
	"keep_overlay, quiesce, state, phase, error, created_at, updated_at, " \
	"coalesce(finished_at, 0), verify, dest_format, sync_writes, converge_timeout, " \
	"delete_source"

static void job_from_row(sqlite3_stmt *st, struct sm_job_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->domain_name = col_text(st, 1);
	r->domain_uuid = col_text(st, 2);
	r->persistent = sqlite3_column_int(st, 3);
	r->dest_dir = col_text(st, 4);
	r->bandwidth_mib = (unsigned long long)sqlite3_column_int64(st, 5);
	r->keep_overlay = sqlite3_column_int(st, 6);
	r->quiesce = sqlite3_column_int(st, 7);
	r->state = col_text(st, 8);
	r->phase = col_text(st, 9);
	r->error = col_text(st, 10);
	r->created_at = sqlite3_column_double(st, 11);
	r->updated_at = sqlite3_column_double(st, 12);
	r->finished_at = sqlite3_column_double(st, 13);
	r->verify = sqlite3_column_int(st, 14);
	r->dest_format = col_text(st, 15);
	r->sync_writes = col_text(st, 16);
	r->converge_timeout = sqlite3_column_double(st, 17);
	r->delete_source = sqlite3_column_int(st, 18);
}

int sm_journal_job_get(struct sm_journal *j, long long id, struct sm_job_row *out)
{
	sqlite3_stmt *st = prepare(j, "SELECT " JOB_COLUMNS " FROM job WHERE id = ?", "i", id);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		job_from_row(st, out);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(j, "cannot read jobs");
	return rc == SQLITE_ROW;
}

/* Collect every row of st with fill(), growing an array of elem_size items. */
static int collect(struct sm_journal *j, sqlite3_stmt *st, size_t elem_size,
		   void (*fill)(sqlite3_stmt *, void *), void **out, size_t *n)
{
	char *arr = NULL;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		arr = sm_xrealloc(arr, (count + 1) * elem_size);
		memset(arr + count * elem_size, 0, elem_size);
		fill(st, arr + count * elem_size);
		count++;
	}
	sqlite3_finalize(st);
	*out = arr;
	*n = count;
	if (rc != SQLITE_DONE)
		return db_error(j, "cannot read");
	return 0;
}

static void fill_job(sqlite3_stmt *st, void *p)
{
	job_from_row(st, p);
}

int sm_journal_job_list(struct sm_journal *j, struct sm_job_row **out, size_t *n)
{
	return collect(j, prepare(j, "SELECT " JOB_COLUMNS " FROM job ORDER BY "
				  "(state IN ('done', 'aborted')), id DESC", ""),
		       sizeof(**out), fill_job, (void **)out, n);
}

static void fill_disk(sqlite3_stmt *st, void *p)
{
	struct sm_disk_row *r = p;

	r->target = col_text(st, 0);
	r->state = col_text(st, 1);
	r->src_overlay = col_text(st, 2);
	r->dst_overlay = col_text(st, 3);
	r->error = col_text(st, 4);
	r->plan.target = sm_xstrdup(r->target);
	r->plan.src_overlay = sm_xstrdup(r->src_overlay);
	r->plan.dst_overlay = sm_xstrdup(r->dst_overlay);
	r->plan.virtual_size = (unsigned long long)sqlite3_column_int64(st, 5);
	r->sync_writes = sqlite3_column_int(st, 6);
	r->plan.kept = col_text(st, 7);
	r->plan.kept_format = col_text(st, 8);
	r->plan.kept_user = col_text(st, 9);
	r->plan.flat = sqlite3_column_int(st, 10);
	r->pivoting = sqlite3_column_int(st, 11);
}

static void fill_image(sqlite3_stmt *st, void *p)
{
	struct sm_plan_image *img = p;

	img->src = col_text(st, 0);
	img->dst = col_text(st, 1);
	img->format = col_text(st, 2);
	img->src_backing = col_text(st, 3);
	img->dst_backing = col_text(st, 4);
	img->dst_backing_format = col_text(st, 5);
	img->virtual_size = (unsigned long long)sqlite3_column_int64(st, 6);
	img->allocated = (unsigned long long)sqlite3_column_int64(st, 7);
	img->dst_format = col_text(st, 8);
}

int sm_journal_disk_list(struct sm_journal *j, long long job_id, struct sm_disk_row **out,
			 size_t *n)
{
	if (collect(j, prepare(j, "SELECT target, state, src_overlay, dst_overlay, error, "
			       "virtual_size, sync_writes, kept, kept_format, kept_user, flat, pivoting FROM disk WHERE job_id = ? ORDER BY target", "i",
			       job_id),
		    sizeof(**out), fill_disk, (void **)out, n) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		struct sm_plan_disk *plan = &(*out)[i].plan;

		if (collect(j, prepare(j, "SELECT src_path, dst_path, format, src_backing, "
				       "dst_backing, dst_backing_format, virtual_size, allocated, "
				       "coalesce(dst_format, format) FROM image WHERE job_id = ? AND target = ? ORDER BY depth",
				       "is", job_id, plan->target),
			    sizeof(*plan->images), fill_image, (void **)&plan->images,
			    &plan->nimages) < 0)
			return -1;
	}
	return 0;
}

static void fill_step(sqlite3_stmt *st, void *p)
{
	struct sm_step_row *r = p;

	r->phase = col_text(st, 0);
	r->target = col_text(st, 1);
	r->started_at = sqlite3_column_double(st, 2);
	r->finished_at = sqlite3_column_double(st, 3);
	r->error = col_text(st, 4);
}

int sm_journal_step_list(struct sm_journal *j, long long job_id, struct sm_step_row **out,
			 size_t *n)
{
	return collect(j, prepare(j, "SELECT phase, target, started_at, coalesce(finished_at, "
				  "0), error FROM step WHERE job_id = ? ORDER BY id", "i", job_id),
		       sizeof(**out), fill_step, (void **)out, n);
}

static void fill_file(sqlite3_stmt *st, void *p)
{
	struct sm_file_row *r = p;

	r->path = col_text(st, 0);
	r->role = col_text(st, 1);
	r->state = col_text(st, 2);
}

int sm_journal_file_list(struct sm_journal *j, long long job_id, struct sm_file_row **out,
			 size_t *n)
{
	return collect(j, prepare(j, "SELECT path, role, state FROM file WHERE job_id = ? "
				  "ORDER BY rowid", "i", job_id),
		       sizeof(**out), fill_file, (void **)out, n);
}

void sm_job_row_release(struct sm_job_row *r)
{
	if (!r)
		return;
	free(r->domain_name);
	free(r->domain_uuid);
	free(r->dest_dir);
	free(r->state);
	free(r->phase);
	free(r->error);
	free(r->dest_format);
	free(r->sync_writes);
	memset(r, 0, sizeof(*r));
}

void sm_job_rows_free(struct sm_job_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sm_job_row_release(&rows[i]);
	free(rows);
}

void sm_disk_rows_free(struct sm_disk_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].target);
		free(rows[i].state);
		free(rows[i].src_overlay);
		free(rows[i].dst_overlay);
		free(rows[i].error);
		sm_plan_disk_release(&rows[i].plan);
	}
	free(rows);
}

void sm_step_rows_free(struct sm_step_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].phase);
		free(rows[i].target);
		free(rows[i].error);
	}
	free(rows);
}

void sm_file_rows_free(struct sm_file_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].path);
		free(rows[i].role);
		free(rows[i].state);
	}
	free(rows);
}
