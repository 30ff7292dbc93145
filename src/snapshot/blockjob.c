/* blockjob.c: start, watch, pivot and cancel libvirt block jobs.  Which job to
 * run when is the job engine's decision (src/job/); this file only makes the
 * calls and checks what libvirt reports afterwards.  What a restarted
 * libvirtd lost (QEMU's leftover jobs and nodes, asked through QMP) is
 * blockjob_qmp.c's.
 */
#include "snapshot/blockjob.h"
#include "chain/chain.h"
#include "util.h"

#include <libvirt/virterror.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The mirror's target: a qcow2 file, or a qcow2 image on a block device
 * (an overlay on a device the job's provisioner made). */
static char *copy_dest_xml(const char *path)
{
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr disk = xmlNewNode(NULL, (const xmlChar *)"disk");
	xmlChar *buf = NULL;
	struct stat sb;
	bool on_dev = stat(path, &sb) == 0 && S_ISBLK(sb.st_mode);
	int len = 0;
	char *out;

	xmlDocSetRootElement(doc, disk);
	xmlNewProp(disk, (const xmlChar *)"type", (const xmlChar *)(on_dev ? "block" : "file"));
	xmlNewProp(xmlNewChild(disk, NULL, (const xmlChar *)"source", NULL),
		   (const xmlChar *)(on_dev ? "dev" : "file"), (const xmlChar *)path);
	xmlNewProp(xmlNewChild(disk, NULL, (const xmlChar *)"driver", NULL),
		   (const xmlChar *)"type", (const xmlChar *)"qcow2");
	xmlDocDumpMemory(doc, &buf, &len);
	out = sm_xstrdup((const char *)buf);
	xmlFree(buf);
	xmlFreeDoc(doc);
	return out;
}

int sm_blockjob_mirror_start(struct sm_virt *v, virDomainPtr dom, const char *target,
			     const char *dst_overlay, unsigned long long bandwidth_mib,
			     bool persistent, bool sync_writes)
{
	SM_AUTOFREE char *xml = copy_dest_xml(dst_overlay);
	virTypedParameter params[1];
	int nparams = 0;
	unsigned int flags = VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT;

	if (persistent)
		flags |= VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB;
	if (sync_writes)
		flags |= VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES;
	if (bandwidth_mib > 0) {
		memset(params, 0, sizeof(params));
		snprintf(params[0].field, sizeof(params[0].field), "%s",
			 VIR_DOMAIN_BLOCK_COPY_BANDWIDTH);
		params[0].type = VIR_TYPED_PARAM_ULLONG;
		params[0].value.ul = bandwidth_mib << 20;
		nparams = 1;
	}
	sm_virt_job_event_reset(v, target, VIR_DOMAIN_BLOCK_JOB_TYPE_COPY);
	if (virDomainBlockCopy(dom, target, xml, params, nparams, flags) < 0) {
		sm_virt_error("cannot start the mirror of disk '%s' onto '%s'", target,
			      dst_overlay);
		return -1;
	}
	return 0;
}

int sm_blockjob_commit_start(struct sm_virt *v, virDomainPtr dom, const char *target,
			     const char *base_path, unsigned long long bandwidth_mib)
{
	/* An explicit base: without one an active commit merges down to the
	 * bottom of the chain, rewriting base images and shared templates. */
	sm_virt_job_event_reset(v, target, VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT);
	if (virDomainBlockCommit(dom, target, base_path, NULL, bandwidth_mib,
				 VIR_DOMAIN_BLOCK_COMMIT_ACTIVE) < 0) {
		SM_AUTOFREE char *why = sm_virt_last_error_dup();

		sm_error("cannot start the commit of disk '%s' into '%s': %s; if another block "
			 "job runs on it, wait for it or run 'virsh blockjob %s %s --abort', then "
			 "resume the job", target, base_path, why, virDomainGetName(dom), target);
		return -1;
	}
	return 0;
}

int sm_blockjob_stream_start(struct sm_virt *v, virDomainPtr dom, const char *target,
			     const char *base_path, unsigned long long bandwidth_mib)
{
	sm_virt_job_event_reset(v, target, VIR_DOMAIN_BLOCK_JOB_TYPE_PULL);
	if (virDomainBlockRebase(dom, target, base_path, bandwidth_mib, 0) < 0) {
		sm_virt_error("cannot start the block stream of disk '%s'", target);
		return -1;
	}
	return 0;
}

/* The block job on target ended early: status is its last event.  QEMU's
 * own error text comes with its BLOCK_JOB_COMPLETED event, which may come
 * a little after libvirt's: it is waited for up to a second. */
static void job_ended(struct sm_virt *v, virDomainPtr dom, const char *target, int status)
{
	const char *name = virDomainGetName(dom);
	char why[256] = "";

	if (status == VIR_DOMAIN_BLOCK_JOB_FAILED)
		for (int i = 0; i < 10 && !sm_virt_job_error(v, target, why, sizeof(why)); i++)
			sm_virt_job_event_wait(v, sm_virt_job_event_seq(v), 100);
	switch (status) {
	case VIR_DOMAIN_BLOCK_JOB_COMPLETED:
		sm_error("the block job on disk '%s' completed before it was ready; see the "
			 "domain's log '/var/log/libvirt/qemu/%s.log'", target, name);
		break;
	case VIR_DOMAIN_BLOCK_JOB_FAILED:
		if (why[0])
			sm_error("the block job on disk '%s' failed: QEMU says '%s'", target, why);
		else
			sm_error("the block job on disk '%s' failed; see the domain's log "
				 "'/var/log/libvirt/qemu/%s.log'", target, name);
		break;
	case VIR_DOMAIN_BLOCK_JOB_CANCELED:
		sm_error("the block job on disk '%s' was cancelled; see the domain's log "
			 "'/var/log/libvirt/qemu/%s.log'", target, name);
		break;
	default:
		sm_error("the block job on disk '%s' ended; see the domain's log "
			 "'/var/log/libvirt/qemu/%s.log'", target, name);
		break;
	}
}

bool sm_blockjob_ended(struct sm_virt *v, const char *target)
{
	int status = sm_virt_job_event_status(v, target);

	return status == VIR_DOMAIN_BLOCK_JOB_FAILED || status == VIR_DOMAIN_BLOCK_JOB_CANCELED ||
	       status == VIR_DOMAIN_BLOCK_JOB_COMPLETED;
}

/* The block job on target is no longer in libvirt's view.  libvirt drops it
 * from the domain XML before its event reaches this process (on a loaded
 * host, more than a second later; QEMU's BLOCK_JOB_COMPLETED with the error
 * text comes on its own): wait up to 3 s for either, so a job that failed is
 * reported with its cause, not as gone. */
static void job_gone(struct sm_virt *v, virDomainPtr dom, const char *target)
{
	char why[256] = "";

	for (int i = 0; i < 30 && !sm_blockjob_ended(v, target) &&
	     !sm_virt_job_error(v, target, why, sizeof(why)); i++)
		sm_virt_job_event_wait(v, sm_virt_job_event_seq(v), 100);
	if (sm_blockjob_ended(v, target))
		job_ended(v, dom, target, sm_virt_job_event_status(v, target));
	else if (why[0] || sm_virt_job_error(v, target, why, sizeof(why)))
		sm_error("the block job on disk '%s' failed: QEMU says '%s'", target, why);
	else
		sm_error("the block job on disk '%s' is gone (was the domain shut down or "
			 "the job cancelled?)", target);
}

int sm_blockjob_alive(struct sm_virt *v, virDomainPtr dom, const char *target)
{
	int rc;

	/* A job that failed may still be listed, concluded, until libvirt has
	 * dismissed it: its event says first. */
	if (sm_blockjob_ended(v, target)) {
		job_ended(v, dom, target, sm_virt_job_event_status(v, target));
		return -1;
	}
	rc = sm_blockjob_running(dom, target);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		job_gone(v, dom, target);
		return -1;
	}
	return 0;
}

