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
};

#endif
