/* job_run.c: the phases of a live move, each idempotent per disk, and the
 * runner that journals them.  Validation is move.c's; working out where an
 * interrupted job stands is reconcile.c's; undoing is abort.c's.
 */
#include "job/job_run.h"
#include "chain/image.h"
#include "copy/checksum.h"
#include "events.h"
#include "hooks.h"
#include "pool.h"
#include "job/reconcile.h"
#include "run.h"
#include "snapshot/blockjob.h"
#include "snapshot/define.h"
#include "snapshot/snapshot.h"
#include "srcfile.h"
#include "util.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

volatile int sm_interrupted;

struct sm_held_file {
	char *path;
	int fd;
};

void sm_crash_point(const char *point)
{
#ifdef SM_TEST_BUILD
	const char *want = getenv("SNAPMOVE_TEST_CRASH_AT");

	if (want && sm_str_eq(want, point)) {
		fprintf(stderr, "snapmove: test crash at '%s'\n", point);
		fflush(NULL);
		raise(SIGKILL);
	}
#else
	(void)point;
#endif
}

void sm_jobctx_alloc(struct sm_jobctx *c, size_t nplans)
{
	c->nplans = nplans;
	c->plans = sm_xcalloc(nplans, sizeof(*c->plans));
	c->state = sm_xcalloc(nplans, sizeof(*c->state));
	c->mirroring = sm_xcalloc(nplans, sizeof(*c->mirroring));
	c->committing = sm_xcalloc(nplans, sizeof(*c->committing));
	c->failed = sm_xcalloc(nplans, sizeof(*c->failed));
	c->sync_mode = sm_xcalloc(nplans, sizeof(*c->sync_mode));
	c->pivoting = sm_xcalloc(nplans, sizeof(*c->pivoting));
	c->foreign = sm_xcalloc(nplans, sizeof(*c->foreign));
	c->parallel = 1;
	c->converge_timeout = 30;
}

const char *sm_sync_writes_name(enum sm_sync_writes s)
{
	switch (s) {
	case SM_SYNC_WRITES_AUTO: return "auto";
	case SM_SYNC_WRITES_ON: return "on";
	case SM_SYNC_WRITES_OFF: return "off";
	}
	return "auto";
}

int sm_sync_writes_from_name(const char *name)
{
	if (sm_str_eq(name, "auto"))
		return SM_SYNC_WRITES_AUTO;
	if (sm_str_eq(name, "on"))
		return SM_SYNC_WRITES_ON;
	if (sm_str_eq(name, "off"))
		return SM_SYNC_WRITES_OFF;
	return -1;
}

void sm_jobctx_release(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		sm_plan_disk_release(&c->plans[i]);
	free(c->plans);
	free(c->state);
	free(c->mirroring);
	free(c->committing);
	for (size_t i = 0; c->failed && i < c->nplans; i++)
		free(c->failed[i]);
	free(c->failed);
	free(c->sync_mode);
	free(c->pivoting);
	free(c->foreign);
	free(c->domain_name);
	free(c->dest);
	for (size_t i = 0; i < c->nheld; i++) {
		free(c->held[i].path);
		close(c->held[i].fd);
	}
	free(c->held);
	sm_domain_disks_release(&c->live);
	if (c->dom)
		virDomainFree(c->dom);
	memset(c, 0, sizeof(*c));
}

int sm_job_disk_state(struct sm_jobctx *c, size_t i, enum sm_disk_state s)
{
	c->state[i] = s;
	return sm_journal_disk_set_state(c->j, c->job, c->plans[i].target, s, NULL);
}

int sm_job_file(struct sm_jobctx *c, const char *path, const char *role, const char *state)
{
	return SM_JOURNAL_TX(c->j,
		(sm_str_eq(state, "creating") && sm_srcfile_forget(c->j, c->job, path) < 0) ||
		sm_journal_file_set(c->j, c->job, path, role, state) < 0 ? -1 : 0);
}

/* The disk a file of the job belongs to ("" when none names it). */
static const char *target_of(const struct sm_jobctx *c, const char *path)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (sm_str_eq(p->src_overlay, path) || sm_str_eq(p->dst_overlay, path))
			return p->target;
		for (size_t k = 0; k < p->nimages; k++)
			if (sm_str_eq(p->images[k].dst, path))
				return p->target;
	}
	return "";
}

static int journal_made(struct sm_jobctx *c, const char *path, const char *role,
			const struct sm_srcfile *f)
{
	return sm_srcfile_journal(c->j, c->job, f) < 0 ||
	       sm_journal_file_set(c->j, c->job, path, role, "created") < 0 ? -1 : 0;
}

int sm_job_file_made(struct sm_jobctx *c, const char *path, const char *role, int fd)
{
	struct sm_srcfile f;
	int ret;

	if (sm_srcfile_identify_fd(path, fd, &f) < 0)
		return -1;
	f.target = sm_xstrdup(target_of(c, path));
	f.role = sm_xstrdup(role);
	f.format = sm_xstrdup("");
	ret = SM_JOURNAL_TX(c->j, journal_made(c, path, role, &f));
	sm_srcfile_release(&f);
	return ret;
}

/* Whether image is the file st (by name, or by device and inode). */
static bool same_file(const char *image, const char *path, const struct stat *st)
{
	struct stat ib;

	if (!image)
		return false;
	if (sm_str_eq(image, path))
		return true;
	return stat(image, &ib) == 0 && ib.st_dev == st->st_dev && ib.st_ino == st->st_ino;
}

/* The disks of the running domain now (none when it is not running), to
 * tell whether a file the job made is still in a chain.  -1 with an error
 * when they cannot be read. */
static int live_disks(struct sm_jobctx *c, const char *path, struct sm_domain_disks *now)
{
	SM_AUTOFREE char *xml = NULL;

	if (!c->dom || virDomainIsActive(c->dom) != 1)
		return 0;
	xml = sm_virt_domain_xml(c->dom, false);
	if (!xml || sm_chain_parse(xml, now) < 0) {
		sm_error("cannot make sure no disk of domain '%s' uses '%s' before removing it: "
			 "%s; it stays: run 'snapmove resume %lld' once libvirt answers", c->domain_name,
			 path, sm_error_message(), c->job);
		return -1;
	}
	return 0;
}

struct chain_use {
	struct sm_jobctx *c;
	const char *path;
	const struct sm_domain_disks *now;
};

/* A file the job made may still hold data a disk of the running domain
 * needs (someone took a snapshot over it, committed or copied it): then it
 * stays.  Asked by sm_srcfile_unlink_checked about the file it found. */
static int check_unused(void *arg, const struct stat *st)
{
	const struct chain_use *u = arg;

	for (size_t d = 0; d < u->now->ndisks; d++)
		for (size_t k = 0; k < u->now->disks[d].nchain; k++) {
			if (!same_file(u->now->disks[d].chain[k].path, u->path, st))
				continue;
			sm_error("it is still in the chain of disk '%s' of domain '%s' (the chain "
				 "changed under job %lld); see 'snapmove chain %s %s' and "
				 "'snapmove status %lld'", u->now->disks[d].target,
				 u->c->domain_name, u->c->job, u->c->domain_name,
				 u->now->disks[d].target, u->c->job);
			return -1;
		}
	return 0;
}

int sm_job_remove_file(struct sm_jobctx *c, const char *path, const char *role)
{
	struct sm_domain_disks now = { 0 };
	struct chain_use u = { c, path, &now };
	struct sm_srcfile f;
	int rc;

	if (sm_str_eq(role, "dst_image") || sm_str_eq(role, "dst_overlay")) {
		SM_AUTOFREE char *state = NULL;
		struct stat sb;

		/* A destination file is claimed ("creating") before it exists: one
		 * still "planned" was never made by the job, whoever made it. */
		if (sm_journal_file_state(c->j, c->job, path, &state) < 0)
			return -1;
		if ((!state || sm_str_eq(state, "planned")) && lstat(path, &sb) == 0) {
			SM_AUTOFREE char *why = sm_xasprintf("kept %s: job %lld never made it; "
							     "delete it by hand if nothing needs "
							     "it", path, c->job);

			sm_progress_say(c->pr, "  warning: %s", why);
			sm_event_warning(c->job, *target_of(c, path) ? target_of(c, path) : NULL,
					 why);
			return 1;
		}
	}
	if (live_disks(c, path, &now) < 0)
		return -1;
	rc = sm_srcfile_get(c->j, c->job, path, &f);
	if (rc < 0) {
		sm_domain_disks_release(&now);
		return -1;
	}
	if (rc == 0) {
		/* No identity: a job journaled before its own files were, or a
		 * crash between the exclusive claim and the journal. */
		f.path = sm_xstrdup(path);
		f.real_path = sm_xstrdup(path);
		f.role = sm_xstrdup(role);
		f.no_id = true;
	}
	rc = sm_srcfile_unlink_checked(&f, check_unused, &u);
	sm_srcfile_release(&f);
	sm_domain_disks_release(&now);
	if (rc < 0) {
		SM_AUTOFREE char *why = sm_xasprintf("kept %s: %s", path, sm_error_message());
		const char *target = target_of(c, path);

		sm_progress_say(c->pr, "  warning: %s", why);
		sm_event_warning(c->job, *target ? target : NULL, why);
		sm_error_clear();
		return sm_job_file(c, path, role, "kept") < 0 ? -1 : 1;
	}
	return sm_job_file(c, path, role, "removed");
}

