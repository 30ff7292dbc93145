/* move.c: 'snapmove move': validate everything, journal the plan as a new job,
 * then run the phases (runner.c).  Nothing is changed before validation has
 * passed; the operations themselves live in chain/, snapshot/ and copy/.
 */
#include "job/move.h"
#include "job/validate.h"
#include "job/hook_facts.h"
#include "lock.h"
#include "job/reconcile.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the job ---- */

/* Whether libvirt shows the domain going down: "in shutdown" from the guest's
 * poweroff (QEMU's SHUTDOWN event) until libvirt has reaped its QEMU. */
static bool shutting_down(virDomainPtr dom)
{
	int state, reason;

	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		return false;
	return state == VIR_DOMAIN_SHUTDOWN ||
	       (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_SHUTTING_DOWN);
}

/* Whether the domain went down during the live phases (an admin's destroy,
 * the guest's own poweroff): libvirt shows it shut off, or has it no more.
 * A guest that powered off fails the phase as its QEMU exits (QEMU ends the
 * block jobs), while libvirt still shows it "in shutdown": that is waited
 * out, up to SM_DOWN_WAIT_S (t0202, the guest's poweroff racing the phases). */
#define SM_DOWN_WAIT_S 30
static bool went_down(const struct sm_jobctx *c)
{
	const struct timespec tick = { .tv_nsec = 100 * 1000 * 1000 };

	if (!c->dom)
		return false;
	for (int waited = 0;; waited++) {
		int active = virDomainIsActive(c->dom);

		if (active == 0)
			return true;
		if (active < 0)
			return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN;
		if (waited >= SM_DOWN_WAIT_S * 10 || !shutting_down(c->dom))
			return false;
		nanosleep(&tick, NULL);
	}
}

/* The domain went down during the move: a persistent one is finished offline
 * as 'snapmove resume' would (the job reloaded from the journal, libvirt's
 * "shut off" proven, where each disk stands read again); a transient one is
 * gone with its definition, and the result says where each disk's data is. */
static enum sm_move_result finish_down(struct sm_jobctx *c, struct sm_job_result *r)
{
	struct sm_virt *v = c->v;
	struct sm_journal *j = c->j;
	struct sm_progress *pr = c->pr;
	long long job = c->job;
	SM_AUTOFREE char *name = sm_xstrdup(c->domain_name);

	sm_progress_say(pr, "domain '%s' went down during the move: finishing it offline", name);
	sm_jobctx_release(c);
	if (sm_jobctx_load(c, v, j, job, pr) < 0)
		return SM_MOVE_FAILED;
	if (!c->dom) {
		sm_job_locate_gone(c, r);
		sm_error("domain '%s' went down during the move and no longer exists (it was "
			 "transient): job %lld cannot go on; start a domain of that name on the "
			 "files listed, then run 'snapmove resume %lld'", name, job, job);
		return SM_MOVE_FAILED;
	}
	if (c->running) {
		sm_error("domain '%s' went down during the move and runs again; finish the move "
			 "with 'snapmove resume %lld'", name, job);
		return SM_MOVE_FAILED;
	}
	if (sm_reconcile_job_off(c, "resume") < 0 || sm_reconcile(c) < 0 ||
	    sm_reconcile_offline_pivots(c, "resume") < 0)
		return SM_MOVE_FAILED;
	if (sm_journal_job_finish(j, job, SM_JOB_RUNNING, NULL) < 0)
		return SM_MOVE_FAILED;
	if (sm_job_complete_offline(c) < 0)
		return SM_MOVE_FAILED;
	r->finished_offline = true;
	return SM_MOVE_OK;
}

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
		.trim = m->o->trim,
		.dest_zeroed = m->o->dest_zeroed,
		.delete_source = m->o->delete_source,
		.overlay_chunk = m->overlay_prov ? (m->o->overlay_size ? m->o->overlay_size
								  : SM_OVERLAY_CHUNK) : 0,
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

		free(p->src_overlay);
		free(p->dst_overlay);
		p->src_overlay = sm_plan_src_overlay_path(m->overlay_dir, m->dest, p->images[0].src,
							  m->job);
		p->dst_overlay = sm_plan_overlay_path(m->dest, p->images[0].src, m->job);
	}
	if (sm_plan_check_overlays(m->plans, m->nplans) < 0)
		goto error;
	for (size_t i = 0; i < m->nplans; i++) {
		struct sm_plan_disk *p = &m->plans[i];

		if (sm_move_check_overlay_absent(p->src_overlay) < 0 ||
		    sm_move_check_dest_absent(p->dst_overlay) < 0 ||
		    sm_journal_disk_insert(m->j, m->job, p) < 0)
			goto error;
		/* Its device, the job's before the provisioner is asked for it. */
		if (m->prov && sm_provdev_journal(m->j, m->job, m->prov, m->prov_settings, p,
						  &m->provdevs[i]) < 0)
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

/* A plan's chain before the move, or after it as planned: under the
 * destination overlay with --keep-overlay; a flattened disk has no kept
 * image below it. */
static void plan_chain(bool keep_overlay, const struct sm_plan_disk *p, bool after,
		       struct sm_result_chain *ch)
{
	if (after && keep_overlay)
		sm_result_chain_add(ch, p->dst_overlay, "qcow2");
	for (size_t k = 0; k < p->nimages; k++)
		sm_result_chain_add(ch, after ? p->images[k].dst : p->images[k].src,
				    after ? p->images[k].dst_format : p->images[k].format);
	if (p->kept && !(after && p->flat))
		sm_result_chain_add(ch, p->kept, p->kept_format);
}

/* The dry run's result: the plan, and the space it needs. */
static void dry_run_result(const struct move *m, unsigned long long need,
			   unsigned long long avail, struct sm_job_result *r)
{
	const char **targets = sm_xcalloc(m->nplans + 1, sizeof(*targets));

	r->dry_run = true;
	r->domain = sm_xstrdup(m->o->domain);
	r->uuid = sm_xstrdup(m->uuid);
	r->persistent = m->persistent;
	r->dest = sm_xstrdup(m->dest);
	if (m->overlay_prov)
		r->overlay_provisioner = sm_xstrdup(m->overlay_prov);
	else
		r->overlay_dir = sm_xstrdup(m->overlay_dir);
	r->dest_needs = need;
	r->dest_free = avail;
	for (size_t i = 0; i < m->nplans; i++)
		targets[i] = m->plans[i].target;
	sm_job_result_disks(r, targets, m->nplans);
	free(targets);
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];
		struct sm_result_disk *d = &r->disks[i];

		plan_chain(false, p, false, &d->before);
		plan_chain(m->o->keep_overlay, p, true, &d->after);
		/* A device the provisioner will make: no path yet. */
		for (size_t k = 0; m->provdevs && m->provdevs[i].bytes && k < d->after.n; k++) {
			if (!sm_str_eq(d->after.images[k].path, p->images[0].dst))
				continue;
			free(d->after.images[k].path);
			d->after.images[k].path = sm_xasprintf(
				"(a block device of %llu bytes that '%s' makes)",
				m->provdevs[i].bytes, m->prov);
		}
		for (size_t k = 0; k < p->nimages; k++)
			d->bytes += p->images[k].allocated;
		if (p->kept && !p->flat) {
			d->kept = sm_xstrdup(p->kept);
			d->kept_user = sm_xstrdup(p->kept_user);
		}
	}
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
	c->trim = m->o->trim;
	c->dest_zeroed = m->o->dest_zeroed;
	if (m->overlay_prov)
		c->overlay_chunk = m->o->overlay_size ? m->o->overlay_size : SM_OVERLAY_CHUNK;
	for (size_t i = 0; i < m->nplans; i++) {
		c->plans[i] = m->plans[i];
		memset(&m->plans[i], 0, sizeof(m->plans[i]));
	}
}

