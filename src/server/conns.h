/* The connections of the built-in control plane, watched so that slow or
 * idle ones cannot take the server away from the others (slowloris):
 *
 * - a request's headers and body must arrive within the request timeout,
 *   counted from when the connection opened or its previous answer was
 *   sent (so an idle keep-alive connection is closed after it, too);
 * - at most `max` connections at once, at most `per_ip` from one client
 *   address: a connection past either limit makes room by closing the one
 *   that has waited longest for its request (over per_ip: of that address)
 *   — never one whose request is being handled or answered.  A flood thus
 *   pushes out its own half-open connections, and a new client (a health
 *   check) still gets in.  Only when every other connection is busy is the
 *   new one itself closed.
 *
 * Closing is shutdown(2) of the socket: libmicrohttpd, which owns it, sees
 * the end and cleans up in its own thread.  A record lives from
 * tlm_conns_open() to tlm_conns_close(), which libmicrohttpd calls before it
 * closes the descriptor, so a shutdown never hits a reused descriptor.
 * Thread-safe; docs/serve.md ("Connections") gives the limits. */
#ifndef TLM_SERVER_CONNS_H
#define TLM_SERVER_CONNS_H

#include <sys/socket.h>

typedef struct tlm_conns tlm_conns;
typedef struct tlm_conn tlm_conn;

/* A registry with its watcher thread; per_ip 0 means no per-address limit.
 * NULL when out of memory or when the thread cannot start. */
tlm_conns *tlm_conns_new(unsigned max, unsigned per_ip, unsigned timeout_ms);

/* Stops the watcher and frees; records still open are freed too (call it
 * after the HTTP daemons stopped).  NULL is a no-op. */
void tlm_conns_free(tlm_conns *cs);

/* A connection was accepted on fd from sa (may be NULL): registers it,
 * waiting for its first request, and enforces the limits.  Returns its
 * record, or NULL when out of memory (then it was shut down). */
tlm_conn *tlm_conns_open(tlm_conns *cs, int fd, const struct sockaddr *sa);

/* The connection is going away (its descriptor still open): forgets it. */
void tlm_conns_close(tlm_conns *cs, tlm_conn *c);

/* Its request's headers are in: the body may follow (the clock runs on). */
void tlm_conns_reading(tlm_conns *cs, tlm_conn *c);

/* Its request is complete: handled and answered from now on, exempt from
 * the timeout and from being closed to make room. */
void tlm_conns_busy(tlm_conns *cs, tlm_conn *c);

/* Answered: it waits for its next request, the clock starts again. */
void tlm_conns_idle(tlm_conns *cs, tlm_conn *c);

/* Connections open now (those being closed not counted). */
unsigned tlm_conns_count(tlm_conns *cs);

#endif
