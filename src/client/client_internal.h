/*
 * The pure (no network) part of the control-plane client: tolerant parsers for
 * both generations of the Agamemnon contract (docs/contract.md
 * §4–§8) and the retry policy.  Kept free of I/O so that every reply shape and
 * every retry verdict can be tested exhaustively; the libcurl engine builds on
 * these.  Internal to the library (tlm_client__ prefix).
 *
 * Parse errors never quote the input: replies can carry keys, tokens or user
 * text, and messages end up in logs.  They name the shape that was expected and
 * at most a line/column.
 */
#ifndef TLM_CLIENT_INTERNAL_H
#define TLM_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "telemachy/client.h"
#include "telemachy/error.h"

/* Replies and event payloads above this are refused (TLM_ETOOBIG) before any
 * parsing: the contract's body limit is 1 MiB both ways. */
#define TLM_CLIENT_MAX_BODY ((size_t)1 << 20)

/* Error text shown to users is cut to about this many bytes (before escaping). */
#define TLM_CLIENT_ERRTEXT_MAX 200

/* ---- resources ------------------------------------------------------- */

/* What the engine needs from an agent, team or task reply.  Strings are owned
 * (NULL when absent); object holds a reference to the full resource object for
 * callers that want more fields.  Release with tlm_client__resource_clear(). */
typedef struct tlm_client_resource {
	char *id;
	char *name;    /* agents and teams; NULL for tasks */
	char *status;  /* agents and tasks; NULL when absent */
	char *team_id; /* tasks only ("teamId") */
	json_t *object;
} tlm_client_resource;

#define TLM_CLIENT_RESOURCE_INIT                                                                   \
	{                                                                                          \
		NULL, NULL, NULL, NULL, NULL                                                       \
	}

/* Frees what r owns and resets it; NULL is a no-op. */
void tlm_client__resource_clear(tlm_client_resource *r);

/* POST /v1/agents reply: {"agent":A,"id":ID}, {"agent":A} or a bare A.  The
 * top-level id wins when A has none; both present and different is refused. */
int tlm_client__parse_agent_create(tlm_client_resource *out, const char *body, size_t len,
				   tlm_error *err);

/* GET /v1/agents/{id} and /by-name/{name}: {"agent":A} (a bare A is accepted). */
int tlm_client__parse_agent(tlm_client_resource *out, const char *body, size_t len, tlm_error *err);

/* POST/GET/PUT teams: {"team":T} (a bare T is accepted). */
int tlm_client__parse_team(tlm_client_resource *out, const char *body, size_t len, tlm_error *err);

/* Tasks: {"task":K}, or v1's bare K, which may carry a stray "task":null. */
int tlm_client__parse_task(tlm_client_resource *out, const char *body, size_t len, tlm_error *err);

/* The same from a reply as the transport delivered it, using the body it
 * parsed already (parse.c: a reply is parsed once).  kind: "agent", "team"
 * or "task". */
int tlm_client__res_agent_create(tlm_client_resource *out, const tlm_client_result *res,
				 tlm_error *err);
int tlm_client__res_resource(tlm_client_resource *out, const char *kind,
			     const tlm_client_result *res, tlm_error *err);

/* The id of a task create's reply submitted with tlm_client__submit_raw:
 * read without a tree where it can be (tlm_client__task_reply_id_fast),
 * else as tlm_client__res_resource reads it, with its errors. */
int tlm_client__res_task_id(const tlm_client_result *res, char **id, tlm_error *err);

/* tlm_client_submit for a caller that reads the reply's raw text itself: the
 * transport does not parse it (res->body is NULL), and a 2xx whose reply is
 * not JSON stays DONE — the caller's reading finds that out. */
int tlm_client__submit_raw(tlm_client *c, const char *method, const char *path,
			   const char *json_body, tlm_client_kind kind, tlm_client_cb cb, void *ctx,
			   tlm_error *err);

/* Extracts a resource from an object that is already parsed (list items).
 * kind is "agent", "team" or "task"; out->object takes a new reference. */
int tlm_client__resource_from_json(tlm_client_resource *out, const char *kind, json_t *obj,
				   tlm_error *err);

