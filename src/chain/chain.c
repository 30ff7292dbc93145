/* chain.c: discover disks and backing chains from libvirt's domain XML with
 * libxml2.  Pure parsing: what the files really contain is image.c's business.
 */
#include "chain/chain.h"
#include "util.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

static char *prop(xmlNodePtr node, const char *name)
{
	xmlChar *v = xmlGetProp(node, (const xmlChar *)name);
	char *s;

	if (!v)
		return NULL;
	s = sm_xstrdup((const char *)v);
	xmlFree(v);
	return s;
}

static xmlNodePtr child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

/* The path a <source> names for a given storage type. */
static char *source_path(xmlNodePtr source, const char *type)
{
	if (!source)
		return NULL;
	if (sm_str_eq(type, "file"))
		return prop(source, "file");
	if (sm_str_eq(type, "block"))
		return prop(source, "dev");
	if (sm_str_eq(type, "dir"))
		return prop(source, "dir");
	return NULL;
}

static void chain_push(struct sm_disk *disk, char *type, char *path, char *format)
{
	disk->chain = sm_xrealloc(disk->chain, (disk->nchain + 1) * sizeof(*disk->chain));
	disk->chain[disk->nchain++] = (struct sm_image){ .type = type, .path = path, .format = format };
}

/* Note the first image of the chain with an <encryption> element (in its
 * <source>, or, the older form, in the <disk> for the active image). */
static void note_encryption(struct sm_disk *disk, xmlNodePtr enc, const char *path)
{
	char *format;

	if (!enc || disk->encryption)
		return;
	format = prop(enc, "format");
	disk->encryption = format ? format : sm_xstrdup("default");
	disk->encrypted_path = sm_xstrdup(path ? path : "?");
}

static void parse_backing(struct sm_disk *disk, xmlNodePtr bs)
{
	while (bs) {
		xmlNodePtr fmt, next;
		char *type = prop(bs, "type");

		/* An empty <backingStore/> ends a chain that libvirt fully knows. */
		if (!type && !child(bs, "source")) {
			disk->chain_known = true;
			return;
		}
		fmt = child(bs, "format");
		chain_push(disk, type ? type : sm_xstrdup("file"),
			   source_path(child(bs, "source"), type ? type : "file"),
			   fmt ? prop(fmt, "type") : NULL);
		if (child(bs, "source"))
			note_encryption(disk, child(child(bs, "source"), "encryption"),
					disk->chain[disk->nchain - 1].path);
		next = child(bs, "backingStore");
		bs = next;
	}
	/* No terminating element: libvirt did not probe further (inactive XML). */
}

static void parse_disk(xmlNodePtr node, struct sm_disk *disk)
{
	xmlNodePtr driver = child(node, "driver");
	xmlNodePtr target = child(node, "target");
	xmlNodePtr alias = child(node, "alias");
	xmlNodePtr mirror = child(node, "mirror");
	xmlNodePtr source = child(node, "source");
	char *type = prop(node, "type");
	char *path;

	disk->device = prop(node, "device");
	if (!disk->device)
		disk->device = sm_xstrdup("disk");
	disk->target = target ? prop(target, "dev") : NULL;
	disk->alias = alias ? prop(alias, "name") : NULL;
	disk->readonly = child(node, "readonly") != NULL;
	disk->shareable = child(node, "shareable") != NULL;
	if (driver) {
		char *discard = prop(driver, "discard");

		disk->discard_unmap = sm_str_eq(discard, "unmap");
		free(discard);
	}
	if (!type)
		type = sm_xstrdup("file");
	path = source_path(source, type);
	/* A cdrom without media has no <source>: an empty chain. */
	if (source || path)
		chain_push(disk, type, path, driver ? prop(driver, "type") : NULL);
	else
		free(type);
	if (disk->nchain > 0) {
		note_encryption(disk, source ? child(source, "encryption") : NULL,
				disk->chain[0].path);
		note_encryption(disk, child(node, "encryption"), disk->chain[0].path);
		parse_backing(disk, child(node, "backingStore"));
	}
	if (mirror) {
		char *ready = prop(mirror, "ready");

		disk->mirror_job = prop(mirror, "job");
		if (!disk->mirror_job)
			disk->mirror_job = sm_xstrdup("copy");
		disk->mirror_ready = sm_str_eq(ready, "yes");
		disk->mirror_pivoting = sm_str_eq(ready, "pivot");
		disk->mirror_path = prop(mirror, "file");
		if (!disk->mirror_path && child(mirror, "source"))
			disk->mirror_path = prop(child(mirror, "source"), "file");
		/* A mirror onto a block device (an overlay on a provisioned one). */
		if (!disk->mirror_path && child(mirror, "source"))
			disk->mirror_path = prop(child(mirror, "source"), "dev");
		free(ready);
	}
}

