/* NATS TLS and credentials, shared by serve's publisher and the watcher. */
#include <strings.h>

#include "util/nats_auth.h"

int tlm_nats_wants_tls(const char *url)
{
	const char *p;

	for (p = url; *p != '\0'; p++)
		if ((p == url || p[-1] == ',' || p[-1] == ' ') && strncasecmp(p, "tls://", 6) == 0)
			return 1;
	return 0;
}

int tlm_nats_auth_apply(natsOptions *o, const char *url, const tlm_nats_auth *a, tlm_error *err)
{
	natsStatus s = NATS_OK;
	int rc = 0;

	if ((a->cert_file == NULL) != (a->key_file == NULL)) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   "NATS: a client certificate needs its key and the key its "
				   "certificate (both PEM files, or neither)");
		goto done;
	}
	/* A CA or a certificate given means TLS was meant, whatever the
	 * scheme: never fall back to plain text silently. */
	if ((tlm_nats_wants_tls(url) || a->ca_file != NULL || a->cert_file != NULL) &&
	    (s = natsOptions_SetSecure(o, true)) != NATS_OK) {
		rc = tlm_error_set(err, TLM_EINVALID, "NATS: TLS: %s", natsStatus_GetText(s));
		goto done;
	}
	if (a->ca_file != NULL &&
	    (s = natsOptions_LoadCATrustedCertificates(o, a->ca_file)) != NATS_OK) {
		rc = tlm_error_set(err, TLM_EINVALID, "NATS: CA file %s: %s", a->ca_file,
				   natsStatus_GetText(s));
		goto done;
	}
	if (a->cert_file != NULL &&
	    (s = natsOptions_LoadCertificatesChain(o, a->cert_file, a->key_file)) != NATS_OK) {
		rc = tlm_error_set(err, TLM_EINVALID, "NATS: client certificate %s with key %s: %s",
				   a->cert_file, a->key_file, natsStatus_GetText(s));
		goto done;
	}
	if (a->creds_file != NULL &&
	    (s = natsOptions_SetUserCredentialsFromFiles(o, a->creds_file, NULL)) != NATS_OK) {
		rc = tlm_error_set(err, TLM_EINVALID, "NATS: creds file %s: %s", a->creds_file,
				   natsStatus_GetText(s));
		goto done;
	}
	if (a->token != NULL && (s = natsOptions_SetToken(o, a->token)) != NATS_OK)
		rc = tlm_error_set(err, TLM_EINVALID, "NATS: the token: %s", natsStatus_GetText(s));
done:
	return rc;
}

int tlm_nats_refused(natsStatus s)
{
	return s == NATS_SSL_ERROR || s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ||
	       s == NATS_PROTOCOL_ERROR || s == NATS_SECURE_CONNECTION_WANTED ||
	       s == NATS_SECURE_CONNECTION_REQUIRED;
}

const char *tlm_nats_refusal(natsStatus s)
{
	switch (s) {
	case NATS_SSL_ERROR:
		return " (the TLS handshake failed: is the server's certificate signed by the CA "
		       "given, and for this host?)";
	case NATS_CONNECTION_AUTH_FAILED:
	case NATS_NOT_PERMITTED: return " (the server refused the token or credentials)";
	case NATS_SECURE_CONNECTION_WANTED:
		return " (TLS was asked for, by tls:// or a TLS file, and the server has none)";
	case NATS_SECURE_CONNECTION_REQUIRED:
		return " (the server wants TLS: use tls:// and its CA)";
	case NATS_PROTOCOL_ERROR:
		return " (the server hung up: with TLS, it may want a client certificate)";
	default: return "";
	}
}
