/* telemachy run — carry out a workflow: configuration from the environment
 * (flags override), signals, and the exit code; the engine does the rest. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/cli_hooks.h"
#include "cli/engine_env.h"
#include "telemachy/engine.h"
#include "telemachy/spec.h"

#define OPT_DRY_RUN 0x180

static void usage(void)
{
	printf("Usage: telemachy run [OPTIONS] FILE\n"
	       "\n"
	       "Run the workflow in FILE: provision its agents and teams, submit its tasks\n"
	       "in dependency order, follow them to completion, tear down by its policy.\n"
	       "With no AGAMEMNON_URL the built-in control plane runs in-process.\n"
	       "\n"
	       "Options:\n"
	       "      --dry-run             go through the run against an in-memory control\n"
	       "                            plane: nothing is created, nothing runs\n"
	       "      --max-concurrent N    requests in flight at once (default 16)\n"
	       "      --control-plane URL   overrides AGAMEMNON_URL\n"
	       "      --nats URL            overrides NATS_URL\n"
	       "      --state-dir DIR       the journal's directory (TELEMACHY_STATE_DIR)\n"
	       "      --journal WHERE       or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                            docs/distributed.md)\n"
	       "      --request-timeout S   seconds per control-plane request (default 30)\n"
	       "      --max-connections N   connections open at once (default 4 to a remote\n"
	       "                            control plane, else --max-concurrent)\n"
	       "      --pass-env NAME       give the agent programs of the built-in control plane\n"
	       "                            this variable of the environment (repeatable; NAME or\n"
	       "                            PREFIX*); they get only a short allow-list otherwise\n"
	       "      --connection MODE     reuse (keep-alive; the default) or fresh (one\n"
	       "                            request per connection, for a server that stalls\n"
	       "                            on reused ones)\n"
	       "      --drop-field FIELD    run even though the control plane does not keep\n"
	       "                            this agent setting (env, image, cpus, memory;\n"
	       "                            model: drop it rather than pass --model); repeatable.\n"
	       "                            Without it such a run is refused (exit 2)\n"
	       "      --hook EVENT=COMMAND  also run `/bin/sh -c COMMAND` at EVENT (task_completed,\n"
	       "                            task_failed, task_skipped, run_completed, run_failed,\n"
	       "                            run_cancelled, teardown_failed), as the spec's hooks:\n"
	       "                            the event as JSON on stdin; repeatable (docs/hooks.md)\n"
	       "      --metrics-listen HOST:PORT  serve Prometheus metrics at /metrics on this\n"
	       "                            loopback address while the run lasts (port 0: a\n"
	       "                            free one, printed on stderr; docs/metrics.md)\n"
	       "      --metrics-textfile FILE  write the metrics to FILE when the run ends,\n"
	       "                            atomically (node-exporter's textfile collector)\n"
	       "      --output FORMAT       text (default) or json (the summary on stdout)\n"
	       "  -q, --quiet               only warnings, errors and the summary\n"
	       "  -v, --verbose             debug lines too\n"
	       "  -h, --help                show this help\n"
	       "\n"
	       "Environment: AGAMEMNON_URL, AGAMEMNON_API_KEY or AGAMEMNON_API_KEY_FILE,\n"
	       "AGAMEMNON_CA_FILE, AGAMEMNON_CLIENT_CERT and _KEY, REQUIRE_TLS,\n"
	       "AGAMEMNON_RATE_LIMIT_RPS, _BURST, NATS_URL, NATS_CREDS, NATS_TOKEN_FILE,\n"
	       "NATS_CA_FILE, NATS_CLIENT_CERT and _KEY, TELEMACHY_STATE_DIR (docs/engine.md),\n"
	       "METRICS_LISTEN and METRICS_TEXTFILE (the --metrics-* defaults),\n"
	       "OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables (traces,\n"
	       "docs/tracing.md).\n"
	       "\n"
	       "Exit codes: 0 every task completed, 1 the workflow failed or timed out,\n"
	       "2 usage or validation error, 3 control plane or NATS unreachable,\n"
	       "4 teardown left resources, 5 another process took the run over (this one\n"
	       "stopped at once), 130 interrupted.\n");
}

typedef struct run_args {
	tlm_engine_opts eo;
	const char *file;
	tlm_cli_secrets sec; /* what the environment's files gave, owned */
	tlm_cli_pass pass;
	tlm_cli_hooks hooks;
} run_args;

static int parse_opts(tlm_cli *cli, int argc, char **argv, run_args *a)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_ENGINE_LONGOPTS,
						  TLM_CLI_PASS_ENV_LONGOPT,
						  TLM_CLI_DROP_FIELD_LONGOPT,
						  TLM_CLI_METRICS_LONGOPTS,
						  TLM_CLI_HOOK_LONGOPT,
						  { "dry-run", no_argument, NULL, OPT_DRY_RUN },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_DRY_RUN)
			a->eo.dry_run = 1;
		else if (c == TLM_CLI_OPT_PASS_ENV) {
			if ((rc = tlm_cli_pass_add(cli, &a->pass, optarg)) != 0)
				return rc;
		} else if (c == TLM_CLI_OPT_HOOK) {
			if ((rc = tlm_cli_hook_add(cli, &a->hooks, optarg)) != 0)
				return rc;
		} else if ((rc = tlm_cli_engine_opt(cli, c, optarg, &a->eo)) != 0) {
			return rc;
		}
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind >= argc)
		return tlm_cli_usage_error(cli, "missing the workflow FILE");
	if (optind + 1 < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind + 1]);
	a->file = argv[optind];
	return 0;
}

int tlm_cmd_run(tlm_cli *cli, int argc, char **argv)
{
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	run_args a;
	tlm_spec *spec = NULL;
	char *text = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	a.eo = eo;
	rc = parse_opts(cli, argc, argv, &a);
	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc;
	if (tlm_cli_engine_env(&a.eo, &a.sec) != 0) {
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	if ((rc = tlm_cli_load_spec(&spec, a.file, &text)) != TLM_EXIT_OK)
		goto done;
	a.eo.spec = spec;
	a.eo.spec_text = text;
	cli->hooks = &a.hooks;
	rc = tlm_cli_drive(cli, &a.eo, NULL, a.pass.names);
	cli->hooks = NULL;
done:
	free(text);
	tlm_cli_secrets_clear(&a.sec);
	tlm_spec_free(spec);
	return rc;
}
