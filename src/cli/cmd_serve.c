/* telemachy serve — the built-in Agamemnon-compatible control plane. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_metrics.h"
#include "telemachy/metrics.h"
#include "telemachy/server.h"
#include "util/secret.h"

#define MAX_FAULTS 64
#define MAX_CONNS  30000 /* libnats select()s on descriptors below 32768 */
#define PER_IP     128   /* --max-connections-per-ip by default */

enum {
	OPT_LISTEN = 0x200,
	OPT_API_KEY,
	OPT_API_KEY_FILE,
	OPT_RATE,
	OPT_NATS,
	OPT_STATE,
	OPT_STATE_DIR,
	OPT_FAULT,
	OPT_THREADS,
	OPT_UNIQUE,
	OPT_INSECURE,
	OPT_PASS_ENV,
	OPT_MAX_CONNS,
	OPT_PER_IP,
	OPT_REQ_TIMEOUT,
	OPT_REQUEST_LOG,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CLIENT_CA,
	OPT_NATS_CA,
	OPT_NATS_CERT,
	OPT_NATS_KEY,
	OPT_NATS_CREDS,
	OPT_NATS_TOKEN_FILE,
	OPT_UPSTREAM_FIELDS,
	OPT_BACKLOG,
	OPT_METRICS_LISTEN
};

static void usage(void)
{
	printf("Usage: telemachy serve [OPTIONS]\n"
	       "\n"
	       "Run the built-in Agamemnon-compatible control plane: REST, NATS events,\n"
	       "local agents and fault injection.  Prints its URL on the first line of\n"
	       "stdout once it accepts connections; stops on SIGINT or SIGTERM.\n"
	       "\n"
	       "Options:\n"
	       "      --listen HOST:PORT   address to listen on (default 127.0.0.1:0, a free port;\n"
	       "                           [::1]:PORT for IPv6; PORT 0..65535)\n"
	       "      --api-key-file FILE  require this key (Bearer or X-API-Key); also\n"
	       "                           AGAMEMNON_API_KEY / AGAMEMNON_API_KEY_FILE\n"
	       "      --api-key KEY        the same, on the command line (visible in ps)\n"
	       "      --rate-limit RPS[:BURST]  429 + Retry-After above RPS per client IP\n"
	       "      --tls-cert FILE      serve HTTPS with this certificate (PEM; the chain\n"
	       "                           after it) ...\n"
	       "      --tls-key FILE       ... and its key (PEM, unencrypted)\n"
	       "      --tls-client-ca FILE require a client certificate signed by this CA (mTLS)\n"
	       "      --nats URL           publish events to NATS (also NATS_URL; tls:// for TLS)\n"
	       "      --nats-ca FILE       the NATS server's CA (PEM; also NATS_CA_FILE)\n"
	       "      --nats-cert FILE     a client certificate for NATS (also NATS_CLIENT_CERT)\n"
	       "      --nats-key FILE      its key (also NATS_CLIENT_KEY)\n"
	       "      --nats-creds FILE    a NATS .creds file (also NATS_CREDS)\n"
	       "      --nats-token-file FILE  a NATS token, the file's first line (also\n"
	       "                           NATS_TOKEN_FILE)\n"
	       "      --state FILE         keep agents, teams and tasks in this SQLite file\n"
	       "      --state-dir DIR      task logs go to DIR/logs (default: a temporary dir)\n"
	       "      --fault SPEC         inject a fault, e.g. 'fail:route=POST /v1/agents,nth=2'\n"
	       "                           (repeatable; see docs/serve.md)\n"
	       "      --threads N          HTTP worker threads (default 8)\n"
	       "      --max-connections N  open connections at once (default 1024)\n"
	       "      --max-connections-per-ip N  from one client address (default 128; 0: no\n"
	       "                           such limit); local clients all share 127.0.0.1\n"
	       "      --backlog N          listen(2) backlog (default 128; 5 emulates upstream)\n"
	       "      --request-timeout S  a request's headers and body must arrive within S\n"
	       "                           seconds; idle connections close after it (default 10)\n"
	       "      --unique-names       answer 409 to a second agent with the same name\n"
	       "      --upstream-agent-fields  drop what upstream Agamemnon drops of an agent's\n"
	       "                           create (model, image, cpus, memory, env), as it does\n"
	       "      --pass-env NAME      give agent programs this variable of serve's environment\n"
	       "                           (repeatable; NAME or PREFIX*); they get only PATH,\n"
	       "                           HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ,\n"
	       "                           TMPDIR of it otherwise\n"
	       "      --request-log FILE   append one JSON line per request to FILE (time,\n"
	       "                           method, path, status, the X-Telemachy-Owner header)\n"
	       "      --metrics-listen HOST:PORT  serve Prometheus metrics at /metrics on this\n"
	       "                           loopback address (also METRICS_LISTEN; docs/metrics.md)\n"
	       "      --insecure-no-auth   allow an address other than loopback without an API\n"
	       "                           key (whoever reaches it can run programs here)\n"
	       "  -h, --help               show this help\n"
	       "\n"
	       "Exit codes: 0 stopped by a signal, 2 usage error or bad setting,\n"
	       "3 cannot listen or start.\n");
}

