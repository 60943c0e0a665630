/* telemachy doctor: checks the setup a run depends on and says what to fix
 * (docs/doctor.md).  The settings are parsed by the code a run uses
 * (engine_env.c), the journal is read without being changed, and every
 * network wait is bounded by --timeout.  Only the report is printed here;
 * the library answers each question. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine_env.h"
#include "util/redact.h"

#define MAX_CHECKS   24
#define TEXT_MAX     512
#define SKEW_WARN_S  5 /* the Date header has whole seconds: 1 s of it is rounding */
#define STRANDED_MAX 5 /* run ids named in a warning; the rest are counted */

typedef enum { DOC_OK = 0, DOC_WARN, DOC_FAIL } doc_status;

static const char *const status_names[] = { "ok", "warn", "fail" };

typedef struct doc_check {
	const char *name;
	doc_status status;
	char detail[TEXT_MAX];
	char fix[TEXT_MAX]; /* empty for ok */
} doc_check;

typedef struct doctor {
	doc_check checks[MAX_CHECKS];
	size_t n;
	tlm_engine_opts eo;
	tlm_cli_secrets sec;
	int env_ok;
	long timeout_ms;
	const char *state_dir; /* --state-dir, else NULL */
	char shown_url[TEXT_MAX];
	int64_t server_date; /* from the control plane's reply; 0: none */
} doctor;

#define OPT_TIMEOUT 0x1d0
#define OPT_STRICT  0x1d1

static void usage(void)
{
	printf("Usage: telemachy doctor [--state-dir DIR] [--control-plane URL] [--timeout S]\n"
	       "                        [--strict] [--output text|json]\n"
	       "\n"
	       "Check what a run depends on and say what to fix: the environment settings\n"
	       "(parsed as a run parses them), the state directory and its journal, the\n"
	       "control plane (reachable, key accepted, TLS verified), NATS, and the clock\n"
	       "against the control plane's.  One line per check: \"ok|warn|fail  NAME  detail\",\n"
	       "and a \"fix:\" line under each warning or failure.  Changes nothing; never\n"
	       "prints a key, token or URL password.\n"
	       "\n"
	       "Options:\n"
	       "      --state-dir DIR       the journal's directory (default: TELEMACHY_STATE_DIR,\n"
	       "                            then ~/.local/state/telemachy)\n"
	       "      --journal WHERE       or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                            docs/distributed.md)\n"
	       "      --control-plane URL   check this control plane instead of AGAMEMNON_URL\n"
	       "      --timeout S           longest wait for each network check, 1 to 60 seconds\n"
	       "                            (default 5)\n"
	       "      --strict              a warning fails too (exit 1)\n"
	       "      --output FORMAT       text (default) or json: {\"checks\": [{\"name\",\n"
	       "                            \"status\", \"detail\", \"fix\"}], \"ok\": bool}\n"
	       "\n"
	       "Exit codes: 0 no check failed (warnings allowed unless --strict), 1 a check\n"
	       "failed (or warned, with --strict), 2 usage error.\n");
}

