/* run.c: spawn a program, capture its output, report how it ended.
 * It does not interpret the output: callers parse what they asked for.
 */
#include "run.h"
#include "util.h"

#include <stdbool.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int real_runner(const char *const *argv, struct sm_run_result *res);
static sm_runner runner = real_runner;

void sm_run_set_runner(sm_runner fn)
{
	runner = fn ? fn : real_runner;
}

void sm_run_result_release(struct sm_run_result *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

struct buf {
	char *data;
	size_t len;
};

static void buf_append(struct buf *b, const char *p, size_t n)
{
	b->data = sm_xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void child_exec(const char *const *argv, const char *const *env, int out_fd, int err_fd)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);  /* dup2 clears close-on-exec on the copy */
	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	setenv("LC_ALL", "C", 1);
	for (size_t i = 0; env && env[i]; i++)
		putenv((char *)env[i]);
	signal(SIGPIPE, SIG_DFL);
	/* Its own process group, so a time limit kills whatever it started. */
	setpgid(0, 0);
	execvp(argv[0], (char *const *)argv);
	dprintf(STDERR_FILENO, "cannot run '%s': %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Run argv with env added, capture its output; kill its process group after
 * timeout seconds (0: none) and set *timed_out. */
static int spawn_capture(const char *const *argv, const char *const *env, double timeout,
			 struct sm_run_result *res, bool *timed_out)
{
	double deadline = timeout > 0 ? sm_monotonic() + timeout : 0;
	bool exited = false;
	int out_pipe[2], err_pipe[2];
	struct buf out = { 0 }, err = { 0 };
	struct pollfd fds[2];
	int wstatus;
	pid_t pid;

	if (pipe2(out_pipe, O_CLOEXEC) < 0)
		goto pipe_failed;
	if (pipe2(err_pipe, O_CLOEXEC) < 0) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		goto pipe_failed;
	}
	pid = fork();
	if (pid == 0)
		child_exec(argv, env, out_pipe[1], err_pipe[1]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (pid < 0) {
		close(out_pipe[0]);
		close(err_pipe[0]);
		sm_error("cannot start '%s': %s", argv[0], strerror(errno));
		return -1;
	}

	fds[0] = (struct pollfd){ .fd = out_pipe[0], .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = err_pipe[0], .events = POLLIN };
	if (timed_out)
		*timed_out = false;
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		char chunk[8192];
		int wait_ms = 200, rc;

		/* The program ended but something it started in the background
		 * still holds its output open: that is not the program's time. */
		if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
			exited = true;
			kill(-pid, SIGKILL);
		}

		if (deadline) {
			double left = deadline - sm_monotonic();

			if (left <= 0) {
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				if (timed_out)
					*timed_out = true;
				deadline = 0;
				continue;
			}
			if (left * 1000 < wait_ms)
				wait_ms = (int)(left * 1000) + 1;
		}
		rc = poll(fds, 2, wait_ms);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(fds[i].fd, chunk, sizeof(chunk));
			if (n > 0) {
				buf_append(i == 0 ? &out : &err, chunk, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(fds[i].fd);
				fds[i].fd = -1;
			}
		}
	}
	while (!exited && waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	res->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	res->out = out.data ? out.data : sm_xstrdup("");
	res->err = err.data ? err.data : sm_xstrdup("");
	return 0;

pipe_failed:
	sm_error("cannot create a pipe for '%s': %s", argv[0], strerror(errno));
	return -1;
}

static int real_runner(const char *const *argv, struct sm_run_result *res)
{
	return spawn_capture(argv, NULL, 0, res, NULL);
}

int sm_run_limited(const char *const *argv, const char *const *env, double timeout,
		   struct sm_run_result *res, bool *timed_out)
{
	memset(res, 0, sizeof(*res));
	return spawn_capture(argv, env, timeout, res, timed_out);
}

/* A copy of s without trailing newlines and blanks. */
static char *trimmed(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return strndup(s, n);
}

int sm_run(const char *const *argv, struct sm_run_result *res)
{
	struct sm_run_result local = { 0 };
	struct sm_run_result *r = res ? res : &local;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (runner(argv, r) < 0)
		return -1;
	if (r->status != 0) {
		SM_AUTOFREE char *err = trimmed(r->err);

		sm_error("'%s %s' failed (exit %d): %s", argv[0], argv[1] ? argv[1] : "",
			 r->status, err && err[0] ? err : "no error output");
		ret = -1;
	}
	sm_run_result_release(&local);
	return ret;
}
