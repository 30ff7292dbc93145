/* cmd_provision.c: 'snapmove provision create|extend|remove|list', a
 * provisioner run by hand through provision.c, journaled as a move's would
 * be: for admins (a device ready before a move) and for the tests; a move
 * asks for its own devices (job/provdev.c).
 */
#include "cli/cli.h"
#include "events.h"
#include "journal.h"
#include "pool.h"
#include "provision.h"
#include "util.h"
#include "virt.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

static const char usage_text[] =
	"usage: snapmove provision create NAME SIZE (--provisioner PROG | --pool POOL)\n"
	"                                [--set KEY=VALUE]... [--timeout SEC]\n"
	"       snapmove provision extend DEVICE SIZE [--timeout SEC]\n"
	"       snapmove provision remove DEVICE [--timeout SEC]\n"
	"       snapmove provision list\n\n"
	"Run a provisioner, the program that makes block devices for destinations\n"
	"(docs/provisioners.md), and journal the run and the device.  create prints\n"
	"the device's path on stdout once snapmove has checked it (a block device\n"
	"under /dev, at least SIZE large).\n\n"
	"  NAME                 the device's name for the provisioner: letters, digits,\n"
	"                       '.', '_', '-' (at most 64)\n"
	"  SIZE                 bytes, or with a suffix K, M, G, T (powers of 1024)\n"
	"  DEVICE               the path create printed, or the device's number in\n"
	"                       'snapmove provision list'\n"
	"  --provisioner PROG   a name in " SM_PROVISIONERS_DIR " (loop, lvm)\n"
	"                       or a path; it and its folders must be root's alone\n"
	"  --pool POOL          a libvirt logical (LVM) pool: the lvm provisioner with\n"
	"                       LVM_VG set to the pool's volume group\n"
	"  --set KEY=VALUE      handed to the provisioner as SNAPMOVE_KEY=VALUE (loop:\n"
	"                       LOOP_DIR; lvm: LVM_VG) and journaled, so extend and\n"
	"                       remove get it too\n"
	"  --timeout SEC        kill a provisioner running longer (default 120)\n\n"
	"Only a device made by 'snapmove provision create' is extended or removed here;\n"
	"a move's devices are its own.  Exit status: 0 done, 1 the provisioner ran and\n"
	"failed (or what it made was refused; see 'provision list'), 2 usage, 3 refused\n"
	"before running anything.\n";

#define CMD "provision"

/* DEVICE: a device number, or the path of a created (or removing) device. */
static int resolve_device(struct sm_journal *j, const char *arg, long long *id)
{
	unsigned long long n;

	if (sm_parse_ull(arg, &n) == 0 && n >= 1 && n <= INT64_MAX) {
		*id = (long long)n;
		return 0;
	}
	if (sm_journal_device_find(j, NULL, arg, id) < 0)
		return -1;
	if (*id == 0) {
		sm_error("'%s' is not a device snapmove provisioned (no created device at that "
			 "path in the journal '%s'); snapmove removes and extends only the devices "
			 "its provisioners made: see 'snapmove provision list'", arg,
			 sm_journal_path(j));
		return -1;
	}
	return 0;
}

/* --pool: the lvm provisioner's LVM_VG, the pool's volume group, added to
 * *settings. */
static int pool_settings(const struct sm_cli *cli, const char *pool, char **settings)
{
	SM_AUTOFREE char *vg = NULL;
	struct sm_virt *v = NULL;
	char *next;
	int rc = sm_virt_open(cli->uri, &v);

	if (rc == 0)
		rc = sm_pool_logical_vg(sm_virt_conn(v), pool, &vg);
	sm_virt_free(v);
	if (rc < 0)
		return -1;
	next = sm_xasprintf("%s%sSNAPMOVE_LVM_VG=%s", *settings, **settings ? "\n" : "", vg);
	if (!sm_journal_device_settings_ok(next)) {
		sm_error("storage pool '%s' names the volume group '%s', which is not one a "
			 "provisioner can be given", pool, vg);
		free(next);
		return -1;
	}
	free(*settings);
	*settings = next;
	return 0;
}

