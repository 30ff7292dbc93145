/* cleanup.h: deleting what a finished move left at the source.
 *
 * After a completed move the source images are no longer the domain's; they
 * stay until the user asks ('move --delete-source', 'snapmove cleanup JOB').
 * Candidates are the files the job journaled at plan time as its source
 * chain, nothing else.  One is deleted only when no domain on the connection
 * (live or defined) and no other image's backing pointer uses it, and when
 * the re-check right before unlinkat (sm_srcfile_unlink) passes.  Each
 * deletion is journaled.  A source block device (a disk that was one image
 * on a device) is never unlinked: it is handed to the provisioner that made
 * it (sm_provision_remove) when the journal says one did, its node still has
 * the journaled device number, no domain names it and no process holds it;
 * otherwise it is kept, with a line saying why.
 */
#ifndef SM_CLEANUP_H
#define SM_CLEANUP_H

#include <stddef.h>

#include "chain/usage.h"
#include "journal.h"
#include "srcfile.h"
#include "progress.h"
#include "virt.h"

struct sm_cleanup_item {
	char *path;
	unsigned long long bytes;  /* allocated */
	char *blocker;             /* who still uses it, or NULL: it can go */
	struct sm_srcfile file;    /* as journaled */
};

/* What of job_id's source could be deleted, and what blocks the rest. */
int sm_cleanup_plan(struct sm_virt *v, struct sm_journal *j, long long job_id,
		    struct sm_cleanup_item **items, size_t *n);
void sm_cleanup_items_free(struct sm_cleanup_item *items, size_t n);
/* Delete what can go (source devices through their provisioner, see above);
 * *freed gets the bytes freed. */
int sm_cleanup_run(struct sm_virt *v, struct sm_journal *j, long long job_id,
		   struct sm_progress *pr, unsigned long long *freed);
/* Why the source block device at path must stay (a phrase to free), or
 * NULL when it may be handed to its provisioner's remove: *id its device
 * row (0: none).  It goes only when the journal holds a device at path that
 * 'snapmove provision create', or a move that is done, made (created or
 * removing), the node still has the journaled device number, no use in u
 * names it (by path or device number) and no process holds QEMU's lock on
 * it. */
char *sm_cleanup_device_blocker(struct sm_journal *j, const char *path,
				const struct sm_usage *u, long long *id);
/* Pure: set the blocker of each item that a user in u other than an item
 * going away uses (to a fixed point).  Users only ever block: an item is
 * never unblocked, and nothing but an item can be deleted. */
void sm_cleanup_block(struct sm_cleanup_item *items, size_t n, const struct sm_usage *u);
/* Remove a finished job from the journal (done or aborted only). */
int sm_job_forget(struct sm_journal *j, long long job_id);

#endif
