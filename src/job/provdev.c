/* provdev.c: a move's destination devices made by a provisioner; see
 * provdev.h.  It decides which device a disk asks for and when the job's
 * devices are made and removed; provision.c runs the program, destdev.c
 * checks a device as a destination.
 */
#include "job/provdev.h"
#include "chain/image.h"
#include "chain/usage.h"
#include "events.h"
#include "job/destdev.h"
#include "job/job_run.h"
#include "provision.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

void sm_provdevs_free(struct sm_provdev *d, size_t n)
{
	(void)n;  /* nothing inside to release yet */
	free(d);
}

int sm_provdev_plan(const struct sm_disk *d, const struct sm_plan_disk *p,
		    struct sm_provdev *out)
{
	const struct sm_plan_image *img = &p->images[0];
	unsigned long long need = img->virtual_size;

	memset(out, 0, sizeof(*out));
	if (p->nimages != 1 || img->dst_backing || (p->kept && !p->flat)) {
		sm_error("disk '%s' has a backing chain and a device takes one image; add "
			 "--flatten (the whole chain goes into the device) or leave "
			 "--dest-provisioner out", p->target);
		return -1;
	}
	if (sm_str_eq(img->dst_format, "qcow2") &&
	    sm_image_measure(d->chain, d->nchain, "qcow2", &need) < 0)
		return -1;
	if (need == 0) {
		sm_error("disk '%s' has no size; a device cannot be made for it", p->target);
		return -1;
	}
	out->bytes = need;
	out->exact = sm_str_eq(img->dst_format, "raw");
	return 0;
}

char *sm_provdev_name(long long job, const char *target)
{
	char *name = sm_xasprintf("snapmove-%lld-%.40s", job, target);

	for (char *s = name; *s; s++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *s))
			*s = '_';
	return name;
}

int sm_provdev_journal(struct sm_journal *j, long long job, const char *provisioner,
		       const char *settings, const struct sm_plan_disk *p, struct sm_provdev *d)
{
	SM_AUTOFREE char *name = sm_provdev_name(job, p->target);
	struct sm_device_row row = {
		.job = job,
		.provisioner = (char *)provisioner,
		.settings = (char *)settings,
		.name = name,
		.bytes = d->bytes,
	};

	if (!d->bytes)
		return 0;
	/* The image's planned file name in the folder is no file of the job. */
	return sm_journal_device_insert_for_image(j, &row, p->images[0].dst, &d->device);
}

/* The domain (in u) that has the device rdev as a disk, or NULL. */
static const char *device_user(const struct sm_usage *u, unsigned long long rdev)
{
	for (size_t i = 0; i < u->n; i++) {
		struct stat sb;

		if (u->uses[i].path && stat(u->uses[i].path, &sb) == 0 && S_ISBLK(sb.st_mode) &&
		    (unsigned long long)sb.st_rdev == rdev)
			return u->uses[i].user;
	}
	return NULL;
}

/* Say why a device stays, on the terminal and in the events. */
static void warn(struct sm_progress *pr, long long job, const char *why)
{
	if (pr)
		sm_progress_say(pr, "warning: %s", why);
	else
		fprintf(stderr, "snapmove: warning: %s\n", why);
	sm_event_warning(job, NULL, why);
}

/* One device of the job, as abort and cleanup remove it. */
static int remove_one(struct sm_journal *j, long long job, const struct sm_device_row *d,
		      const struct sm_usage *u)
{
	struct sm_device_row again = { 0 };
	unsigned long long rdev = d->rdev;
	const char *path = d->path;
	const char *user;
	long long id = d->id;
	int ret = -1;

	switch (d->state) {
	case SM_DEVICE_REMOVED:
	case SM_DEVICE_FAILED:  /* whatever it made is the provisioner's to undo */
		return 0;
	case SM_DEVICE_CREATING:
		/* Stopped in create, or before (the run's row is written after
		 * it ends): asked again, create hands back the device it made,
		 * or makes it, and then it goes. */
		if (sm_provision_create(j, job, d->provisioner, d->settings, d->name, d->bytes, 0,
					&again) != SM_PROVISION_DONE)
			return -1;
		rdev = again.rdev;
		path = again.path;
		break;
	case SM_DEVICE_CREATED:
	case SM_DEVICE_REMOVING:
		break;
	case SM_DEVICE_STATE_LAST:  /* a checked row never holds it */
		sm_error("device %lld has no state", id);
		return -1;
	}
	if (rdev && (user = device_user(u, rdev))) {
		sm_error("device %lld ('%s') of job %lld is in use by %s; it is kept: remove it "
			 "with 'snapmove cleanup %lld' once nothing uses it", id, path, job, user,
			 job);
		goto cleanup;
	}
	if (sm_provision_remove(j, job, id, 0) == SM_PROVISION_DONE)
		ret = 0;

cleanup:
	sm_device_row_release(&again);
	return ret;
}

