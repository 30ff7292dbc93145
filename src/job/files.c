/* files.c: the files a job makes, removes and keeps, journaled with their
 * identity, and the destination files it holds open while it writes them.
 */
#include "job/internal.h"
#include "events.h"
#include "srcfile.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

int sm_job_file(struct sm_jobctx *c, const char *path, enum sm_file_role role,
		enum sm_file_state state)
{
	return SM_JOURNAL_TX(c->j,
		(state == SM_FILE_CREATING && sm_srcfile_forget(c->j, c->job, path) < 0) ||
		sm_journal_file_put(c->j, c->job, path, role, state) < 0 ? -1 : 0);
}

int sm_job_file_state(struct sm_jobctx *c, const char *path, enum sm_file_state *state)
{
	SM_AUTOFREE char *name = NULL;
	int v;

	/* Not sm_journal_file_get_state: it refuses a name this version does
	 * not write, and the job engine never did (file rows are not refused). */
	if (sm_journal_file_state(c->j, c->job, path, &name) < 0)
		return -1;
	if (!name)
		return 0;
	v = sm_file_state_from_name(name);
	*state = v < 0 ? SM_FILE_STATE_LAST : (enum sm_file_state)v;
	return 1;
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

static int journal_made(struct sm_jobctx *c, const char *path, enum sm_file_role role,
			const struct sm_srcfile *f)
{
	return sm_srcfile_journal(c->j, c->job, f) < 0 ||
	       sm_journal_file_put(c->j, c->job, path, role, SM_FILE_CREATED) < 0 ? -1 : 0;
}

int sm_job_file_made(struct sm_jobctx *c, const char *path, enum sm_file_role role, int fd)
{
	struct sm_srcfile f;
	int ret;

	if (sm_srcfile_identify_fd(path, fd, &f) < 0)
		return -1;
	f.target = sm_xstrdup(target_of(c, path));
	f.role = sm_xstrdup(sm_file_role_name(role));
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

int sm_job_remove_file(struct sm_jobctx *c, const char *path, enum sm_file_role role)
{
	struct sm_domain_disks now = { 0 };
	struct chain_use u = { c, path, &now };
	struct sm_srcfile f;
	int rc;

	/* An overlay on a device the job's provisioner made goes through it. */
	if (sm_job_ovdev_of(c, path))
		return sm_job_ovdev_remove(c, path, role);
	if (role == SM_FILE_DST_IMAGE || role == SM_FILE_DST_OVERLAY ||
	    role == SM_FILE_SRC_OVERLAY) {
		enum sm_file_state state;
		struct stat sb;
		int rc_state;

		/* A file snapmove makes is claimed ("creating") before it exists:
		 * one still "planned" was never made by the job, whoever made it
		 * (a source overlay libvirt made for an older job in a snapshot
		 * it died in is adopted by reconcile first). */
		rc_state = sm_job_file_state(c, path, &state);
		if (rc_state < 0)
			return -1;
		if ((rc_state == 0 || state == SM_FILE_PLANNED) && lstat(path, &sb) == 0) {
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
		f.role = sm_xstrdup(sm_file_role_name(role));
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
		return sm_job_file(c, path, role, SM_FILE_KEPT) < 0 ? -1 : 1;
	}
	return sm_job_file(c, path, role, SM_FILE_REMOVED);
}

int sm_job_clear_file(struct sm_jobctx *c, const char *path, enum sm_file_role role)
{
	int rc;

	/* A device is written anew (sm_job_ovdev_format), never removed first. */
	if (sm_job_ovdev_of(c, path))
		return 0;
	rc = sm_job_remove_file(c, path, role);

	if (rc > 0)
		sm_error("job %lld kept '%s' (see above) and cannot make it again; delete it by "
			 "hand if nothing needs it, then run 'snapmove resume %lld' or 'snapmove "
			 "abort %lld'", c->job, path, c->job, c->job);
	return rc == 0 ? 0 : -1;
}

/* ---- destination files, held open ---- */

/* Copies of several disks run in threads. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

/* Hold fd as path's file; a file made again under one name replaces the
 * one held before. */
void sm_job_hold_file(struct sm_jobctx *c, const char *path, int fd)
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
int sm_job_dest_fd(struct sm_jobctx *c, const char *path, const char *src)
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
	sm_job_hold_file(c, path, fd);
	return fd;
}

/* path still names the file fd is: else the copy made through fd would not
 * be what the domain opens by that name. */
int sm_job_still_named(struct sm_jobctx *c, const char *path, int fd)
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
