/* runner.c: the runner: runs a list of phases, journals each, fails a job
 * or a disk, reports where each disk is, and closes the job.  The phases
 * are in their own files (snapshot.c, mirror.c, copy.c, sync.c, collapse.c,
 * finalize.c); validation is move.c's; working out where an interrupted job
 * stands is reconcile.c's; undoing is abort.c's.
 */
#include "job/internal.h"
#include "events.h"
#include "job/hook_facts.h"
#include "pool.h"
#include "util.h"

/* ---- the runner ---- */

/* THE phase table: every phase of a live move, its function, and why it
 * stands where it does.  move and resume run the phases in the order of
 * their column (order_move, order_resume: 1 is first); they differ only in
 * the copy and the mirror.  docs/design.md has the long form. */
struct sm_phase_def {
	enum sm_phase phase;
	int (*run)(struct sm_jobctx *c);
	unsigned order_move;
	unsigned order_resume;
	const char *why;
};

static const struct sm_phase_def phase_table[] = {
	{ SM_PHASE_SNAPSHOT, sm_job_phase_snapshot, 1, 1,
	  "first: the source overlays take the guest's writes, so the original chain is read-only from here on" },
	{ SM_PHASE_DEST_CHAIN, sm_job_phase_dest_chain, 2, 2,
	  "the destination images and overlay exist before anything writes to them" },
	{ SM_PHASE_MIRROR, sm_job_phase_mirror, 3, 4,
	  "move: at once, so new writes reach the destination while the copy runs; resume: after the copy, "
	  "a lost mirror restarts only onto a fresh overlay once the copies' headers are final" },
	{ SM_PHASE_COPY, sm_job_phase_copy, 4, 3,
	  "the read-only chain below the overlays, copied out of band for as long as it takes" },
	{ SM_PHASE_SYNC, sm_job_phase_sync, 5, 5,
	  "every copy done and every mirror ready before any disk pivots" },
	{ SM_PHASE_PIVOT, sm_job_phase_pivot, 6, 6,
	  "the domain switches to the destination only once its chain there is complete" },
	{ SM_PHASE_COLLAPSE, sm_job_phase_collapse, 7, 7,
	  "the destination overlay folds into its base once the domain runs on it (skipped with --keep-overlay)" },
	{ SM_PHASE_FINALIZE, sm_job_phase_finalize, 8, 8,
	  "last: the persistent definition and the source overlay, once the live chain is final" },
};

/* The table's row of the phase that comes n-th (1: first) in order. */
static const struct sm_phase_def *phase_at(enum sm_job_order order, unsigned n)
{
	for (size_t i = 0; i < SM_ARRAY_LEN(phase_table); i++) {
		const struct sm_phase_def *d = &phase_table[i];

		if ((order == SM_JOB_ORDER_MOVE ? d->order_move : d->order_resume) == n)
			return d;
	}
	return NULL;
}

size_t sm_job_phases(enum sm_job_order order, enum sm_phase *out, size_t max)
{
	size_t n = 0;
	const struct sm_phase_def *d;

	while (n < max && (d = phase_at(order, (unsigned)n + 1)))
		out[n++] = d->phase;
	return n;
}

static bool needs_pivot(const struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (sm_job_todo(c, i, SM_DISK_READY, SM_DISK_PIVOTED))
			return true;
	return false;
}

static int run_phase(struct sm_jobctx *c, const struct sm_phase_def *def)
{
	enum sm_phase phase = def->phase;
	char point[64];

	if (sm_interrupted) {
		sm_error("job %lld was interrupted before its '%s' phase", c->job,
			 sm_phase_name(phase));
		return -1;
	}
	c->phase_name = sm_phase_name(phase);
	c->acted = false;
	if (phase == SM_PHASE_PIVOT && needs_pivot(c) && sm_job_hooks_run(c, "before_pivot") < 0)
		return -1;
	if (sm_journal_phase_start(c->j, c->job, phase) < 0)
		return -1;
	sm_event_phase(c->job, sm_phase_name(phase), "start", NULL);
	snprintf(point, sizeof(point), "%s:start", sm_phase_name(phase));
	sm_crash_point(point);
	sm_progress_say(c->pr, "%s", sm_phase_describe(phase));
	if (sm_job_test_hook(c, sm_phase_name(phase)) < 0 || def->run(c) < 0) {
		char *err = sm_error_preserve();

		/* Already failing: the step's row keeps no end, and fail_job
		 * records the job failed (or tries to). */
		sm_ignore_value(sm_journal_phase_finish(c->j, c->job, phase, err));
		sm_event_phase(c->job, sm_phase_name(phase), "failed", err);
		sm_error_restore(&err);
		return -1;
	}
	sm_progress_end(c->pr);
	snprintf(point, sizeof(point), "%s:done", sm_phase_name(phase));
	sm_crash_point(point);
	if (sm_journal_phase_finish(c->j, c->job, phase, NULL) < 0)
		return -1;
	sm_event_phase(c->job, sm_phase_name(phase), "done", NULL);
	if (c->acted && phase == SM_PHASE_SNAPSHOT)
		sm_job_hooks_run(c, "after_snapshot");
	if (c->acted && phase == SM_PHASE_PIVOT)
		sm_job_hooks_run(c, "after_pivot");
	return 0;
}