/* ---- list paging (docs/contract.md §5) ------------------------------------------------ */

/* Walks a list over pages for both generations.  v2 replies carry total:
 * continue while offset + len < total.  v1 replies have no total: continue
 * while the page was full (len == limit).  Whatever the server says, paging
 * ends on an empty page, on a page that repeats the first one (a server that
 * ignores offset), and after TLM_CLIENT_MAX_PAGES pages, so it always ends. */
#define TLM_CLIENT_MAX_PAGES 100000

typedef struct tlm_client_pager {
	const char *key; /* "agents", "teams" or "tasks"; borrowed */
	size_t limit;    /* what we ask for per page */
	size_t offset;   /* the offset of the next request */
	size_t pages;    /* pages fed so far */
	json_t *first;   /* the first item of the first page (repeat check) */
	int done;
} tlm_client_pager;

/* limit 0 means the server default of 100. */
void tlm_client__pager_init(tlm_client_pager *p, const char *key, size_t limit);
void tlm_client__pager_clear(tlm_client_pager *p);

/* Parses one page reply.  *items gets a new reference to the items array
 * (caller json_decref()s; an empty array when the page repeats an earlier one,
 * so nothing is counted twice); *more is 1 when another request at p->offset is
 * needed.  After an error the pager is done. */
int tlm_client__pager_feed(tlm_client_pager *p, const char *body, size_t len, json_t **items,
			   int *more, tlm_error *err);

/* The same from a delivered reply (its parsed body). */
int tlm_client__pager_feed_res(tlm_client_pager *p, const tlm_client_result *res, json_t **items,
			       int *more, tlm_error *err);

/* ---- error bodies (docs/contract.md §4) ----------------------------------------------- */

/* A message for users from an error reply: "error", else "detail", else the
 * raw text; cut to ~TLM_CLIENT_ERRTEXT_MAX bytes with control characters and
 * non-ASCII bytes escaped, so a hostile body cannot forge log lines.  An empty
 * body gives "(empty body)".  Always NUL-terminates out (cap > 0). */
void tlm_client__error_text(char *out, size_t cap, const char *body, size_t len);

/* Seconds from a Retry-After header value (delta-seconds only; an HTTP date or
 * garbage gives -1), capped at a day.  NULL gives -1. */
long tlm_client__parse_retry_after(const char *value);

/* The retry_after_seconds of a 429 body (docs/contract.md §3), for when the header is missing
 * or unreadable; -1 when absent, not a non-negative integer, or not JSON.
 * Capped at a day. */
long tlm_client__body_retry_after(const char *body, size_t len);

/* The TLM_E* code for a non-2xx HTTP status, so callers can branch on
 * meaning: 404 -> TLM_ENOTFOUND, 409 -> TLM_ECONFLICT, 429 -> TLM_ERATELIMIT,
 * 408/504 -> TLM_ETIMEOUT, 413 -> TLM_ETOOBIG, other 4xx -> TLM_EINVALID,
 * anything else -> TLM_ERROR.  2xx gives 0. */
int tlm_client__http_code(int http_status);

/* ---- task status (docs/contract.md §7, §8) -------------------------------------------- */

typedef enum tlm_task_state {
	TLM_TASK_UNKNOWN = 0, /* not in the vocabulary: not terminal, but flagged */
	TLM_TASK_ACTIVE,      /* pending, running, blocked, in_progress */
	TLM_TASK_COMPLETED,   /* completed */
	TLM_TASK_FAILED       /* failed, cancelled, canceled, error, timed_out */
} tlm_task_state;

/* Classifies a status word (exact, lower case as the contract spells them). */
tlm_task_state tlm_client__task_state(const char *status);

/* 1 for the terminal vocabulary of docs/contract.md §8, 0 otherwise. */
int tlm_client__status_is_terminal(const char *status);

/* One task event from NATS, as the watcher needs it.  Owned strings. */
typedef struct tlm_client_event {
	char *team_id;
	char *task_id;
	char *status;         /* from the payload, else from the subject's verb */
	tlm_task_state state; /* of status */
} tlm_client_event;

