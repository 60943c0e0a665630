/* telemachy submit FILE — queue a workflow in the journal for a worker
 * (docs/distributed.md); with --wait, follow it to its end. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"
#include "cli/engine_env.h"
#include "util/clock.h"

#define OPT_WAIT     0x300
#define WAIT_POLL_MS 250

static void usage(void)
{
	printf("Usage: telemachy submit [OPTIONS] FILE\n"
	       "\n"
	       "Validate FILE and queue it in the journal as a new run for a worker\n"
	       "(`telemachy worker`) to drive; print the run id and exit.  A file that\n"
	       "does not validate is reported (FILE:LINE:COL) and nothing is written.\n"
	       "Every submit is a new run, even of the same file.\n"
	       "\n"
	       "Options:\n"
	       "      --journal WHERE       the journal workers read: postgres://... for a\n"
	       "                            shared one (TELEMACHY_JOURNAL; docs/distributed.md)\n"
	       "      --state-dir DIR       a SQLite journal's directory instead\n"
	       "      --control-plane URL   record where the run's resources go (default:\n"
	       "                            AGAMEMNON_URL if set, else each worker's own)\n"
	       "      --wait                follow the run until it ends, then print its\n"
	       "                            status and exit as `telemachy run` does\n"
	       "      --output FORMAT       text (default) or json\n"
	       "  -q, --quiet               print the run id only\n"
	       "  -h, --help                show this help\n"
	       "\n"
	       "Exit codes: 0 queued (with --wait: the run completed), 1 the journal could\n"
	       "not be written (with --wait: the run failed or was cancelled), 2 usage or\n"
	       "validation error, 4 teardown left resources (--wait), 130 interrupted\n"
	       "while waiting (the run goes on).\n");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Waits until run_id is final; its state into *state.  130 on a signal. */
static int wait_end(tlm_journal *j, const char *run_id, tlm_run_state *state)
{
	struct sigaction sa;
	struct timespec ts = { 0, WAIT_POLL_MS * 1000000L };
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		if (tlm_journal_run_get(j, run_id, &r, &err) != 0) {
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
			return TLM_EXIT_FAILED;
		}
		*state = r.state;
		tlm_journal_run_clear(&r);
		if (tlm_run_state_is_final(*state))
			return TLM_EXIT_OK;
		nanosleep(&ts, NULL);
	}
	tlm_log_cmd(TLM_ENGINE_WARN, NULL, "stopped waiting; run %s goes on", run_id);
	return TLM_EXIT_INTERRUPTED;
}

/* The run's status (as `telemachy status` prints it), then run's exit code. */
static int report_end(tlm_cli *cli, const char *where, const char *run_id, tlm_run_state st)
{
	char *argv[] = { "status",
			 "--journal",
			 (char *)where,
			 "--output",
			 cli->output == TLM_OUTPUT_JSON ? "json" : "text",
			 (char *)run_id,
			 NULL };

	optind = 0;
	(void)tlm_cmd_status(cli, 6, argv);
	switch (st) {
	case TLM_RUN_COMPLETED: return TLM_EXIT_OK;
	case TLM_RUN_TEARDOWN_FAILED: return TLM_EXIT_TEARDOWN;
	default: return TLM_EXIT_FAILED;
	}
}

static int parse(tlm_cli *cli, int argc, char **argv, tlm_engine_opts *eo, int *wait,
		 const char **file)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_STATE_DIR_LONGOPT,
						  { "control-plane", required_argument, NULL,
						    TLM_CLI_OPT_CONTROL_PLANE },
						  { "wait", no_argument, NULL, OPT_WAIT },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_WAIT)
			*wait = 1;
		else if ((rc = tlm_cli_engine_opt(cli, c, optarg, eo)) != 0)
			return rc;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind + 1 != argc)
		return tlm_cli_usage_error(cli, optind >= argc ? "missing the workflow FILE"
							       : "one workflow FILE, please");
	*file = argv[optind];
	return 0;
}

int tlm_cmd_submit(tlm_cli *cli, int argc, char **argv)
{
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], *text = NULL, *where = NULL;
	const char *file = NULL, *cp;
	tlm_journal *j = NULL;
	tlm_spec *spec = NULL;
	tlm_run_state st = TLM_RUN_QUEUED;
	int rc, wait = 0;

	if ((rc = parse(cli, argc, argv, &eo, &wait, &file)) != 0)
		return rc < 0 ? TLM_EXIT_OK : rc;
	if ((rc = tlm_cli_load_spec(&spec, file, &text)) != TLM_EXIT_OK)
		goto done; /* nothing written */
	cp = eo.control_plane != NULL ? eo.control_plane : getenv("AGAMEMNON_URL");
	if (tlm_journal_locate(eo.state_dir, &where, &err) != 0 ||
	    tlm_journal_open(&j, where, &err) != 0 ||
	    tlm_journal_run_submit(j, spec->name, text, cp != NULL && cp[0] ? cp : NULL, run_id,
				   &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		rc = err.code == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_FAILED;
		goto done;
	}
	if (cli->output == TLM_OUTPUT_JSON && !wait)
		printf("{\"run_id\": \"%s\", \"state\": \"queued\"}\n", run_id);
	else if (!wait || !cli->quiet)
		printf("%s\n", run_id);
	fflush(stdout);
	if (wait && (rc = wait_end(j, run_id, &st)) == TLM_EXIT_OK)
		rc = report_end(cli, where, run_id, st);
done:
	tlm_journal_close(j);
	tlm_spec_free(spec);
	free(text);
	free(where);
	return rc;
}
