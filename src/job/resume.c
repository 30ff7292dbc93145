/* resume.c: 'snapmove resume JOB': finish an interrupted move, live when the
 * domain runs, offline (qemu-img) when it is shut off.  The shared opening
 * (lock, load, reconcile) and the report for a domain that is gone are here
 * too; abort.c uses them.
 */
#include "job/resume.h"
#include "chain/image.h"
#include "job/job_run.h"
#include "cleanup.h"
#include "hooks.h"
#include "lock.h"
#include "job/reconcile.h"
#include "snapshot/define.h"
#include "events.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sm_job_open_existing(struct sm_jobctx *c, struct sm_virt *v, struct sm_journal *j,
			 long long job_id, struct sm_progress *pr, struct sm_job_lock *lock,
			 const char *verb)
{
	struct sm_job_row row;
	int rc;

	lock->fd = -1;
	rc = sm_journal_job_get(j, job_id, &row);
	if (rc <= 0) {
		if (rc == 0)
			sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
		return -1;
	}
	if (sm_str_eq(row.state, "done") || sm_str_eq(row.state, "aborted")) {
		sm_error("job %lld is %s; there is nothing to %s", job_id, row.state, verb);
		sm_job_row_release(&row);
		return -1;
	}
	sm_job_row_release(&row);
	/* Nothing is done for a job of which any row was edited or damaged. */
	if (sm_journal_job_check(j, job_id) < 0 || sm_job_lock(j, job_id, lock) < 0)
		return -1;
	if (sm_jobctx_load(c, v, j, job_id, pr) < 0)
		goto error;
	return 0;

error:
	sm_job_unlock(lock, 0);
	return -1;
}

static void print_chain_of(const char *target, const char *what, const char *top,
			   const char *top_format, const struct sm_plan_disk *p, bool dst,
			   size_t from)
{
	fprintf(sm_human(), "  %s: %s\n    %s (%s)", target, what, top, top_format);
	for (size_t k = from; k < p->nimages; k++)
		fprintf(sm_human(), " <- %s (%s)", dst ? p->images[k].dst : p->images[k].src,
		       dst ? p->images[k].dst_format : p->images[k].format);
	if (p->kept)
		fprintf(sm_human(), " <- %s (%s)", p->kept, p->kept_format);
	fprintf(sm_human(), "\n");
}

void sm_job_report_gone(const struct sm_jobctx *c)
{
	fprintf(sm_human(), "domain '%s' (%s) no longer exists: a transient domain that was shut down "
	       "or destroyed has no definition to rewrite.  Its data is here:\n",
	       c->domain_name, c->uuid);
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		struct stat sb;

		if (c->state[i] >= SM_DISK_COLLAPSED)
			print_chain_of(p->target, "moved; the destination chain", p->images[0].dst,
				       p->images[0].dst_format, p, true, 1);
		else if (c->state[i] >= SM_DISK_PIVOTED || (c->pivoting[i] &&
							     lstat(p->dst_overlay, &sb) == 0))
			print_chain_of(p->target, c->state[i] >= SM_DISK_PIVOTED
				       ? "the newest writes are in the destination overlay, over "
					 "the destination chain"
				       : "a pivot was under way: the newest writes are in the "
					 "destination overlay, over the destination chain (only if "
					 "that pivot never happened are they in the source overlay "
					 "instead)", p->dst_overlay, "qcow2", p, true, 0);
		else if (c->state[i] >= SM_DISK_SNAPSHOTTED && lstat(p->src_overlay, &sb) == 0)
			print_chain_of(p->target, "the newest writes are in the source overlay, "
				       "over the original chain", p->src_overlay, "qcow2", p,
				       false, 0);
		else
			print_chain_of(p->target, "the original chain, unchanged", p->images[0].src,
				       p->images[0].format, p, false, 1);
	}
	fprintf(sm_human(), "Start a domain named '%s' on those files, then run 'snapmove resume %lld' "
	       "or 'snapmove abort %lld'.\n", c->domain_name, c->job, c->job);
}

/* Copy an overlay (a small qcow2 file) to a new file dst, exclusively, and
 * point it at backing.  For offline resume and abort. */
int sm_job_copy_overlay(struct sm_jobctx *c, const char *src, const char *dst,
			const char *role, const char *backing, const char *backing_format)
{
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true,
				   .method = SM_COPY_AUTO };
	struct sm_copy_result res;
	struct stat sb;
	SM_AUTOFREE char *state = NULL;
	SM_AUTOFREE char *fdpath = NULL;
	int fd = -1, in = -1, ret = -1;

	if (lstat(dst, &sb) == 0) {
		if (sm_journal_file_state(c->j, c->job, dst, &state) < 0)
			return -1;
		if (!sm_str_eq(state, "created") && !sm_str_eq(state, "creating")) {
			sm_error("'%s' exists and job %lld did not create it; remove it if no "
				 "domain uses it", dst, c->job);
			return -1;
		}
		if (sm_job_clear_file(c, dst, role) < 0)
			return -1;
	}
	if (sm_job_file(c, dst, role, "creating") < 0)
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

/* ---- offline ---- */

