/* config.c: the host's defaults from /etc/snapmove/snapmove.conf (config.h). */
#include "config.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_RULE "snapmove runs as root and this file says where hooks come from, " \
	"so it and its folders must be root's own and writable by root alone"

/* One folder or the file, opened (O_PATH, no link followed) in at and
 * checked; the fd or -1 with the error. */
static int open_trusted(int at, const char *name, const char *path, bool file, const char *conf)
{
	struct stat sb;
	int fd = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		sm_error("cannot read %s '%s': %s", file ? "configuration file" : "folder", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		goto error;
	}
	if (file ? !S_ISREG(sb.st_mode) : !S_ISDIR(sb.st_mode)) {
		sm_error("configuration '%s': '%s' is not a %s; " CONFIG_RULE ": put the file "
			 "itself there, not a link to it", conf, path,
			 file ? "regular file" : "directory");
		goto error;
	}
	if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
		sm_error("configuration '%s': '%s' is not owned by root; " CONFIG_RULE ": "
			 "'chown root %s'", conf, path, path);
		goto error;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		sm_error("configuration '%s': '%s' is writable by group or others; " CONFIG_RULE
			 ": 'chmod go-w %s'", conf, path, path);
		goto error;
	}
	return fd;

error:
	close(fd);
	return -1;
}

/* The file, read through checked folders from / down; a stream, or NULL with
 * the error (*missing when it is not there). */
static FILE *open_config(const char *path, bool *missing)
{
	SM_AUTOFREE char *copy = NULL;
	char *p, *next;
	int fd, rfd;
	FILE *f;

	*missing = false;
	if (path[0] != '/') {
		sm_error("configuration '%s' is not an absolute path; name it from /", path);
		return NULL;
	}
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		*missing = true;
		sm_error("there is no configuration file '%s'; check the --config path", path);
		return NULL;
	}
	copy = sm_xstrdup(path);
	fd = open_trusted(AT_FDCWD, "/", "/", false, path);
	for (p = copy + 1; fd >= 0 && *p; p = next) {
		int sub;

		next = strchr(p, '/');
		if (next)
			*next++ = '\0';
		else
			next = p + strlen(p);
		{
			SM_AUTOFREE char *upto = sm_xasprintf("%.*s", (int)(p - copy) + (int)strlen(p),
							      path);

			sub = open_trusted(fd, p, upto, *next == '\0', path);
		}
		close(fd);
		fd = sub;
	}
	if (fd < 0)
		return NULL;
	/* Reopen the checked file itself for reading (not by its path). */
	{
		SM_AUTOFREE char *proc = sm_xasprintf("/proc/self/fd/%d", fd);

		rfd = open(proc, O_RDONLY | O_CLOEXEC);
	}
	close(fd);
	if (rfd < 0) {
		sm_error("cannot read configuration file '%s': %s", path, strerror(errno));
		return NULL;
	}
	f = fdopen(rfd, "r");
	if (!f) {
		close(rfd);
		sm_error("cannot read configuration file '%s': %s", path, strerror(errno));
	}
	return f;
}

struct parse {
	struct sm_config *c;
	const char *path;
	FILE *f;
	int line;     /* of the line read last (Debian's inih passes none) */
	char *error;  /* the first bad line's message */
};

static void set_from(char **from, const struct parse *ps, int line)
{
	free(*from);
	*from = sm_xasprintf("%s:%d", ps->path, line);
}

static int bad(struct parse *ps, int line, const char *section, const char *name,
	       const char *value, const char *want)
{
	if (!ps->error)
		ps->error = sm_xasprintf("configuration '%s' line %d: '%s' in [%s] takes %s, not "
					 "'%s'; fix the line or remove it", ps->path, line, name,
					 section, want, value);
	return 0;
}

static bool parse_num(const char *v, unsigned long long min, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long n;

	if (sm_parse_ull(v, &n) < 0 || n < min || n > max)
		return false;
	*out = n;
	return true;
}

static char *read_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	char *r = fgets(str, num, ps->f);

	if (r)
		ps->line++;
	return r;
}

