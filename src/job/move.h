/* move.h: a live storage move, from validation to the closed job.
 *
 * The flow (mirrored snapshot): validate; journal the plan; one atomic
 * external snapshot; create the destination chain; mirror the overlays
 * (shallow, reuse-external); copy the old chain out of band; wait for the
 * mirrors; pivot; collapse the destination overlay with an active commit into
 * its immediate backing; fix the persistent definition; remove the source
 * overlay.  Each phase is journaled before it starts and after it succeeds.
 */
#ifndef SM_MOVE_H
#define SM_MOVE_H

#include <stdbool.h>
#include <stddef.h>

#include "copy/copy.h"
#include "journal.h"
#include "progress.h"
#include "virt.h"

struct sm_move_opts {
	const char *domain;
	const char *dest;          /* or dest_pool */
	const char *dest_pool;     /* a libvirt storage pool (dir, fs, netfs) */
	const char *const *disks;  /* --disk targets; none means every candidate */
	size_t ndisks;
	unsigned long long bandwidth_mib;  /* 0: unlimited */
	bool keep_overlay;
	bool quiesce;
	bool dry_run;
	bool verify;                       /* re-read and compare every copied chunk */
	const char *dest_format;           /* raw, qcow2, or NULL to keep formats */
	enum sm_copy_method copy_method;   /* SM_COPY_AUTO unless forced */
	int sync_writes;                   /* enum sm_sync_writes */
	double converge_timeout;           /* 0: the default (30 s) */
	unsigned parallel;                 /* 0: from the destination's devices */
	bool copy_shared;                  /* copy backing images others use too */
	bool flatten;                      /* one image at the destination */
	bool delete_source;                /* then delete the unused source images */
	bool offline;                      /* the domain is shut off: copy, redefine */
};

enum sm_move_result {
	SM_MOVE_OK,
	SM_MOVE_REFUSED,  /* validation failed: nothing was changed */
	SM_MOVE_FAILED,   /* failed after changes; the job says where it stopped */
	SM_MOVE_VETOED,   /* a before_* hook said no; the job stopped cleanly */
	SM_MOVE_INTERRUPTED,  /* SIGINT/SIGTERM; the job stopped at a safe point */
};

/* "done", "refused", ... and the exit status the CLI gives for a result. */
const char *sm_move_status_name(enum sm_move_result r);
int sm_move_exit_code(enum sm_move_result r);

/* Run a move.  *job_id is 0 when no job was opened. */
enum sm_move_result sm_move(struct sm_virt *v, struct sm_journal *j,
			    const struct sm_move_opts *o, struct sm_progress *pr,
			    long long *job_id);

#endif
