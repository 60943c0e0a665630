/* Tasks (DESIGN §4.5–4.6): submitted as soon as their dependencies completed
 * (blockedBy = the remote ids of those), followed through NATS events and a
 * REST reconcile, retried as new attempts, timed out per task; a failure
 * skips exactly its dependents while independent branches go on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static const char *const state_names[] = { "pending",   "pending", "submitted", "submitted",
					   "submitted", "running", "completed", "failed",
					   "timed_out", "skipped", "cancelled" };

const char *tlm_eng__task_state_name(eng_task_state st)
{
	return state_names[st];
}

int tlm_eng__task_terminal(const eng_task *t)
{
	return t->st >= TASK_COMPLETED;
}

static const char *team_of(eng *e, const eng_task *t)
{
	return e->spec->teams[e->spec->tasks[t->idx].team].name;
}

static void journal_task(eng *e, eng_task *t, const char *status)
{
	tlm_error err = TLM_ERROR_INIT;

	tlm_eng__journal_check(e,
			       tlm_journal_task_record(e->j, e->run_id, team_of(e, t),
						       e->spec->tasks[t->idx].subject,
						       t->attempt > 0 ? t->attempt : 1, t->id,
						       status, &err),
			       &err);
}

static void push_ready(eng *e, eng_task *t)
{
	size_t n = e->spec->ntasks;

	t->st = TASK_READY;
	e->ready[e->ready_tail % n] = t->idx;
	e->ready_tail++;
}

static void set_message(eng_task *t, const char *msg)
{
	free(t->message);
	t->message = msg != NULL ? strdup(msg) : NULL;
}

/* A terminal state for t; a failure skips its dependents, transitively. */
static void finish(eng *e, eng_task *t, eng_task_state st, const char *msg);

static void skip_dependents(eng *e, eng_task *failed)
{
	size_t *stack = malloc((e->spec->ntasks + 1) * sizeof(*stack)), top = 0, n, k;
	char name[TLM_SPEC_SUBJECT_MAX + 80], why[TLM_SPEC_SUBJECT_MAX + 120];
	const size_t *deps;

	if (stack == NULL)
		return;
	snprintf(why, sizeof(why), "skipped: %s did not complete",
		 tlm_eng__task_name(e, failed->idx, name, sizeof(name)));
	stack[top++] = failed->idx;
	while (top > 0) {
		deps = tlm_plan_dependents(e->plan, stack[--top], &n);
		for (k = 0; k < n; k++) {
			eng_task *d = &e->tasks[deps[k]];

			if (d->st != TASK_WAITING)
				continue; /* already skipped through another path */
			finish(e, d, TASK_SKIPPED, why);
			stack[top++] = d->idx;
		}
	}
	free(stack);
}

static void finish(eng *e, eng_task *t, eng_task_state st, const char *msg)
{
	char name[TLM_SPEC_SUBJECT_MAX + 80];
	const size_t *deps;
	size_t n, k;

	t->st = st;
	t->finished_ms = tlm_eng__now_ms();
	set_message(t, msg);
	e->nterminal++;
	e->reconcile_gap = e->reconcile_min;
	journal_task(e, t, state_names[st]);
	tlm_eng__task_name(e, t->idx, name, sizeof(name));
	if (st == TASK_COMPLETED) {
		tlm_eng__log(e, TLM_ENGINE_INFO, "task %s completed", name);
		deps = tlm_plan_dependents(e->plan, t->idx, &n);
		for (k = 0; k < n; k++) {
			eng_task *d = &e->tasks[deps[k]];

			if (--d->deps_left == 0 && d->st == TASK_WAITING)
				push_ready(e, d);
		}
	} else if (st == TASK_SKIPPED || st == TASK_CANCELLED) {
		tlm_eng__log(e, TLM_ENGINE_INFO, "task %s %s", name, msg);
	} else {
		tlm_eng__fail(e, "task %s %s: %s", name, state_names[st], msg);
		skip_dependents(e, t);
	}
	tlm_eng__progress(e, NULL);
}

/* The current attempt failed or timed out: retry as a new task, or give up. */
static void attempt_failed(eng *e, eng_task *t, eng_task_state why, const char *msg)
{
	char name[TLM_SPEC_SUBJECT_MAX + 80];
	char **old;
	int retries = e->spec->tasks[t->idx].retries;

	journal_task(e, t, state_names[why]);
	if (t->attempt - t->attempt_base > retries || e->ending) {
		finish(e, t, why, msg);
		return;
	}
	tlm_eng__log(e, TLM_ENGINE_WARN, "task %s attempt %d %s (%s); retrying (%d of %d)",
		     tlm_eng__task_name(e, t->idx, name, sizeof(name)), t->attempt,
		     state_names[why], msg, t->attempt, retries);
	if (t->id != NULL) {
		old = realloc(t->old_ids, (t->nold + 1) * sizeof(*old));
		if (old == NULL) {
			finish(e, t, why, "out of memory");
			return;
		}
		t->old_ids = old;
		t->old_ids[t->nold++] = t->id;
		t->id = NULL;
	}
	push_ready(e, t);
}

