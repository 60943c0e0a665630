/* telemachy reconcile — list the control plane's tlm- resources that no live
 * run accounts for, and delete them with --delete (docs/recovery.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/engine_env.h"

#define OPT_DELETE     0x181
#define OPT_OLDER_THAN 0x182

static void usage(void)
{
	printf("Usage: telemachy reconcile [OPTIONS]\n"
	       "\n"
	       "List every agent and team named tlm-* on the control plane (all pages) and\n"
	       "compare them with the journal.  Orphans are those no run of the journal\n"
	       "made, those left by runs that ended (kept by policy, teardown failed, a\n"
	       "duplicate), and those the journal says were deleted.  Resources of a live\n"
	       "run are left alone; those of a run whose owner died are reported as\n"
	       "stranded (resume or tear down that run).  Prints the plan; --delete\n"
	       "carries it out.\n"
	       "\n"
	       "Options:\n"
	       "      --delete              delete the orphans (agents stopped first)\n"
	       "      --older-than DURATION only resources created longer ago: 90s, 30m, 2h, 7d\n"
	       "      --control-plane URL   overrides AGAMEMNON_URL\n"
	       "      --state-dir DIR       the journal to compare with\n"
	       "      --journal WHERE       or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                            docs/distributed.md)\n"
	       "      --output FORMAT       text (default) or json\n"
	       "\n"
	       "Exit codes: 0 done (orphans listed, or deleted with --delete), 2 usage,\n"
	       "3 control plane unreachable, 4 some deletes failed.\n");
}

/* "90s", "30m", "2h", "7d", or plain seconds; -1 when malformed. */
static long parse_duration(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0 || v > 100L * 365 * 86400)
		return -1;
	switch (*end) {
	case '\0':
	case 's': break;
	case 'm': v *= 60; break;
	case 'h': v *= 3600; break;
	case 'd': v *= 86400; break;
	default: return -1;
	}
	return *end != '\0' && end[1] != '\0' ? -1 : v;
}

static void print_text(const tlm_engine_reconcile_result *r, const char *url, int do_delete)
{
	size_t i;

	tlm_cli_line(stdout,
		     "%zu tlm- resources on %s: %zu of live runs, %zu too young, %zu orphans",
		     r->scanned, url, r->live, r->too_young, r->norphans);
	if (r->norphans == 0)
		return;
	printf("\n%-6s  %-40s  %-8s  %-10s  %s\n", "KIND", "NAME", "RUN", "ACTION", "WHY");
	for (i = 0; i < r->norphans; i++) {
		const tlm_engine_orphan *o = &r->orphans[i];
		const char *action = !o->deletable ? "report"
				     : !do_delete  ? "delete"
				     : o->deleted  ? "deleted"
						   : "FAILED";

		/* Names, ids and errors are the control plane's: escaped. */
		printf("%-6s  ", o->kind);
		tlm_cli_cell(stdout, o->name, 40, 0);
		fputs("  ", stdout);
		tlm_cli_cell(stdout, o->run_id, 8, 0);
		printf("  %-10s  ", action);
		tlm_cli_line(stdout, "%s%s%s", o->why, o->error ? ": " : "",
			     o->error ? o->error : "");
	}
	if (!do_delete)
		printf("\nnothing was changed; `telemachy reconcile --delete` deletes what says \"delete\"\n");
}

static void print_json(const tlm_engine_reconcile_result *r, int do_delete)
{
	json_t *list = json_array(), *out;
	size_t i;

	for (i = 0; i < r->norphans; i++) {
		const tlm_engine_orphan *o = &r->orphans[i];

		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s?, s:s, s:b, s:b, s:s?}",
						      "kind", o->kind, "name", o->name, "id",
						      o->remote_id, "run_id", o->run_id, "why",
						      o->why, "deletable", o->deletable, "deleted",
						      o->deleted, "error", o->error));
	}
	out = json_pack("{s:I, s:I, s:I, s:b, s:o}", "scanned", (json_int_t)r->scanned, "live",
			(json_int_t)r->live, "too_young", (json_int_t)r->too_young, "deleting",
			do_delete, "orphans", list);
	json_dumpf(out, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(out);
}

int tlm_cmd_reconcile(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_ENGINE_LONGOPTS,
						  { "delete", no_argument, NULL, OPT_DELETE },
						  { "older-than", required_argument, NULL,
						    OPT_OLDER_THAN },
						  { 0 } };
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_engine_reconcile_result res;
	tlm_error err = TLM_ERROR_INIT;
	long older = 0;
	tlm_cli_secrets sec = { NULL, NULL };
	int c, rc, do_delete = 0;
	size_t i;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_DELETE)
			do_delete = 1;
		else if (c == OPT_OLDER_THAN && (older = parse_duration(optarg)) < 0)
			return tlm_cli_usage_error(
				cli, "--older-than must look like 90s, 30m, 2h or 7d, not \"%s\"",
				optarg);
		else if (c != OPT_OLDER_THAN && (rc = tlm_cli_engine_opt(cli, c, optarg, &eo)) != 0)
			return rc;
	}
	if (c < 0)
		return rc;
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	if (tlm_cli_engine_env(&eo, &sec) != 0)
		return TLM_EXIT_USAGE;
	rc = tlm_engine_reconcile(&eo, older, do_delete, &res, &err);
	if (rc != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		rc = rc == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_UNREACHABLE;
	} else {
		if (cli->output == TLM_OUTPUT_JSON)
			print_json(&res, do_delete);
		else
			print_text(&res, eo.control_plane, do_delete);
		for (i = 0; do_delete && i < res.norphans; i++)
			if (res.orphans[i].deletable && !res.orphans[i].deleted)
				rc = TLM_EXIT_TEARDOWN;
	}
	tlm_engine_reconcile_clear(&res);
	tlm_cli_secrets_clear(&sec);
	return rc;
}
