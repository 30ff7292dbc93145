/* report.h: the one place that renders what the commands did: the outcome
 * of a move, resume or abort (each disk's chain before and now, files kept,
 * what --delete-source freed), a move's dry-run plan, where the data of a
 * domain that is gone is, the --json "result" event, and a rebalance's plan.
 *
 * The job engine (src/job/) and the rebalance (src/balance/) compute and
 * hand back data (struct sm_job_result, the plan); only the commands
 * (src/cli/) call this module.  Human text goes to the FILE given (the
 * commands pass sm_human()); JSON through src/events.c.
 */
#ifndef SM_REPORT_H
#define SM_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "balance/inventory.h"
#include "balance/plan.h"
#include "job/outcome.h"

/* The lines of a job that is done: "moved domain ...", "finished job ...",
 * "aborted job ...", each disk's chains, the files it kept. */
void sm_report_outcome(FILE *f, const struct sm_job_result *r);
/* sm_report_outcome on sm_human(): the sink a command sets as r->on_done,
 * so the outcome comes before what deleting the source says. */
void sm_report_job_done(const struct sm_job_result *r);
/* All a move, resume or abort shows when it has returned: the dry-run plan
 * (a JSON document under --json), or where a gone domain's data is, or the
 * outcome (unless r->on_done showed it) and what --delete-source did; then
 * the "result" event. */
void sm_report_job(FILE *f, const struct sm_job_result *r);

/* A rebalance's plan as a table: the moves, each storage's free space
 * before and after, the disks that cannot move. */
void sm_report_plan_table(FILE *f, const struct sm_inventory *inv,
			  const struct sm_balance_plan *p);
/* The sink a rebalance shows its plan through, before any move runs: the
 * table on sm_human() and/or the JSON (a document for a dry run, else the
 * "rebalance_plan" event), and for a dry run that nothing was changed. */
void sm_report_rebalance_plan(const struct sm_inventory *inv, const struct sm_balance_plan *p,
			      bool dry_run);

#endif
