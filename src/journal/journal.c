/* journal.c: the SQLite journal's core: where it lives and who may touch it,
 * opening it and upgrading its schema, transactions, and the statement
 * helpers the other journal files (rows.c, jobs.c, files.c, images.c,
 * rebalance.c) and srcfile.c use.  It stores and answers; deciding what a
 * row means for a move is the job engine's.
 */
#include "journal.h"
#include "journal/internal.h"
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

int journal_db_error(struct sm_journal *j, const char *what)
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
sqlite3_stmt *journal_prepare_v(struct sm_journal *j, const char *sql, const char *types,
			       va_list ap)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
		journal_db_error(j, "cannot prepare a statement");
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
			journal_db_error(j, "cannot bind a value");
			sqlite3_finalize(st);
			return NULL;
		}
	}
	return st;
}

sqlite3_stmt *journal_prepare(struct sm_journal *j, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, types);
	st = journal_prepare_v(j, sql, types, ap);
	va_end(ap);
	return st;
}

/* Run one statement that returns no rows. */
static int run_v(struct sm_journal *j, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = journal_prepare_v(j, sql, types, ap);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : journal_db_error(j, "cannot write");
}


char *journal_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? sm_xstrdup((const char *)s) : NULL;
}

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
	/* No link left: SQLite deleted it (the -wal of a connection that
	 * another snapmove closed) between the open and the fstat. */
	if (S_ISREG(sb.st_mode) && sb.st_nlink == 0) {
		ret = 0;
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
	sqlite3_stmt *st = journal_prepare(j, "PRAGMA user_version", "");

	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return journal_db_error(j, "cannot read the schema version");
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
	st = journal_prepare_v(j, sql, types, ap);
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
		return journal_db_error(j, "cannot read");
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
