/* The hooks module on its own (docs/hooks.md): which engine events become
 * hook events and their payload and id, --hook, the environment rule, and
 * the queue: delivery, overflow and a drain cut short by its deadline; with
 * a journal, deliveries remembered and a run's journaled events replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "hooks/hooks_internal.h"
#include "telemachy/hooks.h"

static tlm_engine_event task_event(const char *state, int attempt)
{
	tlm_engine_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = TLM_ENGINE_EV_TASK;
	ev.run_id = "r1";
	ev.workflow = "wf";
	ev.team = "core";
	ev.name = "build it";
	ev.state = state;
	ev.attempt = attempt;
	ev.at_ms = 1764710278185ull;
	return ev;
}

static json_t *payload(const tlm_engine_event *ev, tlm_hook_event *e, char *id, size_t cap)
{
	char *js = NULL;
	json_t *o;

	assert_int_equal(tlm_hooks_payload(ev, e, &js, id, cap), 0);
	o = json_loads(js, 0, NULL);
	assert_non_null(o);
	free(js);
	return o;
}

static void test_payload(void **state)
{
	tlm_engine_event ev = task_event("timed_out", 2);
	tlm_hook_event e;
	char id[256], *js = NULL;
	json_t *o;
	(void)state;

	o = payload(&ev, &e, id, sizeof(id));
	assert_int_equal(e, TLM_HOOK_TASK_FAILED);
	assert_string_equal(id, "r1:task_failed:core/build it:2");
	assert_string_equal(json_string_value(json_object_get(o, "id")), id);
	assert_string_equal(json_string_value(json_object_get(o, "event")), "task_failed");
	assert_string_equal(json_string_value(json_object_get(o, "status")), "timed_out");
	assert_string_equal(json_string_value(json_object_get(o, "task")), "build it");
	assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 2);
	assert_true(json_is_null(json_object_get(o, "message")));
	assert_string_equal(json_string_value(json_object_get(o, "at")),
			    "2025-12-02T21:17:58.185Z");
	json_decref(o);

	/* Not final, or not an event of a hook. */
	ev = task_event("retrying", 1);
	assert_int_equal(tlm_hooks_payload(&ev, &e, &js, id, sizeof(id)), TLM_EINVALID);
	assert_null(js);
	ev = task_event("running", 1);
	assert_int_equal(tlm_hooks_payload(&ev, &e, &js, id, sizeof(id)), TLM_EINVALID);
	ev.kind = TLM_ENGINE_EV_RUN_ENDED;
	ev.state = "interrupted";
	assert_int_equal(tlm_hooks_payload(&ev, &e, &js, id, sizeof(id)), TLM_EINVALID);
	ev.kind = TLM_ENGINE_EV_RUN_STARTED;
	ev.state = "new";
	assert_int_equal(tlm_hooks_payload(&ev, &e, &js, id, sizeof(id)), TLM_EINVALID);

	/* Run events: no team or task; the run's state; invalid UTF-8 is null. */
	ev.kind = TLM_ENGINE_EV_RUN_ENDED;
	ev.state = "teardown_failed";
	ev.message = "bad \xff byte";
	o = payload(&ev, &e, id, sizeof(id));
	assert_int_equal(e, TLM_HOOK_RUN_FAILED);
	assert_string_equal(id, "r1:run_failed:teardown_failed");
	assert_true(json_is_null(json_object_get(o, "team")));
	assert_true(json_is_null(json_object_get(o, "attempt")));
	assert_true(json_is_null(json_object_get(o, "message")));
	json_decref(o);
	ev.state = "cancelled";
	json_decref(payload(&ev, &e, id, sizeof(id)));
	assert_int_equal(e, TLM_HOOK_RUN_CANCELLED);
	ev.state = "completed";
	json_decref(payload(&ev, &e, id, sizeof(id)));
	assert_int_equal(e, TLM_HOOK_RUN_COMPLETED);
	ev.kind = TLM_ENGINE_EV_TEARDOWN_FAILED;
	ev.count = 3;
	o = payload(&ev, &e, id, sizeof(id));
	assert_int_equal(e, TLM_HOOK_TEARDOWN_FAILED);
	assert_int_equal(json_integer_value(json_object_get(o, "leftovers")), 3);
	json_decref(o);
}