#define TLM_CLIENT_EVENT_INIT                                                                      \
	{                                                                                          \
		NULL, NULL, NULL, TLM_TASK_UNKNOWN                                                 \
	}

void tlm_client__event_clear(tlm_client_event *ev);

/* Parses hi.tasks.<team>.<task>.<verb> and its payload.  Status precedence
 * (docs/contract.md §7): task.status, status, data.status, newStatus, else the verb (completed,
 * failed, started -> running).  TLM_ENOTFOUND when the subject is not a task
 * event of that form (e.g. hi.tasks.created) or when no status can be found
 * (an "updated" event without one); TLM_EINVALID/TLM_ETOOBIG for payloads.
 * A payload that is not JSON still yields a status from the verb. */
int tlm_client__parse_event(tlm_client_event *out, const char *subject, const char *payload,
			    size_t len, tlm_error *err);

/* ---- reading without a tree (src/client/scan.c) ----------------------- */

/* What a value is, for a scan's visitor. */
typedef enum tlm_scan_type {
	TLM_SCAN_NULL = 0,
	TLM_SCAN_BOOL,
	TLM_SCAN_NUMBER,
	TLM_SCAN_STRING,
	TLM_SCAN_OBJECT, /* its members follow, at the next depth */
	TLM_SCAN_ARRAY   /* its elements are not reported */
} tlm_scan_type;

/* Told each member of the root object (depth 1) and of an object that is
 * one (depth 2).  key[1] is the code of the depth-1 key (the member itself,
 * or the object holding it), key[2] the member's own at depth 2: i + 1 for
 * names[i], 0 for any other key.  s and len for strings (not NUL-ended,
 * valid during the call).  value returns non-zero to stop (out of memory). */
typedef struct tlm_scan_visitor {
	const char *const *names;
	size_t nnames;
	int (*value)(void *ctx, int depth, const int *key, tlm_scan_type type,
		     const unsigned char *s, size_t len);
	void *ctx;
} tlm_scan_visitor;

#define TLM_SCAN_READ     0     /* read to the end; *is_object: the root is an object */
#define TLM_SCAN_DECLINED -1    /* not read: jansson must decide */
#define TLM_SCAN_STOPPED  -2    /* the visitor stopped */
#define TLM_SCAN_MAX_LEN  8192u /* longer documents are declined */

/* Reads doc with yajl's callback parser when yajl and jansson cannot read it
 * differently (docs/internals/client.md#reading-without-a-tree); declines
 * any other document. */
int tlm_client__scan(const char *doc, size_t len, const tlm_scan_visitor *v, int *is_object);

/* What the fast readers below made of a document. */
#define TLM_FAST_FOUND    1  /* *out: the string (malloc'd) */
#define TLM_FAST_NONE     0  /* read; it has none */
#define TLM_FAST_DECLINED -1 /* not read, or not as the jansson reader would: use that */
#define TLM_FAST_NOMEM    -2

/* The status of an event's payload, as tlm_client__event_status_json would
 * find it (src/client/event_status.c). */
int tlm_client__event_status_fast(const char *payload, size_t len, char **status);

/* The same status from a document jansson loaded (NULL if none): the
 * reference the fast reading is checked against. */
const char *tlm_client__event_status_json(const json_t *root);

/* The id of a task create's reply (src/client/task_reply.c): FOUND only where
 * tlm_client__parse_task would succeed with that id; DECLINED where it
 * would fail, or might read the reply differently.  Never NONE. */
int tlm_client__task_reply_id_fast(const char *body, size_t len, char **id);

/* ---- retry policy ---------------------------------------------------- */

typedef enum tlm_http_method {
	TLM_HTTP_GET = 0,
	TLM_HTTP_PUT,
	TLM_HTTP_DELETE,
	TLM_HTTP_PATCH,       /* shallow merge of the same object: idempotent */
	TLM_HTTP_POST_ACTION, /* /start, /stop, /complete: idempotent upstream */
	TLM_HTTP_POST_CREATE  /* creates a resource: NOT idempotent */
} tlm_http_method;

