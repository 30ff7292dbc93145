/* hook_facts.c: the job's side of its hooks: what a job tells them, taken
 * from struct sm_jobctx, and a veto recorded on the job.  Finding, checking
 * and running the hooks is src/hooks.c's, which knows no job; this is the
 * one place where the two meet.
 */
#include "job/hook_facts.h"
#include "hooks.h"
#include "job/job_run.h"
#include "util.h"

#include <stdlib.h>

/* The domain XML its hooks see: the live one while the domain runs. */
static char *domain_xml(void *opaque)
{
	const struct sm_jobctx *c = opaque;

	if (!c->dom)
		return NULL;
	return virDomainGetXMLDesc(c->dom, c->running ? 0 : VIR_DOMAIN_XML_INACTIVE);
}

/* A disk's files at the source or the destination, in chain order, then the
 * overlay kept under it (unless flattened); pointers into the plan. */
static const char **chain_of(const struct sm_plan_disk *p, bool dst, size_t *n)
{
	const char **paths = sm_xcalloc(p->nimages + 1, sizeof(*paths));

	*n = 0;
	for (size_t k = 0; k < p->nimages; k++)
		paths[(*n)++] = dst ? p->images[k].dst : p->images[k].src;
	if (p->kept && !p->flat)
		paths[(*n)++] = p->kept;
	return paths;
}

int sm_job_hooks_run(struct sm_jobctx *c, const char *point)
{
	struct sm_hook_disk *disks = sm_xcalloc(c->nplans + 1, sizeof(*disks));
	struct sm_hook_facts f = {
		.job = c->job,
		.domain = c->domain_name,
		.uuid = c->uuid,
		.phase = c->phase_name ? c->phase_name : sm_phase_name(SM_PHASE_PLANNED),
		.dest = c->dest,
		.disks = disks,
		.ndisks = c->nplans,
		.domain_xml = domain_xml,
		.opaque = c,
		.journal = c->j,
		.progress = c->pr,
	};
	enum sm_hook_verdict v;

	for (size_t i = 0; i < c->nplans; i++) {
		disks[i].target = c->plans[i].target;
		disks[i].state = sm_disk_state_name(c->disks[i].state);
		disks[i].src = chain_of(&c->plans[i], false, &disks[i].nsrc);
		disks[i].dst = chain_of(&c->plans[i], true, &disks[i].ndst);
	}
	v = sm_hooks_run_point(point, &f);
	for (size_t i = 0; i < c->nplans; i++) {
		free((void *)disks[i].src);
		free((void *)disks[i].dst);
	}
	free(disks);
	switch (v) {
	case SM_HOOK_OK:
		return 0;
	case SM_HOOK_VETOED:
		c->vetoed = true;
		return -1;
	}
	return -1;
}
