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

#include "job/opts.h"
#include "job/outcome.h"
#include "journal.h"
#include "progress.h"
#include "virt.h"

/* Run a move.  *job_id is 0 when no job was opened.  r (its on_done set or
 * NULL beforehand) is filled with what happened, or with the plan of a dry
 * run, for src/report.c to print; nothing is printed here. */
enum sm_move_result sm_move(struct sm_virt *v, struct sm_journal *j,
			    const struct sm_move_opts *o, struct sm_progress *pr,
			    long long *job_id, struct sm_job_result *r);

#endif
