/* The web dashboard (`telemachy ui`, docs/ui.md): the journal's runs, each
 * run's task graph coloured by state, its tasks' output, resources and
 * audit trail, a JSON API under /api/ that says what `list` and `status
 * --output json` say, and the cancel, teardown and resume actions.  It reads
 * the journal afresh on every request and never holds a write lock; it
 * contacts no control plane itself (teardown and resume run as detached
 * `telemachy` commands).  Part of the CLI, like the built-in control plane:
 * not installed as a library. */
#ifndef TELEMACHY_UI_H
#define TELEMACHY_UI_H

#include "telemachy/error.h"

typedef struct tlm_ui tlm_ui;

typedef struct tlm_ui_opts {
	const char *listen;  /* "HOST:PORT" (PORT 0: any free port); NULL: 127.0.0.1:0 */
	const char *journal; /* where the journal is (tlm_journal_locate); NULL: the default */
	int journal_given;   /* 1: journal came from argv, so actions may pass it on argv */
	/* Required of every request (Authorization: Bearer, or the cookie the
	 * login form sets) when not NULL; an address other than loopback
	 * refuses to start without one.  Borrowed; never logged. */
	const char *access_token;
	const char *tls_cert_file; /* HTTPS with these (PEM), both or neither */
	const char *tls_key_file;
	int insecure_http;     /* allow plain HTTP on an address other than loopback */
	const char *host_name; /* one more name the Host header may carry (a DNS name) */
	const char *exe;       /* what actions run; NULL: /proc/self/exe */
	unsigned threads;      /* HTTP worker threads; 0: 4 */
} tlm_ui_opts;

#define TLM_UI_OPTS_INIT                                                                           \
	{                                                                                          \
		NULL, NULL, 0, NULL, NULL, NULL, 0, NULL, NULL, 0                                  \
	}

/* Start-up refusals have their own code (TLM_EINVALID) so that the CLI
 * exits 2 for them; a socket that cannot be bound is TLM_ERROR. */

/* Checks the options and makes *out (free with tlm_ui_free): the TLS files
 * are read, the CSRF token drawn.  TLM_EINVALID, err saying why: a bad
 * --listen, an address other than loopback without an access token, or
 * without TLS unless insecure_http, TLS files that cannot be used. */
int tlm_ui_new(tlm_ui **out, const tlm_ui_opts *opts, tlm_error *err);

/* Binds and starts serving (threads of its own); returns once connections
 * are accepted.  TLM_ERROR when the address cannot be bound. */
int tlm_ui_start(tlm_ui *ui, tlm_error *err);

/* The base URL once started: "http://127.0.0.1:PORT" (https with TLS). */
const char *tlm_ui_url(const tlm_ui *ui);

/* Stops serving (waits for requests in flight); a no-op when not started. */
void tlm_ui_stop(tlm_ui *ui);

/* Stops and frees; NULL is a no-op.  The CSRF token is wiped. */
void tlm_ui_free(tlm_ui *ui);

#endif
