/* telemachy status — one run as the journal knows it: state, owner (alive or
 * dead), resources, every task attempt, leftovers, the audit trail, and what
 * to do next when something was left behind.  Reads the journal only. */
#include <jansson.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"
#include "cli/status_graph.h"
#include "telemachy/report.h"
#include "util/redact.h"

#define AGE_MAX 32

typedef struct status_ctx {
	const tlm_cli *cli;
	long leftovers;
	int rows;
} status_ctx;

static void usage(void)
{
	printf("Usage: telemachy status [--state-dir DIR] [--output text|json] [--graph dot|mermaid] "
	       "[-q] [RUN]\n"
	       "\n"
	       "Show a run (default: the newest): its state, its owner (pid@host, alive or\n"
	       "dead) and heartbeat, its control plane, every resource and task attempt\n"
	       "the journal holds, the resources that may still exist remotely\n"
	       "(leftovers) and what to do about them.  Contacts nothing.\n"
	       "\n"
	       "Options:\n"
	       "      --state-dir DIR  the journal's directory (default: $TELEMACHY_STATE_DIR,\n"
	       "                       else $XDG_STATE_HOME/telemachy)\n"
	       "      --journal WHERE  or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                       docs/distributed.md)\n"
	       "      --output FORMAT  text (default) or json\n"
	       "      --graph FORMAT   instead: the run's task graph, dot or mermaid, each task\n"
	       "                       coloured by the state of its last attempt\n"
	       "  -q, --quiet          no hints\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit codes: 0 shown, 1 the journal could not be read, 2 usage error or no\n"
	       "such run.\n");
}

#define OPT_GRAPH 0x300

static int parse_args(tlm_cli *cli, int argc, char **argv, const char **dir, const char **run,
		      const char **graph)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_STATE_DIR_LONGOPT,
						  { "graph", required_argument, NULL, OPT_GRAPH },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_GRAPH && strcmp(optarg, "dot") != 0 && strcmp(optarg, "mermaid") != 0)
			return tlm_cli_usage_error(
				cli, "--graph must be dot or mermaid, not \"%s\"", optarg);
		if (c == OPT_GRAPH)
			*graph = optarg;
		else
			*dir = optarg;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind < argc)
		*run = argv[optind];
	if (optind + 1 < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind + 1]);
	return 0;
}

static int resource_cb(const tlm_journal_resource *r, void *ctx)
{
	status_ctx *s = ctx;

	s->leftovers += tlm_report_resource_live(r->state);
	if (s->rows++ == 0)
		printf("\n%-5s  %-32s  %-36s  %-9s  %s\n", "KIND", "NAME", "REMOTE ID", "STATE",
		       "LAST ERROR");
	/* The remote id and the last error are what the control plane said. */
	printf("%-5s  ", tlm_journal_kind_name(r->kind));
	tlm_cli_cell(stdout, r->name, 32, 0);
	fputs("  ", stdout);
	tlm_cli_cell(stdout, r->remote_id, 36, 0);
	printf("  %-9s  ", tlm_journal_state_name(r->state));
	tlm_cli_put_esc(stdout, r->last_error);
	putchar('\n');
	return 0;
}

static int task_cb(const tlm_journal_task *t, void *ctx)
{
	status_ctx *s = ctx;
	char who[2 * TLM_JOURNAL_NAME_MAX + 2];

	if (s->rows++ == 0)
		printf("\n%-40s  %-7s  %-36s  %s\n", "TEAM/SUBJECT", "ATTEMPT", "REMOTE ID",
		       "STATUS");
	snprintf(who, sizeof(who), "%s/%s", t->team, t->subject);
	tlm_cli_cell(stdout, who, 40, 0);
	printf("  %-7d  ", t->attempt);
	tlm_cli_cell(stdout, t->remote_id, 36, 0);
	printf("  %s%s\n", tlm_attempt_status_name(t->status),
	       t->ended != NULL ? " (ended on the control plane)" : "");
	return 0;
}

static int audit_cb(const tlm_journal_audit_entry *a, void *ctx)
{
	status_ctx *s = ctx;

	if (s->rows++ == 0)
		printf("\naudit:\n");
	fputs("  ", stdout);
	tlm_cli_line(stdout, "%s  %s by %s@%s (pid %ld): %s", a->at, a->action,
		     a->user ? a->user : "?", a->host ? a->host : "?", a->pid,
		     a->detail ? a->detail : "");
	return 0;
}