void sm_jobwatch_init(struct sm_jobwatch *w, double now)
{
	*w = (struct sm_jobwatch){
		.seen_at = now,
		.moved_at = now,
		.lost_after = SM_BLOCKJOB_LOST_AFTER,
		.stuck_after = SM_BLOCKJOB_STUCK_AFTER,
	};
}

enum sm_jobwatch_verdict sm_jobwatch_step(struct sm_jobwatch *w, double now, bool exists,
					  unsigned long long cur, unsigned long long end)
{
	if (!exists)
		return now - w->seen_at >= w->lost_after ? SM_JOBWATCH_LOST : SM_JOBWATCH_WAIT;
	w->seen_at = now;
	if (!w->have || cur != w->cur || end != w->end) {
		w->have = true;
		w->cur = cur;
		w->end = end;
		w->moved_at = now;
		return SM_JOBWATCH_WAIT;
	}
	return now - w->moved_at >= w->stuck_after ? SM_JOBWATCH_STUCK : SM_JOBWATCH_WAIT;
}

static void interrupted(const char *target)
{
	sm_error("interrupted while waiting for the block job on disk '%s'", target);
}

/* libvirt shows a job on target that QEMU has not had for w's bound. */
static void job_lost(virDomainPtr dom, const char *target, const struct sm_jobwatch *w)
{
	SM_AUTOFREE char *xml = virDomainGetXMLDesc(dom, 0);
	struct sm_domain_disks disks = { 0 };
	const struct sm_disk *d = NULL;
	const char *name = virDomainGetName(dom);

	if (xml && sm_chain_parse(xml, &disks) == 0)
		d = sm_domain_disks_find(&disks, target);
	if (d && d->mirror_pivoting && d->nchain > 0)
		sm_error("libvirt shows the '%s' job of disk '%s' pivoting, but QEMU has had no "
			 "block job on that disk for %.0f s: libvirtd was probably restarted during "
			 "the pivot and lost track of it, and keeps that view until the domain "
			 "stops (restarting libvirtd does not clear it); QEMU writes to '%s' if the "
			 "pivot happened, else to '%s': ask it with 'virsh qemu-monitor-command %s "
			 "--hmp info block', commit or delete neither file, and run 'snapmove "
			 "resume' for the job, which asks QEMU and says what to do",
			 d->mirror_job, target, w->lost_after,
			 d->mirror_path ? d->mirror_path : "(unknown)",
			 d->chain[0].path ? d->chain[0].path : "(unknown)", name);
	else
		sm_error("libvirt shows a '%s' job on disk '%s', but QEMU has had no block job on "
			 "that disk for %.0f s (it ended and libvirt missed it: was libvirtd "
			 "restarted?), so waiting cannot make progress; restart libvirtd so it reads "
			 "QEMU's state again, then resume the job",
			 d && d->mirror_job ? d->mirror_job : "block", target, w->lost_after);
	sm_domain_disks_release(&disks);
}

