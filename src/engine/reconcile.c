/* telemachy reconcile (docs/lessons.md #8): the control plane's tlm- agents
 * and teams against the journal.  The name says which run made a resource
 * (telemachy/names.h); the journal says whether that run is alive, ended, or
 * unknown.  Only resources no live or resumable run accounts for are
 * deleted, and only when asked: the ended run is claimed first, so a resume
 * racing with the delete is refused, not overrun.  A one-shot command: it
 * may block (no run's heartbeat depends on it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client_internal.h"
#include "engine/engine_internal.h"
#include "telemachy/client.h"
#include "telemachy/engine.h"
#include "telemachy/journal.h"

/* What the journal says of one run id: asked once per reconcile, however
 * many resources carry it (100,000 listed resources cost 100,000 map
 * lookups, not 100,000 queries). */
typedef struct run_seen {
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	int found;
	tlm_journal_owner owner;
	tlm_run_state state;
} run_seen;

typedef struct rec {
	const tlm_engine_opts *o;
	tlm_client *c;
	tlm_journal *j;
	tlm_engine_reconcile_result *res;
	long older_than_s;
	time_t now;
	tlm_journal_kind kind;
	tlm_error *err;
	run_seen **seen; /* pointers: the map borrows their ids */
	size_t nseen;
	tlm_strmap seen_map;      /* run id -> seen[] */
	tlm_strmap orphan_ids[2]; /* remote id -> first orphan with it, per kind */
	size_t orphans_cap;       /* res->orphans' room */
} rec;

/* The journal's run run_id (cached); NULL out of memory. */
static const run_seen *seen_run(rec *r, const char *run_id)
{
	tlm_journal_run run;
	run_seen *s, **p;
	size_t i;

	if (tlm_strmap_get(&r->seen_map, run_id, &i) == 0)
		return r->seen[i];
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((p = realloc(r->seen, (r->nseen + 1) * sizeof(*p))) == NULL) {
		free(s);
		return NULL;
	}
	r->seen = p;
	snprintf(s->id, sizeof(s->id), "%s", run_id);
	if (tlm_journal_run_get(r->j, run_id, &run, NULL) == 0) {
		s->found = 1;
		s->owner = tlm_journal_run_owner(&run);
		s->state = run.state;
		tlm_journal_run_clear(&run);
	}
	r->seen[r->nseen++] = s;
	if (tlm_strmap_put(&r->seen_map, s->id, r->nseen - 1, NULL) < 0)
		return NULL;
	return s;
}

