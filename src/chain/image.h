/* image.h: what an image file says about itself, and the few changes snapmove
 * makes to image headers, through qemu-img.
 *
 * qemu-img is always told the format (-f, -F): a guest can write a qcow2 header
 * into a raw image, so snapmove never lets it probe.  Where qemu-img reads data
 * through a backing chain (convert, compare, commit, check) it gets the whole
 * chain as a json: filename naming every file and format, ending in
 * "backing": null, so no header decides what it opens.
 */
#ifndef SM_IMAGE_H
#define SM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

struct stat;

struct sm_image_info {
	unsigned long long virtual_size;
	unsigned long long actual_size;   /* allocated bytes on the host */
	char *backing;                    /* the backing pointer as stored, or NULL */
	char *backing_format;
	char *data_file;                  /* a qcow2 external data file, or NULL */
	bool encrypted;                   /* qemu-img says "encrypted": true */
};

/* Read an image's header (qemu-img info -U --output=json -f FORMAT). */
int sm_image_info(const char *path, const char *format, struct sm_image_info *out);
void sm_image_info_release(struct sm_image_info *info);
/* Parse the JSON that qemu-img info prints.  Exposed for unit tests. */
int sm_image_info_parse(const char *json, struct sm_image_info *out);

/* Create a new image; fails without touching anything when path exists or is a
 * symlink.  backing may be NULL; when given, backing_format is required.  The
 * file is made 0600, root's, then given like's owner, group and permission
 * bits (not setuid, setgid, sticky) before qemu-img writes it (like NULL:
 * it stays root's 0600); qemu-img is handed /proc/PID/fd/N, never path.
 * Returns an fd open read-write on the file, for every later write. */
int sm_image_create_fd(const char *path, const char *format, unsigned long long size,
		       const char *backing, const char *backing_format, const struct stat *like);
/* sm_image_create_fd without a like, the fd closed: 0 or -1. */
int sm_image_create(const char *path, const char *format, unsigned long long size,
		    const char *backing, const char *backing_format);
/* "/proc/PID/fd/FD": a name of fd's file that no other user can swap, for
 * the programs this process starts (to free). */
char *sm_image_fd_path(int fd);
/* Rewrite the backing pointer in the header only (qemu-img rebase -u). */
int sm_image_rebase_unsafe(const char *path, const char *format, const char *backing,
			   const char *backing_format);

struct sm_image;
/* "json:{...}": chain[0] over chain[1] ... over chain[n - 1] over nothing,
 * every file and format named (BlockdevOptions).  NULL with an error when a
 * format cannot have a backing file and the chain goes on below it. */
char *sm_image_chain_spec(const struct sm_image *chain, size_t n);
/* Convert the data of chain (chain[0] and what is below it, pinned as by
 * sm_image_chain_spec) into the existing image dst (qemu-img convert -n),
 * bypassing the host cache where both files allow it.  What reads as zeros
 * is written as zeros (holes where dst can have them), unless dst_zero: the
 * caller says dst reads as zeros already (--target-is-zero). */
int sm_image_convert(const struct sm_image *chain, size_t n, const char *dst,
		     const char *dst_format, bool dst_zero);
/* The bytes chain's data takes as one dst_format image, fully allocated
 * (qemu-img measure, the chain pinned): what a device must hold for it. */
int sm_image_measure(const struct sm_image *chain, size_t n, const char *dst_format,
		     unsigned long long *bytes);
/* An empty format image of size on the block device path (qemu-img create;
 * raw: nothing, the device is the image). */
int sm_image_format_device(const char *path, const char *format, unsigned long long size);
/* An empty qcow2 overlay of size over backing (backing_format) written on
 * the block device at path (an overlay on a provisioned device): every
 * format named, the header's backing name as given. */
int sm_image_format_overlay_device(const char *path, unsigned long long size,
				   const char *backing, const char *backing_format);
/* Commit the qcow2 image path into its immediate backing file backing (qemu-img
 * commit; never deeper: nothing below backing is opened). */
int sm_image_commit(const char *path, const char *backing, const char *backing_format);
/* qemu-img check of the metadata of path alone (its backing file not opened). */
int sm_image_check(const char *path, const char *format);
/* Rebase chain[0] onto chain[below] (below == n: no backing file) copying
 * the data that changes, as block stream does (qemu-img rebase, safe mode).
 * Both the chain it is on now and the new backing's chain, chain[below..],
 * are read pinned (sm_image_chain_spec): no header below names what is read.
 * The header then gets chain[below]'s path (qemu-img rebase -u). */
int sm_image_rebase_safe(const struct sm_image *chain, size_t n, size_t below);
/* Compare the guest-visible contents of chain (pinned) and of the image b
 * alone (qemu-img compare). */
int sm_image_compare(const struct sm_image *chain, size_t n, const char *b,
		     const char *b_format);
/* Compare the guest-visible contents of two chains, each pinned. */
int sm_image_compare_chains(const struct sm_image *a, size_t na, const struct sm_image *b,
			    size_t nb);

/* The file a backing name in image_path's header names: absolute as written,
 * relative against image_path's directory.  NULL for a protocol name
 * ("nbd:...", "json:{...}", "file:x"): not a plain file name. */
char *sm_image_backing_resolve(const char *image_path, const char *backing);

struct sm_disk;
/* Complete the chain of a disk from a persistent definition (which names
 * only the top image) by following the image headers, with the backing
 * formats they record; never probed.  NULL when done, else why not (to free). */
char *sm_image_follow_chain(struct sm_disk *d);
/* Whether snapmove may act on the chain of d: every member a regular file
 * (not a symbolic link), without an external data file, and each header's
 * backing pointer naming the next member (same file, same format when it
 * records one) and the bottom's none.  from_headers: the chain was found by
 * sm_image_follow_chain (offline), so each backing name must also be the real
 * path of its file (no symbolic link in it) and, when the image naming it is
 * not root's, readable by that image's owner.  Fills infos[i] (qemu-img info of
 * chain[i]; release them) when not NULL.  NULL when it may, else why not. */
char *sm_image_check_chain(const struct sm_disk *d, bool from_headers,
			   struct sm_image_info *infos);

#endif