typedef struct serve_args {
	tlm_server_opts opts;
	const char *faults[MAX_FAULTS];
	tlm_cli_pass pass;
	char *key; /* owned */
	const char *key_file;
	const char *nats_token_file;
	char *nats_token; /* owned, wiped */
	int nats_flags;   /* a --nats-* option other than --nats was given */
} serve_args;

static int parse_rate(tlm_cli *cli, const char *s, serve_args *a)
{
	char *end;
	double rps;
	unsigned long burst = 0;

	errno = 0;
	rps = strtod(s, &end);
	if (*end == ':')
		burst = strtoul(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || rps <= 0 || burst > 1000000)
		return tlm_cli_usage_error(cli, "--rate-limit wants RPS[:BURST], got \"%s\"", s);
	a->opts.rate_rps = rps;
	a->opts.rate_burst = (unsigned)burst;
	return 0;
}

/* A whole number min..MAX_CONNS, digits only. */
static int parse_count(tlm_cli *cli, const char *opt, const char *arg, unsigned min, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v < min || v > MAX_CONNS)
		return tlm_cli_usage_error(cli, "%s wants %u..%d, got \"%s\"", opt, min, MAX_CONNS,
					   arg);
	*out = (unsigned)v;
	return 0;
}

/* The --nats-* options but --nats; 1 when c was one of them. */
static int parse_nats_opt(int c, const char *arg, serve_args *a)
{
	const char **dst = c == OPT_NATS_CA           ? &a->opts.nats_ca_file
			   : c == OPT_NATS_CERT       ? &a->opts.nats_cert_file
			   : c == OPT_NATS_KEY        ? &a->opts.nats_key_file
			   : c == OPT_NATS_CREDS      ? &a->opts.nats_creds_file
			   : c == OPT_NATS_TOKEN_FILE ? &a->nats_token_file
						      : NULL;

	if (dst == NULL)
		return 0;
	*dst = arg;
	a->nats_flags = 1;
	return 1;
}

