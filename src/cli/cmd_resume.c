/* telemachy resume RUN — continue a run after a crash or an interruption,
 * from what the journal knows (docs/recovery.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_hooks.h"
#include "cli/engine_env.h"
#include "cli/run_journal.h"

static void usage(void)
{
	printf("Usage: telemachy resume [OPTIONS] RUN\n"
	       "\n"
	       "Continue run RUN after a crash or an interruption: every create whose\n"
	       "outcome is unknown is resolved by name, what exists is reused, completed\n"
	       "tasks are kept, the others are submitted again (a new attempt), then the\n"
	       "run goes on and ends as `telemachy run` does.  The spec is the journal's\n"
	       "copy; the control plane the one the run used.\n"
	       "\n"
	       "A run whose owner is alive is refused; --force takes it over anyway (the\n"
	       "owner is fenced off: it stops before its next request and exits 5).\n"
	       "\n"
	       "Options: --control-plane URL (the run's control plane moved), --nats URL,\n"
	       "--state-dir DIR or --journal WHERE, --max-concurrent N, --request-timeout S, --max-connections N,\n"
	       "--connection fresh|reuse, --force, --pass-env NAME, --drop-field FIELD,\n"
	       "--hook EVENT=COMMAND (the spec's hooks run as well; docs/hooks.md),\n"
	       "--metrics-listen HOST:PORT, --metrics-textfile FILE (as `run`), --output\n"
	       "text|json, -q, -v, -h.\n"
	       "\n"
	       "Exit codes: as `telemachy run`; 2 also for an unknown run, a run that\n"
	       "completed, or one whose owner is still alive; 5 another process took the\n"
	       "run over meanwhile.\n");
}

static int parse(tlm_cli *cli, int argc, char **argv, tlm_engine_opts *eo, tlm_cli_pass *pass,
		 tlm_cli_hooks *hooks, const char **run_id)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,           TLM_CLI_ENGINE_LONGOPTS,
		TLM_CLI_FORCE_LONGOPT,      TLM_CLI_PASS_ENV_LONGOPT,
		TLM_CLI_DROP_FIELD_LONGOPT, TLM_CLI_METRICS_LONGOPTS,
		TLM_CLI_HOOK_LONGOPT,       { 0 }
	};
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == TLM_CLI_OPT_PASS_ENV)
			rc = tlm_cli_pass_add(cli, pass, optarg);
		else if (c == TLM_CLI_OPT_HOOK)
			rc = tlm_cli_hook_add(cli, hooks, optarg);
		else
			rc = tlm_cli_engine_opt(cli, c, optarg, eo);
		if (rc != 0)
			return rc;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind + 1 != argc)
		return tlm_cli_usage_error(cli, optind >= argc ? "missing the RUN id"
							       : "one RUN id, please");
	*run_id = argv[optind];
	return 0;
}

int tlm_cmd_resume(tlm_cli *cli, int argc, char **argv)
{
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_journal_run run;
	const char *run_id = NULL, *flag;
	tlm_cli_secrets sec = { NULL, NULL };
	tlm_cli_pass pass;
	tlm_cli_hooks hooks;
	int rc;

	memset(&pass, 0, sizeof(pass));
	memset(&hooks, 0, sizeof(hooks));
	cli->hooks = &hooks;
	rc = parse(cli, argc, argv, &eo, &pass, &hooks, &run_id);
	if (rc != 0) {
		cli->hooks = NULL;
		return rc < 0 ? TLM_EXIT_OK : rc;
	}
	flag = eo.control_plane;
	if (tlm_cli_engine_env(&eo, &sec) != 0) {
		cli->hooks = NULL;
		return TLM_EXIT_USAGE;
	}
	if ((rc = tlm_cli_journal_run(eo.state_dir, run_id, &run)) == TLM_EXIT_OK) {
		rc = tlm_cli_resume_run(cli, &eo, &run, flag, pass.names);
		tlm_journal_run_clear(&run);
	}
	cli->hooks = NULL;
	tlm_cli_secrets_clear(&sec);
	return rc;
}

int tlm_cli_resume_run(tlm_cli *cli, tlm_engine_opts *eo, const tlm_journal_run *run,
		       const char *flag, const char *const *pass_env)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	int rc;

	if (run->state == TLM_RUN_COMPLETED) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "run %s completed: there is nothing to resume",
			    run->id);
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	if (tlm_spec_parse(&spec, "the journal's copy of the spec", run->spec, strlen(run->spec),
			   &diags, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "run %s: its spec no longer loads: %s", run->id,
			    diags.count > 0 ? diags.items[0].message : err.message);
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	if (eo->claim_flags & TLM_JOURNAL_CLAIM_FORCE)
		tlm_cli_warn_force(run);
	eo->control_plane = tlm_cli_run_control_plane(run, flag, eo->control_plane);
	eo->spec = spec;
	eo->spec_text = run->spec;
	eo->resume_run_id = run->id;
	rc = tlm_cli_drive(cli, eo, NULL, pass_env);
done:
	tlm_diags_clear(&diags);
	tlm_spec_free(spec);
	return rc;
}
