/* What the control plane says of how a task attempt ended (docs/logs.md):
 * its "result" (the built-in server: exit status and the tails of stdout
 * and stderr; a worker of upstream's: whatever it put there), "note" and
 * "statusMessage".  Collected from the listing at the end of a run
 * (endwork.c), journaled with the attempt, and the last line of a failed
 * task's stderr kept for the summary. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/json.h"

#define ERR_LINE_MAX 240 /* bytes of a stderr line the summary shows */

static const char *const kept_keys[] = { "result", "note", "statusMessage" };

char *tlm_eng__result_text(const json_t *task)
{
	json_t *o = json_object(), *v;
	char *text = NULL;
	size_t i;

	for (i = 0; o != NULL && i < sizeof(kept_keys) / sizeof(kept_keys[0]); i++)
		if ((v = json_object_get(task, kept_keys[i])) != NULL && !json_is_null(v))
			json_object_set(o, kept_keys[i], v);
	if (o != NULL && json_object_size(o) > 0)
		text = tlm_json_dump_body(o);
	/* A worker's result may be huge: past the journal's cap only the
	 * short keys stay, and the result says it was not kept. */
	if (text != NULL && strlen(text) > TLM_JOURNAL_RESULT_MAX) {
		free(text);
		json_object_set_new(o, "result", json_string("(over 16384 bytes: not kept)"));
		text = tlm_json_dump_body(o);
		if (text != NULL && strlen(text) > TLM_JOURNAL_RESULT_MAX) {
			free(text);
			text = NULL;
		}
	}
	json_decref(o);
	return text;
}

/* The last non-empty line of result.stderr, cut to ERR_LINE_MAX bytes at a
 * character boundary; NULL when there is none. */
static char *last_err_line(const json_t *task)
{
	const char *s =
		json_string_value(json_object_get(json_object_get(task, "result"), "stderr"));
	size_t end, start, n;
	char *line;

	if (s == NULL)
		return NULL;
	end = strlen(s);
	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r' || s[end - 1] == ' '))
		end--;
	if (end == 0)
		return NULL;
	start = end;
	while (start > 0 && s[start - 1] != '\n')
		start--;
	n = end - start;
	if (n > ERR_LINE_MAX) {
		n = ERR_LINE_MAX;
		while (n > 0 && ((unsigned char)s[start + n] & 0xc0) == 0x80)
			n--; /* not inside a character */
	}
	if ((line = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(line, s + start, n);
	line[n] = '\0';
	return line;
}

int tlm_eng__result_seen(eng *e, const char *team, const char *subject, int attempt,
			 const char *remote_id, const json_t *task)
{
	tlm_error err = TLM_ERROR_INIT;
	char *text = tlm_eng__result_text(task);
	size_t i;
	int rc;

	if (text == NULL)
		return 0; /* nothing said, or no memory: the run goes on without it */
	rc = tlm_journal_task_result(e->j, e->run_id, team, subject, attempt, text, &err);
	free(text);
	if (rc != 0)
		return tlm_eng__journal_check(e, rc, &err);
	/* The summary's line, for the last attempt of a task of this run. */
	if (e->spec != NULL && e->tasks != NULL && tlm_strmap_get(&e->by_id, remote_id, &i) == 0 &&
	    e->tasks[i].attempt == attempt) {
		free(e->tasks[i].err_line);
		e->tasks[i].err_line = last_err_line(task);
	}
	return 0;
}
