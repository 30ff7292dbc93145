/* resume.c: 'snapmove resume JOB': finish an interrupted move, live when the
 * domain runs (the phases, runner.c), offline when it is shut off (offline.c).
 */
#include "job/resume.h"
#include "job/hook_facts.h"
#include "lock.h"
#include "job/reconcile.h"
#include "events.h"
#include "util.h"

#include <string.h>

static void print_outcome(const struct sm_jobctx *c, const char *what)
{
	fprintf(sm_human(), "%s job %lld of domain %s\n", what, c->job, c->domain_name);
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		bool ovl = c->keep_overlay;

		fprintf(sm_human(), "  %s now:", p->target);
		if (ovl)
			fprintf(sm_human(), " %s (qcow2) <-", p->dst_overlay);
		for (size_t k = 0; k < p->nimages; k++)
			fprintf(sm_human(), "%s %s (%s)", k ? " <-" : "", p->images[k].dst, p->images[k].dst_format);
		if (p->kept)
			fprintf(sm_human(), " <- %s (%s)", p->kept, p->kept_format);
		fprintf(sm_human(), "\n");
	}
}

enum sm_move_result sm_resume(struct sm_virt *v, struct sm_journal *j, long long job_id,
			      struct sm_progress *pr)
{
	struct sm_jobctx c;
	struct sm_job_lock lock;
	enum sm_move_result ret = SM_MOVE_REFUSED;

	memset(&c, 0, sizeof(c));
	if (sm_job_open_existing(&c, v, j, job_id, pr, &lock, "resume") < 0)
		goto cleanup;
	/* libvirt's "shut off" is a claim: prove it before working offline. */
	if (!c.running && sm_reconcile_job_off(&c, "resume") < 0)
		goto cleanup;
	if (!c.dom) {
		sm_job_report_gone(&c);
		sm_error("job %lld cannot go on: its domain '%s' no longer exists; start a domain "
			 "of that name on the files listed, then run 'snapmove resume %lld'",
			 job_id, c.domain_name, job_id);
		ret = SM_MOVE_FAILED;
		goto cleanup;
	}
	sm_progress_say(pr, "job %lld: resuming the move of %zu disk%s of %s to %s", c.job,
			c.nplans, c.nplans == 1 ? "" : "s", c.domain_name, c.dest);
	if (sm_reconcile(&c) < 0 || sm_reconcile_refuse_streamed(&c, "resume") < 0 ||
	    (!c.running && sm_reconcile_offline_pivots(&c, "resume") < 0)) {
		if (c.acted) {  /* it corrected the definition: a failure, recorded */
			ret = SM_MOVE_FAILED;
			/* Already failing (or vetoed): a journal that fails too leaves the job
			 * running, which resume and abort treat like failed. */
			sm_ignore_value(sm_journal_job_finish(j, c.job, SM_JOB_FAILED, sm_error_message()));
		}
		goto cleanup;
	}
	ret = SM_MOVE_FAILED;
	if (sm_journal_job_finish(j, c.job, SM_JOB_RUNNING, NULL) < 0)
		goto cleanup;
	if (c.running) {
		if (sm_job_run(&c, SM_JOB_ORDER_RESUME) < 0) {
			ret = c.vetoed ? SM_MOVE_VETOED
			      : sm_interrupted ? SM_MOVE_INTERRUPTED : SM_MOVE_FAILED;
			goto cleanup;
		}
	} else if (sm_job_complete_offline(&c) < 0) {
		goto cleanup;
	}
	if (sm_job_close(&c, SM_JOB_DONE) < 0)
		goto cleanup;
	sm_job_hooks_run(&c, "after_move");
	print_outcome(&c, "finished");
	if (c.delete_source)
		sm_job_delete_source(&c);
	sm_job_unlock(&lock, 1);
	ret = SM_MOVE_OK;

cleanup:
	if (c.job)
		sm_job_emit_result(&c, sm_move_status_name(ret), sm_move_exit_code(ret),
				   ret == SM_MOVE_OK ? NULL : sm_error_message());
	sm_job_unlock(&lock, 0);
	sm_jobctx_release(&c);
	return ret;
}
