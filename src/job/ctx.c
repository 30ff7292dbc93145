/* ctx.c: a job's context (struct sm_jobctx): allocating and releasing it,
 * a disk's state, stopping or failing one disk, the crash and test hooks.
 * The phases are in the files named after them; the runner is runner.c.
 */
#include "job/internal.h"
#include "events.h"
#include "run.h"
#include "snapshot/blockjob.h"
#include "util.h"

#include <signal.h>
#include <string.h>
#include <sys/statvfs.h>

volatile int sm_interrupted;

void sm_crash_point(const char *point)
{
#ifdef SM_TEST_BUILD
	const char *want = getenv("SNAPMOVE_TEST_CRASH_AT");

	if (want && sm_str_eq(want, point)) {
		fprintf(stderr, "snapmove: test crash at '%s'\n", point);
		fflush(NULL);
		raise(SIGKILL);
	}
#else
	(void)point;
#endif
}

void sm_jobctx_alloc(struct sm_jobctx *c, size_t nplans)
{
	c->nplans = nplans;
	c->plans = sm_xcalloc(nplans, sizeof(*c->plans));
	c->disks = sm_xcalloc(nplans, sizeof(*c->disks));
	c->parallel = 1;
	c->converge_timeout = 30;
}

const char *sm_sync_writes_name(enum sm_sync_writes s)
{
	switch (s) {
	case SM_SYNC_WRITES_AUTO: return "auto";
	case SM_SYNC_WRITES_ON: return "on";
	case SM_SYNC_WRITES_OFF: return "off";
	}
	return "auto";
}

int sm_sync_writes_from_name(const char *name)
{
	if (sm_str_eq(name, "auto"))
		return SM_SYNC_WRITES_AUTO;
	if (sm_str_eq(name, "on"))
		return SM_SYNC_WRITES_ON;
	if (sm_str_eq(name, "off"))
		return SM_SYNC_WRITES_OFF;
	return -1;
}

void sm_jobctx_release(struct sm_jobctx *c)
{
	sm_job_grow_stop(c);
	for (size_t i = 0; i < c->nplans; i++)
		sm_plan_disk_release(&c->plans[i]);
	free(c->plans);
	for (size_t i = 0; c->disks && i < c->nplans; i++)
		free(c->disks[i].failed);
	free(c->disks);
	free(c->domain_name);
	free(c->dest);
	for (size_t i = 0; i < c->nheld; i++) {
		free(c->held[i].path);
		close(c->held[i].fd);
	}
	free(c->held);
	sm_domain_disks_release(&c->live);
	if (c->dom)
		virDomainFree(c->dom);
	memset(c, 0, sizeof(*c));
}

int sm_job_disk_state(struct sm_jobctx *c, size_t i, enum sm_disk_state s)
{
	c->disks[i].state = s;
	return sm_journal_disk_set_state(c->j, c->job, c->plans[i].target, s, NULL);
}

const char *sm_job_final_path(const struct sm_jobctx *c, size_t i)
{
	return c->keep_overlay ? c->plans[i].dst_overlay : c->plans[i].images[0].dst;
}

const char *sm_job_final_format(const struct sm_jobctx *c, size_t i)
{
	return c->keep_overlay ? "qcow2" : c->plans[i].images[0].dst_format;
}

/* Stop disk i's block job, unless it has ended by itself: a job that failed
 * (ENOSPC) is concluded in QEMU until libvirt dismisses it, and cancelling
 * or pivoting it only fails ("cannot accept command verb").  0 when no job
 * of ours runs any more. */
int sm_job_stop_job(struct sm_jobctx *c, size_t i)
{
	if (!c->dom || (!c->disks[i].mirroring && !c->disks[i].committing))
		return 0;
	if (c->disks[i].commit_unseen) {
		/* Cancelled, it would crash libvirt 9.0 (collapse.c); left ready. */
		sm_error("the active commit of disk '%s' that libvirt shows no <mirror> for is left "
			 "running: libvirt 9.0 crashes when such a job is cancelled; 'snapmove "
			 "resume %lld' completes it", c->plans[i].target, c->job);
		return -1;
	}
	if (sm_blockjob_ended(c->v, c->plans[i].target) ||
	    sm_blockjob_running(c->dom, c->plans[i].target) == 0 ||
	    sm_blockjob_cancel(c->dom, c->plans[i].target) == 0) {
		c->disks[i].mirroring = c->disks[i].committing = false;
		return 0;
	}
	return -1;
}

/* Disk i failed on its own: record why, stop its block job so the domain
 * stays on a consistent chain for it, and let the other disks go on. */
void sm_job_disk_fail(struct sm_jobctx *c, size_t i)
{
	SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

	free(c->disks[i].failed);
	c->disks[i].failed = sm_xstrdup(why);
	/* The disk stops either way; without its error in the journal, status
	 * shows only where it stands. */
	sm_ignore_value(sm_journal_disk_set_state(c->j, c->job, c->plans[i].target, c->disks[i].state,
						  why));
	sm_progress_say(c->pr, "  %s: stopped: %s", c->plans[i].target, why);
	sm_event_warning(c->job, c->plans[i].target, why);
	sm_job_stop_job(c, i);
	sm_error("%s", why);
}

/* A block job writing to the destination failed: name the destination's
 * free space, and when QEMU says it is full, what to do. */
void sm_job_add_dest_space(struct sm_jobctx *c)
{
	SM_AUTOFREE char *msg = sm_xstrdup(sm_error_message());
	struct statvfs sv;
	char b[32];

	if (statvfs(c->dest, &sv) < 0)
		return;
	sm_format_bytes((unsigned long long)sv.f_bavail * sv.f_frsize, b, sizeof(b));
	if (strstr(msg, "No space left on device"))
		sm_error("%s: the destination '%s' is full (%s free); make room there, then run "
			 "'snapmove resume %lld'", msg, c->dest, b, c->job);
	else
		sm_error("%s (the destination '%s' has %s free)", msg, c->dest, b);
}

/* Disks a phase works on: not failed, and in [from, to). */
bool sm_job_todo(const struct sm_jobctx *c, size_t i, enum sm_disk_state from,
		 enum sm_disk_state to)
{
	return !c->disks[i].failed && c->disks[i].state >= from && c->disks[i].state < to;
}

int sm_job_test_hook(const struct sm_jobctx *c, const char *point)
{
#ifdef SM_TEST_BUILD
	const char *hook = getenv("SNAPMOVE_TEST_HOOK");
	char job[32];
	const char *argv[] = { hook, point, job, NULL };

	if (!hook || !*hook)
		return 0;
	snprintf(job, sizeof(job), "%lld", c->job);
	return sm_run_with_env(argv, (const char *const *)environ, NULL);
#else
	(void)c;
	(void)point;
	return 0;
#endif
}
