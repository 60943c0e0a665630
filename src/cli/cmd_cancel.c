/* telemachy cancel RUN — a live owner is asked through the journal (it
 * checks every 250 ms, from any host) and this waits for the run to end; a
 * dead owner's run is torn down here (docs/recovery.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/engine_env.h"
#include "cli/run_journal.h"

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
	       "--control-plane URL, --state-dir DIR, --request-timeout S, --output\n"
	       "text|json, -q, -v, -h.\n"
	       "\n"
	       "Exit codes: 0 the run has ended (or had already), 1 it was still running\n"
	       "when --wait ran out, 2 unknown run, 4 teardown left resources.\n");
}

static int is_final(const char *state)
{
	return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0 || strcmp(state, "teardown_failed") == 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Asks, then polls the run's state until it is final or wait_s passed. */
static int ask_owner(const char *state_dir, const tlm_journal_run *run, long wait_s)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run now;
	char state[32] = "";
	long waited = 0;
	int rc;

	if ((rc = tlm_journal_open(&j, state_dir, &err)) != 0 ||
	    (rc = tlm_journal_run_request_cancel(j, run->id, &err)) != 0) {
		tlm_journal_close(j);
		fprintf(stderr, "telemachy cancel: %s\n", err.message);
		return TLM_EXIT_FAILED;
	}
	(void)tlm_journal_audit(j, run->id, "cancel", "asked the live owner to cancel", NULL);
	fprintf(stderr, "telemachy cancel: asked run %s's owner (pid %ld on %s) to cancel\n",
		run->id, run->owner_pid, run->owner_host ? run->owner_host : "?");
	while (waited <= wait_s * 1000) {
		if (tlm_journal_run_get(j, run->id, &now, &err) == 0) {
			snprintf(state, sizeof(state), "%s", now.state);
			tlm_journal_run_clear(&now);
			if (is_final(state))
				break;
		}
		sleep_ms(100);
		waited += 100;
	}
	tlm_journal_close(j);
	if (!is_final(state)) {
		fprintf(stderr, "telemachy cancel: run %s is still %s after %ld s\n", run->id,
			state, wait_s);
		return TLM_EXIT_FAILED;
	}
	printf("run %s: %s\n", run->id, state);
	return strcmp(state, "teardown_failed") == 0 ? TLM_EXIT_TEARDOWN : TLM_EXIT_OK;
}

int tlm_cmd_cancel(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_ENGINE_LONGOPTS,
						  { "wait", required_argument, NULL, OPT_WAIT },
						  { 0 } };
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_journal_run run;
	const char *flag;
	char *key = NULL, *end;
	long wait_s = 120;
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_WAIT) {
			wait_s = strtol(optarg, &end, 10);
			if (*end != '\0' || end == optarg || wait_s < 0 || wait_s > 86400)
				return tlm_cli_usage_error(
					cli, "--wait must be 0 to 86400 seconds, not \"%s\"",
					optarg);
		} else if ((rc = tlm_cli_engine_opt(cli, c, optarg, &eo)) != 0) {
			return rc;
		}
	}
	if (c < 0)
		return rc;
	if (optind + 1 != argc)
		return tlm_cli_usage_error(cli, optind >= argc ? "missing the RUN id"
							       : "one RUN id, please");
	flag = eo.base_url;
	if (tlm_cli_engine_env("cancel", &eo, &key) != 0)
		return TLM_EXIT_USAGE;
	if ((rc = tlm_cli_journal_run(cli, eo.state_dir, argv[optind], &run)) != TLM_EXIT_OK)
		goto done;
	switch (tlm_journal_run_owner(&run)) {
	case TLM_JOURNAL_OWNER_NONE:
		printf("run %s had already ended: %s\n", run.id, run.state);
		rc = TLM_EXIT_OK;
		break;
	case TLM_JOURNAL_OWNER_ALIVE: rc = ask_owner(eo.state_dir, &run, wait_s); break;
	case TLM_JOURNAL_OWNER_DEAD:
		fprintf(stderr,
			"telemachy cancel: run %s's owner (pid %ld on %s) is gone: tearing it down here\n",
			run.id, run.owner_pid, run.owner_host ? run.owner_host : "?");
		eo.base_url = tlm_cli_run_control_plane(&run, flag, eo.base_url);
		rc = tlm_cli_drive(cli, "cancel", &eo, run.id);
		break;
	}
	tlm_journal_run_clear(&run);
done:
	free(key);
	return rc;
}
