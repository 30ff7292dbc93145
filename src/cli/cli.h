/* cli.h: what the command handlers share: global options, exit codes, and the
 * one place errors are printed.
 */
#ifndef SM_CLI_H
#define SM_CLI_H

#include <stdbool.h>

/* Exit codes.  Stable: engines depend on them. */
enum {
	SM_EXIT_OK = 0,       /* the command did what was asked */
	SM_EXIT_FAILED = 1,   /* failed after changing something; the job says where */
	SM_EXIT_USAGE = 2,    /* bad command line */
	SM_EXIT_REFUSED = 3,  /* refused before changing anything */
	SM_EXIT_VETOED = 4,   /* a before_* hook vetoed a step; the job stopped cleanly */
	SM_EXIT_INTERRUPTED = 5,  /* SIGINT/SIGTERM; the job stopped at a safe point */
};

struct sm_config;

struct sm_cli {
	const char *uri;      /* -c/--connect, NULL for the default */
	const char *db_path;  /* --db, NULL for the default */
	const struct sm_config *config;  /* the host's defaults (config.h) */
};

/* Options of a command that takes only --help, --json and between min and
 * max operands (from optind).  -1 when the command is over: *ret is then
 * its exit status. */
int sm_cli_simple_args(const char *cmd, int argc, char **argv, int min, int max,
		       const char *usage, int *ret);
/* Print "snapmove: error: <message>" for the last recorded error. */
void sm_cli_print_error(void);
/* Print a usage error with a pointer to help; returns SM_EXIT_USAGE. */
/* Append a --set KEY=VALUE (arg) to settings, the "SNAPMOVE_KEY=VALUE"
 * lines a provisioner gets; -1, settings unchanged, when KEY is refused
 * (sm_journal_device_setting_ok). */
int sm_cli_add_setting(char **settings, const char *arg);
int sm_cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int sm_cmd_move(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_list(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_status(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_chain(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_copy(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_resume(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_recover(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_config(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_abort(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_verify(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_cleanup(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_forget(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_rebalance(const struct sm_cli *cli, int argc, char **argv);
int sm_cmd_provision(const struct sm_cli *cli, int argc, char **argv);

struct sm_journal;
/* JOB as a number, or a domain name with exactly one unfinished job. */
int sm_cli_resolve_job(struct sm_journal *j, const char *arg, long long *id);
/* SIGINT and SIGTERM set sm_interrupted: the job stops at a safe point. */
void sm_cli_catch_signals(void);
/* Under --json: the result event of a command refused before any job. */
void sm_cli_emit_refused(void);
enum sm_move_result;
/* Print how a move, resume or abort ended and return its exit status;
 * nothing_changed: the job was stopped before it touched anything. */
int sm_cli_report(enum sm_move_result result, long long job, bool nothing_changed);
/* After a job stopped: the commands to finish or undo it. */
void sm_cli_print_next_steps(long long job);

#endif
