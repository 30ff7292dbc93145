/* cmd_recover.c: 'snapmove recover [--resume]': after a crash or a reboot,
 * every unfinished job with what resume would do for it; with --resume, do
 * it, job by job in the order they were started.  What a resume does is
 * resume's (job/resume.c): this only finds the jobs, tells them apart and
 * runs them one after another.  A system unit runs it once at boot.
 */
#include "cli/cli.h"
#include "events.h"
#include "job/job_run.h"
#include "job/resume.h"
#include "journal.h"
#include "lock.h"
#include "report.h"
#include "util.h"
#include "virt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What resume would do for job r, in *why (free it); true when another
 * snapmove process runs the job, which is then left alone. */
static bool busy_or_plan(struct sm_virt *v, struct sm_journal *j, const struct sm_job_row *r,
			  char **why)
{
	struct sm_job_lock lock;
	virDomainPtr dom;
	int active;

	if (sm_job_lock(j, r->id, &lock) < 0) {
		*why = sm_xstrdup(sm_error_message());
		return true;
	}
	sm_job_unlock(&lock, 0);
	/* By UUID: a new domain that took the name is not the job's. */
	dom = virDomainLookupByUUIDString(sm_virt_conn(v), r->domain_uuid);
	if (!dom) {
		*why = sm_xasprintf("domain '%s' (%s) no longer exists: resume says where "
				    "its data is", r->domain_name, r->domain_uuid);
		return false;
	}
	active = virDomainIsActive(dom);
	virDomainFree(dom);
	if (active == 1) {
		*why = sm_xstrdup("resume live (the domain runs)");
		return false;
	}
	*why = sm_xstrdup("resume offline (the domain is shut off)");
	return false;
}

static int by_id(const void *a, const void *b)
{
	const struct sm_job_row *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static const char usage_text[] =
	"usage: snapmove recover [--resume]\n\n"
	"List every unfinished job (snapmove, libvirtd, QEMU or the host died, or it\n"
	"failed) with what 'snapmove resume' would do for it; nothing is changed.\n"
	"  --resume  resume them, one after another in the order they were started:\n"
	"            live where the domain runs, offline where it is shut off; a job\n"
	"            another snapmove process runs is left alone\n"
	"Exit status: 0 when every job listed was finished (or there was none), 1 when\n"
	"one or more could not be (each says why), 5 when interrupted.\n";

int sm_cmd_recover(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resume", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path) : sm_journal_default_path();
	struct sm_journal *j = NULL;
	struct sm_virt *v = NULL;
	struct sm_job_row *rows = NULL;
	size_t nrows = 0, nopen = 0, nleft = 0, ndone = 0;
	bool resume = false, missing = false;
	int c, ret = SM_EXIT_REFUSED;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			resume = true;
			break;
		case 'h':
			printf("%s", usage_text);
			return SM_EXIT_OK;
		default:
			return sm_cli_usage_error("recover", "bad option");
		}
	}
	if (argc > optind)
		return sm_cli_usage_error("recover", "unexpected argument '%s'", argv[optind]);
	sm_cli_catch_signals();
	/* No journal: no move ever ran here, so there is nothing to recover. */
	if (sm_journal_open_existing(db, &j, &missing) < 0) {
		if (missing) {
			fprintf(sm_human(), "no unfinished jobs (no journal at '%s')\n", db);
			return SM_EXIT_OK;
		}
		goto refused;
	}
	if (sm_virt_open(cli->uri, &v) < 0 || sm_journal_job_list(j, &rows, &nrows) < 0)
		goto refused;
	/* In the order the jobs started. */
	qsort(rows, nrows, sizeof(*rows), by_id);
	for (size_t n = 0; n < nrows; n++) {
		const struct sm_job_row *r = &rows[n];
		SM_AUTOFREE char *why = NULL;
		bool busy;
		struct sm_progress pr;
		struct sm_job_result res = { 0 };
		enum sm_move_result result;

		if (sm_job_row_finished(r))
			continue;
		nopen++;
		busy = busy_or_plan(v, j, r, &why);
		fprintf(sm_human(), "job %lld: %s, domain %s, %s in '%s': %s%s\n", r->id,
			r->state, r->domain_name, r->error ? "stopped" : "last", r->phase, why,
			busy ? "; left alone" : "");
		if (!resume)
			continue;
		if (busy || sm_interrupted) {
			nleft++;
			continue;
		}
		sm_progress_init(&pr, stderr, false);
		res.on_done = sm_report_job_done;
		result = sm_resume(v, j, r->id, &pr, &res);
		sm_report_job(sm_human(), &res);
		sm_job_result_release(&res);
		memset(&res, 0, sizeof(res));
		sm_progress_release(&pr);
		if (sm_cli_report(result, r->id, false) == SM_EXIT_OK)
			ndone++;
		else
			nleft++;
	}
	if (nopen == 0)
		fprintf(sm_human(), "no unfinished jobs\n");
	else if (resume)
		fprintf(sm_human(), "recovered %zu of %zu unfinished job%s\n", ndone, nopen,
			nopen == 1 ? "" : "s");
	else
		fprintf(sm_human(), "'snapmove recover --resume' resumes them\n");
	ret = sm_interrupted ? SM_EXIT_INTERRUPTED : nleft ? SM_EXIT_FAILED : SM_EXIT_OK;
	goto cleanup;

refused:
	sm_cli_print_error();
	fprintf(stderr, "snapmove: nothing was changed\n");
cleanup:
	sm_job_rows_free(rows, nrows);
	sm_virt_free(v);
	sm_journal_free(j);
	return ret;
}
