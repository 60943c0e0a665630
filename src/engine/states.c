/* The engine's three state machines — the run, its resources, its tasks —
 * each as a table of legal moves and one function that checks a move against
 * it and journals it (docs/internals/engine.md, "States").  Nothing else
 * assigns these states, so what the journal says and what the engine does
 * cannot drift apart, and an impossible move is an error, not a silent
 * state. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

/* ---- the run ------------------------------------------------------------ */

#define R(s)  (1u << TLM_RUN_##s)
#define ENDED (R(COMPLETED) | R(FAILED) | R(CANCELLED) | R(TEARDOWN_FAILED))

/* run_moves[from] has bit `to` set when from -> to is legal.  A final run
 * may be torn down again (its leftovers) and resumed (not a completed one);
 * any unfinished run may be torn down or resumed after a crash. */
static const unsigned run_moves[TLM_RUN_STATE_COUNT] = {
	[TLM_RUN_PENDING] = R(PROVISIONING) | R(TEARING_DOWN) | R(FAILED) | R(CANCELLED),
	[TLM_RUN_PROVISIONING] = R(PROVISIONING) | R(RUNNING) | R(TEARING_DOWN) | ENDED,
	[TLM_RUN_RUNNING] = R(PROVISIONING) | R(TEARING_DOWN) | ENDED,
	[TLM_RUN_TEARING_DOWN] = R(PROVISIONING) | R(TEARING_DOWN) | ENDED,
	[TLM_RUN_COMPLETED] = R(TEARING_DOWN) | ENDED,
	[TLM_RUN_FAILED] = R(PROVISIONING) | R(TEARING_DOWN) | ENDED,
	[TLM_RUN_CANCELLED] = R(PROVISIONING) | R(TEARING_DOWN) | ENDED,
	[TLM_RUN_TEARDOWN_FAILED] = R(PROVISIONING) | R(TEARING_DOWN) | ENDED,
	/* A submitted run: a worker provisions it, a cancel ends it. */
	[TLM_RUN_QUEUED] = R(PROVISIONING) | R(TEARING_DOWN) | ENDED,
};

int tlm_eng__run_move_ok(tlm_run_state from, tlm_run_state to)
{
	return (unsigned)from < TLM_RUN_STATE_COUNT && (unsigned)to < TLM_RUN_STATE_COUNT &&
	       (from == to || (run_moves[from] & (1u << to)) != 0);
}

int tlm_eng__run_to(eng *e, tlm_run_state to)
{
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (!tlm_eng__run_move_ok(e->run_state, to)) {
		tlm_eng__fail(e, "internal: run %s cannot go from %s to %s", e->run_id,
			      tlm_run_state_name(e->run_state), tlm_run_state_name(to));
		return TLM_EINVALID;
	}
	if (e->run_state == to && to != TLM_RUN_PENDING)
		return 0;
	rc = tlm_journal_run_set_state(e->j, e->run_id, to, &err);
	if (rc == 0)
		e->run_state = to;
	return tlm_eng__journal_check(e, rc, &err);
}

/* ---- resources ---------------------------------------------------------- */

#define S(s) (1u << TLM_JOURNAL_##s)
#define GONE (S(DELETED) | S(ABSENT))

/* res_moves[from]: intent resolves to created (found or answered) or absent
 * (never there); a resource with an id is started, deleted (through
 * deleting) or found absent (a 404: it vanished, or its in-process control
 * plane stopped); what is gone may be created again (a resume); anything
 * that may exist may be abandoned by the operator, and abandoned is for
 * ever.  deleting -> deleting records a failed delete's error. */
static const unsigned res_moves[] = {
	[TLM_JOURNAL_INTENT] = S(CREATED) | S(ABSENT) | S(ABANDONED),
	[TLM_JOURNAL_CREATED] = S(STARTED) | S(DELETING) | S(ABSENT) | S(ABANDONED),
	[TLM_JOURNAL_STARTED] = S(DELETING) | S(ABSENT) | S(ABANDONED),
	/* A resumed run adopts again what an interrupted teardown left. */
	[TLM_JOURNAL_DELETING] = S(CREATED) | S(DELETING) | GONE | S(ABANDONED),
	[TLM_JOURNAL_DELETED] = S(INTENT),
	[TLM_JOURNAL_ABSENT] = S(INTENT) | S(ABSENT),
	[TLM_JOURNAL_ABANDONED] = 0,
};

