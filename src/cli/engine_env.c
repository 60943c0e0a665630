/* The engine's settings from the environment (docs/design.md §6), shared by
 * run, resume, teardown, cancel and reconcile: flags set before the call
 * win, and a bad value is an error of the command that reads it
 * (docs/lessons.md #18). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/engine_env.h"
#include "util/secret.h"

static int parse_count(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && s[0] != '-' && *out >= 1 && *out <= max
		       ? 0
		       : -1;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* AGAMEMNON_API_KEY, else the first line of AGAMEMNON_API_KEY_FILE (*key
 * owns it).  A key that is set but empty or blank is an error, not "no
 * key": the operator meant to send one (the same rules as `serve`'s,
 * util/secret.h; no message shows the key). */
static int load_key(tlm_engine_opts *eo, char **key, tlm_error *err)
{
	const char *v = getenv("AGAMEMNON_API_KEY"), *file = env("AGAMEMNON_API_KEY_FILE");
	tlm_error inner = TLM_ERROR_INIT;

	if (v != NULL) {
		if (tlm_secret_check_key(v, "AGAMEMNON_API_KEY", err) != 0)
			return -1;
		eo->api_key = v;
		tlm_secret_protect_process(); /* no core file with the key in it */
		return 0;
	}
	if (file == NULL)
		return 0;
	if (tlm_secret_read_key_file(key, file, &inner) != 0) {
		tlm_error_set(err, inner.code, "AGAMEMNON_API_KEY_FILE: %s", inner.message);
		return -1;
	}
	eo->api_key = *key;
	tlm_secret_protect_process();
	return 0;
}

