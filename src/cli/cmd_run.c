/* telemachy run — carry out a workflow: configuration from the environment
 * (flags override), signals, and the exit code; the engine does the rest. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/run_output.h"
#include "telemachy/engine.h"
#include "telemachy/spec.h"

#define OPT_DRY_RUN       0x101
#define OPT_MAX_CONC      0x102
#define OPT_STATE_DIR     0x103
#define OPT_CONTROL_PLANE 0x104
#define OPT_NATS          0x105
#define OPT_TIMEOUT       0x106
#define OPT_CONNECTIONS   0x107
#define OPT_CONN_MODE     0x108
#define KEY_FILE_MAX      4096

static volatile sig_atomic_t interrupts;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupts < 2)
		interrupts++;
}

static void usage(void)
{
	printf("Usage: telemachy run [OPTIONS] FILE\n"
	       "\n"
	       "Run the workflow in FILE: provision its agents and teams, submit its tasks\n"
	       "in dependency order, follow them to completion, tear down by its policy.\n"
	       "With no AGAMEMNON_URL the built-in control plane runs in-process.\n"
	       "\n"
	       "Options:\n"
	       "      --dry-run             go through the run against an in-memory control\n"
	       "                            plane: nothing is created, nothing runs\n"
	       "      --max-concurrent N    requests in flight at once (default 16)\n"
	       "      --control-plane URL   overrides AGAMEMNON_URL\n"
	       "      --nats URL            overrides NATS_URL\n"
	       "      --state-dir DIR       the journal's directory (TELEMACHY_STATE_DIR)\n"
	       "      --request-timeout S   seconds per control-plane request (default 30)\n"
	       "      --max-connections N   connections open at once (default 8 to a remote\n"
	       "                            control plane, else --max-concurrent)\n"
	       "      --connection MODE     fresh (one request per connection; the default\n"
	       "                            for a remote control plane) or reuse\n"
	       "      --output FORMAT       text (default) or json (the summary on stdout)\n"
	       "  -q, --quiet               only warnings, errors and the summary\n"
	       "  -v, --verbose             debug lines too\n"
	       "  -h, --help                show this help\n"
	       "\n"
	       "Environment: AGAMEMNON_URL, AGAMEMNON_API_KEY or AGAMEMNON_API_KEY_FILE,\n"
	       "AGAMEMNON_CA_FILE, REQUIRE_TLS, AGAMEMNON_RATE_LIMIT_RPS, _BURST, NATS_URL,\n"
	       "NATS_CREDS, TELEMACHY_STATE_DIR (docs/engine.md).\n"
	       "\n"
	       "Exit codes: 0 every task completed, 1 the workflow failed or timed out,\n"
	       "2 usage or validation error, 3 control plane or NATS unreachable,\n"
	       "4 teardown left resources, 130 interrupted.\n");
}

typedef struct run_args {
	tlm_engine_opts eo;
	const char *file;
	char *key; /* from AGAMEMNON_API_KEY_FILE, owned */
} run_args;

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && s[0] != '-' && *out >= 1 && *out <= max
		       ? 0
		       : -1;
}

static int parse_opts(tlm_cli *cli, int argc, char **argv, run_args *a)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "max-concurrent", required_argument, NULL, OPT_MAX_CONC },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "control-plane", required_argument, NULL, OPT_CONTROL_PLANE },
		{ "nats", required_argument, NULL, OPT_NATS },
		{ "request-timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "max-connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "connection", required_argument, NULL, OPT_CONN_MODE },
		{ 0 }
	};
	unsigned long v;
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		switch (c) {
		case OPT_DRY_RUN: a->eo.dry_run = 1; break;
		case OPT_MAX_CONC:
			if (parse_uint(optarg, 1024, &v) != 0)
				return tlm_cli_usage_error(
					cli, "--max-concurrent must be 1 to 1024, not \"%s\"",
					optarg);
			a->eo.max_concurrent = (unsigned)v;
			break;
		case OPT_STATE_DIR: a->eo.state_dir = optarg; break;
		case OPT_CONTROL_PLANE: a->eo.base_url = optarg; break;
		case OPT_NATS: a->eo.nats_url = optarg; break;
		case OPT_TIMEOUT:
			if (parse_uint(optarg, 3600, &v) != 0)
				return tlm_cli_usage_error(
					cli,
					"--request-timeout must be 1 to 3600 seconds, not \"%s\"",
					optarg);
			a->eo.request_timeout_ms = (long)v * 1000;
			break;
		case OPT_CONNECTIONS:
			if (parse_uint(optarg, 1024, &v) != 0)
				return tlm_cli_usage_error(
					cli, "--max-connections must be 1 to 1024, not \"%s\"",
					optarg);
			a->eo.max_connections = (unsigned)v;
			break;
		case OPT_CONN_MODE:
			if (strcmp(optarg, "fresh") != 0 && strcmp(optarg, "reuse") != 0)
				return tlm_cli_usage_error(
					cli, "--connection must be fresh or reuse, not \"%s\"",
					optarg);
			a->eo.fresh_connection = strcmp(optarg, "fresh") == 0;
			break;
		}
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind >= argc)
		return tlm_cli_usage_error(cli, "missing the workflow FILE");
	if (optind + 1 < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind + 1]);
	a->file = argv[optind];
	return 0;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The key file's first line; its content never appears in a message. */
static int read_key_file(const char *path, char **out)
{
	char buf[KEY_FILE_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "telemachy run: AGAMEMNON_API_KEY_FILE %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (n > KEY_FILE_MAX || buf[0] == '\0') {
		fprintf(stderr, "telemachy run: AGAMEMNON_API_KEY_FILE %s: %s\n", path,
			buf[0] == '\0' ? "empty" : "over 4096 bytes");
		return -1;
	}
	*out = strdup(buf);
	return *out != NULL ? 0 : -1;
}

