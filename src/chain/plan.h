/* plan.h: where every image of a move goes, and what its backing pointer says
 * there.  Pure logic on paths and chain facts, so it is unit tested directly.
 *
 * For a disk whose chain is  A (active) -> B -> C  the plan is
 *   source overlay  DEST/A.snapmove-JOB.src.qcow2 -> A (the snapshot's new top;
 *                   with --overlay-dir DIR: DIR/A.snapmove-JOB.qcow2, and a
 *                   job journaled before that: dirname(A)/A.snapmove-JOB.qcow2)
 *   destination     DEST/A -> DEST/B -> DEST/C        (copies, same names)
 *   dest overlay    DEST/A.snapmove-JOB.qcow2 -> DEST/A (mirror target)
 * The source overlay takes the guest's writes from the snapshot to the
 * pivot: away from the source storage, a move needs no free byte there.
 * A copy's backing pointer stays relative when the source's was relative
 * (then it is the bare file name, as all copies share DEST), else absolute.
 */
#ifndef SM_PLAN_H
#define SM_PLAN_H

#include "chain/chain.h"

struct sm_plan_image {
	char *src;
	char *dst;
	char *format;
	char *dst_format;       /* format of the copy: format, or the --dest-format */
	char *src_backing;      /* backing pointer stored in the source header */
	char *dst_backing;      /* what the copy's header must say; NULL at the bottom */
	char *dst_backing_format;
	unsigned long long virtual_size;
	unsigned long long allocated;
	unsigned long long dst_rdev;   /* dst is this block device (--dest-dev); 0: a file */
	unsigned long long dst_diskseq;  /* its disk sequence number when first copied
					  * onto (journal only); 0: not known */
};

struct sm_plan_disk {
	char *target;
	char *src_overlay;
	char *dst_overlay;
	unsigned long long virtual_size;  /* of the active image, for the overlays */
	struct sm_plan_image *images;     /* images[0] is the old active image */
	size_t nimages;                   /* images moved */
	char *kept;                       /* first image left in place (shared), or NULL */
	char *kept_format;
	char *kept_user;                  /* who else uses it */
	bool flat;                        /* one image at the destination (--flatten) */
};

/* What the planner needs to know about one source image beyond the XML. */
struct sm_plan_image_facts {
	const char *backing;  /* as stored in its header (qemu-img info backing-filename) */
	unsigned long long virtual_size;
	unsigned long long allocated;
	const char *shared;   /* another user of the image (it stays), or NULL */
};

/* Plan one disk.  facts[i] describes disk->chain[i]; the source overlay goes
 * into overlay_dir (NULL: beside the active image, as before --overlay-dir).
 * A shared image and the images below it stay where they are, and the last
 * moved copy points at it.
 * Fails with a message when the chain cannot be laid out in dest_dir (two
 * images with one name, an image already in dest_dir, a shared active image). */
int sm_plan_disk(const struct sm_disk *disk, const struct sm_plan_image_facts *facts,
		 const char *dest_dir, const char *overlay_dir, long long job_id,
		 struct sm_plan_disk *out);
/* Convert the copies to format (raw, qcow2).  Only a single-image chain can
 * change format; a chain is accepted when it already has that format. */
int sm_plan_set_dest_format(struct sm_plan_disk *p, const char *format);
void sm_plan_disk_release(struct sm_plan_disk *p);
/* The overlay file name snapmove uses for job_id next to image path. */
char *sm_plan_overlay_path(const char *dir, const char *image_path, long long job_id);
/* The source overlay of job_id for image path in overlay_dir (NULL: beside
 * the image).  In the destination folder it is A.snapmove-JOB.src.qcow2, so
 * it is never taken for the destination overlay A.snapmove-JOB.qcow2. */
char *sm_plan_src_overlay_path(const char *overlay_dir, const char *dest_dir,
			       const char *image_path, long long job_id);
/* Refuse overlays that would share a name with each other or with a planned
 * destination image (of any disk). */
int sm_plan_check_overlays(const struct sm_plan_disk *plans, size_t n);
/* Bytes the destination needs: every copy's allocation plus the overlay. */
/* Lay the disk out as one image at the destination: the old active image's
 * name, the whole chain's data (qemu-img convert), no backing file. */
void sm_plan_flatten(struct sm_plan_disk *p);
unsigned long long sm_plan_disk_bytes(const struct sm_plan_disk *p);
/* Reject two planned disks that would write the same destination file. */
int sm_plan_check_collisions(const struct sm_plan_disk *plans, size_t n);

#endif
