/* Harness: a throwaway PKI made at test time with the `openssl` command, and
 * a nats-server that speaks only TLS, verifies client certificates and wants
 * a token.
 *
 * Every helper fails the current cmocka test on error (a missing openssl is
 * a failure, never a skip); every wait is bounded. */
#ifndef TLM_TEST_HARNESS_TLS_H
#define TLM_TEST_HARNESS_TLS_H

#include <sys/types.h>

#include "harness/harness.h"

/* Paths of PEM files in dir (all caller-owned through tlm_h_pki_free). */
typedef struct tlm_h_pki {
	char *dir;         /* a temporary directory, removed by tlm_h_pki_free */
	char *ca;          /* the CA certificate (the key stays in dir) */
	char *server_cert; /* for 127.0.0.1, ::1 and localhost (subjectAltName), serverAuth */
	char *server_key;
	char *client_cert; /* signed by ca, clientAuth */
	char *client_key;
	char *other_ca;          /* a second, unrelated CA */
	char *other_client_cert; /* a client certificate signed by other_ca */
	char *other_client_key;
} tlm_h_pki;

/* Makes every file above (EC P-256 keys, valid for two days); ~0.3 s. */
void tlm_h_pki_make(tlm_h_pki *p);

/* Removes the directory and frees the paths; a zeroed p is a no-op. */
void tlm_h_pki_free(tlm_h_pki *p);

/* Starts nats-server on 127.0.0.1 (*port as tlm_h_nats_start_args) with a
 * configuration written to p->dir: TLS with p's server certificate, client
 * certificates verified against p->ca (verify: true), and `authorization {
 * token }`.  Clients must use tls://, a client certificate and the token.
 * Stop it with tlm_h_nats_stop. */
pid_t tlm_h_nats_start_tls(unsigned short *port, const tlm_h_pki *p, const char *token);

#endif
