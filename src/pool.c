/* pool.c: storage pool lookups through the libvirt API and libxml2. */
#include "pool.h"
#include "util.h"
#include "virt.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An element's text, or NULL. */
static char *child_text(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr p = parent->children; p; p = p->next) {
		if (p->type == XML_ELEMENT_NODE && strcmp((const char *)p->name, name) == 0) {
			xmlChar *c = xmlNodeGetContent(p);
			char *s = sm_xstrdup(c ? (const char *)c : "");

			xmlFree(c);
			return s;
		}
	}
	return NULL;
}

/* Pool type, target path and (source_name not NULL) <source><name> from its
 * XML (caller frees them). */
static int pool_facts_source(virStoragePoolPtr pool, char **type, char **path,
			     char **source_name)
{
	char *xml = virStoragePoolGetXMLDesc(pool, 0);
	xmlDocPtr doc;
	xmlNodePtr root;

	*type = *path = NULL;
	if (source_name)
		*source_name = NULL;
	if (!xml) {
		sm_virt_error("cannot read the XML of pool '%s'", virStoragePoolGetName(pool));
		return -1;
	}
	doc = xmlReadMemory(xml, (int)strlen(xml), "pool.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	free(xml);
	if (!doc) {
		sm_error("cannot parse the XML of pool '%s'", virStoragePoolGetName(pool));
		return -1;
	}
	root = xmlDocGetRootElement(doc);
	if (root) {
		xmlChar *t = xmlGetProp(root, (const xmlChar *)"type");

		*type = sm_xstrdup(t ? (const char *)t : "");
		xmlFree(t);
		for (xmlNodePtr n = root->children; n; n = n->next) {
			if (source_name && !*source_name && n->type == XML_ELEMENT_NODE &&
			    strcmp((const char *)n->name, "source") == 0)
				*source_name = child_text(n, "name");
			if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "target"))
				continue;
			for (xmlNodePtr p = n->children; p; p = p->next) {
				if (p->type == XML_ELEMENT_NODE &&
				    strcmp((const char *)p->name, "path") == 0) {
					xmlChar *c = xmlNodeGetContent(p);

					*path = sm_xstrdup((const char *)c);
					xmlFree(c);
				}
			}
		}
	}
	xmlFreeDoc(doc);
	if (!*type)
		*type = sm_xstrdup("");
	return 0;
}

static int pool_facts(virStoragePoolPtr pool, char **type, char **path)
{
	return pool_facts_source(pool, type, path, NULL);
}

int sm_pool_logical_vg(virConnectPtr conn, const char *name, char **vg)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, name);
	char *type = NULL, *path = NULL, *source = NULL;
	int ret = -1;

	*vg = NULL;
	if (!pool) {
		sm_error("no storage pool named '%s'; see 'virsh pool-list --all'", name);
		return -1;
	}
	if (pool_facts_source(pool, &type, &path, &source) < 0)
		goto cleanup;
	if (!sm_str_eq(type, "logical")) {
		sm_error("storage pool '%s' is of type '%s'; its devices come from a provisioner "
			 "only when it is a logical (LVM) pool: name a provisioner instead", name,
			 type);
		goto cleanup;
	}
	/* libvirt names the volume group by <source><name>, else the pool's name. */
	*vg = sm_xstrdup(source && *source ? source : name);
	ret = 0;

cleanup:
	free(type);
	free(path);
	free(source);
	virStoragePoolFree(pool);
	return ret;
}

int sm_pool_dest_dir(virConnectPtr conn, const char *name, char **dir)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, name);
	char *type = NULL, *path = NULL;
	int ret = -1;

	*dir = NULL;
	if (!pool) {
		sm_error("no storage pool named '%s'; see 'virsh pool-list --all'", name);
		return -1;
	}
	if (pool_facts(pool, &type, &path) < 0)
		goto cleanup;
	if (!sm_str_eq(type, "dir") && !sm_str_eq(type, "fs") && !sm_str_eq(type, "netfs")) {
		sm_error("storage pool '%s' is of type '%s'; snapmove moves into dir, fs and "
			 "netfs pools, whose volumes are files; use --dest with a directory", name,
			 type);
		goto cleanup;
	}
	if (virStoragePoolIsActive(pool) != 1) {
		sm_error("storage pool '%s' is not active; start it with 'virsh pool-start %s'",
			 name, name);
		goto cleanup;
	}
	if (!path) {
		sm_error("storage pool '%s' has no target path; use --dest with a directory "
			 "instead", name);
		goto cleanup;
	}
	*dir = sm_steal(&path);
	ret = 0;

cleanup:
	free(type);
	free(path);
	virStoragePoolFree(pool);
	return ret;
}

static bool same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

int sm_pool_refresh_dirs(virConnectPtr conn, const char *const *dirs, size_t n)
{
	virStoragePoolPtr *pools = NULL;
	int np = virConnectListAllStoragePools(conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
	int ret = 0;

	for (int i = 0; i < np; i++) {
		char *type = NULL, *path = NULL;

		if (pool_facts(pools[i], &type, &path) == 0 && path) {
			for (size_t k = 0; k < n; k++) {
				if (!same_dir(path, dirs[k]))
					continue;
				if (virStoragePoolRefresh(pools[i], 0) < 0) {
					SM_AUTOFREE char *why = sm_virt_last_error_dup();

					sm_error("cannot refresh storage pool '%s': %s; run "
						 "'virsh pool-refresh %s' so it lists the new files",
						 virStoragePoolGetName(pools[i]), why,
						 virStoragePoolGetName(pools[i]));
					ret = -1;
				}
				break;
			}
		}
		free(type);
		free(path);
		virStoragePoolFree(pools[i]);
	}
	free(pools);
	return ret;
}