static doc_check *add(doctor *d, const char *name, doc_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Appends a check; its fix is set by the caller for warn and fail. */
static doc_check *add(doctor *d, const char *name, doc_status st, const char *fmt, ...)
{
	static doc_check spill; /* past MAX_CHECKS: a programming error, kept harmless */
	doc_check *c = d->n < MAX_CHECKS ? &d->checks[d->n++] : &spill;
	va_list ap;

	c->name = name;
	c->status = st;
	c->fix[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	return c;
}

static void fix(doc_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fix(doc_check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->fix, sizeof(c->fix), fmt, ap);
	va_end(ap);
}

/* ---- configuration ------------------------------------------------------ */

static void check_env(doctor *d)
{
	tlm_error err = TLM_ERROR_INIT;
	doc_check *c;

	d->env_ok = tlm_cli_engine_env_parse(&d->eo, &d->sec, &err) == 0;
	if (d->env_ok) {
		add(d, "config", DOC_OK, "the engine's environment settings parse");
		return;
	}
	c = add(d, "config", DOC_FAIL, "%s", err.message);
	fix(c, "correct or unset that variable (README, \"Configuration\"; docs/engine.md)");
}

static void check_log(doctor *d)
{
	doc_check *c;

	if (!tlm_cli_log_env_bad()) {
		add(d, "logging", DOC_OK, "LOG_LEVEL and LOG_FORMAT are valid");
		return;
	}
	c = add(d, "logging", DOC_FAIL, "LOG_LEVEL or LOG_FORMAT has a value no command accepts");
	fix(c, "LOG_LEVEL=error|warn|info|debug, LOG_FORMAT=plain|json (docs/logging.md)");
}

/* The key file holds a credential: readable by others is a leak waiting
 * to happen (docs/security.md), though not a reason to refuse a run. */
static void check_key_file(doctor *d)
{
	const char *file = getenv("AGAMEMNON_API_KEY_FILE");
	struct stat st;
	doc_check *c;

	if (getenv("AGAMEMNON_API_KEY") != NULL && getenv("AGAMEMNON_API_KEY")[0] != '\0') {
		add(d, "api-key", DOC_OK, "from AGAMEMNON_API_KEY");
		return;
	}
	if (file == NULL || file[0] == '\0') {
		add(d, "api-key", DOC_OK, "none set (the control plane must not require one)");
		return;
	}
	if (stat(file, &st) != 0) {
		c = add(d, "api-key", DOC_FAIL, "AGAMEMNON_API_KEY_FILE %s: %s", file,
			strerror(errno));
		fix(c, "point AGAMEMNON_API_KEY_FILE at a readable file holding the key");
		return;
	}
	if ((st.st_mode & 077) != 0) {
		c = add(d, "api-key", DOC_WARN,
			"AGAMEMNON_API_KEY_FILE %s has mode %04o: group or others may read it",
			file, (unsigned)(st.st_mode & 07777));
		fix(c, "chmod 600 %s", file);
		return;
	}
	add(d, "api-key", DOC_OK, "from AGAMEMNON_API_KEY_FILE %s (mode %04o)", file,
	    (unsigned)(st.st_mode & 07777));
}

/* Whether the URL's host is this machine: plain http there exposes no key
 * on a network (the rule REQUIRE_TLS enforces, docs/security.md). */
static int loopback_http(const char *url, int *plain)
{
	const char *h;

	*plain = strncmp(url, "http://", 7) == 0;
	if (!*plain)
		return 0;
	h = url + 7;
	if (strchr(h, '@') != NULL)
		h = strchr(h, '@') + 1;
	return strncmp(h, "localhost", 9) == 0 || strncmp(h, "127.", 4) == 0 ||
	       strncmp(h, "[::1]", 5) == 0;
}

static void check_url(doctor *d)
{
	const char *url = d->eo.control_plane;
	int plain, local;
	doc_check *c;

	if (url == NULL)
		return;
	local = loopback_http(url, &plain);
	if (!plain || local)
		return;
	if (d->eo.require_tls) {
		c = add(d, "tls", DOC_FAIL,
			"REQUIRE_TLS is on but %s is plain http to another host", d->shown_url);
		fix(c, "use an https:// URL (AGAMEMNON_URL or --control-plane)");
		return;
	}
	c = add(d, "tls", DOC_WARN,
		"%s is plain http to another host: the API key crosses the "
		"network unencrypted",
		d->shown_url);
	fix(c, "use https:// and set REQUIRE_TLS=true (docs/security.md)");
}

/* AUDIT_LOG_PATH is only opened by commands that open the journal; here
 * only whether it could be, without creating it. */
static void check_audit_log(doctor *d)
{
	const char *p = getenv("AUDIT_LOG_PATH");
	char *dir = NULL, *slash;
	struct stat st;
	doc_check *c = NULL;

	if (p == NULL) {
		add(d, "audit-log", DOC_OK, "AUDIT_LOG_PATH not set: no audit log");
		return;
	}
	if (p[0] == '\0')
		c = add(d, "audit-log", DOC_FAIL, "AUDIT_LOG_PATH is set but empty");
	else if (stat(p, &st) == 0)
		c = !S_ISREG(st.st_mode)   ? add(d, "audit-log", DOC_FAIL, "%s is not a file", p)
		    : access(p, W_OK) != 0 ? add(d, "audit-log", DOC_FAIL, "%s is not writable", p)
					   : NULL;
	else if ((dir = strdup(p)) != NULL) {
		slash = strrchr(dir, '/');
		if (slash != NULL)
			*slash = '\0';
		if (access(slash == NULL ? "." : (dir[0] ? dir : "/"), W_OK | X_OK) != 0)
			c = add(d, "audit-log", DOC_FAIL, "%s cannot be created there: %s", p,
				strerror(errno));
	}
	free(dir);
	if (c != NULL)
		fix(c, "name a writable file in AUDIT_LOG_PATH, or unset it (docs/audit.md)");
	else
		add(d, "audit-log", DOC_OK, "AUDIT_LOG_PATH %s can be appended to", p);
}

/* ---- state directory and journal --------------------------------------- */

/* The nearest existing ancestor of a missing dir must let us create it. */
static void check_missing_dir(doctor *d, const char *dir)
{
	char *p = strdup(dir), *slash;
	struct stat st;
	doc_check *c;

	while (p != NULL && (slash = strrchr(p, '/')) != NULL) {
		*slash = '\0';
		if (stat(p[0] ? p : "/", &st) == 0)
			break;
	}
	if (p != NULL && access(p[0] ? p : (dir[0] == '/' ? "/" : "."), W_OK | X_OK) == 0)
		add(d, "state-dir", DOC_OK,
		    "%s does not exist yet: the first run creates it (0700)", dir);
	else {
		c = add(d, "state-dir", DOC_FAIL, "%s does not exist and cannot be created", dir);
		fix(c,
		    "create it (mkdir -m 700 -p %s) or choose another with --state-dir or "
		    "TELEMACHY_STATE_DIR",
		    dir);
	}
	free(p);
}

/* Returns 1 when the directory exists (the journal is worth a look). */
static int check_state_dir(doctor *d, const char *dir)
{
	struct stat st;
	doc_check *c;

	if (stat(dir, &st) != 0) {
		check_missing_dir(d, dir);
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		c = add(d, "state-dir", DOC_FAIL, "%s is not a directory", dir);
		fix(c, "move it aside, or choose another with --state-dir or TELEMACHY_STATE_DIR");
		return 0;
	}
	if (st.st_uid != getuid()) {
		c = add(d, "state-dir", DOC_WARN, "%s belongs to uid %ld, not to you (%ld)", dir,
			(long)st.st_uid, (long)getuid());
		fix(c, "use a state directory of your own (docs/security.md)");
	} else if ((st.st_mode & 077) != 0) {
		c = add(d, "state-dir", DOC_WARN,
			"%s has mode %04o: others may read what the journal knows", dir,
			(unsigned)(st.st_mode & 07777));
		fix(c, "chmod 700 %s", dir);
	} else
		add(d, "state-dir", DOC_OK, "%s (mode 0700)", dir);
	return 1;
}

typedef struct run_count {
	long total, live, stranded;
	char ids[STRANDED_MAX * (TLM_JOURNAL_RUN_ID_LEN + 1) + 1];
} run_count;

static int count_run(const tlm_journal_run *r, void *ctx)
{
	run_count *rc = ctx;
	tlm_journal_owner o = tlm_journal_run_owner(r);

	rc->total++;
	rc->live += o == TLM_JOURNAL_OWNER_ALIVE;
	if (o != TLM_JOURNAL_OWNER_DEAD)
		return 0;
	if (rc->stranded++ < STRANDED_MAX) {
		if (rc->ids[0] != '\0')
			strcat(rc->ids, " ");
		strcat(rc->ids, r->id);
	}
	return 0;
}

static void check_runs(doctor *d, tlm_journal *j)
{
	tlm_error err = TLM_ERROR_INIT;
	run_count n;
	doc_check *c;

	memset(&n, 0, sizeof(n));
	if (tlm_journal_runs(j, NULL, NULL, count_run, &n, &err) != 0) {
		c = add(d, "runs", DOC_FAIL, "%s", err.message);
		fix(c, "see docs/recovery.md");
		return;
	}
	if (n.stranded == 0) {
		add(d, "runs", DOC_OK, "%ld runs, %ld in progress with a live owner", n.total,
		    n.live);
		return;
	}
	c = add(d, "runs", DOC_WARN, "%ld stranded (owner dead, not ended): %s%s; %ld live",
		n.stranded, n.ids, n.stranded > STRANDED_MAX ? " ..." : "", n.live);
	fix(c, "telemachy resume RUN to finish one, or telemachy teardown RUN to delete what it "
	       "created (docs/recovery.md)");
}

/* Returns 1 when the schema is the current one (its runs can be read). */
static int check_schema(doctor *d, tlm_journal *j)
{
	tlm_error err = TLM_ERROR_INIT;
	int v = 0;
	doc_check *c;

	if (tlm_journal_schema_version(j, &v, &err) != 0) {
		c = add(d, "journal", DOC_FAIL, "%s", err.message);
		fix(c, "it is not a telemachy journal: move it aside (docs/recovery.md)");
		return 0;
	}
	if (v > TLM_JOURNAL_SCHEMA_VERSION) {
		c = add(d, "journal", DOC_FAIL,
			"%s: schema version %d is newer than this build's (%d)",
			tlm_journal_path(j), v, TLM_JOURNAL_SCHEMA_VERSION);
		fix(c, "use the newer telemachy that wrote it");
		return 0;
	}
	if (v < TLM_JOURNAL_SCHEMA_VERSION) {
		add(d, "journal", DOC_OK,
		    "%s: integrity ok; schema version %d, migrated to %d by the next command that "
		    "writes",
		    tlm_journal_path(j), v, TLM_JOURNAL_SCHEMA_VERSION);
		return 0;
	}
	add(d, "journal", DOC_OK, "%s: integrity ok, schema version %d", tlm_journal_path(j), v);
	return 1;
}

static void check_journal_file(doctor *d, const char *dir)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	char finding[TEXT_MAX];
	struct stat st;
	doc_check *c;
	int ok = 0;

	if (tlm_journal_open_readonly(&j, dir, &err) != 0) {
		if (err.code == TLM_ENOTFOUND)
			add(d, "journal", DOC_OK, "none yet: the first run creates it");
		else
			fix(add(d, "journal", DOC_FAIL, "%s", err.message),
			    tlm_journal_is_shared(dir)
				    ? "check the URI, that the server is up, and the password "
				      "(PGPASSWORD, ~/.pgpass; docs/distributed.md)"
				    : "make it readable by you (docs/recovery.md)");
		return;
	}
	if (stat(tlm_journal_path(j), &st) == 0 && (st.st_mode & 077) != 0)
		fix(add(d, "journal-mode", DOC_WARN, "%s has mode %04o, not 0600",
			tlm_journal_path(j), (unsigned)(st.st_mode & 07777)),
		    "chmod 600 %s", tlm_journal_path(j));
	if (tlm_journal_quick_check(j, &ok, finding, sizeof(finding), &err) != 0)
		c = add(d, "journal", DOC_FAIL, "%s", err.message);
	else if (!ok)
		c = add(d, "journal", DOC_FAIL, "%s: integrity check: %s", tlm_journal_path(j),
			finding);
	else
		c = NULL;
	if (c != NULL)
		fix(c,
		    "move it aside and keep it for inspection; the runs it knew must be torn down "
		    "by hand (docs/recovery.md)");
	else if (check_schema(d, j))
		check_runs(d, j);
	tlm_journal_close(j);
}

static void check_state(doctor *d)
{
	tlm_error err = TLM_ERROR_INIT;
	char *owned = NULL;
	const char *dir = d->state_dir;

	if (tlm_journal_locate(dir, &owned, &err) != 0) {
		fix(add(d, "state-dir", DOC_FAIL, "%s", err.message),
		    "set TELEMACHY_STATE_DIR or TELEMACHY_JOURNAL, or pass --state-dir or --journal");
		return;
	}
	/* A shared journal has no directory here: the database is the check. */
	if (tlm_journal_is_shared(owned) || check_state_dir(d, owned))
		check_journal_file(d, owned);
	free(owned);
}

/* ---- control plane, NATS, clock ---------------------------------------- */

static void check_control_plane(doctor *d)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_cp_check cp;
	doc_check *c;
	int rc;

	if (d->eo.control_plane == NULL) {
		add(d, "control-plane", DOC_OK,
		    "AGAMEMNON_URL not set: built-in control plane (in-process)");
		return;
	}
	if (!d->env_ok) {
		fix(add(d, "control-plane", DOC_WARN, "%s not checked: the settings do not parse",
			d->shown_url),
		    "fix the config check first");
		return;
	}
	rc = tlm_engine_check_control_plane(&d->eo, d->timeout_ms, &cp, &err);
	d->server_date = cp.server_date;
	if (rc == 0) {
		add(d, "control-plane", DOC_OK, "%s answered (HTTP %ld)%s", d->shown_url, cp.status,
		    strncmp(d->eo.control_plane, "https://", 8) == 0 ? ", TLS verified" : "");
		return;
	}
	if (cp.status == 401 || cp.status == 403) {
		c = add(d, "control-plane", DOC_FAIL, "%s rejected the request (HTTP %ld)",
			d->shown_url, cp.status);
		fix(c, "check AGAMEMNON_API_KEY (or AGAMEMNON_API_KEY_FILE)%s",
		    cp.status == 403 ? ", or AGAMEMNON_CLIENT_CERT and _KEY" : "");
		return;
	}
	c = add(d, "control-plane", DOC_FAIL, "%s", err.message);
	if (cp.unreachable || cp.status == 0)
		fix(c, "is it running at that address?  Check AGAMEMNON_URL (or --control-plane), "
		       "the network, and for https AGAMEMNON_CA_FILE");
	else
		fix(c, "the control plane answered HTTP %ld: see its logs", cp.status);
}

