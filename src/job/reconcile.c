/* reconcile.c: load a job and compare the journal with libvirt and the files,
 * and prove a domain libvirt calls shut off really is (no QEMU runs it, none
 * holds its images) before anything acts on it offline.  It changes nothing
 * but the journal's record of where each disk stands.
 */
#include "job/reconcile.h"
#include "srcfile.h"
#include "chain/image.h"
#include "snapshot/blockjob.h"
#include "snapshot/define.h"
#include "chain/imagelock.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sm_reconcile_disk(const struct sm_jobctx *c, const struct sm_plan_disk *p,
		      const struct sm_disk *d, enum sm_disk_state journal_state,
		      bool all_dst_exist, bool all_copied, struct sm_observed *out)
{
	const char *active;

	memset(out, 0, sizeof(*out));
	if (!d) {
		out->state = journal_state;
		return 0;
	}
	if (d->nchain == 0) {
		sm_error("disk '%s' of domain '%s' has no image now, so job %lld cannot tell "
			 "where its data went; 'snapmove status %lld' lists the files the job "
			 "made", p->target, c->domain_name, c->job, c->job);
		return -1;
	}
	active = d->chain[0].path;
	if (d->mirror_job) {
		if (sm_str_eq(d->mirror_job, "copy") && sm_str_eq(d->mirror_path, p->dst_overlay))
			out->mirroring = true;
		else if (sm_str_eq(d->mirror_job, "active-commit"))
			out->committing = true;
		else {
			sm_error("disk '%s' has a block job snapmove did not start (%s); wait for "
				 "it or cancel it with 'virsh blockjob %s %s --abort'", p->target,
				 d->mirror_job, c->domain_name, p->target);
			return -1;
		}
	}
	if (sm_str_eq(active, p->images[0].src)) {
		/* No step of snapmove commits the original image (abort's commit
		 * back runs on the source overlay, the final commit on the
		 * destination overlay): that is someone else's. */
		if (out->committing) {
			sm_error("disk '%s' has a block job snapmove did not start (an active "
				 "commit of its original image '%s'); wait for it or cancel it "
				 "with 'virsh blockjob %s %s --abort'", p->target, active,
				 c->domain_name, p->target);
			return -1;
		}
		out->state = SM_DISK_PLANNED;
		out->mirroring = false;
	} else if (sm_str_eq(active, p->src_overlay)) {
		const char *below_original = p->nimages > 1 ? p->images[1].src : p->kept;

		/* What an 'abort --via stream' stopped after its stream leaves:
		 * the original image pulled into the overlay, which now sits on
		 * the image below it.  No mirror or commit runs then. */
		if (d->nchain > 1 && below_original &&
		    sm_str_eq(d->chain[1].path, below_original) && !out->mirroring &&
		    !out->committing) {
			out->state = SM_DISK_SNAPSHOTTED;
			out->streamed = true;
			return 0;
		}
		if (d->nchain > 1 && !sm_str_eq(d->chain[1].path, p->images[0].src)) {
			sm_error("disk '%s' runs on the overlay '%s' but over '%s', not over its "
				 "original image '%s'; something else changed it, so job %lld stops "
				 "here: see 'snapmove chain %s %s' and 'snapmove status %lld'",
				 p->target, active, d->chain[1].path, p->images[0].src, c->job,
				 c->domain_name, p->target, c->job);
			return -1;
		}
		out->state = all_copied ? SM_DISK_COPIED
			     : all_dst_exist ? SM_DISK_DEST_CREATED : SM_DISK_SNAPSHOTTED;
		if (out->mirroring && out->state < SM_DISK_MIRRORING)
			out->state = SM_DISK_MIRRORING;
	} else if (sm_str_eq(active, p->dst_overlay)) {
		out->mirroring = false;
		/* Collapsed is journaled only once the commit has folded the
		 * destination overlay: a definition (or a libvirt that missed the
		 * commit's pivot) still naming it lags behind, and folding that
		 * stale overlay again would undo the guest's newer writes. */
		out->state = journal_state == SM_DISK_DONE || journal_state == SM_DISK_COLLAPSED
			     ? journal_state : SM_DISK_PIVOTED;
		if (journal_state == SM_DISK_COLLAPSED)
			out->committing = false;
	} else if (sm_str_eq(active, p->images[0].dst)) {
		out->mirroring = out->committing = false;
		out->state = journal_state == SM_DISK_DONE ? SM_DISK_DONE : SM_DISK_COLLAPSED;
	} else {
		sm_error("disk '%s' runs on '%s', which is neither its original image, its "
			 "overlay nor its destination; something else changed it, so job %lld "
			 "stops here: see 'snapmove chain %s %s' and 'snapmove status %lld'",
			 p->target, active, c->job, c->domain_name, p->target, c->job);
		return -1;
	}
	return 0;
}

