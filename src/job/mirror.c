/* mirror.c: the phase mirror: a shallow block copy of each active image
 * onto its destination overlay.
 */
#include "job/internal.h"
#include "events.h"
#include "snapshot/blockjob.h"
#include "util.h"

/* ---- mirror ---- */

int sm_job_clear_lost(struct sm_jobctx *c, size_t i, const char *path, bool dst_chain)
{
	const struct sm_plan_disk *p = &c->plans[i];
	const char **paths = sm_xcalloc(p->nimages + 1, sizeof(*paths));
	SM_AUTOFREE char *note = NULL;
	SM_AUTOFREE char *why = NULL;
	size_t n = 0;
	int rc;

	if (path)
		paths[n++] = path;
	for (size_t k = 0; dst_chain && k < p->nimages; k++)
		paths[n++] = p->images[k].dst;
	rc = sm_blockjob_clear_lost(c->dom, p->target, paths, n, &note);
	free(paths);
	if (rc < 0 || !note)
		return rc;
	why = sm_xasprintf("QEMU still had what libvirt lost of a block job on disk '%s' "
			   "(libvirtd died inside its start or pivot): %s", p->target, note);
	sm_progress_say(c->pr, "  warning: %s", why);
	sm_event_warning(c->job, p->target, why);
	return 0;
}

int sm_job_phase_mirror(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!sm_job_todo(c, i, SM_DISK_DEST_CREATED, SM_DISK_PIVOTED) || c->disks[i].mirroring ||
		    !sm_job_chain_ok(c, i))
			continue;
		/* Always onto a fresh overlay: a mirror that was lost (libvirtd or
		 * QEMU restart, a shutdown with TRANSIENT_JOB) may have left clusters
		 * the source no longer has, and the mirror copies the whole source
		 * overlay anyway. */
		if (c->sync_writes == SM_SYNC_WRITES_ON)
			c->disks[i].sync_mode = true;
		if (sm_job_clear_lost(c, i, p->dst_overlay, true) < 0 ||
		    sm_job_follow_size(c, i) < 0 || sm_job_create_dst_overlay(c, i) < 0 ||
		    (c->disks[i].dst_dev && c->disks[i].src_dev &&
		     sm_job_grow_match(c, c->disks[i].dst_dev, c->disks[i].src_dev) < 0) ||
		    sm_blockjob_mirror_start(c->v, c->dom, p->target, p->dst_overlay,
					     c->bandwidth_mib, c->persistent, c->disks[i].sync_mode) < 0 ||
		    (c->disks[i].sync_mode &&
		     sm_journal_disk_set_sync_writes(c->j, c->job, p->target, true) < 0)) {
			sm_job_disk_fail(c, i);
			continue;
		}
		c->disks[i].mirroring = true;
		/* A snapshot taken between the check and the start would make
		 * this a mirror of the wrong image: look again (libvirt refuses
		 * snapshots of a disk with a block job from now on).  A mirror
		 * that failed at once (libvirt shows <mirror job=''> for it a
		 * moment) is reported by its own cause. */
		if (sm_job_check_chain(c, i) < 0) {
			SM_AUTOFREE char *msg = sm_xstrdup(sm_error_message());

			if (sm_blockjob_alive(c->v, c->dom, p->target) < 0 &&
			    sm_blockjob_ended(c->v, p->target)) {
				sm_job_add_dest_space(c);
			} else {
				sm_error("%s", msg);
				c->disks[i].foreign = true;
			}
			sm_job_disk_fail(c, i);
			continue;
		}
		sm_crash_point("mirror:unjournaled");
		if (c->disks[i].state < SM_DISK_MIRRORING &&
		    sm_job_disk_state(c, i, SM_DISK_MIRRORING) < 0)
			return -1;
	}
	return 0;
}
