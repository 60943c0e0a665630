/* Teardown (docs/design.md §4, docs/lessons.md #5, #6): what to delete comes
 * from the journal — not from memory — joined with a sweep of the control
 * plane for the run's names, so an intent whose outcome was never learnt, or
 * a duplicate a slow server made, is deleted too.  Agents are stopped, then
 * deleted (remove.c); a 404 means already gone; an error is recorded and
 * teardown goes on; what is left is listed.  Every wait is a turn of the
 * engine's loop: a huge or endless listing cannot stop the heartbeat, and a
 * second signal leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

typedef struct td td;

typedef struct td_item {
	eng *e;
	td *t;
	eng_rs rs;     /* rs.journaled: a journal row; else found only by the sweep */
	int settled;   /* deleted, gone, or proven absent */
	int abandoned; /* the operator gave up on it: left alone, not a leftover */
	int unusable;  /* its id cannot be used: sent nothing, a leftover (refuse()) */
	int started;   /* its delete was started */
	int was_alive; /* created or started when its delete was started */
	int gone;      /* a journal row deleted or absent: only its id is remembered */
	char *found;   /* an intent found by name under an id it cannot use */
	char *pair;    /* "LEN:NAME" + id: this resource, once its id is known */
	char *error;
} td_item;

struct td {
	eng *e;
	td_item **items; /* pointers: the maps borrow names and ids from items */
	size_t n, cap;
	tlm_strmap ids[2];   /* remote id -> first item with it, per kind */
	tlm_strmap names[2]; /* name -> first item with it, per kind */
	tlm_strmap pairs[2]; /* name and id -> item: a resource listed again is known */
	tlm_strmap gone[2];  /* remote id -> gone item: ids of deleted resources */
	int swept[2];        /* the sweep of agents / teams succeeded */
	char *unswept[2];    /* why it failed (the last time), or NULL */
	int listing;         /* sweeps (and checks of kept resources) in flight */
	int oom;
};

#define NONE ((size_t)-1)

/* Registers item i's name and id (once known) in the maps; *twin gets the
 * item that had the id first (NONE if none).  0, or -1 out of memory. */
static int index_item(td *t, size_t i, size_t *twin)
{
	td_item *it = t->items[i];
	tlm_journal_kind k = it->rs.kind;
	const char *id = it->rs.id != NULL ? it->rs.id : it->found;
	size_t first = NONE;
	int rc;

	if (twin != NULL)
		*twin = NONE;
	if (tlm_strmap_put(&t->names[k], it->rs.name, i, NULL) < 0)
		return -1;
	if (id == NULL)
		return 0;
	if (it->pair == NULL) {
		if ((it->pair = tlm_strmap_pair_key(it->rs.name, id)) == NULL ||
		    tlm_strmap_put(&t->pairs[k], it->pair, i, NULL) < 0)
			return -1;
	}
	if ((rc = tlm_strmap_put(&t->ids[k], id, i, &first)) < 0)
		return -1;
	if (rc == 1 && first != i && twin != NULL)
		*twin = first;
	return 0;
}

