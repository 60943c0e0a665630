/*
 * telemachy — hooks: commands and webhooks told when a task or the run ends
 * (docs/hooks.md).
 *
 * A tlm_hooks consumes the engine's events (tlm_engine_opts.on_event, or a
 * tee of them): tlm_hooks_on_event only copies a matching event into a
 * bounded queue, so it never blocks the engine's thread; a dispatcher thread
 * of its own runs the hooks, one event after the other, in order.  A full
 * queue drops the event (logged and counted, telemachy_hook_events_dropped_total).
 * Every delivery that fails — a command's exit status, its timeout, exec
 * failure, a webhook's error after its retries — is logged (warning) and
 * counted (telemachy_hook_failures_total); none changes the run.
 *
 * Payload (JSON, the same for both kinds): id (tlm_engine_event_id: the
 * same event of the same run has the same id, so a receiver can de-duplicate),
 * event, run, workflow, team, task, attempt, status, message, at.
 */
#ifndef TELEMACHY_HOOKS_H
#define TELEMACHY_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "telemachy/engine.h"
#include "telemachy/error.h"
#include "telemachy/journal.h"
#include "telemachy/spec.h"

#define TLM_HOOKS_QUEUE_DEFAULT 1024            /* events waiting for the dispatcher */
#define TLM_HOOKS_OUTPUT_MAX    ((size_t)65536) /* a command's output kept, bytes */
#define TLM_HOOKS_LOG_MAX       4096            /* of which logged, in columns once escaped */
#define TLM_HOOKS_KILL_GRACE_MS 2000            /* SIGTERM, then this, then SIGKILL */
#define TLM_HOOKS_ATTEMPTS_MAX  5               /* webhook attempts per event */

typedef struct tlm_hooks tlm_hooks;

/* A log line of the hooks (from the dispatcher thread): text from outside
 * (a command's output, a receiver's status) is already escaped (src/util/esc.h);
 * never a secret. */
typedef void (*tlm_hooks_log_fn)(void *ctx, tlm_engine_level level, const char *message);

/* The layout of tlm_hooks_opts; raised when a field is added (at the end). */
#define TLM_HOOKS_OPTS_VERSION 1u

typedef struct tlm_hooks_opts {
	unsigned version;           /* TLM_HOOKS_OPTS_VERSION (the INIT macro sets it) */
	const tlm_spec_hook *hooks; /* copied by tlm_hooks_new */
	size_t nhooks;
	size_t queue_max; /* 0: TLM_HOOKS_QUEUE_DEFAULT */
	tlm_hooks_log_fn log;
	void *log_ctx;
	/* Where deliveries are remembered, and the run's journaled events read
	 * back when a run is resumed or torn down (docs/hooks.md, "At least
	 * once"): borrowed, used by the dispatcher thread only, so it must be
	 * a connection of its own.  NULL: best effort, this process only. */
	tlm_journal *journal;
} tlm_hooks_opts;

#define TLM_HOOKS_OPTS_INIT                                                                        \
	{                                                                                          \
		TLM_HOOKS_OPTS_VERSION, NULL, 0, 0, NULL, NULL, NULL                               \
	}

/* What happened to the events so far. */
typedef struct tlm_hooks_stats {
	uint64_t delivered; /* hook runs that succeeded */
	uint64_t failed;    /* hook runs that failed */
	uint64_t dropped;   /* events not run: queue full, or left at the drain's deadline */
} tlm_hooks_stats;

/* Copies the hooks and starts the dispatcher thread.  0, or TLM_ERROR
 * (out of memory, no thread) with err. */
int tlm_hooks_new(tlm_hooks **out, const tlm_hooks_opts *o, tlm_error *err);

/* A tlm_engine_event_cb (ctx: the tlm_hooks): queues the event when it is
 * one the hooks listen for (tlm_engine_event_final).  With a journal, a
 * RUN_STARTED "resumed" or "teardown" first queues the run's journaled
 * events, delivered to each hook that has not had them; and no hook gets
 * an event the journal says it had.  Never blocks on a hook. */
void tlm_hooks_on_event(void *ctx, const tlm_engine_event *ev);

/* Waits until the queue is empty and the dispatcher idle, or until
 * deadline_ms have passed: then the hook running is stopped (a command's
 * process group killed, a webhook's transfer aborted: a failure) and the
 * events still queued are dropped.  0 when everything was delivered or
 * failed on its own; 1 when the deadline cut it short.  Then the queue
 * accepts no more events. */
int tlm_hooks_drain(tlm_hooks *h, long deadline_ms);

/* The longest timeout of any hook, in milliseconds (0 with no hooks): a
 * drain deadline that lets the hook running finish. */
long tlm_hooks_max_timeout_ms(const tlm_hooks *h);

void tlm_hooks_stats_get(tlm_hooks *h, tlm_hooks_stats *st);

/* Drains with no wait (as tlm_hooks_drain(h, 0)) when that was not done,
 * joins the thread and frees; NULL is a no-op. */
void tlm_hooks_free(tlm_hooks *h);

/* --hook EVENT=COMMAND: fills *hook (argv {"/bin/sh", "-c", COMMAND},
 * timeout TLM_SPEC_HOOK_TIMEOUT_DEFAULT) pointing into arg, which must
 * outlive it, and argv_store (3 + 1 entries).  0, or TLM_EINVALID with err
 * naming the events. */
int tlm_hooks_parse_arg(const char *arg, tlm_spec_hook *hook, const char *argv_store[4],
			tlm_error *err);

/* The JSON payload of one hook event, and its id (docs/hooks.md).  *json
 * (caller frees) and id[idcap].  Exposed for tests and embedders.  0, or
 * TLM_EINVALID when ev is not an event of a hook (*json NULL). */
int tlm_hooks_payload(const tlm_engine_event *ev, tlm_hook_event *event, char **json, char *id,
		      size_t idcap);

#endif
