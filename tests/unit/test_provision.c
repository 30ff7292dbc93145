/* test_provision.c: the provisioner protocol (docs/provisioners.md) through
 * provision.c, with fake provisioners (shell scripts in a root-owned 0755
 * folder under /run) and a real block device (a loop device over a file of
 * the test's), opened read-only and never written: what create must print
 * (one line, a plain path under /dev, a block device, large enough), the
 * refusals of a program
 * or a device in folders others can change, the journal rows (device and
 * run) and their states, create asked again, extend and remove only of the
 * device journaled and of its owner, the environment a provisioner gets, the
 * time limit, a tampered device row, and when a done move's source device may
 * be handed to its provisioner's remove (src/cleanup.c).
 */
#include "unit.h"

#include "cleanup.h"
#include "job/provdev.h"
#include "journal.h"
#include "lock.h"
#include "provision.h"
#include "util.h"

#include <errno.h>
#include <sqlite3.h>
#include <sys/sysmacros.h>

/* A folder under root's /run, 0755 (as test_hooks). */
static char *root_dir(void)
{
	char *dir = sm_xstrdup("/run/snapmove-unit.XXXXXX");

	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	return dir;
}

/* A root-owned 0755 script in dir; its path, to free. */
static char *script(const char *dir, const char *name, const char *body)
{
	char *path = sm_path_join(dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

/* A block device to check, opened read-only and never written: a loop
 * device over a 4 MiB file in dir (a container's device cgroup may forbid
 * opening the host's disks, never the loop devices it may attach).  Its
 * path and size; false when no loop device can be had here. */
static bool attach_loop(const char *dir, char **path, unsigned long long *size)
{
	SM_AUTOFREE char *file = sm_path_join(dir, "loop.img");
	SM_AUTOFREE char *cmd = sm_xasprintf("losetup --find --show '%s' 2>/dev/null", file);
	char line[256] = "";
	FILE *f = fopen(file, "w");
	FILE *p;

	if (!f || ftruncate(fileno(f), 4 << 20) < 0) {
		if (f)
			fclose(f);
		return false;
	}
	fclose(f);
	p = popen(cmd, "r");
	if (!p)
		return false;
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	if (pclose(p) != 0 || strncmp(line, "/dev/loop", 9) != 0)
		return false;
	line[strcspn(line, "\n")] = '\0';
	*path = sm_xstrdup(line);
	*size = 4 << 20;
	return true;
}

static void detach_loop(const char *path)
{
	SM_AUTOFREE char *cmd = sm_xasprintf("losetup -d '%s' 2>/dev/null", path);

	if (system(cmd) != 0)
		print_message("could not detach %s\n", path);
}

struct fx {
	char *dir;       /* root's 0755 folder of the fake provisioners */
	char *tmp;       /* the journal, what the fakes write */
	char *db;
	struct sm_journal *j;
	char *dev;       /* a real block device */
	unsigned long long size;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	*state = fx;
	if (geteuid() != 0)
		return 0;  /* each test skips */
	fx->tmp = unit_mkdtemp();
	if (!attach_loop(fx->tmp, &fx->dev, &fx->size)) {
		unit_rmtree(fx->tmp);
		fx->tmp = NULL;
		return 0;  /* no loop devices here: each test skips */
	}
	fx->dir = root_dir();
	fx->db = sm_path_join(fx->tmp, "journal.db");
	if (sm_journal_open(fx->db, &fx->j) != 0) {
		print_error("cannot make the journal: %s\n", sm_error_message());
		return -1;
	}
	unsetenv("SNAPMOVE_EVENTS_FILE");
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	sm_journal_free(fx->j);
	if (fx->dev)
		detach_loop(fx->dev);
	unit_rmtree(fx->dir);
	unit_rmtree(fx->tmp);
	free(fx->db);
	free(fx->dev);
	free(fx);
	return 0;
}

#define NEED_ROOT(fx) do { if (!(fx)->j) skip(); } while (0)

/* One value of the journal, as a string to free (NULL for NULL or no row). */
static char *value(struct fx *fx, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *ret = NULL;

	assert_int_equal(sqlite3_open_v2(fx->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		ret = sm_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

static void assert_value(struct fx *fx, const char *sql, const char *want)
{
	char *got = value(fx, sql);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* A fake provisioner: create prints what is asked, with the argv and the
 * environment written beside the journal; extend and remove do nothing but
 * say so. */
static char *fake(struct fx *fx, const char *name, const char *create)
{
	SM_AUTOFREE char *body = sm_xasprintf(
		"echo \"$@\" >>%s/argv\nenv >%s/env\ncase $1 in\ncreate) %s ;;\n"
		"extend|remove) echo \"$1 $2 done\" >&2 ;;\nesac", fx->tmp, fx->tmp, create);

	return script(fx->dir, name, body);
}

static void test_parse_output(void **state)
{
	char *p;

	(void)state;
	p = sm_provision_parse_output("/p", "/dev/loop3\n");
	assert_string_equal(p, "/dev/loop3");
	free(p);
	p = sm_provision_parse_output("/p", "/dev/vg/lv");  /* no newline: fine */
	assert_string_equal(p, "/dev/vg/lv");
	free(p);
	sm_error_clear();
	assert_null(sm_provision_parse_output("/p", ""));
	assert_contains(sm_error_message(), "provisioner '/p' printed no device");
	assert_null(sm_provision_parse_output("/p", "\n/dev/loop3\n"));
	assert_null(sm_provision_parse_output("/p", "made it\n/dev/loop3\n"));
	assert_contains(sm_error_message(), "more than one line");
	assert_null(sm_provision_parse_output("/p", "/dev/loop3\n\n"));
	assert_null(sm_provision_parse_output("/p", "/dev/lo\top3\n"));
	assert_contains(sm_error_message(), "control character");
}

static void test_names(void **state)
{
	(void)state;
	assert_true(sm_journal_device_name_ok("vda"));
	assert_true(sm_journal_device_name_ok("snapmove-12_vda.0"));
	assert_false(sm_journal_device_name_ok(""));
	assert_false(sm_journal_device_name_ok("-rf"));
	assert_false(sm_journal_device_name_ok(".."));
	assert_false(sm_journal_device_name_ok("a/b"));
	assert_false(sm_journal_device_name_ok("a b"));
	assert_false(sm_journal_device_name_ok(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));  /* 65 */
	assert_true(sm_journal_device_setting_ok("SNAPMOVE_LVM_VG=vg0"));
	assert_true(sm_journal_device_setting_ok("SNAPMOVE_LOOP_DIR="));
	assert_false(sm_journal_device_setting_ok("SNAPMOVE_JOB=3"));
	assert_false(sm_journal_device_setting_ok("SNAPMOVE_DEVICE=3"));
	assert_false(sm_journal_device_setting_ok("SNAPMOVE_DEVICE_NAME=x"));
	assert_false(sm_journal_device_setting_ok("LD_PRELOAD=/x.so"));
	assert_false(sm_journal_device_setting_ok("SNAPMOVE_lower=x"));
	assert_false(sm_journal_device_setting_ok("SNAPMOVE_X=a\tb"));
	assert_true(sm_journal_device_settings_ok(""));
	assert_true(sm_journal_device_settings_ok("SNAPMOVE_A=1\nSNAPMOVE_B=2"));
	assert_false(sm_journal_device_settings_ok("SNAPMOVE_A=1\n\nSNAPMOVE_B=2"));
	assert_false(sm_journal_device_settings_ok("SNAPMOVE_A=1\nPATH=/tmp"));
}

static void expect_device_refused(const char *path, unsigned long long min, const char *why)
{
	unsigned long long rdev, size;

	sm_error_clear();
	assert_int_equal(sm_provision_check_device("/p", path, min, 0, &rdev, &size, NULL), -1);
	assert_contains(sm_error_message(), why);
}

static void test_check_device(void **state)
{
	struct fx *fx = *state;
	SM_AUTOFREE char *link = NULL;
	SM_AUTOFREE char *shm = NULL;
	unsigned long long rdev, size;
	struct stat sb;
	bool missing;

	NEED_ROOT(fx);
	assert_int_equal(stat(fx->dev, &sb), 0);
	assert_int_equal(sm_provision_check_device("/p", fx->dev, fx->size, 0, &rdev, &size,
						   NULL), 0);
	assert_int_equal(rdev, (unsigned long long)sb.st_rdev);
	assert_int_equal(size, fx->size);
	/* The device number journaled must be the one found. */
	assert_int_equal(sm_provision_check_device("/p", fx->dev, 0, rdev, &rdev, &size, NULL), 0);
	expect_device_refused(fx->dev, fx->size + 1, "smaller than the");
	sm_error_clear();
	assert_int_equal(sm_provision_check_device("/p", fx->dev, 0, makedev(7, 250), &rdev, &size,
						   NULL), -1);
	assert_contains(sm_error_message(), "not the device 7:250");

	expect_device_refused("/dev/null", 0, "which is a character device, not a block device");
	expect_device_refused("/dev/pts", 0, "which is a directory");
	expect_device_refused("/dev", 0, "not a plain path under /dev");
	expect_device_refused("/etc/passwd", 0, "not a plain path under /dev");
	expect_device_refused("/dev/../etc/passwd", 0, "not a plain path under /dev");
	expect_device_refused("/dev//null", 0, "not a plain path under /dev");
	expect_device_refused("dev/null", 0, "not a plain path under /dev");
	expect_device_refused("/dev/null/", 0, "not a plain path under /dev");
	sm_error_clear();
	assert_int_equal(sm_provision_check_device("/p", "/dev/snapmove-unit-none", 0, 0, &rdev,
						   &size, &missing), -1);
	assert_true(missing);

	/* A link in a folder others can write (/dev/shm, sticky, 1777) is
	 * refused, whatever it leads to. */
	if (stat("/dev/shm", &sb) == 0 && (sb.st_mode & S_IWOTH)) {
		shm = sm_xasprintf("/dev/shm/snapmove-unit-%d", (int)getpid());
		assert_int_equal(symlink(fx->dev, shm), 0);
		expect_device_refused(shm, 0, "folder '/dev/shm' is writable by group or others");
		unlink(shm);
	}
	/* A link under /dev (root's) that leads out of /dev. */
	link = sm_xasprintf("/dev/snapmove-unit-%d", (int)getpid());
	assert_int_equal(symlink("/etc/passwd", link), 0);
	expect_device_refused(link, 0, "a link to '/etc/passwd', outside /dev");
	unlink(link);
	/* And one that leads to the block device: followed (udev's /dev/VG/LV). */
	assert_int_equal(symlink(fx->dev, link), 0);
	assert_int_equal(sm_provision_check_device("/p", link, 1, 0, &rdev, &size, NULL), 0);
	unlink(link);
}

static void test_create_remove(void **state)
{
	struct fx *fx = *state;
	SM_AUTOFREE char *create = NULL;
	SM_AUTOFREE char *prov = NULL;
	SM_AUTOFREE char *argv = NULL;
	SM_AUTOFREE char *env = NULL;
	SM_AUTOFREE char *sql = NULL;
	struct sm_device_row d;
	struct stat sb;

	NEED_ROOT(fx);
	create = sm_xasprintf("echo %s; echo 'made it' >&2", fx->dev);
	prov = fake(fx, "good", create);
	setenv("LD_PRELOAD", "/nonexistent-snapmove.so", 1);
	setenv("SNAPMOVE_LVM_VG", "from-the-caller", 1);
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "SNAPMOVE_LOOP_DIR=/srv/loop", "vda",
					     4096, 5, &d), SM_PROVISION_DONE);
	unsetenv("LD_PRELOAD");
	unsetenv("SNAPMOVE_LVM_VG");
	assert_int_equal(stat(fx->dev, &sb), 0);
	assert_int_equal(d.id, 1);
	assert_int_equal(d.job, 0);
	assert_string_equal(d.path, fx->dev);
	assert_int_equal(d.rdev, (unsigned long long)sb.st_rdev);
	assert_int_equal(d.size, fx->size);
	assert_int_equal(d.bytes, 4096);
	assert_int_equal(d.state, SM_DEVICE_CREATED);
	sm_device_row_release(&d);

	/* argv and environment: create NAME BYTES; the allow-list, the
	 * settings, the device's facts, nothing of the caller's. */
	free(sql);
	sql = sm_path_join(fx->tmp, "argv");
	argv = unit_read_file(sql);
	assert_string_equal(argv, "create vda 4096\n");
	free(sql);
	sql = sm_path_join(fx->tmp, "env");
	env = unit_read_file(sql);
	assert_contains(env, "SNAPMOVE_DEVICE=1\n");
	assert_contains(env, "SNAPMOVE_DEVICE_NAME=vda\n");
	assert_contains(env, "SNAPMOVE_LOOP_DIR=/srv/loop\n");
	assert_contains(env, "LC_ALL=C\n");
	assert_contains(env, "HOME=/root\n");
	assert_not_contains(env, "LD_PRELOAD");
	assert_not_contains(env, "from-the-caller");
	assert_not_contains(env, "SNAPMOVE_JOB");

	/* Journaled: the device, and the run with its stdout and stderr. */
	assert_value(fx, "SELECT state FROM provisioned_device WHERE id = 1", "created");
	assert_value(fx, "SELECT job_id FROM provisioned_device WHERE id = 1", NULL);
	free(sql);
	sql = sm_xasprintf("SELECT count(*) FROM provision_run WHERE device_id = 1 AND op = "
			   "'create' AND argument = 'vda' AND bytes = 4096 AND exit_status = 0 "
			   "AND stdout = '%s\n' AND stderr = 'made it'", fx->dev);
	assert_value(fx, sql, "1");

	/* The same name again: refused, nothing run. */
	sm_error_clear();
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "vda", 4096, 5, &d),
			 SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "is already created as");
	assert_value(fx, "SELECT count(*) FROM provision_run", "1");

	/* Extend: a size the device has passes, one it has not fails and is
	 * journaled, the device stays created. */
	assert_int_equal(sm_provision_extend(fx->j, 0, 1, 8192, 5, &d), SM_PROVISION_DONE);
	assert_int_equal(d.bytes, 8192);
	sm_device_row_release(&d);
	sm_error_clear();
	assert_int_equal(sm_provision_extend(fx->j, 0, 1, fx->size + 512, 5, &d),
			 SM_PROVISION_FAILED);
	assert_contains(sm_error_message(), "smaller than the");
	assert_value(fx, "SELECT state || ' ' || bytes FROM provisioned_device WHERE id = 1",
		     "created 8192");
	assert_int_equal(sm_provision_extend(fx->j, 0, 1, 4096, 5, &d), SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "devices only grow");

	/* Another owner's device is not removed (a job's, here). */
	sm_error_clear();
	assert_int_equal(sm_provision_remove(fx->j, 7, 1, 5), SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "was made by 'snapmove provision', not by job 7");
	/* One run on a device at a time: another process's lock refuses. */
	{
		struct sm_job_lock held;
		SM_AUTOFREE char *lock = sm_xasprintf("%s.device-1.lock", fx->db);
		struct stat lsb;

		assert_int_equal(sm_device_lock(fx->j, 1, &held), 0);
		sm_error_clear();
		assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_REFUSED);
		assert_contains(sm_error_message(), "device 1 is being run by another snapmove "
				"process (pid ");
		assert_int_equal(sm_provision_extend(fx->j, 0, 1, 8192, 5, &d),
				 SM_PROVISION_REFUSED);
		assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "vda", 4096, 5, &d),
				 SM_PROVISION_REFUSED);
		sm_job_unlock(&held, 0);
		assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_DONE);
		/* Removed: its lock file goes; none is made for a device not there. */
		assert_int_equal(lstat(lock, &lsb), -1);
		assert_int_equal(sm_provision_remove(fx->j, 0, 99, 5), SM_PROVISION_REFUSED);
		assert_contains(sm_error_message(), "no provisioned device 99");
		free(lock);
		lock = sm_xasprintf("%s.device-99.lock", fx->db);
		assert_int_equal(lstat(lock, &lsb), -1);
	}
	assert_value(fx, "SELECT state FROM provisioned_device WHERE id = 1", "removed");
	assert_value(fx, "SELECT op || ' ' || argument || ' ' || bytes FROM provision_run "
		     "ORDER BY id DESC LIMIT 1", NULL);  /* remove has no bytes */
	free(sql);
	sql = sm_xasprintf("SELECT op || ' ' || argument FROM provision_run ORDER BY id DESC "
			   "LIMIT 1");
	free(argv);
	argv = sm_xasprintf("remove %s", fx->dev);
	assert_value(fx, sql, argv);
	/* Removed: not again. */
	sm_error_clear();
	assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "is removed; only a device its provisioner created");
	/* A removed name can be made again, as a new device. */
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "vda", 4096, 5, &d),
			 SM_PROVISION_DONE);
	assert_int_equal(d.id, 2);
	sm_device_row_release(&d);
}