static int parse_opt(tlm_cli *cli, int c, const char *arg, serve_args *a)
{
	char *end;

	if (parse_nats_opt(c, arg, a))
		return 0;
	switch (c) {
	case OPT_LISTEN: a->opts.listen = arg; return 0;
	case OPT_REQUEST_LOG: a->opts.request_log = arg; return 0;
	case OPT_METRICS_LISTEN:
		(void)tlm_cli_metrics_opt(TLM_CLI_OPT_METRICS_LISTEN, arg);
		return 0;
	case OPT_API_KEY:
		free(a->key);
		a->key = strdup(arg);
		return 0;
	case OPT_API_KEY_FILE: a->key_file = arg; return 0;
	case OPT_RATE: return parse_rate(cli, arg, a);
	case OPT_NATS: a->opts.nats_url = arg; return 0;
	case OPT_TLS_CERT: a->opts.tls_cert_file = arg; return 0;
	case OPT_TLS_KEY: a->opts.tls_key_file = arg; return 0;
	case OPT_TLS_CLIENT_CA: a->opts.tls_client_ca_file = arg; return 0;
	case OPT_STATE: a->opts.state_path = arg; return 0;
	case OPT_STATE_DIR: a->opts.state_dir = arg; return 0;
	case OPT_UNIQUE: a->opts.unique_names = 1; return 0;
	case OPT_UPSTREAM_FIELDS: a->opts.upstream_agent_fields = 1; return 0;
	case OPT_INSECURE: a->opts.insecure_no_auth = 1; return 0;
	case OPT_PASS_ENV: return tlm_cli_pass_add(cli, &a->pass, arg);
	case OPT_FAULT:
		if (a->opts.nfaults == MAX_FAULTS)
			return tlm_cli_usage_error(cli, "at most %d --fault options", MAX_FAULTS);
		a->faults[a->opts.nfaults++] = arg;
		return 0;
	case OPT_MAX_CONNS:
		return parse_count(cli, "--max-connections", arg, 1, &a->opts.max_connections);
	case OPT_PER_IP:
		return parse_count(cli, "--max-connections-per-ip", arg, 0,
				   &a->opts.max_connections_per_ip);
	case OPT_BACKLOG: return parse_count(cli, "--backlog", arg, 1, &a->opts.backlog);
	case OPT_REQ_TIMEOUT:
		a->opts.request_timeout = strtod(arg, &end);
		if (end == arg || *end != '\0' || !(a->opts.request_timeout >= 0.1) ||
		    !(a->opts.request_timeout <= 3600))
			return tlm_cli_usage_error(
				cli, "--request-timeout wants seconds from 0.1 to 3600, got \"%s\"",
				arg);
		return 0;
	case OPT_THREADS:
		a->opts.threads = (unsigned)strtoul(arg, &end, 10);
		if (*end != '\0' || a->opts.threads < 1 || a->opts.threads > 256)
			return tlm_cli_usage_error(cli, "--threads wants 1..256, got \"%s\"", arg);
		return 0;
	default: return tlm_cli_usage_error(cli, "unknown option '%s'", arg ? arg : "?");
	}
}

/* The key, from the first source that is set: --api-key, --api-key-file,
 * AGAMEMNON_API_KEY_FILE, AGAMEMNON_API_KEY.  A set but empty or blank key
 * is an error, not "no auth": the operator asked for auth (docs/serve.md). */
static int load_key(tlm_cli *cli, serve_args *a)
{
	const char *file = a->key_file ? a->key_file : getenv("AGAMEMNON_API_KEY_FILE");
	const char *what = "--api-key";
	tlm_error err = TLM_ERROR_INIT;

	if (a->key == NULL && file != NULL) {
		if (tlm_secret_read_key_file(&a->key, file, &err) != 0)
			return tlm_cli_usage_error(cli, "%s", err.message);
		return 0;
	}
	if (a->key == NULL && getenv("AGAMEMNON_API_KEY") != NULL) {
		what = "AGAMEMNON_API_KEY";
		if ((a->key = strdup(getenv("AGAMEMNON_API_KEY"))) == NULL)
			return tlm_cli_usage_error(cli, "out of memory");
	}
	if (a->key != NULL && tlm_secret_check_key(a->key, what, &err) != 0)
		return tlm_cli_usage_error(cli, "%s", err.message);
	return 0;
}

static const char *env_or(const char *flag, const char *name)
{
	const char *v = getenv(name);

	return flag != NULL ? flag : v != NULL && v[0] != '\0' ? v : NULL;
}

/* NATS: TLS files and credentials, flags over NATS_CA_FILE,
 * NATS_CLIENT_CERT / _KEY, NATS_CREDS and NATS_TOKEN_FILE; the token only
 * ever from a file (argv is visible in ps). */
