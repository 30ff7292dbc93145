/* sync.c: the phases sync (waiting for every mirror to be ready, the
 * convergence watch, write-blocking mode) and pivot.
 */
#include "job/internal.h"
#include "events.h"
#include "snapshot/blockjob.h"
#include "util.h"

#include <sys/stat.h>

/* ---- sync, pivot ---- */

static bool job_progress(void *ctx, const char *target, unsigned long long cur,
			 unsigned long long end)
{
	struct sm_jobctx *c = ctx;
	SM_AUTOFREE char *label = sm_xasprintf("%s %s", c->wait.label, target);
	unsigned long long remaining = end > cur ? end - cur : 0;
	double now = sm_monotonic();

	sm_progress_update(c->pr, label, cur, end);
	sm_event_progress(c->job, target, c->wait.label, NULL, cur, end, -1);
	if (sm_interrupted)
		return false;
	if (!c->wait.watching)
		return true;
	/* Converging means the bytes left keep reaching new lows, and READY
	 * comes in a time that follows the size of the overlay. */
	if (remaining < c->wait.best_remaining) {
		c->wait.best_remaining = remaining;
		c->wait.best_at = now;
	}
	if (now - c->wait.best_at > c->converge_timeout || now - c->wait.wait_started > c->wait.ready_within) {
		c->wait.stalled = true;
		return false;
	}
	return true;
}

int sm_job_wait_ready(struct sm_jobctx *c, const bool *which, const char *label)
{
	const char **targets = sm_xcalloc(c->nplans, sizeof(*targets));
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < c->nplans; i++)
		if (which[i])
			targets[n++] = c->plans[i].target;
	c->wait.label = label;
	sm_progress_reset_rate(c->pr, 0);
	if (n)
		rc = sm_blockjob_wait_ready(c->v, c->dom, targets, n, job_progress, c);
	free(targets);
	return rc;
}

/* Wait for disk i's job to be ready. */
int sm_job_wait_one(struct sm_jobctx *c, size_t i, const char *label)
{
	bool *which = sm_xcalloc(c->nplans, sizeof(*which));
	int rc;

	which[i] = true;
	rc = sm_job_wait_ready(c, which, label);
	free(which);
	return rc;
}

unsigned long long sm_job_file_bytes(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (unsigned long long)sb.st_blocks * 512ULL : 0;
}

/* Wait for disk i's mirror, watching that it converges (unless it already
 * blocks writes, which is sure to converge). */
static int wait_mirror(struct sm_jobctx *c, size_t i)
{
	/* The slowest a mirror should copy the overlay: the bandwidth asked
	 * for, or 10 MiB/s. */
	double rate = c->bandwidth_mib ? (double)(c->bandwidth_mib << 20) : 10.0 * (1 << 20);
	int rc;

	c->wait.watching = !c->disks[i].sync_mode && c->sync_writes == SM_SYNC_WRITES_AUTO;
	c->wait.stalled = false;
	c->wait.wait_started = c->wait.best_at = sm_monotonic();
	c->wait.best_remaining = ~0ULL;
	c->wait.ready_within = c->converge_timeout +
			  (double)sm_job_file_bytes(c->plans[i].src_overlay) / rate;
	rc = sm_job_wait_one(c, i, "mirror");
	c->wait.watching = false;
	return rc;
}

/* The mirror of disk i does not converge: start it again in write-blocking
 * mode, where every guest write reaches both sides before it completes. */
static int switch_to_sync_writes(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];

	sm_progress_say(c->pr, "  %s: the mirror did not converge within %.0f s under the "
			"guest's writes; restarting it in write-blocking mode", p->target,
			c->converge_timeout);
	if (sm_blockjob_cancel(c->dom, p->target) < 0)
		return -1;
	c->disks[i].mirroring = false;
	c->disks[i].sync_mode = true;
	if (sm_job_create_dst_overlay(c, i) < 0 ||
	    sm_blockjob_mirror_start(c->v, c->dom, p->target, p->dst_overlay, c->bandwidth_mib,
				     c->persistent, true) < 0)
		return -1;
	c->disks[i].mirroring = true;
	return sm_journal_disk_set_sync_writes(c->j, c->job, p->target, true);
}