static void test_parse_arg(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec_hook h;
	const char *argv[4];
	(void)state;

	assert_int_equal(tlm_hooks_parse_arg("task_skipped=echo a=b", &h, argv, &err), 0);
	assert_int_equal(h.event, TLM_HOOK_TASK_SKIPPED);
	assert_int_equal(h.nargv, 3);
	assert_string_equal(h.argv[0], "/bin/sh");
	assert_string_equal(h.argv[2], "echo a=b");
	assert_null(h.argv[3]);
	assert_int_equal(h.timeout_seconds, TLM_SPEC_HOOK_TIMEOUT_DEFAULT);
	assert_int_equal(tlm_hooks_parse_arg("nope=x", &h, argv, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "unknown event \"nope\""));
	assert_int_equal(tlm_hooks_parse_arg("run_failed=", &h, argv, &err), TLM_EINVALID);
	assert_int_equal(tlm_hooks_parse_arg("run_failed", &h, argv, &err), TLM_EINVALID);
	assert_int_equal(tlm_hooks_parse_arg("=x", &h, argv, &err), TLM_EINVALID);
}

static int secret(const char *name)
{
	return tlm_hooks__env_secret(name, strlen(name));
}

static void test_env_rule(void **state)
{
	(void)state;
	assert_true(secret("AGAMEMNON_API_KEY"));
	assert_true(secret("AGAMEMNON_API_KEY_FILE"));
	assert_true(secret("AGAMEMNON_URL"));
	assert_true(secret("NATS_TOKEN_FILE"));
	assert_true(secret("NATS_CREDS"));
	assert_true(secret("PGPASSWORD"));
	assert_true(secret("PGSERVICEFILE"));
	assert_true(secret("TELEMACHY_JOURNAL"));
	assert_true(secret("github_token"));
	assert_true(secret("AWS_SECRET_ACCESS_KEY"));
	assert_true(secret("TLM_EVENT"));
	assert_false(secret("PATH"));
	assert_false(secret("HOME"));
	assert_false(secret("TELEMACHY_STATE_DIR"));
	assert_false(secret("LANG"));
}

static void on_log(void *ctx, tlm_engine_level level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static long long now_ms(void)
{
	return tlm_hooks__now_ms();
}

static void test_delivery(void **state)
{
	char dir[] = "/tmp/tlm-hooks-XXXXXX", path[64], cmd[256], got[4096];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	tlm_spec_hook hk = { TLM_HOOK_TASK_COMPLETED, { 0, 0 }, argv, 3, NULL, NULL, 5 };
	tlm_hooks_opts o = TLM_HOOKS_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_event ev = task_event("completed", 1);
	tlm_hooks_stats st;
	tlm_hooks *h = NULL;
	FILE *f;
	size_t n;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(cmd, sizeof(cmd), "cat > %s; echo \"$TLM_EVENT_ID|$TLM_TASK\" >> %s", path, path);
	o.hooks = &hk;
	o.nhooks = 1;
	o.log = on_log;
	assert_int_equal(tlm_hooks_new(&h, &o, &err), 0);
	tlm_hooks_on_event(h, &ev);
	ev.state = "running"; /* ignored */
	tlm_hooks_on_event(h, &ev);
	assert_int_equal(tlm_hooks_drain(h, 10000), 0);
	tlm_hooks_on_event(h, &ev); /* after the drain: not queued */
	tlm_hooks_stats_get(h, &st);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.failed, 0);
	tlm_hooks_free(h);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	got[n] = '\0';
	assert_non_null(strstr(got, "\"id\":\"r1:task_completed:core/build it:1\""));
	assert_non_null(strstr(got, "}r1:task_completed:core/build it:1|build it\n"));
	unlink(path);
	rmdir(dir);
}

/* A hook that hangs: the queue overflows behind it (counted), and a drain
 * with a short deadline stops it at once. */
static void test_overflow_and_cut(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "sleep 30", NULL };
	tlm_spec_hook hk = { TLM_HOOK_RUN_COMPLETED, { 0, 0 }, argv, 3, NULL, NULL, 30 };
	tlm_hooks_opts o = TLM_HOOKS_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_event ev = task_event("completed", 1);
	tlm_hooks_stats st;
	tlm_hooks *h = NULL;
	long long t0;
	int i;
	(void)state;

	ev.kind = TLM_ENGINE_EV_RUN_ENDED;
	o.hooks = &hk;
	o.nhooks = 1;
	o.queue_max = 1;
	assert_int_equal(tlm_hooks_new(&h, &o, &err), 0);
	for (i = 0; i < 4; i++)
		tlm_hooks_on_event(h, &ev);
	tlm_hooks_stats_get(h, &st);
	assert_true(st.dropped >= 2); /* one running at most, one waiting */
	t0 = now_ms();
	assert_int_equal(tlm_hooks_drain(h, 300), 1);
	tlm_hooks_free(h); /* joins: the hook's group got SIGTERM */
	assert_true(now_ms() - t0 < 300 + TLM_HOOKS_KILL_GRACE_MS + 1000);
}

/* With a journal (docs/hooks.md, "At least once"): a run picked up again
 * gets its journaled events replayed, each to the hooks that lack it; two
 * identical hooks are two hooks; a live event already delivered is not
 * delivered again; every delivery is recorded. */