int sm_jobctx_load(struct sm_jobctx *c, struct sm_virt *v, struct sm_journal *j,
		   long long job_id, struct sm_progress *pr)
{
	struct sm_job_row job;
	struct sm_disk_row *disks = NULL;
	double job_timeout;
	unsigned parallel;
	size_t n = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	c->v = v;
	c->j = j;
	c->pr = pr;
	rc = sm_journal_job_get(j, job_id, &job);
	if (rc <= 0) {
		if (rc == 0)
			sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
		return -1;
	}
	c->job = job.id;
	c->domain_name = sm_steal(&job.domain_name);
	snprintf(c->uuid, sizeof(c->uuid), "%s", job.domain_uuid);
	c->persistent = job.persistent;
	c->dest = sm_steal(&job.dest_dir);
	c->bandwidth_mib = job.bandwidth_mib;
	c->keep_overlay = job.keep_overlay;
	c->quiesce = job.quiesce;
	c->verify = job.verify;
	c->delete_source = job.delete_source;
	job_timeout = job.converge_timeout > 0 ? job.converge_timeout : 30;
	c->copy_method = job.copy_method ?
			 (enum sm_copy_method)sm_copy_method_from_name(job.copy_method) : SM_COPY_AUTO;
	parallel = job.parallel;
	c->trim = job.trim;
	c->overlay_chunk = job.overlay_chunk;
	c->dest_zeroed = job.dest_zeroed;
	if (sm_sync_writes_from_name(job.sync_writes) >= 0)
		c->sync_writes = (enum sm_sync_writes)sm_sync_writes_from_name(job.sync_writes);
	sm_job_row_release(&job);
	if (sm_journal_disk_list(j, job_id, &disks, &n) < 0)
		return -1;
	sm_jobctx_alloc(c, n);
	c->converge_timeout = job_timeout;
	c->parallel = parallel ? parallel : sm_job_default_parallel(c->dest);
	for (size_t i = 0; i < n; i++) {
		int s = sm_disk_state_from_name(disks[i].state);

		c->plans[i] = disks[i].plan;
		memset(&disks[i].plan, 0, sizeof(disks[i].plan));
		c->disks[i].state = s < 0 ? SM_DISK_PLANNED : (enum sm_disk_state)s;
		c->disks[i].sync_mode = disks[i].sync_writes;
		c->disks[i].pivoting = disks[i].pivoting;
	}
	sm_disk_rows_free(disks, n);
	if (sm_job_ovdev_load(c) < 0)
		return -1;

	c->dom = virDomainLookupByUUIDString(sm_virt_conn(v), c->uuid);
	if (!c->dom)
		c->dom = virDomainLookupByName(sm_virt_conn(v), c->domain_name);
	if (c->dom) {
		c->running = virDomainIsActive(c->dom) == 1;
		c->persistent = virDomainIsPersistent(c->dom) == 1;
		sm_virt_watch_domain(v, c->dom);
	}
	return 0;
}

static bool file_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* A pivot was under way (journaled) and libvirt shows the running domain on
 * its source overlay: true, unless the pivot went through in QEMU while
 * libvirtd was down and libvirt never saw it (it then reloads its old view).
 * QEMU writing the source overlay proves libvirt right; no writer at all
 * proves it wrong, and any block job libvirt started now would act on the
 * wrong image. */