static int parse_bool(const char *name, const char *v, int *out)
{
	if (strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
		*out = 1;
	else if (strcasecmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
		*out = 0;
	else {
		fprintf(stderr, "telemachy run: %s must be true or false, not \"%s\"\n", name, v);
		return -1;
	}
	return 0;
}

/* Settings from the environment, below the flags; a bad one is an error of
 * this command only (LESSONS 18). */
static int read_env(run_args *a)
{
	const char *v;
	char *end;

	if (a->eo.base_url == NULL)
		a->eo.base_url = env("AGAMEMNON_URL");
	if (a->eo.nats_url == NULL)
		a->eo.nats_url = env("NATS_URL");
	a->eo.nats_creds_file = env("NATS_CREDS");
	a->eo.ca_file = env("AGAMEMNON_CA_FILE");
	a->eo.api_key = env("AGAMEMNON_API_KEY");
	if (a->eo.api_key == NULL && (v = env("AGAMEMNON_API_KEY_FILE")) != NULL) {
		if (read_key_file(v, &a->key) != 0)
			return -1;
		a->eo.api_key = a->key;
	}
	if ((v = env("REQUIRE_TLS")) != NULL &&
	    parse_bool("REQUIRE_TLS", v, &a->eo.require_tls) != 0)
		return -1;
	if ((v = env("AGAMEMNON_RATE_LIMIT_RPS")) != NULL) {
		a->eo.rate_rps = strtod(v, &end);
		if (*end != '\0' || end == v || !(a->eo.rate_rps > 0 && a->eo.rate_rps <= 100000)) {
			fprintf(stderr,
				"telemachy run: AGAMEMNON_RATE_LIMIT_RPS must be a number above 0, not \"%s\"\n",
				v);
			return -1;
		}
	}
	if ((v = env("AGAMEMNON_RATE_LIMIT_BURST")) != NULL) {
		unsigned long b;

		if (parse_uint(v, 1000000, &b) != 0) {
			fprintf(stderr,
				"telemachy run: AGAMEMNON_RATE_LIMIT_BURST must be a whole number above 0, not \"%s\"\n",
				v);
			return -1;
		}
		a->eo.rate_burst = (unsigned)b;
	}
	return 0;
}

static int read_text(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap + 1), *p;

	if (f == NULL || buf == NULL) {
		if (f != NULL)
			fclose(f);
		free(buf);
		return -1;
	}
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if (cap > TLM_SPEC_MAX_BYTES || (p = realloc(buf, cap * 2 + 1)) == NULL)
				break;
			buf = p;
			cap *= 2;
		}
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static int exit_code(const tlm_engine_result *r)
{
	if (r->abandoned)
		return TLM_EXIT_INTERRUPTED;
	if (r->outcome == TLM_ENGINE_PREFLIGHT_FAILED)
		return TLM_EXIT_UNREACHABLE;
	if (r->torn_down && r->nleftovers > 0)
		return TLM_EXIT_TEARDOWN;
	switch (r->outcome) {
	case TLM_ENGINE_COMPLETED: return TLM_EXIT_OK;
	case TLM_ENGINE_CANCELLED: return TLM_EXIT_INTERRUPTED;
	default: return TLM_EXIT_FAILED;
	}
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a wait ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void after_abandon(const tlm_engine_result *r)
{
	fprintf(stderr,
		"telemachy: run %s was left as it was: the journal %s records every resource it created.\n"
		"Delete them with `telemachy teardown %s` (or find strays with `telemachy reconcile`).\n",
		r->run_id, r->journal_path ? r->journal_path : "(none)", r->run_id);
}

int tlm_cmd_run(tlm_cli *cli, int argc, char **argv)
{
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	run_args a = { eo, NULL, NULL };
	tlm_engine_result res;
	tlm_error err = TLM_ERROR_INIT;
	tlm_run_output out;
	tlm_spec *spec = NULL;
	char *text = NULL;
	int rc = parse_opts(cli, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc;
	if (read_env(&a) != 0) {
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	if ((rc = tlm_cli_load_spec(&spec, a.file)) != TLM_EXIT_OK)
		goto done;
	if (read_text(a.file, &text) != 0) {
		fprintf(stderr, "telemachy run: %s: %s\n", a.file, strerror(errno));
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	tlm_run_output_init(&out, cli);
	a.eo.spec = spec;
	a.eo.spec_text = text;
	a.eo.interrupts = &interrupts;
	a.eo.observe = tlm_run_output_observe;
	a.eo.observe_ctx = &out;
	install_signals();
	rc = tlm_engine_run(&a.eo, &res, &err);
	tlm_run_output_done(&out);
	if (rc != 0) {
		/* The run could not start (nothing was created): a bad setting is
		 * a usage error, anything else (journal, memory) a failure. */
		fprintf(stderr, "telemachy run: %s\n", err.message);
		rc = rc == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_FAILED;
	} else {
		rc = exit_code(&res);
		if (res.outcome == TLM_ENGINE_PREFLIGHT_FAILED)
			fprintf(stderr,
				"telemachy run: preflight failed, nothing was created: %s\n",
				res.error);
		if (tlm_run_output_result(&out, &res, rc) != 0 && rc == TLM_EXIT_OK)
			rc = TLM_EXIT_FAILED;
		if (res.abandoned)
			after_abandon(&res);
	}
	tlm_engine_result_clear(&res);
done:
	free(text);
	free(a.key);
	tlm_spec_free(spec);
	return rc;
}