static td_item *add(td *t, tlm_journal_kind kind, const char *name, const char *id, int journaled,
		    tlm_journal_state st, size_t *twin)
{
	td_item *it;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		td_item **p = realloc(t->items, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		t->items = p;
		t->cap = cap;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return NULL;
	it->e = t->e;
	it->t = t;
	it->rs.kind = kind;
	it->rs.journaled = journaled;
	it->rs.st = st;
	snprintf(it->rs.name, sizeof(it->rs.name), "%s", name);
	if (id != NULL && (it->rs.id = strdup(id)) == NULL) {
		free(it);
		return NULL;
	}
	t->items[t->n++] = it;
	if (index_item(t, t->n - 1, twin) != 0)
		return NULL; /* it stays in items: td_free frees it */
	return it;
}

/* Item it cannot be reached by the id the control plane gave it: no path
 * holds the id, or the id is another resource's too (a request by id
 * reaches one of them, and one delete would count for two).  It is sent
 * nothing, its journal row (if any) gets why, and it is a leftover: the
 * operator deletes it by other means, then abandons it. */
static void refuse(td_item *it, const char *why)
{
	it->unusable = 1;
	free(it->error);
	it->error = strdup(why);
	if (it->error == NULL)
		(void)tlm_eng__oom(it->e);
	(void)tlm_eng__res_note(it->e, &it->rs, why);
	tlm_eng__log(it->e, TLM_ENGINE_WARN, "%s %s: %s; left as it is",
		     tlm_journal_kind_name(it->rs.kind), it->rs.name, why);
}

/* Refuses item i if its id is twin's too or cannot be addressed. */
static void check_id(td *t, size_t i, size_t twin)
{
	td_item *it = t->items[i];
	const char *id = it->rs.id != NULL ? it->rs.id : it->found;
	tlm_error err = TLM_ERROR_INIT;
	char why[TLM_ERROR_MSG_MAX + TLM_JOURNAL_NAME_MAX + 128], shown[ENG_SHORT_ID];

	if (id == NULL)
		return;
	tlm_eng__short_id(id, shown, sizeof(shown));
	if (twin != NONE) {
		snprintf(why, sizeof(why),
			 "its id %s is also that of %s: one delete cannot count for both", shown,
			 t->items[twin]->rs.name);
		refuse(it, why);
	} else if (tlm_eng__addressable(it->rs.kind, id, &err) != 0) {
		snprintf(why, sizeof(why), "its id %s cannot be addressed: %s", shown, err.message);
		refuse(it, why);
	}
}

/* A resource the journal says is deleted or absent is left alone (listed
 * again, it is an extra and deleted again); its id is remembered, so that
 * another name listed under it is known for what it is. */
static int add_gone(td *t, const tlm_journal_resource *r)
{
	td_item *it;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		td_item **p = realloc(t->items, cap * sizeof(*p));

		if (p == NULL)
			return TLM_ERROR;
		t->items = p;
		t->cap = cap;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return TLM_ERROR;
	it->e = t->e;
	it->t = t;
	it->rs.kind = r->kind;
	it->rs.st = r->state;
	it->gone = it->settled = 1;
	snprintf(it->rs.name, sizeof(it->rs.name), "%s", r->name);
	t->items[t->n++] = it;
	if ((it->rs.id = strdup(r->remote_id)) == NULL ||
	    tlm_strmap_put(&t->gone[r->kind], it->rs.id, t->n - 1, NULL) < 0)
		return TLM_ERROR;
	return 0;
}

static int from_journal(const tlm_journal_resource *r, void *ctx)
{
	td *t = ctx;
	td_item *it;

	if (r->state == TLM_JOURNAL_DELETED || r->state == TLM_JOURNAL_ABSENT)
		return r->remote_id != NULL ? add_gone(t, r) : 0;
	if ((it = add(t, r->kind, r->name, r->remote_id, 1, r->state, NULL)) == NULL)
		return TLM_ERROR;
	/* Kept in the list so that the sweep recognises it and leaves it. */
	if (r->state == TLM_JOURNAL_ABANDONED)
		it->abandoned = it->settled = 1;
	return 0;
}

/* Once every row is read: a row whose id another row has (or had, before
 * it was deleted) cannot be told apart from it by id, nor one no path
 * holds; both are refused. */
static void check_rows(td *t)
{
	size_t i, twin;

	for (i = 0; i < t->n; i++) {
		td_item *it = t->items[i];

		if (it->gone || it->abandoned || it->rs.id == NULL)
			continue;
		if ((tlm_strmap_get(&t->ids[it->rs.kind], it->rs.id, &twin) != 0 || twin == i) &&
		    (tlm_strmap_get(&t->gone[it->rs.kind], it->rs.id, &twin) != 0 ||
		     strcmp(t->items[twin]->rs.name, it->rs.name) == 0))
			twin = NONE;
		check_id(t, i, twin);
	}
}

typedef struct sweep_ctx {
	td *t;
	tlm_journal_kind kind;
} sweep_ctx;

/* The answer to intent i: journaled before anything is done about it,
 * unless the id cannot be used (then it is only noted). */
static int found_intent(td *t, size_t i, const char *id)
{
	eng *e = t->e;
	td_item *it = t->items[i];
	char *copy = strdup(id), shown[ENG_SHORT_ID];
	tlm_error err = TLM_ERROR_INIT;
	size_t twin = NONE;

	if (copy == NULL)
		return TLM_ERROR;
	if (tlm_strmap_get(&t->ids[it->rs.kind], id, &twin) != 0 &&
	    (tlm_strmap_get(&t->gone[it->rs.kind], id, &twin) != 0 ||
	     strcmp(t->items[twin]->rs.name, it->rs.name) == 0))
		twin = NONE;
	if (twin != NONE || tlm_eng__addressable(it->rs.kind, id, &err) != 0) {
		it->found = copy;
		if (index_item(t, i, NULL) != 0)
			return TLM_ERROR;
		check_id(t, i, twin);
		return 0;
	}
	if (tlm_eng__res_to(e, &it->rs, TLM_JOURNAL_CREATED, copy, NULL) != 0) {
		/* The run fails; the item stays a leftover, with the id found. */
		it->unusable = 1;
		if ((it->found = strdup(id)) == NULL ||
		    (it->error = strdup("found by name, but the journal could not record it")) ==
			    NULL)
			return TLM_ERROR;
		return 0;
	}
	if (index_item(t, i, NULL) != 0)
		return TLM_ERROR;
	tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s: found by name (id %s)",
		     tlm_journal_kind_name(it->rs.kind), it->rs.name,
		     tlm_eng__short_id(id, shown, sizeof(shown)));
	return 0;
}

