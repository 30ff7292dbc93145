/* offline.c: the forward path of a job whose domain is shut off: copy with
 * qemu-img and the copier, rewrite the definition, clean up (the live phases
 * are runner.c's).  Used by move --offline and by resume.
 */
#include "job/job_run.h"
#include "chain/image.h"
#include "snapshot/define.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copy an overlay (a small qcow2 file) to a new file dst, exclusively, and
 * point it at backing.  For offline resume and abort. */
int sm_job_copy_overlay(struct sm_jobctx *c, const char *src, const char *dst,
			enum sm_file_role role, const char *backing, const char *backing_format)
{
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true,
				   .method = SM_COPY_AUTO };
	struct sm_copy_result res;
	struct stat sb;
	enum sm_file_state state;
	SM_AUTOFREE char *fdpath = NULL;
	int fd = -1, in = -1, ret = -1;

	if (lstat(dst, &sb) == 0) {
		int rc = sm_job_file_state(c, dst, &state);

		if (rc < 0)
			return -1;
		if (rc == 0 || (state != SM_FILE_CREATED && state != SM_FILE_CREATING)) {
			sm_error("'%s' exists and job %lld did not create it; remove it if no "
				 "domain uses it", dst, c->job);
			return -1;
		}
		if (sm_job_clear_file(c, dst, role) < 0)
			return -1;
	}
	if (sm_job_file(c, dst, role, SM_FILE_CREATING) < 0)
		return -1;
	/* Claimed exclusively, root's alone, then the source overlay's owner
	 * and mode; written through the fds only (see sm_image_create_fd). */
	in = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0 || fstat(in, &sb) < 0) {
		sm_error("cannot read '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	fd = open(dst, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		sm_error("cannot create '%s': %s", dst, strerror(errno));
		goto cleanup;
	}
	if (fchown(fd, sb.st_uid, sb.st_gid) < 0 || fchmod(fd, sb.st_mode & 0777) < 0) {
		sm_error("cannot give '%s' the owner and mode of '%s': %s", dst, src,
			 strerror(errno));
		goto cleanup;
	}
	fdpath = sm_image_fd_path(fd);
	if (sm_job_file_made(c, dst, role, fd) < 0 ||
	    sm_copy_run_fds(&req, in, fd, NULL, NULL, &res) < 0 ||
	    sm_image_rebase_unsafe(fdpath, "qcow2", backing, backing_format) < 0)
		goto cleanup;
	if (fdatasync(fd) < 0) {
		sm_error("cannot flush '%s': %s", dst, strerror(errno));
		goto cleanup;
	}
	ret = 0;

cleanup:
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	return ret;
}


static int resume_disk_offline(struct sm_jobctx *c, size_t i, const char **final,
			       const char **format)
{
	const struct sm_plan_disk *p = &c->plans[i];
	enum sm_disk_state s = c->disks[i].state;

	*final = p->images[0].dst;
	*format = p->images[0].dst_format;
	if (c->disks[i].src_dev && s >= SM_DISK_SNAPSHOTTED && s <= SM_DISK_PIVOTED) {
		sm_error("the overlays of disk '%s' are on devices (%s, %s), which job %lld "
			 "finishes only live; start domain '%s' (it is defined on one) and run "
			 "'snapmove resume %lld', or undo the move with 'snapmove abort %lld'",
			 p->target, p->src_overlay, p->dst_overlay, c->job, c->domain_name, c->job,
			 c->job);
		return -1;
	}
	if (s < SM_DISK_PIVOTED) {
		/* The domain's data: the source overlay (if the snapshot happened)
		 * over the original chain.  Copy the chain, then the overlay. */
		if (sm_job_dest_chain_disk(c, i) < 0 || sm_job_copy_disk(c, i) < 0)
			return -1;
		if (s == SM_DISK_PLANNED)
			return sm_job_disk_state(c, i, SM_DISK_COLLAPSED);
		if (sm_job_copy_overlay(c, p->src_overlay, p->dst_overlay, SM_FILE_DST_OVERLAY,
					p->images[0].dst, p->images[0].dst_format) < 0 ||
		    sm_job_disk_state(c, i, SM_DISK_PIVOTED) < 0)
			return -1;
	}
	if (c->disks[i].state == SM_DISK_PIVOTED && c->keep_overlay) {
		*final = p->dst_overlay;
		*format = "qcow2";
		return 0;
	}
	if (c->disks[i].state == SM_DISK_PIVOTED &&
	    (sm_image_commit(p->dst_overlay, p->images[0].dst, p->images[0].dst_format) < 0 ||
	     sm_job_disk_state(c, i, SM_DISK_COLLAPSED) < 0 ||
	     sm_job_remove_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY) < 0))
		return -1;
	return 0;
}

static int resume_offline(struct sm_jobctx *c)
{
	struct sm_define_disk *defs = sm_xcalloc(c->nplans, sizeof(*defs));
	int rewritten, ret = -1;

	sm_progress_say(c->pr, "domain '%s' is not running: moving offline", c->domain_name);
	for (size_t i = 0; i < c->nplans; i++) {
		defs[i].target = c->plans[i].target;
		if (resume_disk_offline(c, i, &defs[i].path, &defs[i].format) < 0)
			goto cleanup;
	}
	/* Started while we copied: its images changed under the copy. */
	if (c->dom && virDomainIsActive(c->dom) == 1) {
		sm_error("domain '%s' was started during the offline move, so the copies may "
			 "miss its writes; undo the job with 'snapmove abort %lld' and move it "
			 "live", c->domain_name, c->job);
		goto cleanup;
	}
	if (c->persistent && c->dom &&
	    sm_define_sync(sm_virt_conn(c->v), c->dom, defs, c->nplans, &rewritten) < 0)
		goto cleanup;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (sm_job_remove_src_overlay(c, i) < 0 ||
		    (!c->keep_overlay &&
		     sm_job_remove_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY) < 0) ||
		    sm_job_disk_state(c, i, SM_DISK_DONE) < 0)
			goto cleanup;
	}
	ret = 0;

cleanup:
	free(defs);
	return ret;
}

int sm_job_complete_offline(struct sm_jobctx *c)
{
	if (resume_offline(c) < 0) {
		char *err = sm_error_preserve();

		/* Already failing: a journal that fails too keeps the job running,
		 * which resume and abort treat like failed. */
		sm_ignore_value(sm_journal_job_finish(c->j, c->job, SM_JOB_FAILED, err));
		sm_error_restore(&err);
		return -1;
	}
	return 0;
}
