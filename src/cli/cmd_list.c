/* telemachy list — the journal's runs, newest first, with whether each one's
 * owner lives and how many of its resources may still exist remotely.  Reads
 * the journal only; contacts nothing. */
#include <jansson.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"
#include "telemachy/report.h"

#define OPT_STATE    0x101
#define OPT_WORKFLOW 0x102

typedef struct list_args {
	const char *dir, *state, *workflow;
} list_args;

static void usage(void)
{
	printf("Usage: telemachy list [--state-dir DIR] [--state STATE] [--workflow NAME]\n"
	       "                      [--output text|json] [-q]\n"
	       "\n"
	       "List the runs in the journal, newest first: state, creation time, whether\n"
	       "the owning process is alive, and how many resources may still exist\n"
	       "remotely (LIVE: intent, created, started or deleting).  Contacts nothing.\n"
	       "\n"
	       "Options:\n"
	       "      --state-dir DIR  the journal's directory (default: $TELEMACHY_STATE_DIR,\n"
	       "                       else $XDG_STATE_HOME/telemachy)\n"
	       "      --journal WHERE  or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                       docs/distributed.md)\n"
	       "      --state STATE    only runs in STATE (e.g. running, teardown_failed)\n"
	       "      --workflow NAME  only runs of the workflow NAME\n"
	       "      --output FORMAT  text (default) or json\n"
	       "  -q, --quiet          print the run ids only\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit codes: 0 listed (also when there are no runs), 1 the journal could\n"
	       "not be read, 2 usage error.\n");
}

static int parse_args(tlm_cli *cli, int argc, char **argv, list_args *a)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_STATE_DIR_LONGOPT,
						  { "state", required_argument, NULL, OPT_STATE },
						  { "workflow", required_argument, NULL,
						    OPT_WORKFLOW },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == TLM_CLI_OPT_STATE_DIR)
			a->dir = optarg;
		else if (c == OPT_STATE)
			a->state = optarg;
		else
			a->workflow = optarg;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	return 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "";
}

/* One row of the text listing, from the report's document (the JSON
 * listing's, so the two never disagree). */
static void print_row(const tlm_cli *cli, const json_t *run, size_t n)
{
	if (cli->quiet) {
		tlm_cli_line(stdout, "%s", str(run, "id"));
		return;
	}
	if (n == 1)
		printf("%-8s  %-24s  %-15s  %-24s  %-5s  %s\n", "RUN", "WORKFLOW", "STATE",
		       "CREATED", "OWNER", "LIVE");
	/* The journal's text, escaped: a workflow name comes from a spec file. */
	tlm_cli_cell(stdout, str(run, "id"), 8, 0);
	fputs("  ", stdout);
	tlm_cli_cell(stdout, str(run, "workflow"), 24, 0);
	printf("  %-15s  ", str(run, "state"));
	tlm_cli_cell(stdout, str(run, "created_at"), 24, 0);
	printf("  %-5s  %lld\n", str(json_object_get(run, "owner"), "state"),
	       (long long)json_integer_value(json_object_get(run, "live_resources")));
}

/* The text listing: one query for the runs, one for their resources. */
static int list_text(const tlm_cli *cli, tlm_journal *j, const tlm_run_state *state,
		     const char *workflow, size_t *n, tlm_error *err)
{
	json_t *doc = NULL, *runs;
	size_t i;
	int rc = tlm_report_runs(j, state, workflow, &doc, err);

	runs = json_object_get(doc, "runs");
	for (i = 0; i < json_array_size(runs); i++)
		print_row(cli, json_array_get(runs, i), ++*n);
	json_decref(doc);
	return rc;
}

/* The document `list --output json` prints: {"runs": []} when there is no
 * journal yet. */
static int list_json(tlm_journal *j, const tlm_run_state *state, const char *workflow,
		     tlm_error *err)
{
	json_t *doc = NULL;
	int rc = j != NULL ? tlm_report_runs(j, state, workflow, &doc, err)
			   : ((doc = json_pack("{s:[]}", "runs")) != NULL ? 0 : TLM_ERROR);

	if (rc == 0 && json_dumpf(doc, stdout, JSON_INDENT(2)) != 0)
		rc = TLM_ERROR;
	if (rc == 0)
		putchar('\n');
	json_decref(doc);
	return rc;
}

int tlm_cmd_list(tlm_cli *cli, int argc, char **argv)
{
	tlm_error err = TLM_ERROR_INIT;
	list_args a = { NULL, NULL, NULL };
	tlm_journal *j = NULL;
	size_t n = 0;
	tlm_run_state state = TLM_RUN_PENDING;
	const tlm_run_state *only;
	int rc = parse_args(cli, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	if (a.state != NULL && tlm_run_state_parse(a.state, &state) != 0)
		return tlm_cli_usage_error(cli, "--state: no run state \"%s\"", a.state);
	if ((rc = tlm_cli_journal_open(a.dir, &j)) != TLM_EXIT_OK)
		return rc;
	only = a.state != NULL ? &state : NULL;
	if (cli->output == TLM_OUTPUT_JSON)
		rc = list_json(j, only, a.workflow, &err);
	else if (j != NULL)
		rc = list_text(cli, j, only, a.workflow, &n, &err);
	if (rc != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s",
			    err.message[0] ? err.message : "out of memory");
		rc = TLM_EXIT_FAILED;
	} else if (cli->output == TLM_OUTPUT_TEXT && n == 0 && !cli->quiet) {
		printf("no runs\n");
	}
	if (fflush(stdout) != 0)
		rc = TLM_EXIT_FAILED;
	tlm_journal_close(j);
	return rc;
}
