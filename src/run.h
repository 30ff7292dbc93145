/* run.h: the one place snapmove starts other programs (qemu-img).
 *
 * The argv is passed straight to execvp (no shell), the child runs with LC_ALL=C,
 * and its stdout and stderr are captured.  Unit tests swap the runner for a fake
 * with sm_run_set_runner().
 */
#ifndef SM_RUN_H
#define SM_RUN_H

#include <stdbool.h>

struct sm_run_result {
	int status;  /* exit status, or 128 + signal number */
	char *out;   /* captured stdout, NUL-terminated */
	char *err;   /* captured stderr, NUL-terminated */
};

typedef int (*sm_runner)(const char *const *argv, struct sm_run_result *res);

/* Run argv to completion.  Returns 0 when it ran and exited 0; otherwise records
 * an error naming the program and its stderr and returns -1.  res may be NULL;
 * when given it is filled in either way and must be released. */
int sm_run(const char *const *argv, struct sm_run_result *res);
void sm_run_result_release(struct sm_run_result *res);
/* Run a program (a hook) with env ("NAME=value" strings, NULL-terminated)
 * added to snapmove's, in its own process group, killed with everything it
 * started after timeout seconds (0: no limit; *timed_out tells).  Always the
 * real runner.  Returns 0 when it ran (whatever its exit status), -1 when it
 * could not be started.  res must be released. */
int sm_run_limited(const char *const *argv, const char *const *env, double timeout,
		   struct sm_run_result *res, bool *timed_out);
/* Replace the runner (NULL restores the real one).  For tests. */
void sm_run_set_runner(sm_runner fn);

#endif
