/* Test harness: a real nats-server on a free loopback port, and a subscriber
 * that lets a test wait for the messages it expects.
 *
 * Every helper fails the current cmocka test on error (a missing nats-server
 * binary is a failure, never a skip).  The server is looked up as
 * $TLM_NATS_SERVER, then in PATH, then in /usr/sbin and /usr/local/sbin
 * (Debian installs it in /usr/sbin, which is not in every user's PATH).
 * Its output goes to /dev/null unless TLM_TEST_VERBOSE is set.
 *
 * Started servers get SIGKILL if the test process dies (PR_SET_PDEATHSIG),
 * but tests should still stop them in a cmocka teardown so that a failed
 * assertion in one test does not leave a server to the next.
 *
 * The subscriber uses libnats.  A test main that used it (or anything else
 * on libnats) may call nats_CloseAndWait() after its last test, so that
 * valgrind and LeakSanitizer see libnats' global threads joined. */
#ifndef TLM_TEST_HARNESS_NATS_H
#define TLM_TEST_HARNESS_NATS_H

#include <jansson.h>
#include <sys/types.h>

#include "harness/harness.h"

/* Starts `nats-server -a 127.0.0.1 -p PORT` (core NATS, no JetStream) and
 * returns its pid once it accepts clients and has sent its INFO line (at
 * most 5 s).  *port == 0: picks a free port and stores it in *port (retrying
 * with another port if the first one was taken meanwhile); otherwise starts
 * on *port, e.g. to restart a server where clients expect it. */
pid_t tlm_h_nats_start(unsigned short *port);

/* The same with extra command-line arguments (NULL-terminated array, may be
 * NULL), e.g. { "-c", "/tmp/.../nats.conf", NULL }. */
pid_t tlm_h_nats_start_args(unsigned short *port, const char *const *extra);

/* Stops a server: SIGTERM, then SIGKILL after 5 s; reaps it.  pid <= 0 is a
 * no-op, so teardowns can call it unconditionally. */
void tlm_h_nats_stop(pid_t pid);

/* Kills a server at once (SIGKILL) and reaps it: a crash, not a shutdown. */
void tlm_h_nats_kill(pid_t pid);

/* Stops pid (if > 0) and starts a new server on the same port; returns the
 * new pid.  Clients reconnect to it as to the old one. */
pid_t tlm_h_nats_restart(pid_t pid, unsigned short port);

/* "nats://127.0.0.1:PORT" into buf (at least 32 bytes); returns buf. */
char *tlm_h_nats_url(char *buf, size_t size, unsigned short port);

typedef struct tlm_h_sub tlm_h_sub;

/* Connects to the server on port and subscribes to subject (wildcards
 * allowed, e.g. "hi.>").  Returns once the server has registered the
 * subscription (a PING/PONG round trip), so nothing published after this
 * call is missed.  The connection reconnects forever, 100 ms apart; the
 * subscription is restored on reconnect.  Messages are kept without limit. */
tlm_h_sub *tlm_h_sub_new(unsigned short port, const char *subject);

/* Waits up to timeout_ms for the next message whose subject starts with
 * subject_prefix ("" or NULL: any), discarding the others on the way.
 * 0 when found, -1 on timeout.  *subject_out (caller frees) and *payload_out
 * (caller json_decrefs; NULL when the payload is not JSON) may be NULL. */
int tlm_h_sub_wait(tlm_h_sub *s, const char *subject_prefix, int timeout_ms, char **subject_out,
		   json_t **payload_out);

/* Waits up to timeout_ms until the subscriber is connected and its
 * subscription is registered again (after a server restart); 0 or -1. */
int tlm_h_sub_ready(tlm_h_sub *s, int timeout_ms);

/* Publishes len bytes of data on subject through the subscriber's
 * connection and flushes, so the server has the message on return.
 * Fails the test if it cannot. */
void tlm_h_sub_publish(tlm_h_sub *s, const char *subject, const void *data, size_t len);

/* The same with a NUL-terminated string. */
void tlm_h_sub_publish_str(tlm_h_sub *s, const char *subject, const char *data);

/* Closes the connection and frees; NULL is a no-op. */
void tlm_h_sub_free(tlm_h_sub *s);

#endif