static void test_ledger(void **state)
{
	char *dir = tlm_h_tmpdir(), *got, path[512], cmd[600], want[300],
	     run[TLM_JOURNAL_RUN_ID_LEN + 1], key[TLM_HOOKS_KEY_LEN + 1], tid[128], rid[128];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	tlm_spec_hook hk[3] = {
		{ TLM_HOOK_TASK_COMPLETED, { 0, 0 }, argv, 3, NULL, NULL, 5 },
		{ TLM_HOOK_TASK_COMPLETED, { 0, 0 }, argv, 3, NULL, NULL, 5 },
		{ TLM_HOOK_RUN_COMPLETED, { 0, 0 }, argv, 3, NULL, NULL, 5 },
	};
	tlm_journal_event te = { tid, "task", "core", "build it", "completed", NULL, 1, 0, 1000 };
	tlm_journal_event re = { rid, "run_ended", NULL, NULL, "completed", NULL, 0, 0, 2000 };
	tlm_hooks_opts o = TLM_HOOKS_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_event ev = task_event("resumed", 0);
	tlm_journal *owner = NULL, *ledger = NULL;
	tlm_hooks_stats st;
	tlm_hooks *h = NULL;
	int had = 0;
	(void)state;

	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(cmd, sizeof(cmd), "cat >/dev/null; echo \"$TLM_EVENT_ID\" >> %s", path);
	assert_int_equal(tlm_journal_open(&owner, dir, &err), 0);
	assert_int_equal(tlm_journal_run_new(owner, "wf", "spec", run, &err), 0);
	snprintf(tid, sizeof(tid), "%s:task_completed:core/build it:1", run);
	snprintf(rid, sizeof(rid), "%s:run_completed:completed", run);
	assert_int_equal(tlm_journal_event_put(owner, run, &te, &err), 0);
	assert_int_equal(tlm_journal_event_put(owner, run, &re, &err), 0);
	/* The first hook had the task's event before the crash. */
	assert_int_equal(tlm_hooks__key(&hk[0], 0, key), 0);
	assert_int_equal(tlm_journal_delivery_put(owner, run, tid, key, &err), 0);

	assert_int_equal(tlm_journal_open(&ledger, dir, &err), 0);
	o.hooks = hk;
	o.nhooks = 3;
	o.log = on_log;
	o.journal = ledger;
	assert_int_equal(tlm_hooks_new(&h, &o, &err), 0);
	ev.kind = TLM_ENGINE_EV_RUN_STARTED;
	ev.run_id = run;
	tlm_hooks_on_event(h, &ev);
	ev = task_event("completed", 1); /* the same event, seen live */
	ev.run_id = run;
	tlm_hooks_on_event(h, &ev);
	assert_int_equal(tlm_hooks_drain(h, 10000), 0);
	tlm_hooks_stats_get(h, &st);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(st.failed, 0);
	tlm_hooks_free(h);

	got = tlm_h_slurp(path);
	snprintf(want, sizeof(want), "%s\n%s\n", tid, rid);
	assert_string_equal(got, want); /* the second task hook, the run hook */
	free(got);
	assert_int_equal(tlm_hooks__key(&hk[1], 1, key), 0);
	assert_int_equal(tlm_journal_delivery_get(owner, run, tid, key, &had, &err), 0);
	assert_int_equal(had, 1);
	assert_int_equal(tlm_hooks__key(&hk[2], 0, key), 0);
	assert_int_equal(tlm_journal_delivery_get(owner, run, rid, key, &had, &err), 0);
	assert_int_equal(had, 1);
	tlm_journal_close(ledger);
	tlm_journal_close(owner);
	tlm_h_rmrf(dir);
	free(dir);
}

/* No hooks at all, and a hooks object freed without a drain. */
static void test_empty(void **state)
{
	tlm_hooks_opts o = TLM_HOOKS_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_engine_event ev = task_event("completed", 1);
	tlm_hooks *h = NULL;
	(void)state;

	assert_int_equal(tlm_hooks_new(&h, &o, &err), 0);
	tlm_hooks_on_event(h, &ev);
	assert_int_equal(tlm_hooks_max_timeout_ms(h), 0);
	tlm_hooks_free(h);
	tlm_hooks_free(NULL);
	tlm_hooks_on_event(NULL, &ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload),          cmocka_unit_test(test_parse_arg),
		cmocka_unit_test(test_env_rule),         cmocka_unit_test(test_delivery),
		cmocka_unit_test(test_overflow_and_cut), cmocka_unit_test(test_empty),
		cmocka_unit_test(test_ledger),
	};

	return cmocka_run_group_tests_name("hooks.dispatch", tests, NULL, NULL);
}
