/* resume.h: finish or undo a job that stopped half-way.
 *
 * Both take the job's lock, load it from the journal, reconcile it with
 * libvirt and the files, and then go on from where each disk really is:
 * live when the domain runs, with qemu-img when it is shut off.  A transient
 * domain that is gone leaves nothing to change: they report where its data
 * is.  docs/design.md lists what each does at every phase.
 */
#ifndef SM_RESUME_H
#define SM_RESUME_H

#include "journal.h"
#include "job/outcome.h"
#include "progress.h"
#include "virt.h"

enum sm_abort_via {
	SM_ABORT_COMMIT,  /* active commit of the overlay into the original image */
	SM_ABORT_STREAM,  /* block stream of the original image into the overlay */
};

/* Both fill r (its on_done set or NULL beforehand) with what happened, for
 * src/report.c to print; they print nothing. */
enum sm_move_result sm_resume(struct sm_virt *v, struct sm_journal *j, long long job_id,
			      struct sm_progress *pr, struct sm_job_result *r);
enum sm_move_result sm_abort(struct sm_virt *v, struct sm_journal *j, long long job_id,
			     enum sm_abort_via via, struct sm_progress *pr, struct sm_job_result *r);

#endif
