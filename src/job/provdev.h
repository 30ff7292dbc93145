/* provdev.h: a move's destination devices made by a provisioner
 * (--dest-provisioner PROG, or a logical --dest-pool): the device each disk
 * asks for (planned at validation), journaled as the job's with the job
 * (before any provisioner runs), created and checked before the first
 * phase, then used as a --dest-dev device is; removed by abort and cleanup.
 * Running a provisioner and checking what it printed are provision.c's;
 * a device as a destination is destdev.c's.
 */
#ifndef SM_PROVDEV_H
#define SM_PROVDEV_H

#include <stdbool.h>

#include "chain/chain.h"
#include "chain/plan.h"
#include "journal.h"
#include "progress.h"
#include "virt.h"

struct sm_jobctx;

/* The device one disk of a move asks of the provisioner. */
struct sm_provdev {
	unsigned long long bytes;  /* 0: this disk's image is not on a provisioned device */
	bool exact;                /* raw: the device is the image, of this very size */
	long long device;          /* its row in the journal, once journaled */
};

void sm_provdevs_free(struct sm_provdev *d, size_t n);

/* What disk d (planned as p) asks for: one image (a chain needs --flatten),
 * not already on a device; raw its virtual size, qcow2 what 'qemu-img
 * measure' says a fully allocated image takes.  -1 with an error. */
int sm_provdev_plan(const struct sm_disk *d, const struct sm_plan_disk *p,
		    struct sm_provdev *out);
/* The name a job's device for target has: snapmove-JOB-TARGET (characters a
 * device name may not hold become '_'). */
char *sm_provdev_name(long long job, const char *target);
/* Journal the device of job's disk p (state creating), inside the
 * transaction that opens the job, so that abort finds it whatever happens
 * next; and the image's planned file is no file of the job. */
int sm_provdev_journal(struct sm_journal *j, long long job, const char *provisioner,
		       const char *settings, const struct sm_plan_disk *p, struct sm_provdev *d);
/* Ask the provisioner for every journaled device of the job, check each as a
 * --dest-dev device, and journal the image onto it; c->plans follow.  On
 * failure the devices made are removed again (the error is the first). */
int sm_provdev_create(struct sm_jobctx *c, const struct sm_provdev *d);
/* Remove the job's devices (abort, cleanup, a failed start): each created
 * (or removing) device of the job that no domain uses, re-checked against
 * its journaled device number; a device that holds a disk of a done move
 * is kept (keep_assigned).  What could not be removed is warned (on pr, or
 * stderr when NULL); -1 when one could not. */
int sm_provdev_remove(struct sm_virt *v, struct sm_journal *j, long long job,
		      bool keep_assigned, struct sm_progress *pr);
/* Refuse (-1) a job whose devices were being made when it stopped: the
 * journal shows a device of the job that no image of it is on. */
int sm_provdev_check_assigned(struct sm_journal *j, long long job);

#endif