static int check_pivot_seen(const struct sm_jobctx *c, size_t i, const struct sm_disk *d,
			    const struct sm_observed *o)
{
	const struct sm_plan_disk *p = &c->plans[i];
	bool writing;

	if (!c->running || !d || !c->disks[i].pivoting || o->state >= SM_DISK_PIVOTED ||
	    o->state < SM_DISK_SNAPSHOTTED || !sm_str_eq(d->chain[0].path, p->src_overlay) ||
	    !file_exists(p->dst_overlay))
		return 0;
	if (sm_imagelock_probe_write(p->src_overlay, &writing) < 0)
		return -1;
	if (writing)
		return 0;
	sm_error("libvirt shows disk '%s' of domain '%s' on '%s', but no process writes that "
		 "file: the pivot onto '%s' that job %lld started went through in QEMU while "
		 "libvirtd was down, and libvirt did not see it, so no block job may run on "
		 "this disk now; stop the domain ('virsh shutdown %s', or 'virsh destroy %s', "
		 "which lets QEMU flush), point its definition at '%s' ('virsh edit %s'), then "
		 "run 'snapmove resume %lld'", p->target, c->domain_name, p->src_overlay,
		 p->dst_overlay, c->job, c->domain_name, c->domain_name, p->dst_overlay,
		 c->domain_name, c->job);
	return -1;
}

/* The final commit's pivot that libvirt lost: libvirtd (9) died after
 * QEMU had completed the commit and libvirt had dismissed the job, before it
 * recorded the new chain.  The new libvirtd drops the job QEMU no longer has
 * but keeps <mirror job='active-commit' ready='pivot'> and the disk on the
 * destination overlay until the domain stops, and refuses every block job on
 * the disk.  QEMU says which file it writes to.  If the moved image: the
 * commit is done (journaled), the persistent definition names it, and the
 * domain must stop so libvirt reads the chain again.  c->acted tells the
 * caller that something changed. */
static int check_commit_pivot_lost(struct sm_jobctx *c, size_t i, const struct sm_disk *d)
{
	const struct sm_plan_disk *p = &c->plans[i];
	SM_AUTOFREE char *top = NULL;
	struct sm_define_disk def = { .target = p->target, .path = p->images[0].dst,
				      .format = p->images[0].dst_format };
	int rewritten = 0, rc;

	if (!c->running || !d || !sm_str_eq(d->mirror_job, "active-commit") ||
	    !d->mirror_pivoting || d->nchain == 0 || !sm_str_eq(d->chain[0].path, p->dst_overlay))
		return 0;
	rc = sm_blockjob_running(c->dom, p->target);
	if (rc != 0)
		return rc;  /* libvirt still has the job: it ends it */
	top = sm_blockjob_qemu_top(c->dom, d->alias);
	if (!top) {
		SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

		sm_error("libvirt shows the final commit of disk '%s' of domain '%s' pivoting "
			 "(<mirror job='active-commit' ready='pivot'>) but has no block job on it, "
			 "and QEMU cannot be asked which file it writes to (%s): libvirtd was "
			 "restarted during the pivot; run 'virsh qemu-monitor-command %s --hmp info "
			 "block' to see it, stop the domain ('virsh shutdown %s'), then run "
			 "'snapmove resume %lld'", p->target, c->domain_name, why,
			 c->domain_name, c->domain_name, c->job);
		return -1;
	}
	if (sm_str_eq(top, p->dst_overlay)) {
		sm_error("libvirt shows the final commit of disk '%s' of domain '%s' pivoting "
			 "(<mirror job='active-commit' ready='pivot'>) but has no block job on it, "
			 "and QEMU still writes to the destination overlay '%s': the commit was "
			 "lost when libvirtd restarted, and libvirt refuses a new one until the "
			 "domain stops; stop it ('virsh shutdown %s', or 'virsh destroy %s', which "
			 "lets QEMU flush), then run 'snapmove resume %lld', which folds the overlay "
			 "offline", p->target, c->domain_name, top, c->domain_name, c->domain_name,
			 c->job);
		return -1;
	}
	if (!sm_str_eq(top, p->images[0].dst)) {
		sm_error("libvirt shows the final commit of disk '%s' of domain '%s' pivoting "
			 "(<mirror job='active-commit' ready='pivot'>) with no block job, and QEMU "
			 "writes to '%s', which is neither the destination overlay '%s' nor the "
			 "moved image '%s'; job %lld stops here: see 'virsh qemu-monitor-command %s "
			 "--hmp info block' and 'snapmove status %lld'", p->target, c->domain_name,
			 top, p->dst_overlay, p->images[0].dst, c->job, c->domain_name, c->job);
		return -1;
	}
	/* Done in QEMU: journal it and make a restart take the moved image. */
	if (sm_job_disk_state(c, i, SM_DISK_COLLAPSED) < 0)
		return -1;
	c->acted = true;
	if (c->persistent && sm_define_sync(sm_virt_conn(c->v), c->dom, &def, 1, &rewritten) < 0)
		return -1;
	sm_error("QEMU finished the commit of disk '%s' into '%s' and writes there, but "
		 "libvirtd was restarted before it recorded that: libvirt still shows the disk "
		 "on the destination overlay '%s' with <mirror job='active-commit' ready='pivot'> "
		 "and no block job, and keeps that view (refusing any block job on the disk) "
		 "until the domain stops; job %lld recorded the commit as done%s; stop the "
		 "domain ('virsh shutdown %s', or 'virsh destroy %s', which lets QEMU flush), "
		 "then run 'snapmove resume %lld'", p->target, top, p->dst_overlay, c->job,
		 c->persistent ? " and pointed the persistent definition at the moved image" : "",
		 c->domain_name, c->domain_name, c->job);
	return -1;
}