static int result_exit(enum sm_provision_result r)
{
	switch (r) {
	case SM_PROVISION_DONE:
		return SM_EXIT_OK;
	case SM_PROVISION_REFUSED:
		sm_cli_print_error();
		fprintf(stderr, "snapmove: nothing was changed\n");
		return SM_EXIT_REFUSED;
	case SM_PROVISION_FAILED:
		sm_cli_print_error();
		fprintf(stderr, "snapmove: see 'snapmove provision list' for the device's state\n");
		return SM_EXIT_FAILED;
	}
	return SM_EXIT_FAILED;
}

static void print_list(const struct sm_device_row *d, size_t n)
{
	FILE *f = sm_human();

	if (n == 0) {
		fprintf(f, "no provisioned devices\n");
		return;
	}
	fprintf(f, "%-5s %-9s %-6s %-10s %-16s %-11s %s\n", "ID", "STATE", "JOB", "SIZE", "NAME",
		"DEVICE", "PATH (PROVISIONER)");
	for (size_t i = 0; i < n; i++) {
		char b[32], job[24], dev[32];

		snprintf(job, sizeof(job), "%lld", d[i].job);
		if (d[i].rdev)
			snprintf(dev, sizeof(dev), "%u:%u", major((dev_t)d[i].rdev),
				 minor((dev_t)d[i].rdev));
		else
			snprintf(dev, sizeof(dev), "-");
		fprintf(f, "%-5lld %-9s %-6s %-10s %-16s %-11s %s (%s)\n", d[i].id,
			sm_device_state_name(d[i].state), d[i].job ? job : "-",
			sm_format_bytes(d[i].size ? d[i].size : d[i].bytes, b, sizeof(b)), d[i].name,
			dev, d[i].path ? d[i].path : "-", d[i].provisioner);
		if (d[i].error && (d[i].state == SM_DEVICE_FAILED ||
				   d[i].state == SM_DEVICE_REMOVING))
			fprintf(f, "      error: %s\n", d[i].error);
	}
}

