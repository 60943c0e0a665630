/* Driving the engine for run, resume and teardown: signals (the first asks
 * the engine to stop and tear down, the second makes it leave at once), the
 * observer, the summary, and the exit code of DESIGN §5. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run_output.h"

static volatile sig_atomic_t interrupts;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupts < 2)
		interrupts++;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a wait ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int tlm_cli_exit_code(const tlm_engine_result *r)
{
	if (r->abandoned)
		return TLM_EXIT_INTERRUPTED;
	if (r->outcome == TLM_ENGINE_PREFLIGHT_FAILED)
		return TLM_EXIT_UNREACHABLE;
	if (r->torn_down && r->nleftovers > 0)
		return TLM_EXIT_TEARDOWN;
	switch (r->outcome) {
	case TLM_ENGINE_COMPLETED: return TLM_EXIT_OK;
	case TLM_ENGINE_CANCELLED: return TLM_EXIT_INTERRUPTED;
	default: return TLM_EXIT_FAILED;
	}
}

static void after_abandon(const tlm_engine_result *r)
{
	fprintf(stderr,
		"telemachy: run %s was left as it was: the journal %s records every resource it created.\n"
		"Delete them with `telemachy teardown %s`, or continue with `telemachy resume %s`.\n",
		r->run_id, r->journal_path ? r->journal_path : "(none)", r->run_id, r->run_id);
}

/* What could not even start: a bad setting or a run that is not ours to
 * take is a usage error, a live owner a conflict (also 2), the rest 1. */
static int start_failure(const char *cmd, int rc, const tlm_error *err)
{
	fprintf(stderr, "telemachy %s: %s\n", cmd, err->message);
	return rc == TLM_EINVALID || rc == TLM_ECONFLICT || rc == TLM_ENOTFOUND ? TLM_EXIT_USAGE
										: TLM_EXIT_FAILED;
}

int tlm_cli_drive(tlm_cli *cli, const char *cmd, tlm_engine_opts *eo, const char *teardown_run)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_result res;
	tlm_run_output out;
	int rc;

	tlm_run_output_init(&out, cli);
	eo->interrupts = &interrupts;
	eo->observe = tlm_run_output_observe;
	eo->observe_ctx = &out;
	install_signals();
	rc = teardown_run != NULL ? tlm_engine_teardown(eo, teardown_run, &res, &err)
				  : tlm_engine_run(eo, &res, &err);
	tlm_run_output_done(&out);
	if (rc != 0) {
		rc = start_failure(cmd, rc, &err);
	} else {
		rc = tlm_cli_exit_code(&res);
		/* A teardown that deleted everything succeeded, whatever the
		 * run's own outcome was. */
		if (teardown_run != NULL && !res.abandoned)
			rc = res.nleftovers > 0 ? TLM_EXIT_TEARDOWN : TLM_EXIT_OK;
		if (res.outcome == TLM_ENGINE_PREFLIGHT_FAILED)
			fprintf(stderr, "telemachy %s: preflight failed, nothing was created: %s\n",
				cmd, res.error);
		if (tlm_run_output_result(&out, &res, rc) != 0 && rc == TLM_EXIT_OK)
			rc = TLM_EXIT_FAILED;
		if (res.abandoned)
			after_abandon(&res);
	}
	tlm_engine_result_clear(&res);
	eo->observe = NULL; /* out lives on this stack only */
	eo->observe_ctx = NULL;
	return rc;
}
