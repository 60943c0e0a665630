/* Spans from engine events (src/trace/spans.c), without an exporter: a
 * tracer whose thread was never started keeps what it finished in its
 * queue, which the test reads.  A retried task (two attempt spans, the
 * first an error), a skipped task (no span), phases ending each other,
 * resource lives with their events, teardown leaving resources, a run
 * that never said it ended (tlm_trace_finish ends it as an error), and
 * events before the run started (ignored). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "trace/trace_internal.h"

static tlm_trace *tracer(void)
{
	tlm_trace *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	pthread_mutex_init(&t->mu, NULL);
	t->sampled = 1;
	t->cfg.timeout_ms = 100;
	assert_int_equal(tlm_trace_random_id(t->trace_id, 16), 0);
	assert_int_equal(tlm_trace_random_id(t->run_span, 8), 0);
	return t;
}

static void ev(tlm_trace *t, tlm_engine_event_kind kind, const char *state, const char *name,
	       uint64_t at)
{
	tlm_engine_event e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.run_id = "r1";
	e.workflow = "wf";
	e.state = state;
	e.at_ms = at;
	if (kind == TLM_ENGINE_EV_PHASE)
		e.phase = name;
	else
		e.name = name;
	tlm_trace_on_event(t, &e);
}

static void task_ev(tlm_trace *t, const char *subject, const char *state, int attempt,
		    const char *msg, uint64_t at)
{
	tlm_engine_event e;

	memset(&e, 0, sizeof(e));
	e.kind = TLM_ENGINE_EV_TASK;
	e.run_id = "r1";
	e.workflow = "wf";
	e.team = "t";
	e.name = subject;
	e.state = state;
	e.attempt = attempt;
	e.remote_id = "task-id";
	e.message = msg;
	e.at_ms = at;
	tlm_trace_on_event(t, &e);
}

/* The queued span named name (the n-th of that name, from 0). */
static const tlm_trace_span *queued(const tlm_trace *t, const char *name, int n)
{
	for (size_t i = 0; i < t->nqueue; i++)
		if (strcmp(t->queue[i].name, name) == 0 && n-- == 0)
			return &t->queue[i];
	fail_msg("no span %s", name);
	return NULL;
}

static const char *attr(const tlm_trace_span *s, const char *key)
{
	static char buf[32];

	for (size_t i = 0; i < s->nattrs; i++)
		if (strcmp(s->attrs[i].key, key) == 0) {
			if (s->attrs[i].str != NULL)
				return s->attrs[i].str;
			snprintf(buf, sizeof(buf), "%lld", (long long)s->attrs[i].int_value);
			return buf;
		}
	return NULL;
}

static int child_of(const tlm_trace_span *s, const tlm_trace_span *p)
{
	return s->has_parent && memcmp(s->parent_id, p->span_id, 8) == 0;
}

