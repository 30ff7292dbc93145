/* internal.h: what the files of the job runner (src/job/ctx.c ... result.c)
 * share and nothing outside src/job/ uses. */
#ifndef SM_JOB_INTERNAL_H
#define SM_JOB_INTERNAL_H

#include "job/job_run.h"

struct sm_held_file {
	char *path;
	int fd;
};

void sm_job_add_dest_space(struct sm_jobctx *c);
bool sm_job_chain_ok(struct sm_jobctx *c, size_t i);
int sm_job_check_chain(struct sm_jobctx *c, size_t i);
int sm_job_create_dst_overlay(struct sm_jobctx *c, size_t i);
int sm_job_dest_fd(struct sm_jobctx *c, const char *path, const char *src);
void sm_job_disk_fail(struct sm_jobctx *c, size_t i);
unsigned long long sm_job_file_bytes(const char *path);
int sm_job_follow_size(struct sm_jobctx *c, size_t i);
void sm_job_hold_file(struct sm_jobctx *c, const char *path, int fd);
int sm_job_phase_collapse(struct sm_jobctx *c);
int sm_job_phase_copy(struct sm_jobctx *c);
int sm_job_phase_dest_chain(struct sm_jobctx *c);
int sm_job_phase_finalize(struct sm_jobctx *c);
int sm_job_phase_mirror(struct sm_jobctx *c);
int sm_job_phase_pivot(struct sm_jobctx *c);
int sm_job_phase_snapshot(struct sm_jobctx *c);
int sm_job_phase_sync(struct sm_jobctx *c);
int sm_job_test_hook(const struct sm_jobctx *c, const char *point);
int sm_job_still_named(struct sm_jobctx *c, const char *path, int fd);
int sm_job_stop_job(struct sm_jobctx *c, size_t i);
bool sm_job_todo(const struct sm_jobctx *c, size_t i, enum sm_disk_state from,
		 enum sm_disk_state to);
int sm_job_wait_one(struct sm_jobctx *c, size_t i, const char *label);

#endif