static int nats_settings(tlm_cli *cli, serve_args *a)
{
	tlm_error err = TLM_ERROR_INIT;
	const char *token_file;

	if (a->nats_flags && a->opts.nats_url == NULL)
		return tlm_cli_usage_error(cli,
					   "--nats-ca, --nats-cert, --nats-key, --nats-creds "
					   "and --nats-token-file need --nats URL (or NATS_URL)");
	a->opts.nats_ca_file = env_or(a->opts.nats_ca_file, "NATS_CA_FILE");
	a->opts.nats_cert_file = env_or(a->opts.nats_cert_file, "NATS_CLIENT_CERT");
	a->opts.nats_key_file = env_or(a->opts.nats_key_file, "NATS_CLIENT_KEY");
	a->opts.nats_creds_file = env_or(a->opts.nats_creds_file, "NATS_CREDS");
	token_file = env_or(a->nats_token_file, "NATS_TOKEN_FILE");
	if ((a->opts.nats_cert_file == NULL) != (a->opts.nats_key_file == NULL))
		return tlm_cli_usage_error(cli,
					   "a NATS client certificate needs both --nats-cert "
					   "(NATS_CLIENT_CERT) and --nats-key (NATS_CLIENT_KEY)");
	if (token_file == NULL || a->opts.nats_url == NULL)
		return 0;
	if (tlm_secret_read_token_file(&a->nats_token, token_file, &err) != 0)
		return tlm_cli_usage_error(cli, "%s", err.message);
	tlm_secret_protect_process(); /* no core file with the token in it */
	a->opts.nats_token = a->nats_token;
	return 0;
}

/* HTTPS: the certificate and its key together; a client CA only with them. */
static int tls_settings(tlm_cli *cli, const serve_args *a)
{
	if ((a->opts.tls_cert_file == NULL) != (a->opts.tls_key_file == NULL))
		return tlm_cli_usage_error(cli, "--tls-cert and --tls-key go together");
	if (a->opts.tls_client_ca_file != NULL && a->opts.tls_cert_file == NULL)
		return tlm_cli_usage_error(cli, "--tls-client-ca needs --tls-cert and --tls-key");
	return 0;
}

/* Flags override the environment (docs/design.md §6). */
static int apply_env(tlm_cli *cli, serve_args *a)
{
	int rc;

	if (a->opts.nats_url == NULL)
		a->opts.nats_url = getenv("NATS_URL");
	if ((rc = tls_settings(cli, a)) != 0 || (rc = nats_settings(cli, a)) != 0)
		return rc;
	if ((rc = load_key(cli, a)) != 0)
		return rc;
	if (a->key != NULL)
		tlm_secret_protect_process(); /* no core file with the key in it */
	a->opts.api_key = a->key;
	a->opts.faults = a->faults;
	a->opts.pass_env = a->pass.names; /* zeroed: NULL-terminated */
	return 0;
}

static int parse_args(tlm_cli *cli, int argc, char **argv, serve_args *a)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "request-log", required_argument, NULL, OPT_REQUEST_LOG },
		{ "api-key", required_argument, NULL, OPT_API_KEY },
		{ "api-key-file", required_argument, NULL, OPT_API_KEY_FILE },
		{ "rate-limit", required_argument, NULL, OPT_RATE },
		{ "nats", required_argument, NULL, OPT_NATS },
		{ "state", required_argument, NULL, OPT_STATE },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "fault", required_argument, NULL, OPT_FAULT },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "unique-names", no_argument, NULL, OPT_UNIQUE },
		{ "upstream-agent-fields", no_argument, NULL, OPT_UPSTREAM_FIELDS },
		{ "insecure-no-auth", no_argument, NULL, OPT_INSECURE },
		{ "pass-env", required_argument, NULL, OPT_PASS_ENV },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONNS },
		{ "max-connections-per-ip", required_argument, NULL, OPT_PER_IP },
		{ "backlog", required_argument, NULL, OPT_BACKLOG },
		{ "request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA },
		{ "nats-ca", required_argument, NULL, OPT_NATS_CA },
		{ "nats-cert", required_argument, NULL, OPT_NATS_CERT },
		{ "nats-key", required_argument, NULL, OPT_NATS_KEY },
		{ "nats-creds", required_argument, NULL, OPT_NATS_CREDS },
		{ "nats-token-file", required_argument, NULL, OPT_NATS_TOKEN_FILE },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
		{ 0 }
	};
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0)
		if ((rc = parse_opt(cli, c, optarg, a)) != 0)
			return rc;
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	return apply_env(cli, a);
}