int tlm_eng__res_move_ok(tlm_journal_state from, tlm_journal_state to)
{
	return (unsigned)from <= TLM_JOURNAL_ABANDONED && (unsigned)to <= TLM_JOURNAL_ABANDONED &&
	       (res_moves[from] & (1u << to)) != 0;
}

static int res_write(eng *e, eng_rs *r, tlm_journal_state to, const char *id, const char *why,
		     tlm_error *err)
{
	switch (to) {
	case TLM_JOURNAL_CREATED:
		return tlm_journal_created(e->j, e->run_id, r->kind, r->name, id, err);
	case TLM_JOURNAL_INTENT:
		return tlm_journal_reintent(e->j, e->run_id, r->kind, r->name, err);
	default:
		return tlm_journal_set_resource_state(e->j, e->run_id, r->kind, r->name, to, why,
						      err);
	}
}

/* docs/metrics.md: teardown records a failed delete as deleting with why. */
static void note_metrics(const eng_rs *r, tlm_journal_state to, const char *why)
{
	const char *kind = tlm_journal_kind_name(r->kind);

	if (to == TLM_JOURNAL_CREATED)
		tlm_metrics_resource_created(kind);
	else if (to == TLM_JOURNAL_DELETED)
		tlm_metrics_resource_deleted(kind);
	else if (to == TLM_JOURNAL_DELETING && why != NULL)
		tlm_metrics_resource_failed(kind, "delete");
}

int tlm_eng__res_to(eng *e, eng_rs *r, tlm_journal_state to, char *id, const char *why)
{
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (!r->journaled || !tlm_eng__res_move_ok(r->st, to) ||
	    (to == TLM_JOURNAL_CREATED && id == NULL)) {
		tlm_eng__fail(e, "internal: %s %s cannot go from %s to %s",
			      tlm_journal_kind_name(r->kind), r->name,
			      r->journaled ? tlm_journal_state_name(r->st) : "(no row)",
			      tlm_journal_state_name(to));
		free(id);
		return TLM_EINVALID;
	}
	rc = res_write(e, r, to, id, why, &err);
	if (rc != 0) {
		free(id);
		return tlm_eng__journal_check(e, rc, &err);
	}
	r->st = to;
	note_metrics(r, to, why);
	if (to == TLM_JOURNAL_CREATED) {
		free(r->id);
		r->id = id;
	} else if (to == TLM_JOURNAL_INTENT) {
		free(r->id);
		r->id = NULL;
	}
	tlm_eng__emit_resource(e, r, why);
	return 0;
}

int tlm_eng__res_note(eng *e, eng_rs *r, const char *why)
{
	tlm_error err = TLM_ERROR_INIT;

	if (!r->journaled)
		return 0;
	return tlm_eng__journal_check(
		e,
		tlm_journal_set_resource_state(e->j, e->run_id, r->kind, r->name, r->st, why, &err),
		&err);
}

int tlm_eng__intents(eng *e, eng_rs *const *rs, size_t n)
{
	tlm_error err = TLM_ERROR_INIT;
	const char **names = calloc(n + 1, sizeof(*names));
	size_t i, k = 0;
	int rc;

	if (names == NULL)
		return tlm_eng__oom(e);
	for (i = 0; i < n; i++)
		if (!rs[i]->journaled)
			names[k++] = rs[i]->name;
	rc = k == 0 ? 0 : tlm_journal_intents(e->j, e->run_id, rs[0]->kind, names, k, &err);
	free(names);
	for (i = 0; rc == 0 && i < n; i++) {
		if (!rs[i]->journaled) {
			rs[i]->journaled = 1;
			rs[i]->st = TLM_JOURNAL_INTENT;
		}
	}
	return tlm_eng__journal_check(e, rc, &err);
}

/* ---- tasks -------------------------------------------------------------- */

