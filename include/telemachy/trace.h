/*
 * telemachy — OpenTelemetry traces of a run (docs/tracing.md).
 *
 * With OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set, a run's
 * engine events (tlm_engine_opts.on_event) become a trace: a span for the
 * run, for each phase (provisioning, running, teardown, ...), for each agent
 * and team, and for each task attempt.  Finished spans are sent over
 * OTLP/HTTP with the JSON encoding by a thread of the tracer's own, in
 * batches (about every second, and at the end), so that the engine's
 * thread never waits for the collector; an unreachable collector costs the
 * run at most the export timeout, at the end, and is only ever a warning.
 * The W3C traceparent of the run's span is sent to the control plane on
 * every request (tlm_engine_opts.traceparent).
 *
 * Unset, there is no tracer at all: tlm_trace_new_from_env() returns NULL,
 * starts no thread and allocates nothing, and every function here accepts
 * NULL and does nothing.  Header values (OTEL_EXPORTER_OTLP_HEADERS) are
 * secrets: they are sent to the collector and nowhere else — never in a
 * message, a log line, a span or argv.
 */
#ifndef TELEMACHY_TRACE_H
#define TELEMACHY_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "telemachy/engine.h"

typedef struct tlm_trace tlm_trace;

/* The layout of tlm_trace_opts; raised when a field is added (at the end). */
#define TLM_TRACE_OPTS_VERSION 1u

typedef struct tlm_trace_opts {
	unsigned version; /* TLM_TRACE_OPTS_VERSION (the INIT macro sets it) */
	/* Where warnings go (bad variables, a failed export); called on the
	 * thread that called tlm_trace_new_from_env or tlm_trace_finish, never
	 * on the exporter's.  NULL: stderr.  Messages never hold a secret. */
	void (*warn)(void *ctx, const char *message);
	void *warn_ctx;
	/* The environment to read; NULL: getenv.  For tests and embedders. */
	const char *(*getenv)(void *ctx, const char *name);
	void *getenv_ctx;
	const char *service_version; /* NULL: this library's version */
} tlm_trace_opts;

#define TLM_TRACE_OPTS_INIT                                                                        \
	{                                                                                          \
		TLM_TRACE_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL                               \
	}

/* A tracer configured from the OTEL_* environment (docs/tracing.md), with a
 * new trace id and the run span's id already chosen (so that traceparent is
 * known before the first request), and its exporter thread started when
 * the trace is sampled.  NULL when tracing is not configured, disabled
 * (OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none), asks for a protocol
 * other than http/json, or could not be set up (each but the first said
 * through warn). */
tlm_trace *tlm_trace_new_from_env(const tlm_trace_opts *opts);

/* An engine event (tlm_engine_event_cb; ctx is the tracer): opens and
 * closes spans.  Never blocks on the network: a finished span is queued
 * for the exporter (a full queue drops it, counted and warned about at the
 * end).  NULL ctx: nothing. */
void tlm_trace_on_event(void *ctx, const tlm_engine_event *ev);

/* "00-<trace id>-<run span id>-<flags>" (W3C Trace Context; flags 01 when
 * sampled, 00 when not), valid until tlm_trace_free; NULL for NULL t. */
const char *tlm_trace_traceparent(const tlm_trace *t);

/* The trace id as 32 lowercase hex digits (NULL for NULL t). */
const char *tlm_trace_trace_id(const tlm_trace *t);

/* Ends the spans still open (at now; a run that never ended is an error),
 * exports what is queued within the export timeout, stops the exporter
 * thread and reports, through warn, spans dropped and exports that failed.
 * Idempotent; NULL: nothing. */
void tlm_trace_finish(tlm_trace *t);

/* tlm_trace_finish, then frees t.  NULL: nothing. */
void tlm_trace_free(tlm_trace *t);

#endif
