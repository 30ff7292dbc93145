/* srcfile.c: journal the identity of a job's source files and of the files
 * it makes, and delete one only while it is still that file, in that folder,
 * open in no process.  See srcfile.h.  It never decides that a file is
 * unused: that is cleanup.c's and src/job/files.c's.
 */
#include "srcfile.h"
#include "chain/imagelock.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void id_from_stat(struct sm_file_id *id, const struct stat *dir, const struct stat *st)
{
	id->dev = (unsigned long long)st->st_dev;
	id->ino = (unsigned long long)st->st_ino;
	id->dir_dev = (unsigned long long)dir->st_dev;
	id->dir_ino = (unsigned long long)dir->st_ino;
	id->size = (long long)st->st_size;
	id->mtime_sec = (long long)st->st_mtim.tv_sec;
	id->mtime_nsec = (long long)st->st_mtim.tv_nsec;
}

int sm_srcfile_identify(const char *path, struct sm_srcfile *f)
{
	SM_AUTOFREE char *dir = NULL;
	struct stat st, ds;
	char *real;

	memset(f, 0, sizeof(*f));
	/* The file QEMU opened: a symlink in the path (or as the file) is
	 * resolved now, once, from what libvirt named. */
	real = realpath(path, NULL);
	if (!real) {
		sm_error("cannot resolve the path of source image '%s': %s", path, strerror(errno));
		return -1;
	}
	dir = sm_path_dirname(real);
	if (lstat(real, &st) < 0 || stat(dir, &ds) < 0) {
		sm_error("cannot read source image '%s': %s", path, strerror(errno));
		free(real);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		sm_error("source image '%s' is not a regular file", path);
		free(real);
		return -1;
	}
	f->path = sm_xstrdup(path);
	f->real_path = real;
	id_from_stat(&f->id, &ds, &st);
	return 0;
}

static int open_dir_nofollow(const char *dir);

int sm_srcfile_identify_fd(const char *path, int fd, struct sm_srcfile *f)
{
	SM_AUTOFREE char *dir = sm_path_dirname(path);
	SM_AUTOFREE char *real_dir = NULL;
	struct stat st, ds;
	int dfd;

	memset(f, 0, sizeof(*f));
	/* The plan resolved the destination folder; a source overlay's folder
	 * may be named through a symlink, resolved now as for the images. */
	dfd = sm_srcfile_path_ok(path) ? open_dir_nofollow(dir) : -1;
	if (dfd < 0) {
		real_dir = realpath(dir, NULL);
		dfd = real_dir ? open_dir_nofollow(real_dir) : -1;
	} else {
		real_dir = sm_xstrdup(dir);
	}
	if (dfd < 0 || fstat(dfd, &ds) < 0 || fstat(fd, &st) < 0) {
		sm_error("cannot read the identity of '%s', which job files must have: %s", path,
			 strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	close(dfd);
	f->path = sm_xstrdup(path);
	f->real_path = sm_path_join(real_dir, sm_path_basename(path));
	id_from_stat(&f->id, &ds, &st);
	return 0;
}

void sm_srcfile_release(struct sm_srcfile *f)
{
	free(f->path);
	free(f->real_path);
	free(f->target);
	free(f->role);
	free(f->format);
	memset(f, 0, sizeof(*f));
}

void sm_srcfiles_free(struct sm_srcfile *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		sm_srcfile_release(&f[i]);
	free(f);
}

const char *sm_srcfile_mismatch(const struct sm_file_id *want, const struct stat *dir,
				const struct stat *st, bool content)
{
	if (!S_ISDIR(dir->st_mode) || (unsigned long long)dir->st_dev != want->dir_dev ||
	    (unsigned long long)dir->st_ino != want->dir_ino)
		return "its folder is not the one the job journaled (it was replaced)";
	if ((unsigned long long)st->st_dev != want->dev ||
	    (unsigned long long)st->st_ino != want->ino)
		return "another file now has its name, not the one the job journaled; delete it "
		       "by hand if nothing needs it";
	if (!S_ISREG(st->st_mode))
		return "it is no longer a regular file";
	if (content && (long long)st->st_size != want->size)
		return "its size changed since the job journaled it, so something wrote it; "
		       "delete it by hand if nothing needs it";
	if (content && ((long long)st->st_mtim.tv_sec != want->mtime_sec ||
			(long long)st->st_mtim.tv_nsec != want->mtime_nsec))
		return "it was written since the job journaled it; delete it by hand if "
		       "nothing needs it";
	return NULL;
}

bool sm_srcfile_path_ok(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) >= PATH_MAX)
		return false;
	for (const char *c = p + 1;;) {
		size_t len = strcspn(c, "/");

		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!c[len])
			return true;
		c += len + 1;
	}
}

