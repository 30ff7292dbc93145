/* outcome.h: how a move, resume or abort ended, its name in the --json result
 * and the exit status the CLI gives for it (docs/events.md).
 */
#ifndef SM_JOB_OUTCOME_H
#define SM_JOB_OUTCOME_H

enum sm_move_result {
	SM_MOVE_OK,
	SM_MOVE_REFUSED,  /* validation failed: nothing was changed */
	SM_MOVE_FAILED,   /* failed after changes; the job says where it stopped */
	SM_MOVE_VETOED,   /* a before_* hook said no; the job stopped cleanly */
	SM_MOVE_INTERRUPTED,  /* SIGINT/SIGTERM; the job stopped at a safe point */
};

/* "done", "refused", ... and the exit status the CLI gives for a result. */
const char *sm_move_status_name(enum sm_move_result r);
int sm_move_exit_code(enum sm_move_result r);

#endif
