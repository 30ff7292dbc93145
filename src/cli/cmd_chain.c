/* cmd_chain.c: 'snapmove chain DOMAIN [TARGET]': the live backing chain of each
 * disk with formats, virtual and allocated sizes, and why a disk cannot be
 * moved.  Read-only.
 */
#include "chain/chain.h"
#include "chain/image.h"
#include "cli/cli.h"
#include "events.h"
#include "util.h"
#include "virt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Why the disk cannot be moved (to free), or NULL: its XML, then its files. */
static char *unmovable_reason(const struct sm_disk *d)
{
	char *why = sm_disk_unmovable_reason(d);

	return why ? why : sm_image_check_chain(d, false, NULL);
}

/* An image qemu-img can read: a file, or a device libvirt names as one. */
static bool has_image(const struct sm_image *img)
{
	return (sm_str_eq(img->type, "file") || sm_str_eq(img->type, "block")) && img->path &&
	       img->format;
}

static struct json_object *disk_json(const struct sm_disk *d)
{
	struct json_object *o = json_object_new_object();
	struct json_object *chain = json_object_new_array();
	char *why = unmovable_reason(d);

	json_object_object_add(o, "target", json_object_new_string(d->target));
	json_object_object_add(o, "device", json_object_new_string(d->device));
	json_object_object_add(o, "movable", json_object_new_boolean(!why));
	json_object_object_add(o, "reason", why ? json_object_new_string(why) : NULL);
	free(why);
	for (size_t i = 0; i < d->nchain; i++) {
		const struct sm_image *img = &d->chain[i];
		struct json_object *im = json_object_new_object();
		struct sm_image_info info = { 0 };
		struct stat sb;

		json_object_object_add(im, "path", img->path ? json_object_new_string(img->path) : NULL);
		json_object_object_add(im, "type", json_object_new_string(img->type));
		json_object_object_add(im, "format", img->format ? json_object_new_string(img->format)
								   : NULL);
		if (has_image(img) &&
		    sm_image_info(img->path, img->format, &info) == 0)
			json_object_object_add(im, "virtual_size",
					       json_object_new_int64((int64_t)info.virtual_size));
		if (img->path && stat(img->path, &sb) == 0)
			json_object_object_add(im, "allocated",
					       json_object_new_int64((int64_t)sb.st_blocks * 512));
		sm_image_info_release(&info);
		json_object_array_add(chain, im);
	}
	json_object_object_add(o, "chain", chain);
	if (d->mirror_job) {
		struct json_object *job = json_object_new_object();

		json_object_object_add(job, "type", json_object_new_string(d->mirror_job));
		json_object_object_add(job, "ready", json_object_new_boolean(d->mirror_ready));
		json_object_object_add(job, "target", d->mirror_path ?
				       json_object_new_string(d->mirror_path) : NULL);
		json_object_object_add(o, "block_job", job);
	}
	return o;
}

static void print_disk(const struct sm_disk *d)
{
	char *why = unmovable_reason(d);

	printf("%s (%s)%s%s\n", d->target, d->device, why ? ": not movable: " : "",
	       why ? why : "");
	free(why);
	for (size_t i = 0; i < d->nchain; i++) {
		const struct sm_image *img = &d->chain[i];
		struct sm_image_info info = { 0 };
		struct stat sb;
		char v[32] = "?", a[32] = "?";

		if (has_image(img) &&
		    sm_image_info(img->path, img->format, &info) == 0)
			sm_format_bytes(info.virtual_size, v, sizeof(v));
		if (img->path && stat(img->path, &sb) == 0)
			sm_format_bytes((unsigned long long)sb.st_blocks * 512ULL, a, sizeof(a));
		printf("  %s%s  %s  %s  virtual %s  allocated %s\n", i ? "<- " : "",
		       img->path ? img->path : "(no path)", img->type,
		       img->format ? img->format : "?", v, a);
		sm_image_info_release(&info);
	}
	if (d->mirror_job)
		printf("  block job: %s%s -> %s\n", d->mirror_job,
		       d->mirror_ready ? " (ready)" : "",
		       d->mirror_path ? d->mirror_path : "?");
}

int sm_cmd_chain(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct sm_virt *v = NULL;
	virDomainPtr dom = NULL;
	SM_AUTOFREE char *xml = NULL;
	struct sm_domain_disks disks = { 0 };
	const char *target;
	int c, ret = SM_EXIT_FAILED;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j') {
			sm_events_enable(true);
			continue;
		}
		if (c == 'h') {
			printf("usage: snapmove chain DOMAIN [TARGET]\n\nShow the live backing "
			       "chain of each disk (or of TARGET): path, type, format, virtual "
			       "and allocated size.\n");
			return SM_EXIT_OK;
		}
		return sm_cli_usage_error("chain", "bad option");
	}
	if (argc - optind < 1 || argc - optind > 2)
		return sm_cli_usage_error("chain", "chain needs DOMAIN and at most one TARGET");
	target = argc - optind == 2 ? argv[optind + 1] : NULL;
	if (sm_virt_open(cli->uri, &v) < 0 || !(dom = sm_virt_domain(v, argv[optind])) ||
	    !(xml = sm_virt_domain_xml(dom, false)) || sm_chain_parse(xml, &disks) < 0) {
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
		goto cleanup;
	}
	if (target && !sm_domain_disks_find(&disks, target)) {
		sm_error("domain '%s' has no disk '%s'; run 'snapmove chain %s' to see its disks",
			 argv[optind], target, argv[optind]);
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
		goto cleanup;
	}
	if (sm_events_enabled()) {
		struct json_object *doc = json_object_new_object();
		struct json_object *arr = json_object_new_array();

		json_object_object_add(doc, "domain", json_object_new_string(argv[optind]));
		for (size_t i = 0; i < disks.ndisks; i++)
			if (!target || sm_str_eq(disks.disks[i].target, target))
				json_object_array_add(arr, disk_json(&disks.disks[i]));
		json_object_object_add(doc, "disks", arr);
		sm_json_print(doc);
	} else {
		for (size_t i = 0; i < disks.ndisks; i++)
			if (!target || sm_str_eq(disks.disks[i].target, target))
				print_disk(&disks.disks[i]);
	}
	ret = SM_EXIT_OK;

cleanup:
	sm_domain_disks_release(&disks);
	if (dom)
		virDomainFree(dom);
	sm_virt_free(v);
	return ret;
}
