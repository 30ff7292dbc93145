/* destdev.h: a block device as the destination of a disk's image (move
 * --dest-dev TARGET=DEVICE): which device the argument names, whether it may
 * be written, and opening it again only while it is still that device.  A
 * device is never created, truncated or deleted by snapmove; see
 * docs/security.md "A device as a destination".
 */
#ifndef SM_DESTDEV_H
#define SM_DESTDEV_H

#include <stdbool.h>
#include <sys/types.h>

#include "chain/usage.h"

/* The device node arg names (a /dev node, or a root-owned symbolic link in a
 * folder only root may write, as udev makes under /dev/disk and /dev/VG),
 * resolved into *path, with its device number.  -1 with an error. */
int sm_destdev_resolve(const char *arg, char **path, unsigned long long *rdev);
/* path (resolved) may take an image of need bytes for disk target: a block
 * device no one holds (open(O_EXCL)), not mounted, without holders or
 * partitions, used by no domain in u, big enough (exact: of that very size,
 * for a raw image, which is the whole device).  -1 with an error naming the
 * fix. */
int sm_destdev_check(const char *path, unsigned long long rdev, unsigned long long need,
		     bool exact, const struct sm_usage *u, const char *target);
/* Open path for writing (O_EXCL), only while it is the device rdev.  The fd,
 * or -1 with an error. */
int sm_destdev_open(const char *path, unsigned long long rdev);
/* The disk sequence number of the device open as fd (BLKGETDISKSEQ: new at
 * every attach of a loop device, every new disk), 0 where the kernel has
 * none.  Unlike the device number, it tells a loop device attached again to
 * another file from the one it was. */
unsigned long long sm_destdev_diskseq(int fd);

#endif