#define T(s)      (1u << TASK_##s)
#define TASK_ENDS (T(FAILED) | T(CANCELLED))

/* task_moves[from]: a retry goes back to READY from an attempt in flight;
 * an attempt in flight may end in any terminal state; nothing leaves a
 * terminal state. */
static const unsigned task_moves[TASK_STATE_COUNT] = {
	[TASK_WAITING] = T(READY) | T(SKIPPED) | T(CANCELLED),
	[TASK_READY] = T(SUBMITTING) | T(CANCELLED),
	[TASK_SUBMITTING] = T(SUBMITTED) | T(UNKNOWN) | T(READY) | TASK_ENDS,
	[TASK_UNKNOWN] = T(SUBMITTED) | T(SUBMITTING) | T(READY) | TASK_ENDS,
	[TASK_SUBMITTED] = T(RUNNING) | T(COMPLETED) | T(READY) | T(TIMED_OUT) | TASK_ENDS,
	[TASK_RUNNING] = T(COMPLETED) | T(READY) | T(TIMED_OUT) | TASK_ENDS,
};

static const char *const task_names[TASK_STATE_COUNT] = { "pending",   "pending",   "submitted",
							  "submitted", "submitted", "running",
							  "completed", "failed",    "timed_out",
							  "skipped",   "cancelled" };

/* What each engine state is in the journal's vocabulary. */
static const tlm_attempt_status task_journal[TASK_STATE_COUNT] = {
	TLM_ATTEMPT_PENDING,   TLM_ATTEMPT_PENDING, TLM_ATTEMPT_PENDING,   TLM_ATTEMPT_PENDING,
	TLM_ATTEMPT_SUBMITTED, TLM_ATTEMPT_RUNNING, TLM_ATTEMPT_COMPLETED, TLM_ATTEMPT_FAILED,
	TLM_ATTEMPT_TIMED_OUT, TLM_ATTEMPT_SKIPPED, TLM_ATTEMPT_CANCELLED
};

const char *tlm_eng__task_state_name(eng_task_state st)
{
	return (unsigned)st < TASK_STATE_COUNT ? task_names[st] : "?";
}

int tlm_eng__task_terminal(const eng_task *t)
{
	return t->st >= TASK_COMPLETED;
}

int tlm_eng__task_move_ok(eng_task_state from, eng_task_state to)
{
	return (unsigned)from < TASK_STATE_COUNT && (unsigned)to < TASK_STATE_COUNT &&
	       (task_moves[from] & (1u << to)) != 0;
}

int tlm_eng__attempt_record(eng *e, const eng_task *t, int attempt, const char *id,
			    tlm_attempt_status st)
{
	const tlm_spec_task *s = &e->spec->tasks[t->idx];
	tlm_error err = TLM_ERROR_INIT;

	return tlm_eng__journal_check(
		e,
		tlm_journal_task_record(e->j, e->run_id, e->spec->teams[s->team].name, s->subject,
					attempt > 0 ? attempt : 1, id, st, &err),
		&err);
}

/* Lists t for tlm_eng__write_unwritten, once however often it moves. */
static void defer_row(eng *e, eng_task *t)
{
	if (!t->in_unwritten)
		e->unwritten[e->nunwritten++] = t->idx;
	t->in_unwritten = 1;
	t->row_owed = 1;
}

/* A task that moved on since (ended, or retried and not submitted yet) had
 * its row written by that move. */
void tlm_eng__write_owed(eng *e, eng_task *t)
{
	if (!t->row_owed)
		return;
	t->row_owed = 0;
	if ((t->st == TASK_SUBMITTED || t->st == TASK_RUNNING) && e->stop != STOP_FENCED)
		(void)tlm_eng__attempt_record(e, t, t->attempt, t->id,
					      t->st == TASK_RUNNING ? TLM_ATTEMPT_RUNNING
								    : TLM_ATTEMPT_SUBMITTED);
}

void tlm_eng__write_unwritten(eng *e)
{
	size_t i, n = e->nunwritten;

	e->nunwritten = 0;
	for (i = 0; i < n; i++) {
		eng_task *t = &e->tasks[e->unwritten[i]];

		t->in_unwritten = 0;
		tlm_eng__write_owed(e, t);
	}
}

