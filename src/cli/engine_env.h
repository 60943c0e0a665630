/* Engine settings from the environment for the commands that reach a
 * control plane (run, resume, teardown, cancel, reconcile). */
#ifndef TLM_CLI_ENGINE_ENV_H
#define TLM_CLI_ENGINE_ENV_H

#include <getopt.h>

#include "cli/cli.h"
#include "cli/cli_metrics.h"
#include "telemachy/engine.h"

/* The secrets the environment's files gave, owned by the caller, who
 * releases them with tlm_cli_secrets_clear (wiped, then freed). */
typedef struct tlm_cli_secrets {
	char *api_key;    /* the first line of AGAMEMNON_API_KEY_FILE */
	char *nats_token; /* the first line of NATS_TOKEN_FILE */
} tlm_cli_secrets;

void tlm_cli_secrets_clear(tlm_cli_secrets *sec);

/* Fills eo from AGAMEMNON_URL, AGAMEMNON_API_KEY / _FILE, AGAMEMNON_CA_FILE,
 * AGAMEMNON_CLIENT_CERT / _KEY, REQUIRE_TLS, AGAMEMNON_RATE_LIMIT_RPS /
 * _BURST, NATS_URL, NATS_CREDS, NATS_TOKEN_FILE, NATS_CA_FILE,
 * NATS_CLIENT_CERT / _KEY (docs/engine.md).  Fields a flag set already
 * (control_plane, nats_url) are kept; what files gave goes to *sec.  0, or
 * -1 after printing "telemachy CMD: ..." for a bad value. */
int tlm_cli_engine_env(tlm_engine_opts *eo, tlm_cli_secrets *sec);

/* The same without printing: -1 and *err says why (no secret in it);
 * `doctor` reports it as a check. */
int tlm_cli_engine_env_parse(tlm_engine_opts *eo, tlm_cli_secrets *sec, tlm_error *err);

/* The flags every command that reaches a control plane takes (getopt_long
 * entries, values 0x160-0x16f). */
#define TLM_CLI_OPT_MAX_CONC      0x160
#define TLM_CLI_OPT_CONTROL_PLANE 0x162
#define TLM_CLI_OPT_NATS          0x163
#define TLM_CLI_OPT_TIMEOUT       0x164
#define TLM_CLI_OPT_CONNECTIONS   0x165
#define TLM_CLI_OPT_CONN_MODE     0x166
#define TLM_CLI_OPT_FORCE         0x167
#define TLM_CLI_OPT_PASS_ENV      0x168
#define TLM_CLI_OPT_DROP_FIELD    0x169
/* --drop-field FIELD, for run and resume: run without a setting the control
 * plane does not keep (docs/agamemnon.md), instead of refusing. */
#define TLM_CLI_DROP_FIELD_LONGOPT                                                                 \
	{                                                                                          \
		"drop-field", required_argument, NULL, TLM_CLI_OPT_DROP_FIELD                      \
	}
/* --pass-env NAME, for run and resume (the in-process control plane's
 * agent programs). */
#define TLM_CLI_PASS_ENV_LONGOPT                                                                   \
	{                                                                                          \
		"pass-env", required_argument, NULL, TLM_CLI_OPT_PASS_ENV                          \
	}
/* --force, for the commands that take a run over (resume, teardown, cancel). */
#define TLM_CLI_FORCE_LONGOPT                                                                      \
	{                                                                                          \
		"force", no_argument, NULL, TLM_CLI_OPT_FORCE                                      \
	}

/* Before a forced takeover of a run whose owner looks alive: says on stderr
 * what it risks (the owner stops at its next request; what it already sent
 * may still land and is resolved by name). */
void tlm_cli_warn_force(const tlm_journal_run *run);
#define TLM_CLI_ENGINE_LONGOPTS                                                                    \
	{ "max-concurrent", required_argument, NULL, TLM_CLI_OPT_MAX_CONC },                       \
		TLM_CLI_STATE_DIR_LONGOPT,                                                         \
		{ "control-plane", required_argument, NULL, TLM_CLI_OPT_CONTROL_PLANE },           \
		{ "nats", required_argument, NULL, TLM_CLI_OPT_NATS },                             \
		{ "request-timeout", required_argument, NULL, TLM_CLI_OPT_TIMEOUT },               \
		{ "max-connections", required_argument, NULL, TLM_CLI_OPT_CONNECTIONS },           \
	{                                                                                          \
		"connection", required_argument, NULL, TLM_CLI_OPT_CONN_MODE                       \
	}

/* Applies one of those flags (or of TLM_CLI_METRICS_LONGOPTS) to eo: 0, or the usage error's exit code
 * (message printed).  An option that is none of them is a usage error. */
int tlm_cli_engine_opt(tlm_cli *cli, int c, const char *arg, tlm_engine_opts *eo);

#endif
