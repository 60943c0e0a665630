/* The operator's commands on a journaled run (docs/recovery.md): teardown
 * of a run whose owner is gone, cancel (ask a live owner, or tear down), and
 * abandon.  Each one claims the run first, so it is never done behind a
 * live owner's back unless the operator forces it — and then that owner is
 * fenced off (docs/internals/engine.md, "Ownership and fencing"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"

/* ---- teardown RUN -------------------------------------------------------- */

static int mark_absent(const tlm_journal_resource *r, void *ctx)
{
	eng *e = ctx;
	eng_rs rs;

	if (r->state == TLM_JOURNAL_DELETED || r->state == TLM_JOURNAL_ABSENT ||
	    r->state == TLM_JOURNAL_ABANDONED)
		return 0;
	memset(&rs, 0, sizeof(rs));
	rs.kind = r->kind;
	rs.st = r->state;
	rs.journaled = 1;
	snprintf(rs.name, sizeof(rs.name), "%s", r->name);
	tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s: gone with the in-process control plane",
		     tlm_journal_kind_name(r->kind), r->name);
	return tlm_eng__res_to(e, &rs, TLM_JOURNAL_ABSENT, NULL,
			       "the in-process control plane stopped with its run");
}

/* The run's resources: on its control plane, or gone with the in-process one. */
static int teardown_run(eng *e, const tlm_journal_run *run, tlm_error *err)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	int rc;

	if (e->o->control_plane == NULL) {
		if (run->control_plane == NULL ||
		    strcmp(run->control_plane, TLM_JOURNAL_BUILTIN) != 0)
			return tlm_error_set(
				err, TLM_EINVALID,
				"run %s: the journal does not say where its control plane is; pass --control-plane URL",
				e->run_id);
		rc = tlm_journal_resources(e->j, e->run_id, mark_absent, e, err);
		return rc == 0 || e->error == NULL ? rc
						   : 0; /* a journal failure is in the result */
	}
	tlm_eng__client_opts(e->o, e->o->control_plane, 0, e->maxc, &co);
	tlm_eng__client_hooks(e, &co);
	if ((rc = tlm_client_new(&e->c, &co, err)) != 0 ||
	    (rc = tlm_client_set_owner(e->c, e->run_id, tlm_journal_held_epoch(e->j, e->run_id),
				       err)) != 0)
		return rc;
	(void)tlm_eng__teardown(e);
	return 0;
}

/* What a run that ended (or died) ends as once torn down: a run that
 * completed stays completed; a failed one failed; anything else cancelled. */
static tlm_engine_outcome outcome_of(tlm_run_state st)
{
	switch (st) {
	case TLM_RUN_COMPLETED: return TLM_ENGINE_COMPLETED;
	case TLM_RUN_FAILED:
	case TLM_RUN_TEARDOWN_FAILED: return TLM_ENGINE_FAILED;
	default: return TLM_ENGINE_CANCELLED;
	}
}

static void teardown_result(eng *e)
{
	tlm_engine_result *res = e->res;
	tlm_error err = TLM_ERROR_INIT;
	tlm_run_state final;

	if (e->stop != STOP_NONE || (e->o->interrupts != NULL && *e->o->interrupts > 1)) {
		res->abandoned = e->stop != STOP_FENCED;
		res->taken_over = e->stop == STOP_FENCED;
		res->state = e->stop == STOP_FENCED ? "taken_over" : "interrupted";
		return;
	}
	final = res->nleftovers > 0                  ? TLM_RUN_TEARDOWN_FAILED
		: e->outcome == TLM_ENGINE_COMPLETED ? TLM_RUN_COMPLETED
		: e->outcome == TLM_ENGINE_FAILED    ? TLM_RUN_FAILED
						     : TLM_RUN_CANCELLED;
	res->outcome = e->outcome;
	res->state = tlm_run_state_name(final);
	if (tlm_eng__run_to(e, final) == 0) {
		tlm_eng__journal_end(e); /* committed with the final state */
		if (tlm_journal_audit(e->j, e->run_id, "teardown",
				      res->nleftovers == 0 ? "everything deleted"
							   : "teardown left resources",
				      &err) != 0)
			tlm_eng__log(e, TLM_ENGINE_WARN, "no audit entry for the teardown: %s",
				     err.message);
	}
	/* The final state is committed before the result says it. */
	if (tlm_eng__flush(e) != 0 && e->stop == STOP_FENCED) {
		res->taken_over = 1;
		res->state = "taken_over";
	}
	tlm_eng__emit_end(e);
}

