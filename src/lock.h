/* lock.h: one process acts on a job at a time.
 *
 * The journal's transactions keep its rows consistent; this lock keeps two
 * snapmove processes from driving the same job's domain at once (a move and
 * a resume, two resumes, a resume and an abort).  It is an flock on a file
 * next to the journal, released by the kernel when the process dies, so a
 * crash never leaves a job locked.  A device a provisioner makes
 * (provision.c) has one too: two runs on one device never overlap.
 */
#ifndef SM_LOCK_H
#define SM_LOCK_H

struct sm_journal;

struct sm_job_lock {
	int fd;
	char *path;
};

/* Take the lock of job_id or fail at once naming the process holding it. */
int sm_job_lock(struct sm_journal *j, long long job_id, struct sm_job_lock *out);
/* The same for a provisioned device (JOURNAL.device-N.lock): one
 * provisioner run on a device at a time. */
int sm_device_lock(struct sm_journal *j, long long device_id, struct sm_job_lock *out);
/* Release; with remove, also delete the lock file (the job has ended). */
void sm_job_unlock(struct sm_job_lock *l, int remove);

#endif