void sm_job_print_kept(const struct sm_jobctx *c)
{
	struct sm_file_row *files = NULL;
	size_t n = 0;

	if (sm_journal_file_list(c->j, c->job, &files, &n) < 0) {
		sm_error_clear();
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (sm_str_eq(files[i].state, "kept"))
			fprintf(sm_human(), "  kept %s (the job's %s, not deleted: see the warning "
				"above); delete it by hand if nothing needs it\n", files[i].path,
				files[i].role);
	sm_file_rows_free(files, n);
}

int sm_job_clear_file(struct sm_jobctx *c, const char *path, const char *role)
{
	int rc = sm_job_remove_file(c, path, role);

	if (rc > 0)
		sm_error("job %lld kept '%s' (see above) and cannot make it again; delete it by "
			 "hand if nothing needs it, then run 'snapmove resume %lld' or 'snapmove "
			 "abort %lld'", c->job, path, c->job, c->job);
	return rc == 0 ? 0 : -1;
}

const char *sm_job_final_path(const struct sm_jobctx *c, size_t i)
{
	return c->keep_overlay ? c->plans[i].dst_overlay : c->plans[i].images[0].dst;
}

const char *sm_job_final_format(const struct sm_jobctx *c, size_t i)
{
	return c->keep_overlay ? "qcow2" : c->plans[i].images[0].dst_format;
}

/* Stop disk i's block job, unless it has ended by itself: a job that failed
 * (ENOSPC) is concluded in QEMU until libvirt dismisses it, and cancelling
 * or pivoting it only fails ("cannot accept command verb").  0 when no job
 * of ours runs any more. */
static int stop_job(struct sm_jobctx *c, size_t i)
{
	if (!c->dom || (!c->mirroring[i] && !c->committing[i]))
		return 0;
	if (sm_blockjob_ended(c->v, c->plans[i].target) ||
	    sm_blockjob_running(c->dom, c->plans[i].target) == 0 ||
	    sm_blockjob_cancel(c->dom, c->plans[i].target) == 0) {
		c->mirroring[i] = c->committing[i] = false;
		return 0;
	}
	return -1;
}

/* Disk i failed on its own: record why, stop its block job so the domain
 * stays on a consistent chain for it, and let the other disks go on. */
static void disk_fail(struct sm_jobctx *c, size_t i)
{
	SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

	free(c->failed[i]);
	c->failed[i] = sm_xstrdup(why);
	sm_journal_disk_set_state(c->j, c->job, c->plans[i].target, c->state[i], why);
	sm_progress_say(c->pr, "  %s: stopped: %s", c->plans[i].target, why);
	sm_event_warning(c->job, c->plans[i].target, why);
	stop_job(c, i);
	sm_error("%s", why);
}

/* A block job writing to the destination failed: name the destination's
 * free space, and when QEMU says it is full, what to do. */
static void add_dest_space(struct sm_jobctx *c)
{
	SM_AUTOFREE char *msg = sm_xstrdup(sm_error_message());
	struct statvfs sv;
	char b[32];

	if (statvfs(c->dest, &sv) < 0)
		return;
	sm_format_bytes((unsigned long long)sv.f_bavail * sv.f_frsize, b, sizeof(b));
	if (strstr(msg, "No space left on device"))
		sm_error("%s: the destination '%s' is full (%s free); make room there, then run "
			 "'snapmove resume %lld'", msg, c->dest, b, c->job);
	else
		sm_error("%s (the destination '%s' has %s free)", msg, c->dest, b);
}

/* Disks a phase works on: not failed, and in [from, to). */
static bool todo(const struct sm_jobctx *c, size_t i, enum sm_disk_state from,
		 enum sm_disk_state to)
{
	return !c->failed[i] && c->state[i] >= from && c->state[i] < to;
}

/* ---- the chain each phase expects ---- */

/* What the journal says disk i runs on, its role in words, and the image
 * right below it (NULL: not checked). */
static const char *expected_top(const struct sm_jobctx *c, size_t i, const char **role,
				const char **below)
{
	const struct sm_plan_disk *p = &c->plans[i];

	*below = NULL;
	switch (c->state[i]) {
	case SM_DISK_PLANNED:
		*role = "original image";
		return p->images[0].src;
	case SM_DISK_SNAPSHOTTED:
	case SM_DISK_DEST_CREATED:
	case SM_DISK_MIRRORING:
	case SM_DISK_COPIED:
	case SM_DISK_READY:
		*role = "overlay";
		*below = p->images[0].src;
		return p->src_overlay;
	case SM_DISK_PIVOTED:
		*role = "destination overlay";
		*below = p->images[0].dst;
		return p->dst_overlay;
	case SM_DISK_COLLAPSED:
	case SM_DISK_DONE:
	case SM_DISK_STATE_LAST:
		break;
	}
	if (c->keep_overlay && c->state[i] == SM_DISK_DONE) {
		*role = "destination overlay";
		*below = p->images[0].dst;
		return p->dst_overlay;
	}
	*role = "moved image";
	return p->images[0].dst;
}

/* Disk d is not on top (its role for the job): say what changed. */
static void chain_changed(const struct sm_jobctx *c, size_t i, const struct sm_disk *d,
			  const char *top, const char *role)
{
	const char *target = c->plans[i].target;
	const char *now = d->nchain > 0 && d->chain[0].path ? d->chain[0].path : "(no file)";

	for (size_t k = 1; k < d->nchain; k++) {
		if (!sm_str_eq(d->chain[k].path, top))
			continue;
		sm_error("disk '%s' is now on '%s', not on the job's %s '%s': somebody took a "
			 "snapshot during the move; job %lld stops this disk and deleted nothing; "
			 "fold the snapshot back with 'virsh blockcommit %s %s --active --base %s "
			 "--pivot', then run 'snapmove resume %lld' (or 'snapmove abort %lld')",
			 target, now, role, top, c->job, c->domain_name, target, top, c->job, c->job);
		return;
	}
	sm_error("disk '%s' is now on '%s', not on the job's %s '%s': something else changed "
		 "its chain during the move (a block commit, copy or pull, or a new source); "
		 "job %lld stops this disk and deleted nothing: see 'snapmove chain %s %s' and "
		 "'snapmove status %lld'", target, now, role, top, c->job, c->domain_name, target,
		 c->job);
}

/* Before a phase acts on disk i: the live chain must be the one the journal
 * expects (its top and the image below it), with no block job but the one
 * snapmove runs there; the same check resume and abort make
 * (sm_reconcile_disk) refuses what no state of the job explains.  -1 with
 * an error naming what changed. */
static int check_chain(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	SM_AUTOFREE char *xml = sm_virt_domain_xml(c->dom, false);
	struct sm_domain_disks now = { 0 };
	const struct sm_disk *d;
	const char *role, *below;
	const char *top = expected_top(c, i, &role, &below);
	const char *job = c->mirroring[i] ? "copy" : c->committing[i] ? "active-commit" : NULL;
	struct sm_observed o;
	int ret = -1;

	if (!xml || sm_chain_parse(xml, &now) < 0)
		return -1;
	d = sm_domain_disks_find(&now, p->target);
	if (!d) {
		sm_error("domain '%s' has no disk '%s' any more, so job %lld cannot go on; "
			 "'snapmove status %lld' lists the files the job made", c->domain_name,
			 p->target, c->job, c->job);
		goto cleanup;
	}
	if (d->nchain == 0 || !sm_str_eq(d->chain[0].path, top)) {
		chain_changed(c, i, d, top, role);
		goto cleanup;
	}
	if (sm_reconcile_disk(c, p, d, c->state[i], true, true, &o) < 0)
		goto cleanup;
	if (below && (d->nchain < 2 || !sm_str_eq(d->chain[1].path, below))) {
		sm_error("disk '%s' runs on the job's %s '%s' but over '%s', not over '%s': "
			 "something else changed its chain during the move; job %lld stops this "
			 "disk and deleted nothing: see 'snapmove chain %s %s' and 'snapmove "
			 "status %lld'", p->target, role, top, d->nchain > 1 && d->chain[1].path ?
			 d->chain[1].path : "(nothing)", below, c->job, c->domain_name, p->target,
			 c->job);
		goto cleanup;
	}
	if (d->mirror_job && !sm_str_eq(d->mirror_job, job)) {
		sm_error("disk '%s' has a block job snapmove did not start ('%s'); job %lld stops "
			 "this disk: wait for that job or cancel it with 'virsh blockjob %s %s "
			 "--abort', then run 'snapmove resume %lld'", p->target, d->mirror_job,
			 c->job, c->domain_name, p->target, c->job);
		goto cleanup;
	}
	ret = 0;

cleanup:
	sm_domain_disks_release(&now);
	return ret;
}

/* check_chain, and on a mismatch stop disk i (its own block job cancelled,
 * its definition left as libvirt keeps it).  false when it stopped. */
static bool chain_ok(struct sm_jobctx *c, size_t i)
{
	if (check_chain(c, i) == 0)
		return true;
	c->foreign[i] = true;
	disk_fail(c, i);
	return false;
}

/* ---- snapshot ---- */

static int journal_snapshotted(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (sm_journal_file_set(c->j, c->job, c->plans[i].src_overlay, "src_overlay",
					"created") < 0 ||
		    sm_srcfile_snapshotted(c->j, c->job, c->plans[i].target,
					   c->plans[i].src_overlay) < 0 ||
		    sm_journal_disk_set_state(c->j, c->job, c->plans[i].target,
					      SM_DISK_SNAPSHOTTED, NULL) < 0)
			return -1;
	return 0;
}

/* A source overlay file of ours left by an earlier attempt (an abort that
 * committed back, then a resume) must go before libvirt creates it again. */
static int clear_stale_overlay(struct sm_jobctx *c, size_t i)
{
	SM_AUTOFREE char *state = NULL;
	struct stat sb;

	if (lstat(c->plans[i].src_overlay, &sb) < 0)
		return 0;
	if (sm_journal_file_state(c->j, c->job, c->plans[i].src_overlay, &state) < 0)
		return -1;
	if (!sm_str_eq(state, "created")) {
		sm_error("overlay file '%s' exists and job %lld did not create it; remove it "
			 "if no domain uses it, then resume", c->plans[i].src_overlay, c->job);
		return -1;
	}
	return sm_job_clear_file(c, c->plans[i].src_overlay, "src_overlay");
}

static int phase_snapshot(struct sm_jobctx *c)
{
	SM_AUTOFREE char *xml = NULL;
	struct sm_domain_disks now = { 0 };
	size_t todo = 0;
	int ret = -1;

	for (size_t i = 0; i < c->nplans; i++)
		todo += c->state[i] == SM_DISK_PLANNED;
	if (todo == 0)
		return 0;
	if (todo != c->nplans) {
		sm_error("some disks of job %lld are on their overlay and some are not; the "
			 "snapshot was atomic, so something else changed them: check "
			 "'snapmove chain %s'", c->job, c->domain_name);
		return -1;
	}
	for (size_t i = 0; i < c->nplans; i++)
		if (clear_stale_overlay(c, i) < 0)
			return -1;
	if (sm_snapshot_create(c->dom, &c->live, c->plans, c->nplans, c->job, c->quiesce) < 0)
		return -1;
	c->acted = true;
	sm_crash_point("snapshot:unjournaled");
	if (SM_JOURNAL_TX(c->j, journal_snapshotted(c)) < 0)
		return -1;
	/* Verify, don't assume: each disk now runs on its overlay over the old image. */
	xml = sm_virt_domain_xml(c->dom, false);
	if (!xml || sm_chain_parse(xml, &now) < 0)
		return -1;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&now, c->plans[i].target);

		c->state[i] = SM_DISK_SNAPSHOTTED;
		if (!d || d->nchain < 2 || !sm_str_eq(d->chain[0].path, c->plans[i].src_overlay) ||
		    !sm_str_eq(d->chain[1].path, c->plans[i].images[0].src)) {
			sm_error("after the snapshot disk '%s' does not run on '%s' over '%s'",
				 c->plans[i].target, c->plans[i].src_overlay,
				 c->plans[i].images[0].src);
			goto cleanup;
		}
	}
	ret = 0;