/* What create printed that snapmove does not use: the device is failed,
 * its error journaled; asked again it is the same row (create is
 * idempotent). */
static void test_create_refused_output(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *create;
		const char *why;
	} cases[] = {
		{ "echo /dev/null", "a character device, not a block device" },
		{ "echo /etc/passwd", "not a plain path under /dev" },
		{ "echo; echo /dev/null", "printed no device" },
		{ "echo made; echo /dev/null", "more than one line" },
		{ "echo nothing here >&2; exit 3", "exited 3: nothing here" },
		{ "exec sleep 5", "ran past its time limit of 1 s" },
	};
	struct sm_device_row d;

	NEED_ROOT(fx);
	for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
		SM_AUTOFREE char *name = sm_xasprintf("bad%zu", i);
		SM_AUTOFREE char *prov = fake(fx, name, cases[i].create);
		SM_AUTOFREE char *sql = sm_xasprintf("SELECT state || ' ' || id FROM "
						     "provisioned_device WHERE name = 'x%zu'", i);
		SM_AUTOFREE char *want = sm_xasprintf("failed %zu", i + 1);
		SM_AUTOFREE char *dev = sm_xasprintf("x%zu", i);

		sm_error_clear();
		assert_int_equal(sm_provision_create(fx->j, 0, prov, "", dev, 1, 1, &d),
				 SM_PROVISION_FAILED);
		assert_contains(sm_error_message(), cases[i].why);
		assert_value(fx, sql, want);
		free(sql);
		sql = sm_xasprintf("SELECT error FROM provisioned_device WHERE id = %zu", i + 1);
		{
			char *err = value(fx, sql);

			assert_non_null(err);
			assert_contains(err, cases[i].why);
			free(err);
		}
		/* Asked again: the same row, a second run. */
		assert_int_equal(sm_provision_create(fx->j, 0, prov, "", dev, 1, 1, &d),
				 SM_PROVISION_FAILED);
		free(sql);
		sql = sm_xasprintf("SELECT count(*) FROM provisioned_device WHERE state = 'failed'");
		free(want);
		want = sm_xasprintf("%zu", i + 1);
		assert_value(fx, sql, want);
		free(sql);
		sql = sm_xasprintf("SELECT count(*) FROM provision_run WHERE device_id = %zu", i + 1);
		assert_value(fx, sql, "2");
		/* A failed device is not removed: nothing is known to be there. */
		assert_int_equal(sm_provision_remove(fx->j, 0, (long long)i + 1, 1),
				 SM_PROVISION_REFUSED);
	}
}

