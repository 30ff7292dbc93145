/* test_hooks.c: what a hook may be and what it gets.  The environment of a
 * hook (allow-listed, whatever the caller's holds), the folder checks from /
 * down (as root: a sticky /tmp above, a group-writable folder, a link), the
 * hooks of a point run with a facts struct and no job (the facts in their
 * environment, the verdict, the journal row, the warnings), and the spawner
 * on real scripts: run as an open file, a daemon left on the pipes let go
 * of, the time limit; qemu-img found only in system folders.
 */
#include "unit.h"

#include "hooks.h"
#include "journal.h"
#include "progress.h"
#include "run.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

static size_t env_count(char **env)
{
	size_t n = 0;

	while (env && env[n])
		n++;
	return n;
}

static void test_env_allow_list(void **state)
{
	const char *facts[] = { "SNAPMOVE_JOB=7", "LD_PRELOAD=/evil.so", "SNAPMOVE_EVENTS_FILE=/other",
				"SNAPMOVE_HOOK=before_move", "BASH_ENV=/x", "SNAPMOVE_NOVALUE", NULL };
	char **env;

	(void)state;
	setenv("LD_PRELOAD", "/nonexistent.so", 1);
	setenv("BASH_ENV", "/some/file", 1);
	setenv("SECRET", "x", 1);
	setenv("HOME", "/home/someone", 1);
	env = sm_hooks_env_new("/var/log/ev", facts);
	assert_int_equal(env_count(env), 6);
	assert_string_equal(env[0], "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	assert_string_equal(env[1], "LC_ALL=C");
	assert_string_equal(env[2], "HOME=/root");
	assert_string_equal(env[3], "SNAPMOVE_EVENTS_FILE=/var/log/ev");
	assert_string_equal(env[4], "SNAPMOVE_JOB=7");
	assert_string_equal(env[5], "SNAPMOVE_HOOK=before_move");
	sm_hooks_env_free(env);

	/* No events file: no SNAPMOVE_EVENTS_FILE at all. */
	env = sm_hooks_env_new("", NULL);
	assert_int_equal(env_count(env), 3);
	sm_hooks_env_free(env);
	env = sm_hooks_env_new(NULL, NULL);
	assert_int_equal(env_count(env), 3);
	sm_hooks_env_free(env);
	unsetenv("LD_PRELOAD");
	unsetenv("BASH_ENV");
	unsetenv("SECRET");
}

/* A private folder under root's /run (mode 0755), for the folder checks. */
static char *root_dir(void)
{
	char *dir = sm_xstrdup("/run/snapmove-unit.XXXXXX");

	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	return dir;
}

static void expect_refused(const char *dir, const char *why)
{
	sm_error_clear();
	assert_int_equal(sm_hooks_open_folder(dir), -1);
	assert_contains(sm_error_message(), why);
}

static void test_folders(void **state)
{
	char *top, *sub, *link, *hooks, *tmp, *why;
	int fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	fd = sm_hooks_open_folder("/etc");
	assert_true(fd >= 0);
	close(fd);

	/* Under /tmp: sticky, but writable by all. */
	tmp = unit_mkdtemp();
	why = sm_xasprintf("folder '/tmp' above the hooks folder '%s' is writable by group or others", tmp);
	if (strncmp(tmp, "/tmp/", 5) == 0)
		expect_refused(tmp, why);
	free(why);
	unit_rmtree(tmp);

	top = root_dir();
	fd = sm_hooks_open_folder(top);
	assert_true(fd >= 0);
	close(fd);
	/* The hooks folder itself, then a folder above it. */
	assert_int_equal(chmod(top, 0775), 0);
	why = sm_xasprintf("hook folder '%s' is writable by group or others", top);
	expect_refused(top, why);
	free(why);
	sub = sm_path_join(top, "a");
	hooks = sm_path_join(sub, "hooks");
	assert_int_equal(mkdir(sub, 0757), 0);
	assert_int_equal(chmod(sub, 0757), 0);
	assert_int_equal(mkdir(hooks, 0755), 0);
	assert_int_equal(chmod(top, 0755), 0);
	why = sm_xasprintf("folder '%s' above the hooks folder '%s' is writable by group or others",
			   sub, hooks);
	expect_refused(hooks, why);
	free(why);
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(chown(sub, 65534, 0), 0);
	why = sm_xasprintf("folder '%s/a' above the hooks folder '%s/a/hooks' is not owned by root",
			   top, top);
	expect_refused(hooks, why);
	free(why);
	assert_int_equal(chown(sub, 0, 0), 0);
	fd = sm_hooks_open_folder(hooks);
	assert_true(fd >= 0);
	close(fd);
	/* A link (in a root-only folder) is resolved, then what it leads to is
	 * checked all the way down. */
	link = sm_path_join(top, "link");
	assert_int_equal(symlink(hooks, link), 0);
	fd = sm_hooks_open_folder(link);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(sub, 0777), 0);
	why = sm_xasprintf("folder '%s' above the hooks folder '%s'", sub, link);
	expect_refused(link, why);
	free(why);
	expect_refused("/nonexistent-snapmove-hooks", "cannot read the hooks folder");
	free(link);
	free(hooks);
	free(sub);
	unit_rmtree(top);
}