int sm_cmd_provision(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "provisioner", required_argument, NULL, 'p' },
		{ "pool", required_argument, NULL, 'P' },
		{ "set", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path) : sm_journal_default_path();
	SM_AUTOFREE char *settings = sm_xstrdup("");
	SM_AUTOFREE char *prov = NULL;
	const char *prov_arg = NULL, *pool = NULL, *op;
	unsigned long long timeout = SM_PROVISION_TIMEOUT, bytes = 0;
	struct sm_journal *j = NULL;
	struct sm_device_row d = { 0 };
	enum sm_provision_result r;
	long long id = 0;
	int c, nargs, ret = SM_EXIT_REFUSED;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			prov_arg = optarg;
			break;
		case 'P':
			pool = optarg;
			break;
		case 's':
			if (sm_cli_add_setting(&settings, optarg) < 0)
				return sm_cli_usage_error(CMD, "--set takes KEY=VALUE, KEY of A-Z, 0-9 "
							  "and '_' (not JOB, DEVICE, DEVICE_NAME or "
							  "EVENTS_FILE), not '%s'", optarg);
			break;
		case 't':
			if (sm_parse_ull(optarg, &timeout) < 0 || timeout == 0 || timeout > 86400)
				return sm_cli_usage_error(CMD, "--timeout takes seconds (1 to 86400), "
							  "not '%s'", optarg);
			break;
		case 'h':
			printf("%s", usage_text);
			return SM_EXIT_OK;
		default:
			return sm_cli_usage_error(CMD, "bad option");
		}
	}
	if (sm_events_enabled())
		return sm_cli_usage_error(CMD, "provision prints no JSON yet; run it without "
					  "--json");
	if (optind >= argc)
		return sm_cli_usage_error(CMD, "provision needs create, extend, remove or list");
	op = argv[optind++];
	nargs = argc - optind;
	if (strcmp(op, "create") == 0) {
		if (nargs != 2)
			return sm_cli_usage_error(CMD, "provision create needs NAME SIZE");
		if (!prov_arg == !pool)
			return sm_cli_usage_error(CMD, "provision create needs --provisioner PROG "
						  "(loop, lvm, or a path) or --pool POOL (a logical "
						  "pool), one of them");
		if (pool && strstr(settings, "SNAPMOVE_LVM_VG="))
			return sm_cli_usage_error(CMD, "--pool sets LVM_VG itself; drop --set LVM_VG");
		if (!sm_journal_device_name_ok(argv[optind]))
			return sm_cli_usage_error(CMD, "'%s' is not a device name: 1 to 64 letters, "
						  "digits, '.', '_' or '-', starting with a letter "
						  "or digit", argv[optind]);
	} else if (strcmp(op, "extend") == 0 || strcmp(op, "remove") == 0) {
		if (nargs != (op[0] == 'e' ? 2 : 1))
			return sm_cli_usage_error(CMD, "provision %s needs %s", op,
						  op[0] == 'e' ? "DEVICE SIZE" : "DEVICE");
		if (prov_arg || pool || *settings)
			return sm_cli_usage_error(CMD, "provision %s takes no --provisioner, --pool "
						  "or --set: the journal says which made the "
						  "device, and with what", op);
	} else if (strcmp(op, "list") == 0) {
		if (nargs != 0)
			return sm_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	} else {
		return sm_cli_usage_error(CMD, "no provision command '%s'; use create, extend, "
					  "remove or list", op);
	}
	if (nargs == 2 && sm_parse_size(argv[optind + 1], &bytes) < 0)
		return sm_cli_usage_error(CMD, "SIZE is a number of bytes (1 or more), or one "
					  "with K, M, G or T, not '%s'", argv[optind + 1]);

	if (strcmp(op, "list") == 0) {
		struct sm_device_row *rows = NULL;
		bool missing = false;
		size_t n = 0;

		/* The default journal not made yet: nothing was ever provisioned. */
		if (sm_journal_open_readonly(db, &j, &missing) < 0 && missing && !cli->db_path) {
			print_list(NULL, 0);
			ret = SM_EXIT_OK;
			goto cleanup;
		}
		if (!j || sm_journal_device_list(j, &rows, &n) < 0) {
			sm_cli_print_error();
			goto cleanup;
		}
		print_list(rows, n);
		sm_device_rows_free(rows, n);
		ret = SM_EXIT_OK;
		goto cleanup;
	}
	if (op[0] == 'c') {
		if (pool && pool_settings(cli, pool, &settings) < 0) {
			sm_cli_print_error();
			fprintf(stderr, "snapmove: nothing was changed\n");
			goto cleanup;
		}
		prov = sm_provision_resolve(pool ? "lvm" : prov_arg, NULL);
		if (!prov || sm_journal_open(db, &j) < 0) {
			sm_cli_print_error();
			fprintf(stderr, "snapmove: nothing was changed\n");
			goto cleanup;
		}
		r = sm_provision_create(j, 0, prov, settings, argv[optind], bytes, (double)timeout,
					&d);
		ret = result_exit(r);
		if (r == SM_PROVISION_DONE) {
			char b[32];

			printf("%s\n", d.path);
			if (!sm_human_is_quiet())
				fprintf(stderr, "device %lld: '%s' (%s), made by '%s'\n", d.id, d.path,
					sm_format_bytes(d.size, b, sizeof(b)), d.provisioner);
		}
		goto cleanup;
	}
	if (sm_journal_open_existing(db, &j, NULL) < 0 || resolve_device(j, argv[optind], &id) < 0) {
		sm_cli_print_error();
		fprintf(stderr, "snapmove: nothing was changed\n");
		goto cleanup;
	}
	if (op[0] == 'e') {
		r = sm_provision_extend(j, 0, id, bytes, (double)timeout, &d);
		ret = result_exit(r);
		if (r == SM_PROVISION_DONE) {
			char b[32];

			fprintf(sm_human(), "device %lld: '%s' is now %s\n", d.id, d.path,
				sm_format_bytes(d.size, b, sizeof(b)));
		}
	} else {
		r = sm_provision_remove(j, 0, id, (double)timeout);
		ret = result_exit(r);
		if (r == SM_PROVISION_DONE)
			fprintf(sm_human(), "device %lld removed\n", id);
	}

cleanup:
	sm_device_row_release(&d);
	sm_journal_free(j);
	return ret;
}