int tlm_engine_teardown(const tlm_engine_opts *o, const char *run_id, tlm_engine_result *res,
			tlm_error *err)
{
	tlm_journal_run run;
	long age;
	eng e;
	int rc;

	tlm_eng__init(&e, o, res);
	memset(&run, 0, sizeof(run));
	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	res->torn_down = 1;
	e.ending = 1; /* nothing is submitted */
	/* Teardown is the run's end already: a first signal leaves at once
	 * (the journal keeps what is left), as a second one leaves a run. */
	e.leave_on_signal = 1;
	if (strlen(run_id) != TLM_JOURNAL_RUN_ID_LEN)
		return tlm_error_set(err, TLM_EINVALID, "no run \"%s\"", run_id);
	memcpy(e.run_id, run_id, sizeof(e.run_id));
	memcpy(res->run_id, run_id, sizeof(e.run_id));
	if ((rc = tlm_journal_open(&e.j, o->state_dir, err)) != 0)
		goto out;
	if ((res->journal_path = strdup(tlm_journal_path(e.j))) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto out;
	}
	if ((rc = tlm_eng__claim(&e, o->claim_flags, &run, &age, err)) != 0 ||
	    (rc = tlm_eng__build(&e, err)) != 0 ||
	    (rc = tlm_journal_set_batching(e.j, 1, err)) != 0)
		goto out;
	e.run_state = run.state;
	tlm_eng__emit_simple(&e, TLM_ENGINE_EV_RUN_STARTED, "teardown", NULL);
	/* Creates the last owner sent may land until one request timeout
	 * after it was last alive. */
	if (age >= 0 && age < tlm_eng__request_timeout(&e))
		e.settle_ms = tlm_eng__request_timeout(&e) - age;
	e.outcome = outcome_of(run.state);
	if ((rc = teardown_run(&e, &run, err)) == 0)
		teardown_result(&e);
	if (rc == 0 && e.error != NULL && res->error == NULL)
		res->error = strdup(e.error);
out:
	tlm_journal_run_clear(&run);
	res->elapsed_ms = tlm_eng__now_ms() - e.t0;
	tlm_eng__cleanup(&e);
	tlm_eng__free_run(&e);
	return rc;
}

/* ---- cancel RUN ---------------------------------------------------------- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* a signal only shortens it */
}

static void tell(const tlm_engine_opts *o, const char *run_id, const char *msg)
{
	tlm_engine_progress p;

	memset(&p, 0, sizeof(p));
	p.phase = "cancelling";
	p.run_id = run_id;
	if (o->observe != NULL)
		o->observe(o->observe_ctx, TLM_ENGINE_INFO, msg, &p);
}

/* Asks the live owner, then watches the run's state until it is final, the
 * wait runs out, or the operator interrupts. */
static int ask_owner(const tlm_engine_opts *o, tlm_journal *j, const tlm_journal_run *run,
		     long wait_ms, tlm_engine_cancel_result *res, tlm_error *err)
{
	uint64_t end = tlm_eng__now_ms() + (uint64_t)wait_ms;
	tlm_journal_run now;
	char msg[512];
	int rc;

	if ((rc = tlm_journal_run_request_cancel(j, run->id, err)) != 0)
		return rc;
	if (tlm_journal_audit(j, run->id, "cancel", "asked the live owner to cancel", err) != 0)
		tell(o, run->id, "warning: the cancel request has no audit entry");
	res->owner_pid = run->owner_pid;
	snprintf(res->owner_host, sizeof(res->owner_host), "%s",
		 run->owner_host ? run->owner_host : "?");
	snprintf(msg, sizeof(msg), "asked run %s's owner (pid %ld on %s) to cancel", run->id,
		 res->owner_pid, res->owner_host);
	tell(o, run->id, msg);
	res->how = TLM_CANCEL_STILL_RUNNING;
	res->state = run->state;
	for (;;) {
		if (tlm_journal_run_get(j, run->id, &now, err) == 0) {
			res->state = now.state;
			tlm_journal_run_clear(&now);
			if (tlm_run_state_is_final(res->state)) {
				res->how = TLM_CANCEL_OWNER_STOPPED;
				return 0;
			}
		}
		if (tlm_eng__now_ms() >= end || (o->interrupts != NULL && *o->interrupts > 0))
			return 0;
		sleep_ms(100);
	}
}

/* A queued run no worker has taken is cancelled in the journal: nothing
 * exists for it anywhere.  When a worker took it meanwhile, *run is read
 * again and its owner is asked as for any run. */
static int dequeue(tlm_journal *j, tlm_journal_run *run, tlm_engine_cancel_result *res,
		   tlm_error *err)
{
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	int done = 0, rc;

	if (run->state != TLM_RUN_QUEUED || run->owner_pid > 0)
		return 0;
	if ((rc = tlm_journal_run_dequeue(j, run->id, &done, err)) != 0)
		return rc;
	if (done) {
		res->how = TLM_CANCEL_DEQUEUED;
		res->state = TLM_RUN_CANCELLED;
		if (tlm_journal_audit(j, run->id, "cancel", "cancelled while queued", err) != 0)
			tlm_error_clear(err); /* the trail has the change itself */
		return 0;
	}
	memcpy(id, run->id, sizeof(id));
	tlm_journal_run_clear(run);
	return tlm_journal_run_get(j, id, run, err);
}

