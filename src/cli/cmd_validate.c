/* telemachy validate FILE... — every error of every file, in one run. */
#include <jansson.h>
#include <stdio.h>

#include "cli/cli.h"

static void usage(void)
{
	printf("Usage: telemachy validate [--output text|json] [-q] FILE...\n"
	       "\n"
	       "Check workflow files against the telemachy/v1 rules and report every\n"
	       "error, each as FILE:LINE:COL: error: MESSAGE [rule].\n"
	       "\n"
	       "Exit status: 0 when every file is valid, 2 otherwise (or on usage errors).\n");
}

static json_t *diags_json(const tlm_diags *diags)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < diags->count; i++) {
		const tlm_diag *d = &diags->items[i];

		json_array_append_new(arr, json_pack("{s:I,s:I,s:s,s:s}", "line",
						     (json_int_t)d->pos.line, "col",
						     (json_int_t)d->pos.col, "rule", d->rule,
						     "message", d->message));
	}
	return arr;
}

/* Validates one file; returns 1 when valid.  Text goes out at once, JSON is
 * collected into `files`. */
static int validate_one(const tlm_cli *cli, const char *path, json_t *files)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	int rc = tlm_spec_load(&spec, path, &diags, &err);

	if (cli->output == TLM_OUTPUT_JSON) {
		json_t *f = json_pack("{s:s,s:b,s:o,s:I}", "file", path, "valid", rc == 0, "errors",
				      diags_json(&diags), "error_count",
				      (json_int_t)(diags.count + diags.dropped));

		if (rc != 0 && rc != TLM_EINVALID)
			json_object_set_new(f, "error", json_string(err.message));
		json_array_append_new(files, f);
	} else if (rc == 0) {
		if (!cli->quiet)
			tlm_cli_line(stdout, "%s: ok", path);
	} else {
		tlm_cli_print_diags(path, &diags);
		tlm_log_raw(TLM_ENGINE_ERROR, NULL, "%s", err.message);
	}
	tlm_diags_clear(&diags);
	tlm_spec_free(spec);
	return rc == 0;
}

int tlm_cmd_validate(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS, { 0 } };
	json_t *files;
	int c, i, ok = 1, rc;

	if ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) != 0)
		return c < 0 ? rc : tlm_cli_usage_error(cli, "unexpected option");
	if (optind >= argc)
		return tlm_cli_usage_error(cli, "no workflow file given");
	files = json_array();
	for (i = optind; i < argc; i++)
		ok &= validate_one(cli, argv[i], files);
	if (cli->output == TLM_OUTPUT_JSON) {
		json_t *doc = json_pack("{s:b,s:o}", "valid", ok, "files", files);

		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
	} else {
		json_decref(files);
	}
	return ok ? TLM_EXIT_OK : TLM_EXIT_USAGE;
}
