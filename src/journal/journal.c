/* journal.c: the SQLite journal.  It stores and answers; deciding what a row
 * means for a move is move.c's job.
 */
#include "journal.h"
#include "copy/copy.h"
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
	bool readonly;  /* opened with SQLITE_OPEN_READONLY (list, status, verify) */
	bool malformed; /* a row read since sm_journal_job_check began was malformed */
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

/* ---- Reading rows back ----
 * The journal is the caller's file, but it can be edited by hand or damaged.
 * Every value is checked against what this version writes (its type, NULL or
 * not, its range, a known name) before anything uses it; a row that fails is
 * reported with its job and never used, so a command stops with a clear error
 * instead of acting on it or crashing. */
struct row {
	sqlite3_stmt *st;
	long long job;
	const char *what;  /* "" for the job row itself, else "disk: ", "image: "... */
	char why[320];     /* the first problem; "" while none */
};

static void row_bad(struct row *r, const char *fmt, ...) SM_ATTR_PRINTF(2, 3);

static void row_bad(struct row *r, const char *fmt, ...)
{
	va_list ap;

	if (r->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	for (char *c = r->why; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

static const char *row_name(struct row *r, int i)
{
	const char *name = sqlite3_column_name(r->st, i);

	return name ? name : "a column";
}

/* A text value; NULL for SQL NULL when null_ok (else a problem, as an empty
 * text is). */
static char *row_text(struct row *r, int i, bool null_ok)
{
	int type = sqlite3_column_type(r->st, i);
	const unsigned char *s;

	if (type == SQLITE_NULL) {
		if (!null_ok)
			row_bad(r, "%s%s is NULL", r->what, row_name(r, i));
		return NULL;
	}
	if (type != SQLITE_TEXT) {
		row_bad(r, "%s%s is not text", r->what, row_name(r, i));
		return NULL;
	}
	s = sqlite3_column_text(r->st, i);
	if (!s || (!null_ok && !*s)) {
		row_bad(r, "%s%s is empty", r->what, row_name(r, i));
		return NULL;
	}
	return sm_xstrdup((const char *)s);
}

static long long row_int(struct row *r, int i, long long min, long long max)
{
	int type = sqlite3_column_type(r->st, i);
	long long v;

	if (type != SQLITE_INTEGER) {
		row_bad(r, "%s%s is %s", r->what, row_name(r, i),
			type == SQLITE_NULL ? "NULL" : "not a whole number");
		return min;
	}
	v = sqlite3_column_int64(r->st, i);
	if (v < min || v > max) {
		row_bad(r, "%s%s is out of range (%lld)", r->what, row_name(r, i), v);
		return min;
	}
	return v;
}

static bool row_bool(struct row *r, int i)
{
	return row_int(r, i, 0, 1) != 0;
}

/* Sizes and offsets: never negative, and far from overflowing when added. */
#define ROW_SIZE_MAX (1LL << 62)
/* Times: seconds since the epoch, before the year 5000. */
#define ROW_TIME_MAX 95617584000.0

static double row_real(struct row *r, int i, double min, double max)
{
	int type = sqlite3_column_type(r->st, i);
	double v;

	if (type != SQLITE_INTEGER && type != SQLITE_FLOAT) {
		row_bad(r, "%s%s is %s", r->what, row_name(r, i),
			type == SQLITE_NULL ? "NULL" : "not a number");
		return min;
	}
	v = sqlite3_column_double(r->st, i);
	if (!(v >= min && v <= max)) {  /* NaN too */
		row_bad(r, "%s%s is out of range (%g)", r->what, row_name(r, i), v);
		return min;
	}
	return v;
}

static int disk_state_from_name(const char *name)
{
	for (int s = 0; s < SM_DISK_STATE_LAST; s++)
		if (sm_str_eq(sm_disk_state_name((enum sm_disk_state)s), name))
			return s;
	return -1;
}

static int image_state_from_name(const char *name)
{
	for (int s = 0; s < SM_IMAGE_STATE_LAST; s++)
		if (sm_str_eq(sm_image_state_name((enum sm_image_state)s), name))
			return s;
	return -1;
}

/* The --sync-writes choices (job_run.c's enum sm_sync_writes, by name). */
static int sync_writes_from_name(const char *name)
{
	return sm_str_eq(name, "auto") || sm_str_eq(name, "on") || sm_str_eq(name, "off")
	       ? 0 : -1;
}

/* A name of one of job.h's enums (what: "phase", "state"). */
static char *row_enum(struct row *r, int i, const char *what,
		      int (*from_name)(const char *))
{
	char *s = row_text(r, i, false);

	if (s && from_name(s) < 0)
		row_bad(r, "%sunknown %s '%.64s'", r->what, what, s);
	return s;
}

/* The error for a row that failed (r->why). */
static int row_malformed(struct sm_journal *j, const struct row *r)
{
	j->malformed = true;
	sm_error("journal row of job %lld is malformed (%s); the journal may have been "
		 "edited: 'snapmove forget %lld' or restore it (journal '%s')", r->job, r->why,
		 r->job, j->path);
	return -1;
}

static int collect(struct sm_journal *j, sqlite3_stmt *st, long long job, size_t elem_size,
		   void (*fill)(struct row *, void *), void (*release)(void *, size_t),
		   void **out, size_t *n);

/* Create the directory dir and its missing parents for the journal at path,
 * each 0700. */
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

/* The journal's folder.  It must be the caller's and writable by nobody else
 * (who could otherwise plant links at the journal's, its -wal's, -shm's or
 * locks' names before SQLite or snapmove opens them); that is what makes the
 * checks of the files below race-free.  snapmove's own folder (the default
 * one, /var/lib/snapmove for root) is made 0700 whatever it was; the folder
 * of a --db path is the caller's choice and may be shared (a test's folder,
 * a home), so it is checked, never changed. */
static int check_dir(const char *path, const char *dir, bool own)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat sb;
	int ret = -1;

	if (fd < 0 || fstat(fd, &sb) < 0) {
		sm_error("cannot open the journal '%s': cannot open its folder '%s': %s; pass "
			 "--db with a writable path", path, dir, strerror(errno));
		goto cleanup;
	}
	if (sb.st_uid != geteuid()) {
		sm_error("the journal's folder '%s' belongs to uid %u, not to you (uid %u): "
			 "whoever owns it could read or replace the journal; pass --db with a "
			 "path in a folder of your own", dir, (unsigned)sb.st_uid,
			 (unsigned)geteuid());
		goto cleanup;
	}
	if (own && (sb.st_mode & 07777) != 0700) {
		if (fchmod(fd, 0700) < 0) {
			sm_error("cannot make the journal's folder '%s' private (mode 0700): %s; "
				 "'chmod 700 %s'", dir, strerror(errno), dir);
			goto cleanup;
		}
	} else if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		sm_error("the journal's folder '%s' is writable by group or others, who could "
			 "replace the journal's files; 'chmod go-w %s' or pass --db with a path "
			 "in a folder of your own", dir, dir);
		goto cleanup;
	}
	ret = 0;

cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* One of the journal's files (the database, its -wal and -shm, the job
 * locks, the rebalance logs; what: "journal" or "journal file"): when it
 * exists it must be a regular file of the caller's with one link, not a
 * symbolic link; it is made 0600 whatever its mode was.  0 also when it does
 * not exist. */
static int check_file(const char *file, const char *what)
{
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat sb;
	int ret = -1;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 && errno == ELOOP) {
		sm_error("cannot open the %s '%s': it is a symbolic link, and snapmove never "
			 "follows one there; remove it ('rm %s')", what, file, file);
		return -1;
	}
	if (fd < 0 || fstat(fd, &sb) < 0) {
		sm_error("cannot open the %s '%s': %s; pass --db with a writable path", what,
			 file, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		sm_error("cannot open the %s '%s': it is not a regular file with one link; "
			 "remove it or pass --db with another path", what, file);
		goto cleanup;
	}
	if (sb.st_uid != geteuid()) {
		sm_error("cannot open the %s '%s': it belongs to uid %u, not to you (uid %u); "
			 "'chown %u %s' if it is yours, or pass --db with another path", what,
			 file, (unsigned)sb.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), file);
		goto cleanup;
	}
	if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
		sm_error("cannot make the %s '%s' private (mode 0600): %s", what, file,
			 strerror(errno));
		goto cleanup;
	}
	ret = 0;

cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}

int sm_journal_check_file(const char *file)
{
	return check_file(file, "journal file");
}

/* The folder and the files of the journal at path, before SQLite opens it
 * (see check_dir); create: make the database file, empty and 0600, when it
 * is missing (SQLite gives its -wal and -shm the database's mode). */
static int prepare_files(const char *path, bool create)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	SM_AUTOFREE char *dir = sm_path_dirname(path);
	SM_AUTOFREE char *def = sm_journal_default_path();
	SM_AUTOFREE char *def_dir = sm_path_dirname(def);

	if (create && make_dirs(dir, path) < 0)
		return -1;
	if (check_dir(path, dir, sm_str_eq(dir, def_dir)) < 0)
		return -1;
	for (size_t i = 0; i < SM_ARRAY_LEN(suffix); i++) {
		SM_AUTOFREE char *f = sm_xasprintf("%s%s", path, suffix[i]);

		if (check_file(f, i == 0 ? "journal" : "journal file") < 0)
			return -1;
	}
	if (create) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd >= 0)
			close(fd);
		else if (errno != EEXIST) {
			sm_error("cannot create the journal '%s': %s; pass --db with a writable "
				 "path", path, strerror(errno));
			return -1;
		}
	}
	return 0;
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

static struct sm_journal *journal_new(const char *path)
{
	struct sm_journal *j = sm_xcalloc(1, sizeof(*j));
	pthread_mutexattr_t attr;