static void check_nats(doctor *d)
{
	tlm_error err = TLM_ERROR_INIT;
	char shown[TEXT_MAX];

	if (d->eo.nats_url == NULL) {
		add(d, "nats", DOC_OK, "not configured: completions by REST only");
		return;
	}
	tlm_redact_url(shown, sizeof(shown), d->eo.nats_url);
	if (!d->env_ok)
		fix(add(d, "nats", DOC_WARN, "%s not checked: the settings do not parse", shown),
		    "fix the config check first");
	else if (tlm_engine_check_nats(&d->eo, d->timeout_ms, &err) == 0)
		add(d, "nats", DOC_OK, "%s connected", shown);
	else
		fix(add(d, "nats", DOC_FAIL, "%s", err.message),
		    "is nats-server running there?  Check NATS_URL and its credentials, or unset "
		    "NATS_URL to rely on REST polling");
}

/* Heartbeats are compared across hosts and --older-than with the control
 * plane's creation times (docs/recovery.md): clocks apart break both. */
static void check_clock(doctor *d)
{
	long long skew;

	if (d->eo.control_plane == NULL) {
		add(d, "clock", DOC_OK, "not compared: the built-in control plane uses this clock");
		return;
	}
	if (d->server_date == 0) {
		add(d, "clock", DOC_OK,
		    "not compared: no reply with a Date header from the control plane");
		return;
	}
	skew = (long long)d->server_date - (long long)time(NULL);
	if (skew > SKEW_WARN_S || skew < -SKEW_WARN_S)
		fix(add(d, "clock", DOC_WARN, "%+llds from the control plane's clock", skew),
		    "synchronise the clocks (NTP): run heartbeats and reconcile --older-than rely "
		    "on them");
	else
		add(d, "clock", DOC_OK, "within %ds of the control plane's", SKEW_WARN_S);
}

