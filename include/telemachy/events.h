/*
 * telemachy — the engine's NATS task-event watcher.
 *
 * Subscribes to hi.tasks.<team>.> for the teams of a run and hands the task
 * events to the engine thread through a bounded queue.  libnats delivers on
 * its own threads: they only parse, queue and call the wake function; the
 * engine calls tlm_watcher_drain() from its loop.  Events can be lost (NATS
 * outages, upstream drops, a full queue), so the watcher says when the
 * engine must reconcile over REST: a TLM_WATCHER_RECONCILE item after every
 * reconnect and after any event it had to drop.  See
 * docs/internals/events.md.
 *
 * Credentials (token, .creds file) are never logged and never appear in an
 * error message; URLs in messages have their user:password@ part masked.
 * Library code: nothing is printed.
 */
#ifndef TELEMACHY_EVENTS_H
#define TELEMACHY_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "telemachy/error.h"

typedef struct tlm_watcher tlm_watcher;

/* Called from libnats' threads whenever something was queued (an event or a
 * reconcile); must be thread-safe and quick (the engine passes a function
 * that calls curl_multi_wakeup).  May be NULL. */
typedef void (*tlm_watcher_wake_fn)(void *ctx);

/* The layout of tlm_watcher_opts; raised when a field is added (at the end). */
#define TLM_WATCHER_OPTS_VERSION 1u

typedef struct tlm_watcher_opts {
	unsigned version; /* TLM_WATCHER_OPTS_VERSION (the INIT macro sets it) */
	const char *url;  /* "nats://127.0.0.1:4222", comma-separated list allowed; required */
	const char *creds_file; /* NULL: none (NATS .creds file); never logged */
	const char *token;      /* NULL: none; never in any message */
	/* TLS: on when the URL is tls:// or any of these is given (PEM files;
	 * NULL: none).  ca_file: the server's CA (else the system's);
	 * cert_file and key_file: a client certificate, both or neither. */
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	long connect_timeout_ms; /* first connect, per server; also subscribe's round trip; 0: 5000 */
	size_t queue_max;        /* events waiting for the engine; 0: 100000 */
	tlm_watcher_wake_fn wake;
	void *wake_ctx;
} tlm_watcher_opts;

#define TLM_WATCHER_OPTS_INIT                                                                      \
	{                                                                                          \
		TLM_WATCHER_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL     \
	}

/* Longest team or task id (bytes) and status word accepted; longer events
 * are ignored (counted), so every queued event has a bounded size. */
#define TLM_WATCHER_ID_MAX     255
#define TLM_WATCHER_STATUS_MAX 63

/* Most teams one watcher subscribes to (TLM_ETOOBIG beyond). */
#define TLM_WATCHER_TEAMS_MAX 1024

typedef enum tlm_watcher_item_kind {
	TLM_WATCHER_EVENT = 0,
	TLM_WATCHER_RECONCILE /* events may have been lost: reconcile over REST */
} tlm_watcher_item_kind;

/* One drained item.  Strings are borrowed for the callback's duration. */
typedef struct tlm_watcher_item {
	tlm_watcher_item_kind kind;
	const char *team_id; /* EVENT only (NULL for RECONCILE) */
	const char *task_id;
	const char *status; /* status word as parsed (payload, else the subject's verb) */
	int state; /* tlm_task_state (client_internal.h): ACTIVE/COMPLETED/FAILED/UNKNOWN */
} tlm_watcher_item;

typedef void (*tlm_watcher_item_cb)(void *ctx, const tlm_watcher_item *item);

/* Connects to opts->url; the first connect must succeed within
 * connect_timeout_ms (per server of the list), else TLM_ETIMEOUT or TLM_ERROR
 * with a message naming the URL without credentials.  Afterwards it
 * reconnects forever (250 ms apart).  *out gets the watcher (free with
 * tlm_watcher_free); TLM_EINVALID for a missing or malformed url. */
int tlm_watcher_new(tlm_watcher **out, const tlm_watcher_opts *opts, tlm_error *err);

/* Subscribes to "hi.tasks.<team_id>.>" and returns only once the server has
 * registered it (a PING round trip), so nothing published afterwards is
 * missed; libnats restores it on reconnect.  Subscribing a team twice is a
 * no-op.  TLM_EINVALID unless team_id is a subject token of 1..255 printable
 * ASCII bytes without '.', '*', '>'; TLM_ETIMEOUT (and no subscription) when
 * the round trip fails.  Not thread-safe: call it from the engine thread. */
int tlm_watcher_subscribe(tlm_watcher *w, const char *team_id, tlm_error *err);

/* The same for n teams with one round trip for all of them (the engine's
 * thread waits at most the connect timeout, not n of them); all or none. */
int tlm_watcher_subscribe_all(tlm_watcher *w, const char *const *team_ids, size_t n,
			      tlm_error *err);

/* Hands every queued item to cb on the caller's thread, oldest first, and
 * empties the queue; returns the number of items handed over.  At most one
 * RECONCILE per drain: it stands where the first loss (reconnect, full queue)
 * happened.  cb runs without the watcher's lock; it must not free w. */
size_t tlm_watcher_drain(tlm_watcher *w, tlm_watcher_item_cb cb, void *ctx);

/* 1 while connected, as last reported by libnats' callbacks; never waits on
 * libnats' locks.  0 for NULL. */
int tlm_watcher_connected(const tlm_watcher *w);

/* Counters since tlm_watcher_new.  queued: events queued; dropped: events
 * lost to a full queue (or memory); ignored: messages that are not task
 * events with a status, or over a cap; reconnects: successful reconnects.
 * received: messages delivered by libnats, counted once handled, so that
 * received == queued + dropped + ignored whenever no message is in hand. */
typedef struct tlm_watcher_stats {
	uint64_t received, queued, dropped, ignored, reconnects;
} tlm_watcher_stats;

/* Fills *out (all zeros for a NULL w).  Thread-safe. */
void tlm_watcher_stats_get(const tlm_watcher *w, tlm_watcher_stats *out);

/* Closes the connection, waits (at most 5 s) for libnats' callbacks to let go
 * of w, and frees it with anything still queued; NULL is a no-op.  Does not
 * call nats_Close(): libnats is process-global (main or a test does that). */
void tlm_watcher_free(tlm_watcher *w);

#endif
