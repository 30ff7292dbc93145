/* states.c: names of phases and states, for the journal and for people. */
#include "states.h"
#include "util.h"

SM_ENUM_IMPL(job_state, enum sm_job_state, SM_JOB_STATE_LAST,
	     "running", "failed", "done", "aborted")

SM_ENUM_IMPL(phase, enum sm_phase, SM_PHASE_LAST,
	     "planned", "snapshot", "dest_chain", "mirror", "copy", "sync", "pivot",
	     "collapse", "finalize", "done")

const char *sm_phase_describe(enum sm_phase p)
{
	switch (p) {
	case SM_PHASE_PLANNED: return "planned";
	case SM_PHASE_SNAPSHOT: return "taking the snapshot";
	case SM_PHASE_DEST_CHAIN: return "creating the destination chain";
	case SM_PHASE_MIRROR: return "starting the mirror";
	case SM_PHASE_COPY: return "copying the old chain";
	case SM_PHASE_SYNC: return "waiting for the mirror";
	case SM_PHASE_PIVOT: return "pivoting to the destination";
	case SM_PHASE_COLLAPSE: return "collapsing the overlay";
	case SM_PHASE_FINALIZE: return "finalizing";
	case SM_PHASE_DONE: return "done";
	case SM_PHASE_LAST: break;
	}
	return "unknown";
}

SM_ENUM_IMPL(disk_state, enum sm_disk_state, SM_DISK_STATE_LAST,
	     "planned", "snapshotted", "dest_created", "mirroring", "copied", "ready",
	     "pivoted", "collapsed", "done")

SM_ENUM_IMPL(image_state, enum sm_image_state, SM_IMAGE_STATE_LAST,
	     "planned", "created", "copying", "copied")