/* A resource of this run on the control plane: one already known (by name
 * and id), the answer to an intent, another name under a known id (a
 * leftover: refused), or an extra — a duplicate — to delete as well.
 * Constant time per item, so a long listing costs no more than reading
 * it. */
static int from_sweep(void *ctx, json_t *item)
{
	sweep_ctx *s = ctx;
	td *t = s->t;
	tlm_journal_kind k = s->kind;
	const char *name = json_string_value(json_object_get(item, "name"));
	const char *id = json_string_value(json_object_get(item, "id"));
	char *key, shown[ENG_SHORT_ID], longname[TLM_JOURNAL_NAME_MAX];
	size_t i, twin;
	int rc = 0, known;

	if (name == NULL || id == NULL || strncmp(name, t->e->prefix, strlen(t->e->prefix)) != 0)
		return 0; /* not ours */
	/* No run makes a name this long, but it carries the run's prefix: it
	 * is an extra, known by its start (escaped, cut whole: never a
	 * broken character in the summary). */
	if (strlen(name) > TLM_JOURNAL_NAME_MAX)
		name = tlm_eng__short_id(name, longname, TLM_JOURNAL_NAME_MAX - 3);
	/* Listed before (a page again, a second sweep): nothing new. */
	if ((key = tlm_strmap_pair_key(name, id)) == NULL)
		goto oom;
	known = tlm_strmap_get(&t->pairs[k], key, &i) == 0;
	free(key);
	if (known)
		return 0;
	if (tlm_strmap_get(&t->names[k], name, &i) == 0) {
		td_item *it = t->items[i];

		if (it->abandoned)
			return 0; /* the operator's word: left alone */
		if (it->rs.id == NULL && it->found == NULL) {
			rc = found_intent(t, i, id);
			goto done;
		}
	}
	if (tlm_strmap_get(&t->ids[k], id, &twin) == 0 ||
	    (tlm_strmap_get(&t->gone[k], id, &twin) == 0 &&
	     strcmp(t->items[twin]->rs.name, name) != 0)) {
		/* Another name under an id already known (or once known). */
		if (add(t, k, name, id, 0, TLM_JOURNAL_CREATED, NULL) == NULL)
			goto oom;
		check_id(t, t->n - 1, twin);
		goto done;
	}
	tlm_eng__log(t->e, TLM_ENGINE_WARN, "%s %s (id %s) is not in the journal: deleting it too",
		     tlm_journal_kind_name(k), name, tlm_eng__short_id(id, shown, sizeof(shown)));
	if (add(t, k, name, id, 0, TLM_JOURNAL_CREATED, NULL) == NULL)
		goto oom;
	check_id(t, t->n - 1, NONE);
done:
	t->oom |= rc != 0; /* the only way this walk fails */
	return rc;
oom:
	t->oom = 1;
	return TLM_ERROR;
}