enum sm_move_result sm_move(struct sm_virt *v, struct sm_journal *j,
			    const struct sm_move_opts *o, struct sm_progress *pr,
			    long long *job_id, struct sm_job_result *r)
{
	struct move m = { .v = v, .j = j, .o = o, .pr = pr };
	struct sm_jobctx c = { 0 };
	struct sm_job_lock lock = { .fd = -1 };
	unsigned long long need = 0, avail = 0;
	enum sm_move_result ret = SM_MOVE_REFUSED;

	r->verb = SM_JOB_VERB_MOVE;
	r->started = sm_monotonic();
	r->delete_source = o->delete_source;
	*job_id = 0;
	if (sm_move_validate(&m, &need, &avail) < 0)
		goto cleanup;
	if (o->dry_run) {
		dry_run_result(&m, need, avail, r);
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
	/* The devices the job's provisioners make, the destination images'
	 * first, then the overlays': one that fails leaves none (those made
	 * are removed), the job ends aborted, nothing else was touched. */
	if (m.prov && sm_provdev_create(&c, m.provdevs) < 0) {
		char *err = sm_error_preserve();

		sm_ignore_value(sm_journal_job_finish(j, m.job, SM_JOB_ABORTED, err));
		sm_error_restore(&err);
		goto cleanup;
	}
	if (m.overlay_prov &&
	    sm_job_ovdev_provision(&c, m.overlay_prov, o->overlay_settings) < 0) {
		char *err = sm_error_preserve();

		if (m.prov)
			sm_ignore_value(sm_provdev_remove(c.v, j, m.job, false, c.pr));
		sm_ignore_value(sm_journal_job_finish(j, m.job, SM_JOB_ABORTED, err));
		sm_error("%s; job %lld ended before the snapshot: the domain was not touched", err,
			 m.job);
		free(err);
		goto cleanup;
	}
	if (o->offline ? sm_job_complete_offline(&c) < 0
		       : sm_job_run(&c, SM_JOB_ORDER_MOVE) < 0) {
		ret = c.vetoed ? SM_MOVE_VETOED : sm_interrupted ? SM_MOVE_INTERRUPTED : SM_MOVE_FAILED;
		if (ret == SM_MOVE_FAILED && !o->offline && went_down(&c))
			ret = finish_down(&c, r);
		goto cleanup;
	}
	ret = SM_MOVE_OK;

cleanup:
	ret = sm_job_end(&c, &lock, ret, r);
	sm_move_release(&m);
	return ret;
}
