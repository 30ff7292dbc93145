/* existing.c: the opening shared by resume and abort (refuse a finished job,
 * take its lock, load it), and the report of where the data of a job whose
 * domain is gone is.
 */
#include "job/job_run.h"
#include "lock.h"
#include "job/reconcile.h"
#include "events.h"
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

static void print_chain_of(const char *target, const char *what, const char *top,
			   const char *top_format, const struct sm_plan_disk *p, bool dst,
			   size_t from)
{
	fprintf(sm_human(), "  %s: %s\n    %s (%s)", target, what, top, top_format);
	for (size_t k = from; k < p->nimages; k++)
		fprintf(sm_human(), " <- %s (%s)", dst ? p->images[k].dst : p->images[k].src,
		       dst ? p->images[k].dst_format : p->images[k].format);
	if (p->kept)
		fprintf(sm_human(), " <- %s (%s)", p->kept, p->kept_format);
	fprintf(sm_human(), "\n");
}

void sm_job_report_gone(const struct sm_jobctx *c)
{
	fprintf(sm_human(), "domain '%s' (%s) no longer exists: a transient domain that was shut down "
	       "or destroyed has no definition to rewrite.  Its data is here:\n",
	       c->domain_name, c->uuid);
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		struct stat sb;

		if (c->disks[i].state >= SM_DISK_COLLAPSED)
			print_chain_of(p->target, "moved; the destination chain", p->images[0].dst,
				       p->images[0].dst_format, p, true, 1);
		else if (c->disks[i].state >= SM_DISK_PIVOTED || (c->disks[i].pivoting &&
							     lstat(p->dst_overlay, &sb) == 0))
			print_chain_of(p->target, c->disks[i].state >= SM_DISK_PIVOTED
				       ? "the newest writes are in the destination overlay, over "
					 "the destination chain"
				       : "a pivot was under way: the newest writes are in the "
					 "destination overlay, over the destination chain (only if "
					 "that pivot never happened are they in the source overlay "
					 "instead)", p->dst_overlay, "qcow2", p, true, 0);
		else if (c->disks[i].state >= SM_DISK_SNAPSHOTTED && lstat(p->src_overlay, &sb) == 0)
			print_chain_of(p->target, "the newest writes are in the source overlay, "
				       "over the original chain", p->src_overlay, "qcow2", p,
				       false, 0);
		else
			print_chain_of(p->target, "the original chain, unchanged", p->images[0].src,
				       p->images[0].format, p, false, 1);
	}
	fprintf(sm_human(), "Start a domain named '%s' on those files, then run 'snapmove resume %lld' "
	       "or 'snapmove abort %lld'.\n", c->domain_name, c->job, c->job);
}
