/* inventory.h: what a rebalance works with: the storages named on the
 * command line (directories or storage pools, told apart by file system,
 * not by path), and every disk of every domain that lives on them, with the
 * bytes a move would take off (shared images stay) or why it cannot move.
 */
#ifndef SM_BALANCE_INVENTORY_H
#define SM_BALANCE_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "balance/plan.h"
#include "journal.h"
#include "virt.h"

struct sm_inventory {
	struct sm_storage *storages;
	size_t nstorages;
	struct sm_unit *units;
	size_t nunits;
};

struct sm_inventory_opts {
	const char *const *storages;   /* paths or pool names */
	size_t nstorages;
	const char *const *include;    /* domains to consider (none: all) */
	size_t ninclude;
	const char *const *exclude;    /* domains to leave alone */
	size_t nexclude;
	bool include_offline;          /* shut-off domains are moved offline */
};

int sm_inventory_take(struct sm_virt *v, struct sm_journal *j,
		      const struct sm_inventory_opts *o, struct sm_inventory *out);
void sm_inventory_release(struct sm_inventory *inv);
/* The index of the storage named name (as given, or by its directory). */
int sm_inventory_storage(const struct sm_inventory *inv, const char *name);

#endif