/* An active commit libvirt runs on the destination overlay but shows no
 * <mirror> for: libvirtd (9) died inside virDomainBlockCommit after QEMU had
 * started the job.  libvirt registers (and saves) the job before it asks
 * QEMU, and records the disk's mirror only once QEMU has answered, so the
 * restarted libvirtd tracks the job (a new commit or mirror is refused:
 * "already in active block job") but never shows it ready, so it cannot be
 * waited for through libvirt.  Seen, not acted on: the collapse phase asks
 * QEMU whether it is ready and pivots it; nothing cancels it (libvirt 9.0
 * crashes when it ends without its pivot), so abort refuses the disk.  Found
 * by bench/chaos.sh CHAOS_AT=collapse; t0214. */
static int see_unseen_commit(const struct sm_jobctx *c, const struct sm_plan_disk *p,
			     const struct sm_disk *d, struct sm_observed *o)
{
	virDomainBlockJobInfo info;
	int rc;

	if (!c->running || !d || d->mirror_job || d->nchain == 0 ||
	    !sm_str_eq(d->chain[0].path, p->dst_overlay))
		return 0;
	rc = virDomainGetBlockJobInfo(c->dom, p->target, &info, 0);
	if (rc < 0) {
		sm_virt_error("cannot read the block job of disk '%s'", p->target);
		return -1;
	}
	if (rc > 0 && info.type == VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT)
		o->committing = o->commit_unseen = true;
	return 0;
}

/* libvirtd died during the snapshot: it had created the overlay (named after
 * this job) but the domain does not run on it.  When no process has it open
 * either, it holds nothing and is this job's to remove; else it is left for
 * the snapshot phase to refuse. */
static int adopt_leftover_overlay(struct sm_jobctx *c, const struct sm_plan_disk *p)
{
	enum sm_file_state state;
	bool locked;
	int rc = sm_job_file_state(c, p->src_overlay, &state);

	if (rc < 0)
		return -1;
	if (rc > 0 && state == SM_FILE_CREATED)
		return 0;
	if (sm_imagelock_probe(p->src_overlay, &locked) < 0 || locked)
		return 0;
	sm_progress_say(c->pr, "  %s: '%s' was made by an interrupted snapshot and nothing "
			"uses it; it will be made again", p->target, p->src_overlay);
	return sm_job_file(c, p->src_overlay, SM_FILE_SRC_OVERLAY, SM_FILE_CREATED);
}

int sm_reconcile_refuse_streamed(const struct sm_jobctx *c, const char *verb)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!c->disks[i].streamed)
			continue;
		sm_error("disk '%s' runs on the overlay '%s' over '%s': an 'abort --via stream' "
			 "of job %lld pulled the original image '%s' into it and then stopped, so "
			 "the job cannot %s; finish the abort with 'snapmove abort %lld --via "
			 "stream'", p->target, p->src_overlay,
			 p->nimages > 1 ? p->images[1].src : p->kept, c->job, p->images[0].src,
			 verb, c->job);
		return -1;
	}
	return 0;
}