cleanup:
	sm_domain_disks_release(&now);
	return ret;
}

/* ---- destination files, held open ---- */

/* Copies of several disks run in threads. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

/* Hold fd as path's file; a file made again under one name replaces the
 * one held before. */
static void hold_file(struct sm_jobctx *c, const char *path, int fd)
{
	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < c->nheld; i++) {
		if (sm_str_eq(c->held[i].path, path)) {
			close(c->held[i].fd);
			c->held[i].fd = fd;
			pthread_mutex_unlock(&held_lock);
			return;
		}
	}
	c->held = sm_xrealloc(c->held, (c->nheld + 1) * sizeof(*c->held));
	c->held[c->nheld++] = (struct sm_held_file){ sm_xstrdup(path), fd };
	pthread_mutex_unlock(&held_lock);
}

static int held_fd(struct sm_jobctx *c, const char *path)
{
	int fd = -1;

	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < c->nheld && fd < 0; i++)
		if (sm_str_eq(c->held[i].path, path))
			fd = c->held[i].fd;
	pthread_mutex_unlock(&held_lock);
	return fd;
}

/* Whether uid may own a destination file this job made from src: root, the
 * source's owner, or the user libvirt runs QEMU as (its DAC driver gives
 * the images a domain opens to that user). */
static bool owner_ok(uid_t uid, const char *src)
{
	static const char *const qemu_users[] = { "libvirt-qemu", "qemu" };
	struct stat sb;

	if (uid == 0 || (stat(src, &sb) == 0 && sb.st_uid == uid))
		return true;
	for (size_t i = 0; i < SM_ARRAY_LEN(qemu_users); i++) {
		struct passwd pw, *found = NULL;
		char buf[1024];

		if (getpwnam_r(qemu_users[i], &pw, buf, sizeof(buf), &found) == 0 && found &&
		    found->pw_uid == uid)
			return true;
	}
	return false;
}

/* The fd of destination file path, made from src: held since this process
 * created it, or (a resumed job) opened now, and then only if it is still
 * what the job made: a regular file, not a link of any kind, owned as
 * owner_ok says.  Another user who can write the folder could have put a
 * symlink, a hard link to a file of root's, or a file of their own there. */
static int dest_fd(struct sm_jobctx *c, const char *path, const char *src)
{
	struct stat sb;
	int fd = held_fd(c, path);

	if (fd >= 0)
		return fd;
	fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno != ELOOP) {
		sm_error("cannot open '%s' for writing: %s", path, strerror(errno));
		return -1;
	}
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1 ||
	    !owner_ok(sb.st_uid, src)) {
		sm_error("destination file '%s' is no longer the file job %lld created (%s); "
			 "another user may have replaced it: remove it, then resume or abort "
			 "the job", path, c->job,
			 fd < 0 ? "a symlink" : !S_ISREG(sb.st_mode) ? "not a regular file"
			 : sb.st_nlink != 1 ? "it has other links" : "another user owns it");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	hold_file(c, path, fd);
	return fd;
}

/* path still names the file fd is: else the copy made through fd would not
 * be what the domain opens by that name. */
static int still_named(struct sm_jobctx *c, const char *path, int fd)
{
	struct stat held, now;

	if (fstat(fd, &held) == 0 && lstat(path, &now) == 0 && held.st_dev == now.st_dev &&
	    held.st_ino == now.st_ino)
		return 0;
	sm_error("destination file '%s' was renamed or replaced while job %lld wrote it; "
		 "another user can write its folder: remove what is there now, then resume "
		 "or abort the job", path, c->job);
	return -1;
}

/* ---- destination chain ---- */

/* A destination image exists and is ours (the journal says we made it). */
static int ours_exists(struct sm_jobctx *c, const char *path, bool *exists)
{
	SM_AUTOFREE char *state = NULL;
	struct stat sb;

	*exists = lstat(path, &sb) == 0;
	if (!*exists)
		return 0;
	if (sm_journal_file_state(c->j, c->job, path, &state) < 0)
		return -1;
	/* "creating": claimed with O_EXCL, then a crash before the journal said so. */
	if (!sm_str_eq(state, "created") && !sm_str_eq(state, "creating")) {
		sm_error("destination file '%s' exists and job %lld did not create it; remove "
			 "it or abort the job", path, c->job);
		return -1;
	}
	return 0;
}

static int create_image(struct sm_jobctx *c, size_t i, size_t k)
{
	const struct sm_plan_image *img = &c->plans[i].images[k];
	struct stat like;
	bool exists;
	int fd;

	if (ours_exists(c, img->dst, &exists) < 0)
		return -1;
	if (exists)
		return 0;
	if (stat(img->src, &like) < 0) {
		sm_error("cannot read '%s': %s", img->src, strerror(errno));
		return -1;
	}
	if (sm_job_file(c, img->dst, "dst_image", "creating") < 0)
		return -1;
	fd = sm_image_create_fd(img->dst, img->dst_format, img->virtual_size, img->dst_backing,
				img->dst_backing_format, &like);
	if (fd < 0)
		return -1;
	hold_file(c, img->dst, fd);
	return SM_JOURNAL_TX(c->j,
		sm_job_file_made(c, img->dst, "dst_image", fd) < 0 ||
		sm_journal_image_set_state(c->j, c->job, c->plans[i].target, k, SM_IMAGE_CREATED,
					   0) < 0 ? -1 : 0);
}

/* The size of disk i now (virsh blockresize may have changed it since the
 * plan: QEMU refuses it while a block job runs, not between jobs).  The
 * overlays follow it: a mirror onto a target of another size fails at
 * once.  The change is said and journaled. */
static int follow_size(struct sm_jobctx *c, size_t i)
{
	struct sm_plan_disk *p = &c->plans[i];
	virDomainBlockInfo info;
	char was[32], now[32];
	SM_AUTOFREE char *why = NULL;

	if (!c->dom || !c->running)
		return 0;
	if (virDomainGetBlockInfo(c->dom, p->target, &info, 0) < 0) {
		sm_virt_error("cannot read the size of disk '%s'", p->target);
		return -1;
	}
	if (info.capacity == p->virtual_size)
		return 0;
	why = sm_xasprintf("disk '%s' was resized from %s to %s during the move (virsh "
			   "blockresize); its destination overlay follows the new size", p->target,
			   sm_format_bytes(p->virtual_size, was, sizeof(was)),
			   sm_format_bytes(info.capacity, now, sizeof(now)));
	sm_progress_say(c->pr, "  %s", why);
	sm_event_warning(c->job, p->target, why);
	p->virtual_size = info.capacity;
	return sm_journal_disk_set_size(c->j, c->job, p->target, info.capacity);
}

/* An earlier attempt made disk i's destination overlay (a journal row): no
 * block node QEMU still has may hold it before it is made again.  A node a
 * failed or lost mirror left (libvirt did not blockdev-del it) would keep
 * the old file, deleted, with QEMU's write lock, and the new mirror or
 * commit would fail on that lock.  Asked of QEMU only on that path. */
static int check_no_node(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	SM_AUTOFREE char *state = NULL;
	SM_AUTOFREE char *nodes = NULL;
	int rc;

	if (!c->dom || !c->running ||
	    sm_journal_file_state(c->j, c->job, p->dst_overlay, &state) < 0 || !state)
		return 0;
	rc = sm_blockjob_qemu_nodes(c->dom, p->dst_overlay, &nodes);
	if (rc <= 0)
		return rc;
	sm_error("QEMU still has the destination overlay '%s' of disk '%s' open as block node "
		 "'%s' (left by an earlier mirror that libvirt did not remove), so job %lld "
		 "cannot make it again: remove each node with 'virsh qemu-monitor-command %s "
		 "'{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"NODE\"}}'' "
		 "(the format node first), then run 'snapmove resume %lld'", p->dst_overlay,
		 p->target, nodes, c->job, c->domain_name, c->job);
	return -1;
}

