/* plan.h: the rebalance planner: which disks go where so that a storage is
 * drained or every storage keeps a share of free space, moving as few bytes
 * as it can, and never letting any storage run short at any step.
 *
 * Pure logic over figures (sizes, free space, disk sizes), so it is unit
 * tested directly.  The heuristic (docs/design.md, "Rebalancing"):
 *  - drain: the drained storage's disks, largest first (while there is most
 *    room), each to the storage with the most free space that holds it;
 *  - target free: for each storage short of its share, largest shortfall
 *    first: the smallest disk that covers the shortfall alone, else the
 *    largest disk that fits and again for what is left; each to the storage
 *    with the most free space that stays at or above its own share.
 * Every step is checked in order: the destination needs the disk's bytes
 * plus the margin (the copy in flight, both overlays, which take the guest's
 * writes during the move); the source needs nothing, so a full storage can
 * be drained; the source's bytes come back after the move (the source
 * images are deleted).
 */
#ifndef SM_BALANCE_PLAN_H
#define SM_BALANCE_PLAN_H

#include <stdbool.h>
#include <stddef.h>

struct sm_storage {
	char *name;                 /* as given: a path or a pool name */
	char *dir;                  /* directory images move into */
	unsigned long long size;    /* file system size */
	unsigned long long free;    /* available now */
};

struct sm_unit {
	char *domain;
	char *disk;
	bool running;
	int storage;                /* index into the storages, -1: none of them */
	unsigned long long bytes;   /* allocated bytes that move (shared images stay) */
	char *why_not;              /* why it cannot move, or NULL */
	bool excluded;              /* left alone on purpose (--exclude): not a blocker */
};

struct sm_balance_move {
	size_t unit;
	size_t from;
	size_t to;
	unsigned long long bytes;
};

struct sm_balance_goal {
	int drain;              /* storage index to empty, or -1 */
	double target_free;     /* percent of each storage to keep free, or 0 */
};

struct sm_balance_plan {
	struct sm_balance_move *moves;
	size_t nmoves;
	unsigned long long *free_before;  /* per storage */
	unsigned long long *free_after;
	unsigned long long bytes;         /* moved in all */
};

/* Plan; -1 with the reason (naming the storage and the disk) when the goal
 * cannot be reached within the margins: nothing is to be moved then. */
int sm_balance_plan(const struct sm_storage *st, size_t nst, const struct sm_unit *units,
		    size_t nunits, const struct sm_balance_goal *goal, unsigned long long margin,
		    struct sm_balance_plan *out);
void sm_balance_plan_release(struct sm_balance_plan *p);

#endif
