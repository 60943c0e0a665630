/* The CLI's side of hooks: --hook, and starting and draining them around
 * a run (docs/hooks.md). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_hooks.h"

int tlm_cli_hook_add(const tlm_cli *cli, tlm_cli_hooks *h, const char *arg)
{
	tlm_error err = TLM_ERROR_INIT;

	if (h->n >= TLM_SPEC_HOOKS_MAX)
		return tlm_cli_usage_error(cli, "at most %d --hook", TLM_SPEC_HOOKS_MAX);
	if (tlm_hooks_parse_arg(arg, &h->items[h->n], h->argv[h->n], &err) != 0)
		return tlm_cli_usage_error(cli, "%s", err.message);
	h->n++;
	return TLM_EXIT_OK;
}

static void log_line(void *ctx, tlm_engine_level level, const char *message)
{
	(void)ctx;
	tlm_log_cmd(level, NULL, "%s", message);
}

/* The journal the hooks remember deliveries in: a connection of their own
 * (the dispatcher thread uses it while the engine uses its own). */
static tlm_journal *open_ledger(const char *state_dir)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;

	if (tlm_journal_open(&j, state_dir, &err) != 0) {
		tlm_log_cmd(
			TLM_ENGINE_WARN, NULL,
			"hooks: %s: deliveries are not remembered, and events an earlier process "
			"did not deliver are not delivered",
			err.message);
		return NULL;
	}
	return j;
}

int tlm_cli_hooks_start(tlm_cli_hooks_run *out, const tlm_spec *spec, const tlm_cli_hooks *extra,
			const char *state_dir, tlm_cli_events *events)
{
	tlm_hooks_opts o = TLM_HOOKS_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	size_t ns = spec != NULL ? spec->nhooks : 0, nx = extra != NULL ? extra->n : 0;
	tlm_spec_hook *all;
	int rc;

	out->hooks = NULL;
	out->ledger = NULL;
	if (ns + nx == 0)
		return TLM_EXIT_OK;
	if ((all = calloc(ns + nx, sizeof(*all))) == NULL) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "hooks: out of memory");
		return TLM_EXIT_FAILED;
	}
	if (ns > 0)
		memcpy(all, spec->hooks, ns * sizeof(*all));
	if (nx > 0)
		memcpy(all + ns, extra->items, nx * sizeof(*all));
	o.hooks = all;
	o.nhooks = ns + nx;
	o.log = log_line;
	o.journal = out->ledger = open_ledger(state_dir);
	rc = tlm_hooks_new(&out->hooks, &o, &err);
	free(all); /* copied */
	if (rc != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		tlm_cli_hooks_finish(out);
		return TLM_EXIT_FAILED;
	}
	if (tlm_cli_events_add(events, tlm_hooks_on_event, out->hooks) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL,
			    "hooks: too many consumers of the run's events");
		tlm_cli_hooks_finish(out);
		return TLM_EXIT_FAILED;
	}
	return TLM_EXIT_OK;
}

void tlm_cli_hooks_finish(tlm_cli_hooks_run *r)
{
	if (r->hooks != NULL) {
		/* The hook running gets its whole timeout and its kill grace: a
		 * hook that hangs delays the exit by that much at most, never
		 * the run. */
		tlm_hooks_drain(r->hooks, tlm_hooks_max_timeout_ms(r->hooks) +
						  TLM_HOOKS_KILL_GRACE_MS + 1000);
		tlm_hooks_free(r->hooks);
	}
	tlm_journal_close(r->ledger); /* after the thread that used it */
	r->hooks = NULL;
	r->ledger = NULL;
}
