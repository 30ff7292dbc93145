/* opts.h: what a move was asked to do (the options of 'snapmove move'), as
 * validation (validate.c) and the move (move.c) read them.
 */
#ifndef SM_JOB_OPTS_H
#define SM_JOB_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "copy/copy.h"

struct sm_move_opts {
	const char *domain;
	const char *dest;          /* or dest_pool */
	const char *dest_pool;     /* a libvirt storage pool (dir, fs, netfs; or logical,
				    * with dest: the lvm provisioner's devices) */
	const char *overlay_dir;   /* the source overlay's folder; NULL: the destination */
	const char *const *disks;  /* --disk targets; none means every candidate */
	size_t ndisks;
	unsigned long long bandwidth_mib;  /* 0: unlimited */
	bool keep_overlay;
	bool quiesce;
	bool dry_run;
	bool verify;                       /* re-read and compare every copied chunk */
	const char *dest_format;           /* raw, qcow2, or NULL to keep formats */
	enum sm_copy_method copy_method;   /* SM_COPY_AUTO unless forced */
	int sync_writes;                   /* enum sm_sync_writes */
	double converge_timeout;           /* 0: the default (30 s) */
	unsigned parallel;                 /* 0: from the destination's devices */
	bool copy_shared;                  /* copy backing images others use too */
	bool flatten;                      /* one image at the destination */
	bool delete_source;                /* then delete the unused source images */
	bool offline;                      /* the domain is shut off: copy, redefine */
	bool trim;                         /* then the guest agent trims (fstrim) */
	const char *const *dest_devs;      /* --dest-dev TARGET=DEVICE */
	size_t ndest_devs;
	bool dest_zeroed;                  /* those devices read as zeros already */
	const char *dest_provisioner;      /* --dest-provisioner PROG: makes the devices */
	const char *dest_settings;         /* its --set lines (SNAPMOVE_KEY=VALUE), or "" */
	/* --overlay-provisioner PROG: both overlays of each disk are qcow2
	 * images on devices PROG makes, starting at overlay_size and grown by
	 * it as the guest writes (grow.c); NULL: files. */
	const char *overlay_provisioner;
	unsigned long long overlay_size;   /* 0: SM_OVERLAY_CHUNK */
	const char *overlay_settings;      /* --overlay-set lines, "SNAPMOVE_K=V" */
};

/* The chunk an overlay device starts at and grows by, as vdsm's 1 GiB. */
#define SM_OVERLAY_CHUNK (1ULL << 30)
/* The smallest --overlay-size: a qcow2 header, its tables, and room. */
#define SM_OVERLAY_CHUNK_MIN (8ULL << 20)

#endif
