/* job_run.h: the job state machine that move, resume and abort share.
 *
 * A job context holds what the journal recorded of a move (its plan and
 * options) and what is true now (each disk's state, whether a mirror or a
 * commit runs).  Each phase is idempotent: it acts only on the disks that
 * have not passed it, so the same phase list finishes a fresh move and one
 * that stopped anywhere.  reconcile.c fills in the "what is true now" part for
 * resume and abort; see docs/design.md for the states and invariants.
 */
#ifndef SM_JOB_RUN_H
#define SM_JOB_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "chain/chain.h"
#include "chain/plan.h"
#include "copy/copy.h"
#include "job/outcome.h"
#include "states.h"
#include "journal.h"
#include "progress.h"
#include "virt.h"

enum sm_sync_writes {
	SM_SYNC_WRITES_AUTO,  /* switch a mirror that does not converge */
	SM_SYNC_WRITES_ON,    /* write-blocking from the start */
	SM_SYNC_WRITES_OFF,   /* never */
};

const char *sm_sync_writes_name(enum sm_sync_writes s);
int sm_sync_writes_from_name(const char *name);

/* One disk of a job: how far it has come and what runs on it now. */
struct sm_job_disk {
	enum sm_disk_state state;      /* how far it has come */
	bool mirroring;                /* a copy job onto the destination overlay runs */
	bool committing;               /* an active commit runs */
	bool commit_unseen;            /* ...one libvirt tracks but shows no <mirror>
					* for (libvirtd died inside its start): never
					* waited for, only cancelled */
	char *failed;                  /* why it stopped, NULL while fine */
	bool sync_mode;                /* its mirror is write-blocking */
	bool pivoting;                 /* a pivot may have happened unjournaled */
	bool foreign;                  /* someone else changed its chain */
	bool streamed;                 /* an 'abort --via stream' pulled its original
					* image into the source overlay (reconcile.h) */
	long long src_dev, dst_dev;    /* the provisioned devices its overlays are on
					* (journal ids, ovdev.c); 0: files */
};

/* The scratch of one wait for block jobs: the convergence watch (phase
 * sync) and the progress label. */
struct sm_job_wait {
	bool watching;
	bool stalled;
	double wait_started;
	double best_at;
	unsigned long long best_remaining;
	double ready_within;
	const char *label;             /* progress label of the current wait */
};

struct sm_jobctx {
	struct sm_virt *v;
	struct sm_journal *j;
	struct sm_progress *pr;
	long long job;
	char *domain_name;
	char uuid[VIR_UUID_STRING_BUFLEN];
	bool persistent;
	char *dest;
	unsigned long long bandwidth_mib;
	bool keep_overlay;
	bool quiesce;
	bool verify;
	enum sm_copy_method copy_method;
	enum sm_sync_writes sync_writes;
	double converge_timeout;       /* seconds without progress before a switch */
	bool delete_source;            /* delete the unused source images when done */
	bool dest_zeroed;              /* --dest-zeroed: the --dest-dev devices read as
					* zeros (not journaled: a resumed copy writes
					* the zeros, as without it) */

	virDomainPtr dom;              /* NULL when the domain is gone */
	bool running;                  /* the domain runs (live operations) */
	struct sm_domain_disks live;   /* all disks of the domain, for the snapshot */

	struct sm_plan_disk *plans;
	size_t nplans;
	struct sm_job_disk *disks;     /* per plan: what is true of that disk now */
	struct sm_job_wait wait;       /* the current wait (phase sync, collapse) */
	unsigned parallel;             /* copies at once */
	bool trim;                     /* --trim: the guest agent trims when done */
	bool vetoed;                   /* a before_* hook said no */
	bool acted;                    /* the running phase changed something */
	const char *phase_name;        /* the running phase, for hooks */
	unsigned long long overlay_chunk;  /* overlays on devices (ovdev.c): their
					    * first size and growth step; 0: files */
	struct sm_job_grow *grow;      /* the watcher growing them (grow.c), or NULL */
	/* Destination files open since this process created (or first
	 * checked) them: every later write goes through the fd, never the name
	 * (files.c, under its lock). */
	struct sm_held_file *held;
	size_t nheld;
};

/* Allocate the plans and disks for nplans disks. */
void sm_jobctx_alloc(struct sm_jobctx *c, size_t nplans);
void sm_jobctx_release(struct sm_jobctx *c);

/* Which order of the phase table runs: a new move, or a resume. */
enum sm_job_order {
	SM_JOB_ORDER_MOVE,
	SM_JOB_ORDER_RESUME,
};