int sm_provdev_remove(struct sm_virt *v, struct sm_journal *j, long long job,
		      bool keep_assigned, struct sm_progress *pr)
{
	struct sm_device_row *rows = NULL;
	struct sm_usage u = { 0 };
	size_t n = 0;
	int ret = 0;

	if (sm_journal_device_list_job(j, job, &rows, &n) < 0)
		return -1;
	if (n && sm_usage_scan_domains(sm_virt_conn(v), &u) < 0) {
		sm_device_rows_free(rows, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		bool assigned = false;

		if (keep_assigned && (sm_journal_device_assigned(j, rows[i].id, &assigned) < 0 ||
				      assigned))
			continue;
		if (remove_one(j, job, &rows[i], &u) < 0) {
			SM_AUTOFREE char *why = sm_xasprintf(
				"device %lld ('%s') of job %lld was not removed: %s", rows[i].id,
				rows[i].path ? rows[i].path : rows[i].name, job, sm_error_message());

			warn(pr, job, why);
			ret = -1;
		} else if (rows[i].state != SM_DEVICE_REMOVED && rows[i].state != SM_DEVICE_FAILED &&
			   pr) {
			sm_progress_say(pr, "removed device %lld ('%s') of job %lld", rows[i].id,
					rows[i].path ? rows[i].path : rows[i].name, job);
		}
	}
	sm_usage_release(&u);
	sm_device_rows_free(rows, n);
	return ret;
}

/* The plan of d's device: the job's row d->device, created; checked as a
 * --dest-dev device of disk i; the image journaled onto it. */
static int make_one(struct sm_jobctx *c, size_t i, const struct sm_provdev *d,
		    const struct sm_usage *u)
{
	struct sm_plan_image *img = &c->plans[i].images[0];
	struct sm_device_row row, made = { 0 };
	int ret = -1;

	if (sm_journal_device_get(c->j, d->device, &row) != 1)
		return -1;
	sm_progress_say(c->pr, "job %lld: asking '%s' for a device of %llu bytes for disk '%s'",
			c->job, row.provisioner, d->bytes, c->plans[i].target);
	if (sm_provision_create(c->j, c->job, row.provisioner, row.settings, row.name, d->bytes,
				0, &made) != SM_PROVISION_DONE)
		goto cleanup;
	if (sm_destdev_check(made.path, made.rdev, d->bytes, d->exact, u,
			     c->plans[i].target) < 0) {
		SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

		sm_error("provisioner '%s' made '%s' for disk '%s', which cannot take it: %s",
			 row.provisioner, made.path, c->plans[i].target, why);
		goto cleanup;
	}
	if (sm_journal_device_assign(c->j, c->job, c->plans[i].target, img->dst, made.path,
				     made.rdev) < 0)
		goto cleanup;
	free(img->dst);
	img->dst = sm_xstrdup(made.path);
	img->dst_rdev = made.rdev;
	sm_progress_say(c->pr, "job %lld: disk '%s' goes onto '%s' (device %lld, %u:%u)", c->job,
			c->plans[i].target, made.path, made.id, major((dev_t)made.rdev),
			minor((dev_t)made.rdev));
	ret = 0;

cleanup:
	sm_device_row_release(&made);
	sm_device_row_release(&row);
	return ret;
}

int sm_provdev_create(struct sm_jobctx *c, const struct sm_provdev *d)
{
	struct sm_usage u = { 0 };
	int ret = -1;

	if (sm_usage_scan_domains(sm_virt_conn(c->v), &u) < 0)
		return -1;
	for (size_t i = 0; i < c->nplans; i++) {
		if (d[i].bytes && make_one(c, i, &d[i], &u) < 0) {
			char *err = sm_error_preserve();

			/* The devices not asked for yet never will be. */
			for (size_t k = i + 1; k < c->nplans; k++)
				if (d[k].bytes)
					sm_ignore_value(sm_journal_device_update(
						c->j, d[k].device, SM_DEVICE_FAILED, NULL, 0, 0, 0,
						"not made: the move stopped at an earlier device"));
			sm_error_restore(&err);
			goto cleanup;
		}
	}
	ret = 0;

cleanup:
	sm_usage_release(&u);
	if (ret < 0) {
		char *err = sm_error_preserve();

		/* What was made goes again; what could not is warned. */
		sm_ignore_value(sm_provdev_remove(c->v, c->j, c->job, false, c->pr));
		sm_error_restore(&err);
	}
	return ret;
}

int sm_provdev_check_assigned(struct sm_journal *j, long long job)
{
	unsigned long long n = 0;

	if (sm_journal_device_unassigned(j, job, &n) < 0)
		return -1;
	if (n) {
		sm_error("job %lld stopped while its provisioner was making its destination "
			 "devices, before anything else changed; undo it with 'snapmove abort "
			 "%lld' (it removes them) and move again", job, job);
		return -1;
	}
	return 0;
}