static void start_poll(eng *e, eng_task *t);

void tlm_eng__task_status(eng *e, eng_task *t, const char *status, const char *message)
{
	if (t->st != TASK_SUBMITTED && t->st != TASK_RUNNING)
		return; /* terminal is sticky; not submitted yet is not ours to move */
	switch (tlm_client__task_state(status)) {
	case TLM_TASK_ACTIVE:
		if (t->st == TASK_SUBMITTED && strcmp(status, "pending") != 0 &&
		    strcmp(status, "blocked") != 0) {
			t->st = TASK_RUNNING;
			journal_task(e, t, "running");
			tlm_eng__progress(e, NULL);
		}
		break;
	case TLM_TASK_COMPLETED: finish(e, t, TASK_COMPLETED, NULL); break;
	case TLM_TASK_FAILED:
		attempt_failed(e, t, TASK_FAILED, message != NULL ? message : status);
		if (message == NULL)
			start_poll(e, t); /* an event carries no reason: fetch it */
		break;
	case TLM_TASK_UNKNOWN:
		tlm_eng__log(e, TLM_ENGINE_DEBUG, "task status \"%s\" not understood; ignored",
			     status);
		break;
	}
}

/* ---- submitting --------------------------------------------------------- */

static void adopt_task(eng *e, eng_task *t, char *id)
{
	char name[TLM_SPEC_SUBJECT_MAX + 80];

	t->id = id;
	t->st = TASK_SUBMITTED;
	t->submitted_ms = tlm_eng__now_ms();
	if (t->first_ms == 0)
		t->first_ms = t->submitted_ms;
	(void)tlm_strmap_put(&e->by_id, t->id, t->idx, NULL);
	e->any_submitted = 1;
	/* New work may finish at once: ask soon, then back off again. */
	e->reconcile_gap = e->reconcile_min;
	if (e->next_reconcile > t->submitted_ms + (uint64_t)e->reconcile_min)
		e->next_reconcile = t->submitted_ms + (uint64_t)e->reconcile_min;
	journal_task(e, t, "submitted");
	tlm_eng__log(e, TLM_ENGINE_INFO, "task %s submitted (id %s, attempt %d)",
		     tlm_eng__task_name(e, t->idx, name, sizeof(name)), id, t->attempt);
	tlm_eng__progress(e, NULL);
}

static void on_submitted(void *ctx, const tlm_client_result *res)
{
	eng_task *t = ctx;
	eng *e = t->e;
	tlm_client_resource k = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;

	if (res->outcome == TLM_CLIENT_FAILED) {
		attempt_failed(e, t, TASK_FAILED, res->err->message);
		return;
	}
	if (res->outcome == TLM_CLIENT_UNKNOWN ||
	    tlm_client__parse_task(&k, res->raw, res->raw_len, &err) != 0 || k.id == NULL) {
		t->st = TASK_UNKNOWN; /* the loop looks for it in the team's tasks */
		tlm_client__resource_clear(&k);
		return;
	}
	adopt_task(e, t, k.id);
	k.id = NULL;
	tlm_client__resource_clear(&k);
}

static char *task_body(eng *e, eng_task *t)
{
	const tlm_spec_task *st = &e->spec->tasks[t->idx];
	json_t *b, *blocked = json_array();
	char *text;
	size_t k;

	for (k = 0; k < st->ndeps; k++)
		if (e->tasks[st->deps[k]].id != NULL) /* NULL: completed on a lost control plane */
			json_array_append_new(blocked, json_string(e->tasks[st->deps[k]].id));
	b = json_pack("{s:s, s:s, s:s, s:o, s:s}", "subject", st->subject, "description",
		      st->description, "assigneeAgentId", e->agents[st->agent].id, "blockedBy",
		      blocked, "type", "general");
	text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	return text;
}

static void post_task(eng *e, eng_task *t)
{
	tlm_error err = TLM_ERROR_INIT;
	char path[TLM_JOURNAL_TEXT_MAX + 64];
	char *text = task_body(e, t);

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks",
		 e->teams[e->spec->tasks[t->idx].team].id);
	t->st = TASK_SUBMITTING;
	if (text == NULL || tlm_client_submit(e->c, "POST", path, text, TLM_CLIENT_POST_CREATE,
					      on_submitted, t, &err) != 0)
		attempt_failed(e, t, TASK_FAILED, text == NULL ? "out of memory" : err.message);
	free(text);
}

