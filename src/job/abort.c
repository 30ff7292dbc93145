/* abort.c: 'snapmove abort JOB [--via commit|stream]': put the domain back
 * on its original images and remove what the job created on both storages.
 *
 * Before the pivot: cancel the mirror, then collapse the source overlay back
 * (active commit into the original image and pivot; or block stream of the
 * original image into the overlay, which leaves the domain on the overlay).
 * After the pivot and before the final commit has pivoted: move back, a
 * shallow mirror of the destination overlay onto a fresh overlay over the
 * original image (O(changes): the original equals its copy), then as before.
 * Once the destination overlay is folded into the moved image the data lives
 * only on the destination: abort refuses and says how to go on.
 * With the domain shut off the same is done with qemu-img.
 */
#include "chain/image.h"
#include "job/hook_facts.h"
#include "job/provdev.h"
#include "lock.h"
#include "job/reconcile.h"
#include "job/resume.h"
#include "snapshot/blockjob.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct undo {
	struct sm_jobctx *c;
	enum sm_abort_via via;
};

/* The image below the original active image, where a stream stops: the
 * next moved image, or the shared image the job left in place. */
static const char *stream_base(const struct sm_plan_disk *p)
{
	return p->nimages > 1 ? p->images[1].src : p->kept;
}

static const char *stream_base_format(const struct sm_plan_disk *p)
{
	return p->nimages > 1 ? p->images[1].format : p->kept_format;
}

static int refuse_if_folded(const struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		if (c->disks[i].state < SM_DISK_COLLAPSED)
			continue;
		sm_error("job %lld has already moved disk '%s' and folded its overlay into "
			 "'%s': the data now lives only on the destination, so abort cannot "
			 "put it back cheaply; finish the job with 'snapmove resume %lld', then "
			 "move the domain back with 'snapmove move %s --dest DIR'", c->job,
			 c->plans[i].target, c->plans[i].images[0].dst, c->job, c->domain_name);
		return -1;
	}
	return 0;
}

/* A commit back into the original image writes to the source storage (new
 * clusters where the overlay holds data the image has not allocated): on a
 * full one it fails with ENOSPC and the domain stays on the overlay.  Say
 * what does not need that room: the stream, which writes only into the
 * overlay, in its own folder. */
static void hint_stream_if_full(const struct sm_jobctx *c, size_t i)
{
	char *err;

	if (!strstr(sm_error_message(), "No space left") &&
	    !strstr(sm_error_message(), "no space left"))
		return;
	err = sm_error_preserve();
	sm_error("%s; committing the overlay back needs free space on the storage of '%s': "
		 "free some there and run 'snapmove abort %lld' again, or run 'snapmove abort "
		 "%lld --via stream', which writes only into the overlay '%s' (the domain then "
		 "stays on that file)", err, c->plans[i].images[0].src, c->job, c->job,
		 c->plans[i].src_overlay);
	free(err);
}

/* ---- live ---- */

/* After the pivot: a fresh overlay over the original image, a shallow mirror
 * of the destination overlay onto it, and a pivot back. */