static int resume_disk_offline(struct sm_jobctx *c, size_t i, const char **final,
			       const char **format)
{
	const struct sm_plan_disk *p = &c->plans[i];
	enum sm_disk_state s = c->state[i];

	*final = p->images[0].dst;
	*format = p->images[0].dst_format;
	if (s < SM_DISK_PIVOTED) {
		/* The domain's data: the source overlay (if the snapshot happened)
		 * over the original chain.  Copy the chain, then the overlay. */
		if (sm_job_dest_chain_disk(c, i) < 0 || sm_job_copy_disk(c, i) < 0)
			return -1;
		if (s == SM_DISK_PLANNED)
			return sm_job_disk_state(c, i, SM_DISK_COLLAPSED);
		if (sm_job_copy_overlay(c, p->src_overlay, p->dst_overlay, "dst_overlay",
					p->images[0].dst, p->images[0].dst_format) < 0 ||
		    sm_job_disk_state(c, i, SM_DISK_PIVOTED) < 0)
			return -1;
	}
	if (c->state[i] == SM_DISK_PIVOTED && c->keep_overlay) {
		*final = p->dst_overlay;
		*format = "qcow2";
		return 0;
	}
	if (c->state[i] == SM_DISK_PIVOTED &&
	    (sm_image_commit(p->dst_overlay, p->images[0].dst, p->images[0].dst_format) < 0 ||
	     sm_job_disk_state(c, i, SM_DISK_COLLAPSED) < 0 ||
	     sm_job_remove_file(c, p->dst_overlay, "dst_overlay") < 0))
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
		    (!c->keep_overlay && sm_job_remove_file(c, p->dst_overlay, "dst_overlay") < 0) ||
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
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s", sm_error_message());
		sm_journal_job_finish(c->j, c->job, SM_JOB_FAILED, msg);
		sm_error("%s", msg);
		return -1;
	}
	return 0;
}

static void print_outcome(const struct sm_jobctx *c, const char *what)
{
	fprintf(sm_human(), "%s job %lld of domain %s\n", what, c->job, c->domain_name);
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		bool ovl = c->keep_overlay;

		fprintf(sm_human(), "  %s now:", p->target);
		if (ovl)
			fprintf(sm_human(), " %s (qcow2) <-", p->dst_overlay);
		for (size_t k = 0; k < p->nimages; k++)
			fprintf(sm_human(), "%s %s (%s)", k ? " <-" : "", p->images[k].dst, p->images[k].dst_format);
		if (p->kept)
			fprintf(sm_human(), " <- %s (%s)", p->kept, p->kept_format);
		fprintf(sm_human(), "\n");
	}
}

enum sm_move_result sm_resume(struct sm_virt *v, struct sm_journal *j, long long job_id,
			      struct sm_progress *pr)
{
	static const enum sm_phase phases[] = {
		SM_PHASE_SNAPSHOT, SM_PHASE_DEST_CHAIN, SM_PHASE_COPY, SM_PHASE_MIRROR,
		SM_PHASE_SYNC, SM_PHASE_PIVOT, SM_PHASE_COLLAPSE, SM_PHASE_FINALIZE,
	};
	struct sm_jobctx c;
	struct sm_job_lock lock;
	enum sm_move_result ret = SM_MOVE_REFUSED;

	memset(&c, 0, sizeof(c));
	if (sm_job_open_existing(&c, v, j, job_id, pr, &lock, "resume") < 0)
		goto cleanup;
	/* libvirt's "shut off" is a claim: prove it before working offline. */
	if (!c.running && sm_reconcile_job_off(&c, "resume") < 0)
		goto cleanup;
	if (!c.dom) {
		sm_job_report_gone(&c);
		sm_error("job %lld cannot go on: its domain '%s' no longer exists; start a domain "
			 "of that name on the files listed, then run 'snapmove resume %lld'",
			 job_id, c.domain_name, job_id);
		ret = SM_MOVE_FAILED;
		goto cleanup;
	}
	sm_progress_say(pr, "job %lld: resuming the move of %zu disk%s of %s to %s", c.job,
			c.nplans, c.nplans == 1 ? "" : "s", c.domain_name, c.dest);
	if (sm_reconcile(&c) < 0 ||
	    (!c.running && sm_reconcile_offline_pivots(&c, "resume") < 0)) {
		if (c.acted) {  /* it corrected the definition: a failure, recorded */
			ret = SM_MOVE_FAILED;
			sm_journal_job_finish(j, c.job, SM_JOB_FAILED, sm_error_message());
		}
		goto cleanup;
	}
	ret = SM_MOVE_FAILED;
	if (sm_journal_job_finish(j, c.job, SM_JOB_RUNNING, NULL) < 0)
		goto cleanup;
	if (c.running) {
		if (sm_job_run(&c, phases, SM_ARRAY_LEN(phases)) < 0) {
			ret = c.vetoed ? SM_MOVE_VETOED
			      : sm_interrupted ? SM_MOVE_INTERRUPTED : SM_MOVE_FAILED;
			goto cleanup;
		}
	} else if (resume_offline(&c) < 0) {
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s", sm_error_message());
		sm_journal_job_finish(j, c.job, SM_JOB_FAILED, msg);
		sm_error("%s", msg);
		goto cleanup;
	}
	if (sm_job_close(&c, SM_JOB_DONE) < 0)
		goto cleanup;
	sm_hooks_run(&c, "after_move");
	print_outcome(&c, "finished");
	if (c.delete_source) {
		unsigned long long freed = 0;
		char b[32];

		if (sm_cleanup_run(v, j, c.job, pr, &freed) < 0)
			sm_progress_say(pr, "warning: the move is done but its source was not "
					"deleted: %s; run 'snapmove cleanup %lld'", sm_error_message(),
					c.job);
		else
			fprintf(sm_human(), "deleted the source: %s freed\n",
				sm_format_bytes(freed, b, sizeof(b)));
	}
	sm_job_unlock(&lock, 1);
	ret = SM_MOVE_OK;

cleanup:
	if (c.job)
		sm_job_emit_result(&c, sm_move_status_name(ret), sm_move_exit_code(ret),
				   ret == SM_MOVE_OK ? NULL : sm_error_message());
	sm_job_unlock(&lock, 0);
	sm_jobctx_release(&c);
	return ret;
}
