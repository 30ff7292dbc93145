/* cmd_move.c: 'snapmove move': parse the options, open the journal and the
 * connection, run the move, print the outcome and the exit status.
 */
#include "cli/cli.h"
#include "config.h"
#include "journal.h"
#include "events.h"
#include "job/job_run.h"
#include "job/move.h"
#include "progress.h"
#include "report.h"
#include "util.h"
#include "virt.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void move_usage(FILE *f)
{
	fprintf(f, "usage: snapmove move DOMAIN (--dest DIR | --dest-pool POOL) [--disk TARGET]... "
		   "[--bandwidth MIB]\n"
		   "                     [--keep-overlay] [--quiesce] [--dry-run] [--no-verify]\n"
		   "                     [--dest-format raw|qcow2] [--copy-method METHOD]\n"
		   "                     [--sync-writes auto|on|off] [--converge-timeout SEC]\n"
		   "                     [--parallel N] [--copy-shared] [--flatten]\n"
		   "                     [--delete-source] [--offline] [--trim]\n"
		   "                     [--overlay-dir DIR] [--dest-dev TARGET=DEVICE]...\n"
		   "                     [--dest-zeroed] [--dest-provisioner PROG [--set KEY=VALUE]...]\n"
		   "                     [--overlay-provisioner PROG [--overlay-size SIZE]\n"
		   "                     [--overlay-set KEY=VALUE]...]\n\n"
		   "Move the disks of running DOMAIN, with their whole backing chains, to DIR.\n\n"
		   "  --dest DIR        destination directory (must exist)\n"
		   "  --dest-pool POOL  a libvirt dir, fs or netfs storage pool as destination;\n"
		   "                    the pools involved are refreshed afterwards; a logical\n"
		   "                    pool (with --dest DIR for the overlays): each disk onto\n"
		   "                    a logical volume the lvm provisioner makes there\n"
		   "  --disk TARGET     a disk to move (vda); repeat for more; default: every\n"
		   "                    writable file-backed disk\n"
		   "  --bandwidth MIB   limit the copy, the mirror and the commit to MIB MiB/s\n"
		   "  --keep-overlay    leave the domain on the destination overlay (skip the\n"
		   "                    final commit)\n"
		   "  --quiesce         freeze guest file systems for the snapshot (needs the\n"
		   "                    QEMU guest agent)\n"
		   "  --dry-run         print the plan and change nothing\n"
		   "  --no-verify       do not re-read and compare each copied chunk (--verify,\n"
		   "                    the default, does)\n"
		   "  --dest-format F   convert single-image disks to raw or qcow2 (qemu-img\n"
		   "                    convert; a resumed conversion starts over)\n"
		   "  --copy-method M   auto (default: reflink, else direct, else readwrite),\n"
		   "                    reflink, direct, copy_file_range or readwrite\n"
		   "  --sync-writes M   auto (default): restart a mirror that does not converge\n"
		   "                    under the guest's writes in write-blocking mode; on: use\n"
		   "                    it from the start; off: never\n"
		   "  --converge-timeout SEC\n"
		   "                    how long the bytes a mirror has left may stop shrinking\n"
		   "                    before auto switches it (default 30)\n"
		   "  --parallel N      copy up to N disks at once (default: the number of\n"
		   "                    devices under the destination file system)\n"
		   "  --copy-shared     also copy backing images other domains or images use\n"
		   "                    (by default they stay where they are, and the moved\n"
		   "                    chain points at them)\n"
		   "  --flatten         one image at the destination instead of the chain\n"
		   "                    (qemu-img convert; a resumed conversion starts over)\n"
		   "  --delete-source   after the move, delete the source images no domain or\n"
		   "                    image uses (otherwise 'snapmove cleanup JOB' does); a\n"
		   "                    source device only through the provisioner that made it\n"
		   "  --offline         the domain is shut off: copy its chains and rewrite its\n"
		   "                    definition (it must stay off meanwhile)\n"
		   "  --trim            when done, ask the guest agent to trim the guest's file\n"
		   "                    systems (fstrim), so thin storage stays thin\n"
		   "  --overlay-dir DIR where the temporary overlay that takes the guest's\n"
		   "                    writes during the move goes (default: the destination,\n"
		   "                    so the source storage needs no free space)\n"
		   "  --dest-dev TARGET=DEVICE\n"
		   "                    put disk TARGET's image onto the block device DEVICE\n"
		   "                    (raw or qcow2, one image: --flatten for a chain); the\n"
		   "                    overlays stay in the destination; repeat for more\n"
		   "  --dest-zeroed     the --dest-dev devices read as zeros already: the\n"
		   "                    copy skips writing the source's zeros (a resumed copy\n"
		   "                    writes them)\n"
		   "  --dest-provisioner PROG\n"
		   "                    each disk's image onto a block device the provisioner\n"
		   "                    PROG (loop, lvm, or a path) makes for the job (one\n"
		   "                    image: --flatten for a chain); abort removes them\n"
		   "  --set KEY=VALUE   handed to the provisioner as SNAPMOVE_KEY=VALUE\n"
		   "  --overlay-provisioner PROG\n"
		   "                    both temporary overlays of each disk on block devices\n"
		   "                    PROG (loop, lvm or a path) makes for the job, grown as\n"
		   "                    the guest writes (block-threshold events); removed at\n"
		   "                    the end, by abort and by cleanup\n"
		   "  --overlay-size SIZE\n"
		   "                    what those devices start at and grow by (default 1G)\n"
		   "  --overlay-set KEY=VALUE\n"
		   "                    handed to PROG as SNAPMOVE_KEY=VALUE (LOOP_DIR, LVM_VG)\n");
}