static void test_run(void **state)
{
	tlm_trace *t = tracer();
	const tlm_trace_span *run, *prov, *running, *tear, *a1, *a2, *agent, *team;

	(void)state;
	ev(t, TLM_ENGINE_EV_PHASE, NULL, "probing", 900); /* before the run: ignored */
	ev(t, TLM_ENGINE_EV_RUN_STARTED, "new", NULL, 1000);
	ev(t, TLM_ENGINE_EV_PHASE, NULL, "provisioning", 1001);
	ev(t, TLM_ENGINE_EV_AGENT, "created", "tlm-r1-a-x", 1002);
	ev(t, TLM_ENGINE_EV_TEAM, "created", "tlm-r1-t-t", 1003);
	ev(t, TLM_ENGINE_EV_AGENT, "started", "tlm-r1-a-x", 1004);
	ev(t, TLM_ENGINE_EV_PHASE, NULL, "running", 1010);
	task_ev(t, "s", "submitted", 1, NULL, 1011);
	task_ev(t, "s", "running", 1, NULL, 1012);
	task_ev(t, "s", "retrying", 1, "exited with status 1", 1013);
	task_ev(t, "s", "submitted", 2, NULL, 1014);
	task_ev(t, "s", "completed", 2, NULL, 1015);
	task_ev(t, "never", "skipped", 0, "t/s failed", 1016);
	ev(t, TLM_ENGINE_EV_PHASE, NULL, "tearing down", 1020);
	ev(t, TLM_ENGINE_EV_TEAM, "deleted", "tlm-r1-t-t", 1021);
	ev(t, TLM_ENGINE_EV_AGENT, "deleting", "tlm-r1-a-x", 1022);
	{
		tlm_engine_event e;

		memset(&e, 0, sizeof(e));
		e.kind = TLM_ENGINE_EV_TEARDOWN_FAILED;
		e.count = 1;
		e.at_ms = 1023;
		tlm_trace_on_event(t, &e);
	}
	ev(t, TLM_ENGINE_EV_RUN_ENDED, "teardown_failed", NULL, 1030);
	assert_int_equal(t->nopen, 0);
	/* run, 3 phases, agent, team, 2 attempts; nothing for the skipped task
	 * or the phase before the run. */
	assert_int_equal(t->nqueue, 8);

	run = queued(t, "run wf", 0);
	assert_false(run->has_parent);
	assert_memory_equal(run->span_id, t->run_span, 8);
	assert_int_equal(run->status, TLM_TRACE_STATUS_ERROR);
	assert_string_equal(run->status_message, "teardown_failed");
	assert_int_equal(run->start_ns, 1000000000ull);
	assert_int_equal(run->end_ns, 1030000000ull);
	assert_string_equal(attr(run, "telemachy.run.leftovers"), "1");
	assert_string_equal(attr(run, "telemachy.run.id"), "r1");

	prov = queued(t, "provisioning", 0);
	running = queued(t, "running", 0);
	tear = queued(t, "teardown", 0);
	assert_true(child_of(prov, run) && child_of(running, run) && child_of(tear, run));
	assert_int_equal(prov->end_ns, running->start_ns); /* one phase ends the last */
	assert_int_equal(tear->end_ns, run->end_ns);
	assert_int_equal(tear->status, TLM_TRACE_STATUS_ERROR);
	assert_string_equal(attr(tear, "telemachy.teardown.leftovers"), "1");

	agent = queued(t, "agent tlm-r1-a-x", 0);
	team = queued(t, "team tlm-r1-t-t", 0);
	assert_true(child_of(agent, prov) && child_of(team, prov));
	assert_int_equal(team->end_ns, 1021000000ull);
	assert_string_equal(attr(team, "telemachy.resource.end"), "deleted");
	/* Never deleted: ended with the run. */
	assert_int_equal(agent->end_ns, run->end_ns);
	assert_int_equal(agent->nevents, 2);
	assert_string_equal(agent->events[0].name, "started");
	assert_string_equal(agent->events[1].name, "deleting");

	a1 = queued(t, "task t/s", 0);
	a2 = queued(t, "task t/s", 1);
	assert_true(child_of(a1, running) && child_of(a2, running));
	assert_string_equal(attr(a1, "telemachy.task.attempt"), "1");
	assert_string_equal(attr(a2, "telemachy.task.attempt"), "2");
	assert_int_equal(a1->status, TLM_TRACE_STATUS_ERROR);
	assert_string_equal(a1->status_message, "exited with status 1");
	assert_string_equal(attr(a1, "telemachy.task.state"), "retrying");
	assert_int_equal(a1->nevents, 1);
	assert_int_equal(a2->status, TLM_TRACE_STATUS_OK);
	assert_null(a2->status_message);
	assert_string_equal(attr(a2, "telemachy.task.remote_id"), "task-id");
	assert_true(memcmp(a1->span_id, a2->span_id, 8) != 0);
	tlm_trace_free(t);
}

/* A run that never said it ended: finish ends it, open spans with it. */
static void test_unended(void **state)
{
	tlm_trace *t = tracer();
	const tlm_trace_span *run;

	(void)state;
	ev(t, TLM_ENGINE_EV_RUN_STARTED, "resumed", NULL, 1000);
	ev(t, TLM_ENGINE_EV_PHASE, NULL, "running", 1001);
	task_ev(t, "s", "submitted", 1, NULL, 1002);
	/* A resumed run's resource, never seen created: no span. */
	ev(t, TLM_ENGINE_EV_AGENT, "deleted", "tlm-r1-a-old", 1003);
	tlm_trace_finish(t);
	assert_int_equal(t->nqueue, 3);
	run = queued(t, "run wf", 0);
	assert_int_equal(run->status, TLM_TRACE_STATUS_ERROR);
	assert_string_equal(attr(run, "telemachy.run.start"), "resumed");
	assert_true(run->end_ns >= run->start_ns);
	/* After finish, events change nothing. */
	ev(t, TLM_ENGINE_EV_RUN_STARTED, "new", NULL, 2000);
	assert_int_equal(t->nqueue, 3);
	tlm_trace_free(t);
}

/* Unsampled: nothing is recorded at all. */
static void test_unsampled(void **state)
{
	tlm_trace *t = tracer();

	(void)state;
	t->sampled = 0;
	ev(t, TLM_ENGINE_EV_RUN_STARTED, "new", NULL, 1000);
	ev(t, TLM_ENGINE_EV_RUN_ENDED, "completed", NULL, 1001);
	assert_int_equal(t->nqueue, 0);
	assert_int_equal(t->nopen, 0);
	tlm_trace_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_unended),
		cmocka_unit_test(test_unsampled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
