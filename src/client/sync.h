/*
 * The synchronous layer of the control-plane client, shared by the files of
 * src/client that build blocking operations (create.c, list paging) on the
 * asynchronous transport.  Internal to the library.
 */
#ifndef TLM_CLIENT_SYNC_H
#define TLM_CLIENT_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "client/client_internal.h"
#include "telemachy/client.h"

/* One finished request, copied out of its callback. */
typedef struct sync_res {
	int done;
	tlm_client_outcome outcome;
	int rc;
	long status;
	char *raw; /* NUL-terminated reply bytes, owned */
	size_t len;
	tlm_error err;
} sync_res;

/* Sends one request and drives the client until it is done (other queued
 * requests progress too).  Bounded by the per-request timeouts and the retry
 * budget.  0 means the request finished; its outcome is in *s (release with
 * tlm_client__sync_clear). */
int tlm_client__sync_req(tlm_client *c, const char *method, const char *path, const char *body,
			 tlm_client_kind kind, sync_res *s, tlm_error *err);
void tlm_client__sync_clear(sync_res *s);

/* A lookup by name (tlm_client_find_start) driven to its end: *id_out
 * (caller frees) or TLM_ENOTFOUND. */
int tlm_client__find_settled(tlm_client *c, tlm_client_res kind, const char *name, long settle_ms,
			     char **id_out, tlm_error *err);

/* Waits ms while still driving c's other requests. */
void tlm_client__wait_ms(tlm_client *c, uint64_t ms);

/* The client's retry policy and per-request timeout, for helpers that retry
 * whole operations (create, look up, create again). */
const tlm_backoff_opts *tlm_client__backoff_opts(const tlm_client *c);
long tlm_client__timeout_ms(const tlm_client *c);

#endif
