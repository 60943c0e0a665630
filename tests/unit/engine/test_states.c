/* The engine's state machines without a server (src/engine/states.c): the
 * tables of legal moves for runs, resources and tasks; every move journals
 * what it means (the attempt rows, the resource rows, the run state); an
 * illegal move is refused and changes nothing; a write-ahead failure leaves
 * the task where it was; a fenced journal stops the engine; failures skip
 * exactly their dependents; retries are new attempts; the teardown decision
 * for every policy and outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "harness/harness.h"
#include "telemachy/spec.h"

/* A diamond a -> {b, c} -> d, and e on its own, in one team; b retries once. */
static const char spec_text[] =
	"apiVersion: telemachy/v1\n"
	"metadata:\n  name: states\n"
	"agents:\n  - name: w\n    program: none\n"
	"teams:\n  - name: t\n    agents: [w]\n    tasks:\n"
	"      - subject: a\n        description: a\n"
	"      - subject: b\n        description: b\n"
	"        blocked_by: [a]\n        retries: 1\n"
	"      - subject: c\n        description: c\n        blocked_by: [a]\n"
	"      - subject: d\n        description: d\n        blocked_by: [b, c]\n"
	"      - subject: e\n        description: e\n";

typedef struct fixture {
	char *dir;
	tlm_spec *spec;
	tlm_engine_opts o;
	tlm_engine_result res;
	eng e;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tlm_engine_opts init = TLM_ENGINE_OPTS_INIT;
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;

	assert_non_null(f);
	f->dir = tlm_h_tmpdir();
	assert_int_equal(
		tlm_spec_parse(&f->spec, "states.yaml", spec_text, strlen(spec_text), &diags, &err),
		0);
	tlm_diags_clear(&diags);
	f->o = init;
	f->o.spec = f->spec;
	f->o.spec_text = spec_text;
	tlm_eng__init(&f->e, &f->o, &f->res);
	assert_int_equal(tlm_journal_open(&f->e.j, f->dir, &err), 0);
	assert_int_equal(tlm_journal_run_new(f->e.j, "states", spec_text, f->e.run_id, &err), 0);
	assert_int_equal(tlm_eng__build(&f->e, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tlm_journal_close(f->e.j);
	f->e.j = NULL;
	tlm_eng__free_run(&f->e);
	tlm_engine_result_clear(&f->res);
	tlm_spec_free(f->spec);
	tlm_h_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* The journal's rows for task `subject` (attempt -> status), as a string
 * like "1:failed 2:pending". */
typedef struct rows {
	const char *subject;
	int ids; /* "1:failed@ID" (or "@-": none) */
	char text[256];
} rows;

static int row_cb(const tlm_journal_task *t, void *ctx)
{
	rows *r = ctx;
	size_t n = strlen(r->text);

	if (strcmp(t->subject, r->subject) == 0)
		snprintf(r->text + n, sizeof(r->text) - n, "%s%d:%s%s%s", n ? " " : "", t->attempt,
			 tlm_attempt_status_name(t->status), r->ids ? "@" : "",
			 !r->ids        ? ""
			 : t->remote_id ? t->remote_id
					: "-");
	return 0;
}

static const char *rows_of(fixture *f, const char *subject, int ids)
{
	static rows r;

	memset(&r, 0, sizeof(r));
	r.subject = subject;
	r.ids = ids;
	assert_int_equal(tlm_journal_tasks(f->e.j, f->e.run_id, row_cb, &r, NULL), 0);
	return r.text;
}

static const char *journaled(fixture *f, const char *subject)
{
	return rows_of(f, subject, 0);
}

/* What another process reads: the committed rows only. */
static const char *committed(fixture *f, const char *subject)
{
	static rows r;
	tlm_journal *other = NULL;

	memset(&r, 0, sizeof(r));
	r.subject = subject;
	assert_int_equal(tlm_journal_open(&other, f->dir, NULL), 0);
	assert_int_equal(tlm_journal_tasks(other, f->e.run_id, row_cb, &r, NULL), 0);
	tlm_journal_close(other);
	return r.text;
}

/* The same with each attempt's remote id. */
static const char *journaled_ids(fixture *f, const char *subject)
{
	return rows_of(f, subject, 1);
}

static eng_task *task(fixture *f, const char *subject)
{
	size_t i;

	for (i = 0; i < f->spec->ntasks; i++)
		if (strcmp(f->spec->tasks[i].subject, subject) == 0)
			return &f->e.tasks[i];
	fail_msg("no task %s", subject);
	return NULL;
}

static void test_run_moves(void **state)
{
	fixture *f = *state;
	tlm_journal_run r;

	assert_true(tlm_eng__run_move_ok(TLM_RUN_PENDING, TLM_RUN_PROVISIONING));
	assert_false(tlm_eng__run_move_ok(TLM_RUN_PENDING, TLM_RUN_RUNNING));
	assert_false(tlm_eng__run_move_ok(TLM_RUN_COMPLETED, TLM_RUN_PROVISIONING));
	assert_true(tlm_eng__run_move_ok(TLM_RUN_COMPLETED, TLM_RUN_TEARING_DOWN));
	assert_true(tlm_eng__run_move_ok(TLM_RUN_FAILED, TLM_RUN_PROVISIONING)); /* resume */
	assert_false(tlm_eng__run_move_ok(TLM_RUN_PENDING, (tlm_run_state)42));
	/* An illegal move is refused, fails the run, and journals nothing. */
	assert_int_equal(tlm_eng__run_to(&f->e, TLM_RUN_COMPLETED), TLM_EINVALID);
	assert_int_equal(f->e.outcome, TLM_ENGINE_FAILED);
	assert_non_null(strstr(f->e.error, "cannot go from pending to completed"));
	assert_int_equal(tlm_journal_run_get(f->e.j, f->e.run_id, &r, NULL), 0);
	assert_int_equal(r.state, TLM_RUN_PENDING);
	tlm_journal_run_clear(&r);
	assert_int_equal(tlm_eng__run_to(&f->e, TLM_RUN_PROVISIONING), 0);
	assert_int_equal(tlm_eng__run_to(&f->e, TLM_RUN_RUNNING), 0);
	assert_int_equal(tlm_journal_run_get(f->e.j, f->e.run_id, &r, NULL), 0);
	assert_int_equal(r.state, TLM_RUN_RUNNING);
	tlm_journal_run_clear(&r);
}

/* The resource's journal row, as "state id". */
typedef struct res_row {
	const char *name;
	char text[128];
} res_row;

static int res_cb(const tlm_journal_resource *r, void *ctx)
{
	res_row *x = ctx;

	if (strcmp(r->name, x->name) == 0)
		snprintf(x->text, sizeof(x->text), "%s %s", tlm_journal_state_name(r->state),
			 r->remote_id ? r->remote_id : "-");
	return 0;
}

static const char *res_journaled(fixture *f, const char *name)
{
	static res_row x;

	memset(&x, 0, sizeof(x));
	x.name = name;
	assert_int_equal(tlm_journal_resources(f->e.j, f->e.run_id, res_cb, &x, NULL), 0);
	return x.text;
}

static void test_resource_moves(void **state)
{
	fixture *f = *state;
	eng_rs *rs = &f->e.agents[0].rs;
	eng_rs *team = &f->e.teams[0].rs;
	eng_rs *list[1] = { rs };
	char want[64];

	/* The names come from one place: tlm-<run>-a-<agent>, tlm-<run>-t-<team>. */
	snprintf(want, sizeof(want), "tlm-%s-a-w", f->e.run_id);
	assert_string_equal(rs->name, want);
	snprintf(want, sizeof(want), "tlm-%s-t-t", f->e.run_id);
	assert_string_equal(team->name, want);
	/* No row yet: no move is possible. */
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_ABSENT, NULL, NULL), TLM_EINVALID);
	f->e.error = (free(f->e.error), NULL);
	assert_int_equal(tlm_eng__intents(&f->e, list, 1), 0);
	assert_string_equal(res_journaled(f, rs->name), "intent -");
	/* intent -> started skips a step: refused, nothing written. */
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_STARTED, NULL, NULL), TLM_EINVALID);
	assert_string_equal(res_journaled(f, rs->name), "intent -");
	/* created needs an id. */
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_CREATED, NULL, NULL), TLM_EINVALID);
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_CREATED, strdup("ag-1"), NULL), 0);
	assert_string_equal(rs->id, "ag-1");
	assert_string_equal(res_journaled(f, rs->name), "created ag-1");
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_STARTED, NULL, NULL), 0);
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_DELETING, NULL, NULL), 0);
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_DELETING, NULL, "HTTP 500"), 0);
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_DELETED, NULL, NULL), 0);
	assert_string_equal(res_journaled(f, rs->name), "deleted ag-1");
	/* What is gone may be created again (a resume): back to an intent. */
	assert_int_equal(tlm_eng__res_to(&f->e, rs, TLM_JOURNAL_INTENT, NULL, NULL), 0);
	assert_null(rs->id);
	assert_string_equal(res_journaled(f, rs->name), "intent -");
	/* Abandoned is for ever. */
	assert_true(tlm_eng__res_move_ok(TLM_JOURNAL_STARTED, TLM_JOURNAL_ABANDONED));
	assert_false(tlm_eng__res_move_ok(TLM_JOURNAL_ABANDONED, TLM_JOURNAL_DELETING));
	assert_false(tlm_eng__res_move_ok(TLM_JOURNAL_ABANDONED, TLM_JOURNAL_INTENT));
	assert_false(tlm_eng__res_move_ok(TLM_JOURNAL_DELETED, TLM_JOURNAL_CREATED));
}

