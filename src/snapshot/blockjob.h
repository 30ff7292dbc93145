/* blockjob.h: the block jobs of a move through the libvirt API: the shallow
 * reuse-external mirror of the overlay, the active commit that collapses it,
 * waiting for them to be ready, pivoting and cancelling.
 *
 * Readiness comes from the block-job event (BLOCK_JOB_2) with
 * <mirror ready='yes'> in the live XML as the fallback; never from cur == end.
 */
#ifndef SM_BLOCKJOB_H
#define SM_BLOCKJOB_H

#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stddef.h>

#include "virt.h"

/* Mirror target's active image onto dst_overlay, which must exist with its
 * backing chain (SHALLOW | REUSE_EXT; TRANSIENT_JOB for persistent domains;
 * SYNCHRONOUS_WRITES with sync_writes: write-blocking, sure to converge). */
int sm_blockjob_mirror_start(struct sm_virt *v, virDomainPtr dom, const char *target,
			     const char *dst_overlay, unsigned long long bandwidth_mib,
			     bool persistent, bool sync_writes);
/* Active commit of target's active image into exactly base_path, which must be
 * the image right below it. */
int sm_blockjob_commit_start(struct sm_virt *v, virDomainPtr dom, const char *target,
			     const char *base_path, unsigned long long bandwidth_mib);

/* Block stream (pull) into target's active image of everything above base
 * (NULL: the whole chain). */
int sm_blockjob_stream_start(struct sm_virt *v, virDomainPtr dom, const char *target,
			     const char *base_path, unsigned long long bandwidth_mib);
/* Wait until target's job has completed by itself (a stream). */
int sm_blockjob_wait_done(struct sm_virt *v, virDomainPtr dom, const char *target);

/* Called about once a second while waiting; return false to stop waiting. */
typedef bool (*sm_blockjob_progress_fn)(void *ctx, const char *target,
					unsigned long long cur, unsigned long long end);
/* Wait until the jobs on every target are ready to pivot. */
int sm_blockjob_wait_ready(struct sm_virt *v, virDomainPtr dom, const char *const *targets,
			   size_t n, sm_blockjob_progress_fn progress, void *ctx);
/* Pivot target's job and check the disk's active image is now expect_path. */
int sm_blockjob_pivot(virDomainPtr dom, const char *target, const char *expect_path);
/* Cancel target's job without pivoting; the disk stays on its current image. */
int sm_blockjob_cancel(virDomainPtr dom, const char *target);
/* 1 when a block job runs on target, 0 when none, -1 on error. */
int sm_blockjob_running(virDomainPtr dom, const char *target);

#endif
