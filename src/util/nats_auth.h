/* TLS and credentials for a NATS connection, one set of rules for the
 * server's event publisher and the engine's watcher, so that whatever one
 * side accepts the other does too.  Internal. */
#ifndef TLM_UTIL_NATS_AUTH_H
#define TLM_UTIL_NATS_AUTH_H

#include <nats/nats.h>

#include "telemachy/error.h"

/* PEM files and credentials; NULL: none.  Borrowed. */
typedef struct tlm_nats_auth {
	const char *ca_file;    /* the server's CA; NULL: the system's */
	const char *cert_file;  /* a client certificate, with key_file: both or neither */
	const char *key_file;   /* never read but by libnats; named in messages, never shown */
	const char *creds_file; /* a .creds file (user JWT and NKey seed) */
	const char *token;      /* never in any message */
} tlm_nats_auth;

/* 1 when an item of the comma-separated url list is tls:// (libnats ignores
 * the scheme: TLS must be asked for). */
int tlm_nats_wants_tls(const char *url);

/* Sets TLS on o when url asks for it or a file of a is given, loads the
 * files, sets the creds file and the token.  0, or TLM_EINVALID with a
 * message naming the setting and its file (never a file's content, nor
 * libnats' detailed text, which may quote either; the token is not named). */
int tlm_nats_auth_apply(natsOptions *o, const char *url, const tlm_nats_auth *a, tlm_error *err);

/* For a failed connect: " (what to check)" when s is a refusal that
 * trying again will not change (TLS handshake, credentials, a server that
 * hung up: with TLS, most likely for want of a client certificate), else "". */
const char *tlm_nats_refusal(natsStatus s);

/* 1 when s is such a refusal. */
int tlm_nats_refused(natsStatus s);

#endif
