/* hooks.h: programs an engine or admin puts in the hooks directory to be told
 * of, prepare for, or veto the steps of a move (vdsm's hooks, for snapmove).
 *
 * HOOKS_DIR/POINT/ holds executables run in name order at POINT:
 * before_move, after_snapshot, before_pivot, after_pivot, after_move,
 * after_abort, on_failure.  Each gets the job's facts in its environment and
 * SNAPMOVE_DOMXML, a read-only copy of the domain XML.  A before_* hook that
 * exits non-zero (or runs past the time limit and is killed) vetoes the step;
 * other hooks' failures are reported and change nothing.  Hooks run as root,
 * so a hook or any folder from / down to it not owned by root or writable by
 * group or others, or a hook not a regular executable file, is refused; a
 * hook runs as the file that was checked (fexecve), with an environment of
 * snapmove's own, not the caller's.  Every run is journaled.
 */
#ifndef SM_HOOKS_H
#define SM_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

struct sm_journal;
struct sm_progress;

#define SM_HOOKS_DIR "/etc/snapmove/hooks.d"

/* Set the hooks directory (NULL: the default) and the time limit. */
void sm_hooks_configure(const char *dir, double timeout);
/* The configured directory and time limit (for child snapmove processes). */
const char *sm_hooks_dir(void);
double sm_hooks_timeout(void);
/* Open the hooks folder dir (O_PATH) after checking every folder from /
 * down to it (links resolved first, then walked without following any);
 * -1 with an error naming the folder and why.  (Exposed for unit tests.) */
int sm_hooks_open_folder(const char *dir);
/* The whole environment of a hook: PATH (SM_RUN_PATH), LC_ALL=C, HOME=/root,
 * SNAPMOVE_EVENTS_FILE=events_file unless NULL or empty, and the SNAPMOVE_*
 * facts (anything else in facts is dropped).  NULL-terminated; free it with
 * sm_hooks_env_free(). */
char **sm_hooks_env_new(const char *events_file, const char *const *facts);
void sm_hooks_env_free(char **env);

/* One disk as its hooks are told of it (SNAPMOVE_DISKS, SNAPMOVE_SRC_CHAIN_T,
 * SNAPMOVE_DST_CHAIN_T, SNAPMOVE_CHAINS). */
struct sm_hook_disk {
	const char *target;            /* "vda" */
	const char *state;             /* how far it has come, by name */
	const char *const *src;        /* its files at the source, in chain order */
	size_t nsrc;
	const char *const *dst;        /* and at the destination */
	size_t ndst;
};

/* What the hooks of a point are told, and where their runs are recorded.
 * Filled by the job layer (src/job_hooks.c); nothing here knows a job. */
struct sm_hook_facts {
	long long job;
	const char *domain;            /* name */
	const char *uuid;
	const char *phase;             /* the running phase, by name */
	const char *dest;              /* the destination directory */
	const struct sm_hook_disk *disks;
	size_t ndisks;
	/* The domain XML for SNAPMOVE_DOMXML, malloc'd, or NULL when there is
	 * none; asked only when the point has hooks to run.  NULL: no XML. */
	char *(*domain_xml)(void *opaque);
	void *opaque;
	struct sm_journal *journal;    /* a hook_run row per run */
	struct sm_progress *progress;  /* failures that change nothing, as warnings */
};

enum sm_hook_verdict {
	SM_HOOK_OK,      /* the hooks ran (or there were none); failures were warnings */
	SM_HOOK_VETOED,  /* a before_* hook said no, or could not be run; error set */
};

/* Run the hooks of point with the job's facts f.  A before_* hook that
 * fails, runs past the time limit, or is refused vetoes the step: the
 * error names the hook and its stderr, and no later hook runs.  At any
 * other point a failure is reported as a warning and the rest run. */
enum sm_hook_verdict sm_hooks_run_point(const char *point, const struct sm_hook_facts *f);

#endif
