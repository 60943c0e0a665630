/* telemachy — entry point.  Parses the global options that may precede the
 * command, then hands over to the command; nothing else lives here. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
	const char *name;
	int (*run)(tlm_cli *cli, int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{ "run", tlm_cmd_run, "run a workflow: provision, submit tasks, follow, tear down" },
	{ "status", tlm_cmd_status, "show a run: state, owner, resources, tasks, leftovers" },
	{ "list", tlm_cmd_list, "list the journal's runs, newest first" },
	{ "cancel", tlm_cmd_cancel, "cancel a run (its owner, or tear it down if the owner died)" },
	{ "resume", tlm_cmd_resume, "continue a run after a crash or an interruption" },
	{ "teardown", tlm_cmd_teardown, "delete everything the journal knows of a run" },
	{ "reconcile", tlm_cmd_reconcile, "find tlm- resources no live run accounts for" },
	{ "abandon", tlm_cmd_abandon, "forget a resource that cannot be deleted (audited)" },
	{ "logs", tlm_cmd_logs, "show how each task of a run ended: exit status, output" },
	{ "validate", tlm_cmd_validate, "check workflow files and report every error" },
	{ "plan", tlm_cmd_plan, "show what a run would create, in submission waves" },
	{ "schema", tlm_cmd_schema, "print the JSON Schema of the workflow spec" },
	{ "serve", tlm_cmd_serve, "run the built-in Agamemnon-compatible control plane" },
	{ "version", tlm_cmd_version, "print the version" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: telemachy [GLOBAL OPTIONS] COMMAND [ARGS...]\n"
		   "\n"
		   "Declarative multi-agent workflows on an Agamemnon-compatible control plane.\n"
		   "\n"
		   "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Global options (also accepted after the command):\n"
		"  -h, --help            show help (for a command: telemachy COMMAND --help)\n"
		"      --version         print the version and exit\n"
		"      --output FORMAT   text (default) or json\n"
		"  -q, --quiet           print only errors\n"
		"  -v, --verbose         print more detail\n"
		"\n"
		"Exit codes: 0 success, 1 workflow failed, 2 usage or validation error,\n"
		"3 control plane or NATS unreachable, 4 teardown left resources, 130 interrupted.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  { "version", no_argument, NULL, 'V' },
						  { 0 } };
	tlm_cli cli = TLM_CLI_INIT;
	int c;
	size_t i;

	tlm_cli_alloc_faults_start();
	if (tlm_log_setup() != 0)
		return TLM_EXIT_USAGE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" TLM_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int r = tlm_cli_global_opt(&cli, c, optarg);

		if (r < 0)
			return TLM_EXIT_USAGE;
		if (r > 0)
			continue;
		if (c == 'h') {
			usage(stdout);
			return TLM_EXIT_OK;
		}
		if (c == 'V') {
			optind = 0;
			return tlm_cmd_version(&cli, 1, (char *[]){ "version", NULL });
		}
		return tlm_cli_usage_error(&cli, "unknown option '%s'", argv[optind - 1]);
	}
	if (optind >= argc) {
		usage(stderr);
		return TLM_EXIT_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			int first = optind;

			cli.command = commands[i].name;
			tlm_log_set_command(cli.command);
			optind = 0; /* glibc: the command's getopt_long starts afresh */
			return commands[i].run(&cli, argc - first, argv + first);
		}
	}
	return tlm_cli_usage_error(&cli, "unknown command \"%s\"", argv[optind]);
}
