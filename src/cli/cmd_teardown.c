/* telemachy teardown RUN — delete everything the journal knows of a run,
 * resolving unknown creates by name first (docs/recovery.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/engine_env.h"
#include "cli/run_journal.h"

static void usage(void)
{
	printf("Usage: telemachy teardown [OPTIONS] RUN\n"
	       "\n"
	       "Delete every agent and team of run RUN: those the journal knows by id,\n"
	       "those whose create had an unknown outcome (looked up by name), and any\n"
	       "other resource on the control plane named after the run (tlm-RUN-...).\n"
	       "Agents are stopped, then deleted; 404 counts as deleted.  The run must\n"
	       "not have a live owner (cancel it instead), unless --force: then the owner\n"
	       "is fenced off (it stops before its next request and exits 5).\n"
	       "\n"
	       "Options: --control-plane URL (the run's control plane moved), --state-dir\n"
	       "DIR or --journal WHERE, --max-concurrent N, --request-timeout S, --max-connections N,\n"
	       "--connection fresh|reuse, --force, --metrics-listen HOST:PORT,\n"
	       "--metrics-textfile FILE (as `run`), --output text|json, -q, -v, -h.\n"
	       "\n"
	       "Exit codes: 0 nothing of the run is left, 2 unknown run or a live owner,\n"
	       "4 some resources could not be deleted (listed), 5 another process took the\n"
	       "run over meanwhile, 130 interrupted.\n");
}

int tlm_cmd_teardown(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_ENGINE_LONGOPTS,
						  TLM_CLI_FORCE_LONGOPT,
						  TLM_CLI_METRICS_LONGOPTS,
						  { 0 } };
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_journal_run run;
	const char *flag;
	tlm_cli_secrets sec = { NULL, NULL };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0)
		if ((rc = tlm_cli_engine_opt(cli, c, optarg, &eo)) != 0)
			return rc;
	if (c < 0)
		return rc;
	if (optind + 1 != argc)
		return tlm_cli_usage_error(cli, optind >= argc ? "missing the RUN id"
							       : "one RUN id, please");
	flag = eo.control_plane;
	if (tlm_cli_engine_env(&eo, &sec) != 0)
		return TLM_EXIT_USAGE;
	rc = tlm_cli_journal_run(eo.state_dir, argv[optind], &run);
	if (rc == TLM_EXIT_OK) {
		if (eo.claim_flags & TLM_JOURNAL_CLAIM_FORCE)
			tlm_cli_warn_force(&run);
		eo.control_plane = tlm_cli_run_control_plane(&run, flag, eo.control_plane);
		rc = tlm_cli_drive(cli, &eo, &run, NULL);
		tlm_journal_run_clear(&run);
	}
	tlm_cli_secrets_clear(&sec);
	return rc;
}
