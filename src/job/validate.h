/* validate.h: what move.c and validate.c share: the move being validated
 * and planned (nothing outside src/job/ uses it). */
#ifndef SM_JOB_VALIDATE_H
#define SM_JOB_VALIDATE_H

#include "job/opts.h"
#include "chain/chain.h"
#include "chain/plan.h"
#include "journal.h"
#include "progress.h"
#include "virt.h"
#include "chain/usage.h"
#include "srcfile.h"
#include "job/provdev.h"

struct move {
	struct sm_virt *v;
	struct sm_journal *j;
	const struct sm_move_opts *o;
	struct sm_progress *pr;
	virDomainPtr dom;
	char uuid[VIR_UUID_STRING_BUFLEN];
	bool persistent;
	char *dest;
	char *overlay_dir;      /* the source overlays' folder, resolved (dest by default) */
	char *overlay_prov;     /* --overlay-provisioner, resolved and checked; NULL: files */
	struct sm_domain_disks live;
	struct sm_plan_disk *plans;
	size_t nplans;
	long long job;
	struct sm_usage usage;  /* who uses which image, for shared images */
	char *pool_dir;         /* --dest-pool's target directory */
	struct sm_srcfile *srcs;  /* the source files the job may delete, as planned */
	size_t nsrcs;
	char *prov;             /* the provisioner of the destination devices (absolute) */
	char *prov_settings;    /* its SNAPMOVE_KEY=VALUE lines */
	struct sm_provdev *provdevs;  /* one per plan: the device asked of it, if any */
};

/* Free the contents of m. */
void sm_move_release(struct move *m);

/* Everything checked and the plan made, before anything changes: the
 * domain, its disks, the destination, its space, the files it will hold. */
int sm_move_validate(struct move *m, unsigned long long *need, unsigned long long *avail);

/* Refusals (-1) when something is already at path. */
int sm_move_check_dest_absent(const char *path);
int sm_move_check_overlay_absent(const char *path);

#endif
