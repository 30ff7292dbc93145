/* run.h: the one place snapmove starts other programs (qemu-img, hooks, the
 * test hook, the moves of a rebalance).
 *
 * The argv goes straight to execve (no shell).  A program named without a
 * '/' (qemu-img) is looked up once in the system folders of SM_RUN_PATH,
 * never in the caller's PATH, and every child gets an environment snapmove
 * builds (by default LC_ALL=C and PATH=SM_RUN_PATH), never the caller's
 * LD_*, BASH_ENV or secrets.  The child's argv and environment are built
 * before fork; between fork and exec the child makes only async-signal-safe
 * calls.  Its stdout and stderr are captured.  Unit tests swap the runner of
 * sm_run for a fake with sm_run_set_runner().
 */
#ifndef SM_RUN_H
#define SM_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The folders programs are looked up in, and the PATH children get. */
#define SM_RUN_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

struct sm_run_result {
	int status;  /* exit status, or 128 + signal number */
	char *out;   /* captured stdout, NUL-terminated */
	char *err;   /* captured stderr, NUL-terminated */
};

typedef int (*sm_runner)(const char *const *argv, struct sm_run_result *res);

/* Run argv to completion with the default environment.  Returns 0 when it
 * ran and exited 0; otherwise records an error naming the program and its
 * stderr and returns -1.  res may be NULL; when given it is filled in either
 * way and must be released. */
int sm_run(const char *const *argv, struct sm_run_result *res);
/* sm_run with env ("NAME=value" strings, NULL-terminated) as the child's
 * whole environment, always the real runner.  For the test hook. */
int sm_run_with_env(const char *const *argv, const char *const *env, struct sm_run_result *res);
void sm_run_result_release(struct sm_run_result *res);

/* One child, as the hooks start it. */
struct sm_spawn {
	const char *const *argv;
	const char *const *env;  /* its whole environment; NULL: the default */
	int exec_fd;             /* run this open file (fexecve), -1: argv[0] */
	bool exec_fd_binary;     /* (sm_run_start) exec_fd is no #! script */
	double timeout;          /* seconds, 0: no limit */
};
/* Start sp in its own process group and capture its output.  Once the
 * program exits, what else is left in its process group is killed and its
 * output is read for at most 0.2 s more (a daemon it started elsewhere may
 * hold the pipes forever); past the timeout the group is killed (*timed_out
 * set) and likewise let go of.  No signal ever goes to a reaped pid.  Always
 * the real runner.  Returns 0 when it ran, whatever its exit status (127 and
 * "cannot run" in res->err when the exec itself failed); -1 when it could
 * not be started.  res must be released. */
int sm_run_spawn(const struct sm_spawn *sp, struct sm_run_result *res, bool *timed_out);

/* A program started by sm_run_start and not yet reaped. */
struct sm_run_child {
	pid_t pid;   /* 0 once reaped */
	int pidfd;   /* -1 where the kernel has no pidfd_open */
};
/* Start sp as sm_run_spawn does (its own process group, stdin /dev/null,
 * sp->env built by the caller before this call, sp->exec_fd run with
 * fexecve), with stdout going to out_fd and stderr to err_fd, and return at once
 * (sp->timeout is not used).  With sp->exec_fd_binary the open file is a
 * binary, not a #! script: it stays close-on-exec, so the program does not
 * inherit it.  -1 with an error when it could not be started (the exec
 * failing included). */
int sm_run_start(const struct sm_spawn *sp, int out_fd, int err_fd,
		 struct sm_run_child *child);
/* Wait until one of the n children (those with pid > 0) exits, reap it (and
 * only it: never waitpid(-1)) and return its index, with its status (exit
 * status, or 128 + signal number).  -1 when a signal interrupted the wait
 * (errno EINTR) or none is left to wait for. */
int sm_run_wait_any(struct sm_run_child *children, size_t n, int *status);
/* An environment as snapmove gives its children: PATH (SM_RUN_PATH),
 * LC_ALL=C, HOME=/root, and of the caller's variables only those named in
 * keep (NULL-terminated) that it has.  Free it with sm_run_env_free(). */
char **sm_run_env_new(const char *const *keep);
void sm_run_env_free(char **env);

/* The absolute path of program name (no '/') in the folders of SM_RUN_PATH,
 * looked up once and remembered; NULL with an error when none has it. */
const char *sm_run_which(const char *name);

/* Replace the runner (NULL restores the real one).  For tests. */
void sm_run_set_runner(sm_runner fn);

#endif
