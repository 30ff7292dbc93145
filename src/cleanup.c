/* cleanup.c: delete the source images of a done job that nothing uses (and
 * the devices a finished job's provisioners made that hold no disk), and
 * forget finished jobs.  Only files the job journaled as its source chain
 * (src/srcfile.c), never a file another domain or image refers to; a source
 * block device only through the provisioner that made it (src/provision.c).
 */
#include "cleanup.h"
#include "chain/imagelock.h"
#include "chain/usage.h"
#include "job/provdev.h"
#include "lock.h"
#include "pool.h"
#include "provision.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void sm_cleanup_items_free(struct sm_cleanup_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		free(items[i].path);
		free(items[i].blocker);
		sm_srcfile_release(&items[i].file);
	}
	free(items);
}

struct candidates {
	struct sm_cleanup_item *items;
	size_t n;
};

/* A user that is itself a candidate going away does not block. */
static int is_candidate(const char *user, void *ctx)
{
	struct candidates *c = ctx;

	for (size_t i = 0; i < c->n; i++) {
		SM_AUTOFREE char *img = sm_xasprintf("image '%s'", c->items[i].path);

		if (!c->items[i].blocker && sm_str_eq(user, img))
			return 1;
	}
	return 0;
}

static int job_done(struct sm_journal *j, long long job_id)
{
	struct sm_job_row job;
	int rc = sm_journal_job_get(j, job_id, &job), ret = -1;

	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc <= 0)
		return -1;
	if (sm_job_row_state(&job) == SM_JOB_ABORTED)
		sm_error("job %lld is aborted: only the source of a finished move can be "
			 "deleted, and an aborted job's source is its domain's disks again",
			 job_id);
	else if (sm_job_row_state(&job) != SM_JOB_DONE)
		sm_error("job %lld is %s: only the source of a finished move can be deleted; "
			 "finish the move first with 'snapmove resume %lld'", job_id, job.state,
			 job_id);
	else
		ret = sm_journal_job_check(j, job_id) < 0 ? -1 : 0;
	sm_job_row_release(&job);
	return ret;
}

/* The state of job_id, its rows checked. */
static int job_state(struct sm_journal *j, long long job_id, enum sm_job_state *state)
{
	struct sm_job_row job;
	int rc = sm_journal_job_get(j, job_id, &job);

	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc <= 0)
		return -1;
	*state = sm_job_row_state(&job);
	sm_job_row_release(&job);
	return sm_journal_job_check(j, job_id) < 0 ? -1 : 0;
}

void sm_cleanup_block(struct sm_cleanup_item *items, size_t n, const struct sm_usage *u)
{
	struct candidates c = { .items = items, .n = n };
	bool changed = true;

	/* Until nothing changes: an image is blocked when a user other than a
	 * candidate still going away uses it.  Users only ever block. */
	while (changed) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			const char *user;

			if (items[i].blocker)
				continue;
			user = sm_usage_other_user(u, items[i].path, is_candidate, &c);
			if (user) {
				items[i].blocker = sm_xstrdup(user);
				changed = true;
			}
		}
	}
}

/* Every disk of the job was a single image on a block device, which is
 * never journaled as a source file (never deleted): nothing to delete. */
static bool only_devices(struct sm_journal *j, long long job_id)
{
	struct sm_disk_row *rows = NULL;
	size_t n = 0;
	bool all = true;
	struct stat sb;

	if (sm_journal_disk_list(j, job_id, &rows, &n) < 0) {
		sm_error_clear();
		return false;
	}
	for (size_t i = 0; i < n && all; i++)
		all = rows[i].plan.nimages == 1 && lstat(rows[i].plan.images[0].src, &sb) == 0 &&
		      S_ISBLK(sb.st_mode);
	sm_disk_rows_free(rows, n);
	return all && n > 0;
}

/* The job's journaled source images; a job journaled before snapmove
 * recorded them (schema 010) has none and is refused. */
