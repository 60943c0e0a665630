/* Tasks (docs/design.md §4): submitted as soon as their dependencies
 * completed (blockedBy = the remote ids of those), retried as new attempts;
 * a failure skips exactly its dependents while independent branches go on.
 * Following them (events, reconcile, timeouts) is follow.c.  Every state
 * change goes through tlm_eng__task_to (states.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/json.h"

static const char *team_id(eng *e, const eng_task *t)
{
	return e->teams[e->spec->tasks[t->idx].team].rs.id;
}

static void push_ready(eng *e, eng_task *t)
{
	size_t n = e->spec->ntasks;

	if (tlm_eng__task_to(e, t, TASK_READY, TASK_FAILED, NULL) != 0)
		return;
	e->ready[e->ready_tail % n] = t->idx;
	e->ready_tail++;
}

/* Every task that depends on failed, transitively, is skipped. */
static void skip_dependents(eng *e, eng_task *failed)
{
	size_t *stack = malloc((e->spec->ntasks + 1) * sizeof(*stack)), top = 0, n, k;
	char name[TLM_SPEC_SUBJECT_MAX + 80], why[TLM_SPEC_SUBJECT_MAX + 120];
	const size_t *deps;

	if (stack == NULL) {
		/* Not one dependent may be left waiting for ever: the run ends. */
		tlm_eng__oom(e);
		return;
	}
	snprintf(why, sizeof(why), "skipped: %s did not complete",
		 tlm_eng__task_name(e, failed->idx, name, sizeof(name)));
	stack[top++] = failed->idx;
	while (top > 0) {
		deps = tlm_plan_dependents(e->plan, stack[--top], &n);
		for (k = 0; k < n; k++) {
			eng_task *d = &e->tasks[deps[k]];

			if (d->st != TASK_WAITING)
				continue; /* already skipped through another path */
			tlm_eng__finish(e, d, TASK_SKIPPED, why);
			stack[top++] = d->idx;
		}
	}
	free(stack);
}

void tlm_eng__finish(eng *e, eng_task *t, eng_task_state st, const char *msg)
{
	char name[TLM_SPEC_SUBJECT_MAX + 80];
	const size_t *deps;
	size_t n, k;

	if (tlm_eng__task_to(e, t, st, st, msg) == TLM_EINVALID)
		return;
	e->reconcile_gap = e->reconcile_min;
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
		tlm_eng__fail(e, "task %s %s: %s", name, tlm_eng__task_state_name(st), msg);
		skip_dependents(e, t);
	}
	tlm_eng__progress(e, NULL);
}

void tlm_eng__attempt_failed(eng *e, eng_task *t, eng_task_state why, const char *msg)
{
	char name[TLM_SPEC_SUBJECT_MAX + 80];
	char **old;
	int retries = e->spec->tasks[t->idx].retries;

	if (t->attempt - t->attempt_base > retries || e->ending) {
		tlm_eng__finish(e, t, why, msg);
		return;
	}
	tlm_eng__log(e, TLM_ENGINE_WARN, "task %s attempt %d %s (%s); retrying (%d of %d)",
		     tlm_eng__task_name(e, t->idx, name, sizeof(name)), t->attempt,
		     tlm_eng__task_state_name(why), msg, t->attempt, retries);
	tlm_eng__write_owed(e, t); /* with the id the ending attempt had */
	if (t->id != NULL) {
		old = realloc(t->old_ids, (t->nold + 1) * sizeof(*old));
		if (old == NULL) {
			tlm_eng__oom(e);
			tlm_eng__finish(e, t, why, "out of memory");
			return;
		}
		t->old_ids = old;
		t->old_ids[t->nold++] = t->id;
		t->id = NULL;
	}
	if (tlm_eng__task_to(e, t, TASK_READY, why, NULL) != 0)
		return;
	e->ready[e->ready_tail % e->spec->ntasks] = t->idx;
	e->ready_tail++;
}

/* ---- submitting --------------------------------------------------------- */

/* Takes id. */
static void adopt_task(eng *e, eng_task *t, char *id)
{
	char name[TLM_SPEC_SUBJECT_MAX + 80];
	uint64_t now = tlm_eng__now_ms();

	t->id = id;
	if (tlm_strmap_put(&e->by_id, t->id, t->idx, NULL) < 0)
		tlm_eng__oom(e); /* its events would be missed: end the run */
	if (tlm_eng__task_to(e, t, TASK_SUBMITTED, TASK_SUBMITTED, NULL) != 0)
		return;
	t->submitted_ms = now;
	if (t->first_ms == 0)
		t->first_ms = now;
	e->any_submitted = 1;
	/* New work may finish at once: ask soon, then back off again. */
	e->reconcile_gap = e->reconcile_min;
	if (e->next_reconcile > now + (uint64_t)e->reconcile_min)
		e->next_reconcile = now + (uint64_t)e->reconcile_min;
	tlm_eng__log(e, TLM_ENGINE_INFO, "task %s submitted (id %s, attempt %d)",
		     tlm_eng__task_name(e, t->idx, name, sizeof(name)), id, t->attempt);
	tlm_eng__progress(e, NULL);
	tlm_eng__early_apply(e, t); /* it may have finished before we knew its id */
}

