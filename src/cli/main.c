/* main.c: snapmove's entry point: global options, then the command table
 * (git's builtin dispatch).  Commands live in cmd_*.c.
 */
#include "cli/cli.h"
#include "config.h"
#include "events.h"
#include "hooks.h"
#include "util.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SM_VERSION "0.1.0"

static const struct {
	const char *name;
	int (*fn)(const struct sm_cli *cli, int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "move", sm_cmd_move, "move disks of a running domain to another directory" },
	{ "rebalance", sm_cmd_rebalance, "drain a storage or even out free space across several" },
	{ "resume", sm_cmd_resume, "finish a move that stopped half-way" },
	{ "abort", sm_cmd_abort, "undo a move that stopped half-way" },
	{ "recover", sm_cmd_recover, "list unfinished jobs (at boot); --resume finishes them" },
	{ "config", sm_cmd_config, "print the defaults in force and where each comes from" },
	{ "list", sm_cmd_list, "list jobs, unfinished first" },
	{ "status", sm_cmd_status, "show a job: phases, disks, timings, files" },
	{ "verify", sm_cmd_verify, "re-read a finished job's copies and compare checksums" },
	{ "cleanup", sm_cmd_cleanup, "delete a finished move's unused source images" },
	{ "forget", sm_cmd_forget, "remove a finished job from the journal" },
	{ "chain", sm_cmd_chain, "show the live backing chain of a domain's disks" },
	{ "copy", sm_cmd_copy, "copy one image file as move does (sparse, verified)" },
	{ "provision", sm_cmd_provision, "make, grow or remove a block device with a provisioner" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: snapmove [-c URI] [--db PATH] COMMAND [ARGS]\n\n"
		   "Move the disks of a running libvirt/QEMU domain to other storage on the\n"
		   "same host, live, with a journal that records every step.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < SM_ARRAY_LEN(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\noptions:\n"
		   "  -c, --connect URI  libvirt URI (default: $LIBVIRT_DEFAULT_URI, else "
		   "qemu:///system)\n"
		   "  --db PATH          journal (default: /var/lib/snapmove/journal.db for root,\n"
		   "                     $XDG_STATE_HOME/snapmove/journal.db otherwise)\n"
		   "  --json             machine-readable output: JSON lines of events on stdout\n"
		   "                     (move, resume, abort, rebalance), a JSON document (list, status,\n"
		   "                     chain, move --dry-run); human text on stderr\n"
		   "  --config PATH      the host's defaults (default /etc/snapmove/snapmove.conf)\n"
		   "  -q, --quiet        print only errors (for scripts; the exit status and\n"
		   "                     the host's log tell the rest)\n"
		   "  --hooks-dir DIR    hook programs (default /etc/snapmove/hooks.d)\n"
		   "  --hook-timeout SEC a hook running longer is killed (default 60)\n"
		   "  -h, --help         this text; 'snapmove help COMMAND' for a command\n"
		   "  --version          print the version\n\n"
		   "exit status: 0 done, 1 failed after changes (the job is resumable),\n"
		   "2 usage error, 3 refused before changing anything, 4 vetoed by a hook,\n"
		   "5 interrupted by SIGINT or SIGTERM (the job is resumable).\n");
}

/* The global options, and whether each takes a value. */
static const struct {
	const char *name;
	bool value;
} globals[] = {
	{ "-c", true }, { "--connect", true }, { "--db", true }, { "--json", false },
	{ "-q", false }, { "--quiet", false }, { "--config", true },
	{ "--hooks-dir", true }, { "--hook-timeout", true },
};

/* How many words global option ARG takes (1 or 2; 2 for a value in the next
 * word), or 0 when ARG is not one.  "-cURI" and "--db=PATH" are one word. */
static int global_words(const char *arg)
{
	for (size_t i = 0; i < SM_ARRAY_LEN(globals); i++) {
		size_t n = strlen(globals[i].name);

		if (strncmp(arg, globals[i].name, n) != 0)
			continue;
		if (arg[n] == '\0')
			return globals[i].value ? 2 : 1;
		if (globals[i].value && (arg[n] == '=' || (n == 2 && arg[1] == 'c')))
			return 1;
	}
	return 0;
}

/* Global options are accepted anywhere on the line, as people type them
 * ('snapmove move vm --dest /x --json'): those after the command move in front
 * of it, in their order, before anything is parsed.  "--" ends the options; a
 * value-taking option with no value left stays where it is (getopt names it). */
