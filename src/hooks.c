/* hooks.c: find, check and run the hooks of a point, with the job's facts in
 * their environment, a time limit, and a journal row per run.
 */
#include "hooks.h"
#include "events.h"
#include "job_run.h"
#include "run.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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

/* Hooks run as root: a hook or its folder must be root's own and writable by
 * root alone; each refusal is one whole message with its fix. */
static int check_path(const char *path, bool want_dir)
{
	struct stat sb;

	if (lstat(path, &sb) < 0) {
		if (want_dir)
			sm_error("cannot read the hooks folder '%s': %s", path, strerror(errno));
		else
			sm_error("cannot read hook '%s': %s", path, strerror(errno));
		return -1;
	}
	if (want_dir && !S_ISDIR(sb.st_mode)) {
		sm_error("hook folder '%s' is not a directory; hooks run as root, so they must "
			 "be root's own regular executables in root's own folders: make it a "
			 "directory owned by root, or pass another --hooks-dir", path);
		return -1;
	}
	if (!want_dir && !S_ISREG(sb.st_mode)) {
		sm_error("hook file '%s' is not a regular file; hooks run as root, so they must "
			 "be root's own regular executables in root's own folders: put the "
			 "program itself there, not a link to it", path);
		return -1;
	}
	if (sb.st_uid != 0) {
		if (want_dir)
			sm_error("hook folder '%s' is not owned by root; hooks run as root, so they "
				 "must be root's own regular executables in root's own folders: "
				 "'chown root %s'", path, path);
		else
			sm_error("hook file '%s' is not owned by root; hooks run as root, so they "
				 "must be root's own regular executables in root's own folders: "
				 "'chown root %s'", path, path);
		return -1;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		if (want_dir)
			sm_error("hook folder '%s' is writable by group or others; hooks run as "
				 "root, so they must be root's own regular executables in root's "
				 "own folders: 'chmod go-w %s'", path, path);
		else
			sm_error("hook file '%s' is writable by group or others; hooks run as "
				 "root, so they must be root's own regular executables in root's "
				 "own folders: 'chmod go-w %s'", path, path);
		return -1;
	}
	if (!want_dir && !(sb.st_mode & S_IXUSR)) {
		sm_error("hook file '%s' is not executable; hooks run as root, so they must be "
			 "root's own regular executables in root's own folders: 'chmod u+x %s'",
			 path, path);
		return -1;
	}
	return 0;
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int visible(const struct dirent *e)
{
	return e->d_name[0] != '.';
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
	for (size_t i = 0; i < e->n; i++)
		free(e->vars[i]);
	free(e->vars);
}

static char *chain_list(const struct sm_jobctx *c, size_t i, bool dst)
{
	const struct sm_plan_disk *p = &c->plans[i];
	size_t len = 1;
	char *s;

	for (size_t k = 0; k < p->nimages; k++)
		len += strlen(dst ? p->images[k].dst : p->images[k].src) + 1;
	if (p->kept && !p->flat)
		len += strlen(p->kept) + 1;
	s = sm_xcalloc(1, len);
	for (size_t k = 0; k < p->nimages; k++) {
		if (k)
			strcat(s, ":");
		strcat(s, dst ? p->images[k].dst : p->images[k].src);
	}
	if (p->kept && !p->flat) {
		strcat(s, ":");
		strcat(s, p->kept);
	}
	return s;
}

static void build_env(const struct sm_jobctx *c, const char *point, const char *xml_path,
		      struct env *e)
{
	struct json_object *chains = json_object_new_object();
	size_t len = 1;
	char *disks;

	for (size_t i = 0; i < c->nplans; i++)
		len += strlen(c->plans[i].target) + 1;
	disks = sm_xcalloc(1, len);
	for (size_t i = 0; i < c->nplans; i++) {
		SM_AUTOFREE char *src = chain_list(c, i, false);
		SM_AUTOFREE char *dst = chain_list(c, i, true);
		struct json_object *d = json_object_new_object();

		if (i)
			strcat(disks, " ");
		strcat(disks, c->plans[i].target);
		env_add(e, "SNAPMOVE_SRC_CHAIN_%s=%s", c->plans[i].target, src);
		env_add(e, "SNAPMOVE_DST_CHAIN_%s=%s", c->plans[i].target, dst);
		json_object_object_add(d, "source", json_object_new_string(src));
		json_object_object_add(d, "destination", json_object_new_string(dst));
		json_object_object_add(d, "state",
				       json_object_new_string(sm_disk_state_name(c->state[i])));
		json_object_object_add(chains, c->plans[i].target, d);
	}
	env_add(e, "SNAPMOVE_HOOK=%s", point);
	env_add(e, "SNAPMOVE_JOB=%lld", c->job);
	env_add(e, "SNAPMOVE_DOMAIN=%s", c->domain_name);
	env_add(e, "SNAPMOVE_DOMAIN_UUID=%s", c->uuid);
	env_add(e, "SNAPMOVE_DISKS=%s", disks);
	env_add(e, "SNAPMOVE_PHASE=%s", c->phase_name ? c->phase_name : "planned");
	env_add(e, "SNAPMOVE_DEST=%s", c->dest);
	env_add(e, "SNAPMOVE_CHAINS=%s", json_object_to_json_string_ext(
			chains, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (xml_path)
		env_add(e, "SNAPMOVE_DOMXML=%s", xml_path);
	json_object_put(chains);
	free(disks);
}

/* A read-only copy of the domain XML for the hooks; NULL when unavailable. */
static char *write_domxml(const struct sm_jobctx *c)
{
	char tmpl[] = "/tmp/snapmove-domxml-XXXXXX";
	char *xml;
	int fd;
	size_t len;

	if (!c->dom)
		return NULL;
	xml = virDomainGetXMLDesc(c->dom, c->running ? 0 : VIR_DOMAIN_XML_INACTIVE);
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

/* Run one hook; 0 it succeeded, 1 it failed (message recorded), -1 error. */
static int run_one(struct sm_jobctx *c, const char *point, const char *path, struct env *e)
{
	const char *argv[] = { path, point, NULL };
	struct sm_run_result res;
	bool timed_out = false;
	double t0 = sm_now(), m0 = sm_monotonic(), secs;
	char err[512];
	int rc;

	if (sm_run_limited(argv, (const char *const *)e->vars, hooks_timeout, &res, &timed_out) < 0)
		return -1;
	secs = sm_monotonic() - m0;
	snprintf(err, sizeof(err), "%s", res.err ? res.err : "");
	while (strlen(err) && err[strlen(err) - 1] == '\n')
		err[strlen(err) - 1] = '\0';
	sm_journal_hook_run(c->j, c->job, point, path, res.status, timed_out, t0, secs, err);
	sm_event_hook(c->job, point, path, res.status, timed_out, secs);
	rc = res.status == 0 && !timed_out ? 0 : 1;
	if (timed_out)
		sm_error("hook '%s' ran past its time limit of %.0f s and was killed; give it "
			 "more time with --hook-timeout SEC", path, hooks_timeout);
	else if (rc)
		sm_error("hook '%s' exited %d: %s", path, res.status, err[0] ? err : "(no stderr)");
	sm_run_result_release(&res);
	return rc;
}

int sm_hooks_run(struct sm_jobctx *c, const char *point)
{
	SM_AUTOFREE char *dir = sm_path_join(dir_of_hooks(), point);
	SM_AUTOFREE char *xml_path = NULL;
	struct dirent **names = NULL;
	struct env e = { 0 };
	struct stat sb;
	int n, ret = 0;

	if (lstat(dir, &sb) < 0)
		return 0;  /* no hooks for this point */
	if (check_path(dir_of_hooks(), true) < 0 || check_path(dir, true) < 0)
		goto refused;
	n = scandir(dir, &names, visible, name_order);
	if (n < 0) {
		sm_error("cannot read the hooks folder '%s': %s", dir, strerror(errno));
		goto refused;
	}
	if (n > 0) {
		xml_path = write_domxml(c);
		build_env(c, point, xml_path, &e);
	}
	for (int i = 0; i < n && ret == 0; i++) {
		SM_AUTOFREE char *path = sm_path_join(dir, names[i]->d_name);
		int rc = check_path(path, false) < 0 ? 1 : run_one(c, point, path, &e);

		if (rc == 0)
			continue;
		if (is_before(point)) {
			char why[1024];

			snprintf(why, sizeof(why), "%s", sm_error_message());
			sm_error("vetoed by a %s hook: %s", point, why);
			c->vetoed = true;
			ret = -1;
		} else {
			sm_progress_say(c->pr, "warning: %s", sm_error_message());
			sm_event_warning(c->job, NULL, sm_error_message());
		}
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (xml_path)
		unlink(xml_path);
	env_free(&e);
	return ret;

refused:
	if (!is_before(point)) {
		sm_progress_say(c->pr, "warning: %s", sm_error_message());
		sm_event_warning(c->job, NULL, sm_error_message());
		return 0;
	}
	c->vetoed = true;
	return -1;
}
