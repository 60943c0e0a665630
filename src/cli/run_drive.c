/* Driving the engine for run, resume and teardown: the in-process control
 * plane when there is no other, signals (the first asks the engine to stop
 * and tear down, the second makes it leave at once), the observer, the
 * summary, and the exit code of docs/design.md §5. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_events.h"
#include "cli/cli_hooks.h"
#include "cli/cli_metrics.h"
#include "cli/run_output.h"
#include "telemachy/server.h"
#include "telemachy/trace.h"
#include "util/secret.h"

static volatile sig_atomic_t interrupts, pauses;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupts < 2)
		interrupts++;
}

static void on_stop(int sig)
{
	(void)sig;
	pauses++;
}

/* Called by the engine once its journal batch is committed: the stop the
 * user asked for. */
static void pause_now(void)
{
	(void)raise(SIGSTOP);
}

void tlm_cli_leave_now(void)
{
	interrupts = 2;
}

void tlm_cli_catch_signals(tlm_engine_opts *eo)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a wait ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Ctrl-Z: the engine commits its journal batch before it stops. */
	sa.sa_handler = on_stop;
	sigaction(SIGTSTP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	eo->interrupts = &interrupts;
	eo->pauses = &pauses;
	eo->pause = pause_now;
}

int tlm_cli_exit_code(const tlm_engine_result *r)
{
	if (r->taken_over)
		return TLM_EXIT_TAKEN_OVER;
	if (r->abandoned)
		return TLM_EXIT_INTERRUPTED;
	if (r->outcome == TLM_ENGINE_PREFLIGHT_FAILED)
		return TLM_EXIT_UNREACHABLE;
	if (r->torn_down && r->nleftovers > 0)
		return TLM_EXIT_TEARDOWN;
	/* The spec asks for what this control plane cannot do: like a
	 * validation error, fixed by the spec or --drop-field. */
	if (r->fields_refused != 0)
		return TLM_EXIT_USAGE;
	switch (r->outcome) {
	case TLM_ENGINE_COMPLETED: return TLM_EXIT_OK;
	case TLM_ENGINE_CANCELLED: return TLM_EXIT_INTERRUPTED;
	default: return TLM_EXIT_FAILED;
	}
}

static void after_abandon(const tlm_engine_result *r)
{
	tlm_log_raw(
		TLM_ENGINE_WARN, NULL,
		"telemachy: run %s was left as it was: the journal %s records every resource it created.",
		r->run_id, r->journal_path ? r->journal_path : "(none)");
	tlm_log_raw(
		TLM_ENGINE_WARN, NULL,
		"Delete them with `telemachy teardown %s`, or continue with `telemachy resume %s`.",
		r->run_id, r->run_id);
}

static void after_takeover(const tlm_engine_result *r)
{
	tlm_log_cmd(TLM_ENGINE_ERROR, NULL,
		    "%s; this process stopped without another request or journal write",
		    r->error != NULL ? r->error : "the run was taken over");
}

/* The in-process control plane, for a run or resume with no other (and
 * every dry run): in memory, on a loopback port, stopped when the command
 * ends.  Nobody else may use it: it listens on loopback only and wants a
 * random key of its own, made here and known only to this process (never
 * in argv, the environment, the journal or a core file); so a local user
 * who finds the port cannot create an agent and run a program as us
 * (docs/security.md).  A dry run's server runs no program at all. */
static int start_plane(tlm_engine_opts *eo, const char *const *pass_env, tlm_server **srv,
		       char **key)
{
	tlm_server_opts so = TLM_SERVER_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;

	tlm_secret_protect_process();
	if (tlm_secret_random_key(key, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "the built-in control plane: %s", err.message);
		return TLM_EXIT_FAILED;
	}
	/* A dry run publishes nothing: no NATS, and no program runs.  NATS is
	 * reached with the run's own settings (TLS, credentials); HTTP stays
	 * plain loopback: only this process talks to it. */
	so.nats_url = eo->dry_run ? NULL : eo->nats_url;
	so.nats_ca_file = eo->nats_ca_file;
	so.nats_cert_file = eo->nats_cert_file;
	so.nats_key_file = eo->nats_key_file;
	so.nats_creds_file = eo->nats_creds_file;
	so.nats_token = eo->nats_token;
	so.no_exec = eo->dry_run;
	so.api_key = *key;
	so.pass_env = pass_env;
	if (tlm_server_start(srv, &so, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "the built-in control plane: %s", err.message);
		return TLM_EXIT_FAILED;
	}
	eo->control_plane = tlm_server_url(*srv);
	eo->in_process = 1;
	eo->api_key = *key;
	tlm_log_cmd(TLM_ENGINE_DEBUG, NULL, "the built-in control plane listens at %s",
		    eo->control_plane);
	return TLM_EXIT_OK;
}

static void trace_warn(void *ctx, const char *message)
{
	(void)ctx;
	tlm_log_cmd(TLM_ENGINE_WARN, NULL, "%s", message);
}

/* The run's trace when OTEL_EXPORTER_OTLP_ENDPOINT asks for one
 * (docs/tracing.md): NULL otherwise, and nothing else happens. */
static tlm_trace *start_trace(tlm_cli_events *events, tlm_engine_opts *eo)
{
	tlm_trace_opts to = TLM_TRACE_OPTS_INIT;
	tlm_trace *tr;

	to.warn = trace_warn;
	if ((tr = tlm_trace_new_from_env(&to)) == NULL)
		return NULL;
	if (tlm_cli_events_add(events, tlm_trace_on_event, tr) != 0) {
		tlm_log_cmd(TLM_ENGINE_WARN, NULL, "tracing: too many event consumers");
		tlm_trace_free(tr);
		return NULL;
	}
	eo->traceparent = tlm_trace_traceparent(tr);
	return tr;
}