/* Walks task a through two attempts by hand, checking each journal row. */
static void test_task_attempts(void **state)
{
	fixture *f = *state;
	eng_task *a = task(f, "a");

	assert_int_equal(a->st, TASK_WAITING);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, 0, NULL), 0);
	assert_string_equal(journaled(f, "a"), ""); /* readiness is not journaled */
	/* Submitting opens attempt 1, journaled before anything is sent. */
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTING, 0, NULL), 0);
	assert_int_equal(a->attempt, 1);
	assert_string_equal(journaled(f, "a"), "1:pending");
	a->id = strdup("task-1");
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTED, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_RUNNING, 0, NULL), 0);
	/* `submitted` and `running` are written by the next commit. */
	assert_string_equal(journaled(f, "a"), "1:pending");
	assert_int_equal(tlm_eng__flush(&f->e), 0);
	assert_string_equal(journaled_ids(f, "a"), "1:running@task-1");
	/* A retry: the attempt ends timed out, the task is ready again. */
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, TASK_TIMED_OUT, NULL), 0);
	assert_string_equal(journaled(f, "a"), "1:timed_out");
	/* ... and why must be an end (not "running"). */
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTING, 0, NULL), 0);
	assert_int_equal(a->attempt, 2);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, TASK_RUNNING, NULL), TLM_EINVALID);
	assert_int_equal(a->st, TASK_SUBMITTING);
	assert_string_equal(journaled(f, "a"), "1:timed_out 2:pending");
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_FAILED, 0, "exit status 3"), 0);
	assert_string_equal(a->message, "exit status 3");
	assert_int_equal(f->e.nterminal, 1);
	assert_string_equal(journaled(f, "a"), "1:timed_out 2:failed");
	/* Terminal is for ever. */
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, TASK_FAILED, NULL), TLM_EINVALID);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_COMPLETED, 0, NULL), TLM_EINVALID);
	assert_int_equal(a->st, TASK_FAILED);
	assert_int_equal(f->e.nterminal, 1);
	/* A task that never ran may be skipped or cancelled, not completed. */
	assert_false(tlm_eng__task_move_ok(TASK_WAITING, TASK_COMPLETED));
	assert_false(tlm_eng__task_move_ok(TASK_WAITING, TASK_SUBMITTED));
	assert_true(tlm_eng__task_move_ok(TASK_WAITING, TASK_SKIPPED));
}