int sm_srcfile_journal(struct sm_journal *j, long long job, const struct sm_srcfile *f)
{
	return sm_journal_sql(j, "INSERT OR REPLACE INTO source_file (job_id, path, real_path, "
			      "target, role, format, dev, ino, size, mtime_sec, mtime_nsec, "
			      "dir_dev, dir_ino) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			      "isssssiiiiiii", job, f->path, f->real_path, f->target, f->role,
			      f->format ? f->format : "", (long long)f->id.dev,
			      (long long)f->id.ino, f->id.size, f->id.mtime_sec, f->id.mtime_nsec,
			      (long long)f->id.dir_dev, (long long)f->id.dir_ino);
}

static void fill(struct sm_srcfile *f, char **v)
{
	f->path = sm_xstrdup(v[0]);
	f->real_path = sm_xstrdup(v[1]);
	f->target = sm_xstrdup(v[2]);
	f->role = sm_xstrdup(v[3]);
	f->format = sm_xstrdup(v[4]);
	f->id.dev = (unsigned long long)strtoll(v[5], NULL, 10);
	f->id.ino = (unsigned long long)strtoll(v[6], NULL, 10);
	f->id.size = strtoll(v[7], NULL, 10);
	f->id.mtime_sec = strtoll(v[8], NULL, 10);
	f->id.mtime_nsec = strtoll(v[9], NULL, 10);
	f->id.dir_dev = (unsigned long long)strtoll(v[10], NULL, 10);
	f->id.dir_ino = (unsigned long long)strtoll(v[11], NULL, 10);
}

#define COLUMNS "path, real_path, target, role, format, dev, ino, size, mtime_sec, " \
		"mtime_nsec, dir_dev, dir_ino"

int sm_srcfile_list(struct sm_journal *j, long long job, const char *role,
		    struct sm_srcfile **out, size_t *n)
{
	struct sm_journal_rows rows;

	*out = NULL;
	*n = 0;
	if (sm_journal_query(j, "SELECT " COLUMNS " FROM source_file WHERE job_id = ? AND "
			     "(?2 IS NULL OR role = ?2) ORDER BY rowid", "is", &rows, job,
			     role) < 0)
		return -1;
	*out = sm_xcalloc(rows.nrows + 1, sizeof(**out));
	for (size_t r = 0; r < rows.nrows; r++)
		fill(&(*out)[r], rows.cells + r * rows.ncols);
	*n = rows.nrows;
	sm_journal_rows_release(&rows);
	return 0;
}

int sm_srcfile_get(struct sm_journal *j, long long job, const char *path, struct sm_srcfile *f)
{
	struct sm_journal_rows rows;
	int found;

	memset(f, 0, sizeof(*f));
	if (sm_journal_query(j, "SELECT " COLUMNS " FROM source_file WHERE job_id = ? AND "
			     "path = ?", "is", &rows, job, path) < 0)
		return -1;
	found = rows.nrows == 1;
	if (found)
		fill(f, rows.cells);
	sm_journal_rows_release(&rows);
	return found;
}