/* ---- report ------------------------------------------------------------- */

static int print_json(const doctor *d, int ok)
{
	json_t *doc = json_object(), *arr = json_array();
	size_t i;
	int rc = -1;

	if (doc == NULL || arr == NULL || json_object_set(doc, "checks", arr) != 0 ||
	    json_object_set_new(doc, "ok", json_boolean(ok)) != 0)
		goto done;
	for (i = 0; i < d->n; i++) {
		const doc_check *c = &d->checks[i];

		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?}", "name", c->name,
							 "status", status_names[c->status],
							 "detail", c->detail, "fix",
							 c->fix[0] ? c->fix : NULL)) != 0)
			goto done;
	}
	if (json_dumpf(doc, stdout, JSON_INDENT(2)) == 0) {
		putchar('\n');
		rc = 0;
	}
done:
	json_decref(arr);
	json_decref(doc);
	return rc;
}

static void print_text(const doctor *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		const doc_check *c = &d->checks[i];

		tlm_cli_line(stdout, "%-4s  %-13s  %s", status_names[c->status], c->name,
			     c->detail);
		if (c->fix[0] != '\0')
			tlm_cli_line(stdout, "      fix: %s", c->fix);
	}
}

static int report(const tlm_cli *cli, const doctor *d, int strict)
{
	size_t i;
	int ok = 1;

	for (i = 0; i < d->n; i++)
		if (d->checks[i].status == DOC_FAIL || (strict && d->checks[i].status == DOC_WARN))
			ok = 0;
	if (cli->output == TLM_OUTPUT_JSON) {
		if (print_json(d, ok) != 0) {
			tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "out of memory");
			return TLM_EXIT_FAILED;
		}
	} else
		print_text(d);
	return ok ? TLM_EXIT_OK : TLM_EXIT_FAILED;
}