/* What could not even start: a bad setting or a run that is not ours to
 * take is a usage error, a live owner a conflict (also 2), the rest 1. */
static int start_failure(int rc, const tlm_error *err)
{
	tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err->message);
	return rc == TLM_EINVALID || rc == TLM_ECONFLICT || rc == TLM_ENOTFOUND ? TLM_EXIT_USAGE
										: TLM_EXIT_FAILED;
}

/* The spec a torn-down run was started with (its journaled text, read
 * with the run), for its hooks: NULL when it no longer loads (teardown
 * goes on without them, warned). */
static tlm_spec *journaled_spec(const tlm_journal_run *run)
{
	tlm_spec *spec = NULL;
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;

	if (run->spec != NULL && tlm_spec_parse(&spec, "the journal's copy of the spec", run->spec,
						strlen(run->spec), &diags, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_WARN, NULL,
			    "run %s: its spec no longer loads (%s): no hooks", run->id,
			    diags.count > 0 ? diags.items[0].message : err.message);
		spec = NULL;
	}
	tlm_diags_clear(&diags);
	return spec;
}

/* The run's hooks (docs/hooks.md): the spec's and --hook's for run and
 * resume, the journaled spec's for teardown; none for a dry run. */
static int start_hooks(tlm_cli *cli, tlm_engine_opts *eo, const tlm_journal_run *teardown,
		       tlm_cli_events *events, tlm_cli_hooks_run *hooks)
{
	tlm_spec *old = NULL;
	int rc;

	hooks->hooks = NULL;
	hooks->ledger = NULL;
	if (eo->dry_run)
		return TLM_EXIT_OK;
	if (teardown != NULL && (old = journaled_spec(teardown)) == NULL)
		return TLM_EXIT_OK;
	rc = tlm_cli_hooks_start(hooks, teardown != NULL ? old : eo->spec,
				 teardown != NULL ? NULL : cli->hooks, eo->state_dir, events);
	tlm_spec_free(old); /* the hooks copied what they need */
	eo->journal_events = hooks->hooks != NULL;
	return rc;
}

int tlm_cli_drive(tlm_cli *cli, tlm_engine_opts *eo, const tlm_journal_run *teardown,
		  const char *const *pass_env)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_result res;
	tlm_run_output out;
	tlm_cli_events events = { { NULL }, { NULL }, 0 };
	tlm_server *srv = NULL;
	tlm_cli_hooks_run hooks;
	tlm_trace *trace;
	char *key = NULL;
	int rc;

	if ((rc = tlm_cli_metrics_start()) != TLM_EXIT_OK)
		return rc;
	if (teardown == NULL && (eo->control_plane == NULL || eo->dry_run) &&
	    (rc = start_plane(eo, pass_env, &srv, &key)) != TLM_EXIT_OK) {
		tlm_server_stop(srv);
		tlm_secret_free(key);
		tlm_cli_metrics_finish();
		return rc;
	}
	tlm_run_output_init(&out, cli);
	eo->observe = tlm_run_output_observe;
	eo->observe_ctx = &out;
	tlm_cli_catch_signals(eo);
	/* Consumers of the run's events (hooks, traces) are added here. */
	if ((rc = start_hooks(cli, eo, teardown, &events, &hooks)) != TLM_EXIT_OK) {
		tlm_run_output_done(&out);
		tlm_server_stop(srv);
		tlm_secret_free(key);
		tlm_cli_metrics_finish();
		eo->observe = NULL;
		eo->observe_ctx = NULL;
		return rc;
	}
	trace = start_trace(&events, eo);
	tlm_cli_events_attach(&events, eo);
	rc = teardown != NULL ? tlm_engine_teardown(eo, teardown->id, &res, &err)
			      : tlm_engine_run(eo, &res, &err);
	/* The run and its teardown are over: the hooks may take their time
	 * now (bounded by their timeouts), before the summary. */
	tlm_cli_hooks_finish(&hooks);
	tlm_run_output_done(&out);
	tlm_server_stop(srv);
	tlm_cli_metrics_finish(); /* after the server: the textfile has all of it */
	if (srv != NULL)
		eo->api_key = NULL; /* it was the in-process server's key */
	tlm_secret_free(key);
	if (rc != 0) {
		rc = start_failure(rc, &err);
	} else {
		rc = tlm_cli_exit_code(&res);
		/* A teardown that deleted everything succeeded, whatever the
		 * run's own outcome was. */
		if (teardown != NULL && !res.abandoned && !res.taken_over)
			rc = res.nleftovers > 0 ? TLM_EXIT_TEARDOWN : TLM_EXIT_OK;
		if (res.outcome == TLM_ENGINE_PREFLIGHT_FAILED)
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL,
				    "preflight failed, nothing was created: %s", res.error);
		errno = 0;
		if (tlm_run_output_result(&out, &res, rc) != 0 && rc == TLM_EXIT_OK) {
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "the summary could not be written: %s",
				    errno == ENOMEM ? "out of memory"
				    : errno != 0    ? strerror(errno)
						    : "unknown error");
			rc = TLM_EXIT_FAILED;
		}
		if (res.abandoned)
			after_abandon(&res);
		if (res.taken_over)
			after_takeover(&res);
	}
	tlm_engine_result_clear(&res);
	eo->observe = NULL; /* out lives on this stack only */
	eo->observe_ctx = NULL;
	eo->on_event = NULL; /* events too */
	eo->on_event_ctx = NULL;
	/* After the summary: the last export waits at most the export timeout,
	 * and the run's result is out before it. */
	eo->traceparent = NULL;
	tlm_trace_free(trace);
	return rc;
}