/* The program and its folders must be root's alone, as hooks. */
static void test_provisioner_refused(void **state)
{
	struct fx *fx = *state;
	SM_AUTOFREE char *prov = NULL;
	SM_AUTOFREE char *link = NULL;
	SM_AUTOFREE char *sub = NULL;
	SM_AUTOFREE char *in_sub = NULL;
	SM_AUTOFREE char *why = NULL;
	struct sm_device_row d;

	NEED_ROOT(fx);
	prov = fake(fx, "p", "echo /dev/null");
	assert_int_equal(chmod(prov, 0775), 0);
	sm_error_clear();
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "a", 1, 1, &d),
			 SM_PROVISION_REFUSED);
	why = sm_xasprintf("provisioner '%s' is writable by group or others; provisioners run "
			   "as root", prov);
	assert_contains(sm_error_message(), why);
	assert_int_equal(chmod(prov, 0755), 0);
	/* A link to it is not it. */
	link = sm_path_join(fx->dir, "link");
	assert_int_equal(symlink(prov, link), 0);
	assert_int_equal(sm_provision_create(fx->j, 0, link, "", "a", 1, 1, &d),
			 SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "is not a regular file");
	/* A folder others can write, here or above. */
	sub = sm_path_join(fx->dir, "sub");
	assert_int_equal(mkdir(sub, 0755), 0);
	in_sub = fake(fx, "sub/p", "echo /dev/null");
	assert_int_equal(chmod(sub, 0775), 0);
	assert_int_equal(sm_provision_create(fx->j, 0, in_sub, "", "a", 1, 1, &d),
			 SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "provisioner folder");
	assert_contains(sm_error_message(), "is writable by group or others");
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(chmod(fx->dir, 0777), 0);
	assert_int_equal(sm_provision_create(fx->j, 0, in_sub, "", "a", 1, 1, &d),
			 SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "above the provisioner folder");
	assert_int_equal(chmod(fx->dir, 0755), 0);
	/* Bad names and settings. */
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "../x", 1, 1, &d),
			 SM_PROVISION_REFUSED);
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "PATH=/tmp", "a", 1, 1, &d),
			 SM_PROVISION_REFUSED);
	/* Nothing was journaled, nothing ran. */
	assert_value(fx, "SELECT count(*) FROM provisioned_device", "0");
	assert_value(fx, "SELECT count(*) FROM provision_run", "0");
}

