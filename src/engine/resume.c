/* Resuming a run (docs/recovery.md): its state is rebuilt from the journal,
 * not guessed.  Resources with a remote id are adopted (agents started
 * again: start is idempotent); intents — the create may or may not have
 * happened — are resolved by name before anything is posted, the first
 * lookup allowed to wait as long as a create of the dead owner may still
 * land; deleted or absent ones are created again under the same name.
 * Completed tasks stay completed; a task in flight is followed again under
 * its remote id; the others go again as new attempts.  A run on an
 * in-process control plane lost every resource with its process: all of them
 * are recorded absent and made again.  Restoring sets states as the journal
 * has them; every later change goes through states.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

/* A task's last journaled attempt. */
typedef struct last_attempt {
	int seen;
	int has_id; /* its own remote id is known (the newest of old_ids) */
	tlm_attempt_status status;
} last_attempt;

typedef struct restore {
	eng *e;
	int builtin;      /* the old control plane died with the old process */
	long settle;      /* how long a create of the dead owner may still land */
	tlm_strmap tasks; /* "team/subject" -> task index */
	char **keys;
	last_attempt *last; /* per task */
	tlm_error *err;
} restore;

static eng_res *find_res(eng *e, tlm_journal_kind kind, const char *name)
{
	eng_res *items = kind == TLM_JOURNAL_AGENT ? e->agents : e->teams;
	size_t n = kind == TLM_JOURNAL_AGENT ? e->spec->nagents : e->spec->nteams, i;

	for (i = 0; i < n; i++)
		if (strcmp(items[i].rs.name, name) == 0)
			return &items[i];
	/* The settings probe an earlier owner made: restored like an agent,
	 * so that the probe phase deletes or resolves it first (probe.c). */
	if (kind == TLM_JOURNAL_AGENT && strcmp(e->probe.rs.name, name) == 0)
		return &e->probe;
	return NULL;
}

/* A created resource is adopted by its id: one that no path holds, or that
 * another resource of the run has too, cannot be (the run made it a
 * leftover when the control plane gave it; teardown lists it). */
static int adoptable(restore *r, const eng_res *x)
{
	eng *e = r->e;
	const eng_res *items = x->rs.kind == TLM_JOURNAL_AGENT ? e->agents : e->teams;
	size_t n = x->rs.kind == TLM_JOURNAL_AGENT ? e->spec->nagents : e->spec->nteams, i;
	tlm_error err = TLM_ERROR_INIT;

	if (x->rs.id == NULL)
		return 0;
	if (tlm_eng__addressable(x->rs.kind, x->rs.id, &err) != 0)
		return tlm_error_set(r->err, TLM_EINVALID,
				     "%s %s: its id cannot be addressed (%s): the run cannot be "
				     "resumed; `telemachy teardown %s` lists what is left",
				     tlm_journal_kind_name(x->rs.kind), x->rs.name, err.message,
				     e->run_id);
	for (i = 0; i < n; i++)
		if (&items[i] != x && items[i].rs.id != NULL && items[i].rs.journaled &&
		    strcmp(items[i].rs.id, x->rs.id) == 0)
			return tlm_error_set(r->err, TLM_EINVALID,
					     "%s %s has the id of %s: the run cannot be resumed; "
					     "`telemachy teardown %s` lists what is left",
					     tlm_journal_kind_name(x->rs.kind), x->rs.name,
					     items[i].rs.name, e->run_id);
	return 0;
}

static int on_resource(const tlm_journal_resource *row, void *ctx)
{
	restore *r = ctx;
	eng_res *x = find_res(r->e, row->kind, row->name);
	eng *e = r->e;

	if (x == NULL)
		return 0; /* not in this spec: only teardown's sweep cares */
	x->rs.journaled = 1;
	x->rs.st = row->state;
	if (row->remote_id != NULL && (x->rs.id = strdup(row->remote_id)) == NULL)
		return tlm_error_set(r->err, TLM_ERROR, "out of memory");
	if (r->builtin && x->rs.st != TLM_JOURNAL_DELETED && x->rs.st != TLM_JOURNAL_ABSENT &&
	    x->rs.st != TLM_JOURNAL_ABANDONED &&
	    tlm_eng__res_to(e, &x->rs, TLM_JOURNAL_ABSENT, NULL,
			    "the in-process control plane stopped with its run") != 0)
		return tlm_error_set(r->err, TLM_ERROR, "%s", e->error ? e->error : "journal");
	switch (x->rs.st) {
	case TLM_JOURNAL_INTENT:
	case TLM_JOURNAL_DELETING:
		x->settle = r->settle; /* exists or not: the name decides */
		return 0;
	case TLM_JOURNAL_DELETED:
	case TLM_JOURNAL_ABSENT:
		if (tlm_eng__res_to(e, &x->rs, TLM_JOURNAL_INTENT, NULL, NULL) != 0)
			return tlm_error_set(r->err, TLM_ERROR, "%s",
					     e->error ? e->error : "journal");
		return 0;
	case TLM_JOURNAL_ABANDONED:
		return tlm_error_set(r->err, TLM_ECONFLICT,
				     "%s %s was abandoned: the run cannot be resumed with it",
				     tlm_journal_kind_name(row->kind), row->name);
	default: return adoptable(r, x); /* created or started: adopted */
	}
}

