/* tlm_engine_run: the phases of a run in order (docs/design.md §4), the
 * teardown decision of docs/spec.md, and the result handed to the CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/opts.h"

const char *tlm_engine_outcome_name(tlm_engine_outcome o)
{
	static const char *const names[] = { "completed", "failed",           "timed_out",
					     "cancelled", "preflight_failed", "taken_over" };

	return (size_t)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}

static int name_res(eng *e, eng_res *r, tlm_journal_kind kind, size_t idx, const char *name,
		    tlm_error *err)
{
	r->e = e;
	r->idx = idx;
	r->rs.kind = kind;
	r->settle = -1; /* a fresh intent: nothing to look up */
	return tlm_name_build(r->rs.name, sizeof(r->rs.name), e->run_id,
			      kind == TLM_JOURNAL_AGENT ? TLM_NAME_AGENT : TLM_NAME_TEAM, name,
			      err);
}

int tlm_eng__build(eng *e, tlm_error *err)
{
	const tlm_spec *s = e->spec;
	size_t i;
	int rc;

	tlm_name_prefix(e->prefix, sizeof(e->prefix), e->run_id);
	e->probe.e = e;
	e->probe.rs.kind = TLM_JOURNAL_AGENT;
	e->probe.settle = -1;
	tlm_name_probe(e->probe.rs.name, sizeof(e->probe.rs.name), e->run_id);
	if (s == NULL)
		return 0; /* teardown of a run: the journal is enough */
	if ((rc = tlm_plan_new(&e->plan, s, err)) != 0)
		return rc;
	e->agents = calloc(s->nagents + 1, sizeof(*e->agents));
	e->teams = calloc(s->nteams + 1, sizeof(*e->teams));
	e->tasks = calloc(s->ntasks + 1, sizeof(*e->tasks));
	e->ready = calloc(s->ntasks + 1, sizeof(*e->ready));
	e->unwritten = calloc(s->ntasks + 1, sizeof(*e->unwritten));
	if (e->agents == NULL || e->teams == NULL || e->tasks == NULL || e->ready == NULL ||
	    e->unwritten == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	for (i = 0; i < s->nagents; i++)
		if ((rc = name_res(e, &e->agents[i], TLM_JOURNAL_AGENT, i, s->agents[i].name,
				   err)) != 0)
			return rc;
	for (i = 0; i < s->nteams; i++)
		if ((rc = name_res(e, &e->teams[i], TLM_JOURNAL_TEAM, i, s->teams[i].name, err)) !=
		    0)
			return rc;
	e->nstate[TASK_WAITING] = s->ntasks; /* where calloc put them */
	e->slowest_idx = SIZE_MAX;
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
int tlm_eng__wants_teardown(const eng *e)
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

static tlm_run_state final_state(const eng *e)
{
	if (e->res->nleftovers > 0 && e->res->torn_down)
		return TLM_RUN_TEARDOWN_FAILED;
	switch (e->outcome) {
	case TLM_ENGINE_COMPLETED: return TLM_RUN_COMPLETED;
	case TLM_ENGINE_CANCELLED: return TLM_RUN_CANCELLED;
	default: return TLM_RUN_FAILED;
	}
}

static int collect_task(eng *e, size_t i, tlm_engine_task_result *o)
{
	eng_task *t = &e->tasks[i];
	const char *id = t->id != NULL ? t->id : t->nold > 0 ? t->old_ids[t->nold - 1] : NULL;

	o->team = e->spec->teams[e->spec->tasks[i].team].name;
	o->subject = e->spec->tasks[i].subject;
	o->status = tlm_eng__task_state_name(t->st);
	o->attempts = t->attempt;
	o->remote_id = id != NULL ? strdup(id) : NULL;
	o->message = t->message != NULL ? strdup(t->message) : NULL;
	o->output = t->err_line != NULL ? strdup(t->err_line) : NULL;
	o->elapsed_ms = t->first_ms != 0 && t->finished_ms >= t->first_ms
				? t->finished_ms - t->first_ms
				: 0;
	return (id != NULL && o->remote_id == NULL) || (t->message != NULL && o->message == NULL) ||
			       (t->err_line != NULL && o->output == NULL)
		       ? -1
		       : 0;
}

static void collect(eng *e)
{
	tlm_engine_result *r = e->res;
	size_t i;

	if ((r->tasks = calloc(e->spec->ntasks + 1, sizeof(*r->tasks))) == NULL) {
		tlm_eng__oom(e);
		return;
	}
	r->ntasks = e->spec->ntasks;
	for (i = 0; i < e->spec->ntasks; i++)
		if (collect_task(e, i, &r->tasks[i]) != 0)
			tlm_eng__oom(e);
	for (i = 0; i < e->spec->nagents; i++)
		if (e->agents[i].rs.id != NULL)
			r->agents_created++;
}

/* Intents whose create was never sent (the run ended first) are absent for
 * sure: teardown must not wait for them to land. */
static void forget_unsent_of(eng *e, eng_res *items, size_t n)
{
	size_t i;

	for (i = 0; i < n && e->stop == STOP_NONE; i++)
		if (items[i].step == STEP_NEW && items[i].rs.journaled &&
		    items[i].rs.st == TLM_JOURNAL_INTENT)
			(void)tlm_eng__res_to(e, &items[i].rs, TLM_JOURNAL_ABSENT, NULL,
					      "never sent: the run ended first");
}

static void forget_unsent(eng *e)
{
	forget_unsent_of(e, e->agents, e->spec->nagents);
	forget_unsent_of(e, e->teams, e->spec->nteams);
	e->settle_ms = tlm_eng__request_timeout(e);
}

/* The phases; every path after the run row exists ends in the teardown
 * decision, unless the engine had to stop (abandoned, taken over).  A phase
 * that fails has recorded why in the run (its error, ending, stop): the
 * phases after it are skipped, the end is not. */
static int run_phases(eng *e)
{
	const char *why;
	int rc;

	rc = tlm_eng__run_to(e, TLM_RUN_PROVISIONING);
	if (rc == 0 && !e->ending)
		rc = tlm_eng__probe(e);
	if (rc == 0 && !e->ending)
		rc = tlm_eng__provision_agents(e);
	if (rc == 0 && !e->ending)
		rc = tlm_eng__provision_teams(e);
	if (rc == 0 && !e->ending)
		rc = tlm_eng__run_tasks(e);
	tlm_eng__drain(e);
	if (e->stop != STOP_NONE || tlm_eng__cancel_rest(e) != 0)
		return TLM_ECANCELLED;
	forget_unsent(e);
	if (e->stop != STOP_NONE)
		return TLM_ECANCELLED;
	if (tlm_eng__wants_teardown(e)) {
		e->res->torn_down = 1;
		return tlm_eng__teardown(e);
	}
	why = e->o->in_process
		      ? "kept by the teardown policy until the built-in control plane stopped"
		      : "kept by the teardown policy";
	tlm_eng__log(e, TLM_ENGINE_INFO, "teardown %s: resources are kept",
		     tlm_teardown_name(e->spec->teardown));
	/* Kept for a look, not to go on working: a worker must not pick up
	 * what the run no longer waits for. */
	if (tlm_eng__end_work(e) != 0)
		return TLM_ERROR;
	return tlm_eng__list_kept(e, why) != 0 ? TLM_ERROR : rc;
}

void tlm_eng__free_run(eng *e)
{
	size_t i, k;

	for (i = 0; e->agents != NULL && i < e->spec->nagents; i++)
		free(e->agents[i].rs.id);
	for (i = 0; e->teams != NULL && i < e->spec->nteams; i++)
		free(e->teams[i].rs.id);
	for (i = 0; e->tasks != NULL && i < e->spec->ntasks; i++) {
		free(e->tasks[i].id);
		for (k = 0; k < e->tasks[i].nold; k++)
			free(e->tasks[i].old_ids[k]);
		free(e->tasks[i].old_ids);
		free(e->tasks[i].message);
		free(e->tasks[i].err_line);
	}
	free(e->probe.rs.id);
	free(e->agents);
	free(e->teams);
	free(e->tasks);
	free(e->ready);
	free(e->unwritten);
	tlm_strmap_clear(&e->by_id);
	free(e->early);
	tlm_plan_free(e->plan);
	free(e->error);
}

void tlm_eng__init(eng *e, const tlm_engine_opts *o, tlm_engine_result *res)
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
	e->run_state = TLM_RUN_PENDING;
}

/* The client tells the control plane which owner of the run sends. */
static int tag_requests(eng *e, tlm_error *err)
{
	return tlm_client_set_owner(e->c, e->run_id, tlm_journal_held_epoch(e->j, e->run_id), err);
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
		e->j, e->run_id, o->in_process ? TLM_JOURNAL_BUILTIN : o->control_plane, err);
	if (rc == 0)
		rc = tlm_eng__build(e, err);
	if (rc == 0)
		rc = tag_requests(e, err);
	if (rc == 0) {
		tlm_eng__log(e, TLM_ENGINE_INFO, "run %s of workflow %s%s", e->run_id,
			     o->spec->name,
			     o->dry_run ? " (dry run: nothing is created, nothing runs)" : "");
		tlm_eng__emit_simple(e, TLM_ENGINE_EV_RUN_STARTED, "new", NULL);
	}
	if (o->spec->timeout_seconds > 0)
		e->deadline = e->t0 + (uint64_t)o->spec->timeout_seconds * 1000u;
	return rc;
}