/* (Re)create the destination overlay: a new, empty mirror target. */
static int create_dst_overlay(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	struct stat like;
	bool exists;
	int fd, ret;

	if (ours_exists(c, p->dst_overlay, &exists) < 0 || check_no_node(c, i) < 0)
		return -1;
	if (exists && c->pivoting[i]) {
		/* A pivot was under way when snapmove stopped: if it happened, this
		 * overlay got the guest's writes since.  Keep it. */
		SM_AUTOFREE char *kept = sm_xasprintf("%s.kept", p->dst_overlay);
		SM_AUTOFREE char *why = NULL;

		if (rename(p->dst_overlay, kept) < 0) {
			sm_error("cannot keep '%s' aside: %s", p->dst_overlay, strerror(errno));
			return -1;
		}
		sm_job_file(c, kept, "kept_overlay", "created");
		why = sm_xasprintf("a pivot of disk '%s' was under way when snapmove stopped and "
				   "the domain now runs on its source overlay; the destination "
				   "overlay, which may hold writes made after that pivot, is kept "
				   "as '%s'", p->target, kept);
		sm_progress_say(c->pr, "warning: %s", why);
		sm_event_warning(c->job, p->target, why);
		c->pivoting[i] = false;
		sm_journal_disk_set_pivoting(c->j, c->job, p->target, false);
	} else if (exists && sm_job_clear_file(c, p->dst_overlay, "dst_overlay") < 0) {
		return -1;
	}
	/* Owner and mode of the source overlay; QEMU alone writes it. */
	if (stat(p->src_overlay, &like) < 0) {
		sm_error("cannot read '%s': %s", p->src_overlay, strerror(errno));
		return -1;
	}
	if (sm_job_file(c, p->dst_overlay, "dst_overlay", "creating") < 0)
		return -1;
	fd = sm_image_create_fd(p->dst_overlay, "qcow2", p->virtual_size, p->images[0].dst,
				p->images[0].dst_format, &like);
	if (fd < 0)
		return -1;
	ret = sm_job_file_made(c, p->dst_overlay, "dst_overlay", fd);
	close(fd);
	return ret;
}

int sm_job_dest_chain_disk(struct sm_jobctx *c, size_t i)
{
	/* Bottom up: qemu-img create opens the backing file it is given. */
	for (size_t k = c->plans[i].nimages; k-- > 0;)
		if (create_image(c, i, k) < 0)
			return -1;
	return 0;
}

static int phase_dest_chain(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		if (!todo(c, i, SM_DISK_SNAPSHOTTED, SM_DISK_DEST_CREATED))
			continue;
		if (sm_job_dest_chain_disk(c, i) < 0 ||
		    sm_job_disk_state(c, i, SM_DISK_DEST_CREATED) < 0)
			disk_fail(c, i);
	}
	return 0;
}

/* ---- mirror ---- */

int sm_job_clear_lost(struct sm_jobctx *c, size_t i, const char *path, bool dst_chain)
{
	const struct sm_plan_disk *p = &c->plans[i];
	const char **paths = sm_xcalloc(p->nimages + 1, sizeof(*paths));
	SM_AUTOFREE char *note = NULL;
	SM_AUTOFREE char *why = NULL;
	size_t n = 0;
	int rc;

	if (path)
		paths[n++] = path;
	for (size_t k = 0; dst_chain && k < p->nimages; k++)
		paths[n++] = p->images[k].dst;
	rc = sm_blockjob_clear_lost(c->dom, p->target, paths, n, &note);
	free(paths);
	if (rc < 0 || !note)
		return rc;
	why = sm_xasprintf("QEMU still had what libvirt lost of a block job on disk '%s' "
			   "(libvirtd died inside its start or pivot): %s", p->target, note);
	sm_progress_say(c->pr, "  warning: %s", why);
	sm_event_warning(c->job, p->target, why);
	return 0;
}

static int phase_mirror(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!todo(c, i, SM_DISK_DEST_CREATED, SM_DISK_PIVOTED) || c->mirroring[i] ||
		    !chain_ok(c, i))
			continue;
		/* Always onto a fresh overlay: a mirror that was lost (libvirtd or
		 * QEMU restart, a shutdown with TRANSIENT_JOB) may have left clusters
		 * the source no longer has, and the mirror copies the whole source
		 * overlay anyway. */
		if (c->sync_writes == SM_SYNC_WRITES_ON)
			c->sync_mode[i] = true;
		if (sm_job_clear_lost(c, i, p->dst_overlay, true) < 0 ||
		    follow_size(c, i) < 0 || create_dst_overlay(c, i) < 0 ||
		    sm_blockjob_mirror_start(c->v, c->dom, p->target, p->dst_overlay,
					     c->bandwidth_mib, c->persistent, c->sync_mode[i]) < 0 ||
		    (c->sync_mode[i] &&
		     sm_journal_disk_set_sync_writes(c->j, c->job, p->target, true) < 0)) {
			disk_fail(c, i);
			continue;
		}
		c->mirroring[i] = true;
		/* A snapshot taken between the check and the start would make
		 * this a mirror of the wrong image: look again (libvirt refuses
		 * snapshots of a disk with a block job from now on).  A mirror
		 * that failed at once (libvirt shows <mirror job=''> for it a
		 * moment) is reported by its own cause. */
		if (check_chain(c, i) < 0) {
			SM_AUTOFREE char *msg = sm_xstrdup(sm_error_message());

			if (sm_blockjob_alive(c->v, c->dom, p->target) < 0 &&
			    sm_blockjob_ended(c->v, p->target)) {
				add_dest_space(c);
			} else {
				sm_error("%s", msg);
				c->foreign[i] = true;
			}
			disk_fail(c, i);
			continue;
		}
		sm_crash_point("mirror:unjournaled");
		if (c->state[i] < SM_DISK_MIRRORING &&
		    sm_job_disk_state(c, i, SM_DISK_MIRRORING) < 0)
			return -1;
	}
	return 0;
}

/* ---- copy ---- */

struct copy_ctx {
	struct sm_jobctx *c;
	const char *target;
	const char *image;  /* source path */
	size_t depth;
	int slot;  /* progress line */
	struct sm_journal_chunk *held;  /* rows of hole chunks not journaled yet */
	size_t nheld, cap;
};

static bool copy_progress(void *opaque, const struct sm_copy_progress *p)
{
	struct copy_ctx *cc = opaque;

	sm_progress_slot(cc->c->pr, cc->slot, p->done, p->total, p->rate);
	sm_event_progress(cc->c->job, cc->target, "copy", cc->image, p->done, p->total, p->rate);
	return !sm_interrupted;
}

static void journal_row(const struct sm_copy_chunk *k, bool verified,
			struct sm_journal_chunk *out)
{
	*out = (struct sm_journal_chunk){
		.index = k->index,
		.offset = k->offset,
		.length = k->length,
		.data_bytes = k->data_bytes,
		.verified = verified,
	};
	sm_checksum_hex(k->checksum, out->checksum);
}

static int journal_chunk(struct sm_jobctx *c, const char *target, size_t depth,
			 const struct sm_copy_chunk *k, bool verified)
{
	struct sm_journal_chunk jc;

	journal_row(k, verified, &jc);
	return sm_journal_chunks_done(c->j, c->job, target, depth, &jc, 1);
}

/* Add k's row to the rows held back for the next journal write. */
static void hold_row(struct copy_ctx *cc, const struct sm_copy_chunk *k, bool verified)
{
	if (cc->nheld == cc->cap) {
		cc->cap = cc->cap ? cc->cap * 2 : 64;
		cc->held = sm_xrealloc(cc->held, cc->cap * sizeof(*cc->held));
	}
	journal_row(k, verified, &cc->held[cc->nheld++]);
}

/* Journal the chunks held back (holes) and k, if any (verified, or durable
 * with its check to come), in one transaction. */
static int flush_chunks(struct copy_ctx *cc, const struct sm_copy_chunk *k, bool verified)
{
	struct sm_jobctx *c = cc->c;

	if (k)
		hold_row(cc, k, verified);
	if (sm_journal_chunks_done(c->j, c->job, cc->target, cc->depth, cc->held, cc->nheld) < 0) {
		if (k)
			cc->nheld--;  /* k is not held back: it is journaled again or not at all */
		return -1;
	}
	cc->nheld = 0;
	return 0;
}

static int copy_chunk_done(void *opaque, const struct sm_copy_chunk *k)
{
	struct copy_ctx *cc = opaque;

	/* A chunk that is all hole costs nothing to walk again: hold its row
	 * back and write it with the next chunk that has data, so a sparse
	 * terabyte does not cost a journal commit (an fsync) per 64 MiB. */
	if (k->data_bytes == 0) {
		hold_row(cc, k, true);
		return 0;
	}
	if (flush_chunks(cc, k, true) < 0)
		return -1;
	if (k->index >= 1)
		sm_crash_point("copy:chunk");
	return 0;
}

/* The direct path: k is durable, its check runs while the next chunk is
 * copied; copy_chunk_done follows. */
static int copy_chunk_durable(void *opaque, const struct sm_copy_chunk *k)
{
	struct copy_ctx *cc = opaque;

	if (flush_chunks(cc, k, false) < 0)
		return -1;
	if (k->index >= 1)
		sm_crash_point("copy:durable");
	return 0;
}

