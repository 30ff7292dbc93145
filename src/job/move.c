/* move.c: 'snapmove move': validate everything, journal the plan as a new job,
 * then run the phases (runner.c).  Nothing is changed before validation has
 * passed; the operations themselves live in chain/, snapshot/ and copy/.
 */
#include "job/move.h"
#include "job/validate.h"
#include "job/hook_facts.h"
#include "lock.h"
#include "job/reconcile.h"
#include "events.h"
#include "util.h"

#include <string.h>

/* ---- the job ---- */

/* Open the job: insert it, name the overlays after it, journal the plan, all
 * in one transaction, re-checking what another snapmove could have changed. */
static int open_job(struct move *m)
{
	struct sm_job_row row = {
		.domain_name = (char *)m->o->domain,
		.domain_uuid = m->uuid,
		.persistent = m->persistent,
		.dest_dir = m->dest,
		.bandwidth_mib = m->o->bandwidth_mib,
		.keep_overlay = m->o->keep_overlay,
		.quiesce = m->o->quiesce,
		.verify = m->o->verify,
		.dest_format = (char *)m->o->dest_format,
		.sync_writes = (char *)sm_sync_writes_name((enum sm_sync_writes)m->o->sync_writes),
		.converge_timeout = m->o->converge_timeout,
		.copy_method = (char *)sm_copy_method_name(m->o->copy_method),
		.parallel = m->o->parallel,
		.delete_source = m->o->delete_source,
	};

	if (sm_journal_begin(m->j) < 0)
		return -1;
	for (size_t i = 0; i < m->nplans; i++) {
		long long other;
		int rc = sm_journal_unfinished_job_for_disk(m->j, m->uuid, m->plans[i].target,
							    &other);

		if (rc != 0) {
			if (rc > 0)
				sm_error("disk '%s' of domain '%s' has an unfinished snapmove job "
					 "%lld; finish it with 'snapmove resume %lld' or undo it "
					 "with 'snapmove abort %lld'", m->plans[i].target,
					 m->o->domain, other, other, other);
			goto error;
		}
	}
	if (sm_journal_job_insert(m->j, &row, &m->job) < 0)
		goto error;
	for (size_t i = 0; i < m->nplans; i++) {
		struct sm_plan_disk *p = &m->plans[i];
		SM_AUTOFREE char *src_dir = sm_path_dirname(p->images[0].src);

		free(p->src_overlay);
		free(p->dst_overlay);
		p->src_overlay = sm_plan_overlay_path(src_dir, p->images[0].src, m->job);
		p->dst_overlay = sm_plan_overlay_path(m->dest, p->images[0].src, m->job);
		if (sm_move_check_overlay_absent(p->src_overlay) < 0 || sm_move_check_dest_absent(p->dst_overlay) < 0 ||
		    sm_journal_disk_insert(m->j, m->job, p) < 0)
			goto error;
	}
	for (size_t i = 0; i < m->nsrcs; i++)
		if (sm_srcfile_journal(m->j, m->job, &m->srcs[i]) < 0)
			goto error;
	if (sm_journal_commit(m->j) < 0)
		goto error;
	return 0;

error:
	sm_journal_rollback(m->j);
	m->job = 0;
	return -1;
}

static void print_chain(const char *label, const char *target, const char *const *paths,
			const char *const *formats, size_t n)
{
	fprintf(sm_human(), "  %s %s:", target, label);
	for (size_t i = 0; i < n; i++)
		fprintf(sm_human(), "%s %s (%s)", i ? " <-" : "", paths[i], formats[i]);
	fprintf(sm_human(), "\n");
}

static void print_plan_chain(bool keep_overlay, const struct sm_plan_disk *p, bool after)
{
	const char **paths = sm_xcalloc(p->nimages + 2, sizeof(*paths));
	const char **formats = sm_xcalloc(p->nimages + 2, sizeof(*formats));
	size_t n = 0;

	if (after && keep_overlay) {
		paths[n] = p->dst_overlay;
		formats[n++] = "qcow2";
	}
	for (size_t k = 0; k < p->nimages; k++) {
		paths[n] = after ? p->images[k].dst : p->images[k].src;
		formats[n++] = after ? p->images[k].dst_format : p->images[k].format;
	}
	if (p->kept && !(after && p->flat)) {
		paths[n] = p->kept;
		formats[n++] = p->kept_format;
	}
	print_chain(after ? "after " : "before", p->target, paths, formats, n);
	free(paths);
	free(formats);
}