int sm_reconcile(struct sm_jobctx *c)
{
	SM_AUTOFREE char *xml = NULL;
	int ret = -1;

	sm_domain_disks_release(&c->live);
	if (c->dom) {
		xml = sm_virt_domain_xml(c->dom, !c->running);
		if (!xml || sm_chain_parse(xml, &c->live) < 0)
			return -1;
	}
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		const struct sm_disk *d = c->dom ? sm_domain_disks_find(&c->live, p->target) : NULL;
		bool all_dst = true, all_copied = true;
		struct sm_observed o;

		if (c->dom && !d) {
			sm_error("domain '%s' has no disk '%s' any more, so job %lld cannot go on; "
				 "'snapmove status %lld' lists the files the job made",
				 c->domain_name, p->target, c->job, c->job);
			goto cleanup;
		}
		for (size_t k = 0; k < p->nimages; k++) {
			enum sm_image_state st;
			unsigned long long chunks;

			if (sm_journal_image_progress(c->j, c->job, p->target, k, &st, &chunks) < 0)
				goto cleanup;
			/* A device always exists: the journal tells whether it was
			 * prepared (dest_chain). */
			all_dst = all_dst && (p->images[k].dst_rdev ? st >= SM_IMAGE_CREATED
								    : file_exists(p->images[k].dst));
			all_copied = all_copied && st == SM_IMAGE_COPIED;
		}
		all_copied = all_copied && all_dst;
		if (sm_reconcile_disk(c, p, d, c->disks[i].state, all_dst, all_copied, &o) < 0 ||
		    check_pivot_seen(c, i, d, &o) < 0 || see_unseen_commit(c, p, d, &o) < 0)
			goto cleanup;
		if (o.state != c->disks[i].state)
			sm_progress_say(c->pr, "  %s: the journal said %s, libvirt and the files "
					"say %s", p->target, sm_disk_state_name(c->disks[i].state),
					sm_disk_state_name(o.state));
		c->disks[i].mirroring = o.mirroring;
		c->disks[i].committing = o.committing;
		c->disks[i].commit_unseen = o.commit_unseen;
		c->disks[i].streamed = o.streamed;
		if (c->disks[i].pivoting && d && o.state >= SM_DISK_PIVOTED) {
			c->disks[i].pivoting = false;
			if (sm_journal_disk_set_pivoting(c->j, c->job, p->target, false) < 0)
				goto cleanup;
		}
		if (sm_job_disk_state(c, i, o.state) < 0 || check_commit_pivot_lost(c, i, d) < 0)
			goto cleanup;
		/* An overlay device is the job's from its creation (ovdev.c). */
		if (o.state == SM_DISK_PLANNED && c->running && !c->disks[i].src_dev &&
		    file_exists(p->src_overlay) && adopt_leftover_overlay(c, p) < 0)
			goto cleanup;
		/* A snapshot that succeeded before its record: the overlay is ours. */
		if (o.state >= SM_DISK_SNAPSHOTTED && file_exists(p->src_overlay) &&
		    (sm_job_file(c, p->src_overlay, SM_FILE_SRC_OVERLAY, SM_FILE_CREATED) < 0 ||
		     sm_srcfile_snapshotted(c->j, c->job, p->target,
					    c->disks[i].src_dev ? NULL : p->src_overlay) < 0))
			goto cleanup;
	}
	ret = 0;

cleanup:
	return ret;
}