static void job_stuck(virDomainPtr dom, const char *target, const struct sm_jobwatch *w)
{
	const char *name = virDomainGetName(dom);

	sm_error("the block job on disk '%s' has made no progress for %.0f s (%llu of %llu "
		 "bytes); see 'virsh blockjob %s %s --info' and the domain's log "
		 "'/var/log/libvirt/qemu/%s.log', then resume the job", target, w->stuck_after,
		 w->cur, w->end, name, target, name);
}

int sm_blockjob_wait_done(struct sm_virt *v, virDomainPtr dom, const char *target)
{
	struct sm_jobwatch w;

	sm_jobwatch_init(&w, sm_monotonic());
	for (;;) {
		unsigned long seen = sm_virt_job_event_seq(v);
		int status = sm_virt_job_event_status(v, target);
		virDomainBlockJobInfo info;
		int rc;

		if (status == VIR_DOMAIN_BLOCK_JOB_COMPLETED)
			return 0;
		if (status == VIR_DOMAIN_BLOCK_JOB_FAILED || status == VIR_DOMAIN_BLOCK_JOB_CANCELED) {
			job_ended(v, dom, target, status);
			return -1;
		}
		if (sm_interrupted) {
			interrupted(target);
			return -1;
		}
		rc = virDomainGetBlockJobInfo(dom, target, &info, 0);
		if (rc < 0) {
			sm_virt_error("cannot read the block job of disk '%s'", target);
			return -1;
		}
		if (rc == 0)
			return 0;  /* finished before we looked */
		if (sm_jobwatch_step(&w, sm_monotonic(), true, info.cur, info.end) ==
		    SM_JOBWATCH_STUCK) {
			job_stuck(dom, target, &w);
			return -1;
		}
		sm_virt_job_event_wait(v, seen, 500);
	}
}

/* What the live XML says of target's job: 1 ready, 0 not yet, -1 no job. */
static int xml_mirror_ready(virDomainPtr dom, const char *target)
{
	SM_AUTOFREE char *xml = sm_virt_domain_xml(dom, false);
	struct sm_domain_disks disks;
	const struct sm_disk *disk;
	int ret;

	if (!xml || sm_chain_parse(xml, &disks) < 0)
		return -2;
	disk = sm_domain_disks_find(&disks, target);
	ret = !disk || !disk->mirror_job ? -1 : disk->mirror_ready ? 1 : 0;
	sm_domain_disks_release(&disks);
	return ret;
}

