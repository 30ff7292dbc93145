/* hooks.c: find, check and run the hooks of a point, with the job's facts in
 * their environment, a time limit, and a journal row per run.  Every folder
 * from / down and each hook is checked on an open file, and that file is what
 * runs; starting it, the time limit and the pipes are run.c's.  It is told
 * the facts (struct sm_hook_facts) and answers a verdict: what a job is, and
 * what a veto does to one, are the job layer's (src/job_hooks.c).
 */
#include "hooks.h"
#include "events.h"
#include "journal.h"
#include "progress.h"
#include "run.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *hooks_dir;
static double hooks_timeout = 60;

void sm_hooks_configure(const char *dir, double timeout)
{
	free(hooks_dir);
	hooks_dir = dir ? sm_xstrdup(dir) : NULL;
	if (timeout > 0)
		hooks_timeout = timeout;
}

static const char *dir_of_hooks(void)
{
	return hooks_dir ? hooks_dir : SM_HOOKS_DIR;
}

const char *sm_hooks_dir(void)
{
	return dir_of_hooks();
}

double sm_hooks_timeout(void)
{
	return hooks_timeout;
}

/* What a checked path is: a hook, a hooks folder (HOOKS_DIR or a point's),
 * or a folder above HOOKS_DIR. */
enum hook_path {
	HOOK_FILE,
	HOOK_FOLDER,
	HOOK_PARENT,
};

#define HOOK_RULE "hooks run as root, so they must be root's own regular executables in root's own folders"
#define HOOK_MOVE "move the hooks folder to one only root can write (such as /etc/snapmove)"

/* Hooks run as root: a hook, its folders and every folder above them must be
 * root's own and writable by root alone (a sticky /tmp is not: whoever can
 * write there can rename the folders below away); each refusal is one whole
 * message with its fix.  hooks names HOOKS_DIR for a HOOK_PARENT. */
static int check_stat(const struct stat *sb, const char *path, enum hook_path kind,
		      const char *hooks)
{
	switch (kind) {
	case HOOK_FILE:
		if (!S_ISREG(sb->st_mode)) {
			sm_error("hook file '%s' is not a regular file; " HOOK_RULE ": put the "
				 "program itself there, not a link to it", path);
			return -1;
		}
		if (sb->st_uid != 0) {
			sm_error("hook file '%s' is not owned by root; " HOOK_RULE ": 'chown root %s'",
				 path, path);
			return -1;
		}
		if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
			sm_error("hook file '%s' is writable by group or others; " HOOK_RULE ": "
				 "'chmod go-w %s'", path, path);
			return -1;
		}
		if (!(sb->st_mode & S_IXUSR)) {
			sm_error("hook file '%s' is not executable; " HOOK_RULE ": 'chmod u+x %s'",
				 path, path);
			return -1;
		}
		return 0;
	case HOOK_FOLDER:
		if (!S_ISDIR(sb->st_mode)) {
			sm_error("hook folder '%s' is not a directory; " HOOK_RULE ": make it a "
				 "directory owned by root, or pass another --hooks-dir", path);
			return -1;
		}
		if (sb->st_uid != 0) {
			sm_error("hook folder '%s' is not owned by root; " HOOK_RULE ": 'chown root %s'",
				 path, path);
			return -1;
		}
		if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
			sm_error("hook folder '%s' is writable by group or others; " HOOK_RULE ": "
				 "'chmod go-w %s'", path, path);
			return -1;
		}
		return 0;
	case HOOK_PARENT:
		if (!S_ISDIR(sb->st_mode)) {
			sm_error("'%s' above the hooks folder '%s' is not a directory; " HOOK_RULE ": "
				 HOOK_MOVE, path, hooks);
			return -1;
		}
		if (sb->st_uid != 0) {
			sm_error("folder '%s' above the hooks folder '%s' is not owned by root; "
				 HOOK_RULE ": " HOOK_MOVE, path, hooks);
			return -1;
		}
		if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
			sm_error("folder '%s' above the hooks folder '%s' is writable by group or "
				 "others; " HOOK_RULE ": " HOOK_MOVE, path, hooks);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* Open name in folder at (O_PATH, never following a link) and check it; the
 * fd, or -1 with an error.  path names it in messages. */
