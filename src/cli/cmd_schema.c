/* telemachy schema — prints the JSON Schema (2020-12) of the workflow spec,
 * for editors and CI linters.  The schema is compiled in (src/spec/schema.json),
 * so this works without any file installed. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "telemachy/spec.h"

static void help(void)
{
	printf("Usage: telemachy schema\n"
	       "\n"
	       "Print the JSON Schema (draft 2020-12) of the workflow spec (apiVersion\n"
	       "telemachy/v1) on standard output, e.g. for an editor's YAML language server:\n"
	       "\n"
	       "  telemachy schema > telemachy-workflow.schema.json\n"
	       "\n"
	       "The schema checks keys, types, enums, name formats and ranges.  It cannot\n"
	       "check unique names, references between agents, teams and tasks, or\n"
	       "dependency cycles: 'telemachy validate FILE' checks everything.\n");
}

int tlm_cmd_schema(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS, { 0 } };
	json_error_t jerr;
	json_t *schema = NULL;
	int c, rc = TLM_EXIT_OK;

	if ((c = tlm_cli_next_opt(cli, argc, argv, longopts, help, &rc)) != 0)
		return c < 0 ? rc : tlm_cli_usage_error(cli, "unexpected option");
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);

	/* Output is JSON whatever --output says; parsing the embedded copy
	 * normalises its layout and proves it is well formed. */
	schema = json_loads(tlm_spec_json_schema(), JSON_REJECT_DUPLICATES, &jerr);
	if (!schema) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL,
			    "internal error: the built-in schema is not valid JSON (line %d: %s)",
			    jerr.line, jerr.text);
		rc = TLM_EXIT_FAILED;
		goto done;
	}
	if (json_dumpf(schema, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "cannot write to standard output: %s",
			    strerror(errno));
		rc = TLM_EXIT_FAILED;
		goto done;
	}
done:
	json_decref(schema);
	return rc;
}