static int keep_old_id(eng_task *t, const char *id)
{
	char **p = realloc(t->old_ids, (t->nold + 1) * sizeof(*p));

	if (p == NULL)
		return -1;
	t->old_ids = p;
	if ((p[t->nold] = strdup(id)) == NULL)
		return -1;
	if (tlm_strmap_put(&t->e->by_id, p[t->nold], t->idx, NULL) < 0) {
		free(p[t->nold]);
		return -1;
	}
	t->nold++;
	return 0;
}

/* Rows come by team, subject and attempt: the last one of a task wins. */
static int on_task(const tlm_journal_task *row, void *ctx)
{
	restore *r = ctx;
	char key[TLM_JOURNAL_NAME_MAX * 3 + 4]; /* team (255) "/" subject (512) */
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
		r->last[i].seen = 1;
		r->last[i].status = row->status;
		r->last[i].has_id = row->remote_id != NULL;
	}
	return 0;
}

/* The last attempt's status decides where the task goes on from. */
static int settle_task(restore *r, eng_task *t)
{
	tlm_attempt_status status = r->last[t->idx].status;
	const char *last;
	int open;

	t->attempt_base = t->attempt;
	if (!r->last[t->idx].seen)
		return 0; /* never journaled: a fresh task */
	/* The last attempt's own id: an earlier attempt's, when the last
	 * one's create reply was never journaled, names another task. */
	last = t->nold > 0 && r->last[t->idx].has_id ? t->old_ids[t->nold - 1] : NULL;
	open = status == TLM_ATTEMPT_SUBMITTED || status == TLM_ATTEMPT_RUNNING ||
	       status == TLM_ATTEMPT_PENDING;
	if (status == TLM_ATTEMPT_COMPLETED) {
		/* Its id is its dependents' blockedBy, unless it lived on an
		 * in-process control plane that is gone: then no blocker. */
		tlm_eng__task_set(r->e, t, TASK_COMPLETED);
		if (last != NULL && !r->builtin && (t->id = strdup(last)) == NULL)
			return -1;
		r->e->nterminal++;
	} else if (!r->builtin && last != NULL && open) {
		/* Still on the control plane: follow it again. */
		if ((t->id = strdup(last)) == NULL)
			return -1;
		tlm_eng__task_set(r->e, t, TASK_SUBMITTED);
		t->submitted_ms = tlm_eng__now_ms();
		r->e->any_submitted = 1;
	} else if (!r->builtin && status == TLM_ATTEMPT_PENDING) {
		tlm_eng__task_set(r->e, t, TASK_UNKNOWN); /* the create's outcome is unknown */
		r->e->any_submitted = 1;
	} else if (open) {
		/* Gone with the old control plane: that attempt is over. */
		if (tlm_eng__attempt_record(r->e, t, t->attempt, last, TLM_ATTEMPT_CANCELLED) != 0)
			return -1;
	}
	return 0;
}

static int index_tasks(restore *r)
{
	const tlm_spec *s = r->e->spec;
	size_t i, n;

	r->keys = calloc(s->ntasks + 1, sizeof(*r->keys));
	r->last = calloc(s->ntasks + 1, sizeof(*r->last));
	if (r->keys == NULL || r->last == NULL)
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
	free(r->last);
	tlm_strmap_clear(&r->tasks);
}

int tlm_eng__restore(eng *e, const char *control_plane, long heartbeat_age_ms, tlm_error *err)
{
	restore r = { e, 0, 0, TLM_STRMAP_INIT, NULL, NULL, err };
	const tlm_spec *s = e->spec;
	size_t i, k;
	int rc;

	r.builtin = control_plane != NULL && strcmp(control_plane, TLM_JOURNAL_BUILTIN) == 0;
	/* A create the dead owner sent may still be committed by the server
	 * until one request timeout after it was last alive. */
	if (heartbeat_age_ms >= 0 && heartbeat_age_ms < tlm_eng__request_timeout(e))
		r.settle = tlm_eng__request_timeout(e) - heartbeat_age_ms;
	if (index_tasks(&r) != 0) {
		restore_free(&r);
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	rc = tlm_journal_resources(e->j, e->run_id, on_resource, &r, err);
	if (rc == 0)
		rc = tlm_journal_tasks(e->j, e->run_id, on_task, &r, err);
	for (i = 0; rc == 0 && i < s->ntasks; i++)
		if (settle_task(&r, &e->tasks[i]) != 0)
			rc = tlm_error_set(err, TLM_ERROR, "%s",
					   e->error != NULL ? e->error : "out of memory");
	for (i = 0; rc == 0 && i < s->ntasks; i++)
		for (k = 0; k < s->tasks[i].ndeps; k++)
			if (e->tasks[s->tasks[i].deps[k]].st == TASK_COMPLETED)
				e->tasks[i].deps_left--;
	restore_free(&r);
	return rc;
}