/* --metrics-listen or METRICS_LISTEN: the exporter, with the store's
 * tasks and agents by state at each scrape (docs/metrics.md). */
static int start_metrics(tlm_server *srv)
{
	tlm_metrics_set_collector(tlm_server_metrics_collect, srv);
	return tlm_cli_metrics_start();
}

/* What the server works around by itself still shows in its log. */
static void serve_warn(void *ctx, const char *message)
{
	(void)ctx;
	tlm_log_cmd(TLM_ENGINE_WARN, NULL, "%s", message);
}

int tlm_cmd_serve(tlm_cli *cli, int argc, char **argv)
{
	serve_args a = { TLM_SERVER_OPTS_INIT, { 0 }, { { 0 }, 0 }, NULL, NULL, NULL, NULL, 0 };
	tlm_error err = TLM_ERROR_INIT;
	tlm_server *srv = NULL;
	sigset_t set;
	int rc, sig;

	/* serve faces the network: one client address may not take every
	 * connection (the library's default, for run's in-process server
	 * and its one client, has no such limit). */
	a.opts.max_connections_per_ip = PER_IP;
	a.opts.max_connections = 1024;
	a.opts.warn = serve_warn;
	rc = parse_args(cli, argc, argv, &a);

	if (rc != 0) {
		free(a.key);
		tlm_secret_free(a.nats_token);
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	}
	/* Block the stop signals before any thread exists, so that only
	 * sigwait() below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = tlm_server_start(&srv, &a.opts, &err);
	free(a.key);
	/* libnats keeps its own copy for reconnects; ours goes now. */
	tlm_secret_free(a.nats_token);
	if (rc != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		return rc == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_UNREACHABLE;
	}
	if ((rc = start_metrics(srv)) != TLM_EXIT_OK) {
		tlm_metrics_set_collector(NULL, NULL);
		tlm_server_stop(srv);
		return rc;
	}
	printf("%s\n", tlm_server_url(srv));
	fflush(stdout);
	if (tlm_server_max_connections(srv) < a.opts.max_connections)
		tlm_log_cmd(TLM_ENGINE_WARN, NULL,
			    "at most %u connections, not %u: the open files limit (ulimit -n) is "
			    "too low",
			    tlm_server_max_connections(srv), a.opts.max_connections);
	/* Not a status line: -q does not silence it. */
	if (a.opts.api_key == NULL && !tlm_server_loopback(srv))
		tlm_log_cmd(TLM_ENGINE_WARN, NULL,
			    "no auth on %s (--insecure-no-auth): whoever reaches it can run "
			    "programs on this machine",
			    tlm_server_address(srv));
	tlm_log_cmd(TLM_ENGINE_INFO, NULL, "listening on %s (%s)%s%s%s", tlm_server_address(srv),
		    tlm_server_url(srv),
		    a.opts.tls_client_ca_file ? ", client certificates required" : "",
		    a.opts.nats_url ? ", events to NATS" : "", a.opts.api_key ? ", auth on" : "");
	sigwait(&set, &sig);
	if (!cli->quiet)
		tlm_log_cmd(TLM_ENGINE_INFO, NULL, "%s, stopping",
			    sig == SIGINT ? "SIGINT" : "SIGTERM");
	tlm_cli_metrics_finish();
	tlm_metrics_set_collector(NULL, NULL);
	tlm_server_stop(srv);
	return TLM_EXIT_OK;
}
