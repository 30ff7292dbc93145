/* destdev.c: a block device as a move's destination (--dest-dev); see
 * destdev.h.  It reads and opens devices; it never writes one.
 */
#include "job/destdev.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <dirent.h>
#include <unistd.h>

/* A symbolic link snapmove follows to a device: root's, in a folder that
 * only root may write (udev's /dev/disk/by-*, LVM's /dev/VG). */
static int link_trusted(const char *arg)
{
	SM_AUTOFREE char *dir = sm_path_dirname(arg);
	struct stat ls, ds;

	if (lstat(arg, &ls) < 0 || stat(dir, &ds) < 0)
		return -1;
	if (ls.st_uid != 0 || ds.st_uid != 0 || (ds.st_mode & (S_IWGRP | S_IWOTH)))
		return -1;
	return 0;
}

int sm_destdev_resolve(const char *arg, char **path, unsigned long long *rdev)
{
	char real[PATH_MAX];
	struct stat sb;

	*path = NULL;
	if (arg[0] != '/' || lstat(arg, &sb) < 0) {
		sm_error("destination device '%s' %s; give the device node as /dev/NAME",
			 arg, arg[0] != '/' ? "is not an absolute path" : strerror(errno));
		return -1;
	}
	if (S_ISLNK(sb.st_mode) && link_trusted(arg) < 0) {
		sm_error("destination device '%s' is a symbolic link that root does not own in a "
			 "folder only root may write; snapmove follows only links such as udev's "
			 "/dev/disk/by-id: give the device node as /dev/NAME", arg);
		return -1;
	}
	if (!realpath(arg, real) || stat(real, &sb) < 0) {
		sm_error("destination device '%s' cannot be resolved: %s; give the device node as "
			 "/dev/NAME", arg, strerror(errno));
		return -1;
	}
	if (!S_ISBLK(sb.st_mode)) {
		sm_error("destination device '%s' is not a block device; --dest-dev takes a "
			 "device node (/dev/NAME), and --dest the folder for files", arg);
		return -1;
	}
	if (strncmp(real, "/dev/", 5) != 0) {
		sm_error("destination device '%s' is a device node outside /dev ('%s'); give the "
			 "device node as /dev/NAME", arg, real);
		return -1;
	}
	*path = sm_xstrdup(real);
	*rdev = (unsigned long long)sb.st_rdev;
	return 0;
}

/* "MAJ:MIN" is a mounted file system's device (/proc/self/mountinfo). */
static int mounted(unsigned long long rdev, char *where, size_t len)
{
	char line[4096], want[32];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%u:%u", major((dev_t)rdev), minor((dev_t)rdev));
	while (!found && fgets(line, sizeof(line), f)) {
		char id[32], point[PATH_MAX];

		if (sscanf(line, "%*s %*s %31s %*s %4095s", id, point) == 2 &&
		    strcmp(id, want) == 0) {
			snprintf(where, len, "%s", point);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* Entries of /sys/dev/block/MAJ:MIN/SUB: holders (device-mapper, md) or,
 * for "", the partitions (subfolders holding a "partition" file). */
static int sys_entries(unsigned long long rdev, const char *sub, bool partitions)
{
	SM_AUTOFREE char *dir = sm_xasprintf("/sys/dev/block/%u:%u/%s", major((dev_t)rdev),
					     minor((dev_t)rdev), sub);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (partitions) {
			SM_AUTOFREE char *p = sm_xasprintf("%s/%s/partition", dir, e->d_name);

			if (access(p, F_OK) != 0)
				continue;
		}
		n++;
	}
	closedir(d);
	return n;
}

int sm_destdev_check(const char *path, unsigned long long rdev, unsigned long long need,
		     bool exact, const struct sm_usage *u, const char *target)
{
	char where[PATH_MAX], n[32], h[32];
	unsigned long long size = 0;
	int fd;

	for (size_t i = 0; i < u->n; i++) {
		struct stat sb;

		if (stat(u->uses[i].path, &sb) == 0 && S_ISBLK(sb.st_mode) &&
		    (unsigned long long)sb.st_rdev == rdev) {
			sm_error("destination device '%s' is in use by %s; choose a device no "
				 "domain uses", path, u->uses[i].user);
			return -1;
		}
	}
	if (mounted(rdev, where, sizeof(where)) > 0) {
		sm_error("destination device '%s' is mounted on '%s'; unmount it or choose "
			 "another --dest-dev", path, where);
		return -1;
	}
	if (sys_entries(rdev, "holders", false) > 0) {
		sm_error("destination device '%s' is held by another device (see /sys/dev/block/"
			 "%u:%u/holders: device-mapper, RAID); choose another --dest-dev", path,
			 major((dev_t)rdev), minor((dev_t)rdev));
		return -1;
	}
	if (sys_entries(rdev, "", true) > 0) {
		sm_error("destination device '%s' has partitions; give one partition, or a "
			 "device without any, as --dest-dev", path);
		return -1;
	}
	fd = sm_destdev_open(path, rdev);
	if (fd < 0)
		return -1;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		sm_error("cannot read the size of destination device '%s': %s", path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (exact && size > need) {
		sm_error("destination device '%s' holds %s and disk '%s' is %s raw: a raw image is "
			 "the whole device, so the guest would see another size; give a device of "
			 "exactly %s, or add --dest-format qcow2", path,
			 sm_format_bytes(size, h, sizeof(h)), target, sm_format_bytes(need, n, sizeof(n)),
			 n);
		return -1;
	}
	if (size < need) {
		sm_error("destination device '%s' holds %s and disk '%s' needs %s there; choose a "
			 "bigger device or grow it", path, sm_format_bytes(size, h, sizeof(h)), target,
			 sm_format_bytes(need, n, sizeof(n)));
		return -1;
	}
	return 0;
}

unsigned long long sm_destdev_diskseq(int fd)
{
	unsigned long long seq = 0;

#ifdef BLKGETDISKSEQ
	if (ioctl(fd, BLKGETDISKSEQ, &seq) < 0)
		seq = 0;
#else
	(void)fd;
#endif
	return seq;
}

int sm_destdev_open(const char *path, unsigned long long rdev)
{
	int fd = open(path, O_RDWR | O_EXCL | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;

	if (fd < 0) {
		if (errno == EBUSY)
			sm_error("destination device '%s' is in use (mounted, or held by another "
				 "program or device); free it or choose another --dest-dev", path);
		else
			sm_error("cannot open destination device '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISBLK(sb.st_mode) || (unsigned long long)sb.st_rdev != rdev) {
		sm_error("destination device '%s' is no longer the device %u:%u the job checked; "
			 "see what happened to it before resuming", path, major((dev_t)rdev),
			 minor((dev_t)rdev));
		close(fd);
		return -1;
	}
	return fd;
}
