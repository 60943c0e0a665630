/*
 * telemachy — the control-plane (Agamemnon) REST client, network half.
 *
 * One curl multi handle driven by the caller's thread: requests are queued
 * with tlm_client_submit() (at most max_in_flight on the wire, the rest wait
 * in a FIFO) and progress only inside tlm_client_step() / tlm_client_run().
 * Retry-safe failures are retried with jittered backoff (Retry-After
 * honoured) without blocking the loop.  A create (POST-create) whose outcome
 * is unknown is never sent again by the transport: the callback gets
 * TLM_CLIENT_UNKNOWN and the caller resolves it by name.
 *
 * Two layers: asynchronous operations that only ever queue work and report
 * through callbacks (requests, timers, paged lists, lookups by name) — what
 * the engine uses, so that its thread never blocks — and synchronous helpers
 * built on them for one-shot commands (tlm_client_get, _find, _list_all,
 * _create), which drive the client until their answer is in.
 *
 * The API key is sent as `Authorization: Bearer` and never appears in any
 * log or error message.  A tlm_client is not thread-safe.
 */
#ifndef TELEMACHY_CLIENT_H
#define TELEMACHY_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "telemachy/error.h"

typedef struct tlm_client tlm_client;

/* The layout of tlm_client_opts; raised when a field is added (at the end). */
#define TLM_CLIENT_OPTS_VERSION 2u

typedef struct tlm_client_opts {
	unsigned version;        /* TLM_CLIENT_OPTS_VERSION (the INIT macro sets it) */
	const char *base_url;    /* "http://127.0.0.1:8080"; copied */
	const char *api_key;     /* NULL: no auth header; copied, never logged */
	long timeout_ms;         /* whole request, per attempt (0: no limit) */
	long connect_timeout_ms; /* per attempt */
	unsigned max_in_flight;  /* requests on the wire at once (and connections) */
	int fresh_connection; /* one request per connection (default 0: keep-alive; docs/agamemnon.md, "Connection policy") */
	int require_tls;     /* plain http:// only to loopback hosts */
	const char *ca_file; /* NULL: the system store; copied */
	/* A client certificate (mTLS): PEM files, both or neither; copied.
	 * Messages name the files, never what is in them. */
	const char *cert_file;
	const char *key_file;
	uint32_t retry_base_ms;      /* backoff: ceiling of the first delay */
	uint32_t retry_cap_ms;       /* backoff: ceiling of any jittered delay */
	uint64_t retry_max_total_ms; /* backoff: all delays of one request together */
	uint32_t retry_max_attempts; /* attempts per request, the first included */
	double rate_rps;             /* client-side token bucket: requests/s (0: none) */
	unsigned rate_burst;         /* bucket size (0: max(1, rate_rps)) */
	unsigned max_connections;    /* open at once (0: max_in_flight); more requests wait */
	/* Asked before requests leave (NULL: always yes), with a request's
	 * stamp (below): before the first of each burst started together, and
	 * again before any of it stamped higher than those already let go.  0
	 * lets them go; a positive n holds them and asks again within n ms
	 * (the engine gathering a group commit); a negative value (and *err
	 * filled) closes the client: nothing more is sent, and every later
	 * step or run returns that error.  The engine's fencing check and
	 * group commit. */
	int (*gate)(void *ctx, uint64_t stamp, tlm_error *err);
	void *gate_ctx;
	/* Paging bounds of tlm_client_list (0: TLM_CLIENT_LIST_MAX_ITEMS,
	 * TLM_CLIENT_LIST_MAX_MS); lower ones let a test reach them quickly. */
	size_t list_max_items;
	long list_max_ms;
	/* Called with gate_ctx before the client blocks up to wait_ms for the
	 * network or a timer (NULL: nothing); returns the wait to use, which
	 * may be shorter.  The engine commits its journal batch there unless
	 * it is gathering a group commit, which bounds the wait. */
	long (*before_wait)(void *ctx, long wait_ms);
	/* A W3C traceparent value sent as the traceparent header of every
	 * request (docs/tracing.md, "Propagation"); copied.  NULL: no header
	 * (and no cost). */
	const char *traceparent;
	/* Called with gate_ctx when a request is queued (NULL: every stamp is
	 * 0): a number the gate is given back before the request leaves.  The
	 * engine stamps each request with its journal's mark: the writes the
	 * request depends on. */
	uint64_t (*stamp)(void *ctx);
} tlm_client_opts;