/* A sweep that failed leaves the run unverified: a duplicate or a create
 * of unknown outcome may be on the control plane under the run's prefix.
 * The run reports it as a leftover (docs/recovery.md), never as clean. */
static void unswept(td *t, int kind, const char *why)
{
	free(t->unswept[kind]);
	if ((t->unswept[kind] = strdup(why)) == NULL)
		t->oom = 1;
}

static void on_swept(void *ctx, int rc, const tlm_error *err)
{
	sweep_ctx *s = ctx;
	td *t = s->t;

	t->listing--;
	if (rc == TLM_ECANCELLED) {
		free(s);
		return;
	}
	if (rc == 0) {
		t->swept[s->kind] = 1;
	} else {
		tlm_eng__log(t->e, TLM_ENGINE_WARN, "listing %ss: %s",
			     tlm_journal_kind_name(s->kind), err != NULL ? err->message : "failed");
		unswept(t, s->kind, err != NULL ? err->message : "failed");
	}
	free(s);
}

/* Lists agents and teams at once and waits (turning) for both. */
static void sweep(td *t)
{
	tlm_error err = TLM_ERROR_INIT;
	int k;

	for (k = TLM_JOURNAL_AGENT; k <= TLM_JOURNAL_TEAM; k++) {
		sweep_ctx *s = calloc(1, sizeof(*s));

		if (s == NULL) {
			t->oom = 1;
			continue;
		}
		s->t = t;
		s->kind = (tlm_journal_kind)k;
		if (tlm_client_list(t->e->c, k == TLM_JOURNAL_AGENT ? "/v1/agents" : "/v1/teams",
				    k == TLM_JOURNAL_AGENT ? "agents" : "teams", from_sweep,
				    on_swept, s, &err) == 0) {
			t->listing++;
		} else {
			tlm_eng__log(t->e, TLM_ENGINE_WARN, "listing: %s", err.message);
			unswept(t, k, err.message);
			free(s);
		}
	}
	while (t->listing > 0 && tlm_eng__turn(t->e, ENG_TICK_MS))
		;
}

/* A create whose outcome is unknown and that the sweep did not find may
 * still be committed by a slow server (it is how the request timed out, or
 * the process that sent it died a moment ago): look again once it cannot
 * land any more, before calling it absent. */
static void settle(td *t)
{
	size_t i, open = 0;

	for (i = 0; i < t->n; i++)
		if (t->items[i]->rs.id == NULL && t->items[i]->found == NULL &&
		    !t->items[i]->abandoned)
			open++;
	if (open == 0 || t->e->settle_ms <= 0 || t->e->stop != STOP_NONE)
		return;
	tlm_eng__log(t->e, TLM_ENGINE_INFO,
		     "%zu create(s) of unknown outcome not found; looking again in %.1f s", open,
		     (double)t->e->settle_ms / 1000.0);
	tlm_eng__wait(t->e, t->e->settle_ms);
	t->swept[0] = t->swept[1] = 0;
	sweep(t);
}

static void mark(td_item *it, tlm_journal_state st, const char *error)
{
	if (it->rs.journaled)
		(void)tlm_eng__res_to(it->e, &it->rs, st, NULL, error);
}

