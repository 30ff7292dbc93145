/* chaincheck.c: the chain each phase expects a disk to run on, checked
 * before the phase acts (someone else changed it: the disk stops).
 */
#include "job/internal.h"
#include "job/reconcile.h"
#include "util.h"

/* ---- the chain each phase expects ---- */

/* What the journal says disk i runs on, its role in words, and the image
 * right below it (NULL: not checked). */
static const char *expected_top(const struct sm_jobctx *c, size_t i, const char **role,
				const char **below)
{
	const struct sm_plan_disk *p = &c->plans[i];

	*below = NULL;
	switch (c->disks[i].state) {
	case SM_DISK_PLANNED:
		*role = "original image";
		return p->images[0].src;
	case SM_DISK_SNAPSHOTTED:
	case SM_DISK_DEST_CREATED:
	case SM_DISK_MIRRORING:
	case SM_DISK_COPIED:
	case SM_DISK_READY:
		*role = "overlay";
		*below = p->images[0].src;
		return p->src_overlay;
	case SM_DISK_PIVOTED:
		*role = "destination overlay";
		*below = p->images[0].dst;
		return p->dst_overlay;
	case SM_DISK_COLLAPSED:
	case SM_DISK_DONE:
	case SM_DISK_STATE_LAST:
		break;
	}
	if (c->keep_overlay && c->disks[i].state == SM_DISK_DONE) {
		*role = "destination overlay";
		*below = p->images[0].dst;
		return p->dst_overlay;
	}
	*role = "moved image";
	return p->images[0].dst;
}

/* Disk d is not on top (its role for the job): say what changed. */
static void chain_changed(const struct sm_jobctx *c, size_t i, const struct sm_disk *d,
			  const char *top, const char *role)
{
	const char *target = c->plans[i].target;
	const char *now = d->nchain > 0 && d->chain[0].path ? d->chain[0].path : "(no file)";

	for (size_t k = 1; k < d->nchain; k++) {
		if (!sm_str_eq(d->chain[k].path, top))
			continue;
		sm_error("disk '%s' is now on '%s', not on the job's %s '%s': somebody took a "
			 "snapshot during the move; job %lld stops this disk and deleted nothing; "
			 "fold the snapshot back with 'virsh blockcommit %s %s --active --base %s "
			 "--pivot', then run 'snapmove resume %lld' (or 'snapmove abort %lld')",
			 target, now, role, top, c->job, c->domain_name, target, top, c->job, c->job);
		return;
	}
	sm_error("disk '%s' is now on '%s', not on the job's %s '%s': something else changed "
		 "its chain during the move (a block commit, copy or pull, or a new source); "
		 "job %lld stops this disk and deleted nothing: see 'snapmove chain %s %s' and "
		 "'snapmove status %lld'", target, now, role, top, c->job, c->domain_name, target,
		 c->job);
}

/* Before a phase acts on disk i: the live chain must be the one the journal
 * expects (its top and the image below it), with no block job but the one
 * snapmove runs there; the same check resume and abort make
 * (sm_reconcile_disk) refuses what no state of the job explains.  -1 with
 * an error naming what changed. */
int sm_job_check_chain(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	SM_AUTOFREE char *xml = sm_virt_domain_xml(c->dom, false);
	struct sm_domain_disks now = { 0 };
	const struct sm_disk *d;
	const char *role, *below;
	const char *top = expected_top(c, i, &role, &below);
	const char *job = c->disks[i].mirroring ? "copy" : c->disks[i].committing ? "active-commit" : NULL;
	struct sm_observed o;
	int ret = -1;

	if (!xml || sm_chain_parse(xml, &now) < 0)
		return -1;
	d = sm_domain_disks_find(&now, p->target);
	if (!d) {
		sm_error("domain '%s' has no disk '%s' any more, so job %lld cannot go on; "
			 "'snapmove status %lld' lists the files the job made", c->domain_name,
			 p->target, c->job, c->job);
		goto cleanup;
	}
	if (d->nchain == 0 || !sm_str_eq(d->chain[0].path, top)) {
		chain_changed(c, i, d, top, role);
		goto cleanup;
	}
	if (sm_reconcile_disk(c, p, d, c->disks[i].state, true, true, &o) < 0)
		goto cleanup;
	if (below && (d->nchain < 2 || !sm_str_eq(d->chain[1].path, below))) {
		sm_error("disk '%s' runs on the job's %s '%s' but over '%s', not over '%s': "
			 "something else changed its chain during the move; job %lld stops this "
			 "disk and deleted nothing: see 'snapmove chain %s %s' and 'snapmove "
			 "status %lld'", p->target, role, top, d->nchain > 1 && d->chain[1].path ?
			 d->chain[1].path : "(nothing)", below, c->job, c->domain_name, p->target,
			 c->job);
		goto cleanup;
	}
	if (d->mirror_job && !sm_str_eq(d->mirror_job, job)) {
		sm_error("disk '%s' has a block job snapmove did not start ('%s'); job %lld stops "
			 "this disk: wait for that job or cancel it with 'virsh blockjob %s %s "
			 "--abort', then run 'snapmove resume %lld'", p->target, d->mirror_job,
			 c->job, c->domain_name, p->target, c->job);
		goto cleanup;
	}
	ret = 0;

cleanup:
	sm_domain_disks_release(&now);
	return ret;
}

/* check_chain, and on a mismatch stop disk i (its own block job cancelled,
 * its definition left as libvirt keeps it).  false when it stopped. */
bool sm_job_chain_ok(struct sm_jobctx *c, size_t i)
{
	if (sm_job_check_chain(c, i) == 0)
		return true;
	c->disks[i].foreign = true;
	sm_job_disk_fail(c, i);
	return false;
}