/* Run the phases in order for a running domain.  A disk that fails stops where
 * it is (its block jobs cancelled, the domain on a consistent chain for it)
 * while the other disks go on; a failure of the whole job (the snapshot, the
 * journal, an interrupt) stops all.  Either way the job is recorded as failed
 * (resumable), each disk's place is reported, and -1 returned. */
int sm_job_run(struct sm_jobctx *c, enum sm_job_order order);

/* The phases in the order that runs them (runner.c's phase table): up to
 * max of them into out; returns how many. */
size_t sm_job_phases(enum sm_job_order order, enum sm_phase *out, size_t max);

struct sm_job_lock;
/* The ending move, resume and abort share.  ret SM_MOVE_OK: the job's work
 * is done: close it (done, or aborted for r->verb abort), run the
 * after_move or after_abort hooks, tell r->on_done, delete the source when
 * r->delete_source; otherwise the job stopped with ret.  Either way r is
 * filled (when a job was opened), the lock released and c released.
 * Returns how the command ended. */
enum sm_move_result sm_job_end(struct sm_jobctx *c, struct sm_job_lock *lock,
			       enum sm_move_result ret, struct sm_job_result *r);
/* r's disks, one per plan of c (their targets). */
void sm_job_result_init_disks(const struct sm_jobctx *c, struct sm_job_result *r);

/* The last step of every path: the job is done; prints nothing. */
int sm_job_close(struct sm_jobctx *c, enum sm_job_state state);

/* Set a disk's state in memory and in the journal. */
int sm_job_disk_state(struct sm_jobctx *c, size_t i, enum sm_disk_state s);
/* Record a file's fate in the journal ("creating" also drops the identity
 * journaled for an earlier file of that name). */
int sm_job_file(struct sm_jobctx *c, const char *path, enum sm_file_role role,
		enum sm_file_state state);
/* The journaled state of a file of the job: 1 (*state set), 0 no row, -1 a
 * database error.  A name this version does not write (an edited journal)
 * comes back as SM_FILE_STATE_LAST, equal to no state the job looks for. */
int sm_job_file_state(struct sm_jobctx *c, const char *path, enum sm_file_state *state);
/* The job just made path as fd: journal it "created" with its identity
 * (src/srcfile.c), in one transaction. */
int sm_job_file_made(struct sm_jobctx *c, const char *path, enum sm_file_role role, int fd);
/* Remove a file the job created, and journal it, only while it is the file
 * the job journaled (device and inode, in its folder reached from '/'
 * without a symlink), open in no process and in no chain of the running
 * domain (src/srcfile.c).  0: removed or gone; 1: kept, with a warning
 * naming it and why, journaled "kept"; -1: the domain's chains cannot be
 * read or the journal failed. */
int sm_job_remove_file(struct sm_jobctx *c, const char *path, enum sm_file_role role);
/* sm_job_remove_file for a name the job is about to make again: -1 when
 * the file there was kept. */
int sm_job_clear_file(struct sm_jobctx *c, const char *path, enum sm_file_role role);
/* Remove disk i's source overlay at the end of a move (sm_job_remove_file). */
int sm_job_remove_src_overlay(struct sm_jobctx *c, size_t i);
/* Copy the not yet copied images of disk i (resuming chunk journals). */
int sm_job_copy_disk(struct sm_jobctx *c, size_t i);
/* The chain of plan p from its old active image down, to read from: as libvirt
 * reports it (domain running) or as the headers name it with the formats they
 * record (shut off), checked (sm_image_check_chain), and starting with the
 * images the job planned and holding the one it kept. */
int sm_job_source_chain(struct sm_jobctx *c, const struct sm_plan_disk *p,
			struct sm_domain_disks *out);
/* Create the missing destination images of disk i. */
int sm_job_dest_chain_disk(struct sm_jobctx *c, size_t i);
/* Make the persistent definition name, for each disk, path_of(c, i) (and,
 * with backing_of, no recorded backing image other than backing_of(c, i));
 * a disk whose path_of is NULL is left as it is. */
int sm_job_define(struct sm_jobctx *c, const char *(*path_of)(const struct sm_jobctx *, size_t),
		  const char *(*format_of)(const struct sm_jobctx *, size_t),
		  const char *(*backing_of)(const struct sm_jobctx *, size_t));
/* The active image a disk ends on after a completed move. */
const char *sm_job_final_path(const struct sm_jobctx *c, size_t i);
const char *sm_job_final_format(const struct sm_jobctx *c, size_t i);
/* Wait for the jobs of disks whose flag is set to be ready to pivot. */
int sm_job_wait_ready(struct sm_jobctx *c, const bool *which, const char *label);
/* Before a block job starts or pivots on disk i: end what QEMU still runs
 * or holds open for a start or pivot libvirt lost when libvirtd died
 * inside it (sm_blockjob_clear_lost): the nodes on the job's target file
 * path (NULL: none) and, with dst_chain, on the destination images (which
 * no disk uses before the pivot).  What was found is said and warned. */
