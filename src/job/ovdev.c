/* ovdev.c: a move's overlays on block devices a provisioner makes for it
 * (move --overlay-provisioner): the two devices of each disk asked for and
 * journaled as the job's before the run, a qcow2 overlay written on one,
 * the device checked again before each use, and removed through its
 * provisioner once no disk runs on it.  Growing them while the guest
 * writes is grow.c's; running a provisioner is provision.c's.
 */
#include "job/internal.h"
#include "chain/image.h"
#include "events.h"
#include "provision.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* The device of the job with journal id id: 1 (d filled), 0 none, -1. */
static int device_row(struct sm_jobctx *c, long long id, struct sm_device_row *d)
{
	int rc = sm_journal_device_get(c->j, id, d);

	if (rc <= 0)
		return rc == 0 ? 0 : -1;
	if (d->job != c->job) {
		sm_device_row_release(d);
		return 0;
	}
	return 1;
}

long long sm_job_ovdev_of(const struct sm_jobctx *c, const char *path)
{
	for (size_t i = 0; path && i < c->nplans; i++) {
		if (c->disks[i].src_dev && sm_str_eq(c->plans[i].src_overlay, path))
			return c->disks[i].src_dev;
		if (c->disks[i].dst_dev && sm_str_eq(c->plans[i].dst_overlay, path))
			return c->disks[i].dst_dev;
	}
	return 0;
}

/* The name of disk i's "src" or "dst" overlay device. */
static char *device_name(const struct sm_jobctx *c, size_t i, const char *which)
{
	return sm_xasprintf("snapmove-%lld-%s-%s", c->job, c->plans[i].target, which);
}

/* Make one device of disk i ("src" or "dst"): its path and id. */
static int make_one(struct sm_jobctx *c, size_t i, const char *provisioner, const char *settings,
		    const char *which, char **path, long long *id)
{
	SM_AUTOFREE char *name = device_name(c, i, which);
	struct sm_device_row d;

	if (sm_provision_create(c->j, c->job, provisioner, settings, name, c->overlay_chunk, 0,
				&d) != SM_PROVISION_DONE) {
		char *err = sm_error_preserve();

		sm_error("cannot make the %s overlay device of disk '%s': %s",
			 sm_str_eq(which, "src") ? "source" : "destination", c->plans[i].target, err);
		free(err);
		return -1;
	}
	*path = sm_steal(&d.path);
	*id = d.id;
	sm_device_row_release(&d);
	return 0;
}

int sm_job_ovdev_provision(struct sm_jobctx *c, const char *provisioner, const char *settings)
{
	char b[32];

	for (size_t i = 0; i < c->nplans; i++) {
		struct sm_plan_disk *p = &c->plans[i];
		SM_AUTOFREE char *src = NULL;
		SM_AUTOFREE char *dst = NULL;

		if (make_one(c, i, provisioner, settings, "src", &src, &c->disks[i].src_dev) < 0 ||
		    make_one(c, i, provisioner, settings, "dst", &dst, &c->disks[i].dst_dev) < 0 ||
		    sm_journal_disk_set_overlays(c->j, c->job, p->target, src, dst) < 0) {
			char *err = sm_error_preserve();

			/* Names first: remove_all goes by the disks' paths. */
			if (src) {
				free(p->src_overlay);
				p->src_overlay = sm_steal(&src);
			}
			if (dst) {
				free(p->dst_overlay);
				p->dst_overlay = sm_steal(&dst);
			}
			if (sm_job_ovdev_remove_all(c) < 0)
				sm_progress_say(c->pr, "warning: %s", sm_error_message());
			sm_error_restore(&err);
			return -1;
		}
		free(p->src_overlay);
		free(p->dst_overlay);
		p->src_overlay = sm_steal(&src);
		p->dst_overlay = sm_steal(&dst);
		sm_progress_say(c->pr, "  disk '%s': overlays on '%s' and '%s' (%s each, grown as "
				"the guest writes)", p->target, p->src_overlay, p->dst_overlay,
				sm_format_bytes(c->overlay_chunk, b, sizeof(b)));
	}
	return 0;
}

