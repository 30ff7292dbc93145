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

/* How long a wait goes on without news, in seconds.  A wait ends at once on
 * SIGINT/SIGTERM (sm_interrupted). */
#define SM_BLOCKJOB_LOST_AFTER 30.0    /* libvirt shows a job QEMU does not run */
#define SM_BLOCKJOB_STUCK_AFTER 600.0  /* the job runs; neither cur nor end moves */

/* What a wait has seen of one disk's job; pure, so the bounds are unit
 * tested with a made-up clock. */
struct sm_jobwatch {
	double seen_at;      /* when the job last existed (or the wait began) */
	double moved_at;     /* when cur or end last changed (or the wait began) */
	unsigned long long cur, end;
	bool have;           /* cur and end were seen */
	double lost_after, stuck_after;
};

enum sm_jobwatch_verdict {
	SM_JOBWATCH_WAIT,    /* keep waiting */
	SM_JOBWATCH_LOST,    /* no block job for lost_after seconds */
	SM_JOBWATCH_STUCK,   /* no progress for stuck_after seconds */
};

void sm_jobwatch_init(struct sm_jobwatch *w, double now);
/* One look at the job at time now: exists says whether libvirt reports a
 * block job on the disk (then with cur and end). */
enum sm_jobwatch_verdict sm_jobwatch_step(struct sm_jobwatch *w, double now, bool exists,
					  unsigned long long cur, unsigned long long end);

/* Called about once a second while waiting; return false to stop waiting. */
typedef bool (*sm_blockjob_progress_fn)(void *ctx, const char *target,
					unsigned long long cur, unsigned long long end);
/* Wait until the jobs on every target are ready to pivot. */
int sm_blockjob_wait_ready(struct sm_virt *v, virDomainPtr dom, const char *const *targets,
			   size_t n, sm_blockjob_progress_fn progress, void *ctx);
/* Whether target's job has ended (failed, cancelled or completed) by its
 * last event: such a job must be neither pivoted nor cancelled. */
bool sm_blockjob_ended(struct sm_virt *v, const char *target);
/* 0 when target's job still runs; else -1 with why it ended (QEMU's error
 * text for a failed job). */
int sm_blockjob_alive(struct sm_virt *v, virDomainPtr dom, const char *target);
/* Pivot target's job and check the disk's active image is now expect_path. */
int sm_blockjob_pivot(virDomainPtr dom, const char *target, const char *expect_path);
/* Cancel target's job without pivoting; the disk stays on its current image. */
int sm_blockjob_cancel(virDomainPtr dom, const char *target);
/* The image file on top of QEMU's own device for the disk whose live-XML
 * alias is alias, from QEMU's query-block reply (QEMU's view, which libvirt
 * can lose: a pivot it did not record).  Pure, for unit tests: NULL when the
 * reply does not name one. */
char *sm_blockjob_qemu_top_parse(const char *reply, const char *alias);
/* The same, asked of QEMU through libvirt (a read-only query-block); NULL
 * with an error when it cannot be asked or does not say. */
char *sm_blockjob_qemu_top(virDomainPtr dom, const char *alias);
/* The names of QEMU's block nodes (query-named-block-nodes reply) that have
 * path open, as "libvirt-5-format, libvirt-5-storage"; NULL for none.  Pure,
 * for unit tests. */
char *sm_blockjob_qemu_nodes_parse(const char *reply, const char *path);
/* The same, asked of QEMU through libvirt: 1 with *nodes set when a node
 * has path open, 0 when none, -1 with an error. */
int sm_blockjob_qemu_nodes(virDomainPtr dom, const char *path, char **nodes);

/* Whether QEMU says the active commit of disk target (its job named
 * "commit-TARGET-...") is ready: 1 ready, 0 not (or no such job), -1 with an
 * error. */
int sm_blockjob_qemu_commit_ready(virDomainPtr dom, const char *target);
/* 1 when a block job runs on target, 0 when none, -1 on error. */
int sm_blockjob_running(virDomainPtr dom, const char *target);

/* What libvirt lost of a block job start or pivot when libvirtd died inside
 * the call (virDomainBlockCopy, virDomainBlockCommit, the pivot of a
 * shallow copy, which opens the destination chain): QEMU may run a job
 * libvirt never recorded ("copy-vda-libvirt-3-format"), and keep nodes
 * open on the job's files that libvirt's next attempt names again
 * ("Duplicate nodes with node-name='libvirt-4-storage'").  Only when
 * QEMU has one of paths open (its fds; nothing is asked of QEMU else): when
 * libvirt shows no job on target, each QEMU job of target is cancelled and
 * dismissed; each node of libvirt's naming on paths (in order: put a
 * file before its backing file) is removed (QEMU refuses to remove a node
 * in use), by QMP through libvirt.  0 with *note NULL when there was
 * nothing, or a note saying what was found and cleared; -1 with an error
 * naming what QEMU still holds. */
int sm_blockjob_clear_lost(virDomainPtr dom, const char *target, const char *const *paths,
			   size_t npaths, char **note);

#endif
