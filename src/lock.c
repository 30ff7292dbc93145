/* lock.c: per-job (and per provisioned device) flock files beside the
 * journal. */
#include "lock.h"
#include "journal.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Take the lock file JOURNAL.SUFFIX.lock of what ("job 3") or fail at once
 * naming the process holding it. */
static int take(struct sm_journal *j, const char *suffix, const char *what,
		struct sm_job_lock *out)
{
	char pid[32];
	ssize_t n;

	out->path = sm_xasprintf("%s.%s.lock", sm_journal_path(j), suffix);
	out->fd = -1;
	/* A lock left by an older snapmove may be 0644: made 0600, and never
	 * a link (the journal's folder is the caller's alone, see journal.c). */
	if (sm_journal_check_file(out->path) < 0)
		goto error;
	out->fd = open(out->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out->fd < 0) {
		sm_error("cannot open the lock of %s ('%s'): %s", what, out->path,
			 strerror(errno));
		goto error;
	}
	if (flock(out->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			n = pread(out->fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			sm_error("%s is being run by another snapmove process (pid %s); "
				 "wait for it to finish or stop it first", what,
				 pid[0] ? pid : "unknown");
		} else {
			sm_error("cannot lock %s: %s", what, strerror(errno));
		}
		goto error;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(out->fd, 0) < 0 || pwrite(out->fd, pid, (size_t)n, 0) != n) {
		sm_error("cannot write the lock of %s: %s", what, strerror(errno));
		goto error;
	}
	return 0;

error:
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
	free(out->path);
	out->path = NULL;
	return -1;
}

int sm_job_lock(struct sm_journal *j, long long job_id, struct sm_job_lock *out)
{
	char suffix[32], what[32];

	snprintf(suffix, sizeof(suffix), "job-%lld", job_id);
	snprintf(what, sizeof(what), "job %lld", job_id);
	return take(j, suffix, what, out);
}

int sm_device_lock(struct sm_journal *j, long long device_id, struct sm_job_lock *out)
{
	char suffix[32], what[32];

	snprintf(suffix, sizeof(suffix), "device-%lld", device_id);
	snprintf(what, sizeof(what), "device %lld", device_id);
	return take(j, suffix, what, out);
}

void sm_job_unlock(struct sm_job_lock *l, int remove)
{
	if (!l || l->fd < 0)
		return;
	if (remove)
		unlink(l->path);
	close(l->fd);
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}
