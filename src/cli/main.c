/* telemachy — entry point.  Parses the global options that may precede the
 * command, then hands over to the command; nothing else lives here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "telemachy/journal.h"

typedef struct command {
	const char *name;
	int (*run)(tlm_cli *cli, int argc, char **argv);
	const char *summary;
	int journal; /* opens the journal: AUDIT_LOG_PATH applies */
} command;

static const command commands[] = {
	{ "run", tlm_cmd_run, "run a workflow: provision, submit tasks, follow, tear down", 1 },
	{ "status", tlm_cmd_status, "show a run: state, owner, resources, tasks, leftovers", 1 },
	{ "list", tlm_cmd_list, "list the journal's runs, newest first", 1 },
	{ "cancel", tlm_cmd_cancel, "cancel a run (its owner, or tear it down if the owner died)",
	  1 },
	{ "submit", tlm_cmd_submit, "queue a workflow in the journal for a worker", 1 },
	{ "worker", tlm_cmd_worker, "drive queued runs and take over dead owners' runs", 1 },
	{ "resume", tlm_cmd_resume, "continue a run after a crash or an interruption", 1 },
	{ "teardown", tlm_cmd_teardown, "delete everything the journal knows of a run", 1 },
	{ "reconcile", tlm_cmd_reconcile, "find tlm- resources no live run accounts for", 1 },
	{ "abandon", tlm_cmd_abandon, "forget a resource that cannot be deleted (audited)", 1 },
	{ "logs", tlm_cmd_logs, "show how each task of a run ended: exit status, output", 1 },
	{ "mcp", tlm_cmd_mcp, "serve the Model Context Protocol on stdio for AI assistants", 1 },
	{ "doctor", tlm_cmd_doctor,
	  "check the setup (settings, journal, control plane, NATS, clock)", 0 },
	{ "audit", tlm_cmd_audit, "check an audit log's hash chain: audit verify FILE", 0 },
	{ "validate", tlm_cmd_validate, "check workflow files and report every error", 0 },
	{ "plan", tlm_cmd_plan, "show what a run would create, in submission waves", 0 },
	{ "schema", tlm_cmd_schema, "print the JSON Schema of the workflow spec", 0 },
	{ "serve", tlm_cmd_serve, "run the built-in Agamemnon-compatible control plane", 0 },
	{ "ui", tlm_cmd_ui, "serve a web dashboard of the journal's runs (docs/ui.md)", 1 },
	{ "version", tlm_cmd_version, "print the version", 0 },
};

/* AUDIT_LOG_PATH (docs/audit.md): every journal the command opens appends
 * its state changes to that file.  Set but empty is a mistake worth
 * stopping for: the operator asked for an audit log and would get none. */
static int audit_log_env(void)
{
	const char *v = getenv("AUDIT_LOG_PATH");

	if (v == NULL)
		return TLM_EXIT_OK;
	if (v[0] == '\0') {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL,
			    "AUDIT_LOG_PATH is set but empty; name a file or unset it");
		return TLM_EXIT_USAGE;
	}
	tlm_journal_set_default_audit_log(v);
	return TLM_EXIT_OK;
}

/* A bad LOG_LEVEL or LOG_FORMAT stops every command but `doctor`, whose
 * job is to report it (docs/doctor.md). */
static int log_env_bad;

int tlm_cli_log_env_bad(void)
{
	return log_env_bad;
}

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
	log_env_bad = tlm_log_setup() != 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" TLM_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int r = log_env_bad ? -1 : tlm_cli_global_opt(&cli, c, optarg);

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
	if (log_env_bad && (optind >= argc || strcmp(argv[optind], "doctor") != 0))
		return TLM_EXIT_USAGE;
	if (optind >= argc) {
		usage(stderr);
		return TLM_EXIT_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			int first = optind;

			cli.command = commands[i].name;
			tlm_log_set_command(cli.command);
			if (commands[i].journal &&
			    (audit_log_env() != TLM_EXIT_OK ||
			     tlm_cli_check_argv_secrets(argc - first, argv + first) != 0))
				return TLM_EXIT_USAGE;
			optind = 0; /* glibc: the command's getopt_long starts afresh */
			return commands[i].run(&cli, argc - first, argv + first);
		}
	}
	return tlm_cli_usage_error(&cli, "unknown command \"%s\"", argv[optind]);
}
