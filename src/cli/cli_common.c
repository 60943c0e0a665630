/* Options and messages shared by all commands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "telemachy/journal.h"

int tlm_cli_global_opt(tlm_cli *cli, int c, const char *arg)
{
	switch (c) {
	case TLM_CLI_OPT_OUTPUT:
		if (strcmp(arg, "text") == 0) {
			cli->output = TLM_OUTPUT_TEXT;
		} else if (strcmp(arg, "json") == 0) {
			cli->output = TLM_OUTPUT_JSON;
		} else {
			tlm_cli_usage_error(cli, "--output must be text or json, not \"%s\"", arg);
			return -1;
		}
		return 1;
	case 'q':
		cli->quiet = 1;
		cli->verbose = 0;
		tlm_log_set_flags(1, 0);
		return 1;
	case 'v':
		cli->verbose++;
		cli->quiet = 0;
		tlm_log_set_flags(0, 1);
		return 1;
	default: return 0;
	}
}

/* ":hqv" and the command's own short options: those of its long options
 * whose value is a letter ({"follow", no_argument, NULL, 'f'} is -f). */
static void short_opts(const struct option *longopts, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, ":%s", TLM_CLI_SHORTOPTS), i;

	for (i = 0; longopts[i].name != NULL && n + 3 < cap; i++) {
		int v = longopts[i].val;

		if (longopts[i].flag != NULL ||
		    !((v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z')) || strchr(buf, v) != NULL)
			continue;
		buf[n++] = (char)v;
		if (longopts[i].has_arg == required_argument)
			buf[n++] = ':';
		buf[n] = '\0';
	}
}

int tlm_cli_next_opt(tlm_cli *cli, int argc, char **argv, const struct option *longopts,
		     void (*usage)(void), int *exit_code)
{
	char shorts[64];
	int c, r;

	opterr = 0; /* our messages, not getopt's */
	short_opts(longopts, shorts, sizeof(shorts));
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		if ((r = tlm_cli_global_opt(cli, c, optarg)) > 0)
			continue;
		if (r < 0) {
			*exit_code = TLM_EXIT_USAGE;
			return -1;
		}
		if (c == 'h') {
			usage();
			*exit_code = TLM_EXIT_OK;
			return -1;
		}
		if (c == ':' || c == '?') {
			*exit_code = tlm_cli_usage_error(
				cli, c == ':' ? "option '%s' needs a value" : "unknown option '%s'",
				argv[optind - 1]);
			return -1;
		}
		return c;
	}
	return 0;
}

int tlm_cli_usage_error(const tlm_cli *cli, const char *fmt, ...)
{
	va_list ap;
	const char *cmd = cli->command ? cli->command : "";

	tlm_log_set_command(cli->command);
	va_start(ap, fmt);
	tlm_log_vcmd(TLM_ENGINE_ERROR, NULL, fmt, ap); /* escaped: it may quote an argument */
	va_end(ap);
	if (!tlm_log_json())
		tlm_log_raw(TLM_ENGINE_ERROR, NULL,
			    "Try 'telemachy %s%s--help' for more information.", cmd,
			    *cmd ? " " : "");
	return TLM_EXIT_USAGE;
}

void tlm_cli_print_diags(const char *path, const tlm_diags *diags)
{
	size_t i;

	for (i = 0; i < diags->count; i++) {
		const tlm_diag *d = &diags->items[i];
		json_t *f = json_pack("{s:s, s:s}", "file", path, "rule", d->rule);

		if (d->pos.line > 0) {
			if (f != NULL) {
				json_object_set_new(f, "line", json_integer(d->pos.line));
				json_object_set_new(f, "col", json_integer(d->pos.col));
			}
			tlm_log_raw(TLM_ENGINE_ERROR, f, "%s:%u:%u: error: %s [%s]", path,
				    d->pos.line, d->pos.col, d->message, d->rule);
		} else {
			tlm_log_raw(TLM_ENGINE_ERROR, f, "%s: error: %s [%s]", path, d->message,
				    d->rule);
		}
	}
	if (diags->dropped > 0)
		tlm_log_raw(TLM_ENGINE_ERROR, NULL, "%s: %zu more errors not shown", path,
			    diags->dropped);
}

int tlm_cli_load_spec(tlm_spec **out, const char *path, char **text)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	size_t len = 0;
	int rc;

	if (text == NULL) {
		rc = tlm_spec_load(out, path, &diags, &err);
	} else if ((rc = tlm_spec_read(text, &len, path, &err)) == 0) {
		rc = tlm_spec_parse(out, path, *text, len, &diags, &err);
	}
	if (rc == TLM_EINVALID)
		tlm_cli_print_diags(path, &diags);
	if (rc != 0)
		tlm_log_raw(TLM_ENGINE_ERROR, NULL, "%s", err.message);
	tlm_diags_clear(&diags);
	return rc == 0 ? TLM_EXIT_OK : TLM_EXIT_USAGE;
}

int tlm_cli_pass_add(const tlm_cli *cli, tlm_cli_pass *p, const char *name)
{
	size_t n = strlen(name), i;
	int ok = n > 0 && !(name[0] >= '0' && name[0] <= '9');

	for (i = 0; ok && i < n; i++) {
		char c = name[i];

		ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		     c == '_' || (c == '*' && i == n - 1 && i > 0);
	}
	if (!ok)
		return tlm_cli_usage_error(
			cli, "--pass-env wants a variable name or PREFIX*, got \"%s\"", name);
	if (p->n == TLM_CLI_PASS_MAX)
		return tlm_cli_usage_error(cli, "at most %d --pass-env options", TLM_CLI_PASS_MAX);
	p->names[p->n++] = name;
	return 0;
}

/* A postgres:// URI with user:password@, or a password= parameter. */
static int carries_password(const char *v)
{
	const char *auth, *at, *slash;

	if (!tlm_journal_is_shared(v))
		return 0;
	auth = strstr(v, "://") + 3;
	at = strchr(auth, '@');
	slash = strchr(auth, '/');
	if (at != NULL && (slash == NULL || at < slash) && memchr(auth, ':', (size_t)(at - auth)))
		return 1;
	return strstr(v, "password=") != NULL;
}

int tlm_cli_check_argv_secrets(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (strcmp(a, "--") == 0)
			break;
		if ((strcmp(a, "--journal") == 0 || strcmp(a, "--state-dir") == 0) && i + 1 < argc)
			v = argv[i + 1];
		else if (strncmp(a, "--journal=", 10) == 0)
			v = a + 10;
		else if (strncmp(a, "--state-dir=", 12) == 0)
			v = a + 12;
		if (v != NULL && carries_password(v)) {
			tlm_log_cmd(
				TLM_ENGINE_ERROR, NULL,
				"--journal: a password on the command line is visible to every "
				"local user (ps); put it in PGPASSWORD, ~/.pgpass or PGPASSFILE, "
				"or the whole URI in TELEMACHY_JOURNAL");
			return TLM_EXIT_USAGE;
		}
	}
	return 0;
}
