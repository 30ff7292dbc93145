/* collapse.c: the phase collapse: the active commit of the destination
 * overlay into its base, and its pivot.
 */
#include "job/internal.h"
#include "snapshot/blockjob.h"
#include "util.h"

#include <time.h>

/* ---- collapse ---- */

/* Wait for disk i's active commit.  There is no write-blocking commit: one
 * held back by --bandwidth that does not converge under the guest's writes
 * gets its limit lifted (the commit stays within the destination storage). */
static int wait_commit(struct sm_jobctx *c, size_t i)
{
	const char *target = c->plans[i].target;
	int rc;

	c->wait.watching = c->bandwidth_mib > 0 && c->sync_writes != SM_SYNC_WRITES_OFF;
	c->wait.stalled = false;
	c->wait.wait_started = c->wait.best_at = sm_monotonic();
	c->wait.best_remaining = ~0ULL;
	c->wait.ready_within = c->converge_timeout +
			  (double)sm_job_file_bytes(c->plans[i].dst_overlay) /
				  (double)((c->bandwidth_mib ? c->bandwidth_mib : 10) << 20);
	rc = sm_job_wait_one(c, i, "commit");
	c->wait.watching = false;
	if (rc < 0 && c->wait.stalled && !sm_interrupted) {
		sm_progress_say(c->pr, "  %s: the commit did not converge within %.0f s at "
				"--bandwidth %llu; lifting its limit", target,
				c->converge_timeout, c->bandwidth_mib);
		if (virDomainBlockJobSetSpeed(c->dom, target, 0, 0) < 0) {
			sm_virt_error("cannot lift the bandwidth limit of disk '%s'", target);
			return -1;
		}
		rc = sm_job_wait_one(c, i, "commit");
	}
	return rc;
}

/* A commit libvirt tracks but shows no <mirror> for (reconcile.c): libvirt
 * never shows it ready, so QEMU is asked; ready, it is pivoted as any commit
 * (libvirt 9.0 completes such a job cleanly, but crashes when it is
 * cancelled or fails: qemuBlockJobProcessEventFailedActiveCommit reads the
 * missing mirror). */
static int wait_unseen_commit(struct sm_jobctx *c, size_t i)
{
	const char *target = c->plans[i].target;
	int rc;

	sm_progress_say(c->pr, "  %s: libvirt runs an active commit on '%s' but shows no "
			"<mirror> for it (libvirtd was restarted while starting it); QEMU is "
			"asked whether it is ready", target, c->plans[i].dst_overlay);
	for (int t = 0; t < 600; t++) {  /* 60 s */
		struct timespec ts = { 0, 100 * 1000000L };

		if (sm_interrupted)
			return -1;
		rc = sm_blockjob_qemu_commit_ready(c->dom, target);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		nanosleep(&ts, NULL);
	}
	sm_error("the active commit of disk '%s' that libvirt shows no <mirror> for is not ready "
		 "in QEMU after 60 s; see 'virsh qemu-monitor-command %s "
		 "\'{\"execute\":\"query-block-jobs\"}\'', then resume the job (do not cancel it: "
		 "libvirt 9.0 crashes when such a job ends without its pivot)", target,
		 c->domain_name);
	return -1;
}

int sm_job_phase_collapse(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		if (!sm_job_todo(c, i, SM_DISK_PIVOTED, SM_DISK_COLLAPSED))
			continue;
		if (c->disks[i].committing || !sm_job_chain_ok(c, i))
			continue;
		if (sm_blockjob_commit_start(c->v, c->dom, c->plans[i].target,
					     c->plans[i].images[0].dst, c->bandwidth_mib) < 0)
			sm_job_disk_fail(c, i);
		else
			c->disks[i].committing = true;
	}
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!sm_job_todo(c, i, SM_DISK_PIVOTED, SM_DISK_COLLAPSED))
			continue;
		if (c->disks[i].commit_unseen ? wait_unseen_commit(c, i) < 0 : wait_commit(c, i) < 0) {
			if (sm_interrupted)
				return -1;
			if (sm_blockjob_ended(c->v, p->target))
				sm_job_add_dest_space(c);
			sm_job_disk_fail(c, i);
			continue;
		}
		if (!sm_job_chain_ok(c, i))
			continue;
		if (sm_blockjob_alive(c->v, c->dom, p->target) < 0) {
			sm_job_add_dest_space(c);
			sm_job_disk_fail(c, i);
			continue;
		}
		if (sm_job_test_hook(c, "collapse:pivot") < 0) {
			sm_job_disk_fail(c, i);
			continue;
		}
		if (sm_blockjob_pivot(c->dom, p->target, p->images[0].dst) < 0) {
			SM_AUTOFREE char *msg = sm_xstrdup(sm_error_message());

			if (sm_blockjob_alive(c->v, c->dom, p->target) < 0 &&
			    sm_blockjob_ended(c->v, p->target))
				sm_job_add_dest_space(c);
			else
				sm_error("%s", msg);
			sm_job_disk_fail(c, i);
			continue;
		}
		c->disks[i].committing = c->disks[i].commit_unseen = false;
		sm_crash_point("collapse:unjournaled");
		if (sm_job_disk_state(c, i, SM_DISK_COLLAPSED) < 0 ||
		    sm_job_remove_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY) < 0)
			return -1;
	}
	return 0;
}
