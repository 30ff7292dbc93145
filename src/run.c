/* run.c: spawn a program, capture its output, report how it ended.
 * It does not interpret the output: callers parse what they asked for, and
 * it does not decide what may run: hooks.c checks a hook before handing its
 * open file here.
 */
#include "run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long the output of a program that exited is still read. */
#define SM_RUN_GRACE 0.2
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int real_runner(const char *const *argv, struct sm_run_result *res);
static sm_runner runner = real_runner;

static const char *const default_env[] = { "LC_ALL=C", "PATH=" SM_RUN_PATH, NULL };

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

/* Programs looked up so far: name and absolute path, never freed. */
static struct {
	char *name;
	char *path;
} which_cache[8];
static pthread_mutex_t which_lock = PTHREAD_MUTEX_INITIALIZER;

const char *sm_run_which(const char *name)
{
	static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };
	const char *found = NULL;
	size_t i;

	pthread_mutex_lock(&which_lock);
	for (i = 0; i < N_OF(which_cache) && which_cache[i].name; i++)
		if (strcmp(which_cache[i].name, name) == 0) {
			found = which_cache[i].path;
			break;
		}
	for (size_t d = 0; !found && d < N_OF(dirs); d++) {
		SM_AUTOFREE char *path = sm_path_join(dirs[d], name);
		struct stat sb;

		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || access(path, X_OK) < 0)
			continue;
		if (i < N_OF(which_cache)) {
			which_cache[i].name = sm_xstrdup(name);
			which_cache[i].path = sm_steal(&path);
			found = which_cache[i].path;
		} else {
			found = sm_steal(&path);  /* a full cache: looked up again next time */
		}
	}
	pthread_mutex_unlock(&which_lock);
	if (!found)
		sm_error("cannot find '%s' in %s; install it (qemu-img: the qemu-utils package)",
			 name, SM_RUN_PATH);
	return found;
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

/* fd moved above stdin, stdout and stderr (close-on-exec), so the child's
 * dup2 onto them cannot clobber it; -1 when it cannot be. */
static int above_std(int fd)
{
	int moved;

	if (fd < 0 || fd > STDERR_FILENO)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return moved;
}

/* Everything the child needs, made before fork. */
struct child {
	const char *path;  /* when exec_fd < 0 */
	int exec_fd;
	bool exec_fd_binary;  /* not a #! script: exec_fd stays close-on-exec */
	char *const *argv;
	char *const *env;
	int in_fd, out_fd, err_fd;
	int status_fd;     /* gets errno when the exec fails */
};

/* In the child of a threaded process: async-signal-safe calls only. */
static void child_exec(const struct child *ch)
{
	sigset_t none;
	int e;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Its own process group, so a time limit kills whatever it started. */
	setpgid(0, 0);
	dup2(ch->in_fd, STDIN_FILENO);  /* dup2 clears close-on-exec on the copy */
	dup2(ch->out_fd, STDOUT_FILENO);
	dup2(ch->err_fd, STDERR_FILENO);
	if (ch->exec_fd >= 0) {
		/* A #! script is read by its interpreter through /dev/fd/N:
		 * that fd must survive the exec. */
		if (!ch->exec_fd_binary)
			fcntl(ch->exec_fd, F_SETFD, 0);
		fexecve(ch->exec_fd, ch->argv, ch->env);
	} else {
		execve(ch->path, ch->argv, ch->env);
	}
	e = errno;
	if (write(ch->status_fd, &e, sizeof(e)) < 0)
		e = 0;  /* the parent then sees an exit 127 without a reason */
	_exit(127);
}

/* Has pid exited?  Asked without reaping it, so that its pid (and its
 * process group's id) cannot be reused while we may still signal them. */