/* A job's devices: SNAPMOVE_JOB, and only the job acts on them. */
static void test_job_owner(void **state)
{
	struct fx *fx = *state;
	SM_AUTOFREE char *create = sm_xasprintf("echo %s", fx->dev ? fx->dev : "");
	SM_AUTOFREE char *prov = NULL;
	SM_AUTOFREE char *env = NULL;
	SM_AUTOFREE char *env_path = NULL;
	struct sm_job_row row = { .domain_name = "d", .domain_uuid = "u", .dest_dir = "/x" };
	struct sm_device_row d;
	long long job;

	NEED_ROOT(fx);
	prov = fake(fx, "jobs", create);
	assert_int_equal(SM_JOURNAL_TX(fx->j, sm_journal_job_insert(fx->j, &row, &job)), 0);
	assert_int_equal(sm_provision_create(fx->j, job, prov, "", "vdb", 1, 5, &d),
			 SM_PROVISION_DONE);
	assert_int_equal(d.job, job);
	sm_device_row_release(&d);
	env_path = sm_path_join(fx->tmp, "env");
	env = unit_read_file(env_path);
	{
		SM_AUTOFREE char *want = sm_xasprintf("SNAPMOVE_JOB=%lld\n", job);

		assert_contains(env, want);
	}
	/* The same name for another owner: refused. */
	sm_error_clear();
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "vdb", 1, 5, &d),
			 SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "belongs to job");
	assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_REFUSED);
	assert_contains(sm_error_message(), "which removes it");
	/* The job forgotten: its device stays journaled, now an admin's. */
	assert_int_equal(sm_journal_job_delete(fx->j, job), 0);
	assert_value(fx, "SELECT state || ' ' || coalesce(job_id, 'none') FROM "
		     "provisioned_device WHERE id = 1", "created none");
	assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_DONE);
}

