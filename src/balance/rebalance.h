/* rebalance.h: 'snapmove rebalance': take stock, plan, explain, and carry out
 * the plan as ordinary move jobs, at most N at once under one bandwidth
 * budget, journaled so an interrupted rebalance resumes where it stopped.
 *
 * Each move runs as a child 'snapmove move ... --delete-source' (its own
 * process, libvirt connection and job lock, exactly what a user would run),
 * started through run.c: the program the rebalance was started as (opened
 * once, fexecve), and an environment of snapmove's own (see rebalance.c's
 * child_vars); its output goes to a log beside the journal.  Source images are deleted
 * after each move (when no domain or image uses them): that is what frees
 * the space the plan counts on.
 */
#ifndef SM_REBALANCE_H
#define SM_REBALANCE_H

#include <stdbool.h>

#include "balance/inventory.h"
#include "balance/plan.h"
#include "journal.h"
#include "progress.h"
#include "virt.h"

struct sm_rebalance_opts {
	struct sm_inventory_opts inv;
	const char *drain;          /* storage to empty, or NULL */
	double target_free;         /* percent, when not draining */
	unsigned max_parallel;
	unsigned long long bandwidth_mib;  /* the budget all moves share; 0: none */
	bool stop_on_error;
	bool dry_run;
	bool resume;                /* continue the last unfinished rebalance */
	const char *db_path;        /* for the child moves */
	const char *uri;
	/* Shown the plan (and whether it is a dry run) once it is made, before
	 * any move runs; NULL: nobody is shown it.  The CLI passes
	 * sm_report_rebalance_plan (src/report.c). */
	void (*show_plan)(const struct sm_inventory *inv, const struct sm_balance_plan *plan,
			  bool dry_run);
};

enum sm_rebalance_result {
	SM_REBALANCE_OK,
	SM_REBALANCE_REFUSED,   /* nothing moved: bad input or an impossible goal */
	SM_REBALANCE_FAILED,    /* some moves failed (resumable) */
};

enum sm_rebalance_result sm_rebalance(struct sm_virt *v, struct sm_journal *j,
				      const struct sm_rebalance_opts *o, struct sm_progress *pr);

#endif