/* A task that is submitted, runs and completes before the commit is
 * written once, as it ended, with its id: the `submitted` and `running` rows
 * waiting for the commit are not written over it.  One that is retried
 * writes the ending attempt's row, id included, before the id is set aside
 * (tasks.c), and gets the row of its new attempt at the commit. */
static void test_running_written_once(void **state)
{
	fixture *f = *state;
	eng_task *a = task(f, "a"), *b = task(f, "b");

	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTING, 0, NULL), 0);
	a->id = strdup("task-a");
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTED, 0, NULL), 0);
	assert_int_equal(f->e.nunwritten, 1);
	assert_string_equal(journaled_ids(f, "a"), "1:pending@-");
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_RUNNING, 0, NULL), 0);
	assert_int_equal(f->e.nunwritten, 1);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_COMPLETED, 0, NULL), 0);
	assert_string_equal(journaled_ids(f, "a"), "1:completed@task-a");
	assert_int_equal(tlm_eng__flush(&f->e), 0);
	assert_string_equal(journaled_ids(f, "a"), "1:completed@task-a");
	assert_int_equal(f->e.nunwritten, 0);
	/* Submitted, running, retried (timed out: the engine's retry, which
	 * sets the id aside), submitted and running again: one entry in the
	 * list; the first attempt keeps its id. */
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_READY, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_SUBMITTING, 0, NULL), 0);
	b->id = strdup("task-b1");
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_SUBMITTED, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_RUNNING, 0, NULL), 0);
	tlm_eng__attempt_failed(&f->e, b, TASK_TIMED_OUT, "timed out");
	assert_int_equal(b->st, TASK_READY);
	assert_null(b->id);
	assert_string_equal(journaled_ids(f, "b"), "1:timed_out@task-b1");
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_SUBMITTING, 0, NULL), 0);
	b->id = strdup("task-b2");
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_SUBMITTED, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_RUNNING, 0, NULL), 0);
	assert_int_equal(f->e.nunwritten, 1);
	assert_string_equal(journaled_ids(f, "b"), "1:timed_out@task-b1 2:pending@-");
	assert_int_equal(tlm_eng__flush(&f->e), 0);
	assert_string_equal(journaled_ids(f, "b"), "1:timed_out@task-b1 2:running@task-b2");
}

