/* telemachy logs — what the control plane said of how each task attempt of
 * a run ended, as the journal keeps it (docs/logs.md): the built-in control
 * plane's exit status and the last 4 KiB of stdout and stderr, or whatever
 * a worker put in "result" and "note".  Reads the journal only. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"
#include "cli/engine_env.h"
#include "cli/run_journal.h"

typedef struct logs_ctx {
	const char *task; /* "TEAM/SUBJECT", or NULL: every task */
	json_t *out;      /* --output json: the attempts */
	size_t shown;
} logs_ctx;

static void usage(void)
{
	printf("Usage: telemachy logs [--state-dir DIR] [--output text|json] [-f] RUN [TEAM/TASK]\n"
	       "\n"
	       "Print what the control plane said of how each task attempt of RUN ended,\n"
	       "as the journal keeps it: with the built-in control plane the exit status\n"
	       "and the last 4 KiB of the program's stdout and stderr; with another, the\n"
	       "task's result and note as its worker set them.  TEAM/TASK shows one task.\n"
	       "A run collects them when it ends (and `teardown RUN` for a run that died).\n"
	       "\n"
	       "Options:\n"
	       "      --state-dir DIR  the journal's directory (default: $TELEMACHY_STATE_DIR,\n"
	       "                       else $XDG_STATE_HOME/telemachy)\n"
	       "      --journal WHERE  or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                       docs/distributed.md)\n"
	       "      --output FORMAT  text (default) or json\n"
	       "  -f, --follow         print TEAM/TASK's output as it grows, until it ends:\n"
	       "                       a run on `telemachy serve` (AGAMEMNON_URL), not the\n"
	       "                       in-process control plane, which only its run reaches\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit codes: 0 shown, 1 the journal could not be read, 2 usage error, no\n"
	       "such run, or no such task, 3 the control plane could not be reached (-f).\n");
}

/* Program output, escaped line by line: its newlines stay lines. */
static void put_block(const char *title, const char *text)
{
	const char *p = text, *nl;
	char *line;

	printf("-- %s\n", title);
	while (*p != '\0') {
		nl = strchr(p, '\n');
		line = strndup(p, nl != NULL ? (size_t)(nl - p) : strlen(p));
		tlm_cli_put_esc(stdout, line != NULL ? line : "(out of memory)");
		putchar('\n');
		free(line);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

static void put_result(const json_t *doc)
{
	const json_t *res = json_object_get(doc, "result"), *v;
	const char *s;
	char *text;

	if ((v = json_object_get(res, "exitCode")) != NULL && json_is_integer(v))
		printf("exit status %lld\n", (long long)json_integer_value(v));
	if ((v = json_object_get(res, "signal")) != NULL && json_is_integer(v))
		printf("killed by signal %lld\n", (long long)json_integer_value(v));
	if ((s = json_string_value(json_object_get(res, "stdout"))) != NULL)
		put_block("stdout (its last 4 KiB)", s);
	if ((s = json_string_value(json_object_get(res, "stderr"))) != NULL)
		put_block("stderr (its last 4 KiB)", s);
	/* A worker's own result: shown as the JSON it is. */
	if (res != NULL && json_object_get(res, "stdout") == NULL &&
	    json_object_get(res, "stderr") == NULL && json_object_get(res, "exitCode") == NULL &&
	    (text = json_dumps(res, JSON_INDENT(2) | JSON_ENCODE_ANY)) != NULL) {
		put_block("result", text);
		free(text);
	}
	if ((s = json_string_value(json_object_get(doc, "note"))) != NULL)
		put_block("note", s);
}

static int task_cb(const tlm_journal_task *t, void *ctx)
{
	logs_ctx *l = ctx;
	char who[2 * TLM_JOURNAL_NAME_MAX + 2];
	json_t *doc = t->result != NULL ? json_loads(t->result, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(doc, "statusMessage"));

	snprintf(who, sizeof(who), "%s/%s", t->team, t->subject);
	if (l->task != NULL && strcmp(l->task, who) != 0) {
		json_decref(doc);
		return 0;
	}
	l->shown++;
	if (l->out != NULL)
		return json_array_append_new(
			       l->out,
			       json_pack("{s:s, s:s, s:i, s:s?, s:s, s:s?, s:o?}", "team", t->team,
					 "subject", t->subject, "attempt", t->attempt, "remote_id",
					 t->remote_id, "status", tlm_attempt_status_name(t->status),
					 "ended", t->ended, "said", doc)) == 0
			       ? 0
			       : TLM_ERROR;
	fputs(l->shown > 1 ? "\n== " : "== ", stdout);
	tlm_cli_esc(stdout, "%s, attempt %d: %s", who, t->attempt,
		    tlm_attempt_status_name(t->status));
	if (msg != NULL) {
		fputs(" (", stdout);
		tlm_cli_put_esc(stdout, msg);
		putchar(')');
	}
	putchar('\n');
	if (t->ended != NULL) {
		fputs("ended on the control plane: ", stdout);
		tlm_cli_put_esc(stdout, t->ended);
		putchar('\n');
	}
	if (doc != NULL)
		put_result(doc);
	else if (t->ended == NULL)
		printf("nothing kept: %s\n", t->remote_id == NULL
						     ? "it was never submitted"
						     : "the control plane said nothing of its end, "
						       "or the run has not collected it yet");
	json_decref(doc);
	return 0;
}

static int parse_args(tlm_cli *cli, int argc, char **argv, const char **dir, const char **run,
		      const char **task, int *follow)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_STATE_DIR_LONGOPT,
						  { "follow", no_argument, NULL, 'f' },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == 'f')
			*follow = 1;
		else
			*dir = optarg;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind >= argc)
		return tlm_cli_usage_error(cli, "missing the RUN");
	*run = argv[optind++];
	if (optind < argc)
		*task = argv[optind++];
	if (optind < argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	if (*follow && *task == NULL)
		return tlm_cli_usage_error(cli, "--follow needs the TEAM/TASK to follow");
	return 0;
}

