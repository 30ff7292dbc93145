/* usage.c: find every user of an image file on the connection and in a
 * directory.  It reads the domains' XML and asks qemu-img what image headers
 * name (never parsing a header itself); it changes nothing.
 */
#include "chain/usage.h"
#include "chain/chain.h"
#include "run.h"
#include "util.h"
#include "virt.h"

#include <dirent.h>
#include <json-c/json.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file a backing name written in an image's header means, as QEMU
 * resolves it: a 'file:' prefix dropped, a relative name against the image's
 * folder.  NULL for names of other protocols and json: names. */
char *sm_usage_backing_path(const char *image, const char *backing)
{
	SM_AUTOFREE char *dir = NULL;

	if (!backing || !*backing)
		return NULL;
	if (strncmp(backing, "file:", 5) == 0)
		backing += 5;
	else if (backing[0] != '/' && strchr(backing, ':') &&
		 strcspn(backing, ":") < strcspn(backing, "/"))
		return NULL;  /* nbd:, json:{...}: not a file in a folder */
	if (!*backing)
		return NULL;
	if (backing[0] == '/')
		return sm_xstrdup(backing);
	dir = sm_path_dirname(image);
	return sm_path_join(dir, backing);
}

static void add_use(struct sm_usage *u, const char *path, const char *user)
{
	struct stat sb;

	if (!path || stat(path, &sb) < 0)
		return;
	u->uses = sm_xrealloc(u->uses, (u->n + 1) * sizeof(*u->uses));
	u->uses[u->n++] = (struct sm_image_use){
		.dev = sb.st_dev, .ino = sb.st_ino,
		.path = sm_xstrdup(path), .user = sm_xstrdup(user),
	};
}

/* One image's backing names from the JSON qemu-img info printed, each
 * resolved as QEMU does, added as used by user.  Returns the backing file to
 * follow (to free; NULL at the bottom or for a name that is not a file), and
 * in *next_format the format its header records (NULL: not recorded). */
static char *add_backing_from_json(struct sm_usage *u, const char *image, const char *json,
				   const char *user, char **next_format)
{
	struct json_object *root = json_tokener_parse(json), *v;
	char *next = NULL;

	*next_format = NULL;
	if (!root)
		return NULL;
	if (json_object_is_type(root, json_type_object)) {
		for (int k = 0; k < 2; k++) {
			const char *key = k ? "full-backing-filename" : "backing-filename";
			char *p;

			if (!json_object_object_get_ex(root, key, &v) ||
			    !json_object_is_type(v, json_type_string) ||
			    !(p = sm_usage_backing_path(image, json_object_get_string(v))))
				continue;
			add_use(u, p, user);
			if (!next)
				next = p;
			else
				free(p);
		}
		if (next && json_object_object_get_ex(root, "backing-filename-format", &v) &&
		    json_object_is_type(v, json_type_string))
			*next_format = sm_xstrdup(json_object_get_string(v));
	}
	json_object_put(root);
	return next;
}

/* Add the backing files below path (depth images at most; 1: its own backing
 * file only), reading each header with qemu-img, the format given when known.
 *
 * INVARIANT: what this finds only ever adds users, so it can only keep a file
 * that would otherwise be deleted, never get one deleted: the files snapmove
 * deletes come from the journal alone (src/srcfile.c).  That is why a file of
 * unknown format may be probed here (format NULL): a raw image dressed as
 * qcow2 by its guest then names a "backing file" that is merely kept.  Only
 * regular files are read, one header at a time: qemu-img never opens a
 * backing file (no protocol, no device) on snapmove's behalf. */