/* A resumed run whose task's last attempt is `pending` (its create sent,
 * the reply never journaled) looks that create up by name; it does not
 * follow the id of the attempt before, which is another task upstream.
 * A last attempt with its own id is followed. */
static void test_restore_pending_after_retry(void **state)
{
	fixture *f = *state;
	tlm_error err = TLM_ERROR_INIT;
	eng_task *b = task(f, "b"), *e = task(f, "e");

	assert_int_equal(tlm_journal_task_record(f->e.j, f->e.run_id, "t", "b", 1, "task-b1",
						 TLM_ATTEMPT_TIMED_OUT, &err),
			 0);
	assert_int_equal(tlm_journal_task_record(f->e.j, f->e.run_id, "t", "b", 2, NULL,
						 TLM_ATTEMPT_PENDING, &err),
			 0);
	assert_int_equal(tlm_journal_task_record(f->e.j, f->e.run_id, "t", "e", 1, "task-e1",
						 TLM_ATTEMPT_TIMED_OUT, &err),
			 0);
	assert_int_equal(tlm_journal_task_record(f->e.j, f->e.run_id, "t", "e", 2, "task-e2",
						 TLM_ATTEMPT_SUBMITTED, &err),
			 0);
	assert_int_equal(tlm_eng__restore(&f->e, "http://127.0.0.1:9", -1, &err), 0);
	assert_int_equal(b->attempt, 2);
	assert_int_equal(b->st, TASK_UNKNOWN);
	assert_null(b->id);
	assert_int_equal(e->attempt, 2);
	assert_int_equal(e->st, TASK_SUBMITTED);
	assert_non_null(e->id);
	assert_string_equal(e->id, "task-e2");
}

/* A failure skips exactly its dependents, transitively; the independent
 * task is untouched; completion readies dependents once all are done. */
static void test_failure_skips_dependents(void **state)
{
	fixture *f = *state;
	eng_task *a = task(f, "a"), *b = task(f, "b"), *c = task(f, "c"), *d = task(f, "d");
	eng_task *e = task(f, "e");

	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTING, 0, NULL), 0);
	a->id = strdup("task-a");
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTED, 0, NULL), 0);
	tlm_eng__finish(&f->e, a, TASK_COMPLETED, NULL);
	assert_int_equal(b->st, TASK_READY);
	assert_int_equal(c->st, TASK_READY);
	assert_int_equal(d->st, TASK_WAITING);
	assert_int_equal(d->deps_left, 2);
	/* c fails for good: d is skipped (through c), b and e go on. */
	assert_int_equal(tlm_eng__task_to(&f->e, c, TASK_SUBMITTING, 0, NULL), 0);
	c->id = strdup("task-c");
	assert_int_equal(tlm_eng__task_to(&f->e, c, TASK_SUBMITTED, 0, NULL), 0);
	tlm_eng__attempt_failed(&f->e, c, TASK_FAILED, "exit status 1");
	assert_int_equal(c->st, TASK_FAILED); /* no retries: the end */
	assert_int_equal(d->st, TASK_SKIPPED);
	assert_non_null(strstr(d->message, "t/c did not complete"));
	assert_string_equal(journaled(f, "d"), "1:skipped");
	assert_int_equal(b->st, TASK_READY);
	assert_int_equal(e->st, TASK_WAITING);
	assert_int_equal(f->e.outcome, TLM_ENGINE_FAILED);
	/* b has a retry: its first failure is a new attempt, not the end. */
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_SUBMITTING, 0, NULL), 0);
	b->id = strdup("task-b1");
	assert_int_equal(tlm_eng__task_to(&f->e, b, TASK_SUBMITTED, 0, NULL), 0);
	tlm_eng__attempt_failed(&f->e, b, TASK_FAILED, "flaky");
	assert_int_equal(b->st, TASK_READY);
	assert_null(b->id);
	assert_int_equal(b->nold, 1);
	assert_string_equal(journaled(f, "b"), "1:failed");
}

