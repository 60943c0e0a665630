/* The read-only tools on the journal: list_runs, run_status, task_output
 * (docs/mcp.md).  The documents are the report module's, so an assistant
 * sees what `list` / `status --output json` print; only their length is
 * capped here.  The journal is opened per call and never created: a typo'd
 * --state-dir must not leave an empty journal behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mcp/mcp_internal.h"
#include "telemachy/report.h"

int tlm_mcp__journal_open(tlm_mcp *m, tlm_journal **j, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	char *where = NULL, *db = NULL;
	struct stat st;
	int rc = 0;

	*j = NULL;
	if (tlm_journal_locate(m->o.journal, &where, &err) != 0)
		return tlm_mcp__set_failure(out, "the journal: %s", err.message);
	if (!tlm_journal_is_shared(where)) {
		if (asprintf(&db, "%s/%s", where, TLM_JOURNAL_FILE) < 0) {
			db = NULL;
			rc = tlm_mcp__set_failure(out, "out of memory");
			goto done;
		}
		if (stat(db, &st) != 0 && errno == ENOENT)
			goto done; /* no journal yet: no runs */
	}
	if (tlm_journal_open(j, where, &err) != 0)
		rc = tlm_mcp__set_failure(out, "the journal: %s", err.message);
done:
	free(db);
	free(where);
	return rc;
}

/* Keeps the first max items of doc[key]; records the full count in
 * trunc[key] when it cut. */
static int cap_list(json_t *doc, const char *key, size_t max, json_t *trunc)
{
	json_t *list = json_object_get(doc, key);
	size_t n = json_array_size(list);

	if (n <= max)
		return 0;
	while (json_array_size(list) > max)
		if (json_array_remove(list, json_array_size(list) - 1) != 0)
			return -1;
	return json_object_set_new(trunc, key, json_integer((json_int_t)n));
}

int tlm_mcp__list_runs(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_run_state st;
	const char *state = json_string_value(json_object_get(args, "state"));
	const char *workflow = json_string_value(json_object_get(args, "workflow"));
	json_t *lim = json_object_get(args, "limit"), *doc = NULL, *runs;
	size_t limit = lim != NULL ? (size_t)json_integer_value(lim) : 100, total;

	if (state != NULL && tlm_run_state_parse(state, &st) != 0)
		return tlm_mcp__set_failure(out, "no run state \"%.64s\"", state);
	if (tlm_mcp__journal_open(m, &j, out) != 0)
		return TLM_ERROR;
	if (j == NULL) {
		out->result = json_pack("{s:[]}", "runs");
		return 0;
	}
	if (tlm_report_runs(j, state != NULL ? &st : NULL, workflow, &doc, &err) != 0) {
		tlm_journal_close(j);
		return tlm_mcp__set_failure(out, "reading the journal: %s", err.message);
	}
	tlm_journal_close(j);
	runs = json_object_get(doc, "runs");
	total = json_array_size(runs);
	while (json_array_size(runs) > limit)
		json_array_remove(runs, json_array_size(runs) - 1);
	if (total > limit) {
		json_object_set_new(doc, "truncated", json_true());
		json_object_set_new(doc, "total", json_integer((json_int_t)total));
	}
	out->result = doc;
	return 0;
}

/* The run named by args "run", or the newest; failures set in out. */
static int find_run(tlm_journal *j, json_t *args, tlm_journal_run *r, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	const char *run = json_string_value(json_object_get(args, "run"));
	int rc;

	if (j == NULL)
		return tlm_mcp__set_failure(out, "the journal has no runs yet");
	if (run == NULL) {
		if ((rc = tlm_journal_latest_run(j, id, &err)) == TLM_ENOTFOUND)
			return tlm_mcp__set_failure(out, "the journal has no runs yet");
		if (rc != 0)
			return tlm_mcp__set_failure(out, "reading the journal: %s", err.message);
		run = id;
	}
	rc = tlm_journal_run_get(j, run, r, &err);
	if (rc == TLM_ENOTFOUND || rc == TLM_EINVALID)
		return tlm_mcp__set_failure(out, "no run \"%.64s\" in the journal", run);
	if (rc != 0)
		return tlm_mcp__set_failure(out, "reading the journal: %s", err.message);
	return 0;
}