/* A piece of output as it comes: each line escaped (a program cannot drive
 * the terminal), its newlines kept; stdout's to stdout, stderr's to stderr. */
static void on_output(void *ctx, const char *stream, const char *data, size_t len)
{
	FILE *f = strcmp(stream, "stderr") == 0 ? stderr : stdout;
	const char *p = data, *end = data + len, *nl;
	char *piece;

	(void)ctx;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		piece = strndup(p, (size_t)((nl != NULL ? nl : end) - p));
		tlm_cli_put_esc(f, piece != NULL ? piece : "(out of memory)");
		free(piece);
		if (nl == NULL)
			break;
		putc('\n', f);
		p = nl + 1;
	}
	fflush(f);
}

/* -f: the task's output as it grows, from the run's control plane. */
static int follow_task(const char *dir, const tlm_journal_run *r, const char *task)
{
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_cli_secrets sec;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	memset(&sec, 0, sizeof(sec));
	eo.state_dir = dir;
	if (tlm_cli_engine_env(&eo, &sec) != 0)
		return TLM_EXIT_USAGE;
	eo.control_plane = tlm_cli_run_control_plane(r, NULL, eo.control_plane);
	tlm_cli_catch_signals(&eo);
	rc = tlm_engine_follow_output(&eo, r->id, task, on_output, NULL, &err);
	tlm_cli_secrets_clear(&sec);
	if (rc == 0)
		return TLM_EXIT_OK;
	tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
	return rc == TLM_EINVALID || rc == TLM_ENOTFOUND ? TLM_EXIT_USAGE : TLM_EXIT_UNREACHABLE;
}

static int show(const tlm_cli *cli, tlm_journal *j, const char *run, logs_ctx *l)
{
	tlm_error err = TLM_ERROR_INIT;
	json_t *doc;
	int rc;

	if (cli->output == TLM_OUTPUT_JSON && (l->out = json_array()) == NULL)
		return TLM_EXIT_FAILED;
	if ((rc = tlm_journal_tasks(j, run, task_cb, l, &err)) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s",
			    err.message[0] ? err.message : "out of memory");
		return TLM_EXIT_FAILED;
	}
	if (l->task != NULL && l->shown == 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "run %s has no task %s", run, l->task);
		return TLM_EXIT_USAGE;
	}
	if (l->out != NULL) {
		doc = json_pack("{s:s, s:O}", "run", run, "attempts", l->out);
		rc = doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2)) != 0;
		json_decref(doc);
		if (rc)
			return TLM_EXIT_FAILED;
		putchar('\n');
	} else if (l->shown == 0) {
		printf("run %s submitted no task\n", run);
	}
	return fflush(stdout) == 0 ? TLM_EXIT_OK : TLM_EXIT_FAILED;
}

int tlm_cmd_logs(tlm_cli *cli, int argc, char **argv)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run r;
	const char *dir = NULL, *run = NULL;
	logs_ctx l = { NULL, NULL, 0 };
	int follow = 0, rc = parse_args(cli, argc, argv, &dir, &run, &l.task, &follow);

	memset(&r, 0, sizeof(r));
	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	if ((rc = tlm_cli_journal_open(dir, &j)) != TLM_EXIT_OK)
		return rc;
	if (j == NULL || (rc = tlm_journal_run_get(j, run, &r, &err)) == TLM_ENOTFOUND ||
	    rc == TLM_EINVALID) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "no run %s", run);
		rc = TLM_EXIT_USAGE;
	} else if (rc != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		rc = TLM_EXIT_FAILED;
	} else {
		tlm_log_set_run(r.id);
		rc = follow ? follow_task(dir, &r, l.task) : show(cli, j, r.id, &l);
	}
	json_decref(l.out);
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}