/* A journal that can no longer be written by this handle (another process
 * took the run over) stops the engine at once; a new attempt is not
 * opened, so nothing would be sent. */
static void test_fenced_stops(void **state)
{
	fixture *f = *state;
	eng_task *a = task(f, "a");
	tlm_journal *other = NULL;

	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, 0, NULL), 0);
	assert_int_equal(tlm_journal_open(&other, f->dir, NULL), 0);
	assert_int_equal(tlm_journal_run_claim(other, f->e.run_id, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTING, 0, NULL), TLM_EFENCED);
	assert_int_equal(a->st, TASK_READY);
	assert_int_equal(a->attempt, 0);
	assert_int_equal(f->e.stop, STOP_FENCED);
	assert_int_equal(f->e.outcome, TLM_ENGINE_TAKEN_OVER);
	assert_non_null(strstr(f->e.error, "taken over"));
	assert_int_equal(tlm_eng__gate(&f->e, 0, NULL), TLM_EFENCED);
	assert_int_equal(tlm_eng__turn(&f->e, 0), 0); /* the loop stops turning */
	tlm_journal_close(other);
}

/* The gate commits what the requests about to leave depend on, and only
 * that: a request queued before a task's intent was written leaves without
 * a commit (the open batch holds the journal's lock since its fence
 * check); the task's own create waits for the commit of its intent. */
static void test_gate_commits_what_is_needed(void **state)
{
	fixture *f = *state;
	eng_task *a = task(f, "a");
	tlm_error err = TLM_ERROR_INIT;
	uint64_t before, mine;

	assert_int_equal(tlm_journal_set_batching(f->e.j, 1, &err), 0);
	before = tlm_journal_mark(f->e.j);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_READY, 0, NULL), 0);
	assert_int_equal(tlm_eng__task_to(&f->e, a, TASK_SUBMITTING, 0, NULL), 0);
	mine = tlm_journal_mark(f->e.j);
	assert_true(tlm_journal_unflushed(f->e.j));
	assert_int_equal(tlm_eng__gate(&f->e, before, &err), 0);
	assert_true(tlm_journal_unflushed(f->e.j)); /* no commit for it */
	assert_string_equal(committed(f, "a"), "");
	assert_int_equal(tlm_eng__gate(&f->e, mine, &err), 0);
	assert_false(tlm_journal_unflushed(f->e.j));
	assert_true(tlm_journal_durable(f->e.j, mine));
	assert_string_equal(committed(f, "a"), "1:pending");
}

static void test_teardown_decision(void **state)
{
	static const struct {
		tlm_teardown policy;
		tlm_engine_outcome outcome;
		int submitted, want;
	} cases[] = {
		{ TLM_TEARDOWN_ON_COMPLETION, TLM_ENGINE_COMPLETED, 1, 1 },
		{ TLM_TEARDOWN_ON_COMPLETION, TLM_ENGINE_FAILED, 1, 0 },
		{ TLM_TEARDOWN_ON_FAILURE, TLM_ENGINE_COMPLETED, 1, 0 },
		{ TLM_TEARDOWN_ON_FAILURE, TLM_ENGINE_FAILED, 1, 1 },
		{ TLM_TEARDOWN_ALWAYS, TLM_ENGINE_FAILED, 1, 1 },
		{ TLM_TEARDOWN_NEVER, TLM_ENGINE_COMPLETED, 1, 0 },
		{ TLM_TEARDOWN_NEVER, TLM_ENGINE_CANCELLED, 1, 0 },
		{ TLM_TEARDOWN_ON_COMPLETION, TLM_ENGINE_CANCELLED, 1, 1 },
		{ TLM_TEARDOWN_ON_COMPLETION, TLM_ENGINE_TIMED_OUT, 1, 1 },
		/* Failed before any task: torn down under every policy. */
		{ TLM_TEARDOWN_NEVER, TLM_ENGINE_FAILED, 0, 1 },
		{ TLM_TEARDOWN_ON_COMPLETION, TLM_ENGINE_FAILED, 0, 1 },
	};
	fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f->spec->teardown = cases[i].policy;
		f->e.outcome = cases[i].outcome;
		f->e.any_submitted = cases[i].submitted;
		if (tlm_eng__wants_teardown(&f->e) != cases[i].want)
			fail_msg("case %zu: policy %s, outcome %s, submitted %d: want %d", i,
				 tlm_teardown_name(cases[i].policy),
				 tlm_engine_outcome_name(cases[i].outcome), cases[i].submitted,
				 cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resource_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_written_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_pending_after_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_skips_dependents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fenced_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_commits_what_is_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_decision, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
