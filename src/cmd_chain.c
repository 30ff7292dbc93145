/* cmd_chain.c: 'snapmove chain DOMAIN [TARGET]': the live backing chain of each
 * disk with formats, virtual and allocated sizes.  Read-only.
 */
#include "chain/chain.h"
#include "chain/image.h"
#include "cli.h"
#include "util.h"
#include "virt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static void print_disk(const struct sm_disk *d)
{
	char *why = sm_disk_unmovable_reason(d);

	printf("%s (%s)%s%s\n", d->target, d->device, why ? ": not movable: " : "",
	       why ? why : "");
	free(why);
	for (size_t i = 0; i < d->nchain; i++) {
		const struct sm_image *img = &d->chain[i];
		struct sm_image_info info = { 0 };
		struct stat sb;
		char v[32] = "?", a[32] = "?";

		if (sm_str_eq(img->type, "file") && img->path && img->format &&
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
		{ NULL, 0, NULL, 0 },
	};
	struct sm_virt *v = NULL;
	virDomainPtr dom = NULL;
	SM_AUTOFREE char *xml = NULL;
	struct sm_domain_disks disks = { 0 };
	const char *target;
	int c, ret = SM_EXIT_FAILED;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
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
		goto cleanup;
	}
	if (target && !sm_domain_disks_find(&disks, target)) {
		sm_error("domain '%s' has no disk '%s'; run 'snapmove chain %s' to see its disks",
			 argv[optind], target, argv[optind]);
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
		goto cleanup;
	}
	for (size_t i = 0; i < disks.ndisks; i++)
		if (!target || sm_str_eq(disks.disks[i].target, target))
			print_disk(&disks.disks[i]);
	ret = SM_EXIT_OK;

cleanup:
	sm_domain_disks_release(&disks);
	if (dom)
		virDomainFree(dom);
	sm_virt_free(v);
	return ret;
}