int tlm_eng__claim(eng *e, unsigned flags, tlm_journal_run *run, long *prev_age_ms, tlm_error *err)
{
	tlm_journal_run before;
	int rc;

	*prev_age_ms = -1;
	memset(&before, 0, sizeof(before));
	/* Read first: the claim writes our own heartbeat over the old one. */
	if (tlm_journal_run_get(e->j, e->run_id, &before, NULL) == 0 &&
	    before.heartbeat_age_ms >= 0 && before.owner_pid > 0) {
		*prev_age_ms = before.heartbeat_age_ms;
		tlm_eng__log(e, TLM_ENGINE_INFO,
			     "run %s: its last owner (pid %ld on %s) was last alive %.1f s ago",
			     e->run_id, before.owner_pid,
			     before.owner_host != NULL ? before.owner_host : "?",
			     (double)before.heartbeat_age_ms / 1000.0);
	}
	tlm_journal_run_clear(&before);
	if ((rc = tlm_journal_run_claim(e->j, e->run_id, flags, err)) != 0)
		return rc;
	return tlm_journal_run_get(e->j, e->run_id, run, err);
}

/* The run is taken over from a dead owner (or an interrupted one) and its
 * state rebuilt from the journal; the workflow timeout starts again. */
static int resume_run(eng *e, tlm_error *err)
{
	const tlm_engine_opts *o = e->o;
	tlm_journal_run run;
	long age;
	int rc;

	if (strlen(o->resume_run_id) != TLM_JOURNAL_RUN_ID_LEN)
		return tlm_error_set(err, TLM_EINVALID, "no run \"%s\"", o->resume_run_id);
	memcpy(e->run_id, o->resume_run_id, sizeof(e->run_id));
	memcpy(e->res->run_id, e->run_id, sizeof(e->run_id));
	if ((rc = tlm_eng__claim(e, o->claim_flags, &run, &age, err)) != 0)
		return rc;
	/* Two resumes raced and the other one finished the run before our
	 * claim: what the caller read before is stale, the claim's read is not. */
	if (run.state == TLM_RUN_COMPLETED) {
		tlm_journal_run_clear(&run);
		return tlm_error_set(err, TLM_ECONFLICT,
				     "run %s completed meanwhile: there is nothing to resume",
				     e->run_id);
	}
	e->resumed = 1;
	e->run_state = run.state;
	rc = tlm_eng__build(e, err);
	if (rc == 0)
		rc = tag_requests(e, err);
	if (rc == 0)
		rc = tlm_eng__restore(e, run.control_plane, age, err);
	if (rc == 0 && o->in_process)
		rc = tlm_journal_run_set_control_plane(e->j, e->run_id, TLM_JOURNAL_BUILTIN, err);
	if (rc == 0) {
		tlm_eng__log(e, TLM_ENGINE_INFO, "resuming run %s of workflow %s (it was %s)",
			     e->run_id, o->spec->name, tlm_run_state_name(run.state));
		tlm_eng__emit_simple(e, TLM_ENGINE_EV_RUN_STARTED, "resumed", NULL);
	}
	tlm_journal_run_clear(&run);
	if (o->spec->timeout_seconds > 0)
		e->deadline = e->t0 + (uint64_t)o->spec->timeout_seconds * 1000u;
	return rc;
}

