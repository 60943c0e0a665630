/* telemachy ui — the web dashboard (docs/ui.md).  The library decides
 * (src/ui/); this maps flags and the environment to options, prints the
 * URL and waits for a signal. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "telemachy/ui.h"
#include "util/secret.h"

enum { OPT_LISTEN = 0x300, OPT_TOKEN_FILE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_INSECURE, OPT_HOST };

static void usage(void)
{
	printf("Usage: telemachy ui [OPTIONS]\n"
	       "\n"
	       "Serve a web dashboard over the journal: the runs, each run's task graph\n"
	       "coloured by state and updating live, every task's output, resources and\n"
	       "audit trail, the cancel, teardown and resume actions, and a JSON API under\n"
	       "/api/ (docs/ui.md).  Prints its URL on the first line of stdout once it\n"
	       "accepts connections; stops on SIGINT or SIGTERM.\n"
	       "\n"
	       "Options:\n"
	       "      --listen HOST:PORT   address to listen on (default 127.0.0.1:0, a free\n"
	       "                           port; [::1]:PORT for IPv6)\n"
	       "      --state-dir DIR      the journal's directory (default: $TELEMACHY_STATE_DIR,\n"
	       "                           else $XDG_STATE_HOME/telemachy)\n"
	       "      --journal WHERE      or a shared one: postgres://... (TELEMACHY_JOURNAL)\n"
	       "      --token-file FILE    require the access token on this file's first line\n"
	       "                           (also TELEMACHY_UI_TOKEN_FILE, or the token itself in\n"
	       "                           TELEMACHY_UI_TOKEN); needed on any address but loopback\n"
	       "      --tls-cert FILE      serve HTTPS with this certificate (PEM) ...\n"
	       "      --tls-key FILE       ... and its key; needed on any address but loopback\n"
	       "      --insecure-http      allow plain HTTP on an address other than loopback\n"
	       "                           (the token then crosses the network in clear text)\n"
	       "      --host NAME          a DNS name the Host header may carry besides the\n"
	       "                           listen address (e.g. behind a reverse proxy)\n"
	       "  -h, --help               show this help\n"
	       "\n"
	       "Exit codes: 0 stopped by a signal, 2 usage error or a refused setting (an\n"
	       "address other than loopback without a token, or without TLS), 3 cannot\n"
	       "listen.\n");
}

static int parse(tlm_cli *cli, int argc, char **argv, tlm_ui_opts *o, const char **token_file)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,
		TLM_CLI_STATE_DIR_LONGOPT,
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "insecure-http", no_argument, NULL, OPT_INSECURE },
		{ "host", required_argument, NULL, OPT_HOST },
		{ 0 }
	};
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		switch (c) {
		case OPT_LISTEN: o->listen = optarg; break;
		case TLM_CLI_OPT_STATE_DIR:
			o->journal = optarg;
			o->journal_given = 1;
			break;
		case OPT_TOKEN_FILE: *token_file = optarg; break;
		case OPT_TLS_CERT: o->tls_cert_file = optarg; break;
		case OPT_TLS_KEY: o->tls_key_file = optarg; break;
		case OPT_INSECURE: o->insecure_http = 1; break;
		case OPT_HOST: o->host_name = optarg; break;
		default: return tlm_cli_usage_error(cli, "unknown option");
		}
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL))
		return tlm_cli_usage_error(cli, "--tls-cert and --tls-key go together");
	if (*token_file == NULL) {
		const char *env = getenv("TELEMACHY_UI_TOKEN_FILE");

		*token_file = env != NULL && env[0] != '\0' ? env : NULL;
	}
	return 0;
}

int tlm_cmd_ui(tlm_cli *cli, int argc, char **argv)
{
	tlm_ui_opts o = TLM_UI_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	const char *token_file = NULL;
	char *token = NULL;
	tlm_ui *ui = NULL;
	sigset_t set;
	int rc = parse(cli, argc, argv, &o, &token_file), sig;

	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc;
	/* The token from a file (flag or environment), else the environment
	 * itself; never argv, which every local user can read. */
	if (token_file != NULL) {
		if (tlm_secret_read_key_file(&token, token_file, &err) != 0)
			return tlm_cli_usage_error(cli, "%s", err.message);
	} else if (getenv("TELEMACHY_UI_TOKEN") != NULL) {
		if (tlm_secret_check_key(getenv("TELEMACHY_UI_TOKEN"), "TELEMACHY_UI_TOKEN",
					 &err) != 0)
			return tlm_cli_usage_error(cli, "%s", err.message);
		if ((token = strdup(getenv("TELEMACHY_UI_TOKEN"))) == NULL)
			return tlm_cli_usage_error(cli, "out of memory");
		/* The commands the actions start need it not (no thread yet). */
		unsetenv("TELEMACHY_UI_TOKEN");
	}
	if (token != NULL) {
		tlm_secret_protect_process(); /* no core file with the token in it */
		o.access_token = token;
	}
	/* Block the stop signals before any thread exists, so that only
	 * sigwait() below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = tlm_ui_new(&ui, &o, &err)) != 0 || (rc = tlm_ui_start(ui, &err)) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		tlm_ui_free(ui);
		tlm_secret_free(token);
		return rc == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_UNREACHABLE;
	}
	printf("%s/\n", tlm_ui_url(ui));
	fflush(stdout);
	while (sigwait(&set, &sig) != 0)
		;
	tlm_ui_free(ui);
	tlm_secret_free(token);
	return TLM_EXIT_OK;
}
