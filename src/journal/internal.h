/* journal/internal.h: what the journal's files share and nobody else sees:
 * the handle, the statement helpers (journal.c) and the checked reading of
 * rows (rows.c).
 */
#ifndef SM_JOURNAL_INTERNAL_H
#define SM_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "journal.h"
#include "util.h"

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

#define IN_TX SM_JOURNAL_TX

/* Record the database's error for what ("cannot write"); returns -1. */
int journal_db_error(struct sm_journal *j, const char *what);
/* Prepare sql and bind arguments described by types: 'i' long long, 's' const
 * char * (NULL binds NULL), 'd' double. */
sqlite3_stmt *journal_prepare_v(struct sm_journal *j, const char *sql, const char *types,
				va_list ap);
sqlite3_stmt *journal_prepare(struct sm_journal *j, const char *sql, const char *types, ...);
char *journal_col_text(sqlite3_stmt *st, int i);

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

void journal_row_bad(struct row *r, const char *fmt, ...) SM_ATTR_PRINTF(2, 3);
/* A text value; NULL for SQL NULL when null_ok (else a problem, as an empty
 * text is). */
char *journal_row_text(struct row *r, int i, bool null_ok);
long long journal_row_int(struct row *r, int i, long long min, long long max);
bool journal_row_bool(struct row *r, int i);
double journal_row_real(struct row *r, int i, double min, double max);
/* A name of one of the enums (what: "phase", "state"), checked with from_name. */
char *journal_row_enum(struct row *r, int i, const char *what, int (*from_name)(const char *));
/* The error for a row that failed (r->why); returns -1. */
int journal_row_malformed(struct sm_journal *j, const struct row *r);
/* Collect every row of st with fill(), growing an array of elem_size items;
 * on a malformed row, release() what was collected and fail. */
int journal_collect(struct sm_journal *j, sqlite3_stmt *st, long long job, size_t elem_size,
		    void (*fill)(struct row *, void *), void (*release)(void *, size_t),
		    void **out, size_t *n);

/* Sizes and offsets: never negative, and far from overflowing when added. */
#define ROW_SIZE_MAX (1LL << 62)
/* Times: seconds since the epoch, before the year 5000. */
#define ROW_TIME_MAX 95617584000.0

#endif