/* Seconds since createdAt ("YYYY-MM-DDTHH:MM:SS..."), -1 when unreadable. */
static long age_s(const json_t *item, time_t now)
{
	const char *at = json_string_value(json_object_get(item, "createdAt"));
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (at == NULL || sscanf(at, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
				 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long)(now - timegm(&tm));
}

typedef struct row_match {
	tlm_journal_kind kind;
	const char *name, *id;
	int found, same_id;
	tlm_journal_state state;
} row_match;

static int match_row(const tlm_journal_resource *r, void *ctx)
{
	row_match *m = ctx;

	if (r->kind != m->kind || strcmp(r->name, m->name) != 0)
		return 0;
	m->found = 1;
	m->state = r->state;
	m->same_id = r->remote_id != NULL && strcmp(r->remote_id, m->id) == 0;
	return 1;
}

/* Why the resource is (or is not) an orphan; *deletable, *live set. */
static const char *classify(rec *r, const char *run_id, const char *name, const char *id,
			    int *deletable, int *live, char *buf, size_t cap)
{
	row_match m = { r->kind, name, id, 0, 0, TLM_JOURNAL_INTENT };
	const run_seen *run;
	tlm_error err = TLM_ERROR_INIT;

	*deletable = 0;
	*live = 0;
	if (run_id == NULL) {
		*deletable = 1;
		return "named tlm- but carries no run id";
	}
	if ((run = seen_run(r, run_id)) == NULL)
		return NULL; /* out of memory */
	if (!run->found) {
		*deletable = 1;
		return "no run of this journal made it";
	}
	switch (run->owner) {
	case TLM_JOURNAL_OWNER_ALIVE:
		*live = 1;
		snprintf(buf, cap, "run %s is live", run_id);
		break;
	case TLM_JOURNAL_OWNER_DEAD:
		snprintf(
			buf, cap,
			"stranded: run %s (%s) lost its owner; `telemachy resume %s` or `telemachy teardown %s`",
			run_id, tlm_run_state_name(run->state), run_id, run_id);
		break;
	case TLM_JOURNAL_OWNER_NONE:
		if (tlm_journal_resources(r->j, run_id, match_row, &m, &err) < 0) {
			/* Not knowing what the run recorded, nothing is deleted. */
			snprintf(buf, cap, "run %s: its journal rows could not be read: %.200s",
				 run_id, err.message);
			break;
		}
		*deletable = !(m.found && m.state == TLM_JOURNAL_ABANDONED);
		if (!m.found || !m.same_id)
			snprintf(buf, cap, "run %s (%s) never recorded it (a duplicate)", run_id,
				 tlm_run_state_name(run->state));
		else if (m.state == TLM_JOURNAL_ABANDONED)
			snprintf(buf, cap, "abandoned in run %s; not deleted", run_id);
		else
			snprintf(buf, cap, "left by run %s, which ended %s (%s)", run_id,
				 tlm_run_state_name(run->state), tlm_journal_state_name(m.state));
		break;
	}
	return buf;
}

static int add_orphan(rec *r, const char *name, const char *id, const char *run_id, const char *why,
		      int deletable)
{
	tlm_engine_reconcile_result *res = r->res;
	tlm_engine_orphan *p;

	/* Doubling: a listing of a million orphans must not copy the array
	 * a million times. */
	if (res->norphans == r->orphans_cap) {
		size_t cap = r->orphans_cap ? 2 * r->orphans_cap : 64;

		if ((p = realloc(res->orphans, cap * sizeof(*p))) == NULL)
			return tlm_error_set(r->err, TLM_ERROR, "out of memory");
		res->orphans = p;
		r->orphans_cap = cap;
	}
	p = res->orphans;
	p = &p[res->norphans++];
	memset(p, 0, sizeof(*p));
	p->kind = strdup(tlm_journal_kind_name(r->kind));
	p->name = strdup(name);
	p->remote_id = strdup(id);
	p->run_id = run_id != NULL ? strdup(run_id) : NULL;
	p->why = strdup(why);
	p->deletable = deletable;
	if (p->kind == NULL || p->name == NULL || p->remote_id == NULL ||
	    (run_id != NULL && p->run_id == NULL) || p->why == NULL)
		return tlm_error_set(r->err, TLM_ERROR, "out of memory"); /* freed by _clear */
	return 0;
}

/* Two orphans under one id: a delete by that id reaches one of them —
 * which, only the control plane knows — so neither is deleted here. */
static int check_shared(rec *r)
{
	tlm_engine_reconcile_result *res = r->res;
	tlm_engine_orphan *o = &res->orphans[res->norphans - 1], *first;
	char why[ENG_SHORT_ID + 64], shown[ENG_SHORT_ID];
	size_t i;
	int rc = tlm_strmap_put(&r->orphan_ids[r->kind], o->remote_id, res->norphans - 1, &i);

	if (rc < 0)
		return tlm_error_set(r->err, TLM_ERROR, "out of memory");
	first = &res->orphans[i];
	if (rc == 0 || strcmp(first->name, o->name) == 0)
		return 0; /* a new id, or the same resource listed again */
	if (o->deletable) {
		snprintf(why, sizeof(why), "its id is also that of %s: not deleted",
			 tlm_eng__short_id(first->name, shown, sizeof(shown)));
		free(o->why);
		o->why = strdup(why);
		o->deletable = 0;
	}
	if (first->deletable) {
		snprintf(why, sizeof(why), "its id is also that of %s: not deleted",
			 tlm_eng__short_id(o->name, shown, sizeof(shown)));
		free(first->why);
		first->why = strdup(why);
		first->deletable = 0;
	}
	return o->why != NULL && first->why != NULL
		       ? 0
		       : tlm_error_set(r->err, TLM_ERROR, "out of memory");
}

static int on_item(void *ctx, json_t *item)
{
	rec *r = ctx;
	const char *name = json_string_value(json_object_get(item, "name"));
	const char *id = json_string_value(json_object_get(item, "id"));
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], buf[512];
	tlm_name_parts parts;
	const char *why;
	int has_run, deletable, live;
	long age;

	if (name == NULL || id == NULL || strncmp(name, "tlm-", 4) != 0)
		return 0;
	r->res->scanned++;
	age = age_s(item, r->now);
	if (r->older_than_s > 0 && age >= 0 && age < r->older_than_s) {
		r->res->too_young++;
		return 0;
	}
	has_run = tlm_name_parse(name, &parts) == 0 && parts.run_id[0] != '\0';
	if (has_run)
		memcpy(run_id, parts.run_id, sizeof(run_id));
	why = classify(r, has_run ? run_id : NULL, name, id, &deletable, &live, buf, sizeof(buf));
	if (why == NULL)
		return tlm_error_set(r->err, TLM_ERROR, "out of memory");
	if (live) {
		r->res->live++;
		return 0;
	}
	if (add_orphan(r, name, id, has_run ? run_id : NULL, why, deletable) != 0)
		return TLM_ERROR;
	return check_shared(r);
}

/* ---- deleting --------------------------------------------------------- */

typedef struct del {
	rec *r;
	tlm_engine_orphan *o;
} del;

/* The delete is done; the journal is told, and the audit trail.  A write
 * that fails is the orphan's error (the resource is gone all the same: a
 * later teardown finds it gone). */
