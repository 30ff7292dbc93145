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
};

enum sm_rebalance_result {
	SM_REBALANCE_OK,
	SM_REBALANCE_REFUSED,   /* nothing moved: bad input or an impossible goal */
	SM_REBALANCE_FAILED,    /* some moves failed (resumable) */
};

/* The states of a move of a rebalance, stored by name. */
enum sm_rmove_state {
	SM_RMOVE_PLANNED,
	SM_RMOVE_RUNNING,
	SM_RMOVE_DONE,
	SM_RMOVE_FAILED,
	SM_RMOVE_STATE_LAST
};

const char *sm_rmove_state_name(enum sm_rmove_state s);
int sm_rmove_state_from_name(const char *name);

/* A rebalance as the journal holds it, every value checked. */
struct sm_rebalance_move_row {
	long long seq;              /* 1.. */
	char *domain;
	char *disk;
	bool running;               /* the domain ran when planned */
	char *from;                 /* absolute folders */
	char *to_dir;
	unsigned long long bytes;
	enum sm_rmove_state state;
	long long job;              /* 0: none yet (NULL or 0 in the journal) */
};

struct sm_rebalance_row {
	unsigned max_parallel;      /* 1..SM_REBALANCE_MAX_PARALLEL */
	unsigned long long bandwidth_mib;
	bool stop_on_error;
	long long job_floor;        /* the highest job id before it began */
	struct sm_rebalance_move_row *moves;
	size_t nmoves;
};

#define SM_REBALANCE_MAX_PARALLEL 16

/* Read rebalance id and its moves: 0, -1 (no such rebalance, a database
 * error), -2 a row is malformed ("journal row of rebalance ID is malformed
 * (...)").  out is empty unless 0. */
int sm_rebalance_load(struct sm_journal *j, long long id, struct sm_rebalance_row *out);
void sm_rebalance_row_release(struct sm_rebalance_row *r);
/* The newest rebalance that is not done: 1 (*id set), 0 none, -1 error, -2
 * its row is malformed (a state this version does not write). */
int sm_rebalance_unfinished(struct sm_journal *j, long long *id);

enum sm_rebalance_result sm_rebalance(struct sm_virt *v, struct sm_journal *j,
				      const struct sm_rebalance_opts *o, struct sm_progress *pr);

#endif
