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

struct sm_jobctx;

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
/* Run the hooks of point for job c.  For a before_* point returns -1 with an
 * error naming the hook and its stderr when one vetoes (and sets
 * c->vetoed); otherwise 0, reporting failures as warnings. */
int sm_hooks_run(struct sm_jobctx *c, const char *point);

#endif
