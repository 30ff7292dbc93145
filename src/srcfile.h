/* srcfile.h: the files a job may delete, who they are, and deleting one
 * safely: the source images it moved, and the files it made itself (the
 * source overlay, the destination images and overlay).
 *
 * A move journals at plan time every member of the chain it moves (the chain
 * libvirt reported; the whole chain for --flatten) and, after the snapshot,
 * its own source overlay: the path, the path with its folder resolved, and
 * the identity of the file and of its folder (device, inode; size and mtime
 * for the images, which are read-only once the snapshot is taken).  Nothing
 * else is ever deleted as "the source": not a file an image header names, not
 * a file that appeared later at a journaled path.
 *
 * sm_srcfile_unlink() re-checks right before unlinkat(): the folder is opened
 * from '/' one component at a time without following a symlink and must be
 * the journaled folder; the name must be the journaled file (fstatat without
 * following a symlink); no process may hold it open or hold QEMU's lock on it.
 * Whether another image or domain still uses the file is the caller's
 * question (src/cleanup.c, or the in_use callback: src/job/files.c).
 *
 * The files a job makes are journaled the same way as soon as they exist
 * (sm_srcfile_identify_fd on the fd that claimed the name; roles
 * "dst_image", "dst_overlay", "src_overlay"), and only their device and
 * inode are compared: QEMU writes them.
 */
#ifndef SM_SRCFILE_H
#define SM_SRCFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "journal.h"

struct sm_file_id {
	unsigned long long dev, ino;          /* the file */
	unsigned long long dir_dev, dir_ino;  /* its folder */
	long long size, mtime_sec, mtime_nsec;
};

struct sm_srcfile {
	char *path;       /* as libvirt named it */
	char *real_path;  /* its folder resolved (no symlink, no '..') + its name */
	char *target;     /* the disk */
	char *role;       /* SM_SRCFILE_IMAGE (a member of the moved chain), or
			   * the file's role (journal.h sm_file_role_name):
			   * "src_overlay", "dst_image", "dst_overlay" */
	char *format;
	struct sm_file_id id;
	/* No identity journaled (a job older than the journaling of its own
	 * files, or a crash between the claim and the journal): real_path is
	 * the path as journaled, and the file must be a regular file with no
	 * other name. */
	bool no_id;
};

/* Read path's identity now into f (path, real_path, id; the caller sets
 * target, role and format).  -1 with an error when it cannot be read or is
 * not a regular file. */
int sm_srcfile_identify(const char *path, struct sm_srcfile *f);
/* The same for a file this process just created as fd at path: the file's
 * identity is fd's, its folder's is the folder reached from '/' without a
 * symlink (path's folder resolved when it leads through one). */
int sm_srcfile_identify_fd(const char *path, int fd, struct sm_srcfile *f);
void sm_srcfile_release(struct sm_srcfile *f);
void sm_srcfiles_free(struct sm_srcfile *f, size_t n);

/* Pure: why the file now (st, in the folder dir) is not the journaled one
 * (want), or NULL when it is.  content: compare size and mtime too (an image
 * the job moved read-only); else device and inode only (the job's overlay,
 * written until the pivot). */
const char *sm_srcfile_mismatch(const struct sm_file_id *want, const struct stat *dir,
				const struct stat *st, bool content);
/* Pure: a journaled real path that deletion accepts: absolute, no empty
 * name, no '.' or '..' component. */
bool sm_srcfile_path_ok(const char *real_path);

/* Journal f for job (replacing a row of the same path); inside a transaction
 * or its own. */
int sm_srcfile_journal(struct sm_journal *j, long long job, const struct sm_srcfile *f);
/* The snapshot of disk target made its chain read-only: re-read the size and
 * mtime of its journaled images (only those whose device and inode are still
 * the journaled ones), and journal the job's source overlay (read at its
 * path, unless snapmove made it and journaled it already; NULL: it is on
 * a provisioned device, not a file). */
int sm_srcfile_snapshotted(struct sm_journal *j, long long job, const char *target,
			   const char *src_overlay);
/* The role of a member of the moved chain in table source_file (the other
 * rows take their file role's name). */
#define SM_SRCFILE_IMAGE "image"
/* f is a member of the moved chain (not a file the job made). */
bool sm_srcfile_is_image(const struct sm_srcfile *f);

/* The journaled source files of job with role (NULL: every role). */
int sm_srcfile_list(struct sm_journal *j, long long job, const char *role,
		    struct sm_srcfile **out, size_t *n);
/* 1 and *f filled when job journaled path, 0 when not. */
int sm_srcfile_get(struct sm_journal *j, long long job, const char *path, struct sm_srcfile *f);

/* Journal that the job is making path again: its old identity goes (until
 * sm_srcfile_journal records the new one), a source image's never. */
int sm_srcfile_forget(struct sm_journal *j, long long job, const char *path);

/* Delete f after re-checking it (see above).  1: deleted; 0: nothing at its
 * path any more; -1: refused or failed, the reason recorded (the file stays). */
int sm_srcfile_unlink(const struct sm_srcfile *f);
/* The same, and in_use (when not NULL) is asked about the file found (st)
 * after the identity check, right before the lock probe and unlinkat: -1
 * with an error keeps the file. */
typedef int (*sm_srcfile_in_use_fn)(void *arg, const struct stat *st);
int sm_srcfile_unlink_checked(const struct sm_srcfile *f, sm_srcfile_in_use_fn in_use,
			      void *arg);

#endif
