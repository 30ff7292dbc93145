/* existing.c: the opening shared by resume and abort (refuse a finished job,
 * take its lock, load it), and where the data of a job whose domain is gone
 * is (for the result; src/report.c prints it).
 */
#include "job/job_run.h"
#include "lock.h"
#include "job/reconcile.h"
#include "log.h"
#include "util.h"
#include <sys/stat.h>

int sm_job_open_existing(struct sm_jobctx *c, struct sm_virt *v, struct sm_journal *j,
			 long long job_id, struct sm_progress *pr, struct sm_job_lock *lock,
			 const char *verb)
{
	struct sm_job_row row;
	int rc;

	lock->fd = -1;
	rc = sm_journal_job_get(j, job_id, &row);
	if (rc <= 0) {
		if (rc == 0)
			sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
		return -1;
	}
	if (sm_job_row_state(&row) == SM_JOB_DONE || sm_job_row_state(&row) == SM_JOB_ABORTED) {
		sm_error("job %lld is %s; there is nothing to %s", job_id, row.state, verb);
		sm_job_row_release(&row);
		return -1;
	}
	sm_job_row_release(&row);
	/* Nothing is done for a job of which any row was edited or damaged. */
	if (sm_journal_job_check(j, job_id) < 0 || sm_job_lock(j, job_id, lock) < 0)
		return -1;
	if (sm_jobctx_load(c, v, j, job_id, pr) < 0)
		goto error;
	sm_log_job(LOG_INFO, job_id, c->domain_name, "%s started", verb);
	return 0;

error:
	sm_job_unlock(lock, 0);
	return -1;
}

/* A chain of disk p: top, then p's images from 'from' (destination or
 * source), then the image the job kept in place. */
static void chain_of(struct sm_result_disk *d, enum sm_result_where where, const char *top,
		     const char *top_format, const struct sm_plan_disk *p, bool dst, size_t from)
{
	d->where = where;
	sm_result_chain_add(&d->after, top, top_format);
	for (size_t k = from; k < p->nimages; k++)
		sm_result_chain_add(&d->after, dst ? p->images[k].dst : p->images[k].src,
				    dst ? p->images[k].dst_format : p->images[k].format);
	if (p->kept)
		sm_result_chain_add(&d->after, p->kept, p->kept_format);
}

void sm_job_locate_gone(const struct sm_jobctx *c, struct sm_job_result *r)
{
	r->gone = true;
	sm_job_result_init_disks(c, r);
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		struct sm_result_disk *d = &r->disks[i];
		struct stat sb;

		if (c->disks[i].state >= SM_DISK_COLLAPSED)
			chain_of(d, SM_WHERE_MOVED, p->images[0].dst, p->images[0].dst_format, p,
				 true, 1);
		else if (c->disks[i].state >= SM_DISK_PIVOTED || (c->disks[i].pivoting &&
							     lstat(p->dst_overlay, &sb) == 0))
			chain_of(d, c->disks[i].state >= SM_DISK_PIVOTED ? SM_WHERE_DST_OVERLAY
				 : SM_WHERE_PIVOTING, p->dst_overlay, "qcow2", p, true, 0);
		else if (c->disks[i].state >= SM_DISK_SNAPSHOTTED && lstat(p->src_overlay, &sb) == 0)
			chain_of(d, SM_WHERE_SRC_OVERLAY, p->src_overlay, "qcow2", p, false, 0);
		else
			chain_of(d, SM_WHERE_ORIGINAL, p->images[0].src, p->images[0].format, p,
				 false, 1);
	}
}