static const char *result_state(const eng *e, tlm_run_state *final)
{
	if (e->stop == STOP_FENCED)
		return "taken_over";
	if (e->stop == STOP_ABANDONED)
		return "interrupted";
	*final = final_state(e);
	return tlm_run_state_name(*final);
}

static void finish_result(eng *e)
{
	tlm_engine_result *res = e->res;
	tlm_run_state final = TLM_RUN_FAILED;

	collect(e);
	res->state = result_state(e, &final);
	/* The final state is committed before the result says it, and the
	 * events that say it with it. */
	if (e->stop == STOP_NONE &&
	    (tlm_eng__run_to(e, final) != 0 || (tlm_eng__journal_end(e), tlm_eng__flush(e) != 0))) {
		final = TLM_RUN_FAILED; /* the journal could not say so: we do */
		res->state = e->stop == STOP_FENCED ? "taken_over" : tlm_run_state_name(final);
	}
	res->outcome = e->outcome;
	res->abandoned = e->stop == STOP_ABANDONED;
	res->taken_over = e->stop == STOP_FENCED;
	res->dry_run = e->o->dry_run;
	if (e->oom && e->error == NULL)
		e->error = strdup("out of memory");
	res->error = e->error != NULL ? strdup(e->error) : NULL;
	tlm_eng__emit_end(e);
	e->phase = res->state; /* the display's last word, not a phase event */
	tlm_eng__progress(e, NULL);
}

