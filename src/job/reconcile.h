/* reconcile.h: where an interrupted job really stands.
 *
 * resume and abort never trust the journal alone: they load the job from the
 * journal, then look at what libvirt reports (is the domain there, does it
 * run, which image each disk is on, which block job runs) and at the files,
 * and take each disk's state from that.  The journal is corrected where it
 * lagged behind (a crash between a step and its record).
 */
#ifndef SM_RECONCILE_H
#define SM_RECONCILE_H

#include <stdbool.h>

#include "chain/chain.h"
#include "chain/plan.h"
#include "states.h"
#include "job/job_run.h"

struct sm_observed {
	enum sm_disk_state state;
	bool mirroring;   /* the mirror onto the destination overlay runs */
	bool committing;  /* an active commit runs */
	bool commit_unseen;  /* ...with no <mirror> in libvirt's XML */
	bool streamed;    /* on the source overlay over the image below the
			   * original one: an 'abort --via stream' pulled the
			   * original image into it, then stopped */
};

/* Work out a disk's state from what libvirt shows (d: the disk in the live
 * XML, or in the persistent one when the domain is off; NULL when there is no
 * definition) and what the journal and files say.  Pure (c gives the job and
 * domain the errors name); -1 with an error when the disk is somewhere this
 * job cannot explain. */
int sm_reconcile_disk(const struct sm_jobctx *c, const struct sm_plan_disk *p,
		      const struct sm_disk *d, enum sm_disk_state journal_state,
		      bool all_dst_exist, bool all_copied, struct sm_observed *out);

/* -1 with an error naming the way on when a disk of c was streamed back by
 * an interrupted 'abort --via stream' (only that abort can finish it);
 * verb: what was asked ("resume", "abort --via commit"). */
int sm_reconcile_refuse_streamed(const struct sm_jobctx *c, const char *verb);

/* Load job_id from the journal into c (plans, options, the domain if it
 * exists).  Returns 0, or -1 with an error (no such job). */
int sm_jobctx_load(struct sm_jobctx *c, struct sm_virt *v, struct sm_journal *j,
		   long long job_id, struct sm_progress *pr);
/* Observe every disk and record the true states in c and the journal. */
int sm_reconcile(struct sm_jobctx *c);

/* Prove that domain, which libvirt calls shut off, really is before anything
 * acts on its images offline: no QEMU runs a guest of that name (libvirtd
 * can lose a running domain), and no process holds QEMU's lock on any of
 * paths[0..n) (the images of disk targets[i]; a missing file is skipped).
 * -1 with an error naming what runs and what to do (then: the command to run
 * once it is solved, e.g. "snapmove resume 12"); 0 when nothing does. */
int sm_reconcile_prove_off(const char *domain, const char *const *targets,
			   const char *const *paths, size_t n, const char *then);
/* Offline, a disk whose mirror pivot was under way when the job stopped
 * (journaled 'pivoting') and that libvirt's definition still shows on the
 * source overlay: if QEMU did pivot, the guest's newest writes are in the
 * destination overlay, which an offline resume or abort would overwrite or
 * delete.  Fine when both overlays hold the same bytes; else -1 with an
 * error naming both and what to do (verb: resume, abort). */
int sm_reconcile_offline_pivots(const struct sm_jobctx *c, const char *verb);
/* The same for every image job c writes or relies on: each disk's original
 * active image, both overlays and the destination copies (the shared images
 * it leaves in place may be open in other domains). */
int sm_reconcile_job_off(const struct sm_jobctx *c, const char *verb);

#endif
