/* cmd_rebalance.c: 'snapmove rebalance': options, then balance/rebalance.c. */
#include "balance/rebalance.h"
#include "cli/cli.h"
#include "config.h"
#include "events.h"
#include "job/job_run.h"
#include "report.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rebalance_usage(FILE *f)
{
	fprintf(f, "usage: snapmove rebalance --storage PATH_OR_POOL... (--drain STORAGE |\n"
		   "                          --target-free PCT) [--max-parallel N]\n"
		   "                          [--bandwidth MIB] [--include DOMAIN]... [--exclude\n"
		   "                          DOMAIN]... [--include-offline] [--stop-on-error]\n"
		   "                          [--dry-run] [--json]\n"
		   "       snapmove rebalance --resume\n\n"
		   "Move disks between storages (directories or dir/fs/netfs pools on separate\n"
		   "file systems) to empty one (--drain) or to leave every one at least PCT%%\n"
		   "free, moving as few bytes as the plan can.  It prints the plan (moves and\n"
		   "each storage's free space before and after), then runs each move as an\n"
		   "ordinary job ('move --delete-source'), at most N at once sharing the\n"
		   "bandwidth.  Running domains move live; shut-off ones only with\n"
		   "--include-offline.  --resume continues an interrupted rebalance.\n");
}

int sm_cmd_rebalance(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "storage", required_argument, NULL, 's' },
		{ "drain", required_argument, NULL, 'd' },
		{ "target-free", required_argument, NULL, 't' },
		{ "max-parallel", required_argument, NULL, 'p' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "include", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "include-offline", no_argument, NULL, 'o' },
		{ "stop-on-error", no_argument, NULL, 'e' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "resume", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char **storages = sm_xcalloc((size_t)argc + 1, sizeof(*storages));
	const char **include = sm_xcalloc((size_t)argc + 1, sizeof(*include));
	const char **exclude = sm_xcalloc((size_t)argc + 1, sizeof(*exclude));
	struct sm_rebalance_opts o = { .max_parallel = 1 };
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path)
					    : sm_journal_default_path();
	struct sm_journal *j = NULL;
	struct sm_virt *v = NULL;
	struct sm_progress pr;
	unsigned long long num;
	bool have_target = false;
	int c, ret = SM_EXIT_USAGE;

	/* The host's defaults (config.h); the options below win. */
	o.max_parallel = (unsigned)cli->config->max_parallel;
	o.bandwidth_mib = cli->config->rebalance_bandwidth;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			storages[o.inv.nstorages++] = optarg;
			break;
		case 'd':
			o.drain = optarg;
			break;
		case 't':
			if (sm_parse_ull(optarg, &num) < 0 || num == 0 || num >= 100) {
				sm_cli_usage_error("rebalance", "--target-free takes a percentage from "
						   "1 to 99, not '%s'", optarg);
				goto cleanup;
			}
			o.target_free = (double)num;
			have_target = true;
			break;
		case 'p':
			if (sm_parse_ull(optarg, &num) < 0 || num == 0 || num > SM_REBALANCE_MAX_PARALLEL) {
				sm_cli_usage_error("rebalance", "--max-parallel takes 1 to 16, not '%s'",
						   optarg);
				goto cleanup;
			}
			o.max_parallel = (unsigned)num;
			break;
		case 'b':
			if (sm_parse_ull(optarg, &o.bandwidth_mib) < 0 || o.bandwidth_mib > (1ULL << 30)) {
				sm_cli_usage_error("rebalance", "--bandwidth takes a whole number of "
						   "MiB/s, not '%s'", optarg);
				goto cleanup;
			}
			break;
		case 'i':
			include[o.inv.ninclude++] = optarg;
			break;
		case 'x':
			exclude[o.inv.nexclude++] = optarg;
			break;
		case 'o':
			o.inv.include_offline = true;
			break;
		case 'e':
			o.stop_on_error = true;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'r':
			o.resume = true;
			break;
		case 'j':
			sm_events_enable(true);
			break;
		case 'h':
			rebalance_usage(stdout);
			ret = SM_EXIT_OK;
			goto cleanup;
		default:
			sm_cli_usage_error("rebalance", "bad option");
			goto cleanup;
		}
	}
	if (optind < argc) {
		sm_cli_usage_error("rebalance", "unexpected argument '%s'", argv[optind]);
		goto cleanup;
	}
	/* No --storage: the configuration's storages. */
	if (!o.resume && o.inv.nstorages == 0) {
		size_t n = cli->config->nstorages;

		if (n > 0)
			storages = sm_xrealloc(storages, (n + 1) * sizeof(*storages));
		for (size_t i = 0; i < n; i++)
			storages[i] = cli->config->storages[i];
		o.inv.nstorages = n;
	}
	if (!o.resume && (o.inv.nstorages < 2 || !o.drain == !have_target)) {
		sm_cli_usage_error("rebalance", "rebalance needs two or more --storage and either "
				   "--drain STORAGE or --target-free PCT (or --resume)");
		goto cleanup;
	}
	o.inv.storages = storages;
	o.inv.include = include;
	o.inv.exclude = exclude;
	o.db_path = db;
	o.uri = cli->uri;
	o.show_plan = sm_report_rebalance_plan;
	sm_cli_catch_signals();
	sm_progress_init(&pr, stderr, false);
	ret = SM_EXIT_REFUSED;
	if (sm_journal_open(db, &j) < 0 || sm_virt_open(cli->uri, &v) < 0) {
		sm_cli_print_error();
		sm_cli_emit_refused();
		goto cleanup;
	}
	switch (sm_rebalance(v, j, &o, &pr)) {
	case SM_REBALANCE_OK:
		ret = SM_EXIT_OK;
		break;
	case SM_REBALANCE_REFUSED:
		sm_cli_print_error();
		sm_cli_emit_refused();
		fprintf(stderr, "snapmove: nothing was changed\n");
		break;
	case SM_REBALANCE_FAILED:
		fprintf(stderr, "snapmove: some moves did not finish; 'snapmove rebalance --resume' "
			"goes on, 'snapmove list' shows their jobs\n");
		ret = sm_interrupted ? SM_EXIT_INTERRUPTED : SM_EXIT_FAILED;
		break;
	}

cleanup:
	sm_virt_free(v);
	sm_journal_free(j);
	free(storages);
	free(include);
	free(exclude);
	return ret;
}