#define TLM_CLIENT_OPTS_INIT                                                                       \
	{                                                                                          \
		TLM_CLIENT_OPTS_VERSION, NULL, NULL, 30000, 5000, 16, 0, 1, NULL, NULL, NULL, 200, \
			10000, 120000, 8, 0, 0, 0, NULL, NULL, 0, 0, NULL, NULL, NULL              \
	}

/* What a request does, which decides whether it may be retried.  Same order
 * as the library's retry classifier. */
typedef enum tlm_client_kind {
	TLM_CLIENT_GET = 0,
	TLM_CLIENT_PUT,
	TLM_CLIENT_DELETE,
	TLM_CLIENT_PATCH,
	TLM_CLIENT_POST_ACTION, /* /start, /stop, /complete: idempotent */
	TLM_CLIENT_POST_CREATE  /* not idempotent: never re-sent on an unknown outcome */
} tlm_client_kind;

typedef enum tlm_client_outcome {
	TLM_CLIENT_DONE = 0, /* 2xx */
	TLM_CLIENT_GONE,     /* 404 on DELETE: already deleted */
	TLM_CLIENT_FAILED,   /* permanent error, or retries exhausted: see rc and err */
	TLM_CLIENT_UNKNOWN,  /* a create may or may not have happened: resolve before re-POSTing */
	/* The client dropped the request before it finished (tlm_client_free,
	 * tlm_client_cancel_all): the callback frees what it owns and does
	 * nothing else — no journal write, no new request. */
	TLM_CLIENT_CANCELLED
} tlm_client_outcome;

typedef struct tlm_client_result {
	tlm_client_outcome outcome;
	int rc;          /* 0 for DONE/GONE, a TLM_E* code otherwise */
	long status;     /* last HTTP status, 0 when none arrived */
	json_t *body;    /* parsed reply or NULL; borrowed for the callback's duration */
	const char *raw; /* raw reply bytes (NUL-terminated), borrowed */
	size_t raw_len;
	unsigned attempts;    /* attempts made */
	const tlm_error *err; /* message for FAILED/UNKNOWN; never contains the API key */
} tlm_client_result;

/* Called once per submitted request, from inside tlm_client_run().  It may
 * submit new requests, but must not call tlm_client_run() or free c. */
typedef void (*tlm_client_cb)(void *ctx, const tlm_client_result *res);

/* *out gets a new client (free with tlm_client_free).  TLM_EINVALID for a
 * missing or malformed base_url, plain http:// to a non-loopback host with
 * require_tls, a client certificate without its key (or the reverse), or a
 * CA, certificate or key file that cannot be read. */
int tlm_client_new(tlm_client **out, const tlm_client_opts *opts, tlm_error *err);

/* Frees c; every request and timer still pending is first dropped as by
 * tlm_client_cancel_all.  NULL is a no-op. */
void tlm_client_free(tlm_client *c);

/* Drops every pending request and timer, telling each callback once
 * (TLM_CLIENT_CANCELLED; timers with cancelled 1), so that contexts are
 * freed; requests on the wire are abandoned.  Submitting from such a
 * callback fails (TLM_ECANCELLED).  For a caller that stops at once (a
 * second signal, a lost run) and is about to free those contexts. */
void tlm_client_cancel_all(tlm_client *c);

/* Queues METHOD base_url+path.  method is "GET", "PUT", "DELETE", "PATCH" or
 * "POST"; json_body (copied) may be NULL.  Nothing is sent until
 * tlm_client_run(). */
int tlm_client_submit(tlm_client *c, const char *method, const char *path, const char *json_body,
		      tlm_client_kind kind, tlm_client_cb cb, void *ctx, tlm_error *err);

/* Drives transfers and scheduled retries until nothing is left (0) or
 * timeout_ms passed (TLM_ETIMEOUT; the rest stays queued).  timeout_ms < 0:
 * until done, which is bounded by the per-request timeouts and retry budget. */
