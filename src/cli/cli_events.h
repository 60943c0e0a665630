/* The engine's events (tlm_engine_opts.on_event) handed to every consumer
 * the CLI starts for a run — hooks, traces — in the order they were added. */
#ifndef TLM_CLI_EVENTS_H
#define TLM_CLI_EVENTS_H

#include "telemachy/engine.h"

#define TLM_CLI_EVENTS_MAX 4

typedef struct tlm_cli_events {
	tlm_engine_event_cb cb[TLM_CLI_EVENTS_MAX];
	void *ctx[TLM_CLI_EVENTS_MAX];
	int n;
} tlm_cli_events;

/* Adds a consumer; 0, or TLM_ERROR when TLM_CLI_EVENTS_MAX are there. */
int tlm_cli_events_add(tlm_cli_events *ev, tlm_engine_event_cb cb, void *ctx);

/* Points eo's on_event at ev when ev has consumers (none: no cost). */
void tlm_cli_events_attach(tlm_cli_events *ev, tlm_engine_opts *eo);

#endif
