/* The JSON API (docs/ui.md, "The API"): /api/runs and /api/runs/RUN are
 * exactly what `list --output json` and `status --output json` print
 * (src/report/), so every reader says the same; the graph and a task's
 * output are what the run page needs besides. */
#include <stdlib.h>
#include <string.h>

#include "telemachy/report.h"
#include "ui/ui_internal.h"

/* The journal's failure as a response: 500 (it is ours, not the client's). */
static void journal_failed(tlm_ui_resp *res, const tlm_error *err)
{
	tlm_ui__error(res, 500, "the journal cannot be read: %s", err->message);
}

void tlm_ui__api_runs(tlm_ui_req *r, tlm_ui_resp *res)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_run_state st;
	char buf[64];
	const char *state = tlm_ui__query(r, "state", buf, sizeof(buf));
	json_t *out = NULL;

	if (state != NULL && state[0] != '\0' && tlm_run_state_parse(state, &st) != 0) {
		tlm_ui__error(res, 400, "unknown state \"%s\" (docs/output.md)", state);
		return;
	}
	if (tlm_ui__journal(r->ui, &j, &err) != 0) {
		journal_failed(res, &err);
		return;
	}
	if (j == NULL) {
		tlm_ui__json(res, 200, json_pack("{s:[]}", "runs"));
		return;
	}
	if (tlm_report_runs(j, state != NULL && state[0] != '\0' ? &st : NULL, NULL, &out, &err) !=
	    0)
		journal_failed(res, &err);
	else
		tlm_ui__json(res, 200, out);
	tlm_journal_close(j);
}

/* Opens the journal and reads run_id; 0, or res is filled (404, 500). */
static int get_run(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, tlm_journal **j,
		   tlm_journal_run *run)
{
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	memset(run, 0, sizeof(*run));
	if (tlm_ui__journal(r->ui, j, &err) != 0) {
		journal_failed(res, &err);
		return -1;
	}
	if (*j == NULL) {
		tlm_ui__error(res, 404, "no run %s (there is no journal yet)", run_id);
		return -1;
	}
	if ((rc = tlm_journal_run_get(*j, run_id, run, &err)) != 0) {
		if (rc == TLM_ENOTFOUND)
			tlm_ui__error(res, 404, "no run %s", run_id);
		else
			journal_failed(res, &err);
		tlm_journal_close(*j);
		*j = NULL;
		return -1;
	}
	return 0;
}

void tlm_ui__api_run(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run run;
	tlm_journal *j;
	json_t *out = NULL;

	if (get_run(r, res, run_id, &j, &run) != 0)
		return;
	if (tlm_report_run(j, &run, &out, &err) != 0)
		journal_failed(res, &err);
	else
		tlm_ui__json(res, 200, out);
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
}

void tlm_ui__api_graph(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run run;
	tlm_ui_graph g;
	tlm_journal *j;
	json_t *doc;

	memset(&g, 0, sizeof(g));
	if (get_run(r, res, run_id, &j, &run) != 0)
		return;
	if (tlm_ui__graph_load(j, &run, &g, &err) != 0) {
		journal_failed(res, &err);
	} else if ((doc = tlm_ui__graph_json(&g)) == NULL) {
		tlm_ui__error(res, 500, "out of memory");
	} else {
		json_object_set_new(doc, "run", json_string(run.id));
		json_object_set_new(doc, "state", json_string(tlm_run_state_name(run.state)));
		json_object_set_new(doc, "final", json_boolean(tlm_run_state_is_final(run.state)));
		tlm_ui__json(res, 200, doc);
	}
	tlm_ui__graph_clear(&g);
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
}

typedef struct output_ctx {
	const char *team, *subject;
	json_t *attempts;
	int failed;
} output_ctx;

static int on_output(const tlm_journal_task *t, void *ctx)
{
	output_ctx *o = ctx;
	json_t *said;

	if (strcmp(t->team, o->team) != 0 || strcmp(t->subject, o->subject) != 0)
		return 0;
	said = t->result != NULL ? json_loads(t->result, 0, NULL) : NULL;
	/* The same shape as `logs --output json` (docs/logs.md). */
	if (json_array_append_new(o->attempts,
				  json_pack("{s:i, s:s?, s:s, s:s?, s:s?, s:o?}", "attempt",
					    t->attempt, "remote_id", t->remote_id, "status",
					    tlm_attempt_status_name(t->status), "updated_at",
					    t->updated_at, "ended", t->ended, "said", said)) != 0)
		o->failed = 1;
	return 0;
}

void tlm_ui__api_output(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, const char *team,
			const char *subject)
{
	tlm_error err = TLM_ERROR_INIT;
	output_ctx o = { team, subject, json_array(), 0 };
	tlm_journal_run run;
	tlm_journal *j;

	if (o.attempts == NULL) {
		tlm_ui__error(res, 500, "out of memory");
		return;
	}
	if (get_run(r, res, run_id, &j, &run) != 0) {
		json_decref(o.attempts);
		return;
	}
	if (tlm_journal_tasks(j, run.id, on_output, &o, &err) != 0) {
		journal_failed(res, &err);
		json_decref(o.attempts);
	} else if (o.failed) {
		tlm_ui__error(res, 500, "out of memory");
		json_decref(o.attempts);
	} else if (json_array_size(o.attempts) == 0) {
		tlm_ui__error(res, 404, "run %s has no task %s/%s", run.id, team, subject);
		json_decref(o.attempts);
	} else {
		tlm_ui__json(res, 200,
			     json_pack("{s:s, s:s, s:s, s:o}", "run", run.id, "team", team,
				       "subject", subject, "attempts", o.attempts));
	}
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
}
