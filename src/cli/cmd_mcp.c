/* telemachy mcp — a Model Context Protocol server on stdin / stdout for an
 * AI assistant (docs/mcp.md).  This maps flags to tlm_mcp_opts; the
 * library (src/mcp/) decides everything else. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "telemachy/mcp.h"
#include "util/testhooks.h"

#define OPT_ROOT          0x191
#define OPT_ALLOW_ACTIONS 0x192
#define OPT_ACTION_LOG    0x193

static void usage(void)
{
	printf("Usage: telemachy mcp [OPTIONS]\n"
	       "\n"
	       "Serve the Model Context Protocol on stdin and stdout (one JSON-RPC message\n"
	       "per line; logs on stderr) so that an AI assistant can list runs, show a\n"
	       "run's status and its tasks' output, and validate and plan workflow files.\n"
	       "Read-only unless --allow-actions.  An MCP client starts it; docs/mcp.md\n"
	       "shows how to configure one.\n"
	       "\n"
	       "Options:\n"
	       "      --state-dir DIR    the journal's directory (default: $TELEMACHY_STATE_DIR,\n"
	       "                         else $XDG_STATE_HOME/telemachy)\n"
	       "      --journal WHERE    or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                         docs/distributed.md)\n"
	       "      --root DIR         read workflow files only inside DIR (relative paths\n"
	       "                         are taken from there); default: any file the user can\n"
	       "                         read\n"
	       "      --allow-actions    also offer run_workflow, cancel_run and teardown_run:\n"
	       "                         the assistant can start, cancel and tear down runs\n"
	       "      --action-log FILE  append the output of the commands the actions start\n"
	       "                         to FILE (default: discarded)\n"
	       "  -h, --help             show this help\n"
	       "\n"
	       "Environment: as `run` (AGAMEMNON_URL, AGAMEMNON_API_KEY_FILE, NATS_URL, ...),\n"
	       "passed on to the commands the actions start.\n"
	       "\n"
	       "Exit codes: 0 the client closed stdin, 1 reading or writing failed,\n"
	       "2 usage error.\n");
}

static void on_sigpipe(int sig)
{
	(void)sig;
}

int tlm_cmd_mcp(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,
		TLM_CLI_STATE_DIR_LONGOPT,
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "allow-actions", no_argument, NULL, OPT_ALLOW_ACTIONS },
		{ "action-log", required_argument, NULL, OPT_ACTION_LOG },
		{ 0 }
	};
	tlm_mcp_opts o = TLM_MCP_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	struct sigaction sa = { 0 };
	tlm_mcp *m = NULL;
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_ROOT)
			o.root = optarg;
		else if (c == OPT_ALLOW_ACTIONS)
			o.allow_actions = 1;
		else if (c == OPT_ACTION_LOG)
			o.action_log = optarg;
		else
			o.journal = optarg;
	}
	if (c < 0)
		return rc;
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	o.server_version = TLM_VERSION;
	/* Under valgrind /proc/self/exe is valgrind itself: the test names the
	 * binary the actions start (test builds only). */
	if (tlm_testhook_env("TLM_TEST_MCP_EXE") != NULL)
		o.exe = tlm_testhook_env("TLM_TEST_MCP_EXE");
	if (tlm_mcp_new(&m, &o, &err) != 0)
		return tlm_cli_usage_error(cli, "%s", err.message);
	/* A client that goes away is a write error, not a signal.  A handler,
	 * not SIG_IGN: an ignored signal stays ignored across exec, and the
	 * commands the actions start (and their agents) must not inherit it. */
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_sigpipe;
	sigaction(SIGPIPE, &sa, NULL);
	if (tlm_mcp_serve(m, STDIN_FILENO, STDOUT_FILENO, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		rc = TLM_EXIT_FAILED;
	} else {
		rc = TLM_EXIT_OK;
	}
	tlm_mcp_free(m);
	return rc;
}
