/* imagelock.c: probe QEMU's image locks and name the processes holding a file.
 * See imagelock.h.  It answers "is this file in use right now"; whether that use
 * is allowed is the caller's decision.
 */
#include "chain/imagelock.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* QEMU's block/file-posix.c: RAW_LOCK_PERM_BASE 100, RAW_LOCK_SHARED_BASE 200,
 * one byte per permission bit. */
enum { QEMU_LOCK_FIRST = 100, QEMU_LOCK_LEN = 200 };

/* QEMU's BLK_PERM_WRITE is bit 1: its permission byte is 101. */
enum { QEMU_LOCK_WRITE = QEMU_LOCK_FIRST + 1 };

static int probe_bytes(const char *path, off_t start, off_t len, bool *locked)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len,
	};
	struct stat sb;
	int fd, ret = -1;

	*locked = false;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		sm_error("cannot open '%s' to look for QEMU's lock on it: %s", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !(S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode))) {
		sm_error("'%s' is not a regular file or a block device; it cannot be an image",
			 path);
		goto cleanup;
	}
	/* F_OFD_GETLK reports a conflicting lock of either kind (OFD or POSIX). */
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
		sm_error("cannot look for QEMU's lock on '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	*locked = fl.l_type != F_UNLCK;
	ret = 0;

cleanup:
	close(fd);
	return ret;
}

int sm_imagelock_probe(const char *path, bool *locked)
{
	return probe_bytes(path, QEMU_LOCK_FIRST, QEMU_LOCK_LEN, locked);
}

int sm_imagelock_probe_write(const char *path, bool *writing)
{
	return probe_bytes(path, QEMU_LOCK_WRITE, 1, writing);
}

/* The command name of pid, "?" when unreadable. */
static char *comm_of(const char *pid)
{
	SM_AUTOFREE char *p = sm_xasprintf("/proc/%s/comm", pid);
	char buf[64] = "?";
	FILE *f = fopen(p, "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	return sm_xstrdup(buf);
}

static bool pid_has_open(const char *pid, dev_t dev, ino_t ino)
{
	SM_AUTOFREE char *fds = sm_xasprintf("/proc/%s/fd", pid);
	DIR *d = opendir(fds);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		/* stat through the magic link: the open file itself. */
		if (fstatat(dirfd(d), e->d_name, &sb, 0) == 0 && sb.st_dev == dev &&
		    sb.st_ino == ino)
			found = true;
	}
	closedir(d);
	return found;
}

char *sm_imagelock_holders(const char *path)
{
	struct stat want;
	DIR *proc;
	struct dirent *e;
	char *list = NULL;

	if (stat(path, &want) < 0)
		return NULL;
	proc = opendir("/proc");
	if (!proc)
		return NULL;
	while ((e = readdir(proc))) {
		SM_AUTOFREE char *comm = NULL;
		char *more;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (atoi(e->d_name) == getpid() ||
		    !pid_has_open(e->d_name, want.st_dev, want.st_ino))
			continue;
		comm = comm_of(e->d_name);
		more = list ? sm_xasprintf("%s, %s (pid %s)", list, comm, e->d_name)
			    : sm_xasprintf("%s (pid %s)", comm, e->d_name);
		free(list);
		list = more;
	}
	closedir(proc);
	return list;
}

/* Does pid's command line say '-name guest=DOMAIN' (commas in the name are
 * doubled, as libvirt writes them), with ',' or the end after it? */
static bool runs_guest(const char *pid, const char *domain)
{
	SM_AUTOFREE char *p = sm_xasprintf("/proc/%s/cmdline", pid);
	SM_AUTOFREE char *want = NULL;
	char buf[8192];
	size_t n, len, wlen = 0;
	bool after_name = false, found = false;
	FILE *f = fopen(p, "re");

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	want = sm_xcalloc(1, 2 * strlen(domain) + 7);
	strcpy(want, "guest=");
	wlen = 6;
	for (const char *s = domain; *s; s++) {
		want[wlen++] = *s;
		if (*s == ',')
			want[wlen++] = ',';
	}
	for (size_t off = 0; off < n && !found; off += len + 1) {
		const char *arg = buf + off;

		len = strlen(arg);
		if (after_name && strncmp(arg, want, wlen) == 0 &&
		    (arg[wlen] == '\0' || (arg[wlen] == ',' && arg[wlen + 1] != ',')))
			found = true;
		after_name = strcmp(arg, "-name") == 0;
	}
	return found;
}

int sm_imagelock_domain_qemu(const char *domain)
{
	SM_AUTOFREE char *pidfile = sm_xasprintf("/run/libvirt/qemu/%s.pid", domain);
	char buf[32] = "";
	DIR *proc;
	struct dirent *e;
	int pid = 0;
	FILE *f = fopen(pidfile, "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
		if (atoi(buf) > 0 && runs_guest(buf, domain))
			return atoi(buf);
	}
	/* No pid file, or a stale one: look at every process. */
	proc = opendir("/proc");
	if (!proc)
		return 0;
	while (!pid && (e = readdir(proc))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
			continue;
		if (runs_guest(e->d_name, domain))
			pid = atoi(e->d_name);
	}
	closedir(proc);
	return pid;
}