int sm_job_ovdev_load(struct sm_jobctx *c)
{
	struct sm_device_row *rows = NULL;
	size_t n = 0;

	if (!c->overlay_chunk)
		return 0;
	if (sm_journal_device_list(c->j, &rows, &n) < 0)
		return -1;
	/* By the names the job gave them (newest first: a create asked again
	 * keeps its row): a row whose path was changed since still maps to its
	 * disk, and the provisioner's checks refuse to act on another device. */
	for (size_t r = 0; r < n; r++) {
		if (rows[r].job != c->job)
			continue;
		for (size_t i = 0; i < c->nplans; i++) {
			SM_AUTOFREE char *src = device_name(c, i, "src");
			SM_AUTOFREE char *dst = device_name(c, i, "dst");

			if (sm_str_eq(rows[r].name, src) && !c->disks[i].src_dev)
				c->disks[i].src_dev = rows[r].id;
			if (sm_str_eq(rows[r].name, dst) && !c->disks[i].dst_dev)
				c->disks[i].dst_dev = rows[r].id;
		}
	}
	sm_device_rows_free(rows, n);
	return 0;
}

int sm_job_ovdev_check(struct sm_jobctx *c, const char *path)
{
	long long id = sm_job_ovdev_of(c, path);
	struct sm_device_row d;
	unsigned long long rdev, size;
	int rc;

	if (!id || (rc = device_row(c, id, &d)) <= 0) {
		if (id && rc == 0)
			sm_error("'%s' is not a device job %lld provisioned", path, c->job);
		return -1;
	}
	if (d.state != SM_DEVICE_CREATED) {
		sm_error("overlay device '%s' of job %lld is %s in the journal, not created; see "
			 "'snapmove provision list'", path, c->job, sm_device_state_name(d.state));
		sm_device_row_release(&d);
		return -1;
	}
	/* The disk's row and the device's row name one device. */
	if (!sm_str_eq(d.path, path)) {
		sm_error("overlay '%s' of job %lld is not where its device %lld is journaled ('%s'); "
			 "the journal was changed: see 'snapmove provision list'", path, c->job, id,
			 d.path ? d.path : "none");
		sm_device_row_release(&d);
		return -1;
	}
	rc = sm_provision_check_device(d.provisioner, d.path, 0, d.rdev, &rdev, &size, NULL);
	sm_device_row_release(&d);
	return rc;
}

/* Whether a disk of the running domain has path in its chain: 1 (error set
 * saying which), 0 no, -1 libvirt cannot say. */
static int in_live_chain(struct sm_jobctx *c, const char *path)
{
	struct sm_domain_disks now = { 0 };
	SM_AUTOFREE char *xml = NULL;
	int rc = 0;

	if (!c->dom || virDomainIsActive(c->dom) != 1)
		return 0;
	xml = sm_virt_domain_xml(c->dom, false);
	if (!xml || sm_chain_parse(xml, &now) < 0)
		return -1;
	for (size_t d = 0; d < now.ndisks && !rc; d++)
		for (size_t k = 0; k < now.disks[d].nchain && !rc; k++)
			if (sm_str_eq(now.disks[d].chain[k].path, path)) {
				sm_error("disk '%s' of domain '%s' runs on it", now.disks[d].target,
					 c->domain_name);
				rc = 1;
			}
	sm_domain_disks_release(&now);
	return rc;
}

int sm_job_ovdev_format(struct sm_jobctx *c, const char *path, enum sm_file_role role,
			const char *backing, const char *backing_format, unsigned long long size)
{
	int rc;

	if (sm_job_ovdev_check(c, path) < 0)
		return -1;
	rc = in_live_chain(c, path);
	if (rc != 0) {
		if (rc > 0) {
			char *err = sm_error_preserve();

			sm_error("cannot write a new overlay on device '%s': %s; see 'snapmove chain "
				 "%s'", path, err, c->domain_name);
			free(err);
		}
		return -1;
	}
	if (sm_job_file(c, path, role, SM_FILE_CREATING) < 0 ||
	    sm_image_format_overlay_device(path, size, backing, backing_format) < 0)
		return -1;
	return sm_job_file(c, path, role, SM_FILE_CREATED);
}