static int move_back_live(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	bool *which = sm_xcalloc(c->nplans, sizeof(*which));
	struct stat sb;
	int fd, made, ret = -1;

	if (c->disks[i].commit_unseen) {
		sm_error("disk '%s' has an active commit of '%s' that libvirt runs but shows no "
			 "<mirror> for (libvirtd was restarted while starting it); libvirt 9.0 "
			 "crashes when such a job is cancelled, so abort cannot undo this disk: "
			 "finish the move with 'snapmove resume %lld' (it completes the commit), "
			 "then move the disk back", p->target, p->dst_overlay, c->job);
		goto cleanup;
	}
	if (c->disks[i].committing) {
		if (sm_blockjob_cancel(c->dom, p->target) < 0)
			goto cleanup;
		c->disks[i].committing = false;
	}
	if (c->disks[i].src_dev) {
		/* On the job's device: written anew (its first writes went into
		 * the original image by the commit back, or were mirrored on). */
		if (sm_job_ovdev_format(c, p->src_overlay, SM_FILE_SRC_OVERLAY, p->images[0].src,
					p->images[0].format, p->virtual_size) < 0 ||
		    (c->disks[i].dst_dev &&
		     sm_job_grow_match(c, c->disks[i].src_dev, c->disks[i].dst_dev) < 0))
			goto cleanup;
	} else {
		if (lstat(p->src_overlay, &sb) == 0 &&
		    sm_job_clear_file(c, p->src_overlay, SM_FILE_SRC_OVERLAY) < 0)
			goto cleanup;
		if (sm_job_file(c, p->src_overlay, SM_FILE_SRC_OVERLAY, SM_FILE_CREATING) < 0)
			goto cleanup;
		fd = sm_image_create_fd(p->src_overlay, "qcow2", p->virtual_size, p->images[0].src,
					p->images[0].format, NULL);
		if (fd < 0)
			goto cleanup;
		made = sm_job_file_made(c, p->src_overlay, SM_FILE_SRC_OVERLAY, fd);
		close(fd);
		if (made < 0)
			goto cleanup;
	}
	if (sm_job_clear_lost(c, i, p->src_overlay, false) < 0 ||
	    sm_blockjob_mirror_start(c->v, c->dom, p->target, p->src_overlay, c->bandwidth_mib,
				     c->persistent, c->sync_writes == SM_SYNC_WRITES_ON) < 0)
		goto cleanup;
	which[i] = true;
	if (sm_job_wait_ready(c, which, "moving back") < 0 ||
	    sm_blockjob_pivot(c->dom, p->target, p->src_overlay) < 0 ||
	    sm_job_disk_state(c, i, SM_DISK_SNAPSHOTTED) < 0)
		goto cleanup;
	ret = 0;

cleanup:
	free(which);
	return ret;
}

/* On the source overlay: fold it back into the original image (commit) or
 * pull the original image into it (stream). */
static int collapse_back_live(struct undo *u, size_t i)
{
	struct sm_jobctx *c = u->c;
	const struct sm_plan_disk *p = &c->plans[i];
	bool *which = sm_xcalloc(c->nplans, sizeof(*which));
	int ret = -1;

	which[i] = true;
	if (c->disks[i].mirroring) {
		if (sm_blockjob_cancel(c->dom, p->target) < 0)
			goto cleanup;
		c->disks[i].mirroring = false;
	}
	/* A mirror start or pivot libvirtd died in: its job blocks the commit
	 * ("Need a root block node"), its nodes hold the destination files. */
	if (!c->disks[i].committing && sm_job_clear_lost(c, i, p->dst_overlay, true) < 0)
		goto cleanup;
	if (u->via == SM_ABORT_STREAM) {
		if (c->disks[i].committing && sm_blockjob_cancel(c->dom, p->target) < 0)
			goto cleanup;
		if (sm_blockjob_stream_start(c->v, c->dom, p->target, stream_base(p),
					     c->bandwidth_mib) < 0 ||
		    sm_blockjob_wait_done(c->v, c->dom, p->target) < 0)
			goto cleanup;
	} else {
		if (!c->disks[i].committing &&
		    sm_blockjob_commit_start(c->v, c->dom, p->target, p->images[0].src,
					     c->bandwidth_mib) < 0)
			goto cleanup;
		c->disks[i].committing = true;
		if (sm_job_wait_ready(c, which, "commit back") < 0 ||
		    sm_blockjob_pivot(c->dom, p->target, p->images[0].src) < 0) {
			hint_stream_if_full(c, i);
			goto cleanup;
		}
		c->disks[i].committing = false;
		if (sm_job_disk_state(c, i, SM_DISK_PLANNED) < 0)
			goto cleanup;
	}
	ret = 0;

cleanup:
	free(which);
	return ret;
}

static int abort_disk_live(struct undo *u, size_t i)
{
	struct sm_jobctx *c = u->c;

	if ((c->disks[i].state == SM_DISK_PLANNED && !c->disks[i].mirroring &&
	     !c->disks[i].committing) || c->disks[i].streamed)
		return 0;  /* nothing to undo, or streamed back already */
	if (c->disks[i].state == SM_DISK_PIVOTED && move_back_live(c, i) < 0)
		return -1;
	return collapse_back_live(u, i);
}

/* ---- offline ---- */

/* Pull the original image into the source overlay (qemu-img rebase), the
 * chains it reads pinned: the overlay over the job's source chain, and the
 * new backing's chain below the original image, both as sm_job_source_chain
 * found and checked them (the images the job planned and kept, each header
 * below followed with its format and checked, never followed again by
 * qemu-img). */