int sm_reconcile_prove_off(const char *domain, const char *const *targets,
			   const char *const *paths, size_t n, const char *then)
{
	int pid = sm_imagelock_domain_qemu(domain);

	if (pid > 0) {
		sm_error("domain '%s' is shut off for libvirt but a QEMU still runs it (pid %d): "
			 "libvirtd lost the running domain, so nothing may touch its images "
			 "offline; restart libvirtd so it finds the running domain again, then "
			 "run '%s'; or stop that QEMU with 'kill %d' only if you accept losing "
			 "the guest's state", domain, pid, then, pid);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		SM_AUTOFREE char *who = NULL;
		struct stat sb;
		bool locked;

		if (lstat(paths[i], &sb) < 0)
			continue;
		if (sm_imagelock_probe(paths[i], &locked) < 0)
			return -1;
		if (!locked)
			continue;
		who = sm_imagelock_holders(paths[i]);
		sm_error("image '%s' of disk '%s' is open in %s although domain '%s' is shut "
			 "off, so nothing may touch it offline; if that is the domain's QEMU, "
			 "restart libvirtd so it finds the running domain again, else stop that "
			 "process; then run '%s'", paths[i], targets[i],
			 who ? who : "a process this user cannot see", domain, then);
		return -1;
	}
	return 0;
}

int sm_reconcile_job_off(const struct sm_jobctx *c, const char *verb)
{
	size_t max = 0, n = 0;
	const char **targets, **paths;
	SM_AUTOFREE char *then = sm_xasprintf("snapmove %s %lld", verb, c->job);
	int ret;

	for (size_t i = 0; i < c->nplans; i++)
		max += 3 + c->plans[i].nimages;
	targets = sm_xcalloc(max + 1, sizeof(*targets));
	paths = sm_xcalloc(max + 1, sizeof(*paths));
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		targets[n] = p->target;
		paths[n++] = p->images[0].src;
		targets[n] = p->target;
		paths[n++] = p->src_overlay;
		targets[n] = p->target;
		paths[n++] = p->dst_overlay;
		for (size_t k = 0; k < p->nimages; k++) {
			targets[n] = p->target;
			paths[n++] = p->images[k].dst;
		}
	}
	ret = sm_reconcile_prove_off(c->domain_name, targets, paths, n, then);
	free(targets);
	free(paths);
	return ret;
}

/* Do the two overlays of p show the guest the same disk?  Each is read with
 * the chain the plan gives it, formats pinned, down to the first image the
 * job leaves in place (the same file on both sides). */
static bool overlays_agree(const struct sm_plan_disk *p)
{
	size_t max = p->nimages + 2, na = 0, nb = 0;
	struct sm_image *a = sm_xcalloc(max, sizeof(*a));
	struct sm_image *b = sm_xcalloc(max, sizeof(*b));
	bool same;

	a[na++] = (struct sm_image){ .path = p->src_overlay, .format = (char *)"qcow2" };
	b[nb++] = (struct sm_image){ .path = p->dst_overlay, .format = (char *)"qcow2" };
	for (size_t k = 0; k < p->nimages; k++) {
		a[na++] = (struct sm_image){ .path = p->images[k].src, .format = p->images[k].format };
		if (!p->flat || k == 0)
			b[nb++] = (struct sm_image){ .path = p->images[k].dst,
						     .format = p->images[k].dst_format };
	}
	if (p->kept) {
		a[na++] = (struct sm_image){ .path = p->kept, .format = p->kept_format };
		if (!p->flat)
			b[nb++] = (struct sm_image){ .path = p->kept, .format = p->kept_format };
	}
	same = sm_image_compare_chains(a, na, b, nb) == 0;
	free(a);
	free(b);
	return same;
}

int sm_reconcile_offline_pivots(const struct sm_jobctx *c, const char *verb)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!c->disks[i].pivoting || c->disks[i].state >= SM_DISK_PIVOTED ||
		    c->disks[i].state < SM_DISK_SNAPSHOTTED || !file_exists(p->dst_overlay) ||
		    !file_exists(p->src_overlay))
			continue;
		if (overlays_agree(p))
			continue;
		sm_error("a pivot of disk '%s' onto '%s' was under way when job %lld stopped, "
			 "the definition of domain '%s' still names the source overlay '%s', and "
			 "the two overlays differ (or cannot be compared): if QEMU did pivot, the newest writes are in "
			 "the destination overlay, else in the source one, and snapmove cannot "
			 "tell which offline; if the domain ran on the destination overlay, "
			 "point its definition at it ('virsh edit %s'), else remove it, then run "
			 "'snapmove %s %lld'", p->target, p->dst_overlay, c->job, c->domain_name,
			 p->src_overlay, c->domain_name, verb, c->job);
		return -1;
	}
	return 0;
}