	j->path = sm_xstrdup(path);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&j->tx_lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return j;
}

/* sqlite3_open_v2 with flags, never through a symbolic link. */
static int open_db(struct sm_journal *j, int flags)
{
	int rc = sqlite3_open_v2(j->path, &j->db, flags | SQLITE_OPEN_NOFOLLOW |
				 SQLITE_OPEN_FULLMUTEX, NULL);

	if (rc != SQLITE_OK) {
		sm_error("cannot open the journal '%s': %s; pass --db with a %s path", j->path,
			 j->db ? sqlite3_errmsg(j->db) : sqlite3_errstr(rc),
			 flags & SQLITE_OPEN_READONLY ? "readable" : "writable");
		return -1;
	}
	sqlite3_busy_timeout(j->db, 10000);
	return 0;
}

/* Replace the recorded error with "cannot open the journal" around it. */
static void open_failed(const char *path)
{
	char msg[2048];

	snprintf(msg, sizeof(msg), "%s", sm_error_message());
	sm_error("cannot open the journal '%s' (%s); pass --db with a valid journal path",
		 path, msg);
}

int sm_journal_open(const char *path, struct sm_journal **out)
{
	struct sm_journal *j;
	int rc, setup_lock;

	*out = NULL;
	if (prepare_files(path, true) < 0)
		return -1;
	j = journal_new(path);
	if (open_db(j, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) < 0) {
		sm_journal_free(j);
		return -1;
	}
	setup_lock = lock_setup(path);
	rc = exec(j, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		  "PRAGMA foreign_keys = ON") < 0 || upgrade_schema(j) < 0 ? -1 : 0;
	unlock_setup(setup_lock);
	if (rc < 0) {
		open_failed(path);
		sm_journal_free(j);
		return -1;
	}
	*out = j;
	return 0;
}

/* Read-only: no schema change, no write.  A journal of an older schema is
 * opened read-write once to be upgraded, as any other command would. */
static int open_readonly(const char *path, struct sm_journal **out)
{
	struct sm_journal *j;
	int version = 0;

	if (prepare_files(path, false) < 0)
		return -1;
	j = journal_new(path);
	j->readonly = true;
	if (open_db(j, SQLITE_OPEN_READONLY) < 0) {
		sm_journal_free(j);
		return -1;
	}
	if (read_version(j, &version) < 0) {
		open_failed(path);
		sm_journal_free(j);
		return -1;
	}
	if (version != (int)SM_ARRAY_LEN(schema_sql)) {
		sm_journal_free(j);
		return sm_journal_open(path, out);  /* upgraded, or refused when newer */
	}
	*out = j;
	return 0;
}