static int parse_bool(const char *name, const char *v, int *out, tlm_error *err)
{
	if (strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
		*out = 1;
	else if (strcasecmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
		*out = 0;
	else {
		tlm_error_set(err, TLM_EINVALID, "%s must be true or false, not \"%s\"", name, v);
		return -1;
	}
	return 0;
}

/* A client certificate is two variables, both or neither: half of one is a
 * mistake, never "no certificate". */
static int cert_pair(const char *cert_var, const char *key_var, const char **cert, const char **key,
		     tlm_error *err)
{
	*cert = env(cert_var);
	*key = env(key_var);
	if ((*cert == NULL) == (*key == NULL))
		return 0;
	tlm_error_set(err, TLM_EINVALID, "%s is set but %s is not: a client certificate needs both",
		      *cert != NULL ? cert_var : key_var, *cert != NULL ? key_var : cert_var);
	return -1;
}

/* The NATS token, from the first line of NATS_TOKEN_FILE: never from argv
 * (ps shows it), and never in a message (util/secret.h). */
static int load_nats_token(tlm_engine_opts *eo, char **token, tlm_error *err)
{
	const char *file = env("NATS_TOKEN_FILE");
	tlm_error inner = TLM_ERROR_INIT;

	if (file == NULL)
		return 0;
	if (tlm_secret_read_token_file(token, file, &inner) != 0) {
		tlm_error_set(err, inner.code, "NATS_TOKEN_FILE: %s", inner.message);
		return -1;
	}
	eo->nats_token = *token;
	tlm_secret_protect_process();
	return 0;
}

void tlm_cli_secrets_clear(tlm_cli_secrets *sec)
{
	tlm_secret_free(sec->api_key);
	tlm_secret_free(sec->nats_token);
	sec->api_key = sec->nats_token = NULL;
}

/* Settings from the environment, below the flags; a bad one is an error of
 * this command only (docs/lessons.md #18).  `doctor` reports the error
 * instead of stopping, so the parsing lives here once for both. */
int tlm_cli_engine_env_parse(tlm_engine_opts *eo, tlm_cli_secrets *sec, tlm_error *err)
{
	const char *v;
	char *end;

	if (eo->control_plane == NULL)
		eo->control_plane = env("AGAMEMNON_URL");
	if (eo->nats_url == NULL)
		eo->nats_url = env("NATS_URL");
	eo->nats_creds_file = env("NATS_CREDS");
	eo->nats_ca_file = env("NATS_CA_FILE");
	eo->ca_file = env("AGAMEMNON_CA_FILE");
	if (cert_pair("AGAMEMNON_CLIENT_CERT", "AGAMEMNON_CLIENT_KEY", &eo->client_cert_file,
		      &eo->client_key_file, err) != 0 ||
	    cert_pair("NATS_CLIENT_CERT", "NATS_CLIENT_KEY", &eo->nats_cert_file,
		      &eo->nats_key_file, err) != 0)
		return -1;
	if (load_key(eo, &sec->api_key, err) != 0 ||
	    load_nats_token(eo, &sec->nats_token, err) != 0)
		return -1;
	if ((v = env("REQUIRE_TLS")) != NULL &&
	    parse_bool("REQUIRE_TLS", v, &eo->require_tls, err) != 0)
		return -1;
	if ((v = env("AGAMEMNON_RATE_LIMIT_RPS")) != NULL) {
		eo->rate_rps = strtod(v, &end);
		if (*end != '\0' || end == v || !(eo->rate_rps > 0 && eo->rate_rps <= 100000)) {
			tlm_error_set(
				err, TLM_EINVALID,
				"AGAMEMNON_RATE_LIMIT_RPS must be a number above 0, not \"%s\"", v);
			return -1;
		}
	}
	if ((v = env("AGAMEMNON_RATE_LIMIT_BURST")) != NULL) {
		unsigned long b;

		if (parse_count(v, 1000000, &b) != 0) {
			tlm_error_set(
				err, TLM_EINVALID,
				"AGAMEMNON_RATE_LIMIT_BURST must be a whole number above 0, not \"%s\"",
				v);
			return -1;
		}
		eo->rate_burst = (unsigned)b;
	}
	return 0;
}

int tlm_cli_engine_env(tlm_engine_opts *eo, tlm_cli_secrets *sec)
{
	tlm_error err = TLM_ERROR_INIT;

	if (tlm_cli_engine_env_parse(eo, sec, &err) == 0)
		return 0;
	tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
	return -1;
}

/* The library decides what a dropped setting means (tlm_engine_opts). */
static int drop_field(tlm_cli *cli, const char *arg, tlm_engine_opts *eo)
{
	tlm_error err = TLM_ERROR_INIT;
	unsigned bit;

	if (tlm_engine_field_parse(arg, &bit, &err) != 0)
		return tlm_cli_usage_error(cli, "--drop-field: %s", err.message);
	eo->drop_fields |= bit;
	return 0;
}

int tlm_cli_engine_opt(tlm_cli *cli, int c, const char *arg, tlm_engine_opts *eo)
{
	unsigned long v;

	switch (c) {
	case TLM_CLI_OPT_MAX_CONC:
		if (parse_count(arg, 1024, &v) != 0)
			return tlm_cli_usage_error(
				cli, "--max-concurrent must be 1 to 1024, not \"%s\"", arg);
		eo->max_concurrent = (unsigned)v;
		return 0;
	case TLM_CLI_OPT_STATE_DIR: eo->state_dir = arg; return 0;
	case TLM_CLI_OPT_FORCE: eo->claim_flags |= TLM_JOURNAL_CLAIM_FORCE; return 0;
	case TLM_CLI_OPT_CONTROL_PLANE: eo->control_plane = arg; return 0;
	case TLM_CLI_OPT_NATS: eo->nats_url = arg; return 0;
	case TLM_CLI_OPT_TIMEOUT:
		if (parse_count(arg, 3600, &v) != 0)
			return tlm_cli_usage_error(
				cli, "--request-timeout must be 1 to 3600 seconds, not \"%s\"",
				arg);
		eo->request_timeout_ms = (long)v * 1000;
		return 0;
	case TLM_CLI_OPT_CONNECTIONS:
		if (parse_count(arg, 1024, &v) != 0)
			return tlm_cli_usage_error(
				cli, "--max-connections must be 1 to 1024, not \"%s\"", arg);
		eo->max_connections = (unsigned)v;
		return 0;
	case TLM_CLI_OPT_CONN_MODE:
		if (strcmp(arg, "fresh") != 0 && strcmp(arg, "reuse") != 0)
			return tlm_cli_usage_error(
				cli, "--connection must be fresh or reuse, not \"%s\"", arg);
		eo->fresh_connection = strcmp(arg, "fresh") == 0;
		return 0;
	case TLM_CLI_OPT_DROP_FIELD: return drop_field(cli, arg, eo);
	case TLM_CLI_OPT_METRICS_LISTEN:
	case TLM_CLI_OPT_METRICS_TEXTFILE: (void)tlm_cli_metrics_opt(c, arg); return 0;
	default: return tlm_cli_usage_error(cli, "unknown option");
	}
}

void tlm_cli_warn_force(const tlm_journal_run *run)
{
	if (tlm_journal_run_owner(run) != TLM_JOURNAL_OWNER_ALIVE)
		return;
	tlm_log_cmd(TLM_ENGINE_WARN, NULL,
		    "--force: taking run %s over from pid %ld on %s, which looks alive.", run->id,
		    run->owner_pid, run->owner_host ? run->owner_host : "?");
	tlm_log_raw(TLM_ENGINE_WARN, NULL, "%s",
		    "  If it is still running, it stops before its next request and exits with "
		    "code 5; requests it already sent may still land (creates are resolved by "
		    "name).  If it is only slow, it loses the run.");
}
