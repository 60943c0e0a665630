/* telemachy version */
#include <jansson.h>
#include <stdio.h>

#include "cli/cli.h"

int tlm_cmd_version(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS, { 0 } };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, TLM_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int r = tlm_cli_global_opt(cli, c, optarg);

		if (r < 0)
			return TLM_EXIT_USAGE;
		if (r > 0)
			continue;
		if (c == 'h') {
			printf("Usage: telemachy version [--output text|json]\n\n"
			       "Print the version of telemachy.\n");
			return TLM_EXIT_OK;
		}
		return tlm_cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	if (cli->output == TLM_OUTPUT_JSON)
		printf("{\"name\":\"telemachy\",\"version\":\"%s\",\"jansson\":\"%s\"}\n",
		       TLM_VERSION, JANSSON_VERSION);
	else
		printf("telemachy %s\n", TLM_VERSION);
	return TLM_EXIT_OK;
}
