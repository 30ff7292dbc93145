/* result.c: the result of a job (struct sm_job_result: each disk's chain
 * before and now, the files it kept, what --delete-source freed), filled at
 * the one ending move, resume and abort share (sm_job_end, which also runs
 * --delete-source); and the default
 * number of parallel copies (devices under a file system).  It prints
 * nothing: src/report.c renders the result.
 */
#include "job/internal.h"
#include "job/hook_facts.h"
#include "cleanup.h"
#include "events.h"
#include "lock.h"
#include "util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

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

void sm_job_result_init_disks(const struct sm_jobctx *c, struct sm_job_result *r)
{
	const char **targets = sm_xcalloc(c->nplans + 1, sizeof(*targets));

	for (size_t i = 0; i < c->nplans; i++)
		targets[i] = c->plans[i].target;
	sm_job_result_disks(r, targets, c->nplans);
	free(targets);
}

/* The chain a resume ended on: the destination chain as planned, under the
 * destination overlay with --keep-overlay. */
static void resumed_chain(const struct sm_jobctx *c, size_t i, struct sm_result_chain *ch)
{
	const struct sm_plan_disk *p = &c->plans[i];

	if (c->keep_overlay)
		sm_result_chain_add(ch, p->dst_overlay, "qcow2");
	for (size_t k = 0; k < p->nimages; k++)
		sm_result_chain_add(ch, p->images[k].dst, p->images[k].dst_format);
	if (p->kept)
		sm_result_chain_add(ch, p->kept, p->kept_format);
}

/* The chain an abort ended on: the original chain, or, streamed, the
 * source overlay the original image went into over what was below it. */
static void aborted_chain(const struct sm_jobctx *c, size_t i, bool via_stream,
			  struct sm_result_disk *d)
{
	const struct sm_plan_disk *p = &c->plans[i];

	d->streamed = via_stream && c->disks[i].state != SM_DISK_PLANNED;
	if (d->streamed)
		sm_result_chain_add(&d->after, p->src_overlay, "qcow2");
	for (size_t k = d->streamed ? 1 : 0; k < p->nimages; k++)
		sm_result_chain_add(&d->after, p->images[k].src, p->images[k].format);
	if (p->kept)
		sm_result_chain_add(&d->after, p->kept, p->kept_format);
}

/* Each disk's chain as libvirt shows it now (the live XML of a running
 * domain, else the persistent one).  The command's error stays as it was. */
static void read_now(const struct sm_jobctx *c, struct sm_job_result *r)
{
	struct sm_domain_disks now = { 0 };
	char *err = sm_error_preserve();
	char *xml = virDomainGetXMLDesc(c->dom, virDomainIsActive(c->dom) == 1 ? 0 :
					VIR_DOMAIN_XML_INACTIVE);

	if (xml && sm_chain_parse(xml, &now) == 0) {
		r->now_read = true;
		for (size_t i = 0; i < r->ndisks; i++) {
			const struct sm_disk *d = sm_domain_disks_find(&now, c->plans[i].target);

			if (!d)
				continue;
			r->disks[i].has_now = true;
			for (size_t k = 0; k < d->nchain; k++)
				sm_result_chain_add(&r->disks[i].now, d->chain[k].path,
						    d->chain[k].format);
		}
	}
	free(xml);
	sm_domain_disks_release(&now);
	sm_error_restore(&err);
}

/* The files the job kept (journaled "kept"), for the outcome. */
static void read_kept(const struct sm_jobctx *c, struct sm_job_result *r)
{
	struct sm_file_row *files = NULL;
	size_t n = 0;

	if (sm_journal_file_list(c->j, c->job, &files, &n) < 0) {
		sm_error_clear();
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (sm_file_row_state(&files[i]) != SM_FILE_KEPT)
			continue;
		r->kept = sm_xrealloc(r->kept, (r->nkept + 1) * sizeof(*r->kept));
		r->kept[r->nkept].path = sm_xstrdup(files[i].path);
		r->kept[r->nkept].role = sm_xstrdup(files[i].role);
		r->nkept++;
	}
	sm_file_rows_free(files, n);
}