/* A before_move veto ends its job at once (aborted); a later one leaves it
 * resumable. */
static bool job_aborted(struct sm_journal *j, long long job)
{
	struct sm_job_row row;
	bool aborted = false;

	if (sm_journal_job_get(j, job, &row) == 1) {
		aborted = sm_job_row_state(&row) == SM_JOB_ABORTED;
		sm_job_row_release(&row);
	}
	return aborted;
}

int sm_cmd_move(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dest", required_argument, NULL, 'd' },
		{ "disk", required_argument, NULL, 'k' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "keep-overlay", no_argument, NULL, 'o' },
		{ "quiesce", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "verify", no_argument, NULL, 'v' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "dest-format", required_argument, NULL, 'f' },
		{ "copy-method", required_argument, NULL, 'm' },
		{ "sync-writes", required_argument, NULL, 's' },
		{ "converge-timeout", required_argument, NULL, 't' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "copy-shared", no_argument, NULL, 'S' },
		{ "flatten", no_argument, NULL, 'F' },
		{ "dest-pool", required_argument, NULL, 'P' },
		{ "delete-source", no_argument, NULL, 'D' },
		{ "offline", no_argument, NULL, 'O' },
		{ "trim", no_argument, NULL, 'R' },
		{ "overlay-dir", required_argument, NULL, 'L' },
		{ "dest-dev", required_argument, NULL, 'B' },
		{ "dest-zeroed", no_argument, NULL, 'Z' },
		{ "dest-provisioner", required_argument, NULL, 'Q' },
		{ "set", required_argument, NULL, 'T' },
		{ "overlay-provisioner", required_argument, NULL, 'G' },
		{ "overlay-size", required_argument, NULL, 'g' },
		{ "overlay-set", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sm_move_opts o = { .verify = true, .copy_method = SM_COPY_AUTO };
	int method;
	unsigned long long num;
	const char **disks = sm_xcalloc((size_t)argc + 1, sizeof(*disks));
	const char **devs = sm_xcalloc((size_t)argc + 1, sizeof(*devs));
	SM_AUTOFREE char *db = NULL;
	SM_AUTOFREE char *settings = sm_xstrdup("");
	struct sm_journal *j = NULL;
	struct sm_virt *v = NULL;
	struct sm_progress pr;
	long long job = 0;
	struct sm_job_result res = { 0 };
	enum sm_move_result result;
	SM_AUTOFREE char *overlay_set = sm_xstrdup("");
	const char *overlay_dir_arg = NULL;
	int c, ret = SM_EXIT_REFUSED;

	/* The host's defaults (config.h); the options below win. */
	o.bandwidth_mib = cli->config->move_bandwidth;
	o.verify = cli->config->verify;
	o.sync_writes = sm_sync_writes_from_name(cli->config->sync_writes);
	o.overlay_dir = cli->config->overlay_dir;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.dest = optarg;
			break;
		case 'k':
			disks[o.ndisks++] = optarg;
			break;
		case 'b':
			if (sm_parse_ull(optarg, &o.bandwidth_mib) < 0 || o.bandwidth_mib > (1ULL << 30)) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--bandwidth takes a whole number "
							  "of MiB/s, not '%s'", optarg);
			}
			break;
		case 'o':
			o.keep_overlay = true;
			break;
		case 'q':
			o.quiesce = true;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'j':
			sm_events_enable(true);
			break;
		case 'v':
			o.verify = true;
			break;
		case 'V':
			o.verify = false;
			break;
		case 'f':
			if (!sm_str_eq(optarg, "raw") && !sm_str_eq(optarg, "qcow2")) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--dest-format takes raw or qcow2, "
							  "not '%s'", optarg);
			}
			o.dest_format = optarg;
			break;
		case 'm':
			method = sm_copy_method_from_name(optarg);
			if (method < 0) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--copy-method takes auto, reflink, "
							  "direct, copy_file_range or readwrite, "
							  "not '%s'",
							  optarg);
			}
			o.copy_method = (enum sm_copy_method)method;
			break;
		case 's':
			method = sm_sync_writes_from_name(optarg);
			if (method < 0) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--sync-writes takes auto, on or off, "
							  "not '%s'", optarg);
			}
			o.sync_writes = method;
			break;
		case 't':
			if (sm_parse_ull(optarg, &num) < 0 || num == 0 || num > 86400) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--converge-timeout takes seconds "
							  "(1 to 86400), not '%s'", optarg);
			}
			o.converge_timeout = (double)num;
			break;
		case 'p':
			if (sm_parse_ull(optarg, &num) < 0 || num == 0 || num > 64) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--parallel takes a number of copies "
							  "from 1 to 64, not '%s'", optarg);
			}
			o.parallel = (unsigned)num;
			break;
		case 'S':
			o.copy_shared = true;
			break;
		case 'F':
			o.flatten = true;
			break;
		case 'P':
			o.dest_pool = optarg;
			break;
		case 'D':
			o.delete_source = true;
			break;
		case 'O':
			o.offline = true;
			break;
		case 'R':
			o.trim = true;
			break;
		case 'L':
			if (optarg[0] != '/') {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--overlay-dir takes an absolute "
							  "folder, not '%s'", optarg);
			}
			o.overlay_dir = overlay_dir_arg = optarg;
			break;
		case 'G':
			o.overlay_provisioner = optarg;
			break;
		case 'g':
			if (sm_parse_size(optarg, &o.overlay_size) < 0 ||
			    o.overlay_size < SM_OVERLAY_CHUNK_MIN) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--overlay-size takes a size of at "
							  "least 8M (bytes, or a number with K, M, G, "
							  "T), not '%s'", optarg);
			}
			break;
		case 'e':
			if (sm_cli_add_setting(&overlay_set, optarg) < 0) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--overlay-set takes KEY=VALUE, KEY of "
							  "A-Z, 0-9 and '_' (not JOB, DEVICE, "
							  "DEVICE_NAME or EVENTS_FILE), not '%s'",
							  optarg);
			}
			break;
		case 'B':
			if (!strchr(optarg, '=') || optarg[0] == '=' || !strchr(optarg, '=')[1]) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--dest-dev takes TARGET=DEVICE (vda="
							  "/dev/vg0/data), not '%s'", optarg);
			}
			devs[o.ndest_devs++] = optarg;
			break;
		case 'Z':
			o.dest_zeroed = true;
			break;
		case 'Q':
			o.dest_provisioner = optarg;
			break;
		case 'T':
			if (sm_cli_add_setting(&settings, optarg) < 0) {
				free(disks);
				free(devs);
				return sm_cli_usage_error("move", "--set takes KEY=VALUE for the "
							  "provisioner, KEY of A-Z, 0-9 and '_' (not "
							  "JOB, DEVICE, DEVICE_NAME or EVENTS_FILE), "
							  "not '%s'", optarg);
			}
			break;
		case 'h':
			move_usage(stdout);
			free(disks);
			free(devs);
			return SM_EXIT_OK;
		default:
			free(disks);
			free(devs);
			return sm_cli_usage_error("move", "bad option");
		}
	}
	o.disks = disks;
	o.dest_devs = devs;
	if (optind >= argc) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "move needs a DOMAIN");
	}
	if (optind + 1 < argc) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "unexpected argument '%s'", argv[optind + 1]);
	}
	o.domain = argv[optind];
	if (o.trim && o.offline) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--trim asks the running guest's agent to trim; "
					  "a shut-off domain has none: leave --trim out with "
					  "--offline");
	}
	o.dest_settings = settings;
	if (o.dest_zeroed && !o.ndest_devs && !o.dest_provisioner) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--dest-zeroed says the --dest-dev devices read "
					  "as zeros; it needs a --dest-dev");
	}
	if (o.dest_provisioner && o.ndest_devs) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--dest-dev names the devices and "
					  "--dest-provisioner makes them; give one of the two");
	}
	if (*settings && !o.dest_provisioner && !o.dest_pool) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--set is for the provisioner; it needs "
					  "--dest-provisioner PROG");
	}
	if (o.dest_provisioner && o.offline) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--dest-provisioner moves a running domain only "
					  "for now; start it and leave --offline out");
	}
	if (o.dest_provisioner && o.dest_pool) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--dest-pool names the provisioner of a logical "
					  "pool itself (or a folder pool); give --dest-pool or "
					  "--dest-provisioner, not both");
	}
	if (o.overlay_provisioner && overlay_dir_arg) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--overlay-dir puts the source overlay in a folder "
					  "and --overlay-provisioner on a device; give one of them");
	}
	if (!o.overlay_provisioner && (o.overlay_size || *overlay_set)) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--overlay-size and --overlay-set are for the "
					  "devices of --overlay-provisioner PROG; add it or leave "
					  "them out");
	}
	if (o.overlay_provisioner && o.offline) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "--overlay-provisioner makes overlays for a "
					  "running domain; a shut-off one (--offline) has none: "
					  "leave it out");
	}
	if (o.overlay_provisioner) {
		o.overlay_dir = NULL;  /* the host's default folder does not apply */
		o.overlay_settings = overlay_set;
	}
	if (!o.dest && !o.dest_pool) {
		free(disks);
		free(devs);
		return sm_cli_usage_error("move", "move needs either --dest DIR, the directory "
					  "to move the disks to, or --dest-pool POOL");
	}

	sm_cli_catch_signals();

	db = cli->db_path ? sm_xstrdup(cli->db_path) : sm_journal_default_path();
	if (sm_journal_open(db, &j) < 0 || sm_virt_open(cli->uri, &v) < 0) {
		sm_cli_print_error();
		sm_cli_emit_refused();
		fprintf(stderr, "snapmove: nothing was changed\n");
		goto cleanup;
	}
	sm_progress_init(&pr, stderr, false);
	res.on_done = sm_report_job_done;
	result = sm_move(v, j, &o, &pr, &job, &res);
	sm_report_job(sm_human(), &res);
	ret = sm_cli_report(result, job, job && result == SM_MOVE_VETOED && job_aborted(j, job));

cleanup:
	sm_job_result_release(&res);
	sm_virt_free(v);
	sm_journal_free(j);
	free(disks);
	free(devs);
	return ret;
}