/* The chunks a crash left durable but unverified, for the resumed copy to
 * check (*out NULL when none). */
static int unverified_chunks(struct sm_jobctx *c, const char *target, size_t depth,
			     struct sm_copy_chunk **out, size_t *n)
{
	struct sm_journal_chunk *rows = NULL;
	size_t nrows = 0;

	*out = NULL;
	*n = 0;
	if (sm_journal_chunk_list(c->j, c->job, target, depth, &rows, &nrows) < 0)
		return -1;
	for (size_t i = 0; i < nrows; i++) {
		struct sm_copy_chunk k = {
			.index = rows[i].index,
			.offset = rows[i].offset,
			.length = rows[i].length,
			.data_bytes = rows[i].data_bytes,
		};

		if (rows[i].verified)
			continue;
		if (sm_checksum_parse(rows[i].checksum, &k.checksum) < 0) {
			sm_error("journal '%s' holds a bad checksum for chunk %llu of disk '%s' "
				 "in job %lld; abort the job ('snapmove abort %lld')",
				 sm_journal_path(c->j), k.index, target, c->job, c->job);
			free(rows);
			free(*out);
			*out = NULL;
			return -1;
		}
		*out = sm_xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = k;
	}
	free(rows);
	return 0;
}

static int sync_fd(int fd, const char *path)
{
	if (fdatasync(fd) == 0)
		return 0;
	sm_error("cannot flush '%s': %s", path, strerror(errno));
	return -1;
}

/* The copy's header still names the source backing file: point it at the
 * destination copy, as the empty image created for the mirror does, and
 * record the first chunk's new checksum (the header lives there).  The copy
 * is reached through fd (fdpath), never its name. */
static int rebase_copy(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k,
		       unsigned long long chunk_size, int fd)
{
	const struct sm_plan_image *img = &p->images[k];
	struct sm_copy_chunk ck = { .index = 0, .offset = 0, .length = chunk_size };
	SM_AUTOFREE char *fdpath = sm_image_fd_path(fd);
	struct stat sb;

	if (sm_image_rebase_unsafe(fdpath, img->dst_format, img->dst_backing,
				   img->dst_backing_format) < 0 ||
	    sync_fd(fd, img->dst) < 0)
		return -1;
	if (fstat(fd, &sb) == 0 && (unsigned long long)sb.st_size < chunk_size)
		ck.length = (unsigned long long)sb.st_size;
	if (sm_copy_data_bytes_range(fdpath, 0, ck.length, &ck.data_bytes) < 0 ||
	    sm_copy_checksum_range(fdpath, 0, ck.length, &ck.checksum) < 0)
		return -1;
	return journal_chunk(c, p->target, k, &ck, true);
}

/* A --dest-format or --flatten conversion: qemu-img convert (through the
 * whole backing chain) into the image created for the mirror, then (with
 * verify) qemu-img compare of the contents.  It has no chunk journal: a
 * resumed conversion starts over. */
static void chain_add(struct sm_disk *d, const struct sm_image *img)
{
	d->chain = sm_xrealloc(d->chain, (d->nchain + 1) * sizeof(*d->chain));
	d->chain[d->nchain++] = (struct sm_image){ .path = sm_xstrdup(img->path),
						   .type = sm_xstrdup("file"),
						   .format = sm_xstrdup(img->format) };
}

int sm_job_source_chain(struct sm_jobctx *c, const struct sm_plan_disk *p,
			struct sm_domain_disks *out)
{
	const struct sm_image top = { .path = p->images[0].src, .format = p->images[0].format };
	struct sm_disk *d = sm_xcalloc(1, sizeof(*d));
	bool kept_seen = !p->kept, planned = true;
	char *why = NULL;

	out->disks = d;
	out->ndisks = 1;
	d->target = sm_xstrdup(p->target);
	d->device = sm_xstrdup("disk");
	if (c->running) {
		SM_AUTOFREE char *xml = sm_virt_domain_xml(c->dom, false);
		struct sm_domain_disks now;
		const struct sm_disk *live;
		size_t at = 0;

		if (!xml || sm_chain_parse(xml, &now) < 0)
			return -1;
		live = sm_domain_disks_find(&now, p->target);
		while (live && at < live->nchain && !sm_str_eq(live->chain[at].path, top.path))
			at++;
		if (!live || at == live->nchain || !live->chain_known) {
			sm_error("disk '%s' no longer runs on a chain holding '%s'; see 'snapmove "
				 "status %lld'", p->target, top.path, c->job);
			sm_domain_disks_release(&now);
			return -1;
		}
		for (size_t k = at; k < live->nchain; k++)
			chain_add(d, &live->chain[k]);
		sm_domain_disks_release(&now);
	} else {
		chain_add(d, &top);
		why = sm_image_follow_chain(d);
	}
	if (!why)
		why = sm_image_check_chain(d, false, NULL);
	if (why) {
		sm_error("%s", why);
		free(why);
		return -1;
	}
	/* The images the job planned, then the one it kept (or nothing). */
	for (size_t k = 0; k < d->nchain; k++) {
		const struct sm_image *img = &d->chain[k];

		if (k < p->nimages && (!sm_str_eq(img->path, p->images[k].src) ||
				       !sm_str_eq(img->format, p->images[k].format)))
			planned = false;
		if (k >= p->nimages && sm_str_eq(img->path, p->kept) &&
		    sm_str_eq(img->format, p->kept_format))
			kept_seen = true;
	}
	if (!planned || d->nchain < p->nimages || !kept_seen ||
	    (!p->kept && d->nchain != p->nimages)) {
		sm_error("the chain of disk '%s' from '%s' down is no longer the one job %lld "
			 "planned; see 'snapmove status %lld' and check it with 'qemu-img info "
			 "--backing-chain'", p->target, top.path, c->job, c->job);
		return -1;
	}
	return 0;
}

static int convert_image(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k, int fd)
{
	const struct sm_plan_image *img = &p->images[k];
	SM_AUTOFREE char *fdpath = sm_image_fd_path(fd);
	struct sm_domain_disks src = { 0 };
	const struct sm_disk *d;
	int ret = -1;

	if (sm_journal_image_set_method(c->j, c->job, p->target, k, "convert", 0) < 0 ||
	    sm_job_source_chain(c, p, &src) < 0)
		goto cleanup;
	d = &src.disks[0];
	if (sm_image_convert(d->chain, d->nchain, fdpath, img->dst_format) < 0 ||
	    sync_fd(fd, img->dst) < 0)
		goto cleanup;
	if (c->verify && sm_image_compare(d->chain, d->nchain, fdpath, img->dst_format) < 0)
		goto cleanup;
	ret = 0;

cleanup:
	sm_domain_disks_release(&src);
	return ret;
}

/* sm_copy_run_fds from img->src onto the destination file fd. */
static int copy_into(const struct sm_copy_req *req, int fd, const struct sm_copy_ops *ops,
		     struct copy_ctx *cc, struct sm_copy_result *res)
{
	int in = open(req->src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int rc;

	if (in < 0) {
		sm_error("cannot read '%s': %s", req->src, strerror(errno));
		return -1;
	}
	rc = sm_copy_run_fds(req, in, fd, ops, cc, res);
	close(in);
	return rc;
}

static int copy_image(struct sm_jobctx *c, size_t i, size_t k)
{
	const struct sm_plan_disk *p = &c->plans[i];
	const struct sm_plan_image *img = &p->images[k];
	SM_AUTOFREE char *label = sm_xasprintf("copy %s %s", p->target,
					       sm_path_basename(img->src));
	struct copy_ctx cc = { .c = c, .target = p->target, .image = img->src, .depth = k,
			       .slot = (int)i };
	SM_AUTOFREE char *retry = sm_xasprintf("resume the job ('snapmove resume %lld')", c->job);
	struct sm_copy_ops ops = { .progress = copy_progress, .chunk_done = copy_chunk_done,
				   .chunk_durable = copy_chunk_durable };
	SM_AUTOFREE struct sm_copy_chunk *unverified = NULL;
	struct sm_copy_req req = {
		.src = img->src,
		.dst = img->dst,
		.chunk_size = SM_COPY_CHUNK,
		.bandwidth = c->bandwidth_mib << 20,
		.verify = c->verify,
		.method = c->copy_method,
		.retry = retry,
	};
	struct sm_copy_result res = { 0 };
	enum sm_image_state state;
	unsigned long long chunks = 0;
	char b[32], r[32];
	double t0 = sm_monotonic();
	int rc, fd;

	if (sm_journal_image_progress(c->j, c->job, p->target, k, &state, &chunks) < 0)
		return -1;
	if (state == SM_IMAGE_COPIED)
		return 0;
	if (state == SM_IMAGE_COPYING) {
		req.resume_chunks = chunks;
		if (chunks && unverified_chunks(c, p->target, k, &unverified,
						&req.nunverified) < 0)
			return -1;
		req.unverified = unverified;
	}
	fd = dest_fd(c, img->dst, img->src);
	if (fd < 0)
		return -1;
	if (sm_journal_image_set_state(c->j, c->job, p->target, k, SM_IMAGE_COPYING, 0) < 0)
		return -1;
	sm_progress_start(c->pr, cc.slot, label);
	if (p->flat || !sm_str_eq(img->format, img->dst_format)) {
		if (convert_image(c, p, k, fd) < 0)
			return -1;
		res.data_bytes = res.copied_bytes = img->allocated;
		res.method = SM_COPY_METHOD_LAST;
	} else {
		rc = copy_into(&req, fd, &ops, &cc, &res);
		if (rc == 0)
			rc = flush_chunks(&cc, NULL, true);
		free(cc.held);
		if (rc < 0 ||
		    sm_journal_image_set_method(c->j, c->job, p->target, k,
						sm_copy_method_name(res.method), req.chunk_size) < 0)
			return -1;
		if (img->dst_backing && rebase_copy(c, p, k, req.chunk_size, fd) < 0)
			return -1;
	}
	if (still_named(c, img->dst, fd) < 0)
		return -1;
	sm_progress_stop(c->pr, cc.slot);
	if (sm_journal_image_set_state(c->j, c->job, p->target, k, SM_IMAGE_COPIED,
				       res.data_bytes) < 0)
		return -1;
	if (res.method == SM_COPY_METHOD_LAST)
		sm_progress_say(c->pr, "  converted %s to %s: %s in %.1f s", img->dst,
				img->dst_format, sm_format_bytes(res.data_bytes, b, sizeof(b)),
				sm_monotonic() - t0);
	else if (res.chunks_skipped)
		sm_progress_say(c->pr, "  copied %s: resumed after chunk %llu, %s of %s copied "
				"now in %.1f s (%s%s)", img->dst, res.chunks_skipped,
				sm_format_bytes(res.copied_bytes, b, sizeof(b)),
				sm_format_bytes(res.data_bytes, r, sizeof(r)), sm_monotonic() - t0,
				sm_copy_method_name(res.method), c->verify ? ", verified" : "");
	else
		sm_progress_say(c->pr, "  copied %s: %s in %.1f s (%s%s)", img->dst,
				sm_format_bytes(res.data_bytes, b, sizeof(b)), sm_monotonic() - t0,
				sm_copy_method_name(res.method), c->verify ? ", verified" : "");
	return 0;
}

int sm_job_copy_disk(struct sm_jobctx *c, size_t i)
{
	for (size_t k = 0; k < c->plans[i].nimages; k++)
		if (copy_image(c, i, k) < 0)
			return -1;
	return 0;
}

/* Copies of several disks run in up to c->parallel threads, each taking the
 * next disk; a disk whose copy fails stops alone. */
struct copy_pool {
	struct sm_jobctx *c;
	pthread_mutex_t lock;
	size_t next;
};

static void *copy_worker(void *opaque)
{
	struct copy_pool *pool = opaque;
	struct sm_jobctx *c = pool->c;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&pool->lock);
		while (pool->next < c->nplans &&
		       !todo(c, pool->next, SM_DISK_DEST_CREATED, SM_DISK_COPIED))
			pool->next++;
		i = pool->next++;
		pthread_mutex_unlock(&pool->lock);
		if (i >= c->nplans)
			return NULL;
		if (sm_job_copy_disk(c, i) < 0 || sm_job_disk_state(c, i, SM_DISK_COPIED) < 0)
			disk_fail(c, i);
	}
}

