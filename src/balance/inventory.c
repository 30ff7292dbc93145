/* inventory.c: storages by file system, and the disks on them with their
 * movable bytes, read from libvirt, the journal and the files.  Read-only.
 */
#include "balance/inventory.h"
#include "chain/chain.h"
#include "chain/image.h"
#include "chain/usage.h"
#include "pool.h"
#include "job/reconcile.h"
#include "snapshot/blockjob.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct storage_dev {
	dev_t dev;
};

static int add_storage(struct sm_virt *v, struct sm_inventory *inv, dev_t *devs,
		       const char *name)
{
	char resolved[PATH_MAX];
	SM_AUTOFREE char *pool_dir = NULL;
	struct statvfs vfs;
	struct stat sb;
	const char *dir = name;
	struct sm_storage *s;

	if (stat(name, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		if (strchr(name, '/')) {
			sm_error("storage '%s' is not a directory; --storage takes directories "
				 "or storage pool names", name);
			return -1;
		}
		if (sm_pool_dest_dir(sm_virt_conn(v), name, &pool_dir) < 0)
			return -1;
		dir = pool_dir;
	}
	if (!realpath(dir, resolved) || stat(resolved, &sb) < 0 || statvfs(resolved, &vfs) < 0) {
		sm_error("cannot read storage '%s': %s", name, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < inv->nstorages; i++) {
		if (devs[i] == sb.st_dev) {
			sm_error("storages '%s' and '%s' are on one file system; rebalancing moves "
				 "data between file systems, name each once", inv->storages[i].name,
				 name);
			return -1;
		}
	}
	devs[inv->nstorages] = sb.st_dev;
	s = &inv->storages[inv->nstorages++];
	s->name = sm_xstrdup(name);
	s->dir = sm_xstrdup(resolved);
	s->size = (unsigned long long)vfs.f_blocks * vfs.f_frsize;
	s->free = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

static bool listed(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (sm_str_eq(names[i], name))
			return true;
	return false;
}

static int storage_of(const dev_t *devs, size_t n, const char *path)
{
	struct stat sb;

	if (!path || stat(path, &sb) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (devs[i] == sb.st_dev)
			return (int)i;
	return -1;
}

static void add_unit(struct sm_inventory *inv, const dev_t *devs, const struct sm_usage *u,
		     const char *domain, bool running, struct sm_disk *d,
		     struct sm_journal *j, const char *uuid, virDomainPtr dom)
{
	struct sm_unit *unit;
	char *why = NULL;
	long long other;
	int st;

	if (!sm_str_eq(d->device, "disk") || d->nchain == 0 || !sm_str_eq(d->chain[0].type, "file"))
		return;
	st = storage_of(devs, inv->nstorages, d->chain[0].path);
	if (st < 0)
		return;  /* not on a storage we were asked about */
	if (!running && !d->chain_known && !d->encryption)
		why = sm_image_follow_chain(d);
	if (!why)
		why = sm_disk_unmovable_reason(d);
	if (!why)
		why = sm_image_check_chain(d, !running, NULL);
	if (!why && sm_virt_metadata_reason(dom, domain, &why) < 0)
		why = sm_xstrdup(sm_error_message());
	if (!why && sm_journal_unfinished_job_for_disk(j, uuid, d->target, &other) > 0)
		why = sm_xasprintf("it has an unfinished snapmove job %lld", other);
	if (!why && running && (d->mirror_job || sm_blockjob_running(dom, d->target) > 0))
		why = sm_xstrdup("it has a block job running");
	if (!why && !running) {
		/* libvirt's "shut off" is a claim: no QEMU may run it or hold its image. */
		const char *t = d->target, *path = d->chain[0].path;

		if (sm_reconcile_prove_off(domain, &t, &path, 1, "snapmove rebalance") < 0)
			why = sm_xstrdup(sm_error_message());
	}
	inv->units = sm_xrealloc(inv->units, (inv->nunits + 1) * sizeof(*inv->units));
	unit = &inv->units[inv->nunits++];
	memset(unit, 0, sizeof(*unit));
	unit->domain = sm_xstrdup(domain);
	unit->disk = sm_xstrdup(d->target);
	unit->running = running;
	unit->storage = st;
	unit->why_not = why;
	for (size_t k = 0; !why && k < d->nchain; k++) {
		struct stat sb;

		if (k > 0 && sm_usage_other_than_disk(u, d->chain[k].path, domain, d))
			break;  /* shared: it and what is below it stay */
		if (storage_of(devs, inv->nstorages, d->chain[k].path) != st) {
			unit->why_not = sm_xasprintf("its chain spans several file systems ('%s')",
						     d->chain[k].path);
			break;
		}
		if (stat(d->chain[k].path, &sb) == 0)
			unit->bytes += (unsigned long long)sb.st_blocks * 512ULL;
	}
}

int sm_inventory_take(struct sm_virt *v, struct sm_journal *j,
		      const struct sm_inventory_opts *o, struct sm_inventory *out)
{
	dev_t *devs = sm_xcalloc(o->nstorages + 1, sizeof(*devs));
	struct sm_usage usage = { 0 };
	virDomainPtr *doms = NULL;
	int n = 0, ret = -1;

	memset(out, 0, sizeof(*out));
	out->storages = sm_xcalloc(o->nstorages + 1, sizeof(*out->storages));
	for (size_t i = 0; i < o->nstorages; i++)
		if (add_storage(v, out, devs, o->storages[i]) < 0)
			goto cleanup;
	if (sm_usage_scan_domains(sm_virt_conn(v), &usage) < 0)
		goto cleanup;
	for (size_t i = 0; i < out->nstorages; i++)
		if (sm_usage_scan_dir(out->storages[i].dir, &usage) < 0)
			goto cleanup;
	n = virConnectListAllDomains(sm_virt_conn(v), &doms, 0);
	if (n < 0) {
		sm_virt_error("cannot list the domains");
		goto cleanup;
	}
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);
		bool running = virDomainIsActive(doms[i]) == 1;
		bool excluded;
		char uuid[VIR_UUID_STRING_BUFLEN] = "";
		struct sm_domain_disks disks;
		char *xml;

		excluded = (o->ninclude && !listed(o->include, o->ninclude, name)) ||
			   listed(o->exclude, o->nexclude, name);
		if (!running && (!o->include_offline || virDomainIsPersistent(doms[i]) != 1))
			continue;
		virDomainGetUUIDString(doms[i], uuid);
		xml = virDomainGetXMLDesc(doms[i], running ? 0 : VIR_DOMAIN_XML_INACTIVE);
		if (!xml || sm_chain_parse(xml, &disks) < 0) {
			free(xml);
			continue;
		}
		free(xml);
		for (size_t k = 0; k < disks.ndisks; k++) {
			size_t before = out->nunits;

			add_unit(out, devs, &usage, name, running, &disks.disks[k], j, uuid, doms[i]);
			/* Excluded disks stay, and are shown as such in the plan. */
			if (excluded && out->nunits > before) {
				struct sm_unit *u = &out->units[out->nunits - 1];

				free(u->why_not);
				u->why_not = sm_xstrdup("excluded with --include/--exclude");
				u->excluded = true;
			}
		}
		sm_domain_disks_release(&disks);
	}
	ret = 0;

cleanup:
	for (int i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
	free(devs);
	sm_usage_release(&usage);
	if (ret < 0)
		sm_inventory_release(out);
	return ret;
}

void sm_inventory_release(struct sm_inventory *inv)
{
	for (size_t i = 0; i < inv->nstorages; i++) {
		free(inv->storages[i].name);
		free(inv->storages[i].dir);
	}
	for (size_t i = 0; i < inv->nunits; i++) {
		free(inv->units[i].domain);
		free(inv->units[i].disk);
		free(inv->units[i].why_not);
	}
	free(inv->storages);
	free(inv->units);
	memset(inv, 0, sizeof(*inv));
}

int sm_inventory_storage(const struct sm_inventory *inv, const char *name)
{
	char resolved[PATH_MAX];

	for (size_t i = 0; i < inv->nstorages; i++)
		if (sm_str_eq(inv->storages[i].name, name))
			return (int)i;
	if (realpath(name, resolved))
		for (size_t i = 0; i < inv->nstorages; i++)
			if (sm_str_eq(inv->storages[i].dir, resolved))
				return (int)i;
	sm_error("--drain names '%s', which is not one of the --storage given; name it with "
		 "--storage too", name);
	return -1;
}