int sm_srcfile_snapshotted(struct sm_journal *j, long long job, const char *target,
			   const char *src_overlay)
{
	struct sm_srcfile *files = NULL, ov;
	size_t n = 0;
	int ret = -1, rc;

	if (sm_srcfile_list(j, job, "image", &files, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		SM_AUTOFREE char *dir = sm_path_dirname(files[i].real_path);
		struct stat st, ds;

		if (!sm_str_eq(files[i].target, target) || lstat(files[i].real_path, &st) < 0 ||
		    stat(dir, &ds) < 0 || sm_srcfile_mismatch(&files[i].id, &ds, &st, false))
			continue;  /* not the journaled file: its old identity stays */
		if (sm_journal_sql(j, "UPDATE source_file SET size = ?, mtime_sec = ?, "
				   "mtime_nsec = ? WHERE job_id = ? AND path = ?", "iiiis",
				   (long long)st.st_size, (long long)st.st_mtim.tv_sec,
				   (long long)st.st_mtim.tv_nsec, job, files[i].path) < 0)
			goto cleanup;
	}
	/* An overlay on a device is the provisioner's (journaled with its
	 * device number), not a file. */
	if (!src_overlay) {
		ret = 0;
		goto cleanup;
	}
	/* An overlay snapmove made (and journaled from the fd that claimed it)
	 * keeps that identity: its name is not looked up again. */
	rc = sm_srcfile_get(j, job, src_overlay, &ov);
	if (rc != 0) {
		sm_srcfile_release(&ov);
		ret = rc < 0 ? -1 : 0;
		goto cleanup;
	}
	if (sm_srcfile_identify(src_overlay, &ov) < 0)
		goto cleanup;
	ov.target = sm_xstrdup(target);
	ov.role = sm_xstrdup(sm_file_role_name(SM_FILE_SRC_OVERLAY));
	ov.format = sm_xstrdup("qcow2");
	ret = sm_srcfile_journal(j, job, &ov);
	sm_srcfile_release(&ov);

cleanup:
	sm_srcfiles_free(files, n);
	return ret;
}

int sm_srcfile_forget(struct sm_journal *j, long long job, const char *path)
{
	return sm_journal_sql(j, "DELETE FROM source_file WHERE job_id = ? AND path = ? AND "
			      "role <> ?", "iss", job, path, SM_SRCFILE_IMAGE);
}

bool sm_srcfile_is_image(const struct sm_srcfile *f)
{
	return sm_str_eq(f->role, SM_SRCFILE_IMAGE);
}

/* Open dir from '/' one component at a time, never following a symlink. */
static int open_dir_nofollow(const char *dir)
{
	SM_AUTOFREE char *copy = sm_xstrdup(dir);
	char *save = NULL;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (char *c = strtok_r(copy, "/", &save); fd >= 0 && c; c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int err = errno;

		close(fd);
		fd = next;
		errno = err;
	}
	return fd;
}

/* How long a file another process has open is waited for before it is
 * kept: a process that only reads it a moment (another snapmove's qemu-img
 * reading the headers of a folder, a backup tool's stat) lets go well
 * within it; a QEMU that runs on the file does not. */
#define OPEN_WAIT_MS 3000
#define OPEN_POLL_MS 50

/* Refuse when a process has the file open or holds QEMU's lock on it for
 * OPEN_WAIT_MS.  A source image can be tried again by cleanup; a file the
 * job made is left to the user. */
static int check_not_open(int dfd, const char *name, bool image)
{
	const char *next = image ? "then run 'snapmove cleanup' again"
				 : "then delete it by hand if nothing needs it";
	SM_AUTOFREE char *via = sm_xasprintf("/proc/self/fd/%d/%s", dfd, name);
	SM_AUTOFREE char *holders = NULL;
	bool locked = false;

	for (int waited = 0;; waited += OPEN_POLL_MS) {
		const struct timespec poll = { 0, OPEN_POLL_MS * 1000000L };

		free(holders);
		holders = NULL;
		if (sm_imagelock_probe(via, &locked) < 0)
			return -1;
		holders = sm_imagelock_holders(via);
		if ((!holders && !locked) || waited >= OPEN_WAIT_MS || sm_interrupted)
			break;
		nanosleep(&poll, NULL);
	}
	if (holders) {
		sm_error("it is open in %s%s; stop %s, %s", holders,
			 locked ? ", which holds QEMU's lock on it" : "",
			 strchr(holders, ',') ? "them" : "it", next);
		return -1;
	}
	if (locked) {
		sm_error("a process snapmove cannot name holds QEMU's lock on it; stop the QEMU "
			 "that uses it, %s", next);
		return -1;
	}
	return 0;
}

/* Pure: why a file the job journaled no identity for (st) may not be the
 * one it made, or NULL. */
static const char *unknown_mismatch(const struct stat *st)
{
	if (S_ISLNK(st->st_mode))
		return "a symbolic link now has its name; the job journaled no identity for "
		       "it (a job older than that, or a crash right after it was made), so "
		       "snapmove deletes only a regular file with one name";
	if (!S_ISREG(st->st_mode))
		return "it is not a regular file";
	if (st->st_nlink != 1)
		return "it has other names (hard links) and the job journaled no identity for "
		       "it, so it may be another file; delete it by hand if nothing needs it";
	return NULL;
}

int sm_srcfile_unlink(const struct sm_srcfile *f)
{
	return sm_srcfile_unlink_checked(f, NULL, NULL);
}

int sm_srcfile_unlink_checked(const struct sm_srcfile *f, sm_srcfile_in_use_fn in_use,
			      void *arg)
{
	SM_AUTOFREE char *dir = NULL;
	const char *name, *why;
	struct stat ds, st;
	int dfd, ret = -1;

	if (!sm_srcfile_path_ok(f->real_path)) {
		sm_error("its journaled path '%s' is not a plain absolute path", f->real_path);
		return -1;
	}
	dir = sm_path_dirname(f->real_path);
	name = sm_path_basename(f->real_path);
	dfd = open_dir_nofollow(dir);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			sm_error("its folder '%s' is now reached through a symbolic link or is no "
				 "longer a folder; snapmove deletes only in the folders the job "
				 "journaled", dir);
		else
			sm_error("cannot open its folder '%s': %s", dir, strerror(errno));
		return -1;
	}
	if (fstat(dfd, &ds) < 0) {
		sm_error("cannot read its folder '%s': %s", dir, strerror(errno));
		goto cleanup;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			sm_error("cannot read it: %s", strerror(errno));
		goto cleanup;
	}
	why = f->no_id ? unknown_mismatch(&st)
		       : sm_srcfile_mismatch(&f->id, &ds, &st, sm_srcfile_is_image(f));
	if (why) {
		sm_error("%s", why);
		goto cleanup;
	}
	if ((in_use && in_use(arg, &st) < 0) ||
	    check_not_open(dfd, name, sm_srcfile_is_image(f)) < 0)
		goto cleanup;
	if (unlinkat(dfd, name, 0) < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			sm_error("cannot delete it: %s", strerror(errno));
		goto cleanup;
	}
	ret = 1;

cleanup:
	close(dfd);
	return ret;
}
