/* Following submitted tasks (docs/design.md §4): status from NATS events and
 * a REST reconcile (events can be lost: docs/lessons.md #9), the agent of a
 * task in flight checked for having vanished, and per-task timeouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/json.h"

static const char *team_id(eng *e, const eng_task *t)
{
	return e->teams[e->spec->tasks[t->idx].team].rs.id;
}

static void start_poll(eng *e, eng_task *t);

void tlm_eng__task_status(eng *e, eng_task *t, const char *status, const char *message)
{
	if (t->st != TASK_SUBMITTED && t->st != TASK_RUNNING)
		return; /* terminal is sticky; not submitted yet is not ours to move */
	switch (tlm_client__task_state(status)) {
	case TLM_TASK_ACTIVE:
		if (t->st == TASK_SUBMITTED && strcmp(status, "pending") != 0 &&
		    strcmp(status, "blocked") != 0 &&
		    tlm_eng__task_to(e, t, TASK_RUNNING, TASK_RUNNING, NULL) == 0)
			tlm_eng__progress(e, NULL);
		break;
	case TLM_TASK_COMPLETED: tlm_eng__finish(e, t, TASK_COMPLETED, NULL); break;
	case TLM_TASK_FAILED:
		tlm_eng__attempt_failed(e, t, TASK_FAILED, message != NULL ? message : status);
		if (message == NULL)
			start_poll(e, t); /* an event carries no reason: fetch it */
		break;
	case TLM_TASK_UNKNOWN:
		tlm_eng__log(e, TLM_ENGINE_DEBUG, "task status \"%s\" not understood; ignored",
			     status);
		break;
	}
}

static void on_polled(void *ctx, const tlm_client_result *res)
{
	eng_task *t = ctx;
	tlm_client_resource k = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	const char *msg;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	t->polling = 0;
	if (res->status == 404 && t->poll_attempt == t->attempt &&
	    (t->st == TASK_SUBMITTED || t->st == TASK_RUNNING)) {
		/* Gone: a control plane restarted without its state, say. */
		tlm_eng__attempt_failed(t->e, t, TASK_FAILED,
					"the task is gone from the control plane");
		goto done;
	}
	if (res->outcome != TLM_CLIENT_DONE ||
	    tlm_client__res_resource(&k, "task", res, &err) != 0 || k.status == NULL)
		goto done;
	msg = json_string_value(json_object_get(k.object, "statusMessage"));
	if (t->id != NULL && k.id != NULL && strcmp(k.id, t->id) == 0)
		tlm_eng__task_status(t->e, t, k.status, msg);
	/* A reason arriving after the failure was decided (from an event). */
	if (msg != NULL && tlm_eng__task_terminal(t) && t->st != TASK_COMPLETED &&
	    t->message != NULL && tlm_client__status_is_terminal(t->message))
		(void)tlm_eng__task_message(t->e, t, msg);
done:
	tlm_client__resource_clear(&k);
}

static void start_poll(eng *e, eng_task *t)
{
	const char *id = t->id != NULL ? t->id : t->nold > 0 ? t->old_ids[t->nold - 1] : NULL;
	char path[ENG_PATH_MAX];

	if (t->polling || id == NULL || e->stop != STOP_NONE)
		return;
	if (tlm_client_path(path, sizeof(path), "/v1/teams/", team_id(e, t), "/tasks/", id, NULL,
			    NULL) == 0 &&
	    tlm_client_submit(e->c, "GET", path, NULL, TLM_CLIENT_GET, on_polled, t, NULL) == 0) {
		t->polling = 1;
		t->poll_attempt = t->attempt;
	}
}

/* The agent's GET: a 404 means it was deleted behind the run's back, and
 * its tasks would wait for it forever (a pending task has no worker). */
static void on_agent(void *ctx, const tlm_client_result *res)
{
	eng_res *a = ctx;
	eng *e = a->e;
	char why[TLM_JOURNAL_NAME_MAX + 64];
	size_t i;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	a->checking = 0;
	if (res->status != 404)
		return;
	if (a->rs.st == TLM_JOURNAL_CREATED || a->rs.st == TLM_JOURNAL_STARTED)
		(void)tlm_eng__vanished(e, &a->rs);
	snprintf(why, sizeof(why), "its agent %s is gone from the control plane", a->rs.name);
	for (i = 0; i < e->spec->ntasks; i++) {
		eng_task *t = &e->tasks[i];

		if (e->spec->tasks[i].agent == a->idx &&
		    (t->st == TASK_SUBMITTED || t->st == TASK_RUNNING))
			tlm_eng__attempt_failed(e, t, TASK_FAILED, why);
	}
}

