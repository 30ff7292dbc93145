/* finalize.c: the phase finalize: the persistent definition on the new
 * chain and the source overlay removed.
 */
#include "job/internal.h"
#include "events.h"
#include "snapshot/define.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- finalize ---- */

int sm_job_define(struct sm_jobctx *c, const char *(*path_of)(const struct sm_jobctx *, size_t),
		  const char *(*format_of)(const struct sm_jobctx *, size_t),
		  const char *(*backing_of)(const struct sm_jobctx *, size_t))
{
	struct sm_define_disk *defs = sm_xcalloc(c->nplans, sizeof(*defs));
	int rewritten = 0, ret = 0;
	size_t n = 0;

	for (size_t i = 0; i < c->nplans; i++) {
		if (!path_of(c, i))
			continue;
		defs[n].target = c->plans[i].target;
		defs[n].path = path_of(c, i);
		defs[n].format = format_of(c, i);
		defs[n].check_backing = backing_of != NULL;
		defs[n].backing = backing_of ? backing_of(c, i) : NULL;
		n++;
	}
	if (c->persistent && c->dom && n)
		ret = sm_define_sync(sm_virt_conn(c->v), c->dom, defs, n, &rewritten);
	if (ret == 0 && rewritten)
		sm_progress_say(c->pr, "  rewrote the persistent definition: libvirt had not "
				"pointed it at the chain the domain uses");
	free(defs);
	return ret;
}

/* What the definition names for a disk: the destination for a finished
 * disk, the overlay the domain runs on for one that failed. */
static const char *define_path(const struct sm_jobctx *c, size_t i)
{
	if (c->disks[i].foreign)
		return NULL;  /* someone else's chain now: libvirt keeps it */
	if (!c->disks[i].failed || c->disks[i].state >= SM_DISK_COLLAPSED)
		return sm_job_final_path(c, i);
	return c->disks[i].state >= SM_DISK_PIVOTED ? c->plans[i].dst_overlay : c->plans[i].src_overlay;
}

static const char *define_format(const struct sm_jobctx *c, size_t i)
{
	if (!c->disks[i].failed || c->disks[i].state >= SM_DISK_COLLAPSED)
		return sm_job_final_format(c, i);
	return "qcow2";
}

/* The source overlay goes only while it is still the file the snapshot made
 * and no process has it open (src/srcfile.c); otherwise it stays, with a
 * warning. */
int sm_job_remove_src_overlay(struct sm_jobctx *c, size_t i)
{
	return sm_job_remove_file(c, c->plans[i].src_overlay, SM_FILE_SRC_OVERLAY) < 0 ? -1 : 0;
}

int sm_job_phase_finalize(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (sm_job_todo(c, i, SM_DISK_PIVOTED, SM_DISK_DONE))
			sm_job_chain_ok(c, i);
	if (sm_job_define(c, define_path, define_format, NULL) < 0)
		return -1;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!sm_job_todo(c, i, SM_DISK_PIVOTED, SM_DISK_DONE))
			continue;
		if (c->disks[i].state == SM_DISK_PIVOTED && !c->keep_overlay)
			continue;  /* its collapse failed */
		if (sm_job_remove_src_overlay(c, i) < 0 ||
		    (!c->keep_overlay &&
		     sm_job_remove_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY) < 0) ||
		    sm_job_disk_state(c, i, SM_DISK_DONE) < 0)
			return -1;
	}
	return 0;
}
