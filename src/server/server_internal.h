/* Internal to src/server/: the server's state, the request/response types the
 * API handlers share, and the hooks the pieces use to reach each other. */
#ifndef TLM_SERVER_INTERNAL_H
#define TLM_SERVER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#include "server/reqlog.h"
#include "server/addr.h"
#include "server/store.h"
#include "server/tls.h"
#include "telemachy/server.h"

#define TLM_SRV_BODY_MAX   ((size_t)1 << 20) /* docs/contract.md §1: 1 MiB, then 413 */
#define TLM_SRV_MAX_PARAMS 4

typedef struct tlm_events tlm_events;
typedef struct tlm_runner tlm_runner;
typedef struct tlm_chaos tlm_chaos;
typedef struct tlm_ratelimit tlm_ratelimit;
typedef struct tlm_http tlm_http;

struct tlm_server {
	tlm_store *store;
	tlm_events *events; /* NULL without --nats */
	tlm_runner *runner;
	tlm_chaos *chaos;
	tlm_ratelimit *ratelimit; /* NULL without --rate-limit */
	tlm_http *http;
	char *api_key;             /* NULL: no auth */
	int guard_host;            /* loopback without a key: check Host and Origin */
	char *state_dir;           /* task logs live in state_dir/logs */
	int own_state_dir;         /* created by us: removed at stop */
	tlm_addr bound;            /* where we listen */
	char url[128];             /* how a client on this machine reaches us */
	char address[128];         /* the bound address, "0.0.0.0:8080" */
	tlm_reqlog *reqlog;        /* --request-log, or NULL */
	int upstream_agent_fields; /* drop the agent keys upstream drops */
	tlm_tls tls;               /* --tls-cert, --tls-key, --tls-client-ca (empty: plain HTTP) */
};

/* One request, as the handlers see it. */
typedef struct tlm_srv_request {
	const char *method;
	const char *path;
	const char *params[TLM_SRV_MAX_PARAMS]; /* the {} segments of the route */
	const char *body;
	size_t body_len;
	const char *host;   /* the Host header, or NULL */
	const char *origin; /* the Origin header, or NULL */
	void *conn;         /* struct MHD_Connection *, for query args */
} tlm_srv_request;

/* What a handler answers: status and a JSON body (stolen; NULL = empty). */
typedef struct tlm_srv_response {
	int status;
	json_t *body;
	unsigned retry_after; /* > 0: a Retry-After header */
} tlm_srv_response;

typedef void (*tlm_srv_handler)(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res);

/* Routes a request that passed chaos, rate limit and auth. */
void tlm_srv__route(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res);

/* Runs the whole pipeline for one request (chaos, limits, auth or the
 * Host/Origin check, route); sets *drop when the connection must close
 * without an answer. */
void tlm_srv__handle(tlm_server *srv, const tlm_srv_request *req, const char *client,
		     const char *authorization, const char *api_key_header, tlm_srv_response *res,
		     int *drop);

/* Response helpers. */
void tlm_srv__json(tlm_srv_response *res, int status, json_t *body);
void tlm_srv__error(tlm_srv_response *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The request body as a JSON object; on failure answers 400 and returns NULL. */
json_t *tlm_srv__body_object(const tlm_srv_request *req, tlm_srv_response *res);

/* A query argument ("limit") of the request, or NULL. */
const char *tlm_srv__query(const tlm_srv_request *req, const char *name);

/* Parses ?limit=&offset= (default 100, clamped to 1..1000); 400 on garbage. */
int tlm_srv__paging(const tlm_srv_request *req, tlm_srv_response *res, size_t *limit,
		    size_t *offset);

/* Publishes an event if NATS is configured (payload stolen). */
void tlm_srv__publish(tlm_server *srv, const char *subject, json_t *payload);

/* tlm_srv__publish with the payload already serialised (copied). */
void tlm_srv__publish_text(tlm_server *srv, const char *subject, const char *text, size_t len);

/* {"key":doc_text} as json_dumps(json_pack("{s:O}", key, doc), JSON_COMPACT)
 * writes it, where doc_text is json_dumps(doc, JSON_COMPACT) and key needs
 * no escaping: events carry documents the store has just serialised, and
 * serialising them again was a large part of a request.  *len: its length;
 * NULL when out of memory (free it). */
char *tlm_srv__wrap(const char *key, const char *doc_text, size_t *len);

/* Every task change goes through here, so that the store, the events and the
 * runner never disagree: update the store, publish, wake the runner.
 * *out (may be NULL) gets the updated task. */
int tlm_srv__task_update(tlm_server *srv, const char *scope, const char *task_id,
			 const json_t *patch, json_t **out);

/* Brings a refuse fault into effect: closes the listener for the rest of its
 * window (nats-off needs nothing: publishing checks it each time). */
void tlm_srv__apply_windows(tlm_server *srv);

/* Handlers by area (api_*.c). */
void tlm_api_agent_create(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_list(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_by_name(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_get(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_patch(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_delete(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_start(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_agent_stop(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_team_create(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_team_list(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_team_get(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_team_put(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_team_delete(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_task_create(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_task_list(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_task_get(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_task_update(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_task_complete(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_task_output(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_health(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_version(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_chaos_list(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_chaos_add(tlm_server *, const tlm_srv_request *, tlm_srv_response *);
void tlm_api_chaos_remove(tlm_server *, const tlm_srv_request *, tlm_srv_response *);

/* The HTTP layer (http.c): libmicrohttpd on a listening socket of our own,
 * so refusing connections for a while can close and reopen it.  *bound gets
 * the address really bound (port 0 replaced by the port the system chose).
 * Connections are limited and timed as conns.h says. */
typedef struct tlm_http_opts {
	unsigned threads;            /* worker threads, at least 1 */
	unsigned max_conns;          /* at once, at least 1 */
	unsigned max_per_ip;         /* from one client address; 0: no limit */
	unsigned request_timeout_ms; /* headers and body of a request */
	unsigned backlog;            /* listen(2)'s, at least 1 */
	/* HTTPS when tls->cert is set (tls.h); borrowed, and must outlive the
	 * tlm_http (a refuse window starts a new daemon with it). */
	const tlm_tls *tls;
	/* Trouble the layer recovers from by itself (tlm_server_opts.warn). */
	void (*warn)(void *ctx, const char *message);
	void *warn_ctx;
} tlm_http_opts;

int tlm_http_start(tlm_http **out, tlm_server *srv, const tlm_addr *addr, const tlm_http_opts *o,
		   tlm_addr *bound, tlm_error *err);

/* max_conns as the open-files limit allowed it (see http.c). */
unsigned tlm_http_max_connections(const tlm_http *h);
/* Closes the listening socket now and reopens it after `seconds`. */
void tlm_http_refuse(tlm_http *h, double seconds);
void tlm_http_stop(tlm_http *h);

#endif
