/* provision.h: where a block device for a destination comes from, when a
 * program makes it: a provisioner (docs/provisioners.md), run as root the
 * way hooks are run, asked to "create NAME BYTES", "extend PATH BYTES" or
 * "remove PATH".  Every run and every device is journaled (schema 013).
 *
 * A provisioner must be a root-owned regular executable that only root can
 * change, in folders only root can change from / down (trust.c, as hooks);
 * it runs as the file that was checked (fexecve) with an environment of
 * snapmove's own (PATH, LC_ALL=C, HOME=/root, its SNAPMOVE_* settings,
 * SNAPMOVE_JOB, SNAPMOVE_DEVICE, SNAPMOVE_DEVICE_NAME), in its own process
 * group, under a time limit.  What create prints is checked before anything
 * uses it: one absolute path under /dev, reached through root's folders (a
 * link there, such as LVM's /dev/VG/LV, is followed only to a node under
 * /dev), a block device, at least BYTES large.  remove is asked only of a
 * device the journal says this provisioner made for this owner, while its
 * path still names the device number journaled.
 *
 * It does not decide where a move's disks go: the job layer calls it.
 */
#ifndef SM_PROVISION_H
#define SM_PROVISION_H

#include <stdbool.h>

#include "journal.h"

/* Where the provisioners snapmove ships are installed; a provisioner named
 * without a '/' is looked up here.  The Makefile sets it from PREFIX
 * (PROVISIONERS_DIR): the package's is this one. */
#ifndef SM_PROVISIONERS_DIR
#define SM_PROVISIONERS_DIR "/usr/lib/snapmove/provisioners"
#endif
/* The default time limit of a provisioner run, in seconds. */
#define SM_PROVISION_TIMEOUT 120

enum sm_provision_result {
	SM_PROVISION_DONE,
	SM_PROVISION_REFUSED,  /* nothing was run, nothing changed (error set) */
	SM_PROVISION_FAILED,   /* the provisioner ran and failed, or what it made was refused */
};

/* The absolute path of the provisioner named name: a name without '/' in
 * SM_PROVISIONERS_DIR (dir NULL) or dir, a path with its folder resolved.
 * NULL with an error when its folder does not exist. */
char *sm_provision_resolve(const char *name, const char *dir);
/* Whether provisioner (absolute) may run: a root-owned regular executable
 * in root's folders from / down (as it is checked before each run).  -1
 * with the refusal and its fix. */
int sm_provision_check(const char *provisioner);
/* The device path in what create printed: exactly one non-empty line.
 * NULL with an error naming the provisioner otherwise. */
char *sm_provision_parse_output(const char *provisioner, const char *out);
/* Check the device at path, as create printed it: under /dev, reached
 * through root's folders, a block device of at least min_bytes, and, when
 * want_rdev is not 0, that device number.  *rdev and *size what was found.
 * -1 with an error naming the provisioner and the path; *missing (when not
 * NULL) set when nothing is at path. */
int sm_provision_check_device(const char *provisioner, const char *path,
			      unsigned long long min_bytes, unsigned long long want_rdev,
			      unsigned long long *rdev, unsigned long long *size, bool *missing);

/* Ask provisioner (absolute) with settings ("SNAPMOVE_NAME=VALUE" lines, ""
 * none) to create device name of bytes for job (0: an admin's), journaled
 * before and after.  A device of that provisioner and name that is creating
 * or failed for the same owner is asked again (create is idempotent); one
 * that is created, or another owner's, is refused.  out (released by the
 * caller) is the device row as journaled, when DONE. */
enum sm_provision_result sm_provision_create(struct sm_journal *j, long long job,
					     const char *provisioner, const char *settings,
					     const char *name, unsigned long long bytes,
					     double timeout, struct sm_device_row *out);
/* Grow device id (journaled, created, job's) to at least bytes. */
enum sm_provision_result sm_provision_extend(struct sm_journal *j, long long job, long long id,
					     unsigned long long bytes, double timeout,
					     struct sm_device_row *out);
/* Remove device id (created, or removing after a failed or interrupted
 * remove; job's). */
enum sm_provision_result sm_provision_remove(struct sm_journal *j, long long job, long long id,
					     double timeout);

#endif
