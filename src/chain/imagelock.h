/* imagelock.h: is an image held open by a QEMU (or anything else)?
 *
 * QEMU takes open file description locks on bytes 100 and up of every image it
 * opens (the permission bytes at 100, the shared-permission bytes at 200), and
 * keeps them for as long as the image is open, read-only or not.  A conflicting
 * lock on those bytes therefore says "a QEMU has this image open", whatever
 * libvirt believes about the domain (libvirtd may have lost it).  This module
 * only observes: it never takes a lock that it keeps, and it never opens a file
 * for writing.  It does not know which domain a QEMU runs: the caller names it.
 */
#ifndef SM_IMAGELOCK_H
#define SM_IMAGELOCK_H

#include <stdbool.h>

/* *locked: some process holds a lock on QEMU's lock bytes of path.
 * -1 (error recorded) when path cannot be opened or probed. */
int sm_imagelock_probe(const char *path, bool *locked);
/* *writing: some process holds QEMU's lock for the write permission of path
 * (byte 101): a QEMU writes it, through a device or a block job's target.
 * A node QEMU still has open but no longer writes (the old top after a
 * pivot) holds none. */
int sm_imagelock_probe_write(const char *path, bool *writing);

/* The processes that have path open, as "qemu-system-x86 (pid 123)" joined by
 * ", " (same device and inode, found through /proc/PID/fd), or NULL when none
 * is found.  A process whose fds cannot be read is not listed. */
char *sm_imagelock_holders(const char *path);

/* The pid of a QEMU that runs the guest named domain (its command line has
 * '-name guest=DOMAIN[,...]', libvirt's form), found through libvirt's pid
 * file (/run/libvirt/qemu/DOMAIN.pid), else through every process's command
 * line; 0 when none runs.  libvirt's view is not consulted: this is what
 * proves a domain libvirt calls shut off really is. */
int sm_imagelock_domain_qemu(const char *domain);

#endif
