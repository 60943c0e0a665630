/* One engine event to every consumer (src/cli/cli_events.h). */
#include "cli/cli_events.h"

#include "telemachy/error.h"

int tlm_cli_events_add(tlm_cli_events *ev, tlm_engine_event_cb cb, void *ctx)
{
	if (ev->n == TLM_CLI_EVENTS_MAX)
		return TLM_ERROR;
	ev->cb[ev->n] = cb;
	ev->ctx[ev->n] = ctx;
	ev->n++;
	return 0;
}

static void tee(void *ctx, const tlm_engine_event *e)
{
	const tlm_cli_events *ev = ctx;

	for (int i = 0; i < ev->n; i++)
		ev->cb[i](ev->ctx[i], e);
}

void tlm_cli_events_attach(tlm_cli_events *ev, tlm_engine_opts *eo)
{
	eo->on_event = ev->n > 0 ? tee : NULL;
	eo->on_event_ctx = ev->n > 0 ? ev : NULL;
}