static void add_backing_chain(struct sm_usage *u, const char *path, const char *format,
			      int depth, const char *user)
{
	char *cur = sm_xstrdup(path), *fmt = sm_xstrdup_or_null(format);

	for (int level = 0; cur && level < depth; level++) {
		const char *with[] = { "qemu-img", "info", "-U", "--output=json", "-f", fmt, cur,
				       NULL };
		const char *probe[] = { "qemu-img", "info", "-U", "--output=json", cur, NULL };
		struct sm_run_result res;
		struct stat sb;
		char *next = NULL, *next_fmt = NULL;

		if (stat(cur, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (sm_run(fmt ? with : probe, &res) == 0)
				next = add_backing_from_json(u, cur, res.out, user, &next_fmt);
			sm_run_result_release(&res);
		}
		free(cur);
		free(fmt);
		cur = next;
		fmt = next_fmt;
	}
	free(cur);
	free(fmt);
	sm_error_clear();
}

static void add_domain_xml(struct sm_usage *u, const char *name, const char *xml)
{
	struct sm_domain_disks disks;

	if (sm_chain_parse(xml, &disks) < 0)
		return;
	for (size_t i = 0; i < disks.ndisks; i++) {
		const struct sm_disk *d = &disks.disks[i];
		SM_AUTOFREE char *user = sm_xasprintf("domain '%s' disk %s", name, d->target);

		for (size_t k = 0; k < d->nchain; k++)
			add_use(u, d->chain[k].path, user);
		/* A definition lists only the top image: qemu-img follows the rest
		 * as QEMU would open it (file: and relative names, other folders). */
		if (d->nchain > 0 && !d->chain_known && d->chain[d->nchain - 1].path)
			add_backing_chain(u, d->chain[d->nchain - 1].path,
					  d->chain[d->nchain - 1].format, 64, user);
		if (d->mirror_path)
			add_use(u, d->mirror_path, user);
	}
	sm_domain_disks_release(&disks);
}

int sm_usage_scan_domains(virConnectPtr conn, struct sm_usage *u)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(conn, &doms, 0);

	if (n < 0) {
		sm_virt_error("cannot list the domains to find shared images");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);
		char *xml;

		if (virDomainIsActive(doms[i]) == 1 && (xml = virDomainGetXMLDesc(doms[i], 0))) {
			add_domain_xml(u, name, xml);
			free(xml);
		}
		if (virDomainIsPersistent(doms[i]) == 1 &&
		    (xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE))) {
			add_domain_xml(u, name, xml);
			free(xml);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	return 0;
}

/* A filter, never a parser: the files whose first bytes are the magic of an
 * image format that can have a backing file (qcow, qcow2, QED, VMDK).  A file
 * it skips could name no backing file to QEMU anyway. */
static bool may_name_a_backing_file(int dfd, const char *name)
{
	static const char *const magics[] = { "QFI\xfb", "QED", "KDMV", "COWD",
					      "# Disk DescriptorFile" };
	char buf[32] = { 0 };
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return false;
	got = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	for (size_t i = 0; got > 0 && i < SM_ARRAY_LEN(magics); i++)
		if ((size_t)got >= strlen(magics[i]) && memcmp(buf, magics[i], strlen(magics[i])) == 0)
			return true;
	return false;
}

int sm_usage_scan_dir(const char *dir, struct sm_usage *u)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		sm_error("cannot read the directory '%s': %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		SM_AUTOFREE char *path = NULL;
		SM_AUTOFREE char *user = NULL;
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		path = sm_path_join(dir, e->d_name);
		if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (!may_name_a_backing_file(dirfd(d), e->d_name))
			continue;
		user = sm_xasprintf("image '%s'", path);
		add_backing_chain(u, path, NULL, 1, user);
	}
	closedir(d);
	return 0;
}

void sm_usage_release(struct sm_usage *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->uses[i].path);
		free(u->uses[i].user);
	}
	free(u->uses);
	u->uses = NULL;
	u->n = 0;
}

const char *sm_usage_other_user(const struct sm_usage *u, const char *path,
				int (*skip)(const char *user, void *ctx), void *ctx)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return NULL;
	for (size_t i = 0; i < u->n; i++)
		if (u->uses[i].dev == sb.st_dev && u->uses[i].ino == sb.st_ino &&
		    !(skip && skip(u->uses[i].user, ctx)))
			return u->uses[i].user;
	return NULL;
}

struct self {
	const char *domain;
	const struct sm_disk *disk;
};

static int is_self(const char *user, void *ctx)
{
	struct self *s = ctx;
	SM_AUTOFREE char *me = sm_xasprintf("domain '%s' disk %s", s->domain, s->disk->target);

	if (sm_str_eq(user, me))
		return 1;
	for (size_t k = 0; k < s->disk->nchain; k++) {
		SM_AUTOFREE char *img = sm_xasprintf("image '%s'", s->disk->chain[k].path);

		if (sm_str_eq(user, img))
			return 1;
	}
	return 0;
}

const char *sm_usage_other_than_disk(const struct sm_usage *u, const char *path,
				     const char *domain, const struct sm_disk *disk)
{
	struct self self = { .domain = domain, .disk = disk };

	return sm_usage_other_user(u, path, is_self, &self);
}