static int open_checked(int at, const char *name, const char *path, enum hook_path kind,
			const char *hooks)
{
	struct stat sb;
	int fd = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (kind == HOOK_FILE)
			sm_error("cannot read hook '%s': %s", path, strerror(errno));
		else
			sm_error("cannot read the hooks folder '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (check_stat(&sb, path, kind, hooks) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int sm_hooks_open_folder(const char *dir)
{
	SM_AUTOFREE char *real = realpath(dir, NULL);
	char *p, *next;
	int fd;

	if (!real) {
		sm_error("cannot read the hooks folder '%s': %s", dir, strerror(errno));
		return -1;
	}
	/* From / down, each folder opened in the one checked before it. */
	fd = open_checked(AT_FDCWD, "/", "/", strcmp(real, "/") ? HOOK_PARENT : HOOK_FOLDER, dir);
	for (p = real + 1; fd >= 0 && *p; p = next) {
		int sub;

		next = strchr(p, '/');
		if (next)
			*next++ = '\0';
		else
			next = p + strlen(p);
		{
			SM_AUTOFREE char *upto = sm_xasprintf("%.*s", (int)(p - real + (ptrdiff_t)strlen(p)), real);

			sub = *next ? open_checked(fd, p, upto, HOOK_PARENT, dir)
				    : open_checked(fd, p, dir, HOOK_FOLDER, dir);
		}
		close(fd);
		fd = sub;
		if (*next)
			next[-1] = '/';
	}
	return fd;
}

static int name_order(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in folder fd not starting with '.', in order; NULL and *n = -1
 * on error. */
static char **list_hooks(int fd, const char *path, int *n)
{
	int rfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = rfd >= 0 ? fdopendir(rfd) : NULL;
	struct dirent *e;
	char **names = NULL;

	*n = 0;
	if (!d) {
		sm_error("cannot read the hooks folder '%s': %s", path, strerror(errno));
		if (rfd >= 0)
			close(rfd);
		*n = -1;
		return NULL;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = sm_xrealloc(names, (size_t)(*n + 1) * sizeof(*names));
		names[(*n)++] = sm_xstrdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(names, (size_t)*n, sizeof(*names), name_order);
	return names;
}

struct env {
	char **vars;
	size_t n;
};

static void env_add(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void env_add(struct env *e, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	e->vars = sm_xrealloc(e->vars, (e->n + 2) * sizeof(*e->vars));
	e->vars[e->n++] = s;
	e->vars[e->n] = NULL;
}

static void env_free(struct env *e)
{
	sm_hooks_env_free(e->vars);
	e->vars = NULL;
	e->n = 0;
}

char **sm_hooks_env_new(const char *events_file, const char *const *facts)
{
	struct env e = { 0 };

	env_add(&e, "PATH=%s", SM_RUN_PATH);
	env_add(&e, "LC_ALL=C");
	env_add(&e, "HOME=/root");
	if (events_file && *events_file)
		env_add(&e, "SNAPMOVE_EVENTS_FILE=%s", events_file);
	for (size_t i = 0; facts && facts[i]; i++)
		if (strncmp(facts[i], "SNAPMOVE_", 9) == 0 &&
		    strncmp(facts[i], "SNAPMOVE_EVENTS_FILE=", 21) != 0 && strchr(facts[i], '='))
			env_add(&e, "%s", facts[i]);
	return e.vars;
}

void sm_hooks_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* A chain's files joined by ':'. */
static char *chain_list(const char *const *paths, size_t n)
{
	size_t len = 1;
	char *s;

	for (size_t k = 0; k < n; k++)
		len += strlen(paths[k]) + 1;
	s = sm_xcalloc(1, len);
	for (size_t k = 0; k < n; k++) {
		if (k)
			strcat(s, ":");
		strcat(s, paths[k]);
	}
	return s;
}

static void build_env(const struct sm_hook_facts *f, const char *point, const char *xml_path,
		      struct env *e)
{
	struct json_object *chains = json_object_new_object();
	size_t len = 1;
	char *disks;

	for (size_t i = 0; i < f->ndisks; i++)
		len += strlen(f->disks[i].target) + 1;
	disks = sm_xcalloc(1, len);
	for (size_t i = 0; i < f->ndisks; i++) {
		const struct sm_hook_disk *hd = &f->disks[i];
		SM_AUTOFREE char *src = chain_list(hd->src, hd->nsrc);
		SM_AUTOFREE char *dst = chain_list(hd->dst, hd->ndst);
		struct json_object *d = json_object_new_object();

		if (i)
			strcat(disks, " ");
		strcat(disks, hd->target);
		env_add(e, "SNAPMOVE_SRC_CHAIN_%s=%s", hd->target, src);
		env_add(e, "SNAPMOVE_DST_CHAIN_%s=%s", hd->target, dst);
		json_object_object_add(d, "source", json_object_new_string(src));
		json_object_object_add(d, "destination", json_object_new_string(dst));
		json_object_object_add(d, "state", json_object_new_string(hd->state));
		json_object_object_add(chains, hd->target, d);
	}
	env_add(e, "SNAPMOVE_HOOK=%s", point);
	env_add(e, "SNAPMOVE_JOB=%lld", f->job);
	env_add(e, "SNAPMOVE_DOMAIN=%s", f->domain);
	env_add(e, "SNAPMOVE_DOMAIN_UUID=%s", f->uuid);
	env_add(e, "SNAPMOVE_DISKS=%s", disks);
	env_add(e, "SNAPMOVE_PHASE=%s", f->phase);
	env_add(e, "SNAPMOVE_DEST=%s", f->dest);
	env_add(e, "SNAPMOVE_CHAINS=%s", json_object_to_json_string_ext(
			chains, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (xml_path)
		env_add(e, "SNAPMOVE_DOMXML=%s", xml_path);
	json_object_put(chains);
	free(disks);
}

/* A read-only copy of the domain XML for the hooks; NULL when unavailable. */
static char *write_domxml(const struct sm_hook_facts *f)
{
	char tmpl[] = "/tmp/snapmove-domxml-XXXXXX";
	char *xml;
	int fd;
	size_t len;

	if (!f->domain_xml)
		return NULL;
	xml = f->domain_xml(f->opaque);
	if (!xml)
		return NULL;
	fd = mkstemp(tmpl);
	len = strlen(xml);
	if (fd < 0 || write(fd, xml, len) != (ssize_t)len || fchmod(fd, 0444) < 0) {
		if (fd >= 0) {
			close(fd);
			unlink(tmpl);
		}
		free(xml);
		return NULL;
	}
	close(fd);
	free(xml);
	return sm_xstrdup(tmpl);
}

static bool is_before(const char *point)
{
	return strncmp(point, "before_", 7) == 0;
}

/* Run the checked hook open at fd; 0 it succeeded, 1 it failed (message
 * recorded), -1 error. */
static int run_one(const struct sm_hook_facts *f, const char *point, const char *path, int fd,
		   char **env)
{
	const char *argv[] = { path, point, NULL };
	struct sm_spawn sp = {
		.argv = argv,
		.env = (const char *const *)env,
		.exec_fd = fd,
		.timeout = hooks_timeout,
	};
	struct sm_run_result res;
	bool timed_out = false;
	double t0 = sm_now(), m0 = sm_monotonic(), secs;
	char err[512];
	int rc;

	if (sm_run_spawn(&sp, &res, &timed_out) < 0)
		return -1;
	secs = sm_monotonic() - m0;
	snprintf(err, sizeof(err), "%s", res.err ? res.err : "");
	while (strlen(err) && err[strlen(err) - 1] == '\n')
		err[strlen(err) - 1] = '\0';
	sm_journal_hook_run(f->journal, f->job, point, path, res.status, timed_out, t0, secs, err);
	sm_event_hook(f->job, point, path, res.status, timed_out, secs);
	rc = res.status == 0 && !timed_out ? 0 : 1;
	if (timed_out)
		sm_error("hook '%s' ran past its time limit of %.0f s and was killed; give it "
			 "more time with --hook-timeout SEC", path, hooks_timeout);
	else if (rc)
		sm_error("hook '%s' exited %d: %s", path, res.status, err[0] ? err : "(no stderr)");
	sm_run_result_release(&res);
	return rc;
}

enum sm_hook_verdict sm_hooks_run_point(const char *point, const struct sm_hook_facts *f)
{
	SM_AUTOFREE char *dir = sm_path_join(dir_of_hooks(), point);
	SM_AUTOFREE char *xml_path = NULL;
	char **names = NULL, **env = NULL;
	struct env facts = { 0 };
	enum sm_hook_verdict ret = SM_HOOK_OK;
	struct stat sb;
	int n = 0, top, fd;

	if (lstat(dir, &sb) < 0)
		return SM_HOOK_OK;  /* no hooks for this point */
	/* Every folder from / down, each opened in the one checked before it,
	 * and each hook opened there, checked and run as that open file: no
	 * path is looked up twice. */
	top = sm_hooks_open_folder(dir_of_hooks());
	if (top < 0)
		goto refused;
	fd = open_checked(top, point, dir, HOOK_FOLDER, NULL);
	close(top);
	if (fd < 0)
		goto refused;
	names = list_hooks(fd, dir, &n);
	if (n < 0) {
		close(fd);
		goto refused;
	}
	if (n > 0) {
		xml_path = write_domxml(f);
		build_env(f, point, xml_path, &facts);
		env = sm_hooks_env_new(getenv("SNAPMOVE_EVENTS_FILE"), (const char *const *)facts.vars);
	}
	for (int i = 0; i < n && ret == SM_HOOK_OK; i++) {
		SM_AUTOFREE char *path = sm_path_join(dir, names[i]);
		int hook = open_checked(fd, names[i], path, HOOK_FILE, NULL);
		int rc = hook < 0 ? 1 : run_one(f, point, path, hook, env);

		if (hook >= 0)
			close(hook);
		if (rc == 0)
			continue;
		if (is_before(point)) {
			char why[1024];

			snprintf(why, sizeof(why), "%s", sm_error_message());
			sm_error("vetoed by a %s hook: %s", point, why);
			ret = SM_HOOK_VETOED;
		} else {
			sm_progress_say(f->progress, "warning: %s", sm_error_message());
			sm_event_warning(f->job, NULL, sm_error_message());
		}
	}
	close(fd);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (xml_path)
		unlink(xml_path);
	env_free(&facts);
	sm_hooks_env_free(env);
	return ret;

refused:
	if (!is_before(point)) {
		sm_progress_say(f->progress, "warning: %s", sm_error_message());
		sm_event_warning(f->job, NULL, sm_error_message());
		return SM_HOOK_OK;
	}
	return SM_HOOK_VETOED;
}