int tlm_client_run(tlm_client *c, long timeout_ms, tlm_error *err);

/* Drives transfers once and then waits up to max_wait_ms for network
 * activity, a due retry or tlm_client_wakeup(); returns after that one wait
 * (0), also when nothing is pending.  The engine's loop is built on it. */
int tlm_client_step(tlm_client *c, long max_wait_ms, tlm_error *err);

/* Makes a tlm_client_step() that is waiting (or the next one) return at once.
 * The only call that is safe from another thread (libnats' callbacks). */
void tlm_client_wakeup(tlm_client *c);

/* Requests queued, sleeping before a retry, or on the wire, and timers. */
unsigned tlm_client_pending(const tlm_client *c);

/* Requests sent and not yet answered; requests queued and not yet sent. */
unsigned tlm_client_in_flight(const tlm_client *c);
unsigned tlm_client_waiting(const tlm_client *c);
/* Requests queued, not yet sent, and stamped higher than stamp. */
unsigned tlm_client_waiting_above(const tlm_client *c, uint64_t stamp);

/* Whether the control plane answers, as the requests finished so far show
 * (docs/agamemnon.md, "Outages").  It goes down at the first transport
 * failure after an HTTP reply (or since tlm_client_new): a refused
 * connection, a connect or request timeout, a reset, a closed connection
 * without a reply, a failed DNS lookup or TLS handshake.  It is up again at
 * the next HTTP reply, whatever its status.  A refused certificate is no
 * outage (the next attempt is refused the same way).  Transitions only:
 * many failed requests in a row are one change. */
typedef struct tlm_client_reach {
	int down;          /* 1 while no reply came since a transport failure */
	uint64_t changes;  /* how often down changed */
	uint64_t since_ms; /* CLOCK_MONOTONIC ms of the last change (0: none) */
	char why[256]; /* the failure that took it down ("GET /v1/...: Couldn't connect to server") */
	/* The Date header of the latest reply that had one, in seconds since
	 * the epoch (0: none yet): `doctor` compares it with the local clock. */
	int64_t server_date;
} tlm_client_reach;

/* Fills *out. */
void tlm_client_reach_get(const tlm_client *c, tlm_client_reach *out);

/* Every later request carries "X-Telemachy-Owner: RUN/EPOCH", so a control
 * plane's request log can tell which owner of a run sent what. */
int tlm_client_set_owner(tlm_client *c, const char *run_id, long long epoch, tlm_error *err);

/* Builds the request path p1 id1 [p2 id2 [p3]] into out (id2, p2, p3 may
 * be NULL), each id percent-encoded — everything but letters, digits and
 * "-._~" — so that an id from a control plane can never address another
 * path ("/", "?", "#", spaces; "." and ".." are refused).  TLM_EINVALID for an
 * empty or unaddressable id, TLM_ETOOBIG past cap. */
int tlm_client_path(char *out, size_t cap, const char *p1, const char *id1, const char *p2,
		    const char *id2, const char *p3, tlm_error *err);

/* ---- asynchronous operations (callbacks run inside step/run) ---------- */

typedef void (*tlm_client_timer_cb)(void *ctx, int cancelled);

/* cb(ctx, 0) once ms have passed, from inside a step (cb(ctx, 1) if the
 * client drops it first); counts as pending until then.  A wait that never
 * blocks the caller's loop. */
int tlm_client_after(tlm_client *c, long ms, tlm_client_timer_cb cb, void *ctx, tlm_error *err);

/* Called for each item of a list; a non-zero return stops the walk (and is
 * the operation's result). */
typedef int (*tlm_client_item_cb)(void *ctx, json_t *item);

/* The end of an operation: rc 0 (or an item callback's non-zero value), or
 * a TLM_E* code with err (never containing the API key). */
typedef void (*tlm_client_done_cb)(void *ctx, int rc, const tlm_error *err);

/* Paging bounds by default (tlm_client_opts.list_max_items, list_max_ms):
 * a hostile or broken server cannot keep a walk going for ever (TLM_ETOOBIG
 * past the items, TLM_ETIMEOUT past the time). */