static void print_header(const tlm_journal_run *r, tlm_journal_owner o)
{
	char age[AGE_MAX], cp[512];

	tlm_cli_format_age(age, sizeof(age), r->heartbeat_age_ms);
	/* Every field is the journal's: printed escaped. */
	tlm_cli_line(stdout, "run            %s", r->id);
	tlm_cli_line(stdout, "workflow       %s", r->workflow);
	tlm_cli_line(stdout, "state          %s", tlm_run_state_name(r->state));
	tlm_cli_line(stdout, "created        %s", r->created_at);
	tlm_cli_line(stdout, "updated        %s", r->updated_at);
	if (r->owner_pid > 0)
		tlm_cli_line(stdout, "owner          pid %ld@%s (%s, epoch %lld)", r->owner_pid,
			     r->owner_host ? r->owner_host : "?", tlm_journal_owner_name(o),
			     r->owner_epoch);
	else
		tlm_cli_line(stdout, "owner          - (%s)", tlm_journal_owner_name(o));
	tlm_cli_line(stdout, "heartbeat      %s%s", age, r->heartbeat_age_ms >= 0 ? " ago" : "");
	if (r->control_plane != NULL)
		tlm_redact_url(cp, sizeof(cp), r->control_plane);
	tlm_cli_line(stdout, "control plane  %s", r->control_plane ? cp : "(not recorded)");
	tlm_cli_line(stdout, "cancel         %s%s",
		     r->cancel_requested_at ? "requested at " : "not requested",
		     r->cancel_requested_at ? r->cancel_requested_at : "");
}

static void print_footer(const tlm_cli *cli, const tlm_journal_run *r, tlm_journal_owner o,
			 long leftovers)
{
	printf("\nleftovers: %ld resource%s may still exist remotely\n", leftovers,
	       leftovers == 1 ? "" : "s");
	if (cli->quiet)
		return;
	if (tlm_run_state_is_final(r->state) && leftovers > 0)
		tlm_cli_line(stdout, "hint: delete them with `telemachy teardown %s`", r->id);
	if (o == TLM_JOURNAL_OWNER_DEAD)
		tlm_cli_line(
			stdout,
			"hint: its owner died: `telemachy resume %s` or `telemachy teardown %s`",
			r->id, r->id);
}

/* Prints the run as text: header, resources, tasks, footer, audit trail. */
static int show_text(const tlm_cli *cli, tlm_journal *j, const tlm_journal_run *r, tlm_error *err)
{
	status_ctx s = { cli, 0, 0 };
	tlm_journal_owner o = tlm_journal_run_owner(r);
	int rc;

	print_header(r, o);
	if ((rc = tlm_journal_resources(j, r->id, resource_cb, &s, err)) != 0)
		return rc;
	s.rows = 0;
	if ((rc = tlm_journal_tasks(j, r->id, task_cb, &s, err)) != 0)
		return rc;
	print_footer(cli, r, o, s.leftovers);
	s.rows = 0;
	return tlm_journal_audits(j, r->id, audit_cb, &s, err);
}

/* The document `status --output json` prints (include/telemachy/report.h). */
static int show_json(tlm_journal *j, const tlm_journal_run *r, tlm_error *err)
{
	json_t *doc = NULL;
	int rc = tlm_report_run(j, r, &doc, err);

	if (rc == 0 && json_dumpf(doc, stdout, JSON_INDENT(2)) != 0)
		rc = TLM_ERROR;
	if (rc == 0)
		putchar('\n');
	json_decref(doc);
	return rc;
}

static int show(const tlm_cli *cli, tlm_journal *j, const tlm_journal_run *r, tlm_error *err)
{
	return cli->output == TLM_OUTPUT_JSON ? show_json(j, r, err) : show_text(cli, j, r, err);
}

int tlm_cmd_status(tlm_cli *cli, int argc, char **argv)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run r;
	char latest[TLM_JOURNAL_RUN_ID_LEN + 1];
	const char *dir = NULL, *run = NULL, *graph = NULL;
	int j_empty = 0, rc = parse_args(cli, argc, argv, &dir, &run, &graph);

	memset(&r, 0, sizeof(r));
	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	if ((rc = tlm_cli_journal_open(dir, &j)) != TLM_EXIT_OK)
		return rc;
	if (j != NULL && run == NULL) {
		int lrc = tlm_journal_latest_run(j, latest, &err);

		if (lrc == 0)
			run = latest;
		else if (lrc != TLM_ENOTFOUND)
			goto journal_error;
		else
			j_empty = 1;
	}
	if (j == NULL || j_empty) {
		if (run != NULL)
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "no run %s", run);
		else
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "no runs yet");
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	if ((rc = tlm_journal_run_get(j, run, &r, &err)) == TLM_ENOTFOUND || rc == TLM_EINVALID) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "no run %s", run);
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	if (rc == 0 && graph != NULL) {
		rc = tlm_cli_status_graph(j, &r, graph);
		goto done;
	}
	if (rc != 0 || show(cli, j, &r, &err) != 0)
		goto journal_error;
	rc = fflush(stdout) == 0 ? TLM_EXIT_OK : TLM_EXIT_FAILED;
	goto done;
journal_error:
	tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message[0] ? err.message : "out of memory");
	rc = TLM_EXIT_FAILED;
done:
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}
