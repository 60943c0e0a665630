/* telemachy cancel RUN — the library decides (tlm_engine_cancel): a live
 * owner is asked through the journal and this waits for the run to end; a
 * dead owner's run is torn down here (docs/recovery.md).  This maps flags
 * and prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/engine_env.h"
#include "cli/run_journal.h"
#include "cli/run_output.h"

#define OPT_WAIT 0x181

static void usage(void)
{
	printf("Usage: telemachy cancel [OPTIONS] RUN\n"
	       "\n"
	       "Cancel run RUN.  If its owner (the `telemachy run` or `resume` process) is\n"
	       "alive, it is asked to stop through the journal — it stops submitting and\n"
	       "tears down by the run's policy, as on Ctrl-C — and this waits until the run\n"
	       "has ended.  If the owner died, the run is torn down here.\n"
	       "\n"
	       "Options: --wait SECONDS (how long to wait for a live owner, default 120),\n"
	       "--force (tear down here even though the owner looks alive; it is fenced off),\n"
	       "--control-plane URL, --state-dir DIR or --journal WHERE, --request-timeout S, --output\n"
	       "text|json, -q, -v, -h.\n"
	       "\n"
	       "Exit codes: 0 the run has ended (or had already), 1 it was still running\n"
	       "when --wait ran out, 2 unknown run, 4 teardown left resources, 5 another\n"
	       "process took the run over meanwhile, 130 interrupted.\n");
}

static int parse(tlm_cli *cli, int argc, char **argv, tlm_engine_opts *eo, long *wait_s)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_ENGINE_LONGOPTS,
						  TLM_CLI_FORCE_LONGOPT,
						  { "wait", required_argument, NULL, OPT_WAIT },
						  { 0 } };
	char *end;
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_WAIT) {
			*wait_s = strtol(optarg, &end, 10);
			if (*end != '\0' || end == optarg || *wait_s < 0 || *wait_s > 86400)
				return tlm_cli_usage_error(
					cli, "--wait must be 0 to 86400 seconds, not \"%s\"",
					optarg);
		} else if ((rc = tlm_cli_engine_opt(cli, c, optarg, eo)) != 0) {
			return rc;
		}
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind + 1 != argc)
		return tlm_cli_usage_error(cli, optind >= argc ? "missing the RUN id"
							       : "one RUN id, please");
	return 0;
}

static int report(const tlm_engine_cancel_result *res, const char *run_id, long wait_s)
{
	const char *state = tlm_run_state_name(res->state);

	switch (res->how) {
	case TLM_CANCEL_HAD_ENDED:
		tlm_cli_line(stdout, "run %s had already ended: %s", run_id, state);
		break;
	case TLM_CANCEL_OWNER_STOPPED: tlm_cli_line(stdout, "run %s: %s", run_id, state); break;
	case TLM_CANCEL_STILL_RUNNING:
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "run %s is still %s after %ld s", run_id, state,
			    wait_s);
		return TLM_EXIT_FAILED;
	case TLM_CANCEL_TORN_DOWN: return TLM_EXIT_OK; /* the teardown's own summary */
	case TLM_CANCEL_DEQUEUED:
		tlm_cli_line(stdout, "run %s: cancelled before it started (it was queued)", run_id);
		break;
	}
	return res->state == TLM_RUN_TEARDOWN_FAILED ? TLM_EXIT_TEARDOWN : TLM_EXIT_OK;
}

int tlm_cmd_cancel(tlm_cli *cli, int argc, char **argv)
{
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_engine_cancel_result res;
	tlm_journal_run run;
	const char *flag;
	tlm_cli_secrets sec = { NULL, NULL };
	long wait_s = 120;
	int rc = parse(cli, argc, argv, &eo, &wait_s);

	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc;
	flag = eo.control_plane;
	if (tlm_cli_engine_env(&eo, &sec) != 0)
		return TLM_EXIT_USAGE;
	if ((rc = tlm_cli_journal_run(eo.state_dir, argv[optind], &run)) != TLM_EXIT_OK)
		goto done;
	if (tlm_journal_run_owner(&run) == TLM_JOURNAL_OWNER_DEAD ||
	    (eo.claim_flags & TLM_JOURNAL_CLAIM_FORCE)) {
		if (eo.claim_flags & TLM_JOURNAL_CLAIM_FORCE)
			tlm_cli_warn_force(&run);
		else
			tlm_log_cmd(TLM_ENGINE_INFO, NULL,
				    "run %s's owner (pid %ld on %s) is gone: tearing it down here",
				    run.id, run.owner_pid, run.owner_host ? run.owner_host : "?");
		eo.control_plane = tlm_cli_run_control_plane(&run, flag, eo.control_plane);
		rc = tlm_cli_drive(cli, &eo, &run, NULL);
	} else {
		tlm_error err = TLM_ERROR_INIT;
		tlm_run_output out;

		tlm_run_output_init(&out, cli);
		eo.observe = tlm_run_output_observe;
		eo.observe_ctx = &out;
		tlm_cli_catch_signals(&eo);
		if (tlm_engine_cancel(&eo, run.id, wait_s * 1000, &res, &err) != 0) {
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
			rc = TLM_EXIT_FAILED;
		} else {
			rc = report(&res, run.id, wait_s);
		}
		tlm_run_output_done(&out);
		tlm_engine_cancel_clear(&res);
	}
	tlm_journal_run_clear(&run);
done:
	tlm_cli_secrets_clear(&sec);
	return rc;
}