static void on_deleted(void *ctx, const tlm_client_result *res)
{
	td_item *it = ctx;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	/* Believed alive, and gone before our first delete reached it. */
	if (res->outcome == TLM_CLIENT_GONE && res->attempts <= 1 && it->was_alive &&
	    tlm_eng__vanished(it->e, &it->rs)) {
		it->settled = 1;
		return;
	}
	if (res->outcome == TLM_CLIENT_DONE || res->outcome == TLM_CLIENT_GONE) {
		it->settled = 1;
		mark(it, TLM_JOURNAL_DELETED, NULL);
		tlm_eng__log(it->e, TLM_ENGINE_INFO, "%s %s deleted",
			     tlm_journal_kind_name(it->rs.kind), it->rs.name);
		return;
	}
	free(it->error);
	it->error = strdup(res->err->message);
	mark(it, TLM_JOURNAL_DELETING, res->err->message);
	tlm_eng__log(it->e, TLM_ENGINE_ERROR, "%s %s: delete failed: %s",
		     tlm_journal_kind_name(it->rs.kind), it->rs.name, res->err->message);
}

static void start_item(td_item *it)
{
	tlm_error err = TLM_ERROR_INIT;

	it->started = 1;
	it->was_alive = it->rs.journaled &&
			(it->rs.st == TLM_JOURNAL_CREATED || it->rs.st == TLM_JOURNAL_STARTED);
	/* Write-ahead: "deleting" is durable before the request leaves. */
	if (it->rs.journaled &&
	    tlm_eng__res_to(it->e, &it->rs, TLM_JOURNAL_DELETING, NULL, NULL) != 0)
		return;
	if (tlm_eng__remove(it->e->c, it->rs.kind, it->rs.id, on_deleted, it, &err) != 0) {
		it->error = strdup(err.message);
		mark(it, TLM_JOURNAL_DELETING, err.message);
		tlm_eng__log(it->e, TLM_ENGINE_ERROR, "%s %s: delete failed: %s",
			     tlm_journal_kind_name(it->rs.kind), it->rs.name, err.message);
	}
}

/* Starts the delete of every item with a usable id not started yet. */
static void start_known(td *t)
{
	size_t i;

	for (i = 0; i < t->n && t->e->stop == STOP_NONE; i++) {
		td_item *it = t->items[i];

		if (!it->started && !it->abandoned && !it->unusable && !it->gone &&
		    it->rs.id != NULL)
			start_item(it);
	}
}

static void td_free(td *t)
{
	size_t i;
	int k;

	for (k = 0; k < 2; k++) {
		free(t->unswept[k]);
		tlm_strmap_clear(&t->ids[k]);
		tlm_strmap_clear(&t->names[k]);
		tlm_strmap_clear(&t->pairs[k]);
		tlm_strmap_clear(&t->gone[k]);
	}
	for (i = 0; i < t->n; i++) {
		free(t->items[i]->rs.id);
		free(t->items[i]->found);
		free(t->items[i]->pair);
		free(t->items[i]->error);
		free(t->items[i]);
	}
	free(t->items);
}

static int load(eng *e, td *t)
{
	tlm_error err = TLM_ERROR_INIT;
	int rc = tlm_journal_resources(e->j, e->run_id, from_journal, t, &err);

	if (rc == TLM_ERROR && err.code == 0)
		return tlm_eng__oom(e);
	if (rc == 0)
		check_rows(t);
	return tlm_eng__journal_check(e, rc, &err);
}

static void on_checked(void *ctx, const tlm_client_result *res)
{
	td_item *it = ctx;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return;
	it->t->listing--;
	if (res->status != 404)
		return;
	if (it->rs.st == TLM_JOURNAL_DELETING) /* an earlier delete did it */
		mark(it, TLM_JOURNAL_DELETED, NULL);
	else
		(void)tlm_eng__vanished(it->e, &it->rs);
	it->gone = 1;
}

/* Asks for every kept resource with an id (GET by id), so that one that
 * vanished is recorded absent, not listed as kept. */
static void check_kept(td *t)
{
	char path[ENG_PATH_MAX];
	size_t i;

	for (i = 0; i < t->n && t->e->stop == STOP_NONE; i++) {
		td_item *it = t->items[i];

		if (it->abandoned || it->gone || it->unusable || it->rs.id == NULL ||
		    tlm_client_path(path, sizeof(path),
				    it->rs.kind == TLM_JOURNAL_AGENT ? "/v1/agents/" : "/v1/teams/",
				    it->rs.id, NULL, NULL, NULL, NULL) != 0)
			continue;
		if (tlm_client_submit(t->e->c, "GET", path, NULL, TLM_CLIENT_GET, on_checked, it,
				      NULL) == 0)
			t->listing++;
	}
	while (t->listing > 0 && tlm_eng__turn(t->e, ENG_TICK_MS))
		;
	if (t->listing > 0)
		tlm_client_cancel_all(t->e->c);
}

