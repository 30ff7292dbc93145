/* resume.c: 'snapmove resume JOB': finish an interrupted move, live when the
 * domain runs (the phases, runner.c), offline when it is shut off (offline.c).
 */
#include "job/resume.h"
#include "job/hook_facts.h"
#include "job/provdev.h"
#include "lock.h"
#include "job/reconcile.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

enum sm_move_result sm_resume(struct sm_virt *v, struct sm_journal *j, long long job_id,
			      struct sm_progress *pr, struct sm_job_result *r)
{
	struct sm_jobctx c;
	struct sm_job_lock lock;
	enum sm_move_result ret = SM_MOVE_REFUSED;

	memset(&c, 0, sizeof(c));
	r->verb = SM_JOB_VERB_RESUME;
	if (sm_job_open_existing(&c, v, j, job_id, pr, &lock, "resume") < 0 ||
	    sm_provdev_check_assigned(j, job_id) < 0)
		goto cleanup;
	/* libvirt's "shut off" is a claim: prove it before working offline. */
	if (!c.running && sm_reconcile_job_off(&c, "resume") < 0)
		goto cleanup;
	if (!c.dom) {
		sm_job_locate_gone(&c, r);
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
	r->delete_source = c.delete_source;
	ret = SM_MOVE_OK;

cleanup:
	return sm_job_end(&c, &lock, ret, r);
}
