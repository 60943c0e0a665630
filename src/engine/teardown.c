/* Teardown (DESIGN §4.7, LESSONS 5, 6): what to delete comes from the
 * journal — not from memory — joined with a sweep of the control plane for
 * the run's names, so an intent whose outcome was never learnt, or a
 * duplicate a slow server made, is deleted too.  Agents are stopped, then
 * deleted; a 404 means already gone; an error is recorded and teardown goes
 * on; what is left is listed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

typedef struct td_item {
	eng *e;
	tlm_journal_kind kind;
	char *name, *id;
	int journaled; /* a journal row (else found only by the sweep) */
	int settled;   /* deleted, gone, or proven absent */
	int abandoned; /* the operator gave up on it: left alone, not a leftover */
	char *error;
} td_item;

typedef struct td {
	eng *e;
	td_item *items;
	size_t n, cap;
	int swept[2]; /* the sweep of agents / teams succeeded */
} td;

static td_item *add(td *t, tlm_journal_kind kind, const char *name, const char *id, int journaled)
{
	td_item *it;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		td_item *p = realloc(t->items, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		t->items = p;
		t->cap = cap;
	}
	it = &t->items[t->n++];
	memset(it, 0, sizeof(*it));
	it->e = t->e;
	it->kind = kind;
	it->name = strdup(name);
	it->id = id != NULL ? strdup(id) : NULL;
	it->journaled = journaled;
	return it;
}

static int from_journal(const tlm_journal_resource *r, void *ctx)
{
	td_item *it;

	if (r->state == TLM_JOURNAL_DELETED || r->state == TLM_JOURNAL_ABSENT)
		return 0;
	if ((it = add(ctx, r->kind, r->name, r->remote_id, 1)) == NULL)
		return TLM_ERROR;
	/* Kept in the list so that the sweep recognises it and leaves it. */
	if (r->state == TLM_JOURNAL_ABANDONED)
		it->abandoned = it->settled = 1;
	return 0;
}

typedef struct sweep_ctx {
	td *t;
	tlm_journal_kind kind;
} sweep_ctx;

/* A resource of this run on the control plane: known by id, the answer to
 * an intent, or an extra (duplicate) to delete as well. */
static int from_sweep(void *ctx, json_t *item)
{
	sweep_ctx *s = ctx;
	td *t = s->t;
	eng *e = t->e;
	const char *name = json_string_value(json_object_get(item, "name"));
	const char *id = json_string_value(json_object_get(item, "id"));
	tlm_error err = TLM_ERROR_INIT;
	size_t i;

	if (name == NULL || id == NULL || strncmp(name, e->prefix, strlen(e->prefix)) != 0)
		return 0;
	for (i = 0; i < t->n; i++)
		if (t->items[i].kind == s->kind &&
		    ((t->items[i].id != NULL && strcmp(t->items[i].id, id) == 0) ||
		     (t->items[i].abandoned && strcmp(t->items[i].name, name) == 0)))
			return 0; /* known, or abandoned by the operator */
	for (i = 0; i < t->n; i++) {
		td_item *it = &t->items[i];

		if (it->kind == s->kind && it->id == NULL && strcmp(it->name, name) == 0) {
			it->id = strdup(id);
			(void)tlm_journal_created(e->j, e->run_id, s->kind, name, id, &err);
			tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s: found by name (id %s)",
				     tlm_journal_kind_name(s->kind), name, id);
			return 0;
		}
	}
	tlm_eng__log(e, TLM_ENGINE_WARN, "%s %s (id %s) is not in the journal: deleting it too",
		     tlm_journal_kind_name(s->kind), name, id);
	return add(t, s->kind, name, id, 0) != NULL ? 0 : TLM_ERROR;
}

static void sweep(td *t, tlm_journal_kind kind)
{
	sweep_ctx s = { t, kind };
	tlm_error err = TLM_ERROR_INIT;
	const char *path = kind == TLM_JOURNAL_AGENT ? "/v1/agents" : "/v1/teams";

	if (tlm_client_list_all(t->e->c, path, kind == TLM_JOURNAL_AGENT ? "agents" : "teams",
				from_sweep, &s, &err) == 0)
		t->swept[kind] = 1;
	else
		tlm_eng__log(t->e, TLM_ENGINE_WARN, "listing %s: %s", path + 4, err.message);
}

/* A create whose outcome is unknown and that the sweep did not find may
 * still be committed by a slow server (it is how the request timed out, or
 * the process that sent it died a moment ago): look again once it cannot
 * land any more, before calling it absent. */
static void settle(td *t)
{
	size_t i, open = 0;

	for (i = 0; i < t->n; i++)
		if (t->items[i].id == NULL && !t->items[i].abandoned)
			open++;
	if (open == 0 || t->e->settle_ms <= 0 || t->e->abandoned)
		return;
	tlm_eng__log(t->e, TLM_ENGINE_INFO,
		     "%zu create(s) of unknown outcome not found; looking again in %.1f s", open,
		     (double)t->e->settle_ms / 1000.0);
	tlm_eng__wait(t->e, t->e->settle_ms);
	sweep(t, TLM_JOURNAL_AGENT);
	sweep(t, TLM_JOURNAL_TEAM);
}

static void mark(td_item *it, tlm_journal_state st, const char *error)
{
	tlm_error err = TLM_ERROR_INIT;

	if (it->journaled)
		(void)tlm_journal_set_resource_state(it->e->j, it->e->run_id, it->kind, it->name,
						     st, error, &err);
}