int sm_chain_parse(const char *xml, struct sm_domain_disks *out)
{
	xmlDocPtr doc;
	xmlNodePtr root, devices;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlGetLastError();

		sm_error("cannot parse the domain XML: %s",
			 e && e->message ? e->message : "malformed document");
		return -1;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || strcmp((const char *)root->name, "domain") != 0) {
		sm_error("the domain XML has no <domain> root element");
		goto cleanup;
	}
	devices = child(root, "devices");
	for (xmlNodePtr n = devices ? devices->children : NULL; n; n = n->next) {
		struct sm_disk *disk;

		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "disk") != 0)
			continue;
		out->disks = sm_xrealloc(out->disks, (out->ndisks + 1) * sizeof(*out->disks));
		disk = &out->disks[out->ndisks++];
		memset(disk, 0, sizeof(*disk));
		parse_disk(n, disk);
		if (!disk->target) {
			sm_error("the domain XML has a <disk> without <target dev=...>");
			sm_domain_disks_release(out);
			goto cleanup;
		}
	}
	ret = 0;

cleanup:
	xmlFreeDoc(doc);
	return ret;
}

void sm_domain_disks_release(struct sm_domain_disks *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ndisks; i++) {
		struct sm_disk *disk = &d->disks[i];

		for (size_t j = 0; j < disk->nchain; j++) {
			free(disk->chain[j].path);
			free(disk->chain[j].type);
			free(disk->chain[j].format);
		}
		free(disk->chain);
		free(disk->target);
		free(disk->device);
		free(disk->alias);
		free(disk->mirror_job);
		free(disk->mirror_path);
		free(disk->encryption);
		free(disk->encrypted_path);
	}
	free(d->disks);
	d->disks = NULL;
	d->ndisks = 0;
}

const struct sm_disk *sm_domain_disks_find(const struct sm_domain_disks *d, const char *target)
{
	for (size_t i = 0; i < d->ndisks; i++)
		if (sm_str_eq(d->disks[i].target, target))
			return &d->disks[i];
	return NULL;
}

char *sm_disk_unmovable_reason(const struct sm_disk *disk)
{
	if (!sm_str_eq(disk->device, "disk"))
		return sm_xasprintf("disk '%s' is a %s, not a disk; snapmove moves only "
				    "device='disk' images, leave it out of --disk",
				    disk->target, disk->device);
	if (disk->nchain == 0)
		return sm_xasprintf("disk '%s' has no source image; leave it out of --disk",
				    disk->target);
	if (disk->readonly)
		return sm_xasprintf("disk '%s' is read-only; snapmove moves only writable "
				    "disks, leave it out of --disk", disk->target);
	if (disk->shareable)
		return sm_xasprintf("disk '%s' is shareable (used by several domains); "
				    "snapmove cannot move it live, leave it out of --disk",
				    disk->target);
	for (size_t i = 0; i < disk->nchain; i++) {
		const struct sm_image *img = &disk->chain[i];
		/* A block device is moved to a file when it is the whole disk. */
		bool device = i == 0 && sm_disk_on_device(disk);

		if (device && disk->nchain > 1)
			return sm_xasprintf("disk '%s' image '%s' is a block device with a backing "
					    "chain; snapmove moves a device only when it holds the "
					    "disk's single image: leave it out of --disk, or fold the "
					    "chain into the device first ('virsh blockcommit DOMAIN %s "
					    "--active --pivot')", disk->target, img->path, disk->target);
		if (!device && (!sm_str_eq(img->type, "file") || !img->path) && i == 0)
			return sm_xasprintf("disk '%s' image is a %s source, not a file; snapmove "
					    "moves only file-backed chains, leave it out of --disk",
					    disk->target, img->type);
		if (i > 0 && (!sm_str_eq(img->type, "file") || !img->path))
			return sm_xasprintf("disk '%s' backing image is a %s source, not a file; "
					    "snapmove moves only file-backed chains, leave it out "
					    "of --disk", disk->target, img->type);
		if (!img->format)
			return sm_xasprintf("disk '%s' image '%s' has no format in the domain "
					    "XML; set <driver type=...> so snapmove never has to "
					    "guess it", disk->target, img->path);
	}
	if (disk->encryption)
		return sm_xasprintf("disk '%s' image '%s' is encrypted (%s); snapmove cannot "
				    "encrypt the overlays it makes with the disk's secret, so "
				    "it does not move encrypted disks: leave it out of --disk "
				    "and move it with 'virsh blockcopy' and an <encryption> "
				    "element in the destination XML", disk->target,
				    disk->encrypted_path, disk->encryption);
	if (!disk->chain_known)
		return sm_xasprintf("libvirt did not report the whole backing chain of disk "
				    "'%s'; check 'virsh dumpxml' shows its <backingStore> "
				    "elements", disk->target);
	return NULL;
}

bool sm_disk_on_device(const struct sm_disk *disk)
{
	return disk->nchain > 0 && sm_str_eq(disk->chain[0].type, "block") && disk->chain[0].path;
}

bool sm_disk_is_candidate(const struct sm_disk *disk)
{
	char *why = sm_disk_unmovable_reason(disk);
	/* A device becomes a file when moved: only when --disk names it. */
	bool ok = why == NULL && !sm_disk_on_device(disk);

	free(why);
	return ok;
}