static int parse_timeout(const tlm_cli *cli, const char *arg, long *ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 1 || v > 60)
		return tlm_cli_usage_error(cli, "--timeout must be 1 to 60 seconds, not \"%s\"",
					   arg);
	*ms = v * 1000;
	return 0;
}

static int run_checks(const tlm_cli *cli, doctor *d, int strict)
{
	int rc;

	check_env(d);
	check_log(d);
	if (d->eo.control_plane != NULL)
		tlm_redact_url(d->shown_url, sizeof(d->shown_url), d->eo.control_plane);
	check_key_file(d);
	check_url(d);
	check_audit_log(d);
	check_state(d);
	check_control_plane(d);
	check_nats(d);
	check_clock(d);
	rc = report(cli, d, strict);
	tlm_cli_secrets_clear(&d->sec);
	return rc;
}

int tlm_cmd_doctor(tlm_cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,
		TLM_CLI_STATE_DIR_LONGOPT,
		{ "control-plane", required_argument, NULL, TLM_CLI_OPT_CONTROL_PLANE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ 0 }
	};
	static doctor d; /* large: not on the stack */
	tlm_engine_opts init = TLM_ENGINE_OPTS_INIT;
	int c, rc, strict = 0;

	memset(&d, 0, sizeof(d));
	d.eo = init;
	d.timeout_ms = 5000;
	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) != 0) {
		if (c < 0)
			return rc;
		if (c == TLM_CLI_OPT_STATE_DIR)
			d.state_dir = optarg;
		else if (c == TLM_CLI_OPT_CONTROL_PLANE)
			d.eo.control_plane = optarg;
		else if (c == OPT_STRICT)
			strict = 1;
		else if (c == OPT_TIMEOUT && parse_timeout(cli, optarg, &d.timeout_ms) != 0)
			return TLM_EXIT_USAGE;
	}
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	return run_checks(cli, &d, strict);
}
