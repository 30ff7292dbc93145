/* journal/rebalance.c: the rows of rebalances and the moves they plan
 * (tables rebalance, rebalance_move), written and read back checked.  What a
 * row means for the rebalance is balance/rebalance.c's.
 */
#include "journal.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

SM_ENUM_IMPL(rebalance_state, enum sm_rebalance_state, SM_REBALANCE_STATE_LAST,
	     "running", "done", "failed")

SM_ENUM_IMPL(rmove_state, enum sm_rmove_state, SM_RMOVE_STATE_LAST,
	     "planned", "running", "done", "failed")

static int insert(struct sm_journal *j, const char *goal, const struct sm_rebalance_row *r,
		  long long *id)
{
	long long floor;

	if (sm_journal_next_job_id(j, &floor) < 0 ||
	    sm_journal_sql(j, "INSERT INTO rebalance (goal, state, max_parallel, bandwidth_mib, "
			   "stop_on_error, job_floor, created_at) VALUES (?,?,?,?,?,?,?)", "ssiiiid",
			   goal, sm_rebalance_state_name(SM_REBALANCE_STATE_RUNNING),
			   (long long)r->max_parallel, (long long)r->bandwidth_mib,
			   (long long)r->stop_on_error, floor - 1, sm_now()) < 0)
		return -1;
	*id = sm_journal_last_id(j);
	for (size_t i = 0; i < r->nmoves; i++) {
		const struct sm_rebalance_move_row *m = &r->moves[i];

		if (sm_journal_sql(j, "INSERT INTO rebalance_move (rebalance_id, seq, domain, disk, "
				   "running, from_storage, to_dir, bytes, state) VALUES "
				   "(?,?,?,?,?,?,?,?,?)", "iississis", *id, m->seq,
				   m->domain, m->disk, (long long)m->running, m->from, m->to_dir,
				   (long long)m->bytes, sm_rmove_state_name(SM_RMOVE_PLANNED)) < 0)
			return -1;
	}
	return 0;
}

int sm_journal_rebalance_insert(struct sm_journal *j, const char *goal,
				const struct sm_rebalance_row *r, long long *id)
{
	return SM_JOURNAL_TX(j, insert(j, goal, r, id));
}

int sm_journal_rebalance_move_set(struct sm_journal *j, long long id, long long seq,
				  enum sm_rmove_state state, long long job_id, const char *error)
{
	return SM_JOURNAL_TX(j, sm_journal_sql(j, "UPDATE rebalance_move SET state = ?, "
					       "job_id = ?, error = ? WHERE rebalance_id = ? AND "
					       "seq = ?", "sisii", sm_rmove_state_name(state),
					       job_id, error, id, seq));
}

int sm_journal_rebalance_finish(struct sm_journal *j, long long id,
				enum sm_rebalance_state state)
{
	return SM_JOURNAL_TX(j, sm_journal_sql(j, "UPDATE rebalance SET state = ?, "
					       "finished_at = ? WHERE id = ?", "sdi",
					       sm_rebalance_state_name(state), sm_now(), id));
}

/* What to do about a malformed row of a rebalance. */
#define MALFORMED_ADVICE "restore it, or plan a new rebalance (one that ran is kept for audit)"

/* Sizes: never negative, far from overflowing when added. */
#define ROW_BYTES_MAX (1LL << 62)

/* An absolute folder, or a problem noted. */
static char *row_dir(struct sm_journal_cursor *c, int col, const char *name)
{
	char *s = sm_journal_cursor_text(c, col, false);

	if (s && s[0] != '/')
		sm_journal_cursor_bad(c, "%s is not an absolute path", name);
	return s;
}

static void move_row_release(struct sm_rebalance_move_row *m)
{
	free(m->domain);
	free(m->disk);
	free(m->from);
	free(m->to_dir);
	memset(m, 0, sizeof(*m));
}

void sm_journal_rebalance_row_release(struct sm_rebalance_row *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nmoves; i++)
		move_row_release(&r->moves[i]);
	free(r->moves);
	memset(r, 0, sizeof(*r));
}