static struct json_object *plan_chain_json(const struct sm_plan_disk *p, bool after,
					    bool keep_overlay)
{
	struct json_object *a = json_object_new_array();

	for (size_t k = 0; k <= p->nimages; k++) {
		struct json_object *img;
		const char *path, *format;

		if (k == 0 && after && keep_overlay) {
			path = p->dst_overlay;
			format = "qcow2";
		} else if (k == p->nimages) {
			if (!p->kept || (after && p->flat))
				break;
			path = p->kept;
			format = p->kept_format;
		} else {
			path = after ? p->images[k].dst : p->images[k].src;
			format = after ? p->images[k].dst_format : p->images[k].format;
		}
		img = json_object_new_object();
		json_object_object_add(img, "path", json_object_new_string(path));
		json_object_object_add(img, "format", json_object_new_string(format));
		json_object_array_add(a, img);
		if (k == 0 && after && keep_overlay) {
			img = json_object_new_object();
			json_object_object_add(img, "path", json_object_new_string(p->images[0].dst));
			json_object_object_add(img, "format",
					       json_object_new_string(p->images[0].dst_format));
			json_object_array_add(a, img);
		}
	}
	return a;
}

static void print_dry_run_json(const struct move *m, unsigned long long need,
			       unsigned long long avail)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *disks = json_object_new_array();
	unsigned long long bytes = 0;

	json_object_object_add(doc, "dry_run", json_object_new_boolean(true));
	json_object_object_add(doc, "domain", json_object_new_string(m->o->domain));
	json_object_object_add(doc, "domain_uuid", json_object_new_string(m->uuid));
	json_object_object_add(doc, "persistent", json_object_new_boolean(m->persistent));
	json_object_object_add(doc, "dest", json_object_new_string(m->dest));
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];
		struct json_object *d = json_object_new_object();
		unsigned long long b = 0;

		for (size_t k = 0; k < p->nimages; k++)
			b += p->images[k].allocated;
		bytes += b;
		json_object_object_add(d, "target", json_object_new_string(p->target));
		json_object_object_add(d, "before", plan_chain_json(p, false, false));
		json_object_object_add(d, "after", plan_chain_json(p, true, m->o->keep_overlay));
		json_object_object_add(d, "bytes", json_object_new_int64((int64_t)b));
		if (p->kept && !p->flat) {
			json_object_object_add(d, "kept", json_object_new_string(p->kept));
			json_object_object_add(d, "kept_user", json_object_new_string(p->kept_user));
		}
		json_object_array_add(disks, d);
	}
	json_object_object_add(doc, "disks", disks);
	json_object_object_add(doc, "bytes_to_copy", json_object_new_int64((int64_t)bytes));
	json_object_object_add(doc, "dest_needs", json_object_new_int64((int64_t)need));
	json_object_object_add(doc, "dest_free", json_object_new_int64((int64_t)avail));
	sm_json_print(doc);
}

static void print_dry_run(const struct move *m, unsigned long long need,
			  unsigned long long avail)
{
	if (sm_events_enabled()) {
		print_dry_run_json(m, need, avail);
		return;
	}
	char b[32], n[32], a[32];
	unsigned long long bytes = 0;

	fprintf(sm_human(), "dry run: nothing was changed\n");
	fprintf(sm_human(), "domain %s (%s), %s\n", m->o->domain, m->uuid,
	       m->persistent ? "persistent" : "transient");
	for (size_t i = 0; i < m->nplans; i++) {
		print_plan_chain(m->o->keep_overlay, &m->plans[i], false);
		print_plan_chain(m->o->keep_overlay, &m->plans[i], true);
		for (size_t k = 0; k < m->plans[i].nimages; k++)
			bytes += m->plans[i].images[k].allocated;
	}
	for (size_t i = 0; i < m->nplans; i++)
		if (m->plans[i].kept && !m->plans[i].flat)
			fprintf(sm_human(), "  %s keeps '%s' (and what is below it) where it is: it is also "
			       "used by %s (--copy-shared copies it)\n", m->plans[i].target,
			       m->plans[i].kept, m->plans[i].kept_user);
	fprintf(sm_human(), "bytes to copy: %s\n", sm_format_bytes(bytes, b, sizeof(b)));
	fprintf(sm_human(), "destination %s: needs %s, %s free\n", m->dest,
	       sm_format_bytes(need, n, sizeof(n)), sm_format_bytes(avail, a, sizeof(a)));
}

static void print_result(const struct sm_jobctx *c, double seconds)
{
	SM_AUTOFREE char *xml = sm_virt_domain_xml(c->dom, false);
	struct sm_domain_disks now;

	fprintf(sm_human(), "moved domain %s in %.1f s (job %lld)\n", c->domain_name, seconds, c->job);
	sm_job_print_kept(c);
	if (!xml || sm_chain_parse(xml, &now) < 0)
		return;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&now, c->plans[i].target);
		const char **paths, **formats;

		print_plan_chain(c->keep_overlay, &c->plans[i], false);
		if (!d)
			continue;
		paths = sm_xcalloc(d->nchain + 1, sizeof(*paths));
		formats = sm_xcalloc(d->nchain + 1, sizeof(*formats));
		for (size_t k = 0; k < d->nchain; k++) {
			paths[k] = d->chain[k].path;
			formats[k] = d->chain[k].format;
		}
		print_chain("now   ", d->target, paths, formats, d->nchain);
		free(paths);
		free(formats);
	}
	sm_domain_disks_release(&now);
}