/* A root-owned 0755 script in dir; its name, to free. */
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

/* The hooks of a point, run with facts only.  A hooks folder under /run
 * (root's, 0755 all the way), a journal with one job for the hook_run rows,
 * and progress lines written to a file. */
struct point_fixture {
	char *hooks;            /* the hooks folder */
	char *dir;              /* the journal, the hooks' output, the progress lines */
	char *db;
	char *said;             /* the progress lines */
	struct sm_journal *j;
	struct sm_progress pr;
	FILE *pr_file;
	long long job;
	int xml_asked;          /* calls of the domain XML callback */
};

static const char *const vda_src[] = { "/src/base.qcow2", "/src/vda.qcow2" };
static const char *const vda_dst[] = { "/mnt/fast/base.qcow2", "/mnt/fast/vda.qcow2" };
static const char *const vdb_src[] = { "/src/vdb.raw" };
static const char *const vdb_dst[] = { "/mnt/fast/vdb.raw" };
static const struct sm_hook_disk two_disks[] = {
	{ .target = "vda", .state = "copying", .src = vda_src, .nsrc = 2, .dst = vda_dst, .ndst = 2 },
	{ .target = "vdb", .state = "mirroring", .src = vdb_src, .nsrc = 1, .dst = vdb_dst, .ndst = 1 },
};

static char *unit_domain_xml(void *opaque)
{
	struct point_fixture *pf = opaque;

	pf->xml_asked++;
	return sm_xstrdup("<domain><name>unit-dom</name></domain>\n");
}

static struct sm_hook_facts point_facts(struct point_fixture *pf)
{
	struct sm_hook_facts f = {
		.job = pf->job,
		.domain = "unit-dom",
		.uuid = "6b1c0a4e-3d1f-4a55-9b39-2f1e8c7d9a10",
		.phase = "copy",
		.dest = "/mnt/fast",
		.disks = two_disks,
		.ndisks = 2,
		.domain_xml = unit_domain_xml,
		.opaque = pf,
		.journal = pf->j,
		.progress = &pf->pr,
	};

	return f;
}

static int point_setup(void **state)
{
	struct point_fixture *pf = calloc(1, sizeof(*pf));
	struct sm_job_row row = {
		.domain_name = "unit-dom",
		.domain_uuid = "6b1c0a4e-3d1f-4a55-9b39-2f1e8c7d9a10",
		.dest_dir = "/mnt/fast",
	};

	if (!pf)
		return -1;
	*state = pf;
	if (geteuid() != 0)
		return 0;  /* each test skips */
	pf->hooks = root_dir();
	pf->dir = unit_mkdtemp();
	pf->db = sm_path_join(pf->dir, "journal.db");
	pf->said = sm_path_join(pf->dir, "said");
	if (sm_journal_open(pf->db, &pf->j) != 0 ||
	    SM_JOURNAL_TX(pf->j, sm_journal_job_insert(pf->j, &row, &pf->job)) < 0) {
		print_error("cannot make the journal: %s\n", sm_error_message());
		return -1;
	}
	pf->pr_file = fopen(pf->said, "w");
	if (!pf->pr_file)
		return -1;
	sm_progress_init(&pf->pr, pf->pr_file, false);
	sm_hooks_configure(pf->hooks, 10);
	unsetenv("SNAPMOVE_EVENTS_FILE");
	return 0;
}