int sm_blockjob_wait_ready(struct sm_virt *v, virDomainPtr dom, const char *const *targets,
			   size_t n, sm_blockjob_progress_fn progress, void *ctx)
{
	bool *ready = sm_xcalloc(n, sizeof(*ready));
	struct sm_jobwatch *watch = sm_xcalloc(n, sizeof(*watch));
	size_t nready = 0;
	int ret = -1;

	for (size_t i = 0; i < n; i++)
		sm_jobwatch_init(&watch[i], sm_monotonic());
	while (nready < n) {
		unsigned long seen = sm_virt_job_event_seq(v);

		for (size_t i = 0; i < n; i++) {
			int status, xr, rc;
			virDomainBlockJobInfo info;

			if (ready[i])
				continue;
			if (sm_interrupted) {
				interrupted(targets[i]);
				goto cleanup;
			}
			status = sm_virt_job_event_status(v, targets[i]);
			if (status == VIR_DOMAIN_BLOCK_JOB_READY) {
				/* An old event outlives a job lost since (domain destroyed,
				 * libvirtd restarted): the job must still be there. */
				rc = sm_blockjob_running(dom, targets[i]);
				if (rc < 0)
					goto cleanup;
				if (rc == 0) {
					job_gone(v, dom, targets[i]);
					goto cleanup;
				}
				ready[i] = true;
				nready++;
				continue;
			}
			if (status >= 0) {
				job_ended(v, dom, targets[i], status);
				goto cleanup;
			}
			xr = xml_mirror_ready(dom, targets[i]);
			if (xr == -2)
				goto cleanup;
			if (xr == 1) {
				ready[i] = true;
				nready++;
				continue;
			}
			if (xr == -1) {
				job_gone(v, dom, targets[i]);
				goto cleanup;
			}
			/* The XML shows a job that is not ready: QEMU must run it,
			 * and it must move. */
			rc = virDomainGetBlockJobInfo(dom, targets[i], &info, 0);
			if (rc < 0) {
				sm_virt_error("cannot read the block job of disk '%s'", targets[i]);
				goto cleanup;
			}
			switch (sm_jobwatch_step(&watch[i], sm_monotonic(), rc == 1,
						 rc == 1 ? info.cur : 0, rc == 1 ? info.end : 0)) {
			case SM_JOBWATCH_WAIT:
				break;
			case SM_JOBWATCH_LOST:
				job_lost(dom, targets[i], &watch[i]);
				goto cleanup;
			case SM_JOBWATCH_STUCK:
				job_stuck(dom, targets[i], &watch[i]);
				goto cleanup;
			}
			if (progress && rc == 1 && !progress(ctx, targets[i], info.cur, info.end)) {
				sm_error("interrupted while waiting for the block job on disk '%s'",
					 targets[i]);
				goto cleanup;
			}
		}
		if (nready < n)
			sm_virt_job_event_wait(v, seen, 500);
	}
	ret = 0;

cleanup:
	free(ready);
	free(watch);
	return ret;
}

static char *active_path(virDomainPtr dom, const char *target)
{
	SM_AUTOFREE char *xml = sm_virt_domain_xml(dom, false);
	struct sm_domain_disks disks;
	const struct sm_disk *disk;
	char *path = NULL;

	if (!xml || sm_chain_parse(xml, &disks) < 0)
		return NULL;
	disk = sm_domain_disks_find(&disks, target);
	if (disk && disk->nchain > 0)
		path = sm_xstrdup_or_null(disk->chain[0].path);
	sm_domain_disks_release(&disks);
	return path;
}

int sm_blockjob_pivot(virDomainPtr dom, const char *target, const char *expect_path)
{
	SM_AUTOFREE char *now = NULL;

	if (virDomainBlockJobAbort(dom, target, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
		sm_virt_error("cannot pivot disk '%s' to '%s'", target, expect_path);
		return -1;
	}
	now = active_path(dom, target);
	if (!sm_str_eq(now, expect_path)) {
		sm_error("after the pivot disk '%s' runs on '%s', not on '%s'", target,
			 now ? now : "(unknown)", expect_path);
		return -1;
	}
	return 0;
}

int sm_blockjob_cancel(virDomainPtr dom, const char *target)
{
	if (virDomainBlockJobAbort(dom, target, 0) < 0) {
		SM_AUTOFREE char *why = sm_virt_last_error_dup();

		sm_error("cannot cancel the block job on disk '%s': %s; stop it with 'virsh "
			 "blockjob %s %s --abort'", target, why, virDomainGetName(dom), target);
		return -1;
	}
	return 0;
}

int sm_blockjob_running(virDomainPtr dom, const char *target)
{
	virDomainBlockJobInfo info;
	int rc = virDomainGetBlockJobInfo(dom, target, &info, 0);

	if (rc < 0)
		sm_virt_error("cannot read the block job of disk '%s'", target);
	return rc;
}
