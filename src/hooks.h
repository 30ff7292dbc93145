/* hooks.h: programs an engine or admin puts in the hooks directory to be told
 * of, prepare for, or veto the steps of a move (vdsm's hooks, for snapmove).
 *
 * HOOKS_DIR/POINT/ holds executables run in name order at POINT:
 * before_move, after_snapshot, before_pivot, after_pivot, after_move,
 * after_abort, on_failure.  Each gets the job's facts in its environment and
 * SNAPMOVE_DOMXML, a read-only copy of the domain XML.  A before_* hook that
 * exits non-zero (or runs past the time limit and is killed) vetoes the step;
 * other hooks' failures are reported and change nothing.  Hooks run as root,
 * so a hook or folder not owned by root, writable by group or others, or not
 * a regular executable file is refused.  Every run is journaled.
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
/* Run the hooks of point for job c.  For a before_* point returns -1 with an
 * error naming the hook and its stderr when one vetoes (and sets
 * c->vetoed); otherwise 0, reporting failures as warnings. */
int sm_hooks_run(struct sm_jobctx *c, const char *point);

#endif
