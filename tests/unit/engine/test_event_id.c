/* Which engine events are final and their ids (tlm_engine_event_final,
 * tlm_engine_event_id, include/telemachy/engine.h): the names hooks listen
 * for, the same id for the same event, none for what is not final. */
#include <string.h>

#include "harness/harness.h"
#include "telemachy/engine.h"
#include "telemachy/error.h"

static tlm_engine_event ev_of(tlm_engine_event_kind kind, const char *state)
{
	tlm_engine_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.state = state;
	ev.run_id = "abcd1234";
	ev.team = "t";
	ev.name = "a";
	ev.attempt = 2;
	return ev;
}

static void final_is(tlm_engine_event_kind kind, const char *state, const char *want)
{
	tlm_engine_event ev = ev_of(kind, state);
	const char *got = tlm_engine_event_final(&ev);
	char id[TLM_ENGINE_EVENT_ID_MAX];

	if (want == NULL) {
		assert_null(got);
		assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), TLM_EINVALID);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), 0);
}

static void test_final(void **state)
{
	(void)state;
	final_is(TLM_ENGINE_EV_TASK, "completed", "task_completed");
	final_is(TLM_ENGINE_EV_TASK, "failed", "task_failed");
	final_is(TLM_ENGINE_EV_TASK, "timed_out", "task_failed");
	final_is(TLM_ENGINE_EV_TASK, "skipped", "task_skipped");
	/* Not over: a retried attempt, a task on its way, one cancelled with
	 * the run (the run's event says so). */
	final_is(TLM_ENGINE_EV_TASK, "retrying", NULL);
	final_is(TLM_ENGINE_EV_TASK, "running", NULL);
	final_is(TLM_ENGINE_EV_TASK, "cancelled", NULL);
	final_is(TLM_ENGINE_EV_TASK, NULL, NULL);
	final_is(TLM_ENGINE_EV_TEARDOWN_FAILED, "teardown_failed", "teardown_failed");
	final_is(TLM_ENGINE_EV_RUN_ENDED, "completed", "run_completed");
	final_is(TLM_ENGINE_EV_RUN_ENDED, "cancelled", "run_cancelled");
	final_is(TLM_ENGINE_EV_RUN_ENDED, "failed", "run_failed");
	final_is(TLM_ENGINE_EV_RUN_ENDED, "teardown_failed", "run_failed");
	final_is(TLM_ENGINE_EV_RUN_ENDED, "timed_out", "run_failed");
	final_is(TLM_ENGINE_EV_RUN_ENDED, "preflight_failed", "run_failed");
	/* This process stopped; the run goes on elsewhere. */
	final_is(TLM_ENGINE_EV_RUN_ENDED, "interrupted", NULL);
	final_is(TLM_ENGINE_EV_RUN_ENDED, "taken_over", NULL);
	final_is(TLM_ENGINE_EV_RUN_STARTED, "resumed", NULL);
	final_is(TLM_ENGINE_EV_PHASE, NULL, NULL);
	final_is(TLM_ENGINE_EV_AGENT, "deleted", NULL);
}

static void test_ids(void **state)
{
	tlm_engine_event ev = ev_of(TLM_ENGINE_EV_TASK, "timed_out");
	char id[TLM_ENGINE_EVENT_ID_MAX], small[12];
	(void)state;

	assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), 0);
	assert_string_equal(id, "abcd1234:task_failed:t/a:2");
	ev.attempt = 3; /* each attempt ends once */
	assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), 0);
	assert_string_equal(id, "abcd1234:task_failed:t/a:3");
	/* A run may end twice (failed with leftovers, then torn down): two ids. */
	ev = ev_of(TLM_ENGINE_EV_RUN_ENDED, "teardown_failed");
	assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), 0);
	assert_string_equal(id, "abcd1234:run_failed:teardown_failed");
	ev.state = "failed";
	assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), 0);
	assert_string_equal(id, "abcd1234:run_failed:failed");
	ev = ev_of(TLM_ENGINE_EV_TEARDOWN_FAILED, "teardown_failed");
	ev.count = 4; /* not part of the id */
	assert_int_equal(tlm_engine_event_id(&ev, id, sizeof(id)), 0);
	assert_string_equal(id, "abcd1234:teardown_failed");
	/* Cut to the room given, still terminated. */
	assert_int_equal(tlm_engine_event_id(&ev, small, sizeof(small)), 0);
	assert_string_equal(small, "abcd1234:te");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_final),
		cmocka_unit_test(test_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