static int phase_copy(struct sm_jobctx *c)
{
	struct copy_pool pool = { .c = c };
	unsigned n = c->parallel ? c->parallel : 1;
	pthread_t *threads;
	unsigned started = 0;

	if (n > c->nplans)
		n = (unsigned)c->nplans;
	if (c->nplans > 1)
		sm_progress_say(c->pr, "  copying %zu disks, %u at once", c->nplans, n);
	if (n <= 1) {
		copy_worker(&pool);
		return 0;
	}
	pthread_mutex_init(&pool.lock, NULL);
	threads = sm_xcalloc(n, sizeof(*threads));
	for (unsigned t = 0; t < n; t++)
		if (pthread_create(&threads[t], NULL, copy_worker, &pool) == 0)
			started++;
	if (!started)
		copy_worker(&pool);
	for (unsigned t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
	free(threads);
	pthread_mutex_destroy(&pool.lock);
	return 0;
}

/* ---- sync, pivot ---- */

static bool job_progress(void *ctx, const char *target, unsigned long long cur,
			 unsigned long long end)
{
	struct sm_jobctx *c = ctx;
	SM_AUTOFREE char *label = sm_xasprintf("%s %s", c->label, target);
	unsigned long long remaining = end > cur ? end - cur : 0;
	double now = sm_monotonic();

	sm_progress_update(c->pr, label, cur, end);
	sm_event_progress(c->job, target, c->label, NULL, cur, end, -1);
	if (sm_interrupted)
		return false;
	if (!c->watching)
		return true;
	/* Converging means the bytes left keep reaching new lows, and READY
	 * comes in a time that follows the size of the overlay. */
	if (remaining < c->best_remaining) {
		c->best_remaining = remaining;
		c->best_at = now;
	}
	if (now - c->best_at > c->converge_timeout || now - c->wait_started > c->ready_within) {
		c->stalled = true;
		return false;
	}
	return true;
}

int sm_job_wait_ready(struct sm_jobctx *c, const bool *which, const char *label)
{
	const char **targets = sm_xcalloc(c->nplans, sizeof(*targets));
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < c->nplans; i++)
		if (which[i])
			targets[n++] = c->plans[i].target;
	c->label = label;
	sm_progress_reset_rate(c->pr, 0);
	if (n)
		rc = sm_blockjob_wait_ready(c->v, c->dom, targets, n, job_progress, c);
	free(targets);
	return rc;
}

/* Wait for disk i's job to be ready. */
static int wait_one(struct sm_jobctx *c, size_t i, const char *label)
{
	bool *which = sm_xcalloc(c->nplans, sizeof(*which));
	int rc;

	which[i] = true;
	rc = sm_job_wait_ready(c, which, label);
	free(which);
	return rc;
}

static unsigned long long file_bytes(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (unsigned long long)sb.st_blocks * 512ULL : 0;
}

/* Wait for disk i's mirror, watching that it converges (unless it already
 * blocks writes, which is sure to converge). */
static int wait_mirror(struct sm_jobctx *c, size_t i)
{
	/* The slowest a mirror should copy the overlay: the bandwidth asked
	 * for, or 10 MiB/s. */
	double rate = c->bandwidth_mib ? (double)(c->bandwidth_mib << 20) : 10.0 * (1 << 20);
	int rc;

	c->watching = !c->sync_mode[i] && c->sync_writes == SM_SYNC_WRITES_AUTO;
	c->stalled = false;
	c->wait_started = c->best_at = sm_monotonic();
	c->best_remaining = ~0ULL;
	c->ready_within = c->converge_timeout +
			  (double)file_bytes(c->plans[i].src_overlay) / rate;
	rc = wait_one(c, i, "mirror");
	c->watching = false;
	return rc;
}

/* The mirror of disk i does not converge: start it again in write-blocking
 * mode, where every guest write reaches both sides before it completes. */
static int switch_to_sync_writes(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];

	sm_progress_say(c->pr, "  %s: the mirror did not converge within %.0f s under the "
			"guest's writes; restarting it in write-blocking mode", p->target,
			c->converge_timeout);
	if (sm_blockjob_cancel(c->dom, p->target) < 0)
		return -1;
	c->mirroring[i] = false;
	c->sync_mode[i] = true;
	if (create_dst_overlay(c, i) < 0 ||
	    sm_blockjob_mirror_start(c->v, c->dom, p->target, p->dst_overlay, c->bandwidth_mib,
				     c->persistent, true) < 0)
		return -1;
	c->mirroring[i] = true;
	return sm_journal_disk_set_sync_writes(c->j, c->job, p->target, true);
}

static int phase_sync(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		int rc;

		if (!todo(c, i, SM_DISK_COPIED, SM_DISK_PIVOTED))
			continue;
		rc = wait_mirror(c, i);
		if (rc < 0 && c->stalled && !sm_interrupted) {
			rc = switch_to_sync_writes(c, i);
			if (rc == 0)
				rc = wait_mirror(c, i);
		}
		if (rc < 0) {
			if (sm_interrupted)
				return -1;
			if (sm_blockjob_ended(c->v, c->plans[i].target))
				add_dest_space(c);
			disk_fail(c, i);
			continue;
		}
		if (sm_job_disk_state(c, i, SM_DISK_READY) < 0)
			return -1;
	}
	return 0;
}

/* Whether disk i's active image is path, by the live XML. */
static bool still_on(struct sm_jobctx *c, size_t i, const char *path)
{
	SM_AUTOFREE char *xml = virDomainGetXMLDesc(c->dom, 0);
	struct sm_domain_disks now;
	const struct sm_disk *d;
	bool on = false;

	if (!xml || sm_chain_parse(xml, &now) < 0)
		return false;
	d = sm_domain_disks_find(&now, c->plans[i].target);
	on = d && d->nchain > 0 && sm_str_eq(d->chain[0].path, path);
	sm_domain_disks_release(&now);
	return on;
}

static int phase_pivot(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!todo(c, i, SM_DISK_READY, SM_DISK_PIVOTED) || !chain_ok(c, i))
			continue;
		/* A mirror that failed after it was ready is not pivoted. */
		if (sm_blockjob_alive(c->v, c->dom, p->target) < 0) {
			add_dest_space(c);
			disk_fail(c, i);
			continue;
		}
		/* A pivot libvirtd died in left the destination chain open. */
		if (sm_job_clear_lost(c, i, NULL, true) < 0) {
			disk_fail(c, i);
			continue;
		}
		if (sm_journal_disk_set_pivoting(c->j, c->job, p->target, true) < 0)
			return -1;
		c->pivoting[i] = true;
		if (sm_blockjob_pivot(c->dom, p->target, p->dst_overlay) < 0) {
			char msg[2048];

			/* Refused: if the domain still runs on the source overlay,
			 * no pivot is under way any more. */
			snprintf(msg, sizeof(msg), "%s", sm_error_message());
			if (still_on(c, i, p->src_overlay)) {
				c->pivoting[i] = false;
				sm_journal_disk_set_pivoting(c->j, c->job, p->target, false);
			}
			/* The job failed between the look and the pivot: its cause. */
			if (sm_blockjob_alive(c->v, c->dom, p->target) < 0 &&
			    sm_blockjob_ended(c->v, p->target))
				add_dest_space(c);
			else
				sm_error("%s", msg);
			disk_fail(c, i);
			continue;
		}
		c->mirroring[i] = false;
		c->acted = true;
		sm_crash_point("pivot:unjournaled");
		if (SM_JOURNAL_TX(c->j, sm_journal_disk_set_state(c->j, c->job, p->target,
								  SM_DISK_PIVOTED, NULL) < 0 ||
				  sm_journal_disk_set_pivoting(c->j, c->job, p->target, false) < 0
				  ? -1 : 0) < 0)
			return -1;
		c->state[i] = SM_DISK_PIVOTED;
		c->pivoting[i] = false;
	}
	return 0;
}

