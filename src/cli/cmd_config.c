/* cmd_config.c: 'snapmove config': the defaults in force (the built-in ones,
 * /etc/snapmove/snapmove.conf or --config over them, the global options over
 * both) and where each comes from.  Changes nothing.
 */
#include "cli/cli.h"
#include "config.h"
#include "events.h"

int sm_cmd_config(const struct sm_cli *cli, int argc, char **argv)
{
	int ret;

	if (sm_cli_simple_args("config", argc, argv, 0, 0,
			       "usage: snapmove config\n\nPrint the defaults in force and where "
			       "each comes from: the built-in\ndefault, a line of "
			       "/etc/snapmove/snapmove.conf (or --config PATH), or the\ncommand "
			       "line.  Options of a command still win over them.\n", &ret) < 0)
		return ret;
	sm_config_print(cli->config, sm_human());
	return SM_EXIT_OK;
}