/* Hand the validated move over to a job context (the plans move over). */
static void to_jobctx(struct move *m, struct sm_jobctx *c)
{
	memset(c, 0, sizeof(*c));
	c->v = m->v;
	c->j = m->j;
	c->pr = m->pr;
	c->job = m->job;
	c->domain_name = sm_xstrdup(m->o->domain);
	memcpy(c->uuid, m->uuid, sizeof(c->uuid));
	c->persistent = m->persistent;
	c->dest = sm_xstrdup(m->dest);
	c->bandwidth_mib = m->o->bandwidth_mib;
	c->keep_overlay = m->o->keep_overlay;
	c->quiesce = m->o->quiesce;
	c->verify = m->o->verify;
	c->copy_method = m->o->copy_method;
	c->dom = sm_steal(&m->dom);
	c->running = !m->o->offline;
	c->live = m->live;
	memset(&m->live, 0, sizeof(m->live));
	sm_jobctx_alloc(c, m->nplans);
	c->sync_writes = (enum sm_sync_writes)m->o->sync_writes;
	if (m->o->converge_timeout > 0)
		c->converge_timeout = m->o->converge_timeout;
	c->parallel = m->o->parallel ? m->o->parallel : sm_job_default_parallel(m->dest);
	for (size_t i = 0; i < m->nplans; i++) {
		c->plans[i] = m->plans[i];
		memset(&m->plans[i], 0, sizeof(m->plans[i]));
	}
}

enum sm_move_result sm_move(struct sm_virt *v, struct sm_journal *j,
			    const struct sm_move_opts *o, struct sm_progress *pr,
			    long long *job_id)
{
	struct move m = { .v = v, .j = j, .o = o, .pr = pr };
	struct sm_jobctx c = { 0 };
	struct sm_job_lock lock = { .fd = -1 };
	unsigned long long need = 0, avail = 0;
	enum sm_move_result ret = SM_MOVE_REFUSED;
	double t0 = sm_monotonic();

	*job_id = 0;
	if (sm_move_validate(&m, &need, &avail) < 0)
		goto cleanup;
	if (o->dry_run) {
		print_dry_run(&m, need, avail);
		ret = SM_MOVE_OK;
		goto cleanup;
	}
	sm_virt_watch_domain(v, m.dom);
	if (open_job(&m) < 0)
		goto cleanup;
	*job_id = m.job;
	ret = SM_MOVE_FAILED;
	if (sm_job_lock(j, m.job, &lock) < 0) {
		/* Already failing (or vetoed): a journal that fails too leaves the job
		 * running, which resume and abort treat like failed. */
		sm_ignore_value(sm_journal_job_finish(j, m.job, SM_JOB_FAILED, sm_error_message()));
		goto cleanup;
	}
	sm_progress_say(pr, "job %lld: moving %zu disk%s of %s to %s", m.job, m.nplans,
			m.nplans == 1 ? "" : "s", o->domain, m.dest);
	to_jobctx(&m, &c);
	if (sm_job_hooks_run(&c, "before_move") < 0) {
		/* Nothing was touched: the job ends here, so it blocks nothing. */
		/* Already failing (or vetoed): a journal that fails too leaves the job
		 * running, which resume and abort treat like failed. */
		sm_ignore_value(sm_journal_job_finish(j, m.job, SM_JOB_ABORTED, sm_error_message()));
		ret = SM_MOVE_VETOED;
		goto cleanup;
	}
	if (o->offline ? sm_job_complete_offline(&c) < 0
		       : sm_job_run(&c, SM_JOB_ORDER_MOVE) < 0) {
		ret = c.vetoed ? SM_MOVE_VETOED : sm_interrupted ? SM_MOVE_INTERRUPTED : SM_MOVE_FAILED;
		goto cleanup;
	}
	if (sm_job_close(&c, SM_JOB_DONE) < 0)
		goto cleanup;
	sm_job_hooks_run(&c, "after_move");
	print_result(&c, sm_monotonic() - t0);
	if (o->delete_source) {
		sm_job_delete_source(&c);
	} else {
		fprintf(sm_human(), "the source images stay; 'snapmove cleanup %lld' deletes those nothing "
		       "uses\n", m.job);
	}
	sm_job_unlock(&lock, 1);
	ret = SM_MOVE_OK;

cleanup:
	if (c.job)
		sm_job_emit_result(&c, sm_move_status_name(ret), sm_move_exit_code(ret),
				   ret == SM_MOVE_OK ? NULL : sm_error_message());
	sm_job_unlock(&lock, 0);
	sm_jobctx_release(&c);
	sm_move_release(&m);
	return ret;
}