/* SNAPMOVE_TEST_HOOK: see job_run.h.  Test builds only; the test hook gets
 * the caller's environment (the tests' LIBVIRT_DEFAULT_URI).  point is a
 * phase's name, or a point inside one ("collapse:pivot"). */
static int run_test_hook(const struct sm_jobctx *c, const char *point)
{
#ifdef SM_TEST_BUILD
	const char *hook = getenv("SNAPMOVE_TEST_HOOK");
	char job[32];
	const char *argv[] = { hook, point, job, NULL };

	if (!hook || !*hook)
		return 0;
	snprintf(job, sizeof(job), "%lld", c->job);
	return sm_run_with_env(argv, (const char *const *)environ, NULL);
#else
	(void)c;
	(void)point;
	return 0;
#endif
}

/* ---- collapse ---- */

/* Wait for disk i's active commit.  There is no write-blocking commit: one
 * held back by --bandwidth that does not converge under the guest's writes
 * gets its limit lifted (the commit stays within the destination storage). */
static int wait_commit(struct sm_jobctx *c, size_t i)
{
	const char *target = c->plans[i].target;
	int rc;

	c->watching = c->bandwidth_mib > 0 && c->sync_writes != SM_SYNC_WRITES_OFF;
	c->stalled = false;
	c->wait_started = c->best_at = sm_monotonic();
	c->best_remaining = ~0ULL;
	c->ready_within = c->converge_timeout +
			  (double)file_bytes(c->plans[i].dst_overlay) /
				  (double)((c->bandwidth_mib ? c->bandwidth_mib : 10) << 20);
	rc = wait_one(c, i, "commit");
	c->watching = false;
	if (rc < 0 && c->stalled && !sm_interrupted) {
		sm_progress_say(c->pr, "  %s: the commit did not converge within %.0f s at "
				"--bandwidth %llu; lifting its limit", target,
				c->converge_timeout, c->bandwidth_mib);
		if (virDomainBlockJobSetSpeed(c->dom, target, 0, 0) < 0) {
			sm_virt_error("cannot lift the bandwidth limit of disk '%s'", target);
			return -1;
		}
		rc = wait_one(c, i, "commit");
	}
	return rc;
}

static int phase_collapse(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		if (!todo(c, i, SM_DISK_PIVOTED, SM_DISK_COLLAPSED) || c->committing[i] ||
		    !chain_ok(c, i))
			continue;
		if (sm_blockjob_commit_start(c->v, c->dom, c->plans[i].target,
					     c->plans[i].images[0].dst, c->bandwidth_mib) < 0)
			disk_fail(c, i);
		else
			c->committing[i] = true;
	}
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!todo(c, i, SM_DISK_PIVOTED, SM_DISK_COLLAPSED))
			continue;
		if (wait_commit(c, i) < 0) {
			if (sm_interrupted)
				return -1;
			if (sm_blockjob_ended(c->v, p->target))
				add_dest_space(c);
			disk_fail(c, i);
			continue;
		}
		if (!chain_ok(c, i))
			continue;
		if (sm_blockjob_alive(c->v, c->dom, p->target) < 0) {
			add_dest_space(c);
			disk_fail(c, i);
			continue;
		}
		if (run_test_hook(c, "collapse:pivot") < 0) {
			disk_fail(c, i);
			continue;
		}
		if (sm_blockjob_pivot(c->dom, p->target, p->images[0].dst) < 0) {
			SM_AUTOFREE char *msg = sm_xstrdup(sm_error_message());

			if (sm_blockjob_alive(c->v, c->dom, p->target) < 0 &&
			    sm_blockjob_ended(c->v, p->target))
				add_dest_space(c);
			else
				sm_error("%s", msg);
			disk_fail(c, i);
			continue;
		}
		c->committing[i] = false;
		sm_crash_point("collapse:unjournaled");
		if (sm_job_disk_state(c, i, SM_DISK_COLLAPSED) < 0 ||
		    sm_job_remove_file(c, p->dst_overlay, "dst_overlay") < 0)
			return -1;
	}
	return 0;
}

/* ---- finalize ---- */

int sm_job_define(struct sm_jobctx *c, const char *(*path_of)(const struct sm_jobctx *, size_t),
		  const char *(*format_of)(const struct sm_jobctx *, size_t),
		  const char *(*backing_of)(const struct sm_jobctx *, size_t))
{
	struct sm_define_disk *defs = sm_xcalloc(c->nplans, sizeof(*defs));
	int rewritten = 0, ret = 0;
	size_t n = 0;

	for (size_t i = 0; i < c->nplans; i++) {
		if (!path_of(c, i))
			continue;
		defs[n].target = c->plans[i].target;
		defs[n].path = path_of(c, i);
		defs[n].format = format_of(c, i);
		defs[n].check_backing = backing_of != NULL;
		defs[n].backing = backing_of ? backing_of(c, i) : NULL;
		n++;
	}
	if (c->persistent && c->dom && n)
		ret = sm_define_sync(sm_virt_conn(c->v), c->dom, defs, n, &rewritten);
	if (ret == 0 && rewritten)
		sm_progress_say(c->pr, "  rewrote the persistent definition: libvirt had not "
				"pointed it at the chain the domain uses");
	free(defs);
	return ret;
}

/* What the definition names for a disk: the destination for a finished
 * disk, the overlay the domain runs on for one that failed. */
static const char *define_path(const struct sm_jobctx *c, size_t i)
{
	if (c->foreign[i])
		return NULL;  /* someone else's chain now: libvirt keeps it */
	if (!c->failed[i] || c->state[i] >= SM_DISK_COLLAPSED)
		return sm_job_final_path(c, i);
	return c->state[i] >= SM_DISK_PIVOTED ? c->plans[i].dst_overlay : c->plans[i].src_overlay;
}

static const char *define_format(const struct sm_jobctx *c, size_t i)
{
	if (!c->failed[i] || c->state[i] >= SM_DISK_COLLAPSED)
		return sm_job_final_format(c, i);
	return "qcow2";
}

/* The source overlay goes only while it is still the file the snapshot made
 * and no process has it open (src/srcfile.c); otherwise it stays, with a
 * warning. */
int sm_job_remove_src_overlay(struct sm_jobctx *c, size_t i)
{
	return sm_job_remove_file(c, c->plans[i].src_overlay, "src_overlay") < 0 ? -1 : 0;
}

static int phase_finalize(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (todo(c, i, SM_DISK_PIVOTED, SM_DISK_DONE))
			chain_ok(c, i);
	if (sm_job_define(c, define_path, define_format, NULL) < 0)
		return -1;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];

		if (!todo(c, i, SM_DISK_PIVOTED, SM_DISK_DONE))
			continue;
		if (c->state[i] == SM_DISK_PIVOTED && !c->keep_overlay)
			continue;  /* its collapse failed */
		if (sm_job_remove_src_overlay(c, i) < 0 ||
		    (!c->keep_overlay && sm_job_remove_file(c, p->dst_overlay, "dst_overlay") < 0) ||
		    sm_job_disk_state(c, i, SM_DISK_DONE) < 0)
			return -1;
	}
	return 0;
}

/* ---- the runner ---- */

typedef int (*phase_fn)(struct sm_jobctx *c);

static phase_fn phase_function(enum sm_phase p)
{
	switch (p) {
	case SM_PHASE_SNAPSHOT: return phase_snapshot;
	case SM_PHASE_DEST_CHAIN: return phase_dest_chain;
	case SM_PHASE_MIRROR: return phase_mirror;
	case SM_PHASE_COPY: return phase_copy;
	case SM_PHASE_SYNC: return phase_sync;
	case SM_PHASE_PIVOT: return phase_pivot;
	case SM_PHASE_COLLAPSE: return phase_collapse;
	case SM_PHASE_FINALIZE: return phase_finalize;
	case SM_PHASE_PLANNED:
	case SM_PHASE_DONE:
	case SM_PHASE_LAST:
		break;
	}
	return NULL;
}


static bool needs_pivot(const struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (todo(c, i, SM_DISK_READY, SM_DISK_PIVOTED))
			return true;
	return false;
}