int sm_job_phase_sync(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		int rc;

		if (!sm_job_todo(c, i, SM_DISK_COPIED, SM_DISK_PIVOTED))
			continue;
		rc = wait_mirror(c, i);
		if (rc < 0 && c->wait.stalled && !sm_interrupted) {
			rc = switch_to_sync_writes(c, i);
			if (rc == 0)
				rc = wait_mirror(c, i);
		}
		if (rc < 0) {
			if (sm_interrupted)
				return -1;
			if (sm_blockjob_ended(c->v, c->plans[i].target))
				sm_job_add_dest_space(c);
			sm_job_disk_fail(c, i);
			continue;
		}
		if (sm_job_disk_state(c, i, SM_DISK_READY) < 0)
			return -1;
	}
	return 0;
}

/* Whether disk i's active image is path, by the live XML. */
static bool still_on(struct sm_jobctx *c, size_t i, const char *path)
{
	SM_AUTOFREE char *xml = virDomainGetXMLDesc(c->dom, 0);
	struct sm_domain_disks now;
	const struct sm_disk *d;
	bool on = false;

	if (!xml || sm_chain_parse(xml, &now) < 0)
		return false;
	d = sm_domain_disks_find(&now, c->plans[i].target);
	on = d && d->nchain > 0 && sm_str_eq(d->chain[0].path, path);
	sm_domain_disks_release(&now);
	return on;
}

int sm_job_phase_pivot(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!sm_job_todo(c, i, SM_DISK_READY, SM_DISK_PIVOTED) || !sm_job_chain_ok(c, i))
			continue;
		/* A mirror that failed after it was ready is not pivoted. */
		if (sm_blockjob_alive(c->v, c->dom, p->target) < 0) {
			sm_job_add_dest_space(c);
			sm_job_disk_fail(c, i);
			continue;
		}
		/* A pivot libvirtd died in left the destination chain open. */
		if (sm_job_clear_lost(c, i, NULL, true) < 0) {
			sm_job_disk_fail(c, i);
			continue;
		}
		if (sm_journal_disk_set_pivoting(c->j, c->job, p->target, true) < 0)
			return -1;
		c->disks[i].pivoting = true;
		if (sm_blockjob_pivot(c->dom, p->target, p->dst_overlay) < 0) {
			SM_AUTOFREE char *err = sm_error_preserve();

			/* Refused: if the domain still runs on the source overlay,
			 * no pivot is under way any more. */
			if (still_on(c, i, p->src_overlay)) {
				c->disks[i].pivoting = false;
				/* The disk fails below either way; a flag left set
				 * only makes resume look at its chain again. */
				sm_ignore_value(sm_journal_disk_set_pivoting(c->j, c->job,
									     p->target, false));
			}
			/* The job failed between the look and the pivot: its cause. */
			if (sm_blockjob_alive(c->v, c->dom, p->target) < 0 &&
			    sm_blockjob_ended(c->v, p->target))
				sm_job_add_dest_space(c);
			else
				sm_error_restore(&err);
			sm_job_disk_fail(c, i);
			continue;
		}
		c->disks[i].mirroring = false;
		c->acted = true;
		sm_crash_point("pivot:unjournaled");
		if (SM_JOURNAL_TX(c->j, sm_journal_disk_set_state(c->j, c->job, p->target,
								  SM_DISK_PIVOTED, NULL) < 0 ||
				  sm_journal_disk_set_pivoting(c->j, c->job, p->target, false) < 0
				  ? -1 : 0) < 0)
			return -1;
		c->disks[i].state = SM_DISK_PIVOTED;
		c->disks[i].pivoting = false;
	}
	return 0;
}

/* SNAPMOVE_TEST_HOOK: see job_run.h.  Test builds only; the test hook gets
 * the caller's environment (the tests' LIBVIRT_DEFAULT_URI).  point is a
 * phase's name, or a point inside one ("collapse:pivot"). */