static void record_deleted(rec *r, tlm_engine_orphan *o)
{
	tlm_journal_kind kind =
		strcmp(o->kind, "agent") == 0 ? TLM_JOURNAL_AGENT : TLM_JOURNAL_TEAM;
	row_match m = { kind, o->name, o->remote_id, 0, 0, TLM_JOURNAL_INTENT };
	tlm_error err = TLM_ERROR_INIT;
	char detail[512];
	int rc = 0;

	if (o->run_id != NULL && tlm_journal_held_epoch(r->j, o->run_id) != 0 &&
	    (rc = tlm_journal_resources(r->j, o->run_id, match_row, &m, &err)) >= 0 && m.found &&
	    m.same_id && tlm_eng__res_move_ok(m.state, TLM_JOURNAL_DELETED))
		rc = tlm_journal_set_resource_state(r->j, o->run_id, kind, o->name,
						    TLM_JOURNAL_DELETED, NULL, &err);
	snprintf(detail, sizeof(detail), "%s %s (id %s): %s", o->kind, o->name, o->remote_id,
		 o->why);
	if (rc >= 0)
		rc = tlm_journal_audit(r->j, o->run_id, "reconcile-delete", detail, &err);
	if (rc < 0 && o->error == NULL)
		o->error = strdup(err.message);
}

static void on_deleted(void *ctx, const tlm_client_result *res)
{
	del *d = ctx;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	if (res->outcome == TLM_CLIENT_DONE || res->outcome == TLM_CLIENT_GONE) {
		d->o->deleted = 1;
		record_deleted(d->r, d->o);
	} else {
		d->o->error = strdup(res->err->message);
	}
}

/* An orphan of a run in the journal is deleted only once its run is ours:
 * a run resumed since the listing is refused here, not overrun. */
static int claim_for(rec *r, tlm_engine_orphan *o)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run run;

	if (o->run_id == NULL || tlm_journal_run_get(r->j, o->run_id, &run, NULL) != 0)
		return 0; /* no run of this journal made it */
	tlm_journal_run_clear(&run);
	if (tlm_journal_run_claim(r->j, o->run_id, 0, &err) == 0)
		return 0;
	o->error = strdup(err.message);
	return -1;
}

static int delete_all(rec *r)
{
	tlm_engine_reconcile_result *res = r->res;
	del *ds = calloc(res->norphans + 1, sizeof(*ds));
	tlm_error err = TLM_ERROR_INIT;
	size_t i;
	int rc;

	if (ds == NULL)
		return tlm_error_set(r->err, TLM_ERROR, "out of memory");
	for (i = 0; i < res->norphans; i++) {
		tlm_engine_orphan *o = &res->orphans[i];

		if (!o->deletable || claim_for(r, o) != 0)
			continue;
		ds[i] = (del){ r, o };
		if (tlm_eng__remove(r->c,
				    strcmp(o->kind, "agent") == 0 ? TLM_JOURNAL_AGENT
								  : TLM_JOURNAL_TEAM,
				    o->remote_id, on_deleted, &ds[i], &err) != 0)
			o->error = strdup(err.message);
	}
	rc = tlm_client_run(r->c, -1, r->err);
	free(ds);
	return rc;
}

static int open_client(rec *r)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	const tlm_engine_opts *o = r->o;

	if (o->control_plane == NULL)
		return tlm_error_set(
			r->err, TLM_EINVALID,
			"reconcile needs a control plane: set AGAMEMNON_URL or pass --control-plane URL (the in-process one keeps nothing after its run)");
	tlm_eng__client_opts(o, o->control_plane, 0, o->max_concurrent ? o->max_concurrent : 8,
			     &co);
	return tlm_client_new(&r->c, &co, r->err);
}

int tlm_engine_reconcile(const tlm_engine_opts *o, long older_than_s, int do_delete,
			 tlm_engine_reconcile_result *res, tlm_error *err)
{
	rec r;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	r.o = o;
	r.res = res;
	r.older_than_s = older_than_s;
	r.now = time(NULL);
	r.kind = TLM_JOURNAL_AGENT;
	r.err = err;
	memset(res, 0, sizeof(*res));
	if ((rc = open_client(&r)) != 0 || (rc = tlm_journal_open(&r.j, o->state_dir, err)) != 0)
		goto out;
	rc = tlm_client_list_all(r.c, "/v1/agents", "agents", on_item, &r, err);
	r.kind = TLM_JOURNAL_TEAM;
	if (rc == 0)
		rc = tlm_client_list_all(r.c, "/v1/teams", "teams", on_item, &r, err);
	if (rc == 0 && do_delete)
		rc = delete_all(&r);
out:
	tlm_client_free(r.c);
	tlm_journal_close(r.j);
	tlm_strmap_clear(&r.seen_map);
	tlm_strmap_clear(&r.orphan_ids[0]);
	tlm_strmap_clear(&r.orphan_ids[1]);
	while (r.nseen > 0)
		free(r.seen[--r.nseen]);
	free(r.seen);
	return rc;
}

void tlm_engine_reconcile_clear(tlm_engine_reconcile_result *res)
{
	size_t i;

	for (i = 0; res != NULL && i < res->norphans; i++) {
		tlm_engine_orphan *o = &res->orphans[i];

		free(o->kind);
		free(o->name);
		free(o->remote_id);
		free(o->run_id);
		free(o->why);
		free(o->error);
	}
	if (res != NULL) {
		free(res->orphans);
		memset(res, 0, sizeof(*res));
	}
}
