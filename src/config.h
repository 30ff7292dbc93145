/* config.h: /etc/snapmove/snapmove.conf, the host's defaults (ini, read with
 * Debian's libinih).  The command line wins over it; 'snapmove config' prints
 * what is in force and where each value comes from.
 *
 *   [move]       bandwidth = MIB (0: unlimited), verify = yes|no,
 *                sync-writes = auto|on|off, overlay-dir = DIR
 *   [hooks]      dir = DIR, timeout = SEC
 *   [rebalance]  storage = PATH_OR_POOL (one per line), max-parallel = N,
 *                bandwidth = MIB
 *
 * snapmove runs as root and the file sets where hooks come from: it and every
 * folder above it must be root's (or the caller's) and writable by no one
 * else, and it is never a symbolic link; otherwise nothing runs.
 */
#ifndef SM_CONFIG_H
#define SM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define SM_CONFIG_PATH "/etc/snapmove/snapmove.conf"
#define SM_CONFIG_MAX_STORAGES 64

/* Where a value comes from: NULL for the built-in default, else "FILE:LINE"
 * or "command line". */
struct sm_config {
	char *path;  /* the file read, NULL when there was none */
	unsigned long long move_bandwidth;
	char *move_bandwidth_from;
	bool verify;
	char *verify_from;
	char *sync_writes;  /* auto, on, off */
	char *sync_writes_from;
	char *overlay_dir;  /* NULL: the destination */
	char *overlay_dir_from;
	char *hooks_dir;
	char *hooks_dir_from;
	unsigned long long hook_timeout;
	char *hook_timeout_from;
	char *storages[SM_CONFIG_MAX_STORAGES];
	size_t nstorages;
	char *storages_from[SM_CONFIG_MAX_STORAGES];
	unsigned long long max_parallel;
	char *max_parallel_from;
	unsigned long long rebalance_bandwidth;
	char *rebalance_bandwidth_from;
};

/* The defaults, then PATH over them.  explicit: PATH was asked for (--config),
 * so a missing file is an error; the default path may be missing.  -1 with
 * the error (a file that is not trustworthy, a bad line: FILE:LINE, what, fix). */
int sm_config_load(const char *path, bool explicit, struct sm_config *out);
/* The configuration in force in this process (set once by main), for what
 * starts other snapmove processes (a rebalance's moves get its --config);
 * NULL before. */
void sm_config_set_current(const struct sm_config *c);
const struct sm_config *sm_config_current(void);
/* Print every value in force with where it comes from. */
void sm_config_print(const struct sm_config *c, FILE *f);

#endif