int tlm_eng__opts_check(const tlm_engine_opts *o, tlm_error *err)
{
	return tlm_opts_version_check(o->version, TLM_ENGINE_OPTS_VERSION, "engine",
				      "TLM_ENGINE_OPTS_INIT", err);
}

int tlm_engine_run(const tlm_engine_opts *o, tlm_engine_result *res, tlm_error *err)
{
	eng e;
	int rc;

	tlm_eng__init(&e, o, res);
	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	if (o->spec == NULL || o->spec_text == NULL)
		return tlm_error_set(err, TLM_EINVALID, "engine: a spec and its text are required");
	if ((rc = tlm_eng__setup(&e, err)) != 0)
		goto out;
	if ((res->journal_path = strdup(tlm_journal_path(e.j))) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto out;
	}
	tlm_eng__progress(&e, "preflight");
	if (tlm_eng__preflight(&e, err) != 0) {
		/* Nothing was created: a result, not an engine error. */
		res->outcome = TLM_ENGINE_PREFLIGHT_FAILED;
		res->state = "preflight_failed";
		res->error = strdup(err->message);
		goto out;
	}
	tlm_eng__cadence(&e, e.w != NULL);
	if ((rc = o->resume_run_id != NULL ? resume_run(&e, err) : new_run(&e, err)) != 0)
		goto out;
	if (run_phases(&e) != 0 && e.error == NULL && e.stop == STOP_NONE)
		tlm_eng__fail(&e, "the run could not be carried out to its end");
	finish_result(&e);
out:
	if (rc == 0)
		tlm_metrics_run(tlm_engine_outcome_name(res->outcome));
	res->elapsed_ms = tlm_eng__now_ms() - e.t0;
	tlm_eng__cleanup(&e);
	tlm_eng__free_run(&e);
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
		free(res->tasks[i].output);
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