int tlm_eng__list_kept(eng *e, const char *why)
{
	td t;
	size_t i;
	int rc;

	memset(&t, 0, sizeof(t));
	t.e = e;
	rc = load(e, &t);
	if (rc == 0 && !e->o->in_process)
		check_kept(&t);
	for (i = 0; rc == 0 && i < t.n; i++) {
		td_item *it = t.items[i];

		if (it->abandoned || it->gone)
			continue;
		tlm_eng__add_leftover(e, it->rs.kind, it->rs.name, it->rs.id, why);
		/* An in-process control plane stops with the run and takes them
		 * along: the journal must not list them as existing. */
		if (e->o->in_process)
			mark(it, TLM_JOURNAL_ABSENT, "the in-process control plane stopped");
	}
	td_free(&t);
	return rc;
}

static const char *why_left(const eng *e, const td_item *it)
{
	if (it->error != NULL)
		return it->error;
	if (it->rs.id == NULL)
		return "create outcome unknown and the control plane could not be listed";
	return e->stop != STOP_NONE ? "not deleted: the run was abandoned" : "not deleted";
}

/* One leftover per kind the control plane would not list, named by the
 * run's prefix: what may remain there is unknown, so the run is not clean
 * and a later `teardown RUN` looks again. */
static void report_unswept(eng *e, const td *t)
{
	char name[TLM_NAME_MAX + 2], why[TLM_ERROR_MSG_MAX];
	int k;

	for (k = TLM_JOURNAL_AGENT; k <= TLM_JOURNAL_TEAM; k++) {
		if (t->swept[k] || t->unswept[k] == NULL || e->stop != STOP_NONE)
			continue;
		snprintf(name, sizeof(name), "%s*", e->prefix);
		snprintf(why, sizeof(why),
			 "the %ss could not be listed (%s): extras of the run may remain",
			 tlm_journal_kind_name((tlm_journal_kind)k), t->unswept[k]);
		tlm_eng__add_leftover(e, (tlm_journal_kind)k, name, NULL, why);
	}
}

int tlm_eng__teardown(eng *e)
{
	td t;
	size_t i;
	int rc;

	memset(&t, 0, sizeof(t));
	t.e = e;
	tlm_eng__progress(e, "tearing down");
	if ((rc = tlm_eng__run_to(e, TLM_RUN_TEARING_DOWN)) == 0)
		rc = tlm_eng__end_work(e);
	if (rc == 0)
		rc = load(e, &t);
	/* What is known is deleted at once; creates of unknown outcome are
	 * waited for meanwhile, and deleted once found. */
	if (rc == 0) {
		sweep(&t);
		start_known(&t);
		settle(&t);
		start_known(&t);
	}
	if (t.oom)
		tlm_eng__oom(e);
	for (i = 0; rc == 0 && i < t.n && e->stop == STOP_NONE; i++) {
		td_item *it = t.items[i];

		if (!it->started && !it->abandoned && !it->unusable && !it->gone &&
		    t.swept[it->rs.kind]) {
			it->settled = 1; /* the create never took effect */
			mark(it, TLM_JOURNAL_ABSENT, NULL);
		}
	}
	tlm_eng__drain(e);
	/* Stopped (a second signal, a lost run) with requests pending: they
	 * point into t, which ends here. */
	if (tlm_client_pending(e->c) > 0)
		tlm_client_cancel_all(e->c);
	for (i = 0; i < t.n; i++)
		if (!t.items[i]->settled)
			tlm_eng__add_leftover(e, t.items[i]->rs.kind, t.items[i]->rs.name,
					      t.items[i]->rs.id != NULL ? t.items[i]->rs.id
									: t.items[i]->found,
					      why_left(e, t.items[i]));
	report_unswept(e, &t);
	td_free(&t);
	return rc;
}