static int stream_back_offline(struct sm_jobctx *c, const struct sm_plan_disk *p)
{
	struct sm_domain_disks src = { 0 };
	struct sm_image *chain = NULL;
	size_t n;
	int ret = -1;

	if (sm_job_source_chain(c, p, &src) < 0)
		goto cleanup;
	n = src.disks[0].nchain + 1;
	chain = sm_xcalloc(n, sizeof(*chain));
	chain[0] = (struct sm_image){ .path = p->src_overlay, .format = (char *)"qcow2" };
	memcpy(chain + 1, src.disks[0].chain, src.disks[0].nchain * sizeof(*chain));
	if (n > 2 ? !sm_str_eq(chain[2].path, stream_base(p)) ||
		    !sm_str_eq(chain[2].format, stream_base_format(p)) : stream_base(p) != NULL) {
		sm_error("the chain below '%s' is no longer the one job %lld planned; see "
			 "'snapmove status %lld'", p->images[0].src, c->job, c->job);
		goto cleanup;
	}
	ret = sm_image_rebase_safe(chain, n, n > 2 ? 2 : n);

cleanup:
	free(chain);
	sm_domain_disks_release(&src);
	return ret;
}

static int abort_disk_offline(struct undo *u, size_t i)
{
	struct sm_jobctx *c = u->c;
	const struct sm_plan_disk *p = &c->plans[i];

	if (c->disks[i].state == SM_DISK_PLANNED)
		return 0;
	if (c->disks[i].dst_dev && c->disks[i].state == SM_DISK_PIVOTED) {
		sm_error("disk '%s' runs on its destination overlay, on device '%s', which job %lld "
			 "moves back only live; start domain '%s' and run 'snapmove abort %lld' again",
			 p->target, p->dst_overlay, c->job, c->domain_name, c->job);
		return -1;
	}
	/* After the pivot the newest data is in the destination overlay: bring it
	 * back next to the original image first. */
	if (c->disks[i].state == SM_DISK_PIVOTED &&
	    (sm_job_copy_overlay(c, p->dst_overlay, p->src_overlay, SM_FILE_SRC_OVERLAY,
				 p->images[0].src, p->images[0].format) < 0 ||
	     sm_job_disk_state(c, i, SM_DISK_SNAPSHOTTED) < 0))
		return -1;
	if (u->via == SM_ABORT_STREAM)
		return stream_back_offline(c, p);
	if (sm_image_commit(p->src_overlay, p->images[0].src, p->images[0].format) < 0) {
		hint_stream_if_full(c, i);
		return -1;
	}
	return sm_job_disk_state(c, i, SM_DISK_PLANNED);
}

/* ---- both ---- */

static const char *original_path(const struct sm_jobctx *c, size_t i)
{
	return c->plans[i].images[0].src;
}

static const char *original_format(const struct sm_jobctx *c, size_t i)
{
	return c->plans[i].images[0].format;
}

static const char *original_backing(const struct sm_jobctx *c, size_t i)
{
	return c->plans[i].nimages > 1 ? c->plans[i].images[1].src : c->plans[i].kept;
}

/* After a stream the domain runs on the overlay, unless the disk never got
 * one (the job stopped before the snapshot). */
static const char *overlay_path(const struct sm_jobctx *c, size_t i)
{
	return c->disks[i].state == SM_DISK_PLANNED ? original_path(c, i) : c->plans[i].src_overlay;
}

static const char *overlay_format(const struct sm_jobctx *c, size_t i)
{
	return c->disks[i].state == SM_DISK_PLANNED ? original_format(c, i) : "qcow2";
}

/* What the overlay's header points at after a stream: the image below the
 * original active one. */
static const char *overlay_backing(const struct sm_jobctx *c, size_t i)
{
	if (c->disks[i].state == SM_DISK_PLANNED)
		return c->plans[i].nimages > 1 ? c->plans[i].images[1].src : c->plans[i].kept;
	return stream_base(&c->plans[i]);
}

