/* image.h: what an image file says about itself, and the few changes snapmove
 * makes to image headers, through qemu-img.
 *
 * qemu-img is always told the format (-f, -F): a guest can write a qcow2 header
 * into a raw image, so snapmove never lets it probe.
 */
#ifndef SM_IMAGE_H
#define SM_IMAGE_H

struct stat;

struct sm_image_info {
	unsigned long long virtual_size;
	unsigned long long actual_size;   /* allocated bytes on the host */
	char *backing;                    /* the backing pointer as stored, or NULL */
	char *backing_format;
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

/* Convert src into the existing image dst (qemu-img convert -n), formats
 * explicit, bypassing the host cache where both files allow it. */
int sm_image_convert(const char *src, const char *src_format, const char *dst,
		     const char *dst_format);
/* Commit the qcow2 image path into its immediate backing file (qemu-img
 * commit; never deeper). */
int sm_image_commit(const char *path);
/* Rebase path onto backing (NULL: no backing file) copying the data that
 * changes, as block stream does (qemu-img rebase, safe mode). */
int sm_image_rebase_safe(const char *path, const char *format, const char *backing,
			 const char *backing_format);
/* Compare the guest-visible contents of two images (qemu-img compare). */
int sm_image_compare(const char *a, const char *a_format, const char *b,
		     const char *b_format);

struct sm_disk;
/* Complete the chain of a disk from a persistent definition (which names
 * only the top image) by following the image headers, with the backing
 * formats they record; never probed.  NULL when done, else why not (to free). */
char *sm_image_follow_chain(struct sm_disk *d);

#endif