static int on_line(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	struct sm_config *c = ps->c;
	int line = ps->line;

	if (ps->error)
		return 1;
	if (!name)
		return 1;  /* a section header alone */
	if (sm_str_eq(section, "move") && sm_str_eq(name, "bandwidth")) {
		if (!parse_num(value, 0, 1ULL << 30, &c->move_bandwidth))
			return bad(ps, line, section, name, value, "a whole number of MiB/s");
		set_from(&c->move_bandwidth_from, ps, line);
	} else if (sm_str_eq(section, "move") && sm_str_eq(name, "verify")) {
		if (sm_str_eq(value, "yes") || sm_str_eq(value, "no"))
			c->verify = sm_str_eq(value, "yes");
		else
			return bad(ps, line, section, name, value, "yes or no");
		set_from(&c->verify_from, ps, line);
	} else if (sm_str_eq(section, "move") && sm_str_eq(name, "sync-writes")) {
		if (!sm_str_eq(value, "auto") && !sm_str_eq(value, "on") && !sm_str_eq(value, "off"))
			return bad(ps, line, section, name, value, "auto, on or off");
		free(c->sync_writes);
		c->sync_writes = sm_xstrdup(value);
		set_from(&c->sync_writes_from, ps, line);
	} else if (sm_str_eq(section, "move") && sm_str_eq(name, "overlay-dir")) {
		if (value[0] != '/')
			return bad(ps, line, section, name, value, "an absolute path");
		free(c->overlay_dir);
		c->overlay_dir = sm_xstrdup(value);
		set_from(&c->overlay_dir_from, ps, line);
	} else if (sm_str_eq(section, "hooks") && sm_str_eq(name, "dir")) {
		if (value[0] != '/')
			return bad(ps, line, section, name, value, "an absolute path");
		free(c->hooks_dir);
		c->hooks_dir = sm_xstrdup(value);
		set_from(&c->hooks_dir_from, ps, line);
	} else if (sm_str_eq(section, "hooks") && sm_str_eq(name, "timeout")) {
		if (!parse_num(value, 1, 86400, &c->hook_timeout))
			return bad(ps, line, section, name, value, "seconds (1 to 86400)");
		set_from(&c->hook_timeout_from, ps, line);
	} else if (sm_str_eq(section, "rebalance") && sm_str_eq(name, "storage")) {
		if (!value[0])
			return bad(ps, line, section, name, value, "a path or a pool name");
		if (c->nstorages == SM_CONFIG_MAX_STORAGES)
			return bad(ps, line, section, name, value, "at most 64 storages in all");
		set_from(&c->storages_from[c->nstorages], ps, line);
		c->storages[c->nstorages++] = sm_xstrdup(value);
	} else if (sm_str_eq(section, "rebalance") && sm_str_eq(name, "max-parallel")) {
		if (!parse_num(value, 1, 16, &c->max_parallel))
			return bad(ps, line, section, name, value, "1 to 16");
		set_from(&c->max_parallel_from, ps, line);
	} else if (sm_str_eq(section, "rebalance") && sm_str_eq(name, "bandwidth")) {
		if (!parse_num(value, 0, 1ULL << 30, &c->rebalance_bandwidth))
			return bad(ps, line, section, name, value, "a whole number of MiB/s");
		set_from(&c->rebalance_bandwidth_from, ps, line);
	} else if (!ps->error) {
		ps->error = sm_xasprintf("configuration '%s' line %d: no setting '%s' in [%s]; "
					 "see 'man snapmove' (CONFIGURATION) for the settings",
					 ps->path, line, name, section);
	}
	return 1;
}

int sm_config_load(const char *path, bool explicit, struct sm_config *out)
{
	struct parse ps = { .c = out, .path = path };
	bool missing;
	FILE *f;
	int rc;

	memset(out, 0, sizeof(*out));
	out->verify = true;
	out->sync_writes = sm_xstrdup("auto");
	out->hooks_dir = sm_xstrdup("/etc/snapmove/hooks.d");
	out->hook_timeout = 60;
	out->max_parallel = 1;
	f = open_config(path, &missing);
	if (!f) {
		if (missing && !explicit)
			return 0;
		return -1;
	}
	out->path = sm_xstrdup(path);
	ps.f = f;
	rc = ini_parse_stream(read_line, &ps, on_line, &ps);
	fclose(f);
	if (ps.error) {
		sm_error("%s", ps.error);
		free(ps.error);
		return -1;
	}
	if (rc != 0) {
		sm_error("configuration '%s' line %d is not 'name = value' nor a [section]; fix "
			 "the line or remove it", path, rc);
		return -1;
	}
	return 0;
}

static const struct sm_config *current;

void sm_config_set_current(const struct sm_config *c)
{
	current = c;
}

const struct sm_config *sm_config_current(void)
{
	return current;
}

static void line(FILE *f, const char *key, const char *value, const char *from)
{
	fprintf(f, "%-24s = %-28s (%s)\n", key, value, from ? from : "default");
}

void sm_config_print(const struct sm_config *c, FILE *f)
{
	char n[32];

	fprintf(f, "# %s\n", c->path ? c->path : "no configuration file: the defaults");
	snprintf(n, sizeof(n), "%llu", c->move_bandwidth);
	line(f, "move.bandwidth", n, c->move_bandwidth_from);
	line(f, "move.verify", c->verify ? "yes" : "no", c->verify_from);
	line(f, "move.sync-writes", c->sync_writes, c->sync_writes_from);
	line(f, "move.overlay-dir", c->overlay_dir ? c->overlay_dir : "(the destination)",
	     c->overlay_dir_from);
	line(f, "hooks.dir", c->hooks_dir, c->hooks_dir_from);
	snprintf(n, sizeof(n), "%llu", c->hook_timeout);
	line(f, "hooks.timeout", n, c->hook_timeout_from);
	if (c->nstorages == 0)
		line(f, "rebalance.storage", "(none: --storage)", NULL);
	for (size_t i = 0; i < c->nstorages; i++)
		line(f, "rebalance.storage", c->storages[i], c->storages_from[i]);
	snprintf(n, sizeof(n), "%llu", c->max_parallel);
	line(f, "rebalance.max-parallel", n, c->max_parallel_from);
	snprintf(n, sizeof(n), "%llu", c->rebalance_bandwidth);
	line(f, "rebalance.bandwidth", n, c->rebalance_bandwidth_from);
}