/* Remove every file the job created that the domain no longer uses. */
static int remove_created(struct undo *u)
{
	struct sm_jobctx *c = u->c;

	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (sm_job_remove_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY) < 0)
			return -1;
		for (size_t k = 0; k < p->nimages; k++) {
			enum sm_file_state state;
			int rc = sm_job_file_state(c, p->images[k].dst, &state);

			if (rc < 0)
				return -1;
			/* Only files the job made: a "planned" one may be someone else's. */
			if (rc > 0 && (state == SM_FILE_CREATED || state == SM_FILE_CREATING) &&
			    sm_job_remove_file(c, p->images[k].dst, SM_FILE_DST_IMAGE) < 0)
				return -1;
		}
		/* After a stream the domain runs on the overlay; a disk that never
		 * got onto it (stopped before the snapshot) leaves it unused. */
		if ((u->via == SM_ABORT_COMMIT || c->disks[i].state == SM_DISK_PLANNED) &&
		    sm_job_remove_file(c, p->src_overlay, SM_FILE_SRC_OVERLAY) < 0)
			return -1;
	}
	return 0;
}

static int run_abort(struct undo *u)
{
	struct sm_jobctx *c = u->c;
	bool stream = u->via == SM_ABORT_STREAM;

	for (size_t i = 0; i < c->nplans; i++) {
		if (c->running ? abort_disk_live(u, i) < 0 : abort_disk_offline(u, i) < 0)
			return -1;
		sm_crash_point("abort:disk");
	}
	if (sm_job_define(c, stream ? overlay_path : original_path,
			  stream ? overlay_format : original_format,
			  stream ? overlay_backing : original_backing) < 0)
		return -1;
	return remove_created(u);
}

enum sm_move_result sm_abort(struct sm_virt *v, struct sm_journal *j, long long job_id,
			     enum sm_abort_via via, struct sm_progress *pr, struct sm_job_result *r)
{
	struct sm_jobctx c;
	struct sm_job_lock lock;
	struct undo u = { .c = &c, .via = via };
	enum sm_move_result ret = SM_MOVE_REFUSED;

	memset(&c, 0, sizeof(c));
	r->verb = SM_JOB_VERB_ABORT;
	r->via_stream = via == SM_ABORT_STREAM;
	if (sm_job_open_existing(&c, v, j, job_id, pr, &lock, "abort") < 0)
		goto cleanup;
	/* libvirt's "shut off" is a claim: prove it before working offline. */
	if (!c.running && sm_reconcile_job_off(&c, "abort") < 0)
		goto cleanup;
	if (!c.dom) {
		sm_job_locate_gone(&c, r);
		sm_error("job %lld cannot be undone: its domain '%s' no longer exists; start a "
			 "domain of that name on the files listed, then run 'snapmove abort %lld'",
			 job_id, c.domain_name, job_id);
		ret = SM_MOVE_FAILED;
		goto cleanup;
	}
	sm_progress_say(pr, "job %lld: aborting the move of %s (%s, via %s)", c.job,
			c.domain_name, c.running ? "live" : "offline",
			via == SM_ABORT_STREAM ? "stream" : "commit");
	if (sm_reconcile(&c) < 0 || refuse_if_folded(&c) < 0 ||
	    (via == SM_ABORT_COMMIT && sm_reconcile_refuse_streamed(&c, "abort --via commit") < 0) ||
	    (!c.running && sm_reconcile_offline_pivots(&c, "abort") < 0)) {
		if (c.acted) {  /* it recorded a commit or corrected the definition */
			ret = SM_MOVE_FAILED;
			/* Already failing (or vetoed): a journal that fails too leaves the job
			 * running, which resume and abort treat like failed. */
			sm_ignore_value(sm_journal_job_finish(j, c.job, SM_JOB_FAILED, sm_error_message()));
		}
		goto cleanup;
	}
	ret = SM_MOVE_FAILED;
	/* Overlays on devices grow while the abort waits on block jobs. */
	if ((c.running && sm_job_grow_start(&c) < 0) || run_abort(&u) < 0) {
		char *err = sm_error_preserve();

		/* Already failing: a journal that fails too keeps the job running,
		 * which resume and abort treat like failed. */
		sm_ignore_value(sm_journal_job_finish(j, c.job, SM_JOB_FAILED, err));
		sm_error_restore(&err);
		goto cleanup;
	}
	/* The devices its provisioner made hold nothing now: they go (one that
	 * cannot is warned, and 'snapmove cleanup' removes it later). */
	sm_ignore_value(sm_provdev_remove(v, j, c.job, false, pr));
	ret = SM_MOVE_OK;

cleanup:
	return sm_job_end(&c, &lock, ret, r);
}