static int run_phase(struct sm_jobctx *c, enum sm_phase phase)
{
	phase_fn fn = phase_function(phase);
	char point[64];

	if (sm_interrupted) {
		sm_error("job %lld was interrupted before its '%s' phase", c->job,
			 sm_phase_name(phase));
		return -1;
	}
	if (!fn)
		return 0;
	c->phase_name = sm_phase_name(phase);
	c->acted = false;
	if (phase == SM_PHASE_PIVOT && needs_pivot(c) && sm_hooks_run(c, "before_pivot") < 0)
		return -1;
	if (sm_journal_phase_start(c->j, c->job, phase) < 0)
		return -1;
	sm_event_phase(c->job, sm_phase_name(phase), "start", NULL);
	snprintf(point, sizeof(point), "%s:start", sm_phase_name(phase));
	sm_crash_point(point);
	sm_progress_say(c->pr, "%s", sm_phase_describe(phase));
	if (run_test_hook(c, sm_phase_name(phase)) < 0 || fn(c) < 0) {
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s", sm_error_message());
		sm_journal_phase_finish(c->j, c->job, phase, msg);
		sm_event_phase(c->job, sm_phase_name(phase), "failed", msg);
		sm_error("%s", msg);
		return -1;
	}
	sm_progress_end(c->pr);
	snprintf(point, sizeof(point), "%s:done", sm_phase_name(phase));
	sm_crash_point(point);
	if (sm_journal_phase_finish(c->j, c->job, phase, NULL) < 0)
		return -1;
	sm_event_phase(c->job, sm_phase_name(phase), "done", NULL);
	if (c->acted && phase == SM_PHASE_SNAPSHOT)
		sm_hooks_run(c, "after_snapshot");
	if (c->acted && phase == SM_PHASE_PIVOT)
		sm_hooks_run(c, "after_pivot");
	return 0;
}

/* Where a disk stands, in words, for the report of a stopped job. */
static const char *where(const struct sm_jobctx *c, size_t i, const char **path)
{
	const struct sm_plan_disk *p = &c->plans[i];

	switch (c->state[i]) {
	case SM_DISK_PLANNED:
		*path = p->images[0].src;
		return "untouched, on its original image";
	case SM_DISK_SNAPSHOTTED:
	case SM_DISK_DEST_CREATED:
	case SM_DISK_MIRRORING:
	case SM_DISK_COPIED:
	case SM_DISK_READY:
		*path = p->src_overlay;
		return "runs on its source overlay over the original image";
	case SM_DISK_PIVOTED:
		*path = p->dst_overlay;
		return "runs on the destination overlay over the moved chain";
	case SM_DISK_COLLAPSED:
	case SM_DISK_DONE:
	case SM_DISK_STATE_LAST:
		break;
	}
	*path = sm_job_final_path(c, i);
	return "moved";
}

static void report_disks(const struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		const char *path;
		const char *what = where(c, i, &path);

		if (c->failed[i])
			sm_progress_say(c->pr, "  %s: %s (%s), %s; stopped: %s", c->plans[i].target,
					sm_disk_state_name(c->state[i]), path, what, c->failed[i]);
		else
			sm_progress_say(c->pr, "  %s: %s (%s), %s", c->plans[i].target,
					sm_disk_state_name(c->state[i]), path, what);
	}
}

/* After a failure: stop block jobs that would run on unattended, so the
 * domain stays on a consistent chain (its overlay, or the destination
 * overlay after the pivot), and record the job as failed and resumable. */
static void fail_job(struct sm_jobctx *c)
{
	char msg[2048];

	snprintf(msg, sizeof(msg), "%s", sm_error_message());
	sm_progress_end(c->pr);
	for (size_t i = 0; c->dom && i < c->nplans; i++)
		if (stop_job(c, i) < 0)
			sm_progress_say(c->pr, "warning: %s", sm_error_message());
	sm_journal_job_finish(c->j, c->job, SM_JOB_FAILED, msg);
	report_disks(c);
	sm_hooks_run(c, "on_failure");
	sm_error("%s", msg);
}

int sm_job_run(struct sm_jobctx *c, const enum sm_phase *phases, size_t n)
{
	size_t nfailed = 0, first = 0;

	for (size_t i = 0; i < n; i++) {
		if (phases[i] == SM_PHASE_COLLAPSE && c->keep_overlay)
			continue;
		if (run_phase(c, phases[i]) < 0) {
			fail_job(c);
			return -1;
		}
	}
	for (size_t i = 0; i < c->nplans; i++)
		if (c->failed[i] && !nfailed++)
			first = i;
	if (nfailed) {
		if (nfailed == 1)
			sm_error("disk '%s' stopped: %s", c->plans[first].target, c->failed[first]);
		else
			sm_error("%zu disks stopped; disk '%s': %s", nfailed, c->plans[first].target,
				 c->failed[first]);
		fail_job(c);
		return -1;
	}
	return 0;
}

/* Pools over the directories a job wrote or emptied see the change now. */
static void refresh_pools(struct sm_jobctx *c)
{
	size_t cap = 1, n = 0;
	char **dirs;

	for (size_t i = 0; i < c->nplans; i++)
		cap += c->plans[i].nimages + 1;
	dirs = sm_xcalloc(cap, sizeof(*dirs));
	dirs[n++] = sm_xstrdup(c->dest);
	for (size_t i = 0; i < c->nplans; i++) {
		dirs[n++] = sm_path_dirname(c->plans[i].src_overlay);
		for (size_t k = 0; k < c->plans[i].nimages; k++)
			dirs[n++] = sm_path_dirname(c->plans[i].images[k].src);
	}
	if (sm_pool_refresh_dirs(sm_virt_conn(c->v), (const char *const *)dirs, n) < 0)
		sm_progress_say(c->pr, "warning: %s", sm_error_message());
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
}

int sm_job_close(struct sm_jobctx *c, enum sm_job_state state)
{
	refresh_pools(c);
	enum sm_phase last = state == SM_JOB_DONE ? SM_PHASE_DONE : SM_PHASE_LAST;

	if (last == SM_PHASE_DONE &&
	    (sm_journal_phase_start(c->j, c->job, SM_PHASE_DONE) < 0 ||
	     sm_journal_phase_finish(c->j, c->job, SM_PHASE_DONE, NULL) < 0))
		return -1;
	return sm_journal_job_finish(c->j, c->job, state, NULL);
}

/* Leaf devices under a block device in sysfs (its slaves, recursively). */
static unsigned count_leaves(const char *sysdir, int depth)
{
	SM_AUTOFREE char *slaves = sm_path_join(sysdir, "slaves");
	DIR *d = opendir(slaves);
	struct dirent *e;
	unsigned n = 0;

	if (!d || depth > 8) {
		if (d)
			closedir(d);
		return 1;
	}
	while ((e = readdir(d))) {
		SM_AUTOFREE char *sub = NULL;

		if (e->d_name[0] == '.')
			continue;
		sub = sm_xasprintf("/sys/class/block/%s", e->d_name);
		n += count_leaves(sub, depth + 1);
	}
	closedir(d);
	return n ? n : 1;
}

unsigned sm_job_default_parallel(const char *dest)
{
	SM_AUTOFREE char *sys = NULL;
	SM_AUTOFREE char *part = NULL;
	struct stat sb;

	if (stat(dest, &sb) < 0 || major(sb.st_dev) == 0)
		return 1;
	sys = sm_xasprintf("/sys/dev/block/%u:%u", major(sb.st_dev), minor(sb.st_dev));
	part = sm_path_join(sys, "partition");
	if (access(part, F_OK) == 0) {
		SM_AUTOFREE char *parent = sm_path_join(sys, "..");

		return count_leaves(parent, 0);
	}
	return count_leaves(sys, 0);
}

static struct json_object *chain_json(const char *const *paths, const char *const *formats,
				      size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t k = 0; k < n; k++) {
		struct json_object *img = json_object_new_object();

		json_object_object_add(img, "path", json_object_new_string(paths[k]));
		json_object_object_add(img, "format", json_object_new_string(formats[k] ? formats[k] : ""));
		json_object_array_add(a, img);
	}
	return a;
}

void sm_job_emit_result(const struct sm_jobctx *c, const char *status, int exit_code,
			const char *error)
{
	struct json_object *o, *disks;
	struct sm_domain_disks now = { 0 };
	char *xml = NULL;

	if (!sm_events_wanted())
		return;
	if (c->dom && (xml = virDomainGetXMLDesc(c->dom, virDomainIsActive(c->dom) == 1 ? 0 :
						 VIR_DOMAIN_XML_INACTIVE)))
		sm_chain_parse(xml, &now);
	free(xml);
	o = json_object_new_object();
	json_object_object_add(o, "job", json_object_new_int64(c->job));
	json_object_object_add(o, "domain", json_object_new_string(c->domain_name));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "exit", json_object_new_int(exit_code));
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	disks = json_object_new_array();
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		const struct sm_disk *d = sm_domain_disks_find(&now, p->target);
		const char **paths = sm_xcalloc(p->nimages + 1, sizeof(*paths));
		const char **formats = sm_xcalloc(p->nimages + 1, sizeof(*formats));
		struct json_object *disk = json_object_new_object();
		size_t n = 0;

		for (size_t k = 0; k < p->nimages; k++) {
			paths[n] = p->images[k].src;
			formats[n++] = p->images[k].format;
		}
		if (p->kept) {
			paths[n] = p->kept;
			formats[n++] = p->kept_format;
		}
		json_object_object_add(disk, "target", json_object_new_string(p->target));
		json_object_object_add(disk, "state",
				       json_object_new_string(sm_disk_state_name(c->state[i])));
		if (c->failed && c->failed[i])
			json_object_object_add(disk, "error", json_object_new_string(c->failed[i]));
		json_object_object_add(disk, "before", chain_json(paths, formats, n));
		free(paths);
		free(formats);
		if (d) {
			paths = sm_xcalloc(d->nchain + 1, sizeof(*paths));
			formats = sm_xcalloc(d->nchain + 1, sizeof(*formats));
			for (size_t k = 0; k < d->nchain; k++) {
				paths[k] = d->chain[k].path ? d->chain[k].path : "";
				formats[k] = d->chain[k].format;
			}
			json_object_object_add(disk, "after", chain_json(paths, formats, d->nchain));
			free(paths);
			free(formats);
		}
		json_object_array_add(disks, disk);
	}
	json_object_object_add(o, "disks", disks);
	sm_domain_disks_release(&now);
	sm_event_emit("result", o);
}