/* A device kept: said, and journaled so. */
static int kept(struct sm_jobctx *c, const char *path, enum sm_file_role role,
		const char *target)
{
	SM_AUTOFREE char *why = sm_xasprintf("kept overlay device %s: %s", path,
					     sm_error_message());

	sm_progress_say(c->pr, "  warning: %s", why);
	sm_event_warning(c->job, target, why);
	sm_error_clear();
	return sm_job_file(c, path, role, SM_FILE_KEPT) < 0 ? -1 : 1;
}

static const char *target_of_dev(const struct sm_jobctx *c, long long id)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (c->disks[i].src_dev == id || c->disks[i].dst_dev == id)
			return c->plans[i].target;
	return NULL;
}

int sm_job_ovdev_remove(struct sm_jobctx *c, const char *path, enum sm_file_role role)
{
	long long id = sm_job_ovdev_of(c, path);
	const char *target = target_of_dev(c, id);
	struct sm_device_row d;
	enum sm_device_state state;
	int rc;

	rc = device_row(c, id, &d);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		sm_error("it is not a device job %lld provisioned", c->job);
		return kept(c, path, role, target);
	}
	state = d.state;
	sm_device_row_release(&d);
	if (state == SM_DEVICE_REMOVED)
		return 0;
	rc = in_live_chain(c, path);
	if (rc < 0)
		return -1;
	if (rc > 0)
		return kept(c, path, role, target);
	sm_job_grow_forget(c, id);
	if (sm_provision_remove(c->j, c->job, id, 0) != SM_PROVISION_DONE)
		return kept(c, path, role, target);
	return sm_job_file(c, path, role, SM_FILE_REMOVED);
}

static enum sm_file_role role_of(const struct sm_jobctx *c, const char *path)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (sm_str_eq(c->plans[i].src_overlay, path))
			return SM_FILE_SRC_OVERLAY;
	return SM_FILE_DST_OVERLAY;
}

int sm_job_ovdev_remove_all(struct sm_jobctx *c)
{
	struct sm_device_row *rows = NULL;
	size_t n = 0;
	int ret = 0;

	if (sm_journal_device_list(c->j, &rows, &n) < 0)
		return -1;
	for (size_t r = 0; r < n; r++) {
		enum sm_provision_result pr;

		if (rows[r].job != c->job ||
		    (rows[r].state != SM_DEVICE_CREATED && rows[r].state != SM_DEVICE_REMOVING))
			continue;
		if (rows[r].path) {
			int used = in_live_chain(c, rows[r].path);

			if (used != 0) {
				if (used > 0)
					sm_progress_say(c->pr, "  warning: kept overlay device %s: %s",
							rows[r].path, sm_error_message());
				ret = -1;
				continue;
			}
		}
		sm_job_grow_forget(c, rows[r].id);
		pr = sm_provision_remove(c->j, c->job, rows[r].id, 0);
		if (pr != SM_PROVISION_DONE) {
			sm_progress_say(c->pr, "  warning: device %lld (%s) stays: %s", rows[r].id,
					rows[r].path ? rows[r].path : rows[r].name, sm_error_message());
			ret = -1;
			continue;
		}
		if (rows[r].path && sm_job_ovdev_of(c, rows[r].path))
			sm_ignore_value(sm_journal_file_put(c->j, c->job, rows[r].path,
							    role_of(c, rows[r].path),
							    SM_FILE_REMOVED));
	}
	sm_device_rows_free(rows, n);
	if (ret < 0)
		sm_error("some overlay devices of job %lld stay (see above); 'snapmove provision "
			 "list' shows them", c->job);
	return ret;
}