static void check_agent(eng *e, size_t idx)
{
	eng_res *a = &e->agents[idx];
	char path[ENG_PATH_MAX];

	if (a->checking || a->rs.id == NULL)
		return;
	if (tlm_client_path(path, sizeof(path), "/v1/agents/", a->rs.id, NULL, NULL, NULL, NULL) ==
		    0 &&
	    tlm_client_submit(e->c, "GET", path, NULL, TLM_CLIENT_GET, on_agent, a, NULL) == 0)
		a->checking = 1;
}

/* REST truth for every task in flight: events can be lost. */
void tlm_eng__reconcile(eng *e)
{
	size_t i;

	tlm_metrics_reconcile_pass();
	for (i = 0; i < e->spec->ntasks; i++)
		if (e->tasks[i].st == TASK_SUBMITTED || e->tasks[i].st == TASK_RUNNING) {
			start_poll(e, &e->tasks[i]);
			check_agent(e, e->spec->tasks[i].agent);
		}
	e->reconcile_gap *= 2;
	if (e->reconcile_gap > e->reconcile_max)
		e->reconcile_gap = e->reconcile_max;
	e->next_reconcile = tlm_eng__now_ms() + (uint64_t)e->reconcile_gap;
}

/* Ending a timed-out attempt on the control plane (docs/engine.md): the
 * journal records it once done; if it fails, teardown ends it (endwork.c). */
typedef struct ew_one {
	eng *e;
	size_t idx;
	int attempt;
	char *id, *note;
} ew_one;

static void on_one(void *ctx, const tlm_client_result *res)
{
	ew_one *o = ctx;
	const tlm_spec_task *s = &o->e->spec->tasks[o->idx];
	tlm_error err = TLM_ERROR_INIT;

	if (res->outcome == TLM_CLIENT_DONE)
		(void)tlm_eng__journal_check(o->e,
					     tlm_journal_task_ended(o->e->j, o->e->run_id,
								    o->e->spec->teams[s->team].name,
								    s->subject, o->attempt, o->id,
								    o->note, &err),
					     &err);
	else if (res->outcome != TLM_CLIENT_CANCELLED && res->outcome != TLM_CLIENT_GONE)
		tlm_eng__log(o->e, TLM_ENGINE_WARN,
			     "task %s/%s attempt %d: could not be ended (%s); teardown tries again",
			     o->e->spec->teams[s->team].name, s->subject, o->attempt,
			     res->err->message);
	free(o->id);
	free(o->note);
	free(o);
}

void tlm_eng__end_attempt(eng *e, const eng_task *t, const char *why)
{
	const char *team = e->teams[e->spec->tasks[t->idx].team].rs.id;
	char path[ENG_PATH_MAX], *body = NULL;
	ew_one *o = calloc(1, sizeof(*o));
	json_t *b = NULL;

	if (o == NULL || t->id == NULL ||
	    tlm_client_path(path, sizeof(path), "/v1/teams/", team, "/tasks/", t->id, NULL, NULL) !=
		    0)
		goto fail;
	o->e = e;
	o->idx = t->idx;
	o->attempt = t->attempt;
	if ((o->id = strdup(t->id)) == NULL || (o->note = strdup(why)) == NULL ||
	    (b = json_pack("{s:s,s:s,s:s}", "status", "failed", "note", why, "statusMessage",
			   why)) == NULL ||
	    (body = tlm_json_dump_body(b)) == NULL ||
	    tlm_client_submit(e->c, "PUT", path, body, TLM_CLIENT_PUT, on_one, o, NULL) != 0)
		goto fail;
	json_decref(b);
	free(body);
	return;
fail: /* teardown ends it: the journal says it is not ended */
	json_decref(b);
	free(body);
	if (o != NULL) {
		free(o->id);
		free(o->note);
	}
	free(o);
}

void tlm_eng__check_timeouts(eng *e, uint64_t now)
{
	char msg[64], note[160];
	size_t i;

	for (i = 0; i < e->spec->ntasks; i++) {
		eng_task *t = &e->tasks[i];
		long limit = e->spec->tasks[i].timeout_seconds;

		if (limit <= 0 || (t->st != TASK_SUBMITTED && t->st != TASK_RUNNING) ||
		    now - t->submitted_ms < (uint64_t)limit * 1000u)
			continue;
		/* Ended on the control plane so its worker stops (the built-in
		 * server kills the process) and no worker picks it up later. */
		snprintf(msg, sizeof(msg), "timed out after %ld s", limit);
		snprintf(note, sizeof(note), "cancelled by telemachy: run %s: attempt %d %s",
			 e->run_id, t->attempt, msg);
		tlm_eng__end_attempt(e, t, note);
		tlm_eng__attempt_failed(e, t, TASK_TIMED_OUT, msg);
	}
}
