/* Harness: a test PKI made with the openssl command, and nats-server with TLS. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/nats.h"
#include "harness/run.h"
#include "harness/tls.h"

#define OPENSSL_WAIT_MS 20000

/* Extensions by role: the server certificate names every loopback name a
 * test may use; each certificate is good only for its purpose, as a real
 * deployment's would be. */
static const char openssl_cnf[] = "[req]\n"
				  "distinguished_name = dn\n"
				  "prompt = no\n"
				  "[dn]\n"
				  "CN = unused\n"
				  "[v3_ca]\n"
				  "basicConstraints = critical,CA:TRUE\n"
				  "keyUsage = critical,keyCertSign,cRLSign\n"
				  "subjectKeyIdentifier = hash\n"
				  "[v3_server]\n"
				  "basicConstraints = critical,CA:FALSE\n"
				  "keyUsage = critical,digitalSignature,keyEncipherment\n"
				  "extendedKeyUsage = serverAuth\n"
				  "subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost\n"
				  "[v3_client]\n"
				  "basicConstraints = critical,CA:FALSE\n"
				  "keyUsage = critical,digitalSignature,keyEncipherment\n"
				  "extendedKeyUsage = clientAuth\n";

/* Runs `openssl ARGS...` in dir, output to dir/openssl.log; fails the test
 * with that log unless it exits 0 within OPENSSL_WAIT_MS. */
static void openssl(const char *dir, const char *const *args)
{
	const char *argv[32];
	char log[4096], *text;
	int64_t end = tlm_h_now_ms() + OPENSSL_WAIT_MS;
	int status = 0, n = 0, fd;
	pid_t pid, r;

	argv[n++] = "openssl";
	while (*args != NULL && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/openssl.log", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		execvp("openssl", (char *const *)argv);
		_exit(127);
	}
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && tlm_h_now_ms() < end)
		tlm_h_sleep_ms(10);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("openssl %s did not finish within %d ms", argv[1], OPENSSL_WAIT_MS);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		text = tlm_h_slurp(log);
		fail_msg("openssl %s failed (status %d; 127: openssl not installed):\n%s", argv[1],
			 status, text);
	}
}

/* A new EC key (name.key) and its certificate (name.pem), self-signed as a
 * CA, or signed by the CA called ca for role ("v3_server", "v3_client"). */
static void make_cert(const char *dir, const char *name, const char *cn, const char *ca,
		      const char *role)
{
	char key[64], pem[64], csr[64], subj[128], ca_pem[64], ca_key[64];

	snprintf(key, sizeof(key), "%s.key", name);
	snprintf(pem, sizeof(pem), "%s.pem", name);
	snprintf(csr, sizeof(csr), "%s.csr", name);
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	if (ca == NULL) {
		const char *args[] = { "req",
				       "-x509",
				       "-new",
				       "-config",
				       "openssl.cnf",
				       "-extensions",
				       "v3_ca",
				       "-newkey",
				       "ec",
				       "-pkeyopt",
				       "ec_paramgen_curve:prime256v1",
				       "-nodes",
				       "-keyout",
				       key,
				       "-out",
				       pem,
				       "-days",
				       "2",
				       "-subj",
				       subj,
				       NULL };

		openssl(dir, args);
		return;
	}
	snprintf(ca_pem, sizeof(ca_pem), "%s.pem", ca);
	snprintf(ca_key, sizeof(ca_key), "%s.key", ca);
	{
		const char *req[] = {
			"req",     "-new",    "-config",  "openssl.cnf",
			"-newkey", "ec",      "-pkeyopt", "ec_paramgen_curve:prime256v1",
			"-nodes",  "-keyout", key,        "-out",
			csr,       "-subj",   subj,       NULL
		};
		const char *sign[] = { "x509",        "-req",        "-in",
				       csr,           "-CA",         ca_pem,
				       "-CAkey",      ca_key,        "-CAcreateserial",
				       "-days",       "2",           "-extfile",
				       "openssl.cnf", "-extensions", role,
				       "-out",        pem,           NULL };

		openssl(dir, req);
		openssl(dir, sign);
	}
}

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

void tlm_h_pki_make(tlm_h_pki *p)
{
	memset(p, 0, sizeof(*p));
	p->dir = tlm_h_tmpdir();
	free(tlm_h_write_file(p->dir, "openssl.cnf", openssl_cnf));
	make_cert(p->dir, "ca", "telemachy test CA", NULL, NULL);
	make_cert(p->dir, "server", "127.0.0.1", "ca", "v3_server");
	make_cert(p->dir, "client", "telemachy test client", "ca", "v3_client");
	make_cert(p->dir, "other-ca", "another test CA", NULL, NULL);
	make_cert(p->dir, "other-client", "a client of the other CA", "other-ca", "v3_client");
	p->ca = path_in(p->dir, "ca.pem");
	p->server_cert = path_in(p->dir, "server.pem");
	p->server_key = path_in(p->dir, "server.key");
	p->client_cert = path_in(p->dir, "client.pem");
	p->client_key = path_in(p->dir, "client.key");
	p->other_ca = path_in(p->dir, "other-ca.pem");
	p->other_client_cert = path_in(p->dir, "other-client.pem");
	p->other_client_key = path_in(p->dir, "other-client.key");
}

void tlm_h_pki_free(tlm_h_pki *p)
{
	tlm_h_rmrf(p->dir);
	free(p->dir);
	free(p->ca);
	free(p->server_cert);
	free(p->server_key);
	free(p->client_cert);
	free(p->client_key);
	free(p->other_ca);
	free(p->other_client_cert);
	free(p->other_client_key);
	memset(p, 0, sizeof(*p));
}

pid_t tlm_h_nats_start_tls(unsigned short *port, const tlm_h_pki *p, const char *token)
{
	char conf[8192], *path;
	const char *args[3];
	pid_t pid;

	/* nats-server still greets in plain text (INFO, tls_required) before
	 * the handshake, which is how the harness sees that it is up. */
	snprintf(conf, sizeof(conf),
		 "tls {\n"
		 "  cert_file: \"%s\"\n"
		 "  key_file: \"%s\"\n"
		 "  ca_file: \"%s\"\n"
		 "  verify: true\n"
		 "  timeout: 2\n"
		 "}\n"
		 "authorization {\n"
		 "  token: \"%s\"\n"
		 "}\n",
		 p->server_cert, p->server_key, p->ca, token);
	path = tlm_h_write_file(p->dir, "nats.conf", conf);
	args[0] = "-c";
	args[1] = path;
	args[2] = NULL;
	pid = tlm_h_nats_start_args(port, args);
	free(path);
	return pid;
}