static void on_deleted(void *ctx, const tlm_client_result *res)
{
	td_item *it = ctx;

	if (res->outcome == TLM_CLIENT_DONE || res->outcome == TLM_CLIENT_GONE) {
		it->settled = 1;
		mark(it, TLM_JOURNAL_DELETED, NULL);
		tlm_eng__log(it->e, TLM_ENGINE_INFO, "%s %s deleted",
			     tlm_journal_kind_name(it->kind), it->name);
		return;
	}
	it->error = strdup(res->err->message);
	mark(it, TLM_JOURNAL_DELETING, res->err->message);
	tlm_eng__log(it->e, TLM_ENGINE_ERROR, "%s %s: delete failed: %s",
		     tlm_journal_kind_name(it->kind), it->name, res->err->message);
}

static void submit_delete(td_item *it)
{
	char path[TLM_JOURNAL_TEXT_MAX + 32];
	tlm_error err = TLM_ERROR_INIT;

	snprintf(path, sizeof(path), "/v1/%s/%s",
		 it->kind == TLM_JOURNAL_AGENT ? "agents" : "teams", it->id);
	if (tlm_client_submit(it->e->c, "DELETE", path, NULL, TLM_CLIENT_DELETE, on_deleted, it,
			      &err) != 0)
		it->error = strdup(err.message);
}

/* A stop that fails is no reason not to delete (deleting stops too on the
 * built-in server; upstream keeps no process for a deleted agent). */
static void on_stopped(void *ctx, const tlm_client_result *res)
{
	td_item *it = ctx;

	if (res->outcome == TLM_CLIENT_FAILED && res->status != 404)
		tlm_eng__log(it->e, TLM_ENGINE_WARN, "agent %s: stop failed: %s; deleting anyway",
			     it->name, res->err->message);
	submit_delete(it);
}

static void start_item(td_item *it)
{
	char path[TLM_JOURNAL_TEXT_MAX + 32];
	tlm_error err = TLM_ERROR_INIT;

	mark(it, TLM_JOURNAL_DELETING, NULL);
	if (it->kind == TLM_JOURNAL_TEAM) {
		submit_delete(it);
		return;
	}
	snprintf(path, sizeof(path), "/v1/agents/%s/stop", it->id);
	if (tlm_client_submit(it->e->c, "POST", path, NULL, TLM_CLIENT_POST_ACTION, on_stopped, it,
			      &err) != 0)
		submit_delete(it);
}

static void add_leftover(eng *e, const td_item *it, const char *why)
{
	tlm_engine_result *r = e->res;
	tlm_engine_leftover *p = realloc(r->leftovers, (r->nleftovers + 1) * sizeof(*p));

	if (p == NULL)
		return;
	r->leftovers = p;
	p = &r->leftovers[r->nleftovers++];
	p->kind = strdup(tlm_journal_kind_name(it->kind));
	p->name = strdup(it->name);
	p->remote_id = it->id != NULL ? strdup(it->id) : NULL;
	p->error = strdup(why);
}

static void td_free(td *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->items[i].name);
		free(t->items[i].id);
		free(t->items[i].error);
	}
	free(t->items);
}

/* Everything the journal still counts as existing, for a run whose policy
 * keeps it. */
void tlm_eng__list_kept(eng *e, const char *why)
{
	tlm_error err = TLM_ERROR_INIT;
	td t = { e, NULL, 0, 0, { 0, 0 } };
	size_t i;

	(void)tlm_journal_resources(e->j, e->run_id, from_journal, &t, &err);
	for (i = 0; i < t.n; i++) {
		if (t.items[i].abandoned)
			continue;
		add_leftover(e, &t.items[i], why);
		/* The in-process control plane stops with the run and takes
		 * them along: the journal must not list them as existing. */
		if (e->srv != NULL)
			mark(&t.items[i], TLM_JOURNAL_ABSENT,
			     "the in-process control plane stopped");
	}
	td_free(&t);
}

void tlm_eng__teardown(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	td t = { e, NULL, 0, 0, { 0, 0 } };
	size_t i;

	tlm_eng__progress(e, "tearing down");
	(void)tlm_journal_run_set_state(e->j, e->run_id, "tearing_down", &err);
	if (tlm_journal_resources(e->j, e->run_id, from_journal, &t, &err) != 0)
		tlm_eng__log(e, TLM_ENGINE_ERROR, "journal: %s", err.message);
	sweep(&t, TLM_JOURNAL_AGENT);
	sweep(&t, TLM_JOURNAL_TEAM);
	settle(&t);
	for (i = 0; i < t.n && !e->abandoned; i++) {
		if (t.items[i].abandoned)
			continue;
		if (t.items[i].id != NULL)
			start_item(&t.items[i]);
		else if (t.swept[t.items[i].kind]) {
			t.items[i].settled = 1; /* the create never took effect */
			mark(&t.items[i], TLM_JOURNAL_ABSENT, NULL);
		}
	}
	tlm_eng__drain(e);
	for (i = 0; i < t.n; i++) {
		const td_item *it = &t.items[i];

		if (it->settled)
			continue;
		add_leftover(
			e, it,
			it->error != NULL ? it->error
			: it->id == NULL
				? "create outcome unknown and the control plane could not be listed"
			: e->abandoned ? "not deleted: the run was abandoned"
				       : "not deleted");
	}
	td_free(&t);
}
