/* Resuming a run (issue 6): its state is rebuilt from the journal, not
 * guessed.  Resources with a remote id are adopted (agents started again:
 * start is idempotent); intents — the create may or may not have happened —
 * are resolved by name before anything is posted; deleted or absent ones are
 * created again under the same name.  Completed tasks stay completed; a task
 * in flight is followed again under its remote id; the others go again as
 * new attempts.  A run on the in-process control plane lost every resource
 * with its process: all of them are recorded absent and made again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

typedef struct restore {
	eng *e;
	int builtin;      /* the old control plane died with the old process */
	tlm_strmap tasks; /* "team/subject" -> task index */
	char **keys;
	tlm_error *err;
} restore;

static eng_res *find_res(eng *e, tlm_journal_kind kind, const char *name)
{
	eng_res *items = kind == TLM_JOURNAL_AGENT ? e->agents : e->teams;
	size_t n = kind == TLM_JOURNAL_AGENT ? e->spec->nagents : e->spec->nteams, i;

	for (i = 0; i < n; i++)
		if (strcmp(items[i].name, name) == 0)
			return &items[i];
	return NULL;
}

/* The state a resource goes on from, after the in-process case. */
static tlm_journal_state current(restore *r, const tlm_journal_resource *row)
{
	tlm_error err = TLM_ERROR_INIT;

	if (!r->builtin || row->state == TLM_JOURNAL_DELETED || row->state == TLM_JOURNAL_ABSENT ||
	    row->state == TLM_JOURNAL_ABANDONED)
		return row->state;
	(void)tlm_journal_set_resource_state(
		r->e->j, r->e->run_id, row->kind, row->name, TLM_JOURNAL_ABSENT,
		"the in-process control plane stopped with its run", &err);
	return TLM_JOURNAL_ABSENT;
}

static int on_resource(const tlm_journal_resource *row, void *ctx)
{
	restore *r = ctx;
	eng_res *x = find_res(r->e, row->kind, row->name);

	if (x == NULL)
		return 0; /* not in this spec: only teardown's sweep cares */
	x->journaled = 1;
	switch (current(r, row)) {
	case TLM_JOURNAL_CREATED:
	case TLM_JOURNAL_STARTED:
		if ((x->id = strdup(row->remote_id)) == NULL)
			return tlm_error_set(r->err, TLM_ERROR, "out of memory");
		x->st = x->kind == TLM_CLIENT_TEAM ? RES_READY : RES_CREATED;
		return 0;
	case TLM_JOURNAL_INTENT:
	case TLM_JOURNAL_DELETING:
		x->st = RES_UNKNOWN; /* exists or not: the name decides */
		return 0;
	case TLM_JOURNAL_DELETED:
	case TLM_JOURNAL_ABSENT:
		x->st = RES_NEW;
		return tlm_journal_reintent(r->e->j, r->e->run_id, row->kind, row->name, r->err);
	case TLM_JOURNAL_ABANDONED: break;
	}
	return tlm_error_set(r->err, TLM_ECONFLICT,
			     "%s %s was abandoned: the run cannot be resumed with it",
			     tlm_journal_kind_name(row->kind), row->name);
}

static int keep_old_id(eng_task *t, const char *id)
{
	char **p = realloc(t->old_ids, (t->nold + 1) * sizeof(*p));

	if (p == NULL)
		return -1;
	t->old_ids = p;
	if ((p[t->nold] = strdup(id)) == NULL)
		return -1;
	(void)tlm_strmap_put(&t->e->by_id, p[t->nold], t->idx, NULL);
	t->nold++;
	return 0;
}

static void set_message(eng_task *t, const char *status)
{
	free(t->message);
	t->message = strdup(status); /* the last attempt's status, until a new one */
}

/* Rows come by team, subject and attempt: the last one of a task wins. */
static int on_task(const tlm_journal_task *row, void *ctx)
{
	restore *r = ctx;
	char key[TLM_JOURNAL_NAME_MAX * 2 + 2];
	eng_task *t;
	size_t i;

	snprintf(key, sizeof(key), "%s/%s", row->team, row->subject);
	if (tlm_strmap_get(&r->tasks, key, &i) != 0)
		return 0; /* a task of another spec version */
	t = &r->e->tasks[i];
	if (row->remote_id != NULL && keep_old_id(t, row->remote_id) != 0)
		return tlm_error_set(r->err, TLM_ERROR, "out of memory");
	if (row->attempt >= t->attempt) {
		t->attempt = row->attempt;
		set_message(t, row->status);
	}
	return 0;
}

static void close_attempt(eng *e, eng_task *t, const char *id)
{
	const tlm_spec_task *st = &e->spec->tasks[t->idx];
	tlm_error err = TLM_ERROR_INIT;

	(void)tlm_journal_task_record(e->j, e->run_id, e->spec->teams[st->team].name, st->subject,
				      t->attempt, id, "cancelled", &err);
}

