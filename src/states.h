/* states.h: the phases of a move and the states of its disks and images, the
 * spine every other part of snapmove hangs on.
 *
 * Values are stored in the journal by name.  Append new values only; every
 * switch over them lists all values and has no default, so -Wswitch names the
 * places a new one must be handled.
 */
#ifndef SM_STATES_H
#define SM_STATES_H

#include "util.h"

enum sm_job_state {
	SM_JOB_RUNNING,
	SM_JOB_FAILED,   /* stopped half-way (error, signal): resume or abort it */
	SM_JOB_DONE,
	SM_JOB_ABORTED,  /* undone: the domain is back on its original chain */
	SM_JOB_STATE_LAST
};

/* Phases of a move, in the order they run. */
enum sm_phase {
	SM_PHASE_PLANNED,     /* validated, journaled, nothing touched yet */
	SM_PHASE_SNAPSHOT,    /* atomic external snapshot onto source overlays */
	SM_PHASE_DEST_CHAIN,  /* empty destination chain and overlay created */
	SM_PHASE_MIRROR,      /* shallow mirror of the overlays started */
	SM_PHASE_COPY,        /* old chain copied out of band */
	SM_PHASE_SYNC,        /* waiting for every mirror to be ready */
	SM_PHASE_PIVOT,       /* drives switched to the destination chain */
	SM_PHASE_COLLAPSE,    /* destination overlay committed into its backing */
	SM_PHASE_FINALIZE,    /* persistent definition checked, overlay removed */
	SM_PHASE_DONE,
	SM_PHASE_LAST
};

enum sm_disk_state {
	SM_DISK_PLANNED,
	SM_DISK_SNAPSHOTTED,
	SM_DISK_DEST_CREATED,
	SM_DISK_MIRRORING,
	SM_DISK_COPIED,
	SM_DISK_READY,
	SM_DISK_PIVOTED,
	SM_DISK_COLLAPSED,
	SM_DISK_DONE,
	SM_DISK_STATE_LAST
};

enum sm_image_state {
	SM_IMAGE_PLANNED,
	SM_IMAGE_CREATED,  /* empty image with the right header at the destination */
	SM_IMAGE_COPYING,
	SM_IMAGE_COPIED,   /* bytes copied, backing pointer rewritten, fdatasync'ed */
	SM_IMAGE_STATE_LAST
};

const char *sm_job_state_name(enum sm_job_state s);
const char *sm_phase_name(enum sm_phase p);
/* Both ways (util.h SM_ENUM_DECL). */
SM_ENUM_DECL(disk_state, enum sm_disk_state);
SM_ENUM_DECL(image_state, enum sm_image_state);
/* Name to value; -1 for a name this version does not know. */
int sm_phase_from_name(const char *name);
int sm_job_state_from_name(const char *name);
/* What a user reads for a phase: "copying the old chain". */
const char *sm_phase_describe(enum sm_phase p);

#endif
