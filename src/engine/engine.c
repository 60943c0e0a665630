/* tlm_engine_run: the phases of a run in order (DESIGN §4), the teardown
 * decision of docs/spec.md, and the result handed to the CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

const char *tlm_engine_outcome_name(tlm_engine_outcome o)
{
	static const char *const names[] = { "completed", "failed", "timed_out", "cancelled",
					     "preflight_failed" };

	return (size_t)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}

static void name_res(eng *e, eng_res *r, tlm_client_res kind, size_t idx, const char *name)
{
	r->e = e;
	r->kind = kind;
	r->idx = idx;
	/* The kind is part of the name: an agent and a team may share one. */
	snprintf(r->name, sizeof(r->name), "%s%c-%s", e->prefix,
		 kind == TLM_CLIENT_AGENT ? 'a' : 't', name);
}

static int build(eng *e, tlm_error *err)
{
	const tlm_spec *s = e->spec;
	size_t i;
	int rc;

	if ((rc = tlm_plan_new(&e->plan, s, err)) != 0)
		return rc;
	e->agents = calloc(s->nagents + 1, sizeof(*e->agents));
	e->teams = calloc(s->nteams + 1, sizeof(*e->teams));
	e->tasks = calloc(s->ntasks + 1, sizeof(*e->tasks));
	e->ready = calloc(s->ntasks + 1, sizeof(*e->ready));
	if (e->agents == NULL || e->teams == NULL || e->tasks == NULL || e->ready == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	snprintf(e->prefix, sizeof(e->prefix), "tlm-%s-", e->run_id);
	for (i = 0; i < s->nagents; i++)
		name_res(e, &e->agents[i], TLM_CLIENT_AGENT, i, s->agents[i].name);
	for (i = 0; i < s->nteams; i++)
		name_res(e, &e->teams[i], TLM_CLIENT_TEAM, i, s->teams[i].name);
	for (i = 0; i < s->ntasks; i++) {
		e->tasks[i].e = e;
		e->tasks[i].idx = i;
		e->tasks[i].deps_left = s->tasks[i].ndeps;
	}
	return 0;
}

/* docs/spec.md, "teardown": cancelled and timed-out runs, and runs that
 * failed before any task, are torn down under every policy but never (and
 * the last even under never). */
static int wants_teardown(const eng *e)
{
	tlm_teardown p = e->spec->teardown;

	if (!e->any_submitted && e->outcome != TLM_ENGINE_COMPLETED)
		return 1;
	if (p == TLM_TEARDOWN_NEVER)
		return 0;
	switch (e->outcome) {
	case TLM_ENGINE_COMPLETED: return p != TLM_TEARDOWN_ON_FAILURE;
	case TLM_ENGINE_FAILED: return p != TLM_TEARDOWN_ON_COMPLETION;
	default: return 1;
	}
}

static const char *final_state(const eng *e)
{
	if (e->res->nleftovers > 0 && e->res->torn_down)
		return "teardown_failed";
	switch (e->outcome) {
	case TLM_ENGINE_COMPLETED: return "completed";
	case TLM_ENGINE_CANCELLED: return "cancelled";
	default: return "failed";
	}
}

static void collect(eng *e)
{
	tlm_engine_result *r = e->res;
	size_t i;

	r->tasks = calloc(e->spec->ntasks + 1, sizeof(*r->tasks));
	if (r->tasks == NULL)
		return;
	r->ntasks = e->spec->ntasks;
	for (i = 0; i < e->spec->ntasks; i++) {
		eng_task *t = &e->tasks[i];
		tlm_engine_task_result *o = &r->tasks[i];

		o->team = e->spec->teams[e->spec->tasks[i].team].name;
		o->subject = e->spec->tasks[i].subject;
		o->status = tlm_eng__task_state_name(t->st);
		o->attempts = t->attempt;
		o->remote_id = t->id != NULL ? strdup(t->id)
			       : t->nold > 0 ? strdup(t->old_ids[t->nold - 1])
					     : NULL;
		o->message = t->message != NULL ? strdup(t->message) : NULL;
		o->elapsed_ms = t->first_ms != 0 && t->finished_ms >= t->first_ms
					? t->finished_ms - t->first_ms
					: 0;
	}
	for (i = 0; i < e->spec->nagents; i++)
		if (e->agents[i].id != NULL)
			r->agents_created++;
}

/* Intents whose create was never sent (the run ended first) are absent for
 * sure: teardown must not wait for them to land. */
static void forget_unsent_of(eng *e, eng_res *items, size_t n)
{
	tlm_error err = TLM_ERROR_INIT;
	size_t i;

	for (i = 0; i < n; i++)
		if (items[i].st == RES_NEW && items[i].journaled)
			(void)tlm_journal_set_resource_state(
				e->j, e->run_id,
				items[i].kind == TLM_CLIENT_AGENT ? TLM_JOURNAL_AGENT
								  : TLM_JOURNAL_TEAM,
				items[i].name, TLM_JOURNAL_ABSENT,
				"never sent: the run ended first", &err);
}

static void forget_unsent(eng *e)
{
	forget_unsent_of(e, e->agents, e->spec->nagents);
	forget_unsent_of(e, e->teams, e->spec->nteams);
	e->settle_ms = tlm_eng__request_timeout(e);
}

/* The phases; every path after the run row exists ends in the teardown
 * decision. */
static void run_phases(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	const char *why;

	tlm_eng__journal_check(e, tlm_journal_run_set_state(e->j, e->run_id, "provisioning", &err),
			       &err);
	if (!e->ending)
		tlm_eng__provision_agents(e);
	if (!e->ending)
		tlm_eng__provision_teams(e);
	if (!e->ending)
		tlm_eng__run_tasks(e);
	tlm_eng__drain(e);
	if (e->abandoned)
		return;
	tlm_eng__cancel_rest(e);
	forget_unsent(e);
	if (wants_teardown(e)) {
		e->res->torn_down = 1;
		tlm_eng__teardown(e);
		return;
	}
	why = e->srv != NULL
		      ? "kept by the teardown policy until the built-in control plane stopped"
		      : "kept by the teardown policy";
	tlm_eng__log(e, TLM_ENGINE_INFO, "teardown %s: resources are kept",
		     tlm_teardown_name(e->spec->teardown));
	tlm_eng__list_kept(e, why);
}

static void free_run(eng *e)
{
	size_t i, k;

	for (i = 0; e->agents != NULL && i < e->spec->nagents; i++)
		free(e->agents[i].id);
	for (i = 0; e->teams != NULL && i < e->spec->nteams; i++)
		free(e->teams[i].id);
	for (i = 0; e->tasks != NULL && i < e->spec->ntasks; i++) {
		free(e->tasks[i].id);
		for (k = 0; k < e->tasks[i].nold; k++)
			free(e->tasks[i].old_ids[k]);
		free(e->tasks[i].old_ids);
		free(e->tasks[i].message);
	}
	free(e->agents);
	free(e->teams);
	free(e->tasks);
	free(e->ready);
	tlm_strmap_clear(&e->by_id);
	tlm_plan_free(e->plan);
	free(e->error);
}

static void init(eng *e, const tlm_engine_opts *o, tlm_engine_result *res)
{
	memset(e, 0, sizeof(*e));
	memset(res, 0, sizeof(*res));
	e->o = o;
	e->spec = o->spec;
	e->res = res;
	e->phase = "preflight";
	e->maxc = o->max_concurrent ? o->max_concurrent : ENG_DEFAULT_CONCURRENCY;
	e->t0 = tlm_eng__now_ms();
	e->outcome = TLM_ENGINE_COMPLETED;
}

static int new_run(eng *e, tlm_error *err)
{
	const tlm_engine_opts *o = e->o;
	int rc;

	if ((rc = tlm_journal_run_new(e->j, o->spec->name, o->spec_text, e->run_id, err)) != 0)
		return rc;
	memcpy(e->res->run_id, e->run_id, sizeof(e->run_id));
	/* Where the resources live, for teardown and reconcile after a crash. */
	rc = tlm_journal_run_set_control_plane(
		e->j, e->run_id, e->srv != NULL ? TLM_JOURNAL_BUILTIN : o->base_url, err);
	if (rc == 0)
		rc = build(e, err);
	if (rc == 0)
		tlm_eng__log(e, TLM_ENGINE_INFO, "run %s of workflow %s%s", e->run_id,
			     o->spec->name,
			     o->dry_run ? " (dry run: nothing is created, nothing runs)" : "");
	if (o->spec->timeout_seconds > 0)
		e->deadline = e->t0 + (uint64_t)o->spec->timeout_seconds * 1000u;
	return rc;
}

/* The run is taken over from a dead owner (or an interrupted one) and its
 * state rebuilt from the journal; the workflow timeout starts again. */
static int resume_run(eng *e, tlm_error *err)
{
	const tlm_engine_opts *o = e->o;
	tlm_journal_run run;
	int rc;

	if (strlen(o->resume_run_id) != TLM_JOURNAL_RUN_ID_LEN)
		return tlm_error_set(err, TLM_EINVALID, "no run \"%s\"", o->resume_run_id);
	memcpy(e->run_id, o->resume_run_id, sizeof(e->run_id));
	memcpy(e->res->run_id, e->run_id, sizeof(e->run_id));
	if ((rc = tlm_journal_run_claim(e->j, e->run_id, err)) != 0)
		return rc;
	if ((rc = tlm_journal_run_get(e->j, e->run_id, &run, err)) != 0)
		return rc;
	e->resumed = 1;
	rc = build(e, err);
	if (rc == 0)
		rc = tlm_eng__restore(e, run.control_plane, run.heartbeat_age_ms, err);
	if (rc == 0 && e->srv != NULL)
		rc = tlm_journal_run_set_control_plane(e->j, e->run_id, TLM_JOURNAL_BUILTIN, err);
	if (rc == 0)
		tlm_eng__log(e, TLM_ENGINE_INFO, "resuming run %s of workflow %s (it was %s)",
			     e->run_id, o->spec->name, run.state);
	tlm_journal_run_clear(&run);
	if (o->spec->timeout_seconds > 0)
		e->deadline = e->t0 + (uint64_t)o->spec->timeout_seconds * 1000u;
	return rc;
}

static void set_reconcile(eng *e)
{
	/* Without events REST is the only source: poll fast, back off while
	 * nothing changes.  With events it is the safety net. */
	e->reconcile_min = e->w != NULL ? 1000 : 100;
	e->reconcile_max = e->w != NULL ? 15000 : 2000;
	/* Our in-process server is a loopback call away and cheap to ask. */
	if (e->srv != NULL && e->w == NULL) {
		e->reconcile_min = 20;
		e->reconcile_max = 250;
	}
	if (e->o->reconcile_ms > 0)
		e->reconcile_max = e->o->reconcile_ms;
	if (e->reconcile_min > e->reconcile_max)
		e->reconcile_min = e->reconcile_max;
	e->reconcile_gap = e->reconcile_min;
}

int tlm_engine_run(const tlm_engine_opts *o, tlm_engine_result *res, tlm_error *err)
{
	eng e;
	int rc;

	init(&e, o, res);
	if (o->spec == NULL || o->spec_text == NULL)
		return tlm_error_set(err, TLM_EINVALID, "engine: a spec and its text are required");
	if ((rc = tlm_eng__setup(&e, err)) != 0)
		goto out;
	res->journal_path = strdup(tlm_journal_path(e.j));
	tlm_eng__progress(&e, "preflight");
	if (tlm_eng__preflight(&e, err) != 0) {
		/* Nothing was created: a result, not an engine error. */
		res->outcome = TLM_ENGINE_PREFLIGHT_FAILED;
		res->state = "preflight_failed";
		res->error = strdup(err->message);
		goto out;
	}
	set_reconcile(&e);
	if ((rc = o->resume_run_id != NULL ? resume_run(&e, err) : new_run(&e, err)) != 0)
		goto out;
	run_phases(&e);
	collect(&e);
	res->outcome = e.outcome;
	res->abandoned = e.abandoned;
	res->dry_run = o->dry_run;
	res->error = e.error != NULL ? strdup(e.error) : NULL;
	res->state = e.abandoned ? "interrupted" : final_state(&e);
	if (!e.abandoned)
		(void)tlm_journal_run_set_state(e.j, e.run_id, res->state, NULL);
	tlm_eng__progress(&e, res->state);
out:
	res->elapsed_ms = tlm_eng__now_ms() - e.t0;
	tlm_eng__cleanup(&e);
	free_run(&e);
	return rc;
}

void tlm_engine_result_clear(tlm_engine_result *res)
{
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < res->ntasks; i++) {
		free(res->tasks[i].remote_id);
		free(res->tasks[i].message);
	}
	free(res->tasks);
	for (i = 0; i < res->nleftovers; i++) {
		free(res->leftovers[i].kind);
		free(res->leftovers[i].name);
		free(res->leftovers[i].remote_id);
		free(res->leftovers[i].error);
	}
	free(res->leftovers);
	free(res->error);
	free(res->journal_path);
	memset(res, 0, sizeof(*res));
}

