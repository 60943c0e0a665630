/* NATS for the built-in control plane: publishes change events without ever
 * blocking a REST request, and listens for workers' completion reports.
 *
 * Publishing hands the message to a bounded queue drained by a thread of its
 * own; when the queue is full, the connection is not up, or publishing is
 * paused (fault injection), the message is dropped and counted.  The
 * connection retries when NATS is down at start and reconnects forever, so
 * the server never needs a restart because NATS came up late (an upstream
 * hazard, see docs/contract.md §7). */
#ifndef TLM_SERVER_EVENTS_H
#define TLM_SERVER_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "telemachy/error.h"

typedef struct tlm_events tlm_events;

/* Called on a NATS thread for hi.tasks.<team>.<task>.completed (status
 * "completed") and .failed ("failed") published by an external worker.
 * task_id comes from the payload ({"task_id"} or {"data":{"task_id"}}),
 * else (empty payload, or an object without either) from the subject's 4th
 * token.  Ignored, without a call: a payload that is not a JSON object, is
 * over 1 MiB, or has a task_id that is not 1..255 printable ASCII characters
 * without spaces.  Calls never overlap; ctx must stay valid, and cb must not
 * call tlm_events_free, until tlm_events_free has returned. */
typedef void (*tlm_events_task_cb)(void *ctx, const char *task_id, const char *status);

/* Where and how to connect.  The TLS files and credentials are as
 * util/nats_auth.h takes them (NULL: none); all borrowed for the call. */
typedef struct tlm_events_opts {
	const char *url;
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	const char *creds_file;
	const char *token; /* never in any message */
} tlm_events_opts;

#define TLM_EVENTS_OPTS_INIT                                                                       \
	{                                                                                          \
		NULL, NULL, NULL, NULL, NULL, NULL                                                 \
	}

/* tlm_events_new with TLS and credentials (opts->url as url below).  A file
 * that cannot be loaded is TLM_EINVALID, naming the file.  With TLS or
 * credentials a first attempt is made on its own: a refusal that retrying
 * cannot fix (certificate, token, TLS on one side only) is TLM_ERROR at
 * once, with what to check; NATS merely down is retried as below (a silent
 * host then costs two of libnats' 2 s timeouts). */
int tlm_events_new_opts(tlm_events **out, const tlm_events_opts *opts, tlm_events_task_cb cb,
			void *ctx, tlm_error *err);

/* Starts connecting to url in the background and returns at once: NATS being
 * down is not an error.  TLM_EINVALID for a malformed URL.  cb may be NULL.
 * url: comma-separated nats://[user[:password]@]host[:port] or tls://...
 * (tls:// turns TLS on).  One connect attempt is made before returning:
 * instant when refused, up to libnats' 2 s timeout for a silent host.
 * TLM_ERROR if libnats gives up at once (e.g. TLS wanted by one side only).
 * Error messages never show the URL's credentials. */
int tlm_events_new(tlm_events **out, const char *url, tlm_events_task_cb cb, void *ctx,
		   tlm_error *err);

/* Queues subject + payload (stolen: the caller must not use or decref it).
 * Never blocks; drops and counts when it cannot publish now.  The payload is
 * serialised during the call, so later changes to shared objects do not
 * show.  Also dropped: a NULL payload, a subject with a space, control or
 * non-ASCII character, an empty or wildcard token, or over 1023 bytes.
 * ev NULL: the payload is released, nothing is counted. */
void tlm_events_publish(tlm_events *ev, const char *subject, json_t *payload);

/* tlm_events_publish with the payload already serialised: data, len bytes
 * (copied; NULL is dropped and counted), e.g. text the store made anyway. */
void tlm_events_publish_text(tlm_events *ev, const char *subject, const char *data, size_t len);

/* Pauses (1) or resumes (0) publishing; while paused every message is dropped. */
void tlm_events_pause(tlm_events *ev, int paused);

/* "connected", "connecting", "reconnecting" or "closed"; never blocks: the
 * publisher thread samples natsConnection_Status every 50 ms.  "connected"
 * means the inbound subscriptions are registered at the server too (one
 * round trip after each connect).  "closed": libnats gave up for good (TLS
 * or credentials refused); events are then dropped.  ev NULL: "closed". */
const char *tlm_events_state(tlm_events *ev);

/* Counters since start: published = handed to libnats while connected;
 * dropped = everything else.  ev NULL: zeros. */
void tlm_events_stats(tlm_events *ev, uint64_t *published, uint64_t *dropped);

/* Flushes what is queued (at most ~1 s), closes, frees; NULL is a no-op.
 * Waits for libnats' threads to stop using ev.  Does not call nats_Close():
 * libnats is process-wide; the process's owner (main) may, at the very end. */
void tlm_events_free(tlm_events *ev);

#endif
