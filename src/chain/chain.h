/* chain.h: the disks of a domain and their backing chains, as libvirt reports
 * them in the live domain XML (<disk>, <source>, <backingStore>, <mirror>).
 *
 * This module parses XML only; it never opens an image.  Index 0 of a chain is
 * the active image, the last index the bottom of the chain.
 */
#ifndef SM_CHAIN_H
#define SM_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

struct sm_image {
	char *path;    /* absolute path as libvirt resolved it; NULL when not a file */
	char *type;    /* source type: file, block, network, volume, dir */
	char *format;  /* raw, qcow2, ...; NULL when libvirt did not say */
};

struct sm_disk {
	char *target;  /* vda */
	char *device;  /* disk, cdrom, floppy, lun */
	char *alias;   /* virtio-disk0, from the live XML */
	bool readonly;
	bool shareable;
	bool discard_unmap;     /* <driver discard='unmap'>: the guest's discards
				 * (a trim) reach the image */
	bool chain_known;       /* the chain ends in an empty <backingStore/> */
	struct sm_image *chain; /* chain[0] is the active image */
	size_t nchain;
	char *mirror_job;       /* job of a <mirror> element, NULL without one */
	bool mirror_ready;
	bool mirror_pivoting;   /* ready='pivot': libvirt asked QEMU to pivot */
	char *mirror_path;
	char *encryption;       /* format of the first <encryption> in the chain (luks) */
	char *encrypted_path;   /* the image it describes */
};

struct sm_domain_disks {
	struct sm_disk *disks;
	size_t ndisks;
};

/* Parse the <devices><disk> elements of a domain XML document.  Returns -1 with
 * an error for XML that is malformed, truncated or has no <domain> root. */
int sm_chain_parse(const char *xml, struct sm_domain_disks *out);
void sm_domain_disks_release(struct sm_domain_disks *d);
const struct sm_disk *sm_domain_disks_find(const struct sm_domain_disks *d, const char *target);

/* Why this disk cannot be moved, as a complete error message, or NULL when it
 * can (a writable, non-shared, file-backed disk of device 'disk' whose whole
 * chain is unencrypted files with known formats; or such a disk whose single
 * image is a block device).  The caller frees the message. */
char *sm_disk_unmovable_reason(const struct sm_disk *disk);
/* The disk's active image is a block device (<disk type='block'>).  Moved
 * alone (no backing chain below it), to a file: see docs/design.md. */
bool sm_disk_on_device(const struct sm_disk *disk);
/* true for a disk snapmove moves when no --disk is given: a movable disk
 * not on a device (a device disk moves only when --disk names it). */
bool sm_disk_is_candidate(const struct sm_disk *disk);

#endif