/* What the job's result says of it: each disk's state and chains. */
static void fill_result(const struct sm_jobctx *c, struct sm_job_result *r)
{
	r->job = c->job;
	r->domain = sm_xstrdup(c->domain_name);
	r->uuid = sm_xstrdup(c->uuid);
	sm_job_result_init_disks(c, r);
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		struct sm_result_disk *d = &r->disks[i];

		d->state = c->disks[i].state;
		d->error = sm_xstrdup_or_null(c->disks[i].failed);
		for (size_t k = 0; k < p->nimages; k++)
			sm_result_chain_add(&d->before, p->images[k].src, p->images[k].format);
		if (p->kept)
			sm_result_chain_add(&d->before, p->kept, p->kept_format);
		if (r->gone)
			continue;  /* 'after' says where the data is */
		switch (r->verb) {
		case SM_JOB_VERB_MOVE:
			break;
		case SM_JOB_VERB_RESUME:
			resumed_chain(c, i, &d->after);
			break;
		case SM_JOB_VERB_ABORT:
			aborted_chain(c, i, r->via_stream, d);
			break;
		}
	}
	if (c->dom && (sm_events_wanted() ||
		       (r->verb == SM_JOB_VERB_MOVE && r->outcome == SM_MOVE_OK)))
		read_now(c, r);
	if (r->outcome == SM_MOVE_OK)
		read_kept(c, r);
}

/* --delete-source of a finished move: its source images that nothing uses
 * (src/cleanup.c): 0 and *freed, or -1 after a warning naming 'snapmove
 * cleanup JOB' (through the progress lines). */
static int delete_source(struct sm_jobctx *c, unsigned long long *freed)
{
	*freed = 0;
	if (sm_cleanup_run(c->v, c->j, c->job, c->pr, freed) == 0)
		return 0;
	sm_progress_say(c->pr, "warning: the move is done but its source was not "
			"deleted: %s; run 'snapmove cleanup %lld'", sm_error_message(), c->job);
	return -1;
}

/* The guest trimmed, but a moved disk without discard='unmap' drops the
 * discards in QEMU (libvirt's default, 'ignore'): its image keeps every
 * block.  A warning names each such disk, so "trimmed" does not mislead. */
static void trim_unreached(const struct sm_jobctx *c)
{
	SM_AUTOFREE char *xml = sm_virt_domain_xml(c->dom, false);
	struct sm_domain_disks disks;

	if (!xml || sm_chain_parse(xml, &disks) < 0)
		return;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&disks, c->plans[i].target);

		if (d && !d->discard_unmap) {
			SM_AUTOFREE char *why = sm_xasprintf(
				"disk '%s' has no discard='unmap' in its <driver>, so QEMU dropped "
				"the guest's trim and its image '%s' keeps the freed blocks; add "
				"discard='unmap' to the disk's <driver> in the definition (it "
				"takes effect when the domain next starts)", d->target,
				d->nchain > 0 && d->chain[0].path ? d->chain[0].path : "(unknown)");

			sm_progress_say(c->pr, "warning: %s", why);
			sm_event_warning(c->job, d->target, why);
		}
	}
	sm_domain_disks_release(&disks);
}

/* --trim, once the move is done: the guest agent trims the guest's file
 * systems, so the thin storage the disks moved to stays thin.  The move is
 * done whatever the agent answers: a failure is a warning. */
static void trim_guest(const struct sm_jobctx *c, struct sm_job_result *r)
{
	r->trim = true;
	if (!c->running || !c->dom) {
		r->trim_error = sm_xstrdup("the domain is not running");
	} else if (virDomainFSTrim(c->dom, NULL, 0, 0) < 0) {
		r->trim_error = sm_xstrdup(sm_virt_last_error());
	} else {
		r->trimmed = true;
		trim_unreached(c);
		return;
	}
	{
		SM_AUTOFREE char *why = sm_xasprintf("the guest's file systems were not trimmed: "
						     "%s; the move is done", r->trim_error);

		sm_event_warning(c->job, NULL, why);
	}
}

enum sm_move_result sm_job_end(struct sm_jobctx *c, struct sm_job_lock *lock,
			       enum sm_move_result ret, struct sm_job_result *r)
{
	bool abort_job = r->verb == SM_JOB_VERB_ABORT;
	bool filled = false;

	if (ret == SM_MOVE_OK && c->job) {
		ret = SM_MOVE_FAILED;
		if (sm_job_close(c, abort_job ? SM_JOB_ABORTED : SM_JOB_DONE) < 0)
			goto cleanup;
		sm_job_hooks_run(c, abort_job ? "after_abort" : "after_move");
		if (!abort_job && c->trim)
			trim_guest(c, r);
		r->outcome = SM_MOVE_OK;
		r->seconds = sm_monotonic() - r->started;
		fill_result(c, r);
		filled = true;
		if (r->on_done) {
			r->on_done(r);
			r->shown = true;
		}
		if (r->delete_source)
			r->source_deleted = delete_source(c, &r->freed) == 0;
		sm_job_unlock(lock, 1);
		ret = SM_MOVE_OK;
	}

cleanup:
	r->outcome = ret;
	if (c->job && !filled) {
		r->error = ret == SM_MOVE_OK ? NULL : sm_xstrdup(sm_error_message());
		fill_result(c, r);
	}
	sm_job_unlock(lock, 0);
	sm_jobctx_release(c);
	return ret;
}
