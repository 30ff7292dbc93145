/* job.c: names of phases and states, for the journal and for people. */
#include "job/job.h"
#include "util.h"

const char *sm_job_state_name(enum sm_job_state s)
{
	switch (s) {
	case SM_JOB_RUNNING: return "running";
	case SM_JOB_FAILED: return "failed";
	case SM_JOB_DONE: return "done";
	case SM_JOB_ABORTED: return "aborted";
	case SM_JOB_STATE_LAST: break;
	}
	return "unknown";
}

const char *sm_phase_name(enum sm_phase p)
{
	switch (p) {
	case SM_PHASE_PLANNED: return "planned";
	case SM_PHASE_SNAPSHOT: return "snapshot";
	case SM_PHASE_DEST_CHAIN: return "dest_chain";
	case SM_PHASE_MIRROR: return "mirror";
	case SM_PHASE_COPY: return "copy";
	case SM_PHASE_SYNC: return "sync";
	case SM_PHASE_PIVOT: return "pivot";
	case SM_PHASE_COLLAPSE: return "collapse";
	case SM_PHASE_FINALIZE: return "finalize";
	case SM_PHASE_DONE: return "done";
	case SM_PHASE_LAST: break;
	}
	return "unknown";
}

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

const char *sm_disk_state_name(enum sm_disk_state s)
{
	switch (s) {
	case SM_DISK_PLANNED: return "planned";
	case SM_DISK_SNAPSHOTTED: return "snapshotted";
	case SM_DISK_DEST_CREATED: return "dest_created";
	case SM_DISK_MIRRORING: return "mirroring";
	case SM_DISK_COPIED: return "copied";
	case SM_DISK_READY: return "ready";
	case SM_DISK_PIVOTED: return "pivoted";
	case SM_DISK_COLLAPSED: return "collapsed";
	case SM_DISK_DONE: return "done";
	case SM_DISK_STATE_LAST: break;
	}
	return "unknown";
}

const char *sm_image_state_name(enum sm_image_state s)
{
	switch (s) {
	case SM_IMAGE_PLANNED: return "planned";
	case SM_IMAGE_CREATED: return "created";
	case SM_IMAGE_COPYING: return "copying";
	case SM_IMAGE_COPIED: return "copied";
	case SM_IMAGE_STATE_LAST: break;
	}
	return "unknown";
}

int sm_phase_from_name(const char *name)
{
	for (int p = 0; p < SM_PHASE_LAST; p++)
		if (sm_str_eq(sm_phase_name((enum sm_phase)p), name))
			return p;
	return -1;
}

int sm_job_state_from_name(const char *name)
{
	for (int s = 0; s < SM_JOB_STATE_LAST; s++)
		if (sm_str_eq(sm_job_state_name((enum sm_job_state)s), name))
			return s;
	return -1;
}
