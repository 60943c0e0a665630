/* Fault injection: faults added by --fault or POST /v1/chaos/{type}, each
 * matching a route and firing on chosen calls.  Thread-safe.
 *
 * Types: fail (answer with a status, e.g. 500, 503, or 429 + Retry-After),
 * delay (hold the request), drop (commit the change, then close the
 * connection without an answer: the lost-response case), refuse (refuse new
 * connections for a while), nats-off (stop publishing events).  The syntax of
 * both forms and the counting rules are in docs/serve.md (fault injection). */
#ifndef TLM_SERVER_CHAOS_H
#define TLM_SERVER_CHAOS_H

#include <jansson.h>

#include "telemachy/error.h"

typedef struct tlm_chaos tlm_chaos;

/* refuse faults a server takes in its life: each window ends with a new
 * listening daemon (src/server/http.c), and the old ones live on until the
 * server stops, for the keep-alive connections they still serve. */
#define TLM_CHAOS_REFUSE_MAX 63

typedef enum {
	TLM_FAULT_NONE = 0,
	TLM_FAULT_FAIL,
	TLM_FAULT_DELAY,
	TLM_FAULT_DROP,
	TLM_FAULT_REFUSE,
	TLM_FAULT_NATS_OFF
} tlm_fault_type;

/* What to do with one request; the fields of other types are 0. */
typedef struct tlm_fault_action {
	tlm_fault_type type;  /* NONE, FAIL, DELAY or DROP */
	int status;           /* FAIL: 400..599 */
	unsigned retry_after; /* FAIL: Retry-After seconds, 0 = no header */
	unsigned delay_ms;    /* DELAY: 0..300000, before handling the request */
} tlm_fault_action;

/* An empty fault table; TLM_ERROR when out of memory.  _free(NULL) is a no-op. */
int tlm_chaos_new(tlm_chaos **out);
void tlm_chaos_free(tlm_chaos *c);

/* Adds a fault of type ("fail", "delay", ...) with params (an object, or
 * NULL for none: route, nth, count, status, retry_after, ms, seconds; numbers
 * as JSON integers, "seconds" may be fractional); *id ("f1", "f2", ...;
 * caller frees) names it.  TLM_EINVALID with a message naming the parameter
 * for a bad type, key, JSON type or range, and for a refuse fault past the
 * TLM_CHAOS_REFUSE_MAX-th; TLM_ETOOBIG when 256 faults are listed and all
 * are active (used-up ones are forgotten first). */
int tlm_chaos_add(tlm_chaos *c, const char *type, const json_t *params, char **id, tlm_error *err);

/* The --fault form: "TYPE[:key=value,...]", e.g.
 * "fail:route=POST /v1/agents,nth=2,status=503" (spaces around keys and
 * values are trimmed).  Errors as tlm_chaos_add, the message starting with
 * fault "SPEC": so that one of several flags is easy to find. */
int tlm_chaos_add_spec(tlm_chaos *c, const char *spec, char **id, tlm_error *err);

/* Every listed fault, in order of addition, as {"faults":[{"id","type",
 * ...params, "matched", "fired", "active"}]}: used-up and expired faults stay
 * listed with "active": false until removed.  NULL when out of memory. */
json_t *tlm_chaos_list(tlm_chaos *c);

/* Removes a fault; TLM_ENOTFOUND if there is none with id. */
int tlm_chaos_remove(tlm_chaos *c, const char *id);

/* Counts this request against the matching active faults and says what to
 * do (always fills out; NONE when nothing fires).  The first fault added
 * wins; every matching one counts the call.  Paths under /v1/chaos are never
 * faulted; c may be NULL (no faults).  O(faults), no allocation. */
void tlm_chaos_check(tlm_chaos *c, const char *method, const char *path, tlm_fault_action *out);

/* Seconds left of the longest active refuse window (0: none); windows end
 * by themselves.  c may be NULL. */
double tlm_chaos_refuse_remaining(tlm_chaos *c);

/* 1 while a nats-off fault is active (it ends after its seconds, or when
 * removed if it has none).  c may be NULL. */
int tlm_chaos_nats_off(tlm_chaos *c);

#endif