/* What happened at the transport level, mapped from libcurl by the engine.
 * The split that matters is whether the request may have reached the server. */
typedef enum tlm_xfer {
	TLM_XFER_OK = 0,          /* an HTTP status arrived */
	TLM_XFER_CONNECT_REFUSED, /* not sent */
	TLM_XFER_CONNECT_TIMEOUT, /* not sent */
	TLM_XFER_RESOLVE,         /* DNS failure: not sent */
	TLM_XFER_TIMEOUT,         /* after connecting: may have been processed */
	TLM_XFER_RESET,           /* connection reset: may have been processed */
	TLM_XFER_EMPTY_REPLY,     /* closed without a reply: may have been processed */
	TLM_XFER_SEND_ERROR,      /* failed while sending: may have been processed */
	TLM_XFER_OTHER,           /* anything else: assume it may have been processed */
	TLM_XFER_TLS_HANDSHAKE,   /* the TLS handshake broke off: not sent */
	/* The TLS peers refused each other (the server's certificate is not
	 * trusted or not for this host, the client's certificate or key
	 * cannot be used): not sent, and sending again cannot help. */
	TLM_XFER_TLS_REFUSED
} tlm_xfer;

typedef enum tlm_verdict {
	TLM_VERDICT_SUCCESS = 0,
	TLM_VERDICT_GONE,     /* 404 on DELETE: already deleted, success for teardown */
	TLM_VERDICT_RETRY,    /* safe to send the same request again after a backoff */
	TLM_VERDICT_UNKNOWN,  /* a create may have happened: look the name up first */
	TLM_VERDICT_PERMANENT /* do not retry; report */
} tlm_verdict;

/* Classifies one attempt: transport result and, when xfer is TLM_XFER_OK, the
 * HTTP status.  Never answers RETRY for a create whose request may have reached
 * the server (docs/lessons.md #3, #16). */
tlm_verdict tlm_client__classify(tlm_http_method method, tlm_xfer xfer, int http_status);

const char *tlm_client__verdict_name(tlm_verdict v);

/* A source of uniformly distributed 64-bit values, so tests control jitter. */
typedef uint64_t (*tlm_random_fn)(void *ctx);

typedef struct tlm_backoff_opts {
	uint32_t base_ms;      /* ceiling of the first delay */
	uint32_t cap_ms;       /* ceiling of any jittered delay */
	uint64_t max_total_ms; /* sum of all delays never exceeds this */
	uint32_t max_attempts; /* attempts in all, the first one included */
} tlm_backoff_opts;

#define TLM_BACKOFF_OPTS_INIT                                                                      \
	{                                                                                          \
		200, 10000, 120000, 8                                                              \
	}

typedef struct tlm_backoff {
	tlm_backoff_opts opts;
	uint32_t attempts; /* attempts made (failed) so far */
	uint64_t waited_ms;
	tlm_random_fn rnd; /* NULL: an internal xorshift seeded from the clock */
	void *rnd_ctx;
	uint64_t rnd_state;
} tlm_backoff;

/* opts NULL means TLM_BACKOFF_OPTS_INIT; rnd NULL means an internal source. */
void tlm_client__backoff_init(tlm_backoff *b, const tlm_backoff_opts *opts, tlm_random_fn rnd,
			      void *rnd_ctx);

/* After a failed attempt: the delay before the next one.  Full jitter: uniform
 * in [0, min(cap, base * 2^(attempt-1))], then raised to retry_after_s seconds
 * (a floor from the server; < 0 when absent), which may exceed cap.  Returns 0
 * and *delay_ms, or TLM_ETIMEOUT when the attempts budget is spent, or when the
 * wait would pass max_total_ms (TLM_ERATELIMIT when it is the server's
 * Retry-After that cannot be honoured within it). */
int tlm_client__backoff_next(tlm_backoff *b, long retry_after_s, uint64_t *delay_ms,
			     tlm_error *err);

/* The paging bounds in force for c (its options, else the defaults). */
struct tlm_client;
void tlm_client__list_bounds(const struct tlm_client *c, size_t *max_items, long *max_ms);

#endif