/* ---- telemachy teardown RUN ------------------------------------------- */

static int is_final(const char *state)
{
	return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0;
}

static int mark_absent(const tlm_journal_resource *r, void *ctx)
{
	eng *e = ctx;
	tlm_error err = TLM_ERROR_INIT;

	if (r->state == TLM_JOURNAL_DELETED || r->state == TLM_JOURNAL_ABSENT ||
	    r->state == TLM_JOURNAL_ABANDONED)
		return 0;
	tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s: gone with the in-process control plane",
		     tlm_journal_kind_name(r->kind), r->name);
	return tlm_journal_set_resource_state(e->j, e->run_id, r->kind, r->name, TLM_JOURNAL_ABSENT,
					      "the in-process control plane stopped with its run",
					      &err);
}

/* The run's resources: on its control plane, or gone with the in-process one. */
static int teardown_run(eng *e, const tlm_journal_run *run, tlm_error *err)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	int rc;

	if (e->o->base_url == NULL) {
		if (run->control_plane == NULL ||
		    strcmp(run->control_plane, TLM_JOURNAL_BUILTIN) != 0)
			return tlm_error_set(
				err, TLM_EINVALID,
				"run %s: the journal does not say where its control plane is; pass --control-plane URL",
				e->run_id);
		return tlm_journal_resources(e->j, e->run_id, mark_absent, e, err);
	}
	tlm_eng__client_opts(e->o, e->o->base_url, 0, e->maxc, &co);
	if ((rc = tlm_client_new(&e->c, &co, err)) != 0)
		return rc;
	tlm_eng__teardown(e);
	return 0;
}

