/* HTTPS for `telemachy serve` (docs/serve.md, "TLS"): the certificate, key
 * and client CA as PEM text for libmicrohttpd, checked with GnuTLS (the TLS
 * library libmicrohttpd uses) before the daemon starts, so that a key that
 * does not match its certificate is a clear error naming the files rather
 * than a daemon that does not start; and the client certificate check of
 * every request when client certificates are required.  Internal. */
#ifndef TLM_SERVER_TLS_H
#define TLM_SERVER_TLS_H

#include "telemachy/error.h"

struct MHD_Connection;

/* PEM texts, owned; NULL when not given.  The key is wiped when cleared. */
typedef struct tlm_tls {
	char *cert;
	char *key;
	char *client_ca; /* non-NULL: every request needs a certificate it signed */
} tlm_tls;

#define TLM_TLS_MAX_FILE (1L << 20) /* bytes: a PEM file larger than this is refused */

/* Reads and checks the files: cert_file and key_file both or neither
 * (neither: *t stays empty, plain HTTP), client_ca_file only with them.
 * TLM_EINVALID for a missing, unreadable, oversized or unusable file, a key
 * that is not the certificate's, or libmicrohttpd built without TLS; the
 * message names the file, never its content. */
int tlm_tls_load(tlm_tls *t, const char *cert_file, const char *key_file,
		 const char *client_ca_file, tlm_error *err);

/* Wipes the key and frees; the struct is left empty. */
void tlm_tls_clear(tlm_tls *t);

/* For a request on a daemon that requires client certificates: 0 when the
 * client presented one that verifies against the client CA (and may serve
 * for client authentication), else -1 with *why (a static string) saying
 * what was wrong. */
int tlm_tls_client_ok(struct MHD_Connection *c, const char **why);

#endif
