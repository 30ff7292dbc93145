/* result.c: the --json result of a job (each disk's chain before and now),
 * and the default number of parallel copies (devices under a file system).
 */
#include "job/internal.h"
#include "events.h"
#include "util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Leaf devices under a block device in sysfs (its slaves, recursively). */
static unsigned count_leaves(const char *sysdir, int depth)
{
	SM_AUTOFREE char *slaves = sm_path_join(sysdir, "slaves");
	DIR *d = opendir(slaves);
	struct dirent *e;
	unsigned n = 0;

	if (!d || depth > 8) {
		if (d)
			closedir(d);
		return 1;
	}
	while ((e = readdir(d))) {
		SM_AUTOFREE char *sub = NULL;

		if (e->d_name[0] == '.')
			continue;
		sub = sm_xasprintf("/sys/class/block/%s", e->d_name);
		n += count_leaves(sub, depth + 1);
	}
	closedir(d);
	return n ? n : 1;
}

unsigned sm_job_default_parallel(const char *dest)
{
	SM_AUTOFREE char *sys = NULL;
	SM_AUTOFREE char *part = NULL;
	struct stat sb;

	if (stat(dest, &sb) < 0 || major(sb.st_dev) == 0)
		return 1;
	sys = sm_xasprintf("/sys/dev/block/%u:%u", major(sb.st_dev), minor(sb.st_dev));
	part = sm_path_join(sys, "partition");
	if (access(part, F_OK) == 0) {
		SM_AUTOFREE char *parent = sm_path_join(sys, "..");

		return count_leaves(parent, 0);
	}
	return count_leaves(sys, 0);
}

static struct json_object *chain_json(const char *const *paths, const char *const *formats,
				      size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t k = 0; k < n; k++) {
		struct json_object *img = json_object_new_object();

		json_object_object_add(img, "path", json_object_new_string(paths[k]));
		json_object_object_add(img, "format", json_object_new_string(formats[k] ? formats[k] : ""));
		json_object_array_add(a, img);
	}
	return a;
}

void sm_job_emit_result(const struct sm_jobctx *c, const char *status, int exit_code,
			const char *error)
{
	struct json_object *o, *disks;
	struct sm_domain_disks now = { 0 };
	char *xml = NULL;

	if (!sm_events_wanted())
		return;
	if (c->dom && (xml = virDomainGetXMLDesc(c->dom, virDomainIsActive(c->dom) == 1 ? 0 :
						 VIR_DOMAIN_XML_INACTIVE)))
		sm_chain_parse(xml, &now);
	free(xml);
	o = json_object_new_object();
	json_object_object_add(o, "job", json_object_new_int64(c->job));
	json_object_object_add(o, "domain", json_object_new_string(c->domain_name));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "exit", json_object_new_int(exit_code));
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	disks = json_object_new_array();
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_plan_disk *p = &c->plans[i];
		const struct sm_disk *d = sm_domain_disks_find(&now, p->target);
		const char **paths = sm_xcalloc(p->nimages + 1, sizeof(*paths));
		const char **formats = sm_xcalloc(p->nimages + 1, sizeof(*formats));
		struct json_object *disk = json_object_new_object();
		size_t n = 0;

		for (size_t k = 0; k < p->nimages; k++) {
			paths[n] = p->images[k].src;
			formats[n++] = p->images[k].format;
		}
		if (p->kept) {
			paths[n] = p->kept;
			formats[n++] = p->kept_format;
		}
		json_object_object_add(disk, "target", json_object_new_string(p->target));
		json_object_object_add(disk, "state",
				       json_object_new_string(sm_disk_state_name(c->disks[i].state)));
		if (c->disks && c->disks[i].failed)
			json_object_object_add(disk, "error", json_object_new_string(c->disks[i].failed));
		json_object_object_add(disk, "before", chain_json(paths, formats, n));
		free(paths);
		free(formats);
		if (d) {
			paths = sm_xcalloc(d->nchain + 1, sizeof(*paths));
			formats = sm_xcalloc(d->nchain + 1, sizeof(*formats));
			for (size_t k = 0; k < d->nchain; k++) {
				paths[k] = d->chain[k].path ? d->chain[k].path : "";
				formats[k] = d->chain[k].format;
			}
			json_object_object_add(disk, "after", chain_json(paths, formats, d->nchain));
			free(paths);
			free(formats);
		}
		json_object_array_add(disks, disk);
	}
	json_object_object_add(o, "disks", disks);
	sm_domain_disks_release(&now);
	sm_event_emit("result", o);
}
