/* hook_facts.h: a job's hooks: the facts of struct sm_jobctx handed to
 * src/hooks.c, and its verdict recorded on the job.
 */
#ifndef SM_JOB_HOOK_FACTS_H
#define SM_JOB_HOOK_FACTS_H

struct sm_jobctx;

/* Run the hooks of point for job c.  For a before_* point returns -1 with an
 * error naming the hook and its stderr when one vetoes (and sets
 * c->vetoed); otherwise 0, reporting failures as warnings. */
int sm_job_hooks_run(struct sm_jobctx *c, const char *point);

#endif
