/* cleanup.c: delete the source images of a done job that nothing uses, and
 * forget finished jobs.  Never a file another domain or image refers to.
 */
#include "cleanup.h"
#include "chain/usage.h"
#include "lock.h"
#include "pool.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sm_cleanup_items_free(struct sm_cleanup_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].path);
		free(items[i].blocker);
	}
	free(items);
}

struct candidates {
	struct sm_cleanup_item *items;
	size_t n;
};

/* A user that is itself a candidate going away does not block. */
static int is_candidate(const char *user, void *ctx)
{
	struct candidates *c = ctx;

	for (size_t i = 0; i < c->n; i++) {
		SM_AUTOFREE char *img = sm_xasprintf("image '%s'", c->items[i].path);

		if (!c->items[i].blocker && sm_str_eq(user, img))
			return 1;
	}
	return 0;
}

static int job_done(struct sm_journal *j, long long job_id)
{
	struct sm_job_row job;
	int rc = sm_journal_job_get(j, job_id, &job), ret = -1;

	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc <= 0)
		return -1;
	if (sm_str_eq(job.state, "aborted"))
		sm_error("job %lld is aborted: only the source of a finished move can be "
			 "deleted, and an aborted job's source is its domain's disks again",
			 job_id);
	else if (!sm_str_eq(job.state, "done"))
		sm_error("job %lld is %s: only the source of a finished move can be deleted; "
			 "finish the move first with 'snapmove resume %lld'", job_id, job.state,
			 job_id);
	else
		ret = sm_journal_job_check(j, job_id) < 0 ? -1 : 0;
	sm_job_row_release(&job);
	return ret;
}

/* Append the images below a flattened disk's top (from the qcow2 headers)
 * to its plan, as if each had been moved. */
void sm_cleanup_expand_flat(struct sm_plan_disk *p)
{
	char *cur = sm_xstrdup(p->images[0].src);

	for (int depth = 0; depth < 64; depth++) {
		char *next = sm_qcow2_backing_path(cur);

		free(cur);
		if (!next)
			return;
		p->images = sm_xrealloc(p->images, (p->nimages + 1) * sizeof(*p->images));
		memset(&p->images[p->nimages], 0, sizeof(*p->images));
		p->images[p->nimages++].src = sm_xstrdup(next);
		cur = next;
	}
	free(cur);
}

int sm_cleanup_plan(struct sm_virt *v, struct sm_journal *j, long long job_id,
		    struct sm_cleanup_item **items, size_t *n)
{
	struct sm_disk_row *disks = NULL;
	struct sm_usage usage = { 0 };
	struct candidates c = { 0 };
	size_t nd = 0;
	bool changed = true;
	int ret = -1;

	*items = NULL;
	*n = 0;
	if (job_done(j, job_id) < 0 || sm_journal_disk_list(j, job_id, &disks, &nd) < 0 ||
	    sm_usage_scan_domains(sm_virt_conn(v), &usage) < 0)
		goto cleanup;
	for (size_t i = 0; i < nd; i++) {
		struct sm_plan_disk *p = &disks[i].plan;

		/* A flattened disk moved its whole chain: the source chain below
		 * the top is the job's too (shared images are kept below). */
		if (p->flat)
			sm_cleanup_expand_flat(p);
		for (size_t k = 0; k < disks[i].plan.nimages; k++) {
			const char *src = disks[i].plan.images[k].src;
			SM_AUTOFREE char *dir = sm_path_dirname(src);
			struct stat sb;

			if (lstat(src, &sb) < 0)
				continue;  /* deleted already */
			c.items = sm_xrealloc(c.items, (c.n + 1) * sizeof(*c.items));
			c.items[c.n++] = (struct sm_cleanup_item){
				.path = sm_xstrdup(src),
				.bytes = (unsigned long long)sb.st_blocks * 512ULL,
			};
			if (sm_usage_scan_dir(dir, &usage) < 0)
				goto cleanup;
		}
	}
	/* Until nothing changes: an image is blocked when a user other than a
	 * candidate still going away uses it. */
	while (changed) {
		changed = false;
		for (size_t i = 0; i < c.n; i++) {
			const char *user;

			if (c.items[i].blocker)
				continue;
			user = sm_usage_other_user(&usage, c.items[i].path, is_candidate, &c);
			if (user) {
				c.items[i].blocker = sm_xstrdup(user);
				changed = true;
			}
		}
	}
	*items = sm_steal(&c.items);
	*n = c.n;
	ret = 0;

cleanup:
	sm_cleanup_items_free(c.items, c.items ? c.n : 0);
	sm_disk_rows_free(disks, nd);
	sm_usage_release(&usage);
	return ret;
}