/* A source device that a done move leaves (src/cleanup.c): handed to its
 * provisioner's remove only when this journal says a provisioner made it,
 * its node is still that device number, and no domain names it. */
static void test_source_device_blocker(void **state)
{
	struct fx *fx = *state;
	SM_AUTOFREE char *create = sm_xasprintf("echo %s", fx->dev ? fx->dev : "");
	SM_AUTOFREE char *prov = NULL;
	SM_AUTOFREE char *node = NULL;
	SM_AUTOFREE char *why = NULL;
	struct sm_image_use use = { .path = NULL, .user = (char *)"domain 'other' disk vdz" };
	struct sm_usage none = { 0 }, named = { .uses = &use, .n = 1 };
	struct sm_job_row row = { .domain_name = "d", .domain_uuid = "u", .dest_dir = "/x" };
	struct sm_device_row d;
	struct stat sb;
	long long id = -1, job;
	sqlite3 *db;

	NEED_ROOT(fx);
	assert_int_equal(stat(fx->dev, &sb), 0);
	/* Not made by a provisioner of this journal: kept. */
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &none, &id);
	assert_non_null(why);
	assert_contains(why, "no provisioner of this journal made it");
	assert_int_equal(id, 0);
	free(why);
	prov = fake(fx, "src", create);
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "vda", 1, 5, &d),
			 SM_PROVISION_DONE);
	sm_device_row_release(&d);
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &none, &id);
	assert_null(why);
	assert_int_equal(id, 1);
	/* A domain names it: by its path, or by another node of its number. */
	use.path = fx->dev;
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &named, &id);
	assert_non_null(why);
	assert_string_equal(why, "used by domain 'other' disk vdz");
	free(why);
	node = sm_path_join(fx->tmp, "same-device");
	assert_int_equal(mknod(node, S_IFBLK | 0600, sb.st_rdev), 0);
	use.path = node;
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &named, &id);
	assert_non_null(why);
	assert_contains(why, "used by domain 'other'");
	free(why);
	/* That other node has no device row: never handed to a provisioner. */
	why = sm_cleanup_device_blocker(fx->j, node, &none, &id);
	assert_non_null(why);
	assert_contains(why, "no provisioner of this journal made it");
	free(why);
	/* The row names another device number than the node's. */
	assert_int_equal(sqlite3_open_v2(fx->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE provisioned_device SET rdev = rdev + 1", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &none, &id);
	assert_non_null(why);
	assert_contains(why, "it is no longer the device");
	free(why);
	/* Made by a move that is not done: its own abort removes it. */
	assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_REFUSED);
	assert_int_equal(sqlite3_open_v2(fx->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE provisioned_device SET rdev = rdev - 1", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_DONE);
	assert_int_equal(SM_JOURNAL_TX(fx->j, sm_journal_job_insert(fx->j, &row, &job)), 0);
	assert_int_equal(sm_provision_create(fx->j, job, prov, "", "vdb", 1, 5, &d),
			 SM_PROVISION_DONE);
	sm_device_row_release(&d);
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &none, &id);
	assert_non_null(why);
	assert_contains(why, "made it and is not done");
	free(why);
	assert_int_equal(sm_journal_job_finish(fx->j, job, SM_JOB_DONE, NULL), 0);
	why = sm_cleanup_device_blocker(fx->j, fx->dev, &none, &id);
	assert_null(why);
	assert_int_equal(id, 2);
}

/* A move's device: named after the job and the disk, journaled with the job
 * before create runs, unassigned (resume refuses) until the image row names
 * it, and the image's planned file is then no file of the job. */
static void test_job_device_assign(void **state)
{
	struct fx *fx = *state;
	SM_AUTOFREE char *create = sm_xasprintf("echo %s", fx->dev ? fx->dev : "");
	SM_AUTOFREE char *prov = NULL;
	SM_AUTOFREE char *name = NULL;
	struct sm_job_row row = { .domain_name = "d", .domain_uuid = "u", .dest_dir = "/x" };
	struct sm_plan_image img = {
		.src = (char *)"/s/a.raw", .dst = (char *)"/x/a.raw", .format = (char *)"raw",
		.dst_format = (char *)"raw", .virtual_size = 1, .allocated = 1,
	};
	struct sm_plan_disk p = {
		.target = (char *)"vdb", .src_overlay = (char *)"/x/a.raw.snapmove-1.src.qcow2",
		.dst_overlay = (char *)"/x/a.raw.snapmove-1.qcow2", .virtual_size = 1,
		.images = &img, .nimages = 1,
	};
	struct sm_provdev pd = { .bytes = 1, .exact = true };
	struct sm_device_row d;
	unsigned long long n = 9;
	bool assigned = true;
	long long job;

	name = sm_provdev_name(12, "v/d a");
	assert_string_equal(name, "snapmove-12-v_d_a");
	NEED_ROOT(fx);
	prov = fake(fx, "assign", create);
	assert_int_equal(SM_JOURNAL_TX(fx->j, sm_journal_job_insert(fx->j, &row, &job)), 0);
	assert_int_equal(SM_JOURNAL_TX(fx->j, sm_journal_disk_insert(fx->j, job, &p) < 0 ? -1 :
					   sm_provdev_journal(fx->j, job, prov, "", &p, &pd)), 0);
	assert_true(pd.device > 0);
	free(name);
	name = sm_provdev_name(job, "vdb");
	{
		SM_AUTOFREE char *want = sm_xasprintf("creating %lld %s", job, name);

		assert_value(fx, "SELECT state || ' ' || job_id || ' ' || name FROM "
			     "provisioned_device", want);
	}
	assert_value(fx, "SELECT count(*) FROM file WHERE role = 'dst_image'", "0");
	assert_int_equal(sm_journal_device_unassigned(fx->j, job, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sm_provdev_check_assigned(fx->j, job), -1);
	assert_contains(sm_error_message(), "undo it with 'snapmove abort");
	/* Created (the row claimed again): still on no image. */
	assert_int_equal(sm_provision_create(fx->j, job, prov, "", name, 1, 5, &d),
			 SM_PROVISION_DONE);
	assert_int_equal(d.id, pd.device);
	assert_int_equal(sm_journal_device_assigned(fx->j, d.id, &assigned), 0);
	assert_false(assigned);
	assert_int_equal(sm_journal_device_assign(fx->j, job, "vdb", "/x/a.raw", d.path, d.rdev), 0);
	assert_int_equal(sm_journal_device_assigned(fx->j, d.id, &assigned), 0);
	assert_true(assigned);
	assert_int_equal(sm_journal_device_unassigned(fx->j, job, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sm_provdev_check_assigned(fx->j, job), 0);
	assert_value(fx, "SELECT dst_path FROM image", d.path);
	sm_device_row_release(&d);
}

/* A tampered device row is an error naming the device, never used. */
static void test_tampered_rows(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *set;
		const char *why;
	} cases[] = {
		{ "state = 'exploded'", "unknown state 'exploded'" },
		{ "state = NULL", "state is NULL" },
		{ "path = '/etc/shadow'", "path is not under /dev" },
		{ "path = NULL", "path and rdev are not both set" },
		{ "path = NULL, rdev = NULL", "a device created without a path" },
		{ "rdev = -1", "rdev is out of range" },
		{ "rdev = 'x'", "rdev is not a whole number" },
		{ "bytes = 0", "bytes is out of range" },
		{ "name = '../../etc'", "name is not a device name" },
		{ "provisioner = 'loop'", "provisioner is not an absolute path" },
		{ "settings = 'LD_PRELOAD=/x.so'", "settings holds a line" },
		{ "settings = NULL", "settings is NULL" },
		{ "settings = x'00'", "settings is not text" },
		{ "job_id = -3", "job_id is out of range" },
	};
	SM_AUTOFREE char *create = sm_xasprintf("echo %s", fx->dev ? fx->dev : "");
	SM_AUTOFREE char *prov = NULL;
	struct sm_device_row d, *rows;
	size_t n;

	NEED_ROOT(fx);
	prov = fake(fx, "t", create);
	assert_int_equal(sm_provision_create(fx->j, 0, prov, "", "vdc", 1, 5, &d),
			 SM_PROVISION_DONE);
	sm_device_row_release(&d);
	for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
		SM_AUTOFREE char *sql = sm_xasprintf(
			"PRAGMA foreign_keys = OFF; CREATE TEMP TABLE keep AS SELECT * FROM "
			"provisioned_device; UPDATE provisioned_device SET %s", cases[i].set);
		sqlite3 *db;

		assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
		/* NOT NULL dropped, as a hand editing the journal could. */
		assert_int_equal(sqlite3_exec(db, "PRAGMA writable_schema = ON; UPDATE sqlite_master "
					      "SET sql = replace(sql, 'NOT NULL', '') WHERE name = "
					      "'provisioned_device'", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sm_error_clear();
		assert_int_equal(sm_journal_device_get(fx->j, 1, &d), -2);
		assert_contains(sm_error_message(), "journal row of provisioned device 1 is malformed");
		assert_contains(sm_error_message(), cases[i].why);
		assert_null(d.provisioner);
		assert_int_equal(sm_journal_device_list(fx->j, &rows, &n), -2);
		assert_null(rows);
		/* Nothing is run on a malformed row. */
		assert_int_equal(sm_provision_remove(fx->j, 0, 1, 5), SM_PROVISION_REFUSED);
		assert_int_equal(sqlite3_exec(db, "DELETE FROM provisioned_device; INSERT INTO "
					      "provisioned_device SELECT * FROM keep", NULL, NULL,
					      NULL), SQLITE_OK);
		sqlite3_close(db);
		assert_int_equal(sm_journal_device_get(fx->j, 1, &d), 1);
		sm_device_row_release(&d);
	}
	assert_value(fx, "SELECT count(*) FROM provision_run WHERE op = 'remove'", "0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_output),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_check_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_refused_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provisioner_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_device_blocker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_device_assign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
