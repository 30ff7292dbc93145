/* snapshot.c: build the snapshot XML with libxml2 (so paths are escaped) and
 * take the snapshot in one atomic libvirt call, onto overlays the job made
 * (REUSE_EXT: libvirt neither creates nor truncates a file by name); an
 * overlay on a block device is given as <disk type='block'><source dev=>.
 */
#include "snapshot/snapshot.h"
#include "util.h"
#include "virt.h"

#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct sm_plan_disk *find_plan(const struct sm_plan_disk *plans, size_t n,
					    const char *target)
{
	for (size_t i = 0; i < n; i++)
		if (sm_str_eq(plans[i].target, target))
			return &plans[i];
	return NULL;
}

char *sm_snapshot_xml(const struct sm_domain_disks *all, const struct sm_plan_disk *plans,
		      size_t nplans, long long job_id)
{
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr root = xmlNewNode(NULL, (const xmlChar *)"domainsnapshot");
	xmlNodePtr disks, mem;
	xmlChar *buf = NULL;
	int len = 0;
	char name[64], *out;

	xmlDocSetRootElement(doc, root);
	snprintf(name, sizeof(name), "snapmove-%lld", job_id);
	xmlNewTextChild(root, NULL, (const xmlChar *)"name", (const xmlChar *)name);
	xmlNewTextChild(root, NULL, (const xmlChar *)"description",
			(const xmlChar *)"snapmove: temporary overlay of a live storage move");
	mem = xmlNewChild(root, NULL, (const xmlChar *)"memory", NULL);
	xmlNewProp(mem, (const xmlChar *)"snapshot", (const xmlChar *)"no");
	disks = xmlNewChild(root, NULL, (const xmlChar *)"disks", NULL);
	for (size_t i = 0; i < all->ndisks; i++) {
		const struct sm_plan_disk *p = find_plan(plans, nplans, all->disks[i].target);
		xmlNodePtr d = xmlNewChild(disks, NULL, (const xmlChar *)"disk", NULL);
		struct stat sb;
		bool on_dev;

		xmlNewProp(d, (const xmlChar *)"name", (const xmlChar *)all->disks[i].target);
		if (!p) {
			xmlNewProp(d, (const xmlChar *)"snapshot", (const xmlChar *)"no");
			continue;
		}
		/* An overlay on a device the job's provisioner made (the job
		 * checked it is that device) is a block source. */
		on_dev = stat(p->src_overlay, &sb) == 0 && S_ISBLK(sb.st_mode);
		xmlNewProp(d, (const xmlChar *)"snapshot", (const xmlChar *)"external");
		xmlNewProp(d, (const xmlChar *)"type", (const xmlChar *)(on_dev ? "block" : "file"));
		xmlNewProp(xmlNewChild(d, NULL, (const xmlChar *)"driver", NULL),
			   (const xmlChar *)"type", (const xmlChar *)"qcow2");
		xmlNewProp(xmlNewChild(d, NULL, (const xmlChar *)"source", NULL),
			   (const xmlChar *)(on_dev ? "dev" : "file"),
			   (const xmlChar *)p->src_overlay);
	}
	xmlDocDumpFormatMemory(doc, &buf, &len, 1);
	out = sm_xstrdup((const char *)buf);
	xmlFree(buf);
	xmlFreeDoc(doc);
	return out;
}

int sm_snapshot_create(virDomainPtr dom, const struct sm_domain_disks *all,
		       const struct sm_plan_disk *plans, size_t nplans, long long job_id,
		       bool quiesce)
{
	SM_AUTOFREE char *xml = sm_snapshot_xml(all, plans, nplans, job_id);
	unsigned int flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
			     VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
			     VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
			     VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT;
	virDomainSnapshotPtr snap;

	if (quiesce)
		flags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
	snap = virDomainSnapshotCreateXML(dom, xml, flags);
	if (!snap) {
		SM_AUTOFREE char *why = sm_virt_last_error_dup();

		if (quiesce)
			sm_error("cannot take the quiesced snapshot of domain '%s': %s; --quiesce "
				 "needs the QEMU guest agent running in the guest: start it there "
				 "before resuming the job", virDomainGetName(dom), why);
		else
			sm_virt_error("cannot take the snapshot of domain '%s'",
				      virDomainGetName(dom));
		return -1;
	}
	virDomainSnapshotFree(snap);
	return 0;
}