int sm_cleanup_run(struct sm_virt *v, struct sm_journal *j, long long job_id,
		   struct sm_progress *pr, unsigned long long *freed)
{
	struct sm_cleanup_item *items = NULL;
	size_t n = 0;
	char **dirs = NULL;
	size_t ndirs = 0;
	char b[32];
	int ret = -1;

	*freed = 0;
	if (sm_cleanup_plan(v, j, job_id, &items, &n) < 0)
		return -1;
	dirs = sm_xcalloc(n + 1, sizeof(*dirs));
	for (size_t i = 0; i < n; i++) {
		if (items[i].blocker) {
			sm_progress_say(pr, "  kept %s: used by %s", items[i].path, items[i].blocker);
			continue;
		}
		if (SM_JOURNAL_TX(j, sm_journal_file_set(j, job_id, items[i].path, "src_image",
							 "deleting")) < 0)
			goto cleanup;
		if (unlink(items[i].path) < 0 && errno != ENOENT) {
			sm_error("cannot delete '%s': %s", items[i].path, strerror(errno));
			goto cleanup;
		}
		if (SM_JOURNAL_TX(j, sm_journal_file_set(j, job_id, items[i].path, "src_image",
							 "deleted")) < 0)
			goto cleanup;
		*freed += items[i].bytes;
		dirs[ndirs++] = sm_path_dirname(items[i].path);
		sm_progress_say(pr, "  deleted %s (%s)", items[i].path,
				sm_format_bytes(items[i].bytes, b, sizeof(b)));
	}
	if (ndirs && sm_pool_refresh_dirs(sm_virt_conn(v), (const char *const *)dirs, ndirs) < 0)
		sm_progress_say(pr, "warning: %s", sm_error_message());
	ret = 0;

cleanup:
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	sm_cleanup_items_free(items, n);
	return ret;
}

/* A job whose journal rows are malformed cannot be resumed, aborted or
 * cleaned up; forgetting it is the way out the error offers.  Only its
 * records go (never a file), and not while a snapmove process runs it. */
static int forget_malformed(struct sm_journal *j, long long job_id)
{
	struct sm_job_lock lock;
	int ret;

	if (sm_job_lock(j, job_id, &lock) < 0)
		return -1;
	ret = sm_journal_job_delete(j, job_id);
	sm_job_unlock(&lock, ret == 0);
	return ret;
}

int sm_job_forget(struct sm_journal *j, long long job_id)
{
	struct sm_job_row job;
	int rc = sm_journal_job_get(j, job_id, &job), ret = -1;

	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc == -2)  /* malformed: dropped whatever its state, files left as they are */
		return forget_malformed(j, job_id);
	if (rc <= 0)
		return -1;
	if (!sm_str_eq(job.state, "done") && !sm_str_eq(job.state, "aborted") &&
	    sm_journal_job_check(j, job_id) == -2) {
		sm_job_row_release(&job);
		return forget_malformed(j, job_id);
	}
	if (!sm_str_eq(job.state, "done") && !sm_str_eq(job.state, "aborted"))
		sm_error("job %lld is %s; finish it with 'snapmove resume %lld' or undo it with "
			 "'snapmove abort %lld' before forgetting it", job_id, job.state, job_id,
			 job_id);
	else
		ret = sm_journal_job_delete(j, job_id);
	sm_job_row_release(&job);
	return ret;
}