static void submit(eng *e, eng_task *t)
{
	t->attempt++;
	/* Write-ahead: the attempt exists in the journal before its create. */
	journal_task(e, t, "pending");
	post_task(e, t);
}

typedef struct task_match {
	eng *e;
	const char *subject;
	char *id;
} task_match;

static int match_task(void *ctx, json_t *item)
{
	task_match *m = ctx;
	const char *subject = json_string_value(json_object_get(item, "subject"));
	const char *id = json_string_value(json_object_get(item, "id"));
	size_t i;

	if (subject == NULL || id == NULL || strcmp(subject, m->subject) != 0 ||
	    tlm_strmap_get(&m->e->by_id, id, &i) == 0)
		return 0; /* another subject, or an attempt we know */
	m->id = strdup(id);
	return 1;
}

/* A task create with an unknown outcome: a task of this subject in the team
 * that is none of our known attempts is the one; else post again. */
static void resolve_task(eng *e, eng_task *t)
{
	task_match m = { e, e->spec->tasks[t->idx].subject, NULL };
	tlm_error err = TLM_ERROR_INIT;
	char path[TLM_JOURNAL_TEXT_MAX + 64];
	int rc;

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks",
		 e->teams[e->spec->tasks[t->idx].team].id);
	rc = tlm_client_list_all(e->c, path, "tasks", match_task, &m, &err);
	if (rc == 1 && m.id != NULL) {
		adopt_task(e, t, m.id);
	} else if (rc == 0 && !e->ending) {
		post_task(e, t);
	} else if (rc < 0) {
		tlm_eng__log(e, TLM_ENGINE_WARN, "looking up a task: %s", err.message);
	}
}

/* ---- following ------------------------------------------------------------ */

static void on_polled(void *ctx, const tlm_client_result *res)
{
	eng_task *t = ctx;
	tlm_client_resource k = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	const char *msg;

	t->polling = 0;
	if (res->status == 404 && t->poll_attempt == t->attempt &&
	    (t->st == TASK_SUBMITTED || t->st == TASK_RUNNING)) {
		/* Gone: a control plane restarted without its state, say. */
		attempt_failed(t->e, t, TASK_FAILED, "the task is gone from the control plane");
		goto done;
	}
	if (res->outcome != TLM_CLIENT_DONE ||
	    tlm_client__parse_task(&k, res->raw, res->raw_len, &err) != 0 || k.status == NULL)
		goto done;
	msg = json_string_value(json_object_get(k.object, "statusMessage"));
	if (t->id != NULL && k.id != NULL && strcmp(k.id, t->id) == 0)
		tlm_eng__task_status(t->e, t, k.status, msg);
	/* A reason arriving after the failure was decided (from an event). */
	if (msg != NULL && tlm_eng__task_terminal(t) && t->st != TASK_COMPLETED &&
	    t->message != NULL && tlm_client__status_is_terminal(t->message))
		set_message(t, msg);
done:
	tlm_client__resource_clear(&k);
}

static void start_poll(eng *e, eng_task *t)
{
	tlm_error err = TLM_ERROR_INIT;
	char path[2 * TLM_JOURNAL_TEXT_MAX + 64];
	const char *id = t->id != NULL ? t->id : t->nold > 0 ? t->old_ids[t->nold - 1] : NULL;

	if (t->polling || id == NULL)
		return;
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s",
		 e->teams[e->spec->tasks[t->idx].team].id, id);
	if (tlm_client_submit(e->c, "GET", path, NULL, TLM_CLIENT_GET, on_polled, t, &err) == 0) {
		t->polling = 1;
		t->poll_attempt = t->attempt;
	}
}

/* REST truth for every task in flight: events can be lost (LESSONS 9). */
/* The agent's GET: a 404 means it was deleted behind the run's back, and
 * its tasks would wait for it forever (a pending task has no worker). */
static void on_agent(void *ctx, const tlm_client_result *res)
{
	eng_res *a = ctx;
	eng *e = a->e;
	char why[TLM_JOURNAL_NAME_MAX + 64];
	size_t i;

	a->checking = 0;
	if (res->status != 404)
		return;
	snprintf(why, sizeof(why), "its agent %s is gone from the control plane", a->name);
	for (i = 0; i < e->spec->ntasks; i++) {
		eng_task *t = &e->tasks[i];

		if (e->spec->tasks[i].agent == a->idx &&
		    (t->st == TASK_SUBMITTED || t->st == TASK_RUNNING))
			attempt_failed(e, t, TASK_FAILED, why);
	}
}