static void resolve_task(eng *e, eng_task *t);

static void on_submitted(void *ctx, const tlm_client_result *res)
{
	eng_task *t = ctx;
	eng *e = t->e;
	tlm_error err = TLM_ERROR_INIT;
	char *id = NULL;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	if (res->outcome == TLM_CLIENT_FAILED) {
		tlm_eng__attempt_failed(e, t, TASK_FAILED, res->err->message);
		return;
	}
	/* A reply without a readable id (not JSON, no memory) leaves the
	 * create's outcome unknown: the task is looked for by its subject. */
	if (res->outcome == TLM_CLIENT_UNKNOWN || tlm_client__res_task_id(res, &id, &err) != 0) {
		if (tlm_eng__task_to(e, t, TASK_UNKNOWN, TASK_UNKNOWN, NULL) == 0)
			resolve_task(e, t);
		return;
	}
	adopt_task(e, t, id);
}

/* The create body; NULL out of memory. */
static char *task_body(eng *e, eng_task *t)
{
	const tlm_spec_task *st = &e->spec->tasks[t->idx];
	json_t *b, *blocked = json_array();
	char *text = NULL;
	size_t k;

	for (k = 0; blocked != NULL && k < st->ndeps; k++) {
		const char *id = e->tasks[st->deps[k]].id; /* NULL: completed on a lost plane */

		if (id != NULL && json_array_append_new(blocked, json_string(id)) != 0) {
			json_decref(blocked);
			return NULL;
		}
	}
	b = blocked != NULL
		    ? json_pack("{s:s, s:s, s:s, s:o, s:s}", "subject", st->subject, "description",
				st->description, "assigneeAgentId", e->agents[st->agent].rs.id,
				"blockedBy", blocked, "type", "general")
		    : NULL;
	if (b != NULL)
		text = tlm_json_dump_body(b);
	json_decref(b);
	return text;
}

static void post_task(eng *e, eng_task *t)
{
	tlm_error err = TLM_ERROR_INIT;
	char path[ENG_PATH_MAX];
	char *text;

	if (tlm_eng__task_to(e, t, TASK_SUBMITTING, TASK_SUBMITTING, NULL) != 0)
		return; /* not journaled: not sent */
	if ((text = task_body(e, t)) == NULL) {
		tlm_eng__oom(e);
		tlm_eng__attempt_failed(e, t, TASK_FAILED, "out of memory");
		return;
	}
	if (tlm_client_path(path, sizeof(path), "/v1/teams/", team_id(e, t), "/tasks", NULL, NULL,
			    &err) != 0 ||
	    tlm_client__submit_raw(e->c, "POST", path, text, TLM_CLIENT_POST_CREATE, on_submitted,
				   t, &err) != 0)
		tlm_eng__attempt_failed(e, t, TASK_FAILED, err.message);
	free(text);
}

typedef struct task_match {
	eng_task *t;
	char *id;
	int done;
} task_match;

/* A task of this subject in the team that is none of our known attempts is
 * the one whose create had an unknown outcome. */
static int match_task(void *ctx, json_t *item)
{
	task_match *m = ctx;
	eng *e = m->t->e;
	const char *subject = json_string_value(json_object_get(item, "subject"));
	const char *id = json_string_value(json_object_get(item, "id"));
	size_t i;

	if (subject == NULL || id == NULL ||
	    strcmp(subject, e->spec->tasks[m->t->idx].subject) != 0 ||
	    tlm_strmap_get(&e->by_id, id, &i) == 0)
		return 0;
	m->id = strdup(id);
	return m->id != NULL ? 1 : TLM_ERROR;
}

static void on_task_list(void *ctx, int rc, const tlm_error *err)
{
	task_match *m = ctx;
	eng_task *t = m->t;
	eng *e = t->e;
	char *id = m->id;

	free(m);
	if (rc == TLM_ECANCELLED) {
		free(id);
		return; /* the client stopped */
	}
	if (rc == 1) {
		adopt_task(e, t, id);
		return;
	}
	free(id);
	if (rc == 0 && !e->ending) {
		post_task(e, t); /* it was not created: the same attempt again */
	} else if (rc < 0) {
		tlm_eng__log(e, TLM_ENGINE_WARN, "looking up a task: %s", err->message);
		tlm_eng__attempt_failed(e, t, TASK_FAILED, err->message);
	}
	/* rc == 0 while ending: left unknown; cancelled with the rest. */
}

