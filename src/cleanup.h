/* cleanup.h: deleting what a finished move left at the source.
 *
 * After a completed move the source images are no longer the domain's; they
 * stay until the user asks ('move --delete-source', 'snapmove cleanup JOB').
 * An image is deleted only when no domain on the connection (live or defined)
 * and no other image's backing pointer uses it.  Each deletion is journaled.
 */
#ifndef SM_CLEANUP_H
#define SM_CLEANUP_H

#include <stddef.h>

#include "journal.h"
#include "progress.h"
#include "virt.h"

struct sm_cleanup_item {
	char *path;
	unsigned long long bytes;  /* allocated */
	char *blocker;             /* who still uses it, or NULL: it can go */
};

/* What of job_id's source could be deleted, and what blocks the rest. */
int sm_cleanup_plan(struct sm_virt *v, struct sm_journal *j, long long job_id,
		    struct sm_cleanup_item **items, size_t *n);
void sm_cleanup_items_free(struct sm_cleanup_item *items, size_t n);
/* Delete what can go; *freed gets the bytes freed. */
int sm_cleanup_run(struct sm_virt *v, struct sm_journal *j, long long job_id,
		   struct sm_progress *pr, unsigned long long *freed);
/* A flattened disk's plan lists only the top image: add the source images
 * below it (from the qcow2 headers), which the move made unused too. */
struct sm_plan_disk;
void sm_cleanup_expand_flat(struct sm_plan_disk *p);
/* Remove a finished job from the journal (done or aborted only). */
int sm_job_forget(struct sm_journal *j, long long job_id);

#endif
