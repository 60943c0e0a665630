/* HTTPS for serve (see tls.h). */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/tls.h"

/* A whole PEM file, NUL-terminated (libmicrohttpd takes strings). */
static int read_pem(char **out, const char *what, const char *path, tlm_error *err)
{
	struct stat st;
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t n = 0, size = 0;
	int rc = 0;

	*out = NULL;
	if (f == NULL) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s %s: %s", what, path, strerror(errno));
		goto done;
	}
	/* A FIFO or a device would never end, or end anywhere. */
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s %s: not a regular file", what, path);
		goto done;
	}
	if (st.st_size > TLM_TLS_MAX_FILE) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s %s: over %ld bytes", what, path,
				   TLM_TLS_MAX_FILE);
		goto done;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	n = fread(buf, 1, size, f);
	if (ferror(f)) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s %s: cannot be read", what, path);
		goto done;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
done:
	if (buf != NULL) {
		explicit_bzero(buf, size + 1);
		free(buf);
	}
	if (f != NULL)
		fclose(f);
	return rc;
}

static gnutls_datum_t datum(const char *pem)
{
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)strlen(pem) };

	return d;
}

/* What libmicrohttpd will do with the texts, done once here with GnuTLS's
 * own words for what is wrong (they never quote the data). */
static int check_pems(const tlm_tls *t, const char *cert_file, const char *key_file,
		      const char *client_ca_file, tlm_error *err)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t cert = datum(t->cert), key = datum(t->key), ca;
	int rc = 0, r;

	if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	r = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		rc = tlm_error_set(err, TLM_EINVALID, "TLS certificate %s with key %s: %s",
				   cert_file, key_file, gnutls_strerror(r));
		goto done;
	}
	if (t->client_ca != NULL) {
		ca = datum(t->client_ca);
		r = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
		if (r <= 0)
			rc = tlm_error_set(err, TLM_EINVALID, "TLS client CA %s: %s",
					   client_ca_file,
					   r < 0 ? gnutls_strerror(r) : "no PEM certificate in it");
	}
done:
	gnutls_certificate_free_credentials(cred);
	return rc;
}

int tlm_tls_load(tlm_tls *t, const char *cert_file, const char *key_file,
		 const char *client_ca_file, tlm_error *err)
{
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (cert_file == NULL && key_file == NULL && client_ca_file == NULL)
		return 0;
	if (cert_file == NULL || key_file == NULL) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   cert_file == NULL && key_file == NULL
					   ? "a TLS client CA needs TLS: give the server's "
					     "certificate and key too"
					   : "TLS needs both the certificate and its key");
		goto done;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   "this libmicrohttpd was built without TLS: cannot serve HTTPS");
		goto done;
	}
	if ((rc = read_pem(&t->cert, "TLS certificate", cert_file, err)) != 0 ||
	    (rc = read_pem(&t->key, "TLS key", key_file, err)) != 0 ||
	    (client_ca_file != NULL &&
	     (rc = read_pem(&t->client_ca, "TLS client CA", client_ca_file, err)) != 0))
		goto done;
	rc = check_pems(t, cert_file, key_file, client_ca_file, err);
done:
	if (rc != 0)
		tlm_tls_clear(t);
	return rc;
}

void tlm_tls_clear(tlm_tls *t)
{
	if (t->key != NULL)
		explicit_bzero(t->key, strlen(t->key));
	free(t->key);
	free(t->cert);
	free(t->client_ca);
	memset(t, 0, sizeof(*t));
}

/* libmicrohttpd asks GnuTLS for a client certificate when it has a trust
 * store, but lets a client without one (or with one it never checked)
 * through the handshake: the check is ours, on every request. */
int tlm_tls_client_ok(struct MHD_Connection *c, const char **why)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
	gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
					  (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };
	unsigned int n = 0, status = 0;

	if (s == NULL) {
		*why = "no TLS session";
		return -1;
	}
	if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0) {
		*why = "a client certificate is required and none was presented";
		return -1;
	}
	if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0 || status != 0) {
		*why = "the client certificate is not signed by the CA this server trusts for "
		       "clients, has expired, or is not for client authentication";
		return -1;
	}
	return 0;
}