/* Where a disk stands, in words, for the report of a stopped job. */
static const char *where(const struct sm_jobctx *c, size_t i, const char **path)
{
	const struct sm_plan_disk *p = &c->plans[i];

	switch (c->disks[i].state) {
	case SM_DISK_PLANNED:
		*path = p->images[0].src;
		return "untouched, on its original image";
	case SM_DISK_SNAPSHOTTED:
	case SM_DISK_DEST_CREATED:
	case SM_DISK_MIRRORING:
	case SM_DISK_COPIED:
	case SM_DISK_READY:
		*path = p->src_overlay;
		return "runs on its source overlay over the original image";
	case SM_DISK_PIVOTED:
		*path = p->dst_overlay;
		return "runs on the destination overlay over the moved chain";
	case SM_DISK_COLLAPSED:
	case SM_DISK_DONE:
	case SM_DISK_STATE_LAST:
		break;
	}
	*path = sm_job_final_path(c, i);
	return "moved";
}

static void report_disks(const struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const char *path;
		const char *what = where(c, i, &path);

		if (c->disks[i].failed)
			sm_progress_say(c->pr, "  %s: %s (%s), %s; stopped: %s", c->plans[i].target,
					sm_disk_state_name(c->disks[i].state), path, what, c->disks[i].failed);
		else
			sm_progress_say(c->pr, "  %s: %s (%s), %s", c->plans[i].target,
					sm_disk_state_name(c->disks[i].state), path, what);
	}
}

/* After a failure: stop block jobs that would run on unattended, so the
 * domain stays on a consistent chain (its overlay, or the destination
 * overlay after the pivot), and record the job as failed and resumable. */
static void fail_job(struct sm_jobctx *c)
{
	char *err = sm_error_preserve();

	sm_progress_end(c->pr);
	for (size_t i = 0; c->dom && i < c->nplans; i++)
		if (sm_job_stop_job(c, i) < 0)
			sm_progress_say(c->pr, "warning: %s", sm_error_message());
	/* Already failing: a journal that fails too keeps the job running,
	 * which resume and abort treat like failed. */
	sm_ignore_value(sm_journal_job_finish(c->j, c->job, SM_JOB_FAILED, err));
	report_disks(c);
	sm_job_hooks_run(c, "on_failure");
	sm_error_restore(&err);
}

static int run_phases(struct sm_jobctx *c, enum sm_job_order order)
{
	const struct sm_phase_def *def;
	size_t nfailed = 0, first = 0;

	for (unsigned n = 1; (def = phase_at(order, n)); n++) {
		if (def->phase == SM_PHASE_COLLAPSE && c->keep_overlay)
			continue;
		if (run_phase(c, def) < 0) {
			fail_job(c);
			return -1;
		}
	}
	for (size_t i = 0; i < c->nplans; i++)
		if (c->disks[i].failed && !nfailed++)
			first = i;
	if (nfailed) {
		if (nfailed == 1)
			sm_error("disk '%s' stopped: %s", c->plans[first].target, c->disks[first].failed);
		else
			sm_error("%zu disks stopped; disk '%s': %s", nfailed, c->plans[first].target,
				 c->disks[first].failed);
		fail_job(c);
		return -1;
	}
	return 0;
}

int sm_job_run(struct sm_jobctx *c, enum sm_job_order order)
{
	int rc;

	/* Overlays on devices grow while any phase waits (grow.c). */
	if (sm_job_grow_start(c) < 0) {
		fail_job(c);
		return -1;
	}
	rc = run_phases(c, order);
	sm_job_grow_stop(c);
	return rc;
}

/* Pools over the directories a job wrote or emptied see the change now. */
static void refresh_pools(struct sm_jobctx *c)
{
	size_t cap = 1, n = 0;
	char **dirs;

	for (size_t i = 0; i < c->nplans; i++)
		cap += c->plans[i].nimages + 1;
	dirs = sm_xcalloc(cap, sizeof(*dirs));
	dirs[n++] = sm_xstrdup(c->dest);
	for (size_t i = 0; i < c->nplans; i++) {
		dirs[n++] = sm_path_dirname(c->plans[i].src_overlay);
		for (size_t k = 0; k < c->plans[i].nimages; k++)
			dirs[n++] = sm_path_dirname(c->plans[i].images[k].src);
	}
	if (sm_pool_refresh_dirs(sm_virt_conn(c->v), (const char *const *)dirs, n) < 0)
		sm_progress_say(c->pr, "warning: %s", sm_error_message());
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
}

int sm_job_close(struct sm_jobctx *c, enum sm_job_state state)
{
	refresh_pools(c);
	enum sm_phase last = state == SM_JOB_DONE ? SM_PHASE_DONE : SM_PHASE_LAST;

	if (last == SM_PHASE_DONE &&
	    (sm_journal_phase_start(c->j, c->job, SM_PHASE_DONE) < 0 ||
	     sm_journal_phase_finish(c->j, c->job, SM_PHASE_DONE, NULL) < 0))
		return -1;
	return sm_journal_job_finish(c->j, c->job, state, NULL);
}
