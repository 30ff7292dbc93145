/* hooks.c: find, check and run the hooks of a point, with the job's facts in
 * their environment, a time limit, and a journal row per run.  Every folder
 * from / down and each hook is checked on an open file, and that file is what
 * runs (the checks are trust.c's); starting it, the time limit and the
 * pipes are run.c's.  It is told the facts (struct sm_hook_facts) and
 * answers a verdict: what a job is, and what a veto does to one, are the job
 * layer's (src/job_hooks.c).
 */
#include "hooks.h"
#include "events.h"
#include "journal.h"
#include "progress.h"
#include "run.h"
#include "trust.h"
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

#define HOOK_RULE "hooks run as root, so they must be root's own regular executables in root's own folders"
#define HOOK_MOVE "move the hooks folder to one only root can write (such as /etc/snapmove)"

/* The words of trust.c's refusals for hooks. */
static const struct sm_trust_words hook_words = {
	.file = "hook file",
	.folder = "hook folder",
	.top = "the hooks folder",
	.read_file = "hook",
	.read_folder = "the hooks folder",
	.rule = HOOK_RULE,
	.move = HOOK_MOVE,
	.not_dir = "make it a directory owned by root, or pass another --hooks-dir",
};

int sm_hooks_open_folder(const char *dir)
{
	return sm_trust_open_folder(dir, &hook_words);
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
	fd = sm_trust_open_checked(top, point, dir, SM_TRUST_FOLDER, NULL, &hook_words);
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
		int hook = sm_trust_open_checked(fd, names[i], path, SM_TRUST_FILE, NULL,
						  &hook_words);
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
