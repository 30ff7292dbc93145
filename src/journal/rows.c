/* rows.c: reading journal rows back, checked.  The journal is the caller's
 * file, but it can be edited by hand or damaged: every value is checked
 * against what this version writes before anything uses it.  The job files
 * (jobs.c, files.c, images.c) read their rows with these helpers; the tables
 * of other modules (the rebalance's) with the cursor.
 */
#include "journal.h"
#include "journal/internal.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>

void journal_row_bad(struct row *r, const char *fmt, ...)
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
char *journal_row_text(struct row *r, int i, bool null_ok)
{
	int type = sqlite3_column_type(r->st, i);
	const unsigned char *s;

	if (type == SQLITE_NULL) {
		if (!null_ok)
			journal_row_bad(r, "%s%s is NULL", r->what, row_name(r, i));
		return NULL;
	}
	if (type != SQLITE_TEXT) {
		journal_row_bad(r, "%s%s is not text", r->what, row_name(r, i));
		return NULL;
	}
	s = sqlite3_column_text(r->st, i);
	if (!s || (!null_ok && !*s)) {
		journal_row_bad(r, "%s%s is empty", r->what, row_name(r, i));
		return NULL;
	}
	return sm_xstrdup((const char *)s);
}

long long journal_row_int(struct row *r, int i, long long min, long long max)
{
	int type = sqlite3_column_type(r->st, i);
	long long v;

	if (type != SQLITE_INTEGER) {
		journal_row_bad(r, "%s%s is %s", r->what, row_name(r, i),
			type == SQLITE_NULL ? "NULL" : "not a whole number");
		return min;
	}
	v = sqlite3_column_int64(r->st, i);
	if (v < min || v > max) {
		journal_row_bad(r, "%s%s is out of range (%lld)", r->what, row_name(r, i), v);
		return min;
	}
	return v;
}

bool journal_row_bool(struct row *r, int i)
{
	return journal_row_int(r, i, 0, 1) != 0;
}

/* Sizes and offsets: never negative, and far from overflowing when added. */
#define ROW_SIZE_MAX (1LL << 62)
/* Times: seconds since the epoch, before the year 5000. */
#define ROW_TIME_MAX 95617584000.0

double journal_row_real(struct row *r, int i, double min, double max)
{
	int type = sqlite3_column_type(r->st, i);
	double v;

	if (type != SQLITE_INTEGER && type != SQLITE_FLOAT) {
		journal_row_bad(r, "%s%s is %s", r->what, row_name(r, i),
			type == SQLITE_NULL ? "NULL" : "not a number");
		return min;
	}
	v = sqlite3_column_double(r->st, i);
	if (!(v >= min && v <= max)) {  /* NaN too */
		journal_row_bad(r, "%s%s is out of range (%g)", r->what, row_name(r, i), v);
		return min;
	}
	return v;
}


/* A name of one of job.h's enums (what: "phase", "state"). */
char *journal_row_enum(struct row *r, int i, const char *what,
		      int (*from_name)(const char *))
{
	char *s = journal_row_text(r, i, false);

	if (s && from_name(s) < 0)
		journal_row_bad(r, "%sunknown %s '%.64s'", r->what, what, s);
	return s;
}

/* The error for a row that failed (r->why). */
int journal_row_malformed(struct sm_journal *j, const struct row *r)
{
	j->malformed = true;
	sm_error("journal row of job %lld is malformed (%s); the journal may have been "
		 "edited: 'snapmove forget %lld' or restore it (journal '%s')", r->job, r->why,
		 r->job, j->path);
	return -1;
}
/* Collect every row of st with fill(), growing an array of elem_size items;
 * on a malformed row, release() what was collected and fail. */
int journal_collect(struct sm_journal *j, sqlite3_stmt *st, long long job, size_t elem_size,
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
		return journal_row_malformed(j, &rw);
	}
	*out = arr;
	*n = count;
	if (rc != SQLITE_DONE)
		return journal_db_error(j, "cannot read");
	return 0;
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
	st = journal_prepare_v(j, sql, types, ap);
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
		journal_db_error(c->j, "cannot read");
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
	return journal_row_int(&c->rw, col, min, max);
}

bool sm_journal_cursor_bool(struct sm_journal_cursor *c, int col)
{
	return journal_row_bool(&c->rw, col);
}

char *sm_journal_cursor_text(struct sm_journal_cursor *c, int col, bool null_ok)
{
	return journal_row_text(&c->rw, col, null_ok);
}

int sm_journal_cursor_enum(struct sm_journal_cursor *c, int col, const char *what,
			   int (*from_name)(const char *))
{
	char *s = journal_row_enum(&c->rw, col, what, from_name);
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
	journal_row_bad(&c->rw, "%s%s", c->what, why);
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