static void hoist_global_options(int argc, char **argv)
{
	int cmd = 1, out;
	char **moved;

	while (cmd < argc && argv[cmd][0] == '-' && strcmp(argv[cmd], "--") != 0) {
		int w = global_words(argv[cmd]);

		cmd += w == 2 ? 2 : 1;
	}
	if (cmd >= argc || argv[cmd][0] == '-')
		return;
	moved = sm_xcalloc((size_t)argc, sizeof(*moved));
	out = 0;
	for (int i = cmd + 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		int w = global_words(argv[i]);

		if (w == 0 || i + w > argc)
			continue;
		for (int k = 0; k < w; k++)
			moved[out++] = argv[i + k];
		memmove(&argv[i], &argv[i + w], (size_t)(argc - i - w) * sizeof(*argv));
		argc -= w;
		i--;
	}
	/* argv[cmd..argc-1] now holds the command and its own words: make room. */
	memmove(&argv[cmd + out], &argv[cmd], (size_t)(argc - cmd) * sizeof(*argv));
	memcpy(&argv[cmd], moved, (size_t)out * sizeof(*argv));
	free(moved);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "hooks-dir", required_argument, NULL, 'H' },
		{ "hook-timeout", required_argument, NULL, 'T' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* Static: reachable to the end, as the commands and the leak checker see it. */
	static struct sm_config config;
	struct sm_cli cli = { .config = &config };
	const char *hooks_dir = NULL, *config_path = NULL;
	bool timeout_given = false;
	unsigned long long timeout = 60;
	int c;

	/* A libvirtd that dies under a call leaves the client writing to a
	 * closed socket: that must be an error (EPIPE) snapmove reports and
	 * journals, not a death by SIGPIPE in the middle of a phase (seen in
	 * bench/chaos.sh: a move ended by signal 13).  Programs snapmove starts
	 * get the default back (run.c). */
	signal(SIGPIPE, SIG_IGN);
	hoist_global_options(argc, argv);
	while ((c = getopt_long(argc, argv, "+c:hq", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli.uri = optarg;
			break;
		case 'd':
			cli.db_path = optarg;
			break;
		case 'j':
			sm_events_enable(true);
			break;
		case 'q':
			sm_human_quiet(true);
			break;
		case 'H':
			hooks_dir = optarg;
			break;
		case 'T':
			if (sm_parse_ull(optarg, &timeout) < 0 || timeout == 0 || timeout > 86400)
				return sm_cli_usage_error(NULL, "--hook-timeout takes seconds (1 to "
							  "86400), not '%s'", optarg);
			timeout_given = true;
			break;
		case 'C':
			config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return SM_EXIT_OK;
		case 'V':
			printf("snapmove %s\n", SM_VERSION);
			return SM_EXIT_OK;
		default:
			usage(stderr);
			return SM_EXIT_USAGE;
		}
	}
	/* The host's defaults; the command line wins. */
	if (sm_config_load(config_path ? config_path : SM_CONFIG_PATH, config_path != NULL,
			   &config) < 0) {
		sm_cli_print_error();
		fprintf(stderr, "snapmove: nothing was changed\n");
		return SM_EXIT_REFUSED;
	}
	sm_config_set_current(&config);
	if (hooks_dir) {
		free(config.hooks_dir);
		config.hooks_dir = sm_xstrdup(hooks_dir);
		free(config.hooks_dir_from);
		config.hooks_dir_from = sm_xstrdup("command line");
	}
	if (timeout_given) {
		config.hook_timeout = timeout;
		free(config.hook_timeout_from);
		config.hook_timeout_from = sm_xstrdup("command line");
	}
	sm_hooks_configure(config.hooks_dir_from ? config.hooks_dir : NULL,
			   (double)config.hook_timeout);
	if (sm_events_open_file() < 0) {
		sm_cli_print_error();
		return SM_EXIT_USAGE;
	}
	if (optind >= argc) {
		usage(stderr);
		return SM_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 < argc) {
			for (size_t i = 0; i < SM_ARRAY_LEN(commands); i++) {
				if (strcmp(argv[optind + 1], commands[i].name) == 0) {
					char *sub[] = { argv[optind + 1], (char *)"--help", NULL };

					optind = 0;
					return commands[i].fn(&cli, 2, sub);
				}
			}
			return sm_cli_usage_error(NULL, "no command '%s'", argv[optind + 1]);
		}
		usage(stdout);
		return SM_EXIT_OK;
	}
	for (size_t i = 0; i < SM_ARRAY_LEN(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			int sub_argc = argc - optind;

			optind = 0;  /* reset getopt for the command's own options */
			return commands[i].fn(&cli, sub_argc, argv + (argc - sub_argc));
		}
	}
	return sm_cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
}
