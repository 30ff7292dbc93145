/* usage.c: find every user of an image file on the connection and in a
 * directory.  It reads XML and qcow2 headers only; it changes nothing.
 */
#include "chain/usage.h"
#include "chain/chain.h"
#include "util.h"
#include "virt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

char *sm_qcow2_backing_path(const char *path)
{
	unsigned char hdr[20];
	char name[1024];
	uint64_t off;
	uint32_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *dir, *out;

	if (fd < 0)
		return NULL;
	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, "QFI\xfb", 4) != 0) {
		close(fd);
		return NULL;
	}
	off = be64(hdr + 8);
	len = be32(hdr + 16);
	if (off == 0 || len == 0 || len >= sizeof(name) ||
	    pread(fd, name, len, (off_t)off) != (ssize_t)len) {
		close(fd);
		return NULL;
	}
	close(fd);
	name[len] = '\0';
	if (name[0] == '/' || strchr(name, ':'))
		return name[0] == '/' ? sm_xstrdup(name) : NULL;
	dir = sm_path_dirname(path);
	out = sm_path_join(dir, name);
	free(dir);
	return out;
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

/* Follow a chain from path through qcow2 headers, at most depth images. */
static void add_chain_from_headers(struct sm_usage *u, const char *path, const char *user)
{
	SM_AUTOFREE char *cur = sm_xstrdup(path);

	for (int depth = 0; cur && depth < 64; depth++) {
		char *next = sm_qcow2_backing_path(cur);

		if (depth > 0)
			add_use(u, cur, user);
		free(cur);
		cur = next;
	}
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
		/* A definition lists only the top image: the rest is in its headers. */
		if (d->nchain > 0 && !d->chain_known && d->chain[d->nchain - 1].path)
			add_chain_from_headers(u, d->chain[d->nchain - 1].path, user);
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
		SM_AUTOFREE char *backing = NULL;
		SM_AUTOFREE char *user = NULL;
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		path = sm_path_join(dir, e->d_name);
		if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		backing = sm_qcow2_backing_path(path);
		if (!backing)
			continue;
		user = sm_xasprintf("image '%s'", path);
		add_use(u, backing, user);
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
