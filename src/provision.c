/* provision.c: run a provisioner (create, extend, remove a block device),
 * check what it made, and journal both.  The checks of the program and its
 * folders are trust.c's, its environment hooks.c's allow-list, starting it
 * and its time limit run.c's: a provisioner is held to the rules of a hook.
 * What a device is for (a move's destination) is the job layer's.
 */
#include "provision.h"
#include "hooks.h"
#include "lock.h"
#include "run.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PROV_RULE \
	"provisioners run as root, so they must be root's own regular executables in root's own folders"

static const struct sm_trust_words provisioner_words = {
	.file = "provisioner",
	.folder = "provisioner folder",
	.top = "the provisioner folder",
	.read_file = "provisioner",
	.read_folder = "the provisioner folder",
	.rule = PROV_RULE,
	.move = "move the provisioner to a folder only root can write (such as "
		SM_PROVISIONERS_DIR ")",
	.not_dir = "name the provisioner by its path",
};

#define DEV_RULE "a provisioned device must be reached through folders only root can change"

static const struct sm_trust_words device_words = {
	.file = "device",
	.folder = "device folder",
	.top = "the device folder",
	.read_file = "device",
	.read_folder = "the device folder",
	.rule = DEV_RULE,
	.move = "the provisioner must print a path under /dev",
	.not_dir = "the provisioner must print a block device's path",
};

char *sm_provision_resolve(const char *name, const char *dir)
{
	const char *slash = strrchr(name, '/');
	SM_AUTOFREE char *folder = NULL;
	SM_AUTOFREE char *real = NULL;

	if (!*name || (slash && !slash[1])) {
		sm_error("'%s' is not a provisioner; name a program, such as 'loop' or '%s/loop'",
			 name, SM_PROVISIONERS_DIR);
		return NULL;
	}
	if (!slash)
		return sm_path_join(dir ? dir : SM_PROVISIONERS_DIR, name);
	folder = slash == name ? sm_xstrdup("/") : sm_xasprintf("%.*s", (int)(slash - name), name);
	real = realpath(folder, NULL);
	if (!real) {
		sm_error("cannot read the provisioner folder '%s': %s", folder, strerror(errno));
		return NULL;
	}
	return sm_path_join(real, slash + 1);
}

char *sm_provision_parse_output(const char *provisioner, const char *out)
{
	size_t n = strcspn(out, "\n");

	if (n == 0) {
		sm_error("provisioner '%s' printed no device; create prints the path of the "
			 "block device it made, alone on one line", provisioner);
		return NULL;
	}
	if (out[n] == '\n' && out[n + 1] != '\0') {
		sm_error("provisioner '%s' printed more than one line; create prints the path of "
			 "the block device it made, alone on one line (messages go to stderr)",
			 provisioner);
		return NULL;
	}
	if (n >= 4096) {
		sm_error("provisioner '%s' printed a line of %zu bytes, too long for a path",
			 provisioner, n);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
			sm_error("provisioner '%s' printed a control character; create prints the "
				 "path of the block device it made, alone on one line", provisioner);
			return NULL;
		}
	return sm_xasprintf("%.*s", (int)n, out);
}

/* A plain absolute path under /dev: no empty, '.' or '..' component, no
 * trailing '/'. */
static bool plain_dev_path(const char *path)
{
	if (strncmp(path, "/dev/", 5) != 0 || path[strlen(path) - 1] == '/')
		return false;
	for (const char *p = path + 1; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p)
			p++;
	}
	return true;
}

static const char *file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a block device";
}

/* The folder of path, walked from / (trust.c); its fd, or -1 with an error
 * naming the provisioner and what it printed. */
static int device_folder(const char *provisioner, const char *printed, const char *path)
{
	const char *slash = strrchr(path, '/');
	SM_AUTOFREE char *folder = sm_xasprintf("%.*s", (int)(slash - path), path);
	int fd = sm_trust_open_folder(folder, &device_words);

	if (fd < 0) {
		SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

		sm_error("provisioner '%s' printed '%s', which snapmove does not use: %s",
			 provisioner, printed, why);
	}
	return fd;
}

