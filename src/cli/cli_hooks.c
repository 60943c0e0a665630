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

int tlm_cli_hooks_start(tlm_hooks **out, const tlm_spec *spec, const tlm_cli_hooks *extra,
			tlm_cli_events *events)
{
	tlm_hooks_opts o = TLM_HOOKS_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	size_t ns = spec != NULL ? spec->nhooks : 0, nx = extra != NULL ? extra->n : 0;
	tlm_spec_hook *all;
	int rc;

	*out = NULL;
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
	rc = tlm_hooks_new(out, &o, &err);
	free(all); /* copied */
	if (rc != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		return TLM_EXIT_FAILED;
	}
	if (tlm_cli_events_add(events, tlm_hooks_on_event, *out) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL,
			    "hooks: too many consumers of the run's events");
		tlm_hooks_free(*out);
		*out = NULL;
		return TLM_EXIT_FAILED;
	}
	return TLM_EXIT_OK;
}

void tlm_cli_hooks_finish(tlm_hooks *h)
{
	if (h == NULL)
		return;
	/* The hook running gets its whole timeout and its kill grace: a hook
	 * that hangs delays the exit by that much at most, never the run. */
	tlm_hooks_drain(h, tlm_hooks_max_timeout_ms(h) + TLM_HOOKS_KILL_GRACE_MS + 1000);
	tlm_hooks_free(h);
}