static int load_options(struct sm_journal *j, long long id, struct sm_rebalance_row *out)
{
	struct sm_journal_cursor *c = sm_journal_cursor_open(
		j, "rebalance", id, "SELECT max_parallel, bandwidth_mib, stop_on_error, job_floor, "
		"state FROM rebalance WHERE id = ?", "i", id);
	bool found = false;
	int rc;

	if (!c)
		return -1;
	if (sm_journal_cursor_next(c) == 1) {
		found = true;
		out->max_parallel = (unsigned)sm_journal_cursor_int(c, 0, 1,
								    SM_REBALANCE_MAX_PARALLEL);
		out->bandwidth_mib = (unsigned long long)sm_journal_cursor_int(c, 1, 0, 1LL << 30);
		out->stop_on_error = sm_journal_cursor_bool(c, 2);
		out->job_floor = sm_journal_cursor_int(c, 3, 0, INT64_MAX);
		(void)sm_journal_cursor_enum(c, 4, "state", sm_rebalance_state_from_name);
	}
	rc = sm_journal_cursor_close(c, MALFORMED_ADVICE);
	if (rc == 0 && !found) {
		sm_error("no rebalance %lld in the journal '%s'", id, sm_journal_path(j));
		rc = -1;
	}
	return rc;
}

static int load_moves(struct sm_journal *j, long long id, struct sm_rebalance_row *out)
{
	struct sm_journal_cursor *c = sm_journal_cursor_open(
		j, "rebalance", id, "SELECT seq, domain, disk, running, from_storage, to_dir, "
		"bytes, state, job_id FROM rebalance_move WHERE rebalance_id = ? ORDER BY seq",
		"i", id);

	if (!c)
		return -1;
	while (sm_journal_cursor_next(c) == 1) {
		struct sm_rebalance_move_row *m;
		char what[40];

		out->moves = sm_xrealloc(out->moves, (out->nmoves + 1) * sizeof(*out->moves));
		m = &out->moves[out->nmoves++];
		memset(m, 0, sizeof(*m));
		sm_journal_cursor_what(c, "move: ");
		m->seq = sm_journal_cursor_int(c, 0, 1, INT32_MAX);
		if (m->seq > 0) {
			snprintf(what, sizeof(what), "move %lld: ", m->seq);
			sm_journal_cursor_what(c, what);
		}
		m->domain = sm_journal_cursor_text(c, 1, false);
		m->disk = sm_journal_cursor_text(c, 2, false);
		m->running = sm_journal_cursor_bool(c, 3);
		m->from = row_dir(c, 4, "from_storage");
		m->to_dir = row_dir(c, 5, "to_dir");
		m->bytes = (unsigned long long)sm_journal_cursor_int(c, 6, 0, ROW_BYTES_MAX);
		m->state = (enum sm_rmove_state)sm_journal_cursor_enum(c, 7, "state",
								       sm_rmove_state_from_name);
		/* NULL or 0: none yet (set_move writes 0). */
		m->job = sm_journal_cursor_null(c, 8) ? 0 : sm_journal_cursor_int(c, 8, 0, INT64_MAX);
	}
	return sm_journal_cursor_close(c, MALFORMED_ADVICE);
}

int sm_journal_rebalance_load(struct sm_journal *j, long long id, struct sm_rebalance_row *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = load_options(j, id, out);
	if (rc == 0)
		rc = load_moves(j, id, out);
	if (rc < 0)
		sm_journal_rebalance_row_release(out);
	return rc;
}

int sm_journal_rebalance_unfinished(struct sm_journal *j, long long *id)
{
	struct sm_journal_cursor *c;
	struct sm_journal_rows rows;
	unsigned long long n = 0;
	int rc;

	*id = 0;
	/* A NULL or unknown state is not 'done': that row is the one. */
	if (sm_journal_query(j, "SELECT id FROM rebalance WHERE state IS NOT 'done' ORDER BY id "
			     "DESC LIMIT 1", "", &rows) < 0)
		return -1;
	/* An INTEGER PRIMARY KEY: always a whole number. */
	if (rows.nrows == 1 && sm_parse_ull(rows.cells[0], &n) == 0 && n <= INT64_MAX)
		*id = (long long)n;
	sm_journal_rows_release(&rows);
	if (*id <= 0)
		return 0;
	c = sm_journal_cursor_open(j, "rebalance", *id, "SELECT state FROM rebalance WHERE id = ?",
				   "i", *id);
	if (!c)
		return -1;
	if (sm_journal_cursor_next(c) == 1)
		(void)sm_journal_cursor_enum(c, 0, "state", sm_rebalance_state_from_name);
	rc = sm_journal_cursor_close(c, MALFORMED_ADVICE);
	return rc < 0 ? rc : 1;
}