#define TLM_CLIENT_LIST_MAX_ITEMS 1000000
#define TLM_CLIENT_LIST_MAX_MS    (10L * 60 * 1000)

/* Pages through GET path (limit 100) asynchronously: each(ctx, item) for
 * every element of key ("agents", "teams", "tasks"), then done(ctx, rc,
 * err) once.  Returns 0 when started (done will be called). */
int tlm_client_list(tlm_client *c, const char *path, const char *key, tlm_client_item_cb each,
		    tlm_client_done_cb done, void *ctx, tlm_error *err);

/* The two kinds of named resources the engine creates. */
typedef enum tlm_client_res { TLM_CLIENT_AGENT = 0, TLM_CLIENT_TEAM } tlm_client_res;

/* The end of a lookup by name: rc 0 with id (borrowed for the call),
 * TLM_ENOTFOUND, or another TLM_E* code with err. */
typedef void (*tlm_client_found_cb)(void *ctx, int rc, const char *id, const tlm_error *err);

/* Looks kind `name` up asynchronously: agents by GET
 * /v1/agents/by-name/{name}, teams by paging GET /v1/teams (first match).
 * settle_ms > 0: a first "not found" is not believed at once — a create may
 * still be landing — but asked again after settle_ms.  Returns 0 when
 * started (cb will be called once). */
int tlm_client_find_start(tlm_client *c, tlm_client_res kind, const char *name, long settle_ms,
			  tlm_client_found_cb cb, void *ctx, tlm_error *err);

/* ---- synchronous helpers (one-shot commands, tests) ------------------- */

/* Synchronous: the id of a resource named name (*id_out, caller frees), or
 * TLM_ENOTFOUND.  Agents through GET /v1/agents/by-name/{name}, teams by
 * paging GET /v1/teams (first match). */
int tlm_client_find(tlm_client *c, tlm_client_res kind, const char *name, char **id_out,
		    tlm_error *err);

/* How tlm_client_create starts. */
typedef enum tlm_client_lookup {
	TLM_CLIENT_POST_FIRST = 0, /* nothing of this name can exist yet */
	TLM_CLIENT_LOOKUP_FIRST,   /* a create may be in flight: look, wait one timeout, look */
	TLM_CLIENT_LOOKUP_ONCE     /* a create may have happened long ago: look once */
} tlm_client_lookup;

/* Synchronous: creates kind `name` (body: the other fields, "name" is set
 * from name) exactly once and gives its id.  lookup: whether a create of
 * this name may already have happened (an earlier unknown outcome, a crashed
 * run), so that what exists is adopted before posting.  On an unknown
 * outcome it looks the name up, again after one request timeout, and only
 * then posts again, within the retry budget.  Names must be unique to the
 * caller. */
int tlm_client_create(tlm_client *c, tlm_client_res kind, const char *name, const json_t *body,
		      tlm_client_lookup lookup, char **id_out, tlm_error *err);

/* Synchronous: creates agent `name` (body: the other fields; "name" is set
 * from name) and gives its id (*id_out, caller frees).  On an unknown outcome
 * it looks the name up (GET /v1/agents/by-name/{name}) and adopts the agent
 * found; only when none exists does it POST again, within the retry budget.
 * Names must be deterministic and unique to the caller for this to be exact. */
int tlm_client_create_agent(tlm_client *c, const char *name, const json_t *body, char **id_out,
			    tlm_error *err);

/* Synchronous GET path: 0 on 2xx (*body_out, if not NULL, gets the parsed
 * reply; caller json_decrefs), else the failure's TLM_E* code and message.
 * *http_status (may be NULL) gets the last HTTP status, 0 when none came. */
int tlm_client_get(tlm_client *c, const char *path, json_t **body_out, long *http_status,
		   tlm_error *err);

/* Synchronous: pages through GET path (e.g. "/v1/agents") with limit 100,
 * calling cb for each element of key ("agents", "teams", "tasks"). */
int tlm_client_list_all(tlm_client *c, const char *path, const char *key, tlm_client_item_cb cb,
			void *ctx, tlm_error *err);

#endif