static int in_flight(eng_task_state st)
{
	return st == TASK_SUBMITTING || st == TASK_UNKNOWN || st == TASK_SUBMITTED ||
	       st == TASK_RUNNING;
}

/* The journal row a move writes, if any: 1 and *st, or 0. */
static int journal_of(const eng_task *t, eng_task_state to, eng_task_state why,
		      tlm_attempt_status *st)
{
	if (to == TASK_READY && in_flight(t->st)) {
		*st = task_journal[why];
		return 1;
	}
	if ((to == TASK_SUBMITTING && t->st == TASK_READY) || to == TASK_SUBMITTED ||
	    to == TASK_RUNNING || to >= TASK_COMPLETED) {
		*st = task_journal[to];
		return 1;
	}
	return 0;
}

int tlm_eng__task_message(eng *e, eng_task *t, const char *msg)
{
	char *m = NULL;

	if (msg != NULL && (m = strdup(msg)) == NULL)
		return tlm_eng__oom(e);
	free(t->message);
	t->message = m;
	return 0;
}

void tlm_eng__task_set(eng *e, eng_task *t, eng_task_state to)
{
	e->nstate[t->st]--;
	e->nstate[to]++;
	t->st = to;
}

int tlm_eng__task_to(eng *e, eng_task *t, eng_task_state to, eng_task_state why, const char *msg)
{
	tlm_attempt_status st;
	eng_task_state from;
	int rc = 0, attempt = t->attempt;

	if (!tlm_eng__task_move_ok(t->st, to) ||
	    (to == TASK_READY && in_flight(t->st) && why != TASK_FAILED && why != TASK_TIMED_OUT &&
	     why != TASK_CANCELLED)) {
		char name[TLM_SPEC_SUBJECT_MAX + 80];

		tlm_eng__fail(e, "internal: task %s cannot go from %s to %s",
			      tlm_eng__task_name(e, t->idx, name, sizeof(name)), task_names[t->st],
			      tlm_eng__task_state_name(to));
		return TLM_EINVALID;
	}
	if (to == TASK_SUBMITTING && t->st == TASK_READY)
		attempt++;
	/* Write-ahead: a new attempt is durable before its create is sent, so
	 * a failed write leaves the task where it was and nothing is sent.
	 * `submitted` (the id) and `running` wait for the next commit: nothing
	 * is sent because of them, a crash before it leaves the attempt
	 * `pending`, whose create is looked up by name as for a lost reply,
	 * and a task that ends before then is written once, as it ended. */
	if (journal_of(t, to, why, &st)) {
		if (to == TASK_SUBMITTED || to == TASK_RUNNING) {
			defer_row(e, t);
		} else {
			t->row_owed = 0;
			rc = tlm_eng__attempt_record(e, t, attempt, to == TASK_READY ? NULL : t->id,
						     st);
		}
	}
	if (rc != 0 && to == TASK_SUBMITTING)
		return rc;
	t->attempt = attempt;
	from = t->st;
	tlm_eng__task_set(e, t, to);
	if (to >= TASK_COMPLETED) {
		t->finished_ms = tlm_eng__now_ms();
		e->nterminal++;
		tlm_metrics_task_final(tlm_eng__task_state_name(to));
		if (tlm_eng__task_message(e, t, msg) != 0 && rc == 0)
			rc = TLM_ERROR;
	}
	tlm_eng__emit_task(e, t, from, to, msg);
	return rc;
}

int tlm_eng__vanished(eng *e, eng_rs *rs)
{
	if (!rs->journaled)
		return 0;
	tlm_eng__log(e, TLM_ENGINE_WARN,
		     "%s %s is gone from the control plane (404): recorded absent; did the control "
		     "plane restart without its state?",
		     tlm_journal_kind_name(rs->kind), rs->name);
	(void)tlm_eng__res_to(e, rs, TLM_JOURNAL_ABSENT, NULL,
			      "gone from the control plane (404) while the run believed it alive");
	e->res->vanished++;
	return 1;
}
