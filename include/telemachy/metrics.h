/*
 * telemachy — Prometheus metrics (docs/metrics.md).
 *
 * One process-wide registry of counters and histograms, declared up front
 * with fixed label values, so a series' count is bounded whatever the
 * workflow or the control plane says: routes are templates
 * ("/v1/agents/{id}/start"), never raw paths; anything unknown is "other".
 * The library records into it at each event site (one call, a relaxed
 * atomic add: the engine thread, the client and the built-in server's
 * threads update it while an exporter thread reads it), so nothing has to
 * be passed through the options of every module.  It is rendered in the
 * text exposition format 0.0.4, served over HTTP by the CLI
 * (--metrics-listen) or written as a node-exporter textfile.
 */
#ifndef TELEMACHY_METRICS_H
#define TELEMACHY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "telemachy/error.h"

/* The text exposition format's content type, for an HTTP exporter. */
#define TLM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Microseconds of CLOCK_MONOTONIC: for the durations below. */
uint64_t tlm_metrics_now_us(void);

/* A run ended with this outcome (tlm_engine_outcome_name). */
void tlm_metrics_run(const char *outcome);

/* Resources: kind "agent" or "team"; op "create" or "delete". */
void tlm_metrics_resource_created(const char *kind);
void tlm_metrics_resource_deleted(const char *kind);
void tlm_metrics_resource_failed(const char *kind, const char *op);

/* A task reached a final state: "completed", "failed", "timed_out",
 * "skipped", "cancelled". */
void tlm_metrics_task_final(const char *state);

/* One control-plane request attempt answered (status: its HTTP status, 0
 * when none came), and one retry scheduled. */
void tlm_metrics_client_request(const char *method, const char *path, long status,
				uint64_t elapsed_us);
void tlm_metrics_client_retry(void);

/* A hook delivery ended (event: "task_completed", ...; kind: "command" or
 * "webhook"; ok: 1 delivered, 0 failed), and a hook event dropped
 * (docs/hooks.md). */
void tlm_metrics_hook(const char *event, const char *kind, int ok);
void tlm_metrics_hook_dropped(void);

/* A NATS event received; a REST reconcile pass of the engine. */
void tlm_metrics_nats_event(void);
void tlm_metrics_reconcile_pass(void);

/* One journal commit (COMMIT of a write transaction) took this long. */
void tlm_metrics_journal_commit(uint64_t elapsed_us);

/* One request answered by the built-in control plane (status 0: dropped). */
void tlm_metrics_server_request(const char *method, const char *path, long status,
				uint64_t elapsed_us);

/* The route template of a request path ("/v1/teams/{id}/tasks/{id}"); a
 * query string is ignored; "other" for a path no route has. */
const char *tlm_metrics_route(const char *path);

/* Called at every render to add gauges of the caller's (the built-in
 * server's tasks by state): it appends complete families, HELP and TYPE
 * included, with tlm_metrics_append.  One at a time; NULL removes it.  It
 * runs on the rendering thread. */
typedef struct tlm_metrics_buf tlm_metrics_buf;
typedef void (*tlm_metrics_collector)(void *ctx, tlm_metrics_buf *out);
void tlm_metrics_set_collector(tlm_metrics_collector fn, void *ctx);
void tlm_metrics_append(tlm_metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The registry as text (format 0.0.4); *out is the caller's to free. */
int tlm_metrics_render(char **out, size_t *len, tlm_error *err);

/* Writes the rendered registry to path for node-exporter's textfile
 * collector, atomically: path.tmp in the same directory, fsync, rename over
 * path, fsync of the directory; a reader sees the old file or the new one,
 * never half of one. */
int tlm_metrics_write_textfile(const char *path, tlm_error *err);

/* Sets every counter back to 0 (tests). */
void tlm_metrics_reset(void);

#endif