/* A task create with an unknown outcome, looked for among the team's tasks
 * (tasks have no names; the subject is unique in a team). */
static void resolve_task(eng *e, eng_task *t)
{
	task_match *m = calloc(1, sizeof(*m));
	tlm_error err = TLM_ERROR_INIT;
	char path[ENG_PATH_MAX];

	if (m == NULL) {
		tlm_eng__oom(e);
		return;
	}
	m->t = t;
	if (tlm_client_path(path, sizeof(path), "/v1/teams/", team_id(e, t), "/tasks", NULL, NULL,
			    &err) != 0 ||
	    tlm_client_list(e->c, path, "tasks", match_task, on_task_list, m, &err) != 0) {
		free(m);
		tlm_eng__attempt_failed(e, t, TASK_FAILED, err.message);
	}
}

/* ---- the loop ------------------------------------------------------------ */

/* Every team's task events before any task is submitted (docs/design.md
 * §4.5), in one round trip. */
static void subscribe(eng *e)
{
	const char **ids;
	tlm_error err = TLM_ERROR_INIT;
	size_t i;

	if (e->w == NULL)
		return;
	if ((ids = calloc(e->spec->nteams + 1, sizeof(*ids))) == NULL) {
		tlm_eng__oom(e);
		return;
	}
	for (i = 0; i < e->spec->nteams; i++)
		ids[i] = e->teams[i].rs.id;
	if (tlm_watcher_subscribe_all(e->w, ids, e->spec->nteams, &err) != 0)
		tlm_eng__log(e, TLM_ENGINE_WARN,
			     "no task events (%s); following the tasks over REST", err.message);
	free(ids);
}

/* Ready tasks are queued up to a window beyond the one on the wire: their
 * intents join the open batch, so that one commit makes the next window
 * durable while the current one is served, and a reply's free slot takes
 * the next create at once instead of waiting for a commit
 * (docs/internals/journal.md, "Group commit"). */
static void step_tasks(eng *e)
{
	size_t n = e->spec->ntasks;
	uint64_t now;

	while (!e->ending && e->ready_head < e->ready_tail &&
	       tlm_client_pending(e->c) < 2 * e->maxc) {
		eng_task *t = &e->tasks[e->ready[e->ready_head++ % n]];

		if (t->st == TASK_READY)
			post_task(e, t);
	}
	now = tlm_eng__now_ms();
	/* A walk of every task: four times a second, not every turn (a turn
	 * per reply would make a run quadratic); timeouts are whole seconds. */
	if (now >= e->next_timeouts) {
		e->next_timeouts = now + ENG_TIMEOUT_CHECK_MS;
		tlm_eng__check_timeouts(e, now);
	}
	if (now >= e->next_reconcile)
		tlm_eng__reconcile(e);
}

int tlm_eng__cancel_rest(eng *e)
{
	const char *why = e->outcome == TLM_ENGINE_TIMED_OUT ? "cancelled: the workflow timed out"
			  : e->outcome == TLM_ENGINE_CANCELLED
				  ? "cancelled: the run was interrupted"
				  : "cancelled: the run ended";
	size_t i;

	for (i = 0; i < e->spec->ntasks && e->stop == STOP_NONE; i++)
		if (!tlm_eng__task_terminal(&e->tasks[i]))
			tlm_eng__finish(e, &e->tasks[i], TASK_CANCELLED, why);
	return e->stop == STOP_NONE ? 0 : TLM_ECANCELLED;
}

int tlm_eng__run_tasks(eng *e)
{
	size_t i;
	long wait;
	int rc;

	subscribe(e);
	if ((rc = tlm_eng__run_to(e, TLM_RUN_RUNNING)) != 0)
		return rc;
	tlm_eng__progress(e, "running");
	for (i = 0; i < e->spec->ntasks; i++) {
		if (e->tasks[i].st == TASK_WAITING && e->tasks[i].deps_left == 0)
			push_ready(e, &e->tasks[i]);
		else if (e->tasks[i].st == TASK_UNKNOWN) /* a resumed run's open create */
			resolve_task(e, &e->tasks[i]);
	}
	e->next_reconcile = tlm_eng__now_ms() + (uint64_t)e->reconcile_gap;
	while (e->stop == STOP_NONE && !e->ending && e->nterminal < e->spec->ntasks) {
		step_tasks(e);
		if (e->ending || e->nterminal == e->spec->ntasks)
			break;
		wait = (long)(e->next_reconcile - tlm_eng__now_ms());
		tlm_eng__turn(e, wait > 0 ? wait : 0);
	}
	/* Structured end: every request in flight finishes (and is recorded)
	 * before teardown starts. */
	tlm_eng__drain(e);
	return 0;
}
