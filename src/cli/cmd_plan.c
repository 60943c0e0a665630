/* telemachy plan — show what a run of a workflow would create, in submission
 * waves, as text, JSON, or a DOT / Mermaid graph.  Nothing is contacted: the
 * plan needs the spec only, so it works with no control plane configured. */
#include <string.h>

#include "cli/cli.h"
#include "telemachy/plan.h"
#include "telemachy/spec.h"

#define OPT_GRAPH 0x101

typedef enum { GRAPH_NONE = 0, GRAPH_DOT, GRAPH_MERMAID } graph_kind;

static void usage(void)
{
	printf("Usage: telemachy plan [--output text|json] [--graph dot|mermaid] FILE\n"
	       "\n"
	       "Show what a run of the workflow in FILE would create: its agents, teams\n"
	       "and tasks, the tasks in submission waves.  Contacts nothing.\n"
	       "\n"
	       "Options:\n"
	       "      --output FORMAT  text (default) or json\n"
	       "      --graph KIND     print the task graph instead: dot (Graphviz) or\n"
	       "                       mermaid; not with --output json\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit codes: 0 plan printed, 1 output could not be written,\n"
	       "2 usage error, unreadable or invalid workflow.\n");
}

/* Parses the options; 0 with *file set, or an exit code (-1 for --help). */
static int parse_args(tlm_cli *cli, int argc, char **argv, graph_kind *graph, const char **file)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  { "graph", required_argument, NULL, OPT_GRAPH },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (strcmp(optarg, "dot") == 0)
			*graph = GRAPH_DOT;
		else if (strcmp(optarg, "mermaid") == 0)
			*graph = GRAPH_MERMAID;
		else
			return tlm_cli_usage_error(
				cli, "--graph must be dot or mermaid, not \"%s\"", optarg);
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind >= argc)
		return tlm_cli_usage_error(cli, "missing the workflow FILE");
	if (optind + 1 < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind + 1]);
	if (*graph != GRAPH_NONE && cli->output == TLM_OUTPUT_JSON)
		return tlm_cli_usage_error(cli, "--graph and --output json exclude each other");
	*file = argv[optind];
	return 0;
}

static int render(const tlm_plan *plan, tlm_output output, graph_kind graph, tlm_error *err)
{
	if (graph == GRAPH_DOT)
		return tlm_plan_render_dot(plan, stdout, err);
	if (graph == GRAPH_MERMAID)
		return tlm_plan_render_mermaid(plan, stdout, err);
	if (output == TLM_OUTPUT_JSON)
		return tlm_plan_render_json(plan, stdout, err);
	return tlm_plan_render_text(plan, stdout, err);
}

int tlm_cmd_plan(tlm_cli *cli, int argc, char **argv)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	tlm_plan *plan = NULL;
	graph_kind graph = GRAPH_NONE;
	const char *file = NULL;
	int rc = parse_args(cli, argc, argv, &graph, &file);

	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	/* prints FILE:LINE:COL diagnostics, or why the file is unreadable */
	rc = tlm_cli_load_spec(&spec, file, NULL);
	if (rc != TLM_EXIT_OK) {
		rc = TLM_EXIT_USAGE;
	} else if (tlm_plan_new(&plan, spec, &err) != 0) {
		/* the loader rejects cycles first; reaching this is a bug, but the
		 * message still names the tasks */
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s: %s", file, err.message);
		rc = TLM_EXIT_USAGE;
	} else if (render(plan, cli->output, graph, &err) != 0 || fflush(stdout) != 0) {
		/* e.g. stdout is a full disk or a closed pipe */
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s",
			    err.message[0] ? err.message : "writing the plan failed");
		rc = TLM_EXIT_FAILED;
	}
	tlm_plan_free(plan);
	tlm_spec_free(spec);
	return rc;
}
