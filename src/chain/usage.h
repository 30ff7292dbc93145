/* usage.h: who else uses an image.
 *
 * A backing image can be shared: an oVirt-style template under several
 * domains' chains, or a base that other images in the directory point at.
 * snapmove keeps such images where they are (unless told to copy them) and
 * never writes or deletes them.  This module collects every image the
 * connection's domains use (live chains from libvirt; persistent definitions
 * followed through the qcow2 headers) and every backing reference among the
 * qcow2 files of a directory, and answers "who else uses this file?".
 * Files are compared by device and inode, so symlinks and '..' do not hide a
 * user.  Headers are read by qemu-img, never by hand: with the format libvirt
 * gives for a domain's disk, and probed for a file of unknown format in a
 * directory.  What it finds only ever adds users: it can keep a file, never
 * get one deleted (the files snapmove deletes come from the journal alone).
 * A raw image that looks like qcow2 can only make snapmove more careful.
 * Not seen: an overlay that no domain defines in a folder that is not scanned.
 */
#ifndef SM_USAGE_H
#define SM_USAGE_H

#include <libvirt/libvirt.h>
#include <stddef.h>
#include <sys/types.h>

struct sm_image_use {
	dev_t dev;
	ino_t ino;
	char *path;
	char *user;  /* "domain 'web2' disk vda", "image '/img/x.qcow2'" */
};

struct sm_usage {
	struct sm_image_use *uses;
	size_t n;
};

/* Every image of every domain's disks on conn (running and defined). */
int sm_usage_scan_domains(virConnectPtr conn, struct sm_usage *u);
/* The backing references of the image files in dir (probed by qemu-img). */
int sm_usage_scan_dir(const char *dir, struct sm_usage *u);
void sm_usage_release(struct sm_usage *u);
/* A user of path other than those for which skip(user, ctx) is true, or NULL. */
const char *sm_usage_other_user(const struct sm_usage *u, const char *path,
				int (*skip)(const char *user, void *ctx), void *ctx);
struct sm_disk;
/* A user of path other than disk (of domain) itself and the images of its
 * own chain (they point at each other), or NULL: path is shared when not. */
const char *sm_usage_other_than_disk(const struct sm_usage *u, const char *path,
				     const char *domain, const struct sm_disk *disk);
/* The file the backing name written in image's header means, as QEMU
 * resolves it ('file:' dropped, relative to the image's folder), or NULL for
 * another protocol or a json: name. */
char *sm_usage_backing_path(const char *image, const char *backing);

#endif
