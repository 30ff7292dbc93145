/* cmd_cleanup.c: 'snapmove cleanup JOB' (delete a finished move's source
 * images that nothing uses) and 'snapmove forget JOB' (drop a finished job
 * from the journal).
 */
#include "cleanup.h"
#include "cli/cli.h"
#include "events.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -1 to go on; otherwise the exit status (help shown, or a usage error). */
static int one_job_arg(const char *cmd, int argc, char **argv, const char *help)
{
	int ret;

	return sm_cli_simple_args(cmd, argc, argv, 1, 1, help, &ret) < 0 ? ret : -1;
}

int sm_cmd_cleanup(const struct sm_cli *cli, int argc, char **argv)
{
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path)
					    : sm_journal_default_path();
	struct sm_journal *j = NULL;
	struct sm_virt *v = NULL;
	struct sm_progress pr;
	unsigned long long freed = 0;
	long long id;
	char b[32];
	int ret = one_job_arg("cleanup", argc, argv,
			      "usage: snapmove cleanup JOB\n\nDelete the source images a "
			      "finished move left behind, except any that a\ndomain (running or "
			      "defined) or another image's backing pointer still uses.\n");

	if (ret >= 0)
		return ret;
	ret = SM_EXIT_REFUSED;
	sm_progress_init(&pr, stderr, false);
	if (sm_journal_open_existing(db, &j, NULL) < 0 ||
	    sm_cli_resolve_job(j, argv[optind], &id) < 0 ||
	    sm_virt_open(cli->uri, &v) < 0 || sm_cleanup_run(v, j, id, &pr, &freed) < 0) {
		sm_cli_print_error();
		goto cleanup;
	}
	fprintf(sm_human(), "job %lld: freed %s at the source\n", id, sm_format_bytes(freed, b, sizeof(b)));
	ret = SM_EXIT_OK;

cleanup:
	sm_virt_free(v);
	sm_journal_free(j);
	sm_progress_release(&pr);
	return ret;
}

int sm_cmd_forget(const struct sm_cli *cli, int argc, char **argv)
{
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path)
					    : sm_journal_default_path();
	struct sm_journal *j = NULL;
	long long id;
	int ret = one_job_arg("forget", argc, argv,
			      "usage: snapmove forget JOB\n\nRemove a finished (done or aborted) "
			      "job from the journal.  The journal keeps\nfinished jobs for audit "
			      "until then.  A job whose journal rows are malformed\n(edited or "
			      "damaged) is removed whatever its state.  No file is deleted.\n");

	if (ret >= 0)
		return ret;
	ret = SM_EXIT_REFUSED;
	if (sm_journal_open_existing(db, &j, NULL) < 0 ||
	    sm_cli_resolve_job(j, argv[optind], &id) < 0 ||
	    sm_job_forget(j, id) < 0) {
		sm_cli_print_error();
		goto cleanup;
	}
	fprintf(sm_human(), "forgot job %lld\n", id);
	ret = SM_EXIT_OK;

cleanup:
	sm_journal_free(j);
	return ret;
}