static int open_existing(const char *path, struct sm_journal **out, bool *missing,
			 bool readonly)
{
	struct stat sb;

	*out = NULL;
	if (missing)
		*missing = false;
	if (lstat(path, &sb) < 0) {
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
	return readonly ? open_readonly(path, out) : sm_journal_open(path, out);
}

int sm_journal_open_existing(const char *path, struct sm_journal **out, bool *missing)
{
	return open_existing(path, out, missing, false);
}

int sm_journal_open_readonly(const char *path, struct sm_journal **out, bool *missing)
{
	return open_existing(path, out, missing, true);
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
	if (j->readonly) {
		sm_error("the journal '%s' was opened read-only; nothing can be written to it",
			 j->path);
		j->depth = 0;
		pthread_mutex_unlock(&j->tx_lock);
		return -1;
	}
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
		"converge_timeout, delete_source, asked_copy_method, parallel, state, phase, pid, "
		"created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		"ssisiiiissdisissidd",
		job->domain_name, job->domain_uuid, (long long)job->persistent, job->dest_dir,
		(long long)job->bandwidth_mib, (long long)job->keep_overlay,
		(long long)job->quiesce, (long long)job->verify, job->dest_format,
		job->sync_writes ? job->sync_writes : "auto",
		job->converge_timeout > 0 ? job->converge_timeout : 30.0,
		(long long)job->delete_source, job->copy_method ? job->copy_method : "auto",
		(long long)job->parallel, sm_job_state_name(SM_JOB_RUNNING), sm_phase_name(SM_PHASE_PLANNED),
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

static void fill_chunk(struct row *rw, void *p)
{
	struct sm_journal_chunk *c = p;
	char *sum;

	rw->what = "chunk: ";
	c->index = (unsigned long long)row_int(rw, 0, 0, ROW_SIZE_MAX);
	c->offset = (unsigned long long)row_int(rw, 1, 0, ROW_SIZE_MAX);
	c->length = (unsigned long long)row_int(rw, 2, 1, 1LL << 40);
	c->data_bytes = (unsigned long long)row_int(rw, 3, 0, (long long)c->length);
	sum = row_text(rw, 4, false);
	if (sum && (strlen(sum) != 16 || strspn(sum, "0123456789abcdef") != 16))
		row_bad(rw, "chunk: checksum '%.20s' is not 16 hex digits", sum);
	snprintf(c->checksum, sizeof(c->checksum), "%s", sum ? sum : "");
	free(sum);
	c->verified = row_bool(rw, 5);
}

static void release_chunks(void *p, size_t n)
{
	(void)n;
	free(p);
}

int sm_journal_chunk_list(struct sm_journal *j, long long job_id, const char *target,
			  size_t depth, struct sm_journal_chunk **out, size_t *n)
{
	return collect(j, prepare(j, "SELECT idx, offset, length, data_bytes, checksum, "
				  "verified FROM chunk WHERE job_id = ? AND target = ? AND depth = ? ORDER BY idx",
				  "isi", job_id, target, (long long)depth),
		       job_id, sizeof(**out), fill_chunk, release_chunks, (void **)out, n);
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
		struct row rw = { .st = st, .job = job_id, .what = "image: " };
		char *name = row_enum(&rw, 0, "image state", image_state_from_name);
		long long count = sqlite3_column_int64(st, 1);
		long long next = sqlite3_column_int64(st, 2);

		*state = SM_IMAGE_PLANNED;
		if (rw.why[0]) {
			free(name);
			sqlite3_finalize(st);
			return row_malformed(j, &rw);
		}
		*state = (enum sm_image_state)image_state_from_name(name);
		free(name);
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

/* ---- Checked rows of the tables of other modules (the rebalance's) ----
 * The same checks as the job rows' (row_int, row_text...), reported for the
 * owner the rows belong to. */
struct sm_journal_cursor {
	struct sm_journal *j;
	struct row rw;
	const char *owner;
	long long id;
	char what[64];
	bool db_failed;
};

struct sm_journal_cursor *sm_journal_cursor_open(struct sm_journal *j, const char *owner,
						 long long id, const char *sql,
						 const char *types, ...)
{
	struct sm_journal_cursor *c;
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, types);
	st = prepare_v(j, sql, types, ap);
	va_end(ap);
	if (!st)
		return NULL;
	c = sm_xcalloc(1, sizeof(*c));
	c->j = j;
	c->owner = owner;
	c->id = id;
	c->rw = (struct row){ .st = st, .job = id, .what = c->what };
	return c;
}

int sm_journal_cursor_next(struct sm_journal_cursor *c)
{
	int rc;

	if (c->rw.why[0] || c->db_failed)
		return 0;
	rc = sqlite3_step(c->rw.st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE) {
		db_error(c->j, "cannot read");
		c->db_failed = true;
	}
	return 0;
}

void sm_journal_cursor_what(struct sm_journal_cursor *c, const char *what)
{
	snprintf(c->what, sizeof(c->what), "%s", what);
}

bool sm_journal_cursor_null(struct sm_journal_cursor *c, int col)
{
	return sqlite3_column_type(c->rw.st, col) == SQLITE_NULL;
}

long long sm_journal_cursor_int(struct sm_journal_cursor *c, int col, long long min,
				long long max)
{
	return row_int(&c->rw, col, min, max);
}

bool sm_journal_cursor_bool(struct sm_journal_cursor *c, int col)
{
	return row_bool(&c->rw, col);
}

char *sm_journal_cursor_text(struct sm_journal_cursor *c, int col, bool null_ok)
{
	return row_text(&c->rw, col, null_ok);
}

int sm_journal_cursor_enum(struct sm_journal_cursor *c, int col, const char *what,
			   int (*from_name)(const char *))
{
	char *s = row_enum(&c->rw, col, what, from_name);
	int v = s ? from_name(s) : -1;

	free(s);
	return v < 0 ? 0 : v;
}

void sm_journal_cursor_bad(struct sm_journal_cursor *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	row_bad(&c->rw, "%s%s", c->what, why);
}

int sm_journal_cursor_close(struct sm_journal_cursor *c, const char *advice)
{
	int ret = 0;

	if (!c)
		return -1;
	sqlite3_finalize(c->rw.st);
	if (c->rw.why[0]) {
		c->j->malformed = true;
		sm_error("journal row of %s %lld is malformed (%s); the journal may have been "
			 "edited: %s (journal '%s')", c->owner, c->id, c->rw.why, advice,
			 c->j->path);
		ret = -2;
	} else if (c->db_failed) {
		ret = -1;
	}
	free(c);
	return ret;
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
	"coalesce(finished_at, 0) AS finished_at, verify, dest_format, sync_writes, " \
	"converge_timeout, delete_source, asked_copy_method, parallel"

static void job_from_row(struct row *rw, struct sm_job_row *r)
{
	sqlite3_stmt *st = rw->st;

	r->id = sqlite3_column_int64(st, 0);  /* INTEGER PRIMARY KEY: always one */
	rw->job = r->id;
	rw->what = "";
	r->domain_name = row_text(rw, 1, false);
	r->domain_uuid = row_text(rw, 2, false);
	r->persistent = row_bool(rw, 3);
	r->dest_dir = row_text(rw, 4, false);
	r->bandwidth_mib = (unsigned long long)row_int(rw, 5, 0, 1LL << 30);
	r->keep_overlay = row_bool(rw, 6);
	r->quiesce = row_bool(rw, 7);
	r->state = row_enum(rw, 8, "state", sm_job_state_from_name);
	r->phase = row_enum(rw, 9, "phase", sm_phase_from_name);
	r->error = row_text(rw, 10, true);
	r->created_at = row_real(rw, 11, 0, ROW_TIME_MAX);
	r->updated_at = row_real(rw, 12, 0, ROW_TIME_MAX);
	r->finished_at = row_real(rw, 13, 0, ROW_TIME_MAX);
	r->verify = row_bool(rw, 14);
	r->dest_format = row_text(rw, 15, true);
	r->sync_writes = row_enum(rw, 16, "sync_writes", sync_writes_from_name);
	r->converge_timeout = row_real(rw, 17, 0, 1e9);
	r->delete_source = row_bool(rw, 18);
	r->copy_method = row_enum(rw, 19, "copy method", sm_copy_method_from_name);
	r->parallel = (unsigned)row_int(rw, 20, 0, 64);
}

int sm_journal_job_get(struct sm_journal *j, long long id, struct sm_job_row *out)
{
	sqlite3_stmt *st = prepare(j, "SELECT " JOB_COLUMNS " FROM job WHERE id = ?", "i", id);
	struct row rw = { .st = st, .job = id, .what = "" };
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		job_from_row(&rw, out);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(j, "cannot read jobs");
	if (rw.why[0]) {
		sm_job_row_release(out);
		row_malformed(j, &rw);
		return -2;
	}
	return rc == SQLITE_ROW;
}

/* Collect every row of st with fill(), growing an array of elem_size items;
 * on a malformed row, release() what was collected and fail. */
static int collect(struct sm_journal *j, sqlite3_stmt *st, long long job, size_t elem_size,
		   void (*fill)(struct row *, void *), void (*release)(void *, size_t),
		   void **out, size_t *n)
{
	struct row rw = { .st = st, .job = job, .what = "" };
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
		fill(&rw, arr + count * elem_size);
		count++;
		if (rw.why[0])
			break;
	}
	sqlite3_finalize(st);
	if (rw.why[0]) {
		release(arr, count);
		return row_malformed(j, &rw);
	}
	*out = arr;
	*n = count;
	if (rc != SQLITE_DONE)
		return db_error(j, "cannot read");
	return 0;
}

static void fill_job(struct row *rw, void *p)
{
	job_from_row(rw, p);
}

static void release_jobs(void *p, size_t n)
{
	sm_job_rows_free(p, n);
}

int sm_journal_job_list(struct sm_journal *j, struct sm_job_row **out, size_t *n)
{
	return collect(j, prepare(j, "SELECT " JOB_COLUMNS " FROM job ORDER BY "
				  "(state IN ('done', 'aborted')), id DESC", ""), 0,
		       sizeof(**out), fill_job, release_jobs, (void **)out, n);
}

static void fill_disk(struct row *rw, void *p)
{
	struct sm_disk_row *r = p;

	rw->what = "disk: ";
	r->target = row_text(rw, 0, false);
	r->state = row_enum(rw, 1, "disk state", disk_state_from_name);
	r->src_overlay = row_text(rw, 2, false);
	r->dst_overlay = row_text(rw, 3, false);
	r->error = row_text(rw, 4, true);
	r->plan.target = sm_xstrdup_or_null(r->target);
	r->plan.src_overlay = sm_xstrdup_or_null(r->src_overlay);
	r->plan.dst_overlay = sm_xstrdup_or_null(r->dst_overlay);
	r->plan.virtual_size = (unsigned long long)row_int(rw, 5, 0, ROW_SIZE_MAX);
	r->sync_writes = row_bool(rw, 6);
	r->plan.kept = row_text(rw, 7, true);
	r->plan.kept_format = row_text(rw, 8, true);
	r->plan.kept_user = row_text(rw, 9, true);
	r->plan.flat = row_bool(rw, 10);
	r->pivoting = row_bool(rw, 11);
}

static void fill_image(struct row *rw, void *p)
{
	struct sm_plan_image *img = p;

	rw->what = "image: ";
	img->src = row_text(rw, 0, false);
	img->dst = row_text(rw, 1, false);
	img->format = row_text(rw, 2, false);
	img->src_backing = row_text(rw, 3, true);
	img->dst_backing = row_text(rw, 4, true);
	img->dst_backing_format = row_text(rw, 5, true);
	img->virtual_size = (unsigned long long)row_int(rw, 6, 0, ROW_SIZE_MAX);
	img->allocated = (unsigned long long)row_int(rw, 7, 0, ROW_SIZE_MAX);
	img->dst_format = row_text(rw, 8, false);
	(void)row_int(rw, 9, 0, ROW_SIZE_MAX);  /* depth, checked by the caller */
}

static void release_disks(void *p, size_t n)
{
	sm_disk_rows_free(p, n);
}

static void release_images(void *p, size_t n)
{
	struct sm_plan_disk d = { .images = p, .nimages = n };

	sm_plan_disk_release(&d);
}

/* The image rows of one disk: depths 0, 1, ... without a gap, at least one. */
static int disk_images(struct sm_journal *j, long long job_id, struct sm_plan_disk *plan)
{
	sqlite3_stmt *st = prepare(j, "SELECT src_path, dst_path, format, src_backing, "
				   "dst_backing, dst_backing_format, virtual_size, allocated, "
				   "coalesce(dst_format, format) AS dst_format, depth FROM image "
				   "WHERE job_id = ? AND target = ? ORDER BY depth",
				   "is", job_id, plan->target);
	struct row rw = { .job = job_id };

	if (!st)
		return -1;
	if (collect(j, st, job_id, sizeof(*plan->images), fill_image, release_images,
		    (void **)&plan->images, &plan->nimages) < 0)
		return -1;
	if (plan->nimages == 0)
		snprintf(rw.why, sizeof(rw.why), "disk '%.64s' has no image rows", plan->target);
	st = prepare(j, "SELECT count(*) FROM image WHERE job_id = ? AND target = ? AND "
		     "depth >= 0 AND depth < ? AND typeof(depth) = 'integer'", "isi", job_id,
		     plan->target, (long long)plan->nimages);
	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW ||
	    (size_t)sqlite3_column_int64(st, 0) != plan->nimages)
		if (!rw.why[0])
			snprintf(rw.why, sizeof(rw.why), "the depths of the images of disk "
				 "'%.64s' are not 0 to %zu", plan->target, plan->nimages - 1);
	sqlite3_finalize(st);
	return rw.why[0] ? row_malformed(j, &rw) : 0;
}

int sm_journal_disk_list(struct sm_journal *j, long long job_id, struct sm_disk_row **out,
			 size_t *n)
{
	if (collect(j, prepare(j, "SELECT target, state, src_overlay, dst_overlay, error, "
			       "virtual_size, sync_writes, kept, kept_format, kept_user, flat, "
			       "pivoting FROM disk WHERE job_id = ? ORDER BY target", "i", job_id),
		    job_id, sizeof(**out), fill_disk, release_disks, (void **)out, n) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		if (disk_images(j, job_id, &(*out)[i].plan) < 0) {
			sm_disk_rows_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
	}
	return 0;
}

static void fill_step(struct row *rw, void *p)
{
	struct sm_step_row *r = p;

	rw->what = "step: ";
	r->phase = row_text(rw, 0, false);
	r->target = row_text(rw, 1, true);
	r->started_at = row_real(rw, 2, 0, ROW_TIME_MAX);
	r->finished_at = row_real(rw, 3, 0, ROW_TIME_MAX);
	r->error = row_text(rw, 4, true);
}

static void release_steps(void *p, size_t n)
{
	sm_step_rows_free(p, n);
}

int sm_journal_step_list(struct sm_journal *j, long long job_id, struct sm_step_row **out,
			 size_t *n)
{
	return collect(j, prepare(j, "SELECT phase, target, started_at, coalesce(finished_at, "
				  "0) AS finished_at, error FROM step WHERE job_id = ? ORDER BY id",
				  "i", job_id),
		       job_id, sizeof(**out), fill_step, release_steps, (void **)out, n);
}

static void fill_file(struct row *rw, void *p)
{
	struct sm_file_row *r = p;

	rw->what = "file: ";
	r->path = row_text(rw, 0, false);
	r->role = row_text(rw, 1, false);
	r->state = row_text(rw, 2, false);
}

static void release_files(void *p, size_t n)
{
	sm_file_rows_free(p, n);
}

int sm_journal_file_list(struct sm_journal *j, long long job_id, struct sm_file_row **out,
			 size_t *n)
{
	return collect(j, prepare(j, "SELECT path, role, state FROM file WHERE job_id = ? "
				  "ORDER BY rowid", "i", job_id),
		       job_id, sizeof(**out), fill_file, release_files, (void **)out, n);
}

int sm_journal_job_check(struct sm_journal *j, long long job_id)
{
	struct sm_job_row job;
	struct sm_disk_row *d = NULL;
	struct sm_step_row *st = NULL;
	struct sm_file_row *f = NULL;
	size_t nd = 0, ns = 0, nf = 0;
	int rc;

	j->malformed = false;
	rc = sm_journal_job_get(j, job_id, &job);
	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc <= 0)
		return rc == -2 ? -2 : -1;
	sm_job_row_release(&job);
	rc = sm_journal_disk_list(j, job_id, &d, &nd) < 0 ||
	     sm_journal_step_list(j, job_id, &st, &ns) < 0 ||
	     sm_journal_file_list(j, job_id, &f, &nf) < 0 ? -1 : 0;
	sm_disk_rows_free(d, nd);
	sm_step_rows_free(st, ns);
	sm_file_rows_free(f, nf);
	return rc < 0 && j->malformed ? -2 : rc;
}

void sm_job_row_release(struct sm_job_row *r)
{
	if (!r)
		return;
	free(r->domain_name);
	free(r->domain_uuid);
	free(r->dest_dir);
	free(r->copy_method);
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