int sm_provision_check_device(const char *provisioner, const char *path,
			      unsigned long long min_bytes, unsigned long long want_rdev,
			      unsigned long long *rdev, unsigned long long *size, bool *missing)
{
	SM_AUTOFREE char *real = NULL;
	char b1[32], b2[32];
	struct stat sb, fsb;
	uint64_t bytes = 0;
	int dir = -1, fd = -1, ret = -1;
	const char *base;

	*rdev = *size = 0;
	if (missing)
		*missing = false;
	if (!plain_dev_path(path)) {
		sm_error("provisioner '%s' printed '%s', which is not a plain path under /dev; a "
			 "provisioner prints the block device it made, such as /dev/loop3",
			 provisioner, path);
		return -1;
	}
	/* Nothing there any more, its folder included (LVM's /dev/VG goes with
	 * its last volume): said, whatever the checks below find. */
	if (missing && lstat(path, &sb) < 0 && errno == ENOENT)
		*missing = true;
	/* The name it printed, in folders only root can change: a link there
	 * was put there by root (udev's /dev/VG/LV, /dev/mapper/NAME). */
	dir = device_folder(provisioner, path, path);
	if (dir < 0)
		return -1;
	if (fstatat(dir, strrchr(path, '/') + 1, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (missing)
			*missing = errno == ENOENT;
		sm_error("provisioner '%s' printed '%s', which cannot be read: %s", provisioner,
			 path, strerror(errno));
		goto cleanup;
	}
	if (S_ISLNK(sb.st_mode)) {
		close(dir);
		dir = -1;
		real = realpath(path, NULL);
		if (!real) {
			if (missing)
				*missing = errno == ENOENT;
			sm_error("provisioner '%s' printed '%s', a link that leads nowhere: %s",
				 provisioner, path, strerror(errno));
			goto cleanup;
		}
		if (!plain_dev_path(real)) {
			sm_error("provisioner '%s' printed '%s', a link to '%s', outside /dev; a "
				 "provisioner prints the block device it made", provisioner, path,
				 real);
			goto cleanup;
		}
		dir = device_folder(provisioner, path, real);
		if (dir < 0)
			goto cleanup;
	}
	base = strrchr(real ? real : path, '/') + 1;
	if (fstatat(dir, base, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		sm_error("provisioner '%s' printed '%s', which cannot be read: %s", provisioner,
			 path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISBLK(sb.st_mode)) {
		sm_error("provisioner '%s' printed '%s', which is %s, not a block device; a "
			 "provisioner prints the block device it made", provisioner, path,
			 file_kind(sb.st_mode));
		goto cleanup;
	}
	/* Only now opened (a block device: opening it has no side effect), the
	 * same node, never through a link. */
	fd = openat(dir, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &fsb) < 0 || !S_ISBLK(fsb.st_mode) || fsb.st_rdev != sb.st_rdev) {
		sm_error("provisioner '%s' printed '%s', which cannot be opened as that block "
			 "device: %s", provisioner, path, fd < 0 ? strerror(errno) : "it changed");
		goto cleanup;
	}
	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		sm_error("cannot read the size of '%s' (provisioner '%s'): %s", path, provisioner,
			 strerror(errno));
		goto cleanup;
	}
	*rdev = (unsigned long long)fsb.st_rdev;
	*size = bytes;
	if (want_rdev && *rdev != want_rdev) {
		sm_error("'%s' is now device %u:%u, not the device %u:%u the provisioner '%s' "
			 "made; snapmove acts only on the device it journaled", path,
			 major((dev_t)*rdev), minor((dev_t)*rdev), major((dev_t)want_rdev),
			 minor((dev_t)want_rdev), provisioner);
		goto cleanup;
	}
	if (bytes < min_bytes) {
		sm_error("provisioner '%s' printed '%s', a device of %s, smaller than the %s asked "
			 "for", provisioner, path, sm_format_bytes(bytes, b1, sizeof(b1)),
			 sm_format_bytes(min_bytes, b2, sizeof(b2)));
		goto cleanup;
	}
	ret = 0;

cleanup:
	if (fd >= 0)
		close(fd);
	if (dir >= 0)
		close(dir);
	return ret;
}

/* Open the provisioner at path (absolute) after checking it and every folder
 * from / down; the fd, or -1 with an error. */
static int open_provisioner(const char *path)
{
	const char *slash = strrchr(path, '/');
	SM_AUTOFREE char *folder = NULL;
	int dir, fd;

	if (path[0] != '/' || !slash || !slash[1]) {
		sm_error("provisioner '%s' is not an absolute path to a program", path);
		return -1;
	}
	folder = slash == path ? sm_xstrdup("/") : sm_xasprintf("%.*s", (int)(slash - path), path);
	dir = sm_trust_open_folder(folder, &provisioner_words);
	if (dir < 0)
		return -1;
	fd = sm_trust_open_checked(dir, slash + 1, path, SM_TRUST_FILE, NULL, &provisioner_words);
	close(dir);
	return fd;
}

int sm_provision_check(const char *provisioner)
{
	int fd = open_provisioner(provisioner);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* What a run of a provisioner said. */
struct run {
	int status;
	bool timed_out;
	char *out;
	char *err;   /* its stderr, trailing newlines dropped */
};

static void run_release(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* The environment of a run: hooks.c's allow-list, with the device's
 * settings and facts. */
static char **run_env(const struct sm_device_row *d)
{
	SM_AUTOFREE char *settings = sm_xstrdup(d->settings ? d->settings : "");
	char *facts[64], *save = NULL, **env;
	size_t n = 0;

	if (d->job > 0)
		facts[n++] = sm_xasprintf("SNAPMOVE_JOB=%lld", d->job);
	facts[n++] = sm_xasprintf("SNAPMOVE_DEVICE=%lld", d->id);
	facts[n++] = sm_xasprintf("SNAPMOVE_DEVICE_NAME=%s", d->name);
	for (char *line = strtok_r(settings, "\n", &save); line && n + 1 < SM_ARRAY_LEN(facts);
	     line = strtok_r(NULL, "\n", &save))
		if (sm_journal_device_setting_ok(line))
			facts[n++] = sm_xstrdup(line);
	facts[n] = NULL;
	env = sm_hooks_env_new(getenv("SNAPMOVE_EVENTS_FILE"), (const char *const *)facts);
	for (size_t i = 0; i < n; i++)
		free(facts[i]);
	return env;
}

/* Run the provisioner of d (checked, open at fd) with op and arg (and bytes
 * unless remove), journal the run; 0 when it ran (whatever its status), -1
 * when it could not be started. */
static int run_provisioner(struct sm_journal *j, const struct sm_device_row *d, int fd,
			   enum sm_provision_op op, const char *arg, unsigned long long bytes,
			   double timeout, struct run *r)
{
	char size[32];
	const char *argv[] = { d->provisioner, sm_provision_op_name(op), arg,
			       op == SM_PROVISION_REMOVE ? NULL : size, NULL };
	char **env = run_env(d);
	struct sm_spawn sp = {
		.argv = argv,
		.env = (const char *const *)env,
		.exec_fd = fd,
		.timeout = timeout > 0 ? timeout : SM_PROVISION_TIMEOUT,
	};
	struct sm_run_result res;
	double t0 = sm_now(), m0 = sm_monotonic();
	int rc;

	memset(r, 0, sizeof(*r));
	snprintf(size, sizeof(size), "%llu", bytes);
	rc = sm_run_spawn(&sp, &res, &r->timed_out);
	sm_hooks_env_free(env);
	if (rc < 0)
		return -1;
	r->status = res.status;
	r->out = sm_steal(&res.out);
	r->err = sm_steal(&res.err);
	sm_run_result_release(&res);
	for (size_t n = strlen(r->err); n && r->err[n - 1] == '\n'; n--)
		r->err[n - 1] = '\0';
	/* A run that cannot be journaled is still reported by what follows. */
	sm_ignore_value(sm_journal_provision_run(j, d->id, op, d->provisioner, arg,
					      op == SM_PROVISION_REMOVE ? 0 : bytes, r->status,
					      r->timed_out, t0, sm_monotonic() - m0, r->out, r->err));
	return 0;
}

/* The error of a run that did not succeed; true when it failed. */
static bool run_failed(const struct sm_device_row *d, enum sm_provision_op op,
		       const struct run *r, double timeout)
{
	if (r->timed_out) {
		sm_error("provisioner '%s' (%s) ran past its time limit of %.0f s and was killed; "
			 "give it more time with --timeout SEC", d->provisioner,
			 sm_provision_op_name(op), timeout > 0 ? timeout : SM_PROVISION_TIMEOUT);
		return true;
	}
	if (r->status != 0) {
		sm_error("provisioner '%s' (%s) exited %d: %.400s", d->provisioner,
			 sm_provision_op_name(op), r->status, r->err[0] ? r->err : "(no stderr)");
		return true;
	}
	return false;
}

/* The device of provisioner and name for job's create: *id the row to
 * create in (0: a new one), or refused. */
static int claim(struct sm_journal *j, long long job, const char *provisioner,
		 const char *name, long long *id)
{
	struct sm_device_row d;
	int rc;

	*id = 0;
	if (sm_journal_device_find(j, provisioner, name, id) < 0)
		return -1;
	if (*id == 0)
		return 0;
	rc = sm_journal_device_get(j, *id, &d);
	if (rc <= 0)
		return -1;
	rc = -1;
	if (d.job != job) {
		if (d.job)
			sm_error("device '%s' of provisioner '%s' belongs to job %lld (device %lld); "
				 "pick another name", name, provisioner, d.job, d.id);
		else
			sm_error("device '%s' of provisioner '%s' was made by 'snapmove provision' "
				 "(device %lld); pick another name", name, provisioner, d.id);
		goto cleanup;
	}
	switch (d.state) {
	case SM_DEVICE_CREATING:
	case SM_DEVICE_FAILED:
		rc = 0;  /* asked again: create is idempotent */
		break;
	case SM_DEVICE_CREATED:
	case SM_DEVICE_REMOVING:
		sm_error("device '%s' of provisioner '%s' is already %s as '%s' (device %lld); "
			 "remove it first ('snapmove provision remove %s') or pick another name",
			 name, provisioner, sm_device_state_name(d.state), d.path, d.id, d.path);
		break;
	case SM_DEVICE_REMOVED:
		*id = 0;  /* not found by find; a new row */
		rc = 0;
		break;
	case SM_DEVICE_STATE_LAST:  /* a checked row never holds it */
		sm_error("device %lld has no state", d.id);
		break;
	}
cleanup:
	sm_device_row_release(&d);
	return rc;
}

static int claim_row(struct sm_journal *j, const struct sm_device_row *d, long long *id)
{
	if (claim(j, d->job, d->provisioner, d->name, id) < 0)
		return -1;
	if (*id)
		return sm_journal_device_retry(j, *id, d->settings, d->bytes);
	return sm_journal_device_insert(j, d, id);
}

/* The row of d's create, claimed under its device's lock (a device already
 * journaled is locked before its row is touched: a create running on it
 * elsewhere is not disturbed); *lk held on success. */
static int lock_and_claim(struct sm_journal *j, const struct sm_device_row *d, long long *id,
			  struct sm_job_lock *lk)
{
	long long found = 0;

	lk->fd = -1;
	lk->path = NULL;
	if (sm_journal_device_find(j, d->provisioner, d->name, &found) < 0 ||
	    (found && sm_device_lock(j, found, lk) < 0))
		return -1;
	if (SM_JOURNAL_TX(j, claim_row(j, d, id)) < 0) {
		sm_job_unlock(lk, 0);
		return -1;
	}
	if (*id != found) {  /* a new row */
		sm_job_unlock(lk, 0);
		if (sm_device_lock(j, *id, lk) < 0)
			return -1;
	}
	return 0;
}

/* Journal the error just raised on device id's row, which stays in state,
 * and keep it as the error. */
static void journal_failure(struct sm_journal *j, long long id, enum sm_device_state state)
{
	SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

	sm_ignore_value(sm_journal_device_update(j, id, state, NULL, 0, 0, 0, why));
	sm_error("%s", why);
}

enum sm_provision_result sm_provision_create(struct sm_journal *j, long long job,
					     const char *provisioner, const char *settings,
					     const char *name, unsigned long long bytes,
					     double timeout, struct sm_device_row *out)
{
	struct sm_device_row d = {
		.job = job,
		.provisioner = (char *)provisioner,
		.settings = (char *)(settings ? settings : ""),
		.name = (char *)name,
		.bytes = bytes,
	};
	SM_AUTOFREE char *path = NULL;
	unsigned long long rdev, size;
	struct sm_job_lock lk = { .fd = -1 };
	enum sm_provision_result ret = SM_PROVISION_REFUSED;
	struct run r = { 0 };
	long long id = 0;
	int fd;

	memset(out, 0, sizeof(*out));
	if (!sm_journal_device_name_ok(name)) {
		sm_error("'%s' is not a device name: 1 to 64 letters, digits, '.', '_' or '-', "
			 "starting with a letter or digit", name);
		return SM_PROVISION_REFUSED;
	}
	if (bytes == 0 || bytes > (1ULL << 62)) {
		sm_error("a device of %llu bytes cannot be made; give a size from 1 byte", bytes);
		return SM_PROVISION_REFUSED;
	}
	if (!sm_journal_device_settings_ok(d.settings)) {
		sm_error("provisioner settings must be SNAPMOVE_NAME=VALUE lines");
		return SM_PROVISION_REFUSED;
	}
	fd = open_provisioner(provisioner);
	if (fd < 0)
		return SM_PROVISION_REFUSED;
	if (lock_and_claim(j, &d, &id, &lk) < 0)
		goto cleanup;
	d.id = id;
	if (run_provisioner(j, &d, fd, SM_PROVISION_CREATE, name, bytes, timeout, &r) < 0) {
		journal_failure(j, id, SM_DEVICE_FAILED);
		goto cleanup;  /* it did not run: refused */
	}
	ret = SM_PROVISION_FAILED;
	if (run_failed(&d, SM_PROVISION_CREATE, &r, timeout) ||
	    !(path = sm_provision_parse_output(provisioner, r.out)) ||
	    sm_provision_check_device(provisioner, path, bytes, 0, &rdev, &size, NULL) < 0) {
		journal_failure(j, id, SM_DEVICE_FAILED);
		goto cleanup;
	}
	if (sm_journal_device_update(j, id, SM_DEVICE_CREATED, path, rdev, bytes, size, NULL) < 0 ||
	    sm_journal_device_get(j, id, out) != 1)
		goto cleanup;
	ret = SM_PROVISION_DONE;

cleanup:
	close(fd);
	run_release(&r);
	sm_job_unlock(&lk, 0);
	return ret;
}

/* The lock of device id, which must be journaled (no lock file is made for
 * a device that is not). */
static int lock_device(struct sm_journal *j, long long id, struct sm_job_lock *lk)
{
	struct sm_device_row d;
	int rc = sm_journal_device_get(j, id, &d);

	sm_device_row_release(&d);
	if (rc == 0)
		sm_error("no provisioned device %lld in the journal '%s'; see 'snapmove provision "
			 "list'", id, sm_journal_path(j));
	if (rc <= 0)
		return -1;
	return sm_device_lock(j, id, lk);
}

/* Device id as job may act on it: 0 (d filled), or -1 refused. */
static int owned_device(struct sm_journal *j, long long job, long long id,
			struct sm_device_row *d)
{
	int rc = sm_journal_device_get(j, id, d);

	if (rc == 0)
		sm_error("no provisioned device %lld in the journal '%s'; see 'snapmove provision "
			 "list'", id, sm_journal_path(j));
	if (rc <= 0)
		return -1;
	if (d->job != job) {
		if (d->job)
			sm_error("device %lld ('%s') belongs to job %lld, which removes it; 'snapmove "
				 "forget %lld' first to act on it by hand", id, d->path ? d->path : d->name,
				 d->job, d->job);
		else
			sm_error("device %lld ('%s') was made by 'snapmove provision', not by job %lld",
				 id, d->path ? d->path : d->name, job);
		sm_device_row_release(d);
		return -1;
	}
	return 0;
}

enum sm_provision_result sm_provision_extend(struct sm_journal *j, long long job, long long id,
					     unsigned long long bytes, double timeout,
					     struct sm_device_row *out)
{
	struct sm_device_row d;
	unsigned long long rdev, size;
	enum sm_provision_result ret = SM_PROVISION_REFUSED;
	struct sm_job_lock lk;
	struct run r = { 0 };
	int fd = -1;

	memset(out, 0, sizeof(*out));
	if (lock_device(j, id, &lk) < 0)
		return SM_PROVISION_REFUSED;
	if (owned_device(j, job, id, &d) < 0) {
		sm_job_unlock(&lk, 0);
		return SM_PROVISION_REFUSED;
	}
	if (d.state != SM_DEVICE_CREATED) {
		sm_error("device %lld ('%s') is %s; only a created device is extended", id,
			 d.path ? d.path : d.name, sm_device_state_name(d.state));
		goto cleanup;
	}
	if (bytes == 0 || bytes > (1ULL << 62) || bytes < d.bytes) {
		char b[32];

		sm_error("device %lld ('%s') is %s; devices only grow: give a size of at least that",
			 id, d.path, sm_format_bytes(d.bytes, b, sizeof(b)));
		goto cleanup;
	}
	if (sm_provision_check_device(d.provisioner, d.path, 0, d.rdev, &rdev, &size, NULL) < 0 ||
	    (fd = open_provisioner(d.provisioner)) < 0)
		goto cleanup;
	if (run_provisioner(j, &d, fd, SM_PROVISION_EXTEND, d.path, bytes, timeout, &r) < 0)
		goto cleanup;
	ret = SM_PROVISION_FAILED;
	if (run_failed(&d, SM_PROVISION_EXTEND, &r, timeout) ||
	    sm_provision_check_device(d.provisioner, d.path, bytes, d.rdev, &rdev, &size, NULL) < 0) {
		journal_failure(j, id, SM_DEVICE_CREATED);
		goto cleanup;
	}
	if (sm_journal_device_update(j, id, SM_DEVICE_CREATED, NULL, 0, bytes, size, NULL) < 0 ||
	    sm_journal_device_get(j, id, out) != 1)
		goto cleanup;
	ret = SM_PROVISION_DONE;

cleanup:
	if (fd >= 0)
		close(fd);
	run_release(&r);
	sm_device_row_release(&d);
	sm_job_unlock(&lk, 0);
	return ret;
}

enum sm_provision_result sm_provision_remove(struct sm_journal *j, long long job, long long id,
					     double timeout)
{
	struct sm_device_row d;
	unsigned long long rdev, size;
	enum sm_provision_result ret = SM_PROVISION_REFUSED;
	struct sm_job_lock lk;
	struct run r = { 0 };
	bool missing = false;
	int fd = -1;

	if (lock_device(j, id, &lk) < 0)
		return SM_PROVISION_REFUSED;
	if (owned_device(j, job, id, &d) < 0) {
		sm_job_unlock(&lk, 0);
		return SM_PROVISION_REFUSED;
	}
	if (d.state != SM_DEVICE_CREATED && d.state != SM_DEVICE_REMOVING) {
		sm_error("device %lld ('%s') is %s; only a device its provisioner created is "
			 "removed", id, d.path ? d.path : d.name, sm_device_state_name(d.state));
		goto cleanup;
	}
	/* Still the device it made, or gone (the provisioner then finishes
	 * what it left, or says it is not its own): never another device. */
	if (sm_provision_check_device(d.provisioner, d.path, 0, d.rdev, &rdev, &size,
				      &missing) < 0 && !missing)
		goto cleanup;
	fd = open_provisioner(d.provisioner);
	if (fd < 0 || sm_journal_device_update(j, id, SM_DEVICE_REMOVING, NULL, 0, 0, 0, NULL) < 0)
		goto cleanup;
	if (run_provisioner(j, &d, fd, SM_PROVISION_REMOVE, d.path, 0, timeout, &r) < 0) {
		ret = SM_PROVISION_FAILED;  /* journaled removing: a remove is asked again */
		goto cleanup;
	}
	ret = SM_PROVISION_FAILED;
	if (run_failed(&d, SM_PROVISION_REMOVE, &r, timeout)) {
		journal_failure(j, id, SM_DEVICE_REMOVING);
		goto cleanup;
	}
	if (sm_journal_device_update(j, id, SM_DEVICE_REMOVED, NULL, 0, 0, 0, NULL) < 0)
		goto cleanup;
	ret = SM_PROVISION_DONE;

cleanup:
	if (fd >= 0)
		close(fd);
	run_release(&r);
	sm_device_row_release(&d);
	sm_job_unlock(&lk, ret == SM_PROVISION_DONE);  /* a removed device's lock goes */
	return ret;
}