static int point_teardown(void **state)
{
	struct point_fixture *pf = *state;

	if (pf->pr_file) {
		sm_progress_release(&pf->pr);
		fclose(pf->pr_file);
	}
	sm_journal_free(pf->j);
	unit_rmtree(pf->hooks);  /* and frees the name */
	unit_rmtree(pf->dir);
	free(pf->db);
	free(pf->said);
	free(pf);
	sm_hooks_configure(NULL, 60);
	return 0;
}

/* A folder for point's hooks in the hooks folder; its path, to free. */
static char *point_dir(struct point_fixture *pf, const char *point)
{
	char *dir = sm_path_join(pf->hooks, point);

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	return dir;
}

/* One value of the journal (an integer or text), as a string to free. */
static char *journal_value(struct point_fixture *pf, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *ret = NULL;

	assert_int_equal(sqlite3_open_v2(pf->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		ret = sm_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

static void assert_journal(struct point_fixture *pf, const char *sql, const char *want)
{
	char *got = journal_value(pf, sql);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* The line of env (a file of `env` output) that starts with name=; its
 * value, to free. */
static char *env_value(const char *env, const char *name)
{
	SM_AUTOFREE char *key = sm_xasprintf("\n%s=", name);
	SM_AUTOFREE char *text = sm_xasprintf("\n%s", env);
	const char *at = strstr(text, key), *end;

	if (!at) {
		print_error("no %s in the hook's environment:\n%s\n", name, env);
		fail();
	}
	at += strlen(key);
	end = strchr(at, '\n');
	return sm_xasprintf("%.*s", (int)(end ? end - at : (ptrdiff_t)strlen(at)), at);
}

static void assert_env(const char *env, const char *name, const char *want)
{
	char *got = env_value(env, name);

	assert_string_equal(got, want);
	free(got);
}

/* The facts reach the hook's environment (and nothing of the caller's), the
 * domain XML as a read-only file that is gone after, one journal row. */
static void test_point_facts(void **state)
{
	struct point_fixture *pf = *state;
	struct sm_hook_facts f;
	char *dir, *hook, *body, *env, *xml, *mode, *job, *xml_path;

	if (geteuid() != 0)
		skip();
	f = point_facts(pf);
	/* No folder for the point: nothing runs, the XML is not even asked. */
	assert_int_equal(sm_hooks_run_point("before_move", &f), SM_HOOK_OK);
	assert_int_equal(pf->xml_asked, 0);

	dir = point_dir(pf, "before_move");
	body = sm_xasprintf("env >%s/env\ncat \"$SNAPMOVE_DOMXML\" >%s/xml\n"
			    "stat -c %%a \"$SNAPMOVE_DOMXML\" >%s/mode", pf->dir, pf->dir, pf->dir);
	hook = script(dir, "10-env", body);
	setenv("SECRET", "x", 1);
	assert_int_equal(sm_hooks_run_point("before_move", &f), SM_HOOK_OK);
	unsetenv("SECRET");
	assert_int_equal(pf->xml_asked, 1);

	free(body);
	body = sm_path_join(pf->dir, "env");
	env = unit_read_file(body);
	job = sm_xasprintf("%lld", pf->job);
	assert_env(env, "SNAPMOVE_JOB", job);
	assert_env(env, "SNAPMOVE_HOOK", "before_move");
	assert_env(env, "SNAPMOVE_DOMAIN", "unit-dom");
	assert_env(env, "SNAPMOVE_DOMAIN_UUID", "6b1c0a4e-3d1f-4a55-9b39-2f1e8c7d9a10");
	assert_env(env, "SNAPMOVE_PHASE", "copy");
	assert_env(env, "SNAPMOVE_DEST", "/mnt/fast");
	assert_env(env, "SNAPMOVE_DISKS", "vda vdb");
	assert_env(env, "SNAPMOVE_SRC_CHAIN_vda", "/src/base.qcow2:/src/vda.qcow2");
	assert_env(env, "SNAPMOVE_DST_CHAIN_vda", "/mnt/fast/base.qcow2:/mnt/fast/vda.qcow2");
	assert_env(env, "SNAPMOVE_SRC_CHAIN_vdb", "/src/vdb.raw");
	assert_env(env, "SNAPMOVE_DST_CHAIN_vdb", "/mnt/fast/vdb.raw");
	assert_env(env, "SNAPMOVE_CHAINS",
		   "{\"vda\":{\"source\":\"/src/base.qcow2:/src/vda.qcow2\","
		   "\"destination\":\"/mnt/fast/base.qcow2:/mnt/fast/vda.qcow2\",\"state\":\"copying\"},"
		   "\"vdb\":{\"source\":\"/src/vdb.raw\",\"destination\":\"/mnt/fast/vdb.raw\","
		   "\"state\":\"mirroring\"}}");
	assert_env(env, "LC_ALL", "C");
	assert_not_contains(env, "SECRET=");
	/* The domain XML: what the callback gave, read-only, removed after. */
	xml_path = env_value(env, "SNAPMOVE_DOMXML");
	free(body);
	body = sm_path_join(pf->dir, "xml");
	xml = unit_read_file(body);
	assert_string_equal(xml, "<domain><name>unit-dom</name></domain>\n");
	free(body);
	body = sm_path_join(pf->dir, "mode");
	mode = unit_read_file(body);
	assert_string_equal(mode, "444\n");
	assert_int_equal(access(xml_path, F_OK), -1);
	/* One journal row for the run. */
	free(body);
	body = sm_xasprintf("1 %s before_move %s 0 0", job, hook);
	assert_journal(pf, "SELECT count(*) || ' ' || min(job_id) || ' ' || min(point) || ' ' || "
		       "min(hook) || ' ' || min(exit_status) || ' ' || min(timed_out) FROM hook_run",
		       body);
	free(xml_path);
	free(mode);
	free(xml);
	free(job);
	free(env);
	free(body);
	free(hook);
	free(dir);
}

/* A before_* hook that exits non-zero vetoes: the verdict, the error naming
 * it and its stderr, no later hook of the point run, the run journaled.  At
 * an after_* point the same failure is a warning and every hook runs. */
static void test_point_veto(void **state)
{
	struct point_fixture *pf = *state;
	struct sm_hook_facts f;
	char *dir, *no, *later, *body, *marker, *want, *said;

	if (geteuid() != 0)
		skip();
	f = point_facts(pf);
	marker = sm_path_join(pf->dir, "later-ran");
	dir = point_dir(pf, "before_pivot");
	no = script(dir, "10-no", "echo 'not now: the backup runs' >&2; exit 3");
	body = sm_xasprintf("touch %s", marker);
	later = script(dir, "20-later", body);
	sm_error_clear();
	assert_int_equal(sm_hooks_run_point("before_pivot", &f), SM_HOOK_VETOED);
	want = sm_xasprintf("vetoed by a before_pivot hook: hook '%s' exited 3: not now: the backup runs",
			    no);
	assert_string_equal(sm_error_message(), want);
	assert_int_equal(access(marker, F_OK), -1);
	free(want);
	want = sm_xasprintf("1 before_pivot %s 3 not now: the backup runs", no);
	assert_journal(pf, "SELECT count(*) || ' ' || min(point) || ' ' || min(hook) || ' ' || "
		       "min(exit_status) || ' ' || min(stderr) FROM hook_run", want);
	free(want);
	free(later);
	free(no);
	free(dir);

	/* after_pivot: the failure is a warning, the next hook runs, no veto. */
	dir = point_dir(pf, "after_pivot");
	no = script(dir, "10-no", "echo 'cannot tell the backup' >&2; exit 1");
	later = script(dir, "20-later", body);
	sm_error_clear();
	assert_int_equal(sm_hooks_run_point("after_pivot", &f), SM_HOOK_OK);
	assert_int_equal(access(marker, F_OK), 0);
	assert_journal(pf, "SELECT count(*) FROM hook_run WHERE point = 'after_pivot'", "2");
	fflush(pf->pr_file);
	said = unit_read_file(pf->said);
	want = sm_xasprintf("warning: hook '%s' exited 1: cannot tell the backup\n", no);
	assert_string_equal(said, want);
	free(said);
	free(want);
	free(later);
	free(no);
	free(dir);

	/* A hook that may not run (writable by others): refused, a veto
	 * before, a warning after; it never runs and no run is journaled. */
	free(body);
	body = sm_xasprintf("touch %s-refused", marker);
	dir = point_dir(pf, "before_move");
	no = script(dir, "10-open", body);
	assert_int_equal(chmod(no, 0757), 0);
	sm_error_clear();
	assert_int_equal(sm_hooks_run_point("before_move", &f), SM_HOOK_VETOED);
	want = sm_xasprintf("vetoed by a before_move hook: hook file '%s' is writable by group or others",
			    no);
	assert_contains(sm_error_message(), want);
	free(want);
	free(dir);
	free(no);
	dir = point_dir(pf, "after_move");
	no = script(dir, "10-open", body);
	assert_int_equal(chmod(no, 0757), 0);
	assert_int_equal(sm_hooks_run_point("after_move", &f), SM_HOOK_OK);
	fflush(pf->pr_file);
	said = unit_read_file(pf->said);
	want = sm_xasprintf("warning: hook file '%s' is writable by group or others", no);
	assert_contains(said, want);
	free(marker);
	marker = sm_xasprintf("%s/later-ran-refused", pf->dir);
	assert_int_equal(access(marker, F_OK), -1);
	assert_journal(pf, "SELECT count(*) FROM hook_run WHERE point LIKE '%move'", "0");
	free(said);
	free(want);
	free(no);
	free(dir);
	free(body);
	free(marker);
}

static int spawn(const char *path, double timeout, struct sm_run_result *res, bool *timed_out,
		 double *secs)
{
	const char *argv[] = { path, "before_move", NULL };
	const char *env[] = { "PATH=/usr/bin:/bin", "ONLY=this", NULL };
	int fd = open(path, O_PATH | O_CLOEXEC);
	struct sm_spawn sp = { .argv = argv, .env = env, .exec_fd = fd, .timeout = timeout };
	double t0 = sm_monotonic();
	int rc;

	assert_true(fd >= 0);
	rc = sm_run_spawn(&sp, res, timed_out);
	*secs = sm_monotonic() - t0;
	close(fd);
	return rc;
}

static void kill_daemon(const char *pidfile)
{
	char *s = unit_read_file(pidfile);
	long pid = strtol(s, NULL, 10);

	if (pid > 1)
		kill((pid_t)pid, SIGKILL);
	free(s);
}

static void test_spawn_script(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = script(dir, "hook", "echo \"$1 $ONLY ${SECRET:-none} $PATH\"; echo err >&2; exit 3");
	struct sm_run_result res;
	bool timed_out = true;
	double secs;

	(void)state;
	setenv("SECRET", "x", 1);
	assert_int_equal(spawn(path, 10, &res, &timed_out, &secs), 0);
	unsetenv("SECRET");
	assert_int_equal(res.status, 3);
	assert_false(timed_out);
	assert_string_equal(res.out, "before_move this none /usr/bin:/bin\n");
	assert_string_equal(res.err, "err\n");
	sm_run_result_release(&res);
	free(path);
	unit_rmtree(dir);
}

static void test_spawn_daemon(void **state)
{
	char *dir = unit_mkdtemp();
	char *pidfile = sm_path_join(dir, "daemon.pid");
	char *body = sm_xasprintf("setsid sleep 20 & echo $! >%s\n"
				  "until [ \"$(ps -o sid= -p $! | tr -d ' ')\" = $! ]; do sleep 0.02; done\n"
				  "echo left", pidfile);
	char *path = script(dir, "hook", body);
	struct sm_run_result res;
	bool timed_out = true;
	double secs;

	(void)state;
	/* Exits at once: let go of 0.2 s after, not when the daemon ends (in
	 * 20 s; the bound leaves room for a loaded machine). */
	assert_int_equal(spawn(path, 10, &res, &timed_out, &secs), 0);
	assert_int_equal(res.status, 0);
	assert_false(timed_out);
	assert_true(secs < 10);
	assert_string_equal(res.out, "left\n");
	sm_run_result_release(&res);
	kill_daemon(pidfile);
	free(path);
	free(body);

	/* Past its limit: killed at 1 s and let go of at once. */
	body = sm_xasprintf("setsid sleep 20 & echo $! >%s; sleep 20", pidfile);
	path = script(dir, "hook2", body);
	assert_int_equal(spawn(path, 1, &res, &timed_out, &secs), 0);
	assert_true(timed_out);
	assert_int_equal(res.status, 128 + SIGKILL);
	assert_true(secs >= 1 && secs < 10);
	sm_run_result_release(&res);
	kill_daemon(pidfile);

	/* A program that closes its output and runs on still has a limit. */
	free(path);
	path = script(dir, "hook3", "exec >&- 2>&-; sleep 20");
	assert_int_equal(spawn(path, 1, &res, &timed_out, &secs), 0);
	assert_true(timed_out);
	assert_true(secs >= 1 && secs < 10);
	sm_run_result_release(&res);
	free(path);
	free(body);
	free(pidfile);
	unit_rmtree(dir);
}

static void test_which(void **state)
{
	char *dir = unit_mkdtemp();
	char *fake = script(dir, "snapmove-unit-fake", "exit 0");
	char *path = sm_xasprintf("%s:%s", dir, getenv("PATH") ? getenv("PATH") : "");
	const char *sh;

	(void)state;
	setenv("PATH", path, 1);
	sh = sm_run_which("sh");
	assert_non_null(sh);
	assert_true(sh[0] == '/');
	assert_ptr_equal(sm_run_which("sh"), sh);  /* looked up once */
	sm_error_clear();
	assert_null(sm_run_which("snapmove-unit-fake"));
	assert_contains(sm_error_message(), "cannot find 'snapmove-unit-fake' in /usr/sbin:/usr/bin:/sbin:/bin");
	free(path);
	free(fake);
	unit_rmtree(dir);
}

/* The environment of a child snapmove (a rebalance's move): run.c's own
 * variables and, of the caller's, only those named. */
static void test_run_env_new(void **state)
{
	const char *keep[] = { "SNAPMOVE_EVENTS_FILE", "SNAPMOVE_UNSET", NULL };
	char **env;

	(void)state;
	setenv("LD_PRELOAD", "/nonexistent.so", 1);
	setenv("SECRET", "x", 1);
	setenv("PATH", "/evil/bin:/usr/bin", 1);
	setenv("SNAPMOVE_EVENTS_FILE", "/var/log/ev", 1);
	setenv("SNAPMOVE_OTHER", "y", 1);
	unsetenv("SNAPMOVE_UNSET");
	env = sm_run_env_new(keep);
	assert_int_equal(env_count(env), 4);
	assert_string_equal(env[0], "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	assert_string_equal(env[1], "LC_ALL=C");
	assert_string_equal(env[2], "HOME=/root");
	assert_string_equal(env[3], "SNAPMOVE_EVENTS_FILE=/var/log/ev");
	sm_run_env_free(env);
	env = sm_run_env_new(NULL);
	assert_int_equal(env_count(env), 3);
	sm_run_env_free(env);
	unsetenv("LD_PRELOAD");
	unsetenv("SECRET");
	unsetenv("SNAPMOVE_EVENTS_FILE");
	unsetenv("SNAPMOVE_OTHER");
}

/* sm_run_start runs an open binary with the environment given, its output
 * into a file, and does not wait; sm_run_wait_any reaps the children it is
 * given, in the order they end, and no other child of the process. */
static void test_run_start_wait(void **state)
{
	char *dir = unit_mkdtemp();
	char *out = sm_path_join(dir, "out");
	const char *env[] = { "PATH=/usr/bin:/bin", "ONLY=this", NULL };
	const char *a0[] = { "sh", "-c", "echo \"$ONLY ${SECRET:-none}\"; echo err >&2; exit 3", NULL };
	/* Ends on a signal, and only once the other two were reaped: it waits
	 * for the file go, made then (no sleep deciding the order). */
	char *go = sm_path_join(dir, "go");
	char *last = sm_xasprintf("until [ -e '%s' ]; do sleep 0.01; done; kill -TERM $$", go);
	const char *a1[] = { "sh", "-c", last, NULL };
	const char *a2[] = { "sh", "-c", "exit 0", NULL };
	struct sm_run_child kids[3];
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int sh = open("/bin/sh", O_RDONLY | O_CLOEXEC);
	int status = -1, ws;
	struct sm_spawn sp = { .env = env, .exec_fd = sh, .exec_fd_binary = true };
	pid_t other;
	char *text;
	long i;

	(void)state;
	assert_true(fd >= 0 && sh >= 0);
	setenv("SECRET", "x", 1);
	/* A child of the process that is none of these. */
	other = fork();
	if (other == 0) {
		usleep(100 * 1000);
		_exit(9);
	}
	sp.argv = a1;
	assert_int_equal(sm_run_start(&sp, fd, fd, &kids[1]), 0);
	sp.argv = a0;
	assert_int_equal(sm_run_start(&sp, fd, fd, &kids[0]), 0);
	sp.argv = a2;
	assert_int_equal(sm_run_start(&sp, fd, fd, &kids[2]), 0);
	close(fd);
	for (int k = 0; k < 3; k++)
		assert_true(kids[k].pid > 0);
	/* The two quick ones end first, the signalled one last. */
	for (int k = 0; k < 2; k++) {
		do
			i = sm_run_wait_any(kids, 3, &status);
		while (i < 0 && errno == EINTR);
		assert_true(i == 0 || i == 2);
		assert_int_equal(status, i == 0 ? 3 : 0);
		assert_int_equal(kids[i].pid, 0);
		assert_int_equal(kids[i].pidfd, -1);
	}
	assert_int_equal(close(open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	do
		i = sm_run_wait_any(kids, 3, &status);
	while (i < 0 && errno == EINTR);
	assert_int_equal(i, 1);
	assert_int_equal(status, 128 + SIGTERM);
	assert_int_equal(sm_run_wait_any(kids, 3, &status), -1);
	assert_int_equal(errno, ECHILD);
	/* The other child was left to its parent. */
	assert_int_equal(waitpid(other, &ws, 0), other);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 9);
	text = unit_read_file(out);
	assert_contains(text, "this none\n");
	assert_contains(text, "err\n");
	free(text);
	/* A program that cannot run is an error, and leaves no child. */
	close(sh);
	sp.exec_fd = -1;
	sp.argv = (const char *[]){ "/nonexistent/program", NULL };
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_int_equal(sm_run_start(&sp, fd, fd, &kids[0]), -1);
	assert_contains(sm_error_message(), "cannot run '/nonexistent/program'");
	assert_int_equal(kids[0].pid, 0);
	close(fd);
	unsetenv("SECRET");
	free(out);
	free(go);
	free(last);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_allow_list),
		cmocka_unit_test(test_folders),
		cmocka_unit_test_setup_teardown(test_point_facts, point_setup, point_teardown),
		cmocka_unit_test_setup_teardown(test_point_veto, point_setup, point_teardown),
		cmocka_unit_test(test_spawn_script),
		cmocka_unit_test(test_spawn_daemon),
		cmocka_unit_test(test_which),
		cmocka_unit_test(test_run_env_new),
		cmocka_unit_test(test_run_start_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
