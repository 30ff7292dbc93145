/* cmd_resume.c: 'snapmove resume JOB' and 'snapmove abort JOB [--via
 * commit|stream]', and the JOB argument every job command takes: a job number,
 * or the name of a domain with exactly one unfinished job.
 */
#include "cli/cli.h"
#include "events.h"
#include "job/job_run.h"
#include "journal.h"
#include "job/resume.h"
#include "report.h"
#include "util.h"
#include "virt.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_job_command(const struct sm_cli *cli, const char *cmd, const char *arg,
			   bool abort_job, enum sm_abort_via via)
{
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path)
					    : sm_journal_default_path();
	struct sm_journal *j = NULL;
	struct sm_virt *v = NULL;
	struct sm_progress pr;
	long long id = 0;
	struct sm_job_result res = { 0 };
	enum sm_move_result result;
	int ret = SM_EXIT_REFUSED;

	(void)cmd;
	sm_cli_catch_signals();
	if (sm_journal_open_existing(db, &j, NULL) < 0 || sm_cli_resolve_job(j, arg, &id) < 0 ||
	    sm_virt_open(cli->uri, &v) < 0) {
		sm_cli_print_error();
		sm_cli_emit_refused();
		goto cleanup;
	}
	sm_progress_init(&pr, stderr, false);
	res.on_done = sm_report_job_done;
	result = abort_job ? sm_abort(v, j, id, via, &pr, &res) : sm_resume(v, j, id, &pr, &res);
	sm_report_job(sm_human(), &res);
	ret = sm_cli_report(result, id, false);

cleanup:
	sm_job_result_release(&res);
	sm_virt_free(v);
	sm_journal_free(j);
	return ret;
}

int sm_cmd_resume(const struct sm_cli *cli, int argc, char **argv)
{
	int ret;

	if (sm_cli_simple_args("resume", argc, argv, 1, 1,
			       "usage: snapmove resume JOB\n\nFinish a move that stopped half-way "
			       "(snapmove, libvirtd, QEMU or the host died,\nor it failed).  JOB is "
			       "a job number or a domain with one unfinished job.\nIt compares the "
			       "journal with libvirt and the files and goes on from where\neach "
			       "disk really is: live if the domain runs, offline if it is shut off.\n",
			       &ret) < 0)
		return ret;
	return run_job_command(cli, "resume", argv[optind], false, SM_ABORT_COMMIT);
}

int sm_cmd_abort(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "via", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	enum sm_abort_via via = SM_ABORT_COMMIT;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (sm_str_eq(optarg, "commit"))
				via = SM_ABORT_COMMIT;
			else if (sm_str_eq(optarg, "stream"))
				via = SM_ABORT_STREAM;
			else
				return sm_cli_usage_error("abort", "--via takes commit or stream, "
							  "not '%s'", optarg);
			break;
		case 'j':
			sm_events_enable(true);
			break;
		case 'h':
			printf("usage: snapmove abort JOB [--via commit|stream]\n\nPut the domain "
			       "back on its original disks and remove what the job created.\n"
			       "  --via commit  fold the overlay back into the original image "
			       "(default;\n                O(changes)); the domain ends on its "
			       "original files\n  --via stream  pull the original image into the "
			       "overlay; the domain\n                ends on the overlay file, the "
			       "original image stays unused\nAfter the pivot it moves the disk "
			       "back first; once the final commit has\nfolded the overlay on the "
			       "destination it refuses: resume, then move back.\n");
			return SM_EXIT_OK;
		default:
			return sm_cli_usage_error("abort", "bad option");
		}
	}
	if (argc - optind != 1)
		return sm_cli_usage_error("abort", "abort needs one JOB");
	return run_job_command(cli, "abort", argv[optind], true, via);
}
