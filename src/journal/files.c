/* files.c: the journal's record of every file a job planned, created, kept
 * or removed (table file), so failure can undo it and cleanup can finish.
 */
#include "journal.h"
#include "journal/internal.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

SM_ENUM_IMPL(file_role, enum sm_file_role, SM_FILE_ROLE_LAST,
	     "src_overlay", "dst_overlay", "dst_image", "kept_overlay", "src_image")

SM_ENUM_IMPL(file_state, enum sm_file_state, SM_FILE_STATE_LAST,
	     "planned", "creating", "created", "kept", "removed", "deleting", "deleted")

int sm_journal_file_set(struct sm_journal *j, long long job_id, const char *path,
			const char *role, const char *state)
{
	return sm_journal_sql(j, "INSERT INTO file (job_id, path, role, state) VALUES (?,?,?,?) "
		   "ON CONFLICT (job_id, path) DO UPDATE SET state = excluded.state",
		   "isss", job_id, path, role, state);
}

int sm_journal_file_state(struct sm_journal *j, long long job_id, const char *path,
			  char **state)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT state FROM file WHERE job_id = ? AND path = ?",
				   "is", job_id, path);
	int rc;

	*state = NULL;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*state = journal_col_text(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : journal_db_error(j, "cannot read files");
}

static void fill_file(struct row *rw, void *p)
{
	struct sm_file_row *r = p;

	rw->what = "file: ";
	r->path = journal_row_text(rw, 0, false);
	r->role = journal_row_text(rw, 1, false);
	r->state = journal_row_text(rw, 2, false);
}

static void release_files(void *p, size_t n)
{
	sm_file_rows_free(p, n);
}

int sm_journal_file_list(struct sm_journal *j, long long job_id, struct sm_file_row **out,
			 size_t *n)
{
	return journal_collect(j, journal_prepare(j, "SELECT path, role, state FROM file WHERE job_id = ? "
				  "ORDER BY rowid", "i", job_id),
		       job_id, sizeof(**out), fill_file, release_files, (void **)out, n);
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

int sm_journal_file_put(struct sm_journal *j, long long job_id, const char *path,
			enum sm_file_role role, enum sm_file_state state)
{
	return sm_journal_file_set(j, job_id, path, sm_file_role_name(role),
				   sm_file_state_name(state));
}

int sm_journal_file_get_state(struct sm_journal *j, long long job_id, const char *path,
			      enum sm_file_state *state)
{
	SM_AUTOFREE char *name = NULL;
	int v;

	if (sm_journal_file_state(j, job_id, path, &name) < 0)
		return -1;
	if (!name)
		return 0;
	v = sm_file_state_from_name(name);
	if (v < 0) {
		struct row rw = { .job = job_id };

		journal_row_bad(&rw, "file: unknown file state '%.64s'", name);
		journal_row_malformed(j, &rw);
		return -2;
	}
	*state = (enum sm_file_state)v;
	return 1;
}

int sm_file_row_role(const struct sm_file_row *r)
{
	return sm_file_role_from_name(r->role);
}

int sm_file_row_state(const struct sm_file_row *r)
{
	return sm_file_state_from_name(r->state);
}