int tlm_engine_cancel(const tlm_engine_opts *o, const char *run_id, long wait_ms,
		      tlm_engine_cancel_result *res, tlm_error *err)
{
	tlm_journal *j = NULL;
	tlm_journal_run run;
	tlm_journal_owner owner;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&run, 0, sizeof(run));
	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	if ((rc = tlm_journal_open(&j, o->state_dir, err)) != 0 ||
	    (rc = tlm_journal_run_get(j, run_id, &run, err)) != 0)
		goto out;
	if ((rc = dequeue(j, &run, res, err)) != 0 || res->how == TLM_CANCEL_DEQUEUED)
		goto out;
	owner = tlm_journal_run_owner(&run);
	res->state = run.state;
	if (owner == TLM_JOURNAL_OWNER_NONE) {
		res->how = TLM_CANCEL_HAD_ENDED;
	} else if (owner == TLM_JOURNAL_OWNER_ALIVE &&
		   !(o->claim_flags & TLM_JOURNAL_CLAIM_FORCE)) {
		rc = ask_owner(o, j, &run, wait_ms, res, err);
	} else {
		tlm_journal_close(j);
		j = NULL;
		res->how = TLM_CANCEL_TORN_DOWN;
		rc = tlm_engine_teardown(o, run.id, &res->teardown, err);
		if (rc == 0 && tlm_run_state_parse(res->teardown.state, &res->state) != 0)
			res->state = run.state; /* interrupted, taken over */
	}
out:
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
	return rc;
}

void tlm_engine_cancel_clear(tlm_engine_cancel_result *res)
{
	if (res != NULL)
		tlm_engine_result_clear(&res->teardown);
}

/* ---- abandon RUN RESOURCE ------------------------------------------------ */

typedef struct find_row {
	const char *name;
	int kind; /* -1: any */
	tlm_engine_abandoned *out;
	int found;
} find_row;

static int find_cb(const tlm_journal_resource *r, void *ctx)
{
	find_row *f = ctx;

	if (strcmp(r->name, f->name) != 0 || (f->kind >= 0 && (int)r->kind != f->kind))
		return 0;
	f->found = 1;
	f->out->kind = r->kind;
	f->out->was = r->state;
	snprintf(f->out->name, sizeof(f->out->name), "%s", r->name);
	snprintf(f->out->remote_id, sizeof(f->out->remote_id), "%s",
		 r->remote_id ? r->remote_id : "");
	return 1; /* stop: names are unique within a run */
}

/* The state change first, then the audit entry: if the second write fails,
 * the resource is abandoned with its reason recorded as its last error. */
static int write_abandon(tlm_journal *j, const char *run_id, tlm_engine_abandoned *out,
			 const char *why, tlm_error *err)
{
	char detail[2 * TLM_JOURNAL_TEXT_MAX + TLM_JOURNAL_NAME_MAX + 64]; /* the journal caps it */
	int rc;

	if ((rc = tlm_journal_set_resource_state(j, run_id, out->kind, out->name,
						 TLM_JOURNAL_ABANDONED, why, err)) != 0)
		return rc;
	snprintf(detail, sizeof(detail), "%s %s (id %s, was %s): %.2000s",
		 tlm_journal_kind_name(out->kind), out->name,
		 out->remote_id[0] ? out->remote_id : "none", tlm_journal_state_name(out->was),
		 why);
	if ((rc = tlm_journal_audit(j, run_id, "abandon", detail, err)) != 0)
		return TLM_ERROR;
	out->audited = 1;
	return 0;
}

int tlm_engine_abandon(const char *state_dir, const char *run_id, const char *resource,
		       const char *why, unsigned flags, tlm_engine_abandoned *out, tlm_error *err)
{
	char name[TLM_JOURNAL_NAME_MAX + 1];
	tlm_journal *j = NULL;
	tlm_journal_run run;
	find_row f = { name, -1, out, 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = tlm_journal_open(&j, state_dir, err)) != 0)
		goto out;
	if (strlen(run_id) != TLM_JOURNAL_RUN_ID_LEN ||
	    tlm_journal_run_get(j, run_id, &run, NULL) != 0) {
		rc = tlm_error_set(err, TLM_ENOTFOUND, "no run %.64s", run_id);
		goto out;
	}
	tlm_journal_run_clear(&run);
	if ((rc = tlm_name_resolve(name, sizeof(name), run_id, resource, &f.kind, err)) != 0 ||
	    (rc = tlm_journal_resources(j, run_id, find_cb, &f, err)) < 0)
		goto out;
	if (!f.found) {
		rc = tlm_error_set(err, TLM_ENOTFOUND, "run %s has no resource %.300s", run_id,
				   resource);
		goto out;
	}
	if (!tlm_eng__res_move_ok(out->was, TLM_JOURNAL_ABANDONED)) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s %s is already %s; nothing to abandon",
				   tlm_journal_kind_name(out->kind), out->name,
				   tlm_journal_state_name(out->was));
		goto out;
	}
	/* Refused while the run's owner is alive: it may be deleting it now. */
	if ((rc = tlm_journal_run_claim(j, run_id, flags, err)) == 0)
		rc = write_abandon(j, run_id, out, why, err);
out:
	tlm_journal_close(j);
	return rc;
}
