/* telemachy version */
#include <jansson.h>
#include <stdio.h>

#include "cli/cli.h"
#include "util/testhooks.h"

static void usage(void)
{
	printf("Usage: telemachy version [--output text|json]\n\n"
	       "Print the version of telemachy.  A build with test hooks (crash points,\n"
	       "allocation faults: the test suite's) says so; a release build has none.\n");
}

int tlm_cmd_version(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS, { 0 } };
	int c, rc;

	if ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) != 0)
		return c < 0 ? rc : tlm_cli_usage_error(cli, "unexpected option");
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	if (cli->output == TLM_OUTPUT_JSON)
		printf("{\"name\":\"telemachy\",\"version\":\"%s\",\"jansson\":\"%s\","
		       "\"test_hooks\":%s}\n",
		       TLM_VERSION, JANSSON_VERSION, tlm_testhooks_enabled() ? "true" : "false");
	else
		printf("telemachy %s%s\n", TLM_VERSION,
		       tlm_testhooks_enabled() ? " (test hooks: crash points, allocation faults)"
					       : "");
	return TLM_EXIT_OK;
}