static bool has_exited(pid_t pid)
{
	siginfo_t si = { 0 };

	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static int pid_fd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

/* Read the child's output until it exits (or the deadline kills it) and
 * SM_RUN_GRACE more at most; then reap it. */
static int collect(pid_t pid, int out_fd, int err_fd, double timeout, struct sm_run_result *res,
		   bool *timed_out)
{
	double deadline = timeout > 0 ? sm_monotonic() + timeout : 0, let_go = 0;
	struct pollfd fds[3];
	struct buf out = { 0 }, err = { 0 };
	bool exited = false;
	int wstatus = 0;

	fds[0] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = err_fd, .events = POLLIN };
	fds[2] = (struct pollfd){ .fd = pid_fd(pid), .events = POLLIN };
	for (;;) {
		double now = sm_monotonic(), until = 0;
		char chunk[8192];
		int wait_ms, rc;

		if (!exited && has_exited(pid)) {
			/* Not reaped yet: -pid is still its group.  What it left
			 * in the background is not the program's time. */
			exited = true;
			kill(-pid, SIGKILL);
			let_go = now + SM_RUN_GRACE;
			if (fds[2].fd >= 0) {
				close(fds[2].fd);
				fds[2].fd = -1;
			}
		}
		if (!exited && deadline && now >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);  /* should it have left its group */
			if (timed_out)
				*timed_out = true;
			deadline = 0;
		}
		if (exited && (now >= let_go || (fds[0].fd < 0 && fds[1].fd < 0)))
			break;

		if (exited)
			until = let_go;
		else if (deadline)
			until = deadline;
		wait_ms = until ? (int)((until - now) * 1000) + 1 : -1;
		if (!exited && fds[2].fd < 0 && (wait_ms < 0 || wait_ms > 50))
			wait_ms = 50;  /* no pidfd: look at the child every 50 ms */
		rc = poll(fds, 3, wait_ms);
		if (rc < 0 && errno != EINTR)
			break;
		for (int i = 0; rc > 0 && i < 2; i++) {
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
	for (int i = 0; i < 3; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	if (!exited) {  /* poll failed: do not wait on a program that runs on */
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	res->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	res->out = out.data ? out.data : sm_xstrdup("");
	res->err = err.data ? err.data : sm_xstrdup("");
	return 0;
}

/* Fork and exec ch (its stdin, stdout and stderr already set).  The pid, or
 * -1 with errno when no child could be made; *exec_errno is the errno of an
 * exec that failed (that child is reaped), 0 once the program runs. */
static pid_t fork_exec(struct child *ch, int *exec_errno)
{
	int status_pipe[2];
	ssize_t n;
	pid_t pid;
	int e = 0;

	*exec_errno = 0;
	if (pipe2(status_pipe, O_CLOEXEC) < 0)
		return -1;
	ch->status_fd = status_pipe[1] = above_std(status_pipe[1]);
	pid = ch->status_fd < 0 ? -1 : fork();
	if (pid == 0)
		child_exec(ch);
	e = errno;
	if (status_pipe[1] >= 0)
		close(status_pipe[1]);
	if (pid < 0) {
		close(status_pipe[0]);
		errno = e;
		return -1;
	}
	/* Closed by the exec (close-on-exec), or errno from a failed one. */
	e = 0;
	while ((n = read(status_pipe[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(status_pipe[0]);
	if (n == (ssize_t)sizeof(e)) {
		int wstatus;

		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
		*exec_errno = e;
	}
	return pid;
}

int sm_run_spawn(const struct sm_spawn *sp, struct sm_run_result *res, bool *timed_out)
{
	const char *name = sp->argv[0];
	struct child ch = {
		.path = name,
		.exec_fd = sp->exec_fd,
		.argv = (char *const *)sp->argv,
		.env = (char *const *)(sp->env ? sp->env : default_env),
		.in_fd = -1,
	};
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	int exec_fd = -1, e = 0, ret = -1;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (timed_out)
		*timed_out = false;
	if (ch.exec_fd < 0 && !strchr(name, '/') && !(ch.path = sm_run_which(name)))
		return -1;
	if (ch.exec_fd >= 0 && ch.exec_fd <= STDERR_FILENO) {
		exec_fd = ch.exec_fd = fcntl(sp->exec_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		if (exec_fd < 0)
			goto failed;
	}
	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0)
		goto failed;
	ch.in_fd = above_std(open("/dev/null", O_RDONLY | O_CLOEXEC));
	ch.out_fd = out_pipe[1] = above_std(out_pipe[1]);
	ch.err_fd = err_pipe[1] = above_std(err_pipe[1]);
	if (ch.in_fd < 0 || ch.out_fd < 0 || ch.err_fd < 0)
		goto failed;
	pid = fork_exec(&ch, &e);
	if (pid < 0)
		goto failed;
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;
	if (e) {
		res->status = 127;
		res->out = sm_xstrdup("");
		res->err = sm_xasprintf("cannot run '%s': %s\n", name, strerror(e));
		ret = 0;
		goto cleanup;
	}
	ret = collect(pid, out_pipe[0], err_pipe[0], sp->timeout, res, timed_out);
	out_pipe[0] = err_pipe[0] = -1;  /* closed by collect */
	goto cleanup;

failed:
	sm_error("cannot start '%s': %s", name, strerror(errno));
cleanup:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	if (ch.in_fd >= 0)
		close(ch.in_fd);
	if (exec_fd >= 0)
		close(exec_fd);
	return ret;
}

int sm_run_start(const struct sm_spawn *sp, int out_fd, int err_fd, struct sm_run_child *child)
{
	const char *name = sp->argv[0];
	struct child ch = {
		.path = name,
		.exec_fd = sp->exec_fd,
		.exec_fd_binary = sp->exec_fd_binary,
		.argv = (char *const *)sp->argv,
		.env = (char *const *)(sp->env ? sp->env : default_env),
		.in_fd = -1,
		.out_fd = -1,
		.err_fd = -1,
	};
	int exec_fd = -1, e = 0, ret = -1;
	pid_t pid;

	child->pid = 0;
	child->pidfd = -1;
	if (ch.exec_fd < 0 && !strchr(name, '/') && !(ch.path = sm_run_which(name)))
		return -1;
	if (ch.exec_fd >= 0 && ch.exec_fd <= STDERR_FILENO) {
		exec_fd = ch.exec_fd = fcntl(sp->exec_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		if (exec_fd < 0)
			goto failed;
	}
	ch.in_fd = above_std(open("/dev/null", O_RDONLY | O_CLOEXEC));
	ch.out_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	ch.err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (ch.in_fd < 0 || ch.out_fd < 0 || ch.err_fd < 0)
		goto failed;
	pid = fork_exec(&ch, &e);
	if (pid < 0)
		goto failed;
	if (e) {
		sm_error("cannot run '%s': %s", name, strerror(e));
		goto cleanup;
	}
	/* Not reaped before sm_run_wait_any: the pid stays ours. */
	child->pid = pid;
	child->pidfd = pid_fd(pid);
	ret = 0;
	goto cleanup;

failed:
	sm_error("cannot start '%s': %s", name, strerror(errno));
cleanup:
	if (ch.in_fd >= 0)
		close(ch.in_fd);
	if (ch.out_fd >= 0)
		close(ch.out_fd);
	if (ch.err_fd >= 0)
		close(ch.err_fd);
	if (exec_fd >= 0)
		close(exec_fd);
	return ret;
}

/* Reap child (it has exited) and say how it ended. */
static void reap(struct sm_run_child *child, int *status)
{
	int wstatus = 0;

	while (waitpid(child->pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	*status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	if (child->pidfd >= 0)
		close(child->pidfd);
	child->pidfd = -1;
	child->pid = 0;
}

int sm_run_wait_any(struct sm_run_child *children, size_t n, int *status)
{
	struct pollfd *fds = sm_xcalloc(n ? n : 1, sizeof(*fds));
	int ret = -1;

	for (;;) {
		bool polled_all = true;
		size_t live = 0;

		for (size_t i = 0; i < n; i++) {
			fds[i] = (struct pollfd){ .fd = -1, .events = POLLIN };
			if (children[i].pid <= 0)
				continue;
			live++;
			if (has_exited(children[i].pid)) {
				reap(&children[i], status);
				ret = (int)i;
				goto done;
			}
			fds[i].fd = children[i].pidfd;
			if (fds[i].fd < 0)
				polled_all = false;
		}
		if (!live) {
			errno = ECHILD;
			goto done;
		}
		/* A pidfd is readable once its process exits; without one,
		 * look every 50 ms. */
		if (poll(fds, (nfds_t)n, polled_all ? -1 : 50) < 0 && errno == EINTR)
			goto done;
	}

done:
	free(fds);
	return ret;
}

char **sm_run_env_new(const char *const *keep)
{
	size_t n = 0, len = 3;
	char **env;

	for (size_t i = 0; keep && keep[i]; i++)
		len++;
	env = sm_xcalloc(len + 1, sizeof(*env));
	env[n++] = sm_xstrdup("PATH=" SM_RUN_PATH);
	env[n++] = sm_xstrdup("LC_ALL=C");
	env[n++] = sm_xstrdup("HOME=/root");
	for (size_t i = 0; keep && keep[i]; i++) {
		const char *v = getenv(keep[i]);

		if (v)
			env[n++] = sm_xasprintf("%s=%s", keep[i], v);
	}
	return env;
}

void sm_run_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

static int real_runner(const char *const *argv, struct sm_run_result *res)
{
	struct sm_spawn sp = { .argv = argv, .exec_fd = -1 };

	return sm_run_spawn(&sp, res, NULL);
}

/* A copy of s without trailing newlines and blanks. */
static char *trimmed(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return strndup(s, n);
}

/* Run argv with runner fn or, with env, the real one; one error if it failed. */
static int run_checked(const char *const *argv, const char *const *env, struct sm_run_result *res)
{
	struct sm_run_result local = { 0 };
	struct sm_run_result *r = res ? res : &local;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (env) {
		struct sm_spawn sp = { .argv = argv, .env = env, .exec_fd = -1 };

		if (sm_run_spawn(&sp, r, NULL) < 0)
			return -1;
	} else if (runner(argv, r) < 0) {
		return -1;
	}
	if (r->status != 0) {
		SM_AUTOFREE char *err = trimmed(r->err);

		sm_error("'%s %s' failed (exit %d): %s", argv[0], argv[1] ? argv[1] : "",
			 r->status, err && err[0] ? err : "no error output");
		ret = -1;
	}
	sm_run_result_release(&local);
	return ret;
}

int sm_run(const char *const *argv, struct sm_run_result *res)
{
	return run_checked(argv, NULL, res);
}

int sm_run_with_env(const char *const *argv, const char *const *env, struct sm_run_result *res)
{
	return run_checked(argv, env, res);
}