static void check_agent(eng *e, size_t idx)
{
	eng_res *a = &e->agents[idx];
	char path[TLM_JOURNAL_TEXT_MAX + 32];

	if (a->checking || a->id == NULL)
		return;
	snprintf(path, sizeof(path), "/v1/agents/%s", a->id);
	if (tlm_client_submit(e->c, "GET", path, NULL, TLM_CLIENT_GET, on_agent, a, NULL) == 0)
		a->checking = 1;
}

void tlm_eng__reconcile(eng *e)
{
	size_t i;

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

static void on_stopped(void *ctx, const tlm_client_result *res)
{
	(void)ctx;
	(void)res; /* best effort: the attempt is already given up */
}

void tlm_eng__check_timeouts(eng *e, uint64_t now)
{
	char path[2 * TLM_JOURNAL_TEXT_MAX + 64], msg[64];
	size_t i;

	for (i = 0; i < e->spec->ntasks; i++) {
		eng_task *t = &e->tasks[i];
		long limit = e->spec->tasks[i].timeout_seconds;

		if (limit <= 0 || (t->st != TASK_SUBMITTED && t->st != TASK_RUNNING) ||
		    now - t->submitted_ms < (uint64_t)limit * 1000u)
			continue;
		/* Mark it failed on the control plane so its worker stops (the
		 * built-in server kills the process). */
		snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s",
			 e->teams[e->spec->tasks[i].team].id, t->id);
		(void)tlm_client_submit(e->c, "PATCH", path, "{\"status\":\"failed\"}",
					TLM_CLIENT_PATCH, on_stopped, NULL, NULL);
		snprintf(msg, sizeof(msg), "timed out after %ld s", limit);
		attempt_failed(e, t, TASK_TIMED_OUT, msg);
	}
}

/* ---- the loop --------------------------------------------------------- */

static void subscribe(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	size_t i;

	for (i = 0; e->w != NULL && i < e->spec->nteams; i++)
		if (tlm_watcher_subscribe(e->w, e->teams[i].id, &err) != 0)
			tlm_eng__log(e, TLM_ENGINE_WARN,
				     "team %s: no events (%s); following it over REST",
				     e->spec->teams[i].name, err.message);
}

static void step_tasks(eng *e)
{
	size_t i, n = e->spec->ntasks;
	uint64_t now;

	while (!e->ending && e->ready_head < e->ready_tail && tlm_client_pending(e->c) < e->maxc)
		submit(e, &e->tasks[e->ready[e->ready_head++ % n]]);
	for (i = 0; i < n; i++)
		if (e->tasks[i].st == TASK_UNKNOWN)
			resolve_task(e, &e->tasks[i]);
	now = tlm_eng__now_ms();
	tlm_eng__check_timeouts(e, now);
	if (now >= e->next_reconcile)
		tlm_eng__reconcile(e);
}

/* The run ended before these were done: they are cancelled. */
void tlm_eng__cancel_rest(eng *e)
{
	const char *why = e->outcome == TLM_ENGINE_TIMED_OUT ? "cancelled: the workflow timed out"
			  : e->outcome == TLM_ENGINE_CANCELLED
				  ? "cancelled: the run was interrupted"
				  : "cancelled: the run ended";
	size_t i;

	for (i = 0; i < e->spec->ntasks; i++)
		if (!tlm_eng__task_terminal(&e->tasks[i]))
			finish(e, &e->tasks[i], TASK_CANCELLED, why);
}

void tlm_eng__run_tasks(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	size_t i;
	long wait;

	subscribe(e);
	tlm_eng__journal_check(e, tlm_journal_run_set_state(e->j, e->run_id, "running", &err),
			       &err);
	tlm_eng__progress(e, "running");
	for (i = 0; i < e->spec->ntasks; i++)
		if (e->tasks[i].st == TASK_WAITING && e->tasks[i].deps_left == 0)
			push_ready(e, &e->tasks[i]);
	e->next_reconcile = tlm_eng__now_ms() + (uint64_t)e->reconcile_gap;
	while (!e->abandoned && !e->ending && e->nterminal < e->spec->ntasks) {
		step_tasks(e);
		if (e->ending || e->nterminal == e->spec->ntasks)
			break;
		wait = (long)(e->next_reconcile - tlm_eng__now_ms());
		tlm_eng__turn(e, wait > 0 ? wait : 0);
	}
	/* Structured end: every request in flight finishes (and is recorded)
	 * before teardown starts. */
	tlm_eng__drain(e);
}
