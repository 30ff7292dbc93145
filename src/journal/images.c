/* images.c: the copier's records in the journal: each image's copy method,
 * its durable (and verified) chunks, and where its copy stands.
 */
#include "journal.h"
#include "journal/internal.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

int sm_journal_image_set_method(struct sm_journal *j, long long job_id, const char *target,
				size_t depth, const char *method, unsigned long long chunk_size)
{
	return IN_TX(j, sm_journal_sql(j, "UPDATE image SET copy_method = ?, chunk_size = ? WHERE "
			    "job_id = ? AND target = ? AND depth = ?", "siisi", method,
			    (long long)chunk_size, job_id, target, (long long)depth));
}

int sm_journal_image_set_diskseq(struct sm_journal *j, long long job_id, const char *target,
				 size_t depth, unsigned long long diskseq)
{
	return IN_TX(j, sm_journal_sql(j, "UPDATE image SET dst_diskseq = ? WHERE job_id = ? AND "
			    "target = ? AND depth = ?", "iisi", (long long)diskseq, job_id, target,
			    (long long)depth));
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
	st = journal_prepare(j, "INSERT OR REPLACE INTO chunk (job_id, target, depth, idx, offset, "
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
			ret = journal_db_error(j, "cannot bind a value");
			continue;
		}
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			ret = journal_db_error(j, "cannot write");
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
	c->index = (unsigned long long)journal_row_int(rw, 0, 0, ROW_SIZE_MAX);
	c->offset = (unsigned long long)journal_row_int(rw, 1, 0, ROW_SIZE_MAX);
	c->length = (unsigned long long)journal_row_int(rw, 2, 1, 1LL << 40);
	c->data_bytes = (unsigned long long)journal_row_int(rw, 3, 0, (long long)c->length);
	sum = journal_row_text(rw, 4, false);
	if (sum && (strlen(sum) != 16 || strspn(sum, "0123456789abcdef") != 16))
		journal_row_bad(rw, "chunk: checksum '%.20s' is not 16 hex digits", sum);
	snprintf(c->checksum, sizeof(c->checksum), "%s", sum ? sum : "");
	free(sum);
	c->verified = journal_row_bool(rw, 5);
}

static void release_chunks(void *p, size_t n)
{
	(void)n;
	free(p);
}

int sm_journal_chunk_list(struct sm_journal *j, long long job_id, const char *target,
			  size_t depth, struct sm_journal_chunk **out, size_t *n)
{
	return journal_collect(j, journal_prepare(j, "SELECT idx, offset, length, data_bytes, checksum, "
				  "verified FROM chunk WHERE job_id = ? AND target = ? AND depth = ? ORDER BY idx",
				  "isi", job_id, target, (long long)depth),
		       job_id, sizeof(**out), fill_chunk, release_chunks, (void **)out, n);
}

int sm_journal_chunk_forget(struct sm_journal *j, long long job_id, const char *target,
			    size_t depth)
{
	return sm_journal_sql(j, "DELETE FROM chunk WHERE job_id = ? AND target = ? AND depth = ?", "isi",
		   job_id, target, (long long)depth);
}

int sm_journal_image_progress(struct sm_journal *j, long long job_id, const char *target,
			      size_t depth, enum sm_image_state *state,
			      unsigned long long *chunks_done)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT state, (SELECT count(*) FROM chunk c WHERE "
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
		char *name = journal_row_enum(&rw, 0, "image state", sm_image_state_from_name);
		long long count = sqlite3_column_int64(st, 1);
		long long next = sqlite3_column_int64(st, 2);

		*state = SM_IMAGE_PLANNED;
		if (rw.why[0]) {
			free(name);
			sqlite3_finalize(st);
			return journal_row_malformed(j, &rw);
		}
		*state = (enum sm_image_state)sm_image_state_from_name(name);
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