int sm_job_clear_lost(struct sm_jobctx *c, size_t i, const char *path, bool dst_chain);

/* The opening of resume and abort: refuse a finished job, take the job's
 * lock, load it (verb names the command in messages). */
int sm_job_open_existing(struct sm_jobctx *c, struct sm_virt *v, struct sm_journal *j,
			 long long job_id, struct sm_progress *pr, struct sm_job_lock *lock,
			 const char *verb);
/* Where each disk's data is, for a domain that no longer exists: r->gone,
 * and each disk's 'after' and 'where'. */
void sm_job_locate_gone(const struct sm_jobctx *c, struct sm_job_result *r);
/* Move a shut-off domain's disks: copy, rewrite the definition, clean up;
 * on failure the job is recorded as failed (resumable).  offline.c. */
int sm_job_complete_offline(struct sm_jobctx *c);
/* Copy an overlay file src to a new file dst (role for the journal) and
 * point its header at backing.  Offline resume and abort. */
int sm_job_copy_overlay(struct sm_jobctx *c, const char *src, const char *dst,
			enum sm_file_role role, const char *backing, const char *backing_format);

/* ---- overlays on provisioned devices (ovdev.c, grow.c) ---- */
/* Ask provisioner (absolute; settings its SNAPMOVE_ lines) for the two
 * overlay devices of every disk, of c->overlay_chunk bytes each, journaled
 * as the job's; the disks' rows and plans then name them.  On failure
 * what was made is removed again and -1 returned. */
int sm_job_ovdev_provision(struct sm_jobctx *c, const char *provisioner, const char *settings);
/* Find the job's overlay devices in the journal (resume, abort). */
int sm_job_ovdev_load(struct sm_jobctx *c);
/* The journal id of the overlay device at path, 0 when path is no overlay
 * device of the job. */
long long sm_job_ovdev_of(const struct sm_jobctx *c, const char *path);
/* Write an empty qcow2 overlay over backing on the job's device at path,
 * journaled as the file of role; only while path is the device journaled
 * and no disk of the domain runs on it. */
int sm_job_ovdev_format(struct sm_jobctx *c, const char *path, enum sm_file_role role,
			const char *backing, const char *backing_format, unsigned long long size);
/* path is still the device the job's provisioner made (0), else -1. */
int sm_job_ovdev_check(struct sm_jobctx *c, const char *path);
/* Remove the job's overlay device at path through its provisioner, unless a
 * disk of the domain runs on it: 0 removed (or gone), 1 kept with a
 * warning, -1 the journal or libvirt failed.  sm_job_remove_file's. */
int sm_job_ovdev_remove(struct sm_jobctx *c, const char *path, enum sm_file_role role);
/* Remove every device of the job no disk runs on (a failed provision, the
 * end of an abort). */
int sm_job_ovdev_remove_all(struct sm_jobctx *c);
/* Start the watcher that grows the overlay a disk runs on before the guest
 * fills it (grow.c): a block-threshold event, or the allocation polled,
 * extends the devices through their provisioner; a domain paused on
 * ENOSPC is extended and resumed.  No-op for overlays that are files. */
int sm_job_grow_start(struct sm_jobctx *c);
/* Stop it (waits for a run of the provisioner under way). */
void sm_job_grow_stop(struct sm_jobctx *c);
/* Grow device id to at least the journaled size of device like (a mirror
 * is about to copy like's overlay onto id's), in step with the watcher. */
int sm_job_grow_match(struct sm_jobctx *c, long long id, long long like);
/* The watcher no longer touches device id (about to be removed). */
void sm_job_grow_forget(struct sm_jobctx *c, long long id);

/* Test hooks (integration tests only, documented in docs/design.md), compiled
 * in only with -DSM_TEST_BUILD (make integration's build-test/snapmove):
 * SNAPMOVE_TEST_CRASH_AT=POINT makes snapmove SIGKILL itself at POINT;
 * SNAPMOVE_TEST_HOOK=PROGRAM runs 'PROGRAM PHASE JOB' before each phase, and
 * 'PROGRAM collapse:pivot JOB' right before the final commit's pivot. */
void sm_crash_point(const char *point);

/* How many copies to run at once by default for a destination directory:
 * the number of devices under its file system (RAID or LVM members). */
unsigned sm_job_default_parallel(const char *dest);

/* Set by SIGINT/SIGTERM: stop at the next safe point. */
extern volatile int sm_interrupted;

#endif