/* The last attempt's status decides where the task goes on from. */
static void settle_task(restore *r, eng_task *t)
{
	const char *status = t->message, *last;

	t->attempt_base = t->attempt;
	if (status == NULL)
		return; /* never journaled: a fresh task */
	last = t->nold > 0 ? t->old_ids[t->nold - 1] : NULL;
	if (strcmp(status, "completed") == 0) {
		/* Its id is its dependents' blockedBy, unless it lived on an
		 * in-process control plane that is gone: then no blocker. */
		t->st = TASK_COMPLETED;
		t->id = last != NULL && !r->builtin ? strdup(last) : NULL;
		r->e->nterminal++;
	} else if (!r->builtin && last != NULL &&
		   (strcmp(status, "submitted") == 0 || strcmp(status, "running") == 0 ||
		    strcmp(status, "pending") == 0)) {
		/* Still on the control plane: follow it again. */
		t->id = strdup(last);
		t->st = TASK_SUBMITTED;
		t->submitted_ms = tlm_eng__now_ms();
		r->e->any_submitted = 1;
	} else if (!r->builtin && strcmp(status, "pending") == 0) {
		t->st = TASK_UNKNOWN; /* the create's outcome is unknown */
		r->e->any_submitted = 1;
	} else if (strcmp(status, "submitted") == 0 || strcmp(status, "running") == 0 ||
		   strcmp(status, "pending") == 0) {
		/* Gone with the old control plane: that attempt is over. */
		close_attempt(r->e, t, last);
	}
	free(t->message);
	t->message = NULL;
}

static int index_tasks(restore *r)
{
	const tlm_spec *s = r->e->spec;
	size_t i, n;

	r->keys = calloc(s->ntasks + 1, sizeof(*r->keys));
	if (r->keys == NULL)
		return -1;
	for (i = 0; i < s->ntasks; i++) {
		n = strlen(s->teams[s->tasks[i].team].name) + strlen(s->tasks[i].subject) + 2;
		if ((r->keys[i] = malloc(n)) == NULL)
			return -1;
		snprintf(r->keys[i], n, "%s/%s", s->teams[s->tasks[i].team].name,
			 s->tasks[i].subject);
		if (tlm_strmap_put(&r->tasks, r->keys[i], i, NULL) < 0)
			return -1;
	}
	return 0;
}

static void restore_free(restore *r)
{
	size_t i;

	for (i = 0; r->keys != NULL && i < r->e->spec->ntasks; i++)
		free(r->keys[i]);
	free(r->keys);
	tlm_strmap_clear(&r->tasks);
}

/* A create the dead owner sent may still land until one request timeout
 * after it was last alive: when some outcome is open, wait that out once
 * for all of them; then one lookup each is enough. */
static void settle_open(eng *e, long heartbeat_age_ms)
{
	size_t i, open = 0;

	for (i = 0; i < e->spec->nagents; i++)
		open += e->agents[i].st == RES_UNKNOWN;
	for (i = 0; i < e->spec->nteams; i++)
		open += e->teams[i].st == RES_UNKNOWN;
	if (open == 0 || heartbeat_age_ms < 0 || heartbeat_age_ms >= tlm_eng__request_timeout(e))
		return;
	tlm_eng__log(
		e, TLM_ENGINE_INFO,
		"%zu create(s) of the previous owner (alive %.1f s ago) may still land: waiting %.1f s",
		open, (double)heartbeat_age_ms / 1000.0,
		(double)(tlm_eng__request_timeout(e) - heartbeat_age_ms) / 1000.0);
	tlm_eng__wait(e, tlm_eng__request_timeout(e) - heartbeat_age_ms);
}

int tlm_eng__restore(eng *e, const char *control_plane, long heartbeat_age_ms, tlm_error *err)
{
	restore r = { e, 0, TLM_STRMAP_INIT, NULL, err };
	const tlm_spec *s = e->spec;
	size_t i, k;
	int rc;

	r.builtin = control_plane != NULL && strcmp(control_plane, TLM_JOURNAL_BUILTIN) == 0;
	/* A create the dead owner sent within the last request timeout may
	 * still be committed by the server: look, wait, look before posting. */
	if (index_tasks(&r) != 0) {
		restore_free(&r);
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	rc = tlm_journal_resources(e->j, e->run_id, on_resource, &r, err);
	if (rc == 0)
		settle_open(e, heartbeat_age_ms);
	if (rc == 0)
		rc = tlm_journal_tasks(e->j, e->run_id, on_task, &r, err);
	for (i = 0; rc == 0 && i < s->ntasks; i++)
		settle_task(&r, &e->tasks[i]);
	for (i = 0; rc == 0 && i < s->ntasks; i++)
		for (k = 0; k < s->tasks[i].ndeps; k++)
			if (e->tasks[s->tasks[i].deps[k]].st == TASK_COMPLETED)
				e->tasks[i].deps_left--;
	restore_free(&r);
	return rc;
}
