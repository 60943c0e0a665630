/* telemachy audit verify FILE: checks an audit log's records and hash chain
 * (docs/audit.md).  Reads only; needs no journal. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "telemachy/auditlog.h"

static void usage(void)
{
	printf("Usage: telemachy audit verify [--output text|json] FILE\n"
	       "\n"
	       "Check an audit log (AUDIT_LOG_PATH, docs/audit.md): every line a record whose\n"
	       "hash matches it, every record's prev the hash of the line before it (64 zeros\n"
	       "for the first).  Prints \"FILE: N records, chain intact\", or the first broken\n"
	       "line as \"FILE:LINE: why\".\n"
	       "\n"
	       "Exit codes: 0 chain intact, 1 a line is broken (edited, deleted, reordered,\n"
	       "torn or not a record), 2 usage error or the file cannot be read.\n");
}

static const char *flaw_name(tlm_auditlog_flaw f)
{
	switch (f) {
	case TLM_AUDITLOG_INTACT: return "intact";
	case TLM_AUDITLOG_NOT_RECORD: return "not_a_record";
	case TLM_AUDITLOG_TOO_LONG: return "too_long";
	case TLM_AUDITLOG_BAD_HASH: return "hash_mismatch";
	case TLM_AUDITLOG_BAD_PREV: return "prev_mismatch";
	case TLM_AUDITLOG_TORN: return "torn";
	}
	return "?";
}

static int print_json(const char *path, const tlm_auditlog_report *r)
{
	json_t *doc = json_pack("{s:s, s:I, s:b, s:s, s:s}", "file", path, "records",
				(json_int_t)r->records, "intact", r->flaw == TLM_AUDITLOG_INTACT,
				"flaw", flaw_name(r->flaw), "last_hash", r->last_hash);
	int rc = -1;

	if (doc != NULL && r->flaw != TLM_AUDITLOG_INTACT &&
	    (json_object_set_new(doc, "line", json_integer((json_int_t)r->line)) != 0 ||
	     json_object_set_new(doc, "why", json_string(r->why)) != 0))
		goto done;
	if (doc != NULL && json_dumpf(doc, stdout, JSON_INDENT(2)) == 0) {
		putchar('\n');
		rc = 0;
	}
done:
	json_decref(doc);
	return rc;
}

static int verify(const tlm_cli *cli, const char *path)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_auditlog_report r;

	if (tlm_auditlog_verify(path, &r, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		return TLM_EXIT_USAGE;
	}
	if (cli->output == TLM_OUTPUT_JSON) {
		if (print_json(path, &r) != 0) {
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "out of memory");
			return TLM_EXIT_FAILED;
		}
	} else if (r.flaw == TLM_AUDITLOG_INTACT) {
		tlm_cli_line(stdout, "%s: %ld records, chain intact", path, r.records);
	} else {
		tlm_cli_line(stdout, "%s:%ld: %s", path, r.line, r.why);
	}
	return r.flaw == TLM_AUDITLOG_INTACT ? TLM_EXIT_OK : TLM_EXIT_FAILED;
}

int tlm_cmd_audit(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS, { 0 } };
	int c, rc;

	if ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) != 0)
		return c < 0 ? rc : tlm_cli_usage_error(cli, "unexpected option");
	if (optind >= argc)
		return tlm_cli_usage_error(cli, "which subcommand? (verify)");
	if (strcmp(argv[optind], "verify") != 0)
		return tlm_cli_usage_error(cli, "unknown subcommand \"%s\" (verify)", argv[optind]);
	if (optind + 1 >= argc)
		return tlm_cli_usage_error(cli, "verify needs a FILE");
	if (optind + 2 < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind + 2]);
	return verify(cli, argv[optind + 1]);
}
