/* cli.c: what the command handlers share: printing errors (the only place
 * that does), usage errors, the JOB argument, signals, the simple option
 * loop of commands that take --help, --json and fixed operands.
 */
#include "cli/cli.h"
#include "events.h"
#include "job/job_run.h"
#include "journal.h"
#include "job/move.h"
#include "util.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sm_cli_print_error(void)
{
	fflush(stdout);
	fprintf(stderr, "snapmove: error: %s\n", sm_error_message());
}

int sm_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("snapmove: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'snapmove %s%s--help'\n", cmd ? cmd : "", cmd ? " " : "");
	return SM_EXIT_USAGE;
}

/* The operands of "usage: snapmove CMD OPERANDS\n...", e.g. "JOB". */
static const char *usage_operands(const char *cmd, const char *usage)
{
	static char buf[128];
	const char *p = strstr(usage, cmd);
	size_t n;

	if (!p)
		return "more arguments";
	p += strlen(cmd);
	p += strspn(p, " ");
	n = strcspn(p, "\n");
	if (n == 0 || n >= sizeof(buf))
		return "more arguments";
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

int sm_cli_simple_args(const char *cmd, int argc, char **argv, int min, int max,
		       const char *usage, int *ret)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j') {
			sm_events_enable(true);
			continue;
		}
		if (c == 'h') {
			printf("%s", usage);
			*ret = SM_EXIT_OK;
			return -1;
		}
		*ret = sm_cli_usage_error(cmd, "bad option");
		return -1;
	}
	if (argc - optind > max) {
		*ret = sm_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + max]);
		return -1;
	}
	if (argc - optind < min) {
		*ret = sm_cli_usage_error(cmd, "%s needs %s", cmd, usage_operands(cmd, usage));
		return -1;
	}
	return 0;
}

int sm_cli_resolve_job(struct sm_journal *j, const char *arg, long long *id)
{
	unsigned long long n;
	long long *ids = NULL;
	size_t count = 0;

	if (sm_parse_ull(arg, &n) == 0) {
		*id = (long long)n;
		return 0;
	}
	if (sm_journal_unfinished_jobs_for_domain(j, arg, &ids, &count) < 0)
		return -1;
	if (count == 1) {
		*id = ids[0];
		free(ids);
		return 0;
	}
	if (count == 0)
		sm_error("'%s' is neither a job number nor a domain with an unfinished job; see "
			 "'snapmove list'", arg);
	else
		sm_error("domain '%s' has %zu unfinished jobs (%lld and %lld%s); name the job "
			 "by number, see 'snapmove list'", arg, count, ids[0], ids[1],
			 count > 2 ? " and more" : "");
	free(ids);
	return -1;
}

static void on_signal(int sig)
{
	(void)sig;
	sm_interrupted = 1;
}

void sm_cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

void sm_cli_emit_refused(void)
{
	struct json_object *o;

	if (!sm_events_wanted() || sm_event_result_sent())
		return;
	o = json_object_new_object();
	json_object_object_add(o, "job", NULL);
	json_object_object_add(o, "status", json_object_new_string("refused"));
	json_object_object_add(o, "exit", json_object_new_int(SM_EXIT_REFUSED));
	json_object_object_add(o, "error", json_object_new_string(sm_error_message()));
	sm_event_emit("result", o);
}

void sm_cli_print_next_steps(long long job)
{
	fprintf(stderr, "snapmove: job %lld stopped; 'snapmove status %lld' shows where each "
		"disk is.\n"
		"  finish it:  snapmove resume %lld\n"
		"  undo it:    snapmove abort %lld\n", job, job, job, job);
}


int sm_cli_report(enum sm_move_result result, long long job, bool nothing_changed)
{
	switch (result) {
	case SM_MOVE_OK:
		return SM_EXIT_OK;
	case SM_MOVE_REFUSED:
		sm_cli_print_error();
		sm_cli_emit_refused();
		fprintf(stderr, "snapmove: nothing was changed\n");
		return SM_EXIT_REFUSED;
	case SM_MOVE_FAILED:
	case SM_MOVE_VETOED:
	case SM_MOVE_INTERRUPTED:
		sm_cli_print_error();
		if (job && nothing_changed)
			fprintf(stderr, "snapmove: job %lld stopped before changing anything\n", job);
		else if (job)
			sm_cli_print_next_steps(job);
		break;
	}
	return sm_move_exit_code(result);
}

int sm_cli_add_setting(char **settings, const char *arg)
{
	SM_AUTOFREE char *line = sm_xasprintf("SNAPMOVE_%s", arg);
	char *next;

	if (!sm_journal_device_setting_ok(line))
		return -1;
	next = sm_xasprintf("%s%s%s", *settings, **settings ? "\n" : "", line);
	free(*settings);
	*settings = next;
	return 0;
}
