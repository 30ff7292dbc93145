/* define.c: check and rewrite the persistent domain definition's disk sources.
 * Live state is never changed here.
 */
#include "snapshot/define.h"
#include "chain/chain.h"
#include "util.h"
#include "virt.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static xmlNodePtr child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

/* The <disk type> that names path: a block device (a move undone back
 * onto its device) is <disk type='block'> with <source dev>. */
static const char *source_type(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISBLK(sb.st_mode) ? "block" : "file";
}

static void rewrite_disk(xmlNodePtr disk, const struct sm_define_disk *d)
{
	xmlNodePtr source = child(disk, "source");
	xmlNodePtr driver = child(disk, "driver");
	const char *type = source_type(d->path);
	xmlNodePtr bs;

	xmlSetProp(disk, (const xmlChar *)"type", (const xmlChar *)type);
	if (!source)
		source = xmlNewChild(disk, NULL, (const xmlChar *)"source", NULL);
	/* A <source> of another type carries attributes that no longer apply. */
	while (source->properties)
		xmlRemoveProp(source->properties);
	xmlSetProp(source, (const xmlChar *)(sm_str_eq(type, "block") ? "dev" : "file"),
		   (const xmlChar *)d->path);
	if (!driver) {
		driver = xmlNewChild(disk, NULL, (const xmlChar *)"driver", NULL);
		xmlSetProp(driver, (const xmlChar *)"name", (const xmlChar *)"qemu");
	}
	xmlSetProp(driver, (const xmlChar *)"type", (const xmlChar *)d->format);
	/* libvirt probes the chain from the image headers on start. */
	while ((bs = child(disk, "backingStore"))) {
		xmlUnlinkNode(bs);
		xmlFreeNode(bs);
	}
}

char *sm_define_rewrite_xml(const char *xml, const struct sm_define_disk *disks, size_t n)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr root, devices;
	xmlChar *buf = NULL;
	int len = 0;
	char *out;

	if (!doc) {
		sm_error("cannot parse the persistent domain XML");
		return NULL;
	}
	root = xmlDocGetRootElement(doc);
	devices = root ? child(root, "devices") : NULL;
	for (xmlNodePtr node = devices ? devices->children : NULL; node; node = node->next) {
		xmlNodePtr target;
		xmlChar *dev;

		if (node->type != XML_ELEMENT_NODE || strcmp((const char *)node->name, "disk"))
			continue;
		target = child(node, "target");
		dev = target ? xmlGetProp(target, (const xmlChar *)"dev") : NULL;
		for (size_t i = 0; dev && i < n; i++)
			if (strcmp((const char *)dev, disks[i].target) == 0)
				rewrite_disk(node, &disks[i]);
		xmlFree(dev);
	}
	xmlDocDumpMemory(doc, &buf, &len);
	out = sm_xstrdup((const char *)buf);
	xmlFree(buf);
	xmlFreeDoc(doc);
	return out;
}

/* How many of disks the definition xml does not point at. */
static int count_stale(const char *xml, const struct sm_define_disk *disks, size_t n)
{
	struct sm_domain_disks parsed;
	int stale = 0;

	if (sm_chain_parse(xml, &parsed) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&parsed, disks[i].target);

		if (!d || d->nchain == 0 || !sm_str_eq(d->chain[0].path, disks[i].path) ||
		    !sm_str_eq(d->chain[0].format, disks[i].format) ||
		    !sm_str_eq(d->chain[0].type, source_type(disks[i].path)))
			stale++;
		/* A <backingStore> libvirt recorded must not name the old chain. */
		else if (disks[i].check_backing && d->nchain > 1 &&
			 !sm_str_eq(d->chain[1].path, disks[i].backing))
			stale++;
	}
	sm_domain_disks_release(&parsed);
	return stale;
}

int sm_define_sync(virConnectPtr conn, virDomainPtr dom, const struct sm_define_disk *disks,
		   size_t n, int *rewritten)
{
	SM_AUTOFREE char *xml = sm_virt_domain_xml(dom, true);
	SM_AUTOFREE char *fixed = NULL;
	SM_AUTOFREE char *after = NULL;
	virDomainPtr defined;
	int stale;

	*rewritten = 0;
	if (!xml)
		return -1;
	stale = count_stale(xml, disks, n);
	if (stale <= 0)
		return stale;
	fixed = sm_define_rewrite_xml(xml, disks, n);
	if (!fixed)
		return -1;
	defined = virDomainDefineXML(conn, fixed);
	if (!defined) {
		sm_virt_error("cannot rewrite the persistent definition of domain '%s'",
			      virDomainGetName(dom));
		return -1;
	}
	virDomainFree(defined);
	*rewritten = 1;
	after = sm_virt_domain_xml(dom, true);
	if (!after)
		return -1;
	if (count_stale(after, disks, n) != 0) {
		sm_error("the persistent definition of domain '%s' still does not point at "
			 "the destination after rewriting it; check 'virsh dumpxml --inactive'",
			 virDomainGetName(dom));
		return -1;
	}
	return 0;
}