static int source_images(struct sm_journal *j, long long job_id, struct sm_srcfile **files,
			 size_t *n)
{
	if (sm_srcfile_list(j, job_id, SM_SRCFILE_IMAGE, files, n) < 0)
		return -1;
	if (*n == 0 && !only_devices(j, job_id)) {
		sm_error("job %lld did not journal which files its source chain was made of (an "
			 "older snapmove ran it), so snapmove deletes none; check with 'snapmove "
			 "status %lld' and delete them by hand", job_id, job_id);
		return -1;
	}
	return 0;
}

/* The job's source overlay still there (kept: something held it) stands
 * on the old active image; it may be outside the source folders (in the
 * destination, or --overlay-dir), so its folder is read too, and the image
 * under it is used. */
static int scan_kept_overlays(struct sm_journal *j, long long job_id, struct sm_usage *usage)
{
	struct sm_srcfile *ovs = NULL;
	size_t n = 0;
	int ret = -1;

	if (sm_srcfile_list(j, job_id, sm_file_role_name(SM_FILE_SRC_OVERLAY), &ovs, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		SM_AUTOFREE char *dir = sm_path_dirname(ovs[i].path);
		struct stat sb;

		if (lstat(ovs[i].path, &sb) == 0 && sm_usage_scan_dir(dir, usage) < 0)
			goto cleanup;
	}
	ret = 0;

cleanup:
	sm_srcfiles_free(ovs, n);
	return ret;
}

int sm_cleanup_plan(struct sm_virt *v, struct sm_journal *j, long long job_id,
		    struct sm_cleanup_item **items, size_t *n)
{
	struct sm_srcfile *files = NULL;
	struct sm_usage usage = { 0 };
	struct sm_cleanup_item *c = NULL;
	size_t nf = 0, nc = 0;
	int ret = -1;

	*items = NULL;
	*n = 0;
	if (job_done(j, job_id) < 0 || source_images(j, job_id, &files, &nf) < 0 ||
	    sm_usage_scan_domains(sm_virt_conn(v), &usage) < 0)
		goto cleanup;
	c = sm_xcalloc(nf + 1, sizeof(*c));
	for (size_t i = 0; i < nf; i++) {
		SM_AUTOFREE char *dir = sm_path_dirname(files[i].path);
		struct stat sb;

		/* Only these files can be deleted: the journal's, never a file an
		 * image header names. */
		if (lstat(files[i].path, &sb) < 0)
			continue;  /* deleted already */
		c[nc] = (struct sm_cleanup_item){
			.path = sm_xstrdup(files[i].path),
			.bytes = (unsigned long long)sb.st_blocks * 512ULL,
			.file = files[i],
		};
		memset(&files[i], 0, sizeof(files[i]));
		nc++;
		if (sm_usage_scan_dir(dir, &usage) < 0)
			goto cleanup;
	}
	if (scan_kept_overlays(j, job_id, &usage) < 0)
		goto cleanup;
	sm_cleanup_block(c, nc, &usage);
	*items = sm_steal(&c);
	*n = nc;
	ret = 0;

cleanup:
	sm_cleanup_items_free(c, nc);
	sm_srcfiles_free(files, nf);
	sm_usage_release(&usage);
	return ret;
}

char *sm_cleanup_device_blocker(struct sm_journal *j, const char *path,
				const struct sm_usage *u, long long *id)
{
	struct sm_device_row d = { 0 };
	struct stat sb;
	bool locked = false;
	char *why = NULL;

	*id = 0;
	if (sm_journal_device_find(j, NULL, path, id) < 0)
		return sm_xstrdup(sm_error_message());
	if (*id == 0 || sm_journal_device_get(j, *id, &d) != 1)
		return sm_xasprintf("no provisioner of this journal made it ('snapmove provision "
				    "create'), and snapmove removes only the devices its "
				    "provisioners made; free it yourself once nothing needs it");
	if (lstat(path, &sb) < 0 || !S_ISBLK(sb.st_mode) ||
	    (unsigned long long)sb.st_rdev != d.rdev) {
		why = sm_xasprintf("it is no longer the device %u:%u its provisioner made "
				   "(device %lld in 'snapmove provision list')",
				   major((dev_t)d.rdev), minor((dev_t)d.rdev), *id);
		goto cleanup;
	}
	if (d.job) {
		struct sm_job_row owner;
		int rc = sm_journal_job_get(j, d.job, &owner);

		if (rc <= 0 || sm_job_row_state(&owner) != SM_JOB_DONE)
			why = sm_xasprintf("job %lld made it and is not done; that job's abort "
					   "removes it", d.job);
		if (rc > 0)
			sm_job_row_release(&owner);
		if (rc < 0)
			sm_error_clear();
		if (why)
			goto cleanup;
	}
	for (size_t i = 0; i < u->n; i++) {
		struct stat ub;

		if (sm_str_eq(u->uses[i].path, path) ||
		    (stat(u->uses[i].path, &ub) == 0 && S_ISBLK(ub.st_mode) &&
		     ub.st_rdev == sb.st_rdev)) {
			why = sm_xasprintf("used by %s", u->uses[i].user);
			goto cleanup;
		}
	}
	if (sm_imagelock_probe(path, &locked) < 0) {
		why = sm_xstrdup(sm_error_message());
		sm_error_clear();
	} else if (locked) {
		SM_AUTOFREE char *who = sm_imagelock_holders(path);

		why = sm_xasprintf("open in %s", who ? who : "a process this user cannot see");
	}

cleanup:
	sm_device_row_release(&d);
	return why;
}

/* The job's source block devices (a disk that was a single image on a
 * device): each removed through its provisioner when
 * sm_cleanup_device_blocker lets it go, else kept with a line saying why.  Never an error of the job. */
static int cleanup_devices(struct sm_virt *v, struct sm_journal *j, long long job_id,
			   struct sm_progress *pr, unsigned long long *freed)
{
	struct sm_disk_row *rows = NULL;
	struct sm_usage usage = { 0 };
	size_t n = 0;
	int ret = -1;

	if (sm_journal_disk_list(j, job_id, &rows, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *path = rows[i].plan.nimages ? rows[i].plan.images[0].src : NULL;
		SM_AUTOFREE char *why = NULL;
		struct sm_device_row d = { 0 };
		struct stat sb;
		long long id;
		char b[32];

		if (!path || lstat(path, &sb) < 0 || !S_ISBLK(sb.st_mode) ||
		    sm_disk_row_state(&rows[i]) != SM_DISK_DONE)
			continue;
		if (!usage.uses && sm_usage_scan_domains(sm_virt_conn(v), &usage) < 0)
			goto cleanup;
		why = sm_cleanup_device_blocker(j, path, &usage, &id);
		if (why) {
			sm_progress_say(pr, "  kept device %s: %s", path, why);
			continue;
		}
		if (sm_journal_device_get(j, id, &d) != 1) {
			sm_progress_say(pr, "  kept device %s: %s", path, sm_error_message());
			sm_error_clear();
			continue;
		}
		if (sm_provision_remove(j, d.job, id, SM_PROVISION_TIMEOUT) != SM_PROVISION_DONE) {
			sm_progress_say(pr, "  kept device %s: its provisioner did not remove it: %s; "
					"see 'snapmove provision list'", path, sm_error_message());
			sm_error_clear();
		} else {
			*freed += d.size;
			sm_progress_say(pr, "  removed device %s (%s) through its provisioner '%s'",
					path, sm_format_bytes(d.size, b, sizeof(b)), d.provisioner);
		}
		sm_device_row_release(&d);
	}
	ret = 0;

cleanup:
	sm_usage_release(&usage);
	sm_disk_rows_free(rows, n);
	return ret;
}

int sm_cleanup_run(struct sm_virt *v, struct sm_journal *j, long long job_id,
		   struct sm_progress *pr, unsigned long long *freed)
{
	struct sm_cleanup_item *items = NULL;
	size_t n = 0;
	char **dirs = NULL;
	size_t ndirs = 0;
	char b[32];
	enum sm_job_state state;
	int ret = -1;

	*freed = 0;
	/* The devices the job's provisioner made: an aborted job's all (abort
	 * could not remove one), a done job's those that hold no disk. */
	if (job_state(j, job_id, &state) < 0)
		return -1;
	if (state == SM_JOB_ABORTED || state == SM_JOB_DONE) {
		if (sm_provdev_remove(v, j, job_id, state == SM_JOB_DONE, pr) < 0)
			return -1;
		if (state == SM_JOB_ABORTED)
			return 0;
	}
	if (sm_cleanup_plan(v, j, job_id, &items, &n) < 0)
		return -1;
	dirs = sm_xcalloc(n + 1, sizeof(*dirs));
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (items[i].blocker) {
			sm_progress_say(pr, "  kept %s: used by %s", items[i].path, items[i].blocker);
			continue;
		}
		if (SM_JOURNAL_TX(j, sm_journal_file_put(j, job_id, items[i].path,
							 SM_FILE_SRC_IMAGE, SM_FILE_DELETING)) < 0)
			goto cleanup;
		rc = sm_srcfile_unlink(&items[i].file);
		if (rc < 0) {
			sm_progress_say(pr, "  kept %s: %s", items[i].path, sm_error_message());
			sm_error_clear();
		}
		if (SM_JOURNAL_TX(j, sm_journal_file_put(j, job_id, items[i].path,
							 SM_FILE_SRC_IMAGE,
							 rc < 0 ? SM_FILE_KEPT : SM_FILE_DELETED)) < 0)
			goto cleanup;
		if (rc <= 0)
			continue;
		*freed += items[i].bytes;
		dirs[ndirs++] = sm_path_dirname(items[i].path);
		sm_progress_say(pr, "  deleted %s (%s)", items[i].path,
				sm_format_bytes(items[i].bytes, b, sizeof(b)));
	}
	if (cleanup_devices(v, j, job_id, pr, freed) < 0)
		goto cleanup;
	if (n)
		sm_progress_say(pr, "  (an image that no domain defines, in a folder other than "
				"the source's, is not seen: one that used a deleted image as its "
				"backing file cannot be opened any more)");
	if (ndirs && sm_pool_refresh_dirs(sm_virt_conn(v), (const char *const *)dirs, ndirs) < 0)
		sm_progress_say(pr, "warning: %s", sm_error_message());
	ret = 0;

cleanup:
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	sm_cleanup_items_free(items, n);
	return ret;
}

/* A job whose journal rows are malformed cannot be resumed, aborted or
 * cleaned up; forgetting it is the way out the error offers.  Only its
 * records go (never a file), and not while a snapmove process runs it. */
static int forget_malformed(struct sm_journal *j, long long job_id)
{
	struct sm_job_lock lock;
	int ret;

	if (sm_job_lock(j, job_id, &lock) < 0)
		return -1;
	ret = sm_journal_job_delete(j, job_id);
	sm_job_unlock(&lock, ret == 0);
	return ret;
}

int sm_job_forget(struct sm_journal *j, long long job_id)
{
	struct sm_job_row job;
	int rc = sm_journal_job_get(j, job_id, &job), ret = -1;

	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc == -2)  /* malformed: dropped whatever its state, files left as they are */
		return forget_malformed(j, job_id);
	if (rc <= 0)
		return -1;
	if (!sm_job_row_finished(&job) && sm_journal_job_check(j, job_id) == -2) {
		sm_job_row_release(&job);
		return forget_malformed(j, job_id);
	}
	if (!sm_job_row_finished(&job))
		sm_error("job %lld is %s; finish it with 'snapmove resume %lld' or undo it with "
			 "'snapmove abort %lld' before forgetting it", job_id, job.state, job_id,
			 job_id);
	else
		ret = sm_journal_job_delete(j, job_id);
	sm_job_row_release(&job);
	return ret;
}
