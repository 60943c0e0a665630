/* The CLI's logger (log.h, docs/logging.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/log.h"
#include "telemachy/journal.h"
#include "util/clock.h"

static struct {
	tlm_engine_level level; /* from LOG_LEVEL */
	int json;
	int quiet, verbose;
	const char *command;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
} lg = { TLM_ENGINE_INFO, 0, 0, 0, NULL, "" };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int env_word(const char *name, const char *const *words, int n, int *out)
{
	const char *v = getenv(name);
	int i;

	if (v == NULL || v[0] == '\0')
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(v, words[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

int tlm_log_setup(void)
{
	static const char *const formats[] = { "plain", "json" };
	int level = (int)TLM_ENGINE_INFO, json = 0;

	if (env_word("LOG_FORMAT", formats, 2, &json) != 0) {
		tlm_cli_line(stderr, "telemachy: LOG_FORMAT must be plain or json, not \"%s\"",
			     getenv("LOG_FORMAT"));
		return -1;
	}
	lg.json = json;
	if (env_word("LOG_LEVEL", level_names, 4, &level) != 0) {
		tlm_log_raw(TLM_ENGINE_ERROR, NULL,
			    "telemachy: LOG_LEVEL must be error, warn, info or debug, not \"%s\"",
			    getenv("LOG_LEVEL"));
		return -1;
	}
	lg.level = (tlm_engine_level)level;
	return 0;
}

void tlm_log_set_command(const char *command)
{
	lg.command = command;
}

void tlm_log_set_flags(int quiet, int verbose)
{
	lg.quiet = quiet;
	lg.verbose = verbose;
}

void tlm_log_set_run(const char *run_id)
{
	snprintf(lg.run, sizeof(lg.run), "%s", run_id != NULL ? run_id : "");
}

int tlm_log_enabled(tlm_engine_level level)
{
	tlm_engine_level min = lg.verbose ? TLM_ENGINE_DEBUG
			       : lg.quiet
				       ? (lg.level > TLM_ENGINE_WARN ? lg.level : TLM_ENGINE_WARN)
				       : lg.level;

	return level == TLM_ENGINE_ERROR || level >= min;
}

int tlm_log_json(void)
{
	return lg.json;
}

/* One JSON record on stderr; 0, or -1 when it could not be made. */
static int put_json(tlm_engine_level level, const char *run, json_t *fields, const char *msg,
		    long long elapsed_ms)
{
	char ts[40], *text;
	json_t *o;
	int rc = -1;

	tlm_utc_now(ts, sizeof(ts));
	o = json_pack("{s:s, s:s}", "ts", ts, "level", level_names[level]);
	/* Absent rather than null: a record about no run has no "run". */
	if (o != NULL && lg.command != NULL)
		json_object_set_new(o, "cmd", json_string(lg.command));
	if (o != NULL && run != NULL && run[0] != '\0')
		json_object_set_new(o, "run", json_string(run));
	if (o != NULL)
		json_object_set_new(o, "msg", json_string(msg));
	if (o != NULL && elapsed_ms >= 0)
		json_object_set_new(o, "elapsed_ms", json_integer(elapsed_ms));
	if (o != NULL && fields != NULL)
		json_object_update_missing(o, fields);
	/* ASCII only: a record may reach a terminal, and bidi marks or
	 * controls in a message must not act there. */
	text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER)
			 : NULL;
	if (text != NULL) {
		fprintf(stderr, "%s\n", text);
		rc = 0;
	}
	free(text);
	json_decref(o);
	return rc;
}

static void vrecord(tlm_engine_level level, json_t *fields, int prefix, const char *fmt, va_list ap)
{
	char *msg = NULL;
	va_list copy;

	if (!tlm_log_enabled(level)) {
		json_decref(fields);
		return;
	}
	va_copy(copy, ap);
	if (lg.json && vasprintf(&msg, fmt, copy) >= 0 &&
	    put_json(level, lg.run, fields, msg, -1) == 0)
		goto done;
	/* One line, even when serve's threads log at once. */
	flockfile(stderr);
	if (prefix)
		fprintf(stderr, "telemachy%s%s: %s", lg.command ? " " : "",
			lg.command ? lg.command : "", level == TLM_ENGINE_WARN ? "warning: " : "");
	tlm_cli_vesc(stderr, fmt, ap);
	putc('\n', stderr);
	funlockfile(stderr);
done:
	va_end(copy);
	free(msg);
	json_decref(fields);
}

void tlm_log_vcmd(tlm_engine_level level, json_t *fields, const char *fmt, va_list ap)
{
	vrecord(level, fields, 1, fmt, ap);
}

void tlm_log_cmd(tlm_engine_level level, json_t *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(level, fields, 1, fmt, ap);
	va_end(ap);
}

void tlm_log_raw(tlm_engine_level level, json_t *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(level, fields, 0, fmt, ap);
	va_end(ap);
}

void tlm_log_run(tlm_engine_level level, const char *run_id, uint64_t elapsed_ms,
		 const char *message)
{
	if (!tlm_log_enabled(level))
		return;
	if (lg.json && put_json(level, run_id, NULL, message, (long long)elapsed_ms) == 0)
		return;
	fprintf(stderr, "[%6.2fs] ", (double)elapsed_ms / 1000.0);
	if (level == TLM_ENGINE_WARN || level == TLM_ENGINE_ERROR)
		fprintf(stderr, "%s: ", level == TLM_ENGINE_WARN ? "warning" : "error");
	/* A message quotes what the control plane said (names, ids, errors):
	 * escaped, it stays one line and drives nothing. */
	tlm_cli_put_esc(stderr, message);
	putc('\n', stderr);
}