int tlm_engine_teardown(const tlm_engine_opts *o, const char *run_id, tlm_engine_result *res,
			tlm_error *err)
{
	tlm_journal_run run;
	eng e;
	int rc;

	init(&e, o, res);
	res->torn_down = 1;
	if (strlen(run_id) != TLM_JOURNAL_RUN_ID_LEN)
		return tlm_error_set(err, TLM_EINVALID, "no run \"%s\"", run_id);
	memcpy(e.run_id, run_id, sizeof(e.run_id));
	memcpy(res->run_id, run_id, sizeof(e.run_id));
	snprintf(e.prefix, sizeof(e.prefix), "tlm-%s-", e.run_id);
	if ((rc = tlm_journal_open(&e.j, o->state_dir, err)) != 0)
		goto out;
	res->journal_path = strdup(tlm_journal_path(e.j));
	if ((rc = tlm_journal_run_claim(e.j, e.run_id, err)) != 0 ||
	    (rc = tlm_journal_run_get(e.j, e.run_id, &run, err)) != 0)
		goto out;
	/* Creates the last owner sent may land until one request timeout
	 * after it was last alive. */
	if (run.heartbeat_age_ms >= 0 && run.heartbeat_age_ms < tlm_eng__request_timeout(&e))
		e.settle_ms = tlm_eng__request_timeout(&e) - run.heartbeat_age_ms;
	e.outcome = is_final(run.state) && strcmp(run.state, "cancelled") != 0
			    ? (strcmp(run.state, "completed") == 0 ? TLM_ENGINE_COMPLETED
								   : TLM_ENGINE_FAILED)
			    : TLM_ENGINE_CANCELLED;
	rc = teardown_run(&e, &run, err);
	if (rc == 0 && (e.abandoned || (e.o->interrupts != NULL && *e.o->interrupts > 0)))
		res->abandoned = 1;
	if (rc == 0 && !res->abandoned) {
		res->outcome = e.outcome;
		res->state = final_state(&e);
		(void)tlm_journal_run_set_state(e.j, e.run_id, res->state, NULL);
		(void)tlm_journal_audit(e.j, e.run_id, "teardown",
					res->nleftovers == 0 ? "everything deleted"
							     : "teardown left resources",
					NULL);
	}
	tlm_journal_run_clear(&run);
out:
	res->elapsed_ms = tlm_eng__now_ms() - e.t0;
	tlm_eng__cleanup(&e);
	free_run(&e);
	return rc;
}