int tlm_mcp__run_status(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run r;
	json_t *doc = NULL, *trunc = json_object();
	int rc;

	memset(&r, 0, sizeof(r));
	if (trunc == NULL || tlm_mcp__journal_open(m, &j, out) != 0 ||
	    find_run(j, args, &r, out) != 0) {
		rc = TLM_ERROR;
		goto done;
	}
	if ((rc = tlm_report_run(j, &r, &doc, &err)) != 0) {
		tlm_mcp__set_failure(out, "reading the journal: %s", err.message);
		goto done;
	}
	/* A run of 100,000 tasks is more than any assistant can read: the
	 * first TLM_MCP_LIST_MAX of each list, and the full counts. */
	if (cap_list(doc, "resources", TLM_MCP_LIST_MAX, trunc) != 0 ||
	    cap_list(doc, "tasks", TLM_MCP_LIST_MAX, trunc) != 0 ||
	    cap_list(doc, "audit", TLM_MCP_LIST_MAX, trunc) != 0 ||
	    (json_object_size(trunc) > 0 && json_object_set(doc, "truncated", trunc) != 0)) {
		rc = tlm_mcp__set_failure(out, "out of memory");
		goto done;
	}
	out->result = doc;
	doc = NULL;
done:
	json_decref(doc);
	json_decref(trunc);
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}

typedef struct find_task {
	const char *team, *subject;
	int attempt; /* 0: the last */
	int attempts;
	json_t *found; /* the chosen attempt */
} find_task;

static int task_cb(const tlm_journal_task *t, void *ctx)
{
	find_task *f = ctx;
	json_t *said;

	if (strcmp(t->team, f->team) != 0 || strcmp(t->subject, f->subject) != 0)
		return 0;
	f->attempts++;
	if (f->attempt != 0 && t->attempt != f->attempt)
		return 0;
	if (f->found != NULL &&
	    t->attempt <= json_integer_value(json_object_get(f->found, "attempt")))
		return 0;
	said = t->result != NULL ? json_loads(t->result, 0, NULL) : NULL;
	json_decref(f->found);
	f->found = json_pack("{s:s, s:s, s:i, s:s, s:s?, s:s?, s:o?}", "team", t->team, "subject",
			     t->subject, "attempt", t->attempt, "status",
			     tlm_attempt_status_name(t->status), "remote_id", t->remote_id, "ended",
			     t->ended, "said", said);
	return f->found != NULL ? 0 : TLM_ERROR;
}

/* Keeps the last max bytes of said.result[stream], on a UTF-8 boundary;
 * says so in notes. */
static int cap_stream(json_t *said, const char *stream, size_t max, json_t *notes)
{
	json_t *res = json_object_get(said, "result");
	json_t *v = json_object_get(res, stream);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v), cut;
	char note[128];

	if (s == NULL || n <= max)
		return 0;
	cut = n - max;
	while (cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut++; /* not in the middle of a character */
	snprintf(note, sizeof(note), "%s: cut to its last %zu bytes (of %zu kept)", stream, n - cut,
		 n);
	if (json_object_set_new(res, stream, json_stringn(s + cut, n - cut)) != 0 ||
	    json_array_append_new(notes, json_string(note)) != 0)
		return -1;
	return 0;
}

int tlm_mcp__task_output(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run r;
	find_task f = { json_string_value(json_object_get(args, "team")),
			json_string_value(json_object_get(args, "subject")),
			(int)json_integer_value(json_object_get(args, "attempt")), 0, NULL };
	json_t *mb = json_object_get(args, "max_bytes"), *notes = json_array();
	size_t max = mb != NULL ? (size_t)json_integer_value(mb) : TLM_MCP_OUTPUT_MAX;
	int rc = TLM_ERROR;

	memset(&r, 0, sizeof(r));
	if (notes == NULL || tlm_mcp__journal_open(m, &j, out) != 0 ||
	    find_run(j, args, &r, out) != 0)
		goto done;
	if (tlm_journal_tasks(j, r.id, task_cb, &f, &err) != 0) {
		tlm_mcp__set_failure(out, "reading the journal: %s",
				     err.message[0] ? err.message : "out of memory");
		goto done;
	}
	if (f.found == NULL) {
		if (f.attempts > 0)
			tlm_mcp__set_failure(out, "run %s's task %s/%s has no attempt %d", r.id,
					     f.team, f.subject, f.attempt);
		else
			tlm_mcp__set_failure(out, "run %s has no task %s/%s", r.id, f.team,
					     f.subject);
		goto done;
	}
	if (json_object_get(f.found, "said") == NULL &&
	    json_array_append_new(notes, json_string("nothing kept: the task never ended, or the "
						     "run has not collected its end yet")) != 0)
		goto oom;
	if (cap_stream(json_object_get(f.found, "said"), "stdout", max, notes) != 0 ||
	    cap_stream(json_object_get(f.found, "said"), "stderr", max, notes) != 0 ||
	    json_object_set_new(f.found, "run", json_string(r.id)) != 0 ||
	    json_object_set_new(f.found, "attempts", json_integer(f.attempts)) != 0 ||
	    json_object_set(f.found, "notes", notes) != 0)
		goto oom;
	out->result = f.found;
	f.found = NULL;
	rc = 0;
	goto done;
oom:
	tlm_mcp__set_failure(out, "out of memory");
done:
	json_decref(f.found);
	json_decref(notes);
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}
