/* The task-event watcher against a real nats-server: payload shapes, team
 * filtering, the wake callback, subscribe-then-publish, a server killed and
 * restarted, the queue cap, failed first connects and bad team ids.  Every
 * wait is bounded by WAIT_MS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "harness/harness.h"
#include "harness/nats.h"
#include "telemachy/events.h"

#define WAIT_MS  10000 /* every wait is bounded by this */
#define QUIET_MS 300   /* how long "nothing more arrives" is watched */
#define MAX_GOT  64

/* What drain handed over, copied out of the borrowed item. */
struct got {
	int n, reconciles;
	int kind[MAX_GOT];
	char team[MAX_GOT][64], task[MAX_GOT][64], status[MAX_GOT][64];
	int state[MAX_GOT];
};

struct fx {
	pid_t nats;
	unsigned short port;
	char url[64];
	tlm_watcher *w;
	tlm_h_sub *pub; /* a second connection that publishes */
	atomic_int wakes;
	struct got got;
};

static void on_item(void *ctx, const tlm_watcher_item *it)
{
	struct got *g = ctx;

	if (it->kind == TLM_WATCHER_RECONCILE)
		g->reconciles++;
	if (g->n >= MAX_GOT)
		return;
	g->kind[g->n] = it->kind;
	g->state[g->n] = it->state;
	snprintf(g->team[g->n], sizeof(g->team[0]), "%s", it->team_id ? it->team_id : "");
	snprintf(g->task[g->n], sizeof(g->task[0]), "%s", it->task_id ? it->task_id : "");
	snprintf(g->status[g->n], sizeof(g->status[0]), "%s", it->status ? it->status : "");
	g->n++;
}

static void on_wake(void *ctx)
{
	atomic_fetch_add((atomic_int *)ctx, 1);
}

/* Index of the event for task, or -1. */
static int find_task(const struct got *g, const char *task)
{
	int i;

	for (i = 0; i < g->n; i++)
		if (g->kind[i] == TLM_WATCHER_EVENT && strcmp(g->task[i], task) == 0)
			return i;
	return -1;
}

/* Drains until the event for task arrived; fails the test after WAIT_MS. */
static int drain_until_task(struct fx *f, const char *task)
{
	int64_t deadline = tlm_h_now_ms() + WAIT_MS;
	int i;

	while ((i = find_task(&f->got, task)) < 0 && tlm_h_now_ms() < deadline) {
		if (tlm_watcher_drain(f->w, on_item, &f->got) == 0)
			tlm_h_sleep_ms(5);
	}
	if (i < 0)
		fail_msg("event for task %s not drained within %d ms", task, WAIT_MS);
	return i;
}

/* Drains for QUIET_MS more: whatever was still to come. */
static void drain_quiet(struct fx *f)
{
	int64_t end = tlm_h_now_ms() + QUIET_MS;

	while (tlm_h_now_ms() < end) {
		tlm_watcher_drain(f->w, on_item, &f->got);
		tlm_h_sleep_ms(10);
	}
	tlm_watcher_drain(f->w, on_item, &f->got);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*state = f;
	f->nats = tlm_h_nats_start(&f->port);
	tlm_h_nats_url(f->url, sizeof(f->url), f->port);
	f->pub = tlm_h_sub_new(f->port, "test.unused");
	return 0;
}

/* Runs even when an assertion failed: nothing outlives its test. */
static int teardown(void **state)
{
	struct fx *f = *state;

	tlm_watcher_free(f->w);
	tlm_h_sub_free(f->pub);
	tlm_h_nats_stop(f->nats);
	free(f);
	return 0;
}

static void watcher_new(struct fx *f, size_t queue_max)
{
	tlm_watcher_opts o = TLM_WATCHER_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;

	o.url = f->url;
	o.connect_timeout_ms = 2000;
	o.queue_max = queue_max;
	o.wake = on_wake;
	o.wake_ctx = &f->wakes;
	assert_int_equal(tlm_watcher_new(&f->w, &o, &err), 0);
	assert_non_null(f->w);
	assert_true(tlm_watcher_connected(f->w));
}

static void subscribe(struct fx *f, const char *team)
{
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(tlm_watcher_subscribe(f->w, team, &err), 0);
}

static void publish(struct fx *f, const char *subject, const char *payload)
{
	tlm_h_sub_publish_str(f->pub, subject, payload);
}

static void expect_event(struct fx *f, const char *task, const char *team, const char *status,
			 int state)
{
	int i = drain_until_task(f, task);

	assert_string_equal(f->got.team[i], team);
	assert_string_equal(f->got.status[i], status);
	assert_int_equal(f->got.state[i], state);
}

/* ---- payload shapes and filtering ---- */

static void test_event_shapes(void **state)
{
	struct fx *f = *state;
	tlm_watcher_stats st;

	watcher_new(f, 0);
	subscribe(f, "t1");
	publish(f, "hi.tasks.t1.k1.updated", "{\"task\":{\"id\":\"k1\",\"status\":\"completed\"}}");
	publish(f, "hi.tasks.t1.k2.updated",
		"{\"id\":\"k2\",\"status\":\"running\",\"task\":null}");
	publish(f, "hi.tasks.t1.k3.completed", "{\"task_id\":\"k3\"}");
	publish(f, "hi.tasks.t1.k4.failed", "{\"task_id\":\"k4\",\"error\":\"boom\"}");
	publish(f, "hi.tasks.t1.k5.started", "{\"task_id\":\"k5\"}");
	publish(f, "hi.tasks.t1.k6.completed", "{not json");
	publish(f, "hi.tasks.t2.k7.completed", "{\"task_id\":\"k7\"}"); /* other team */
	publish(f, "hi.tasks.created",
		"{\"task\":{\"id\":\"k8\",\"status\":\"pending\"}}");                 /* never */
	publish(f, "hi.tasks.t1.k9.updated", "{\"task\":{\"title\":\"no status\"}}"); /* ignored */
	publish(f, "hi.tasks.t1.k10", "{\"status\":\"completed\"}"); /* ignored: 4 tokens */
	publish(f, "hi.tasks.t1.k11.updated",
		"{\"status\":\"a-status-word-much-longer-than-sixty-three-bytes-is-not-a-status-at-"
		"all\"}"); /* ignored: over the cap */
	publish(f, "hi.tasks.t1.end.updated", "{\"task\":{\"status\":\"pending\"}}");

	expect_event(f, "end", "t1", "pending", TLM_TASK_ACTIVE);
	drain_quiet(f);
	expect_event(f, "k1", "t1", "completed", TLM_TASK_COMPLETED);
	expect_event(f, "k2", "t1", "running", TLM_TASK_ACTIVE);
	expect_event(f, "k3", "t1", "completed", TLM_TASK_COMPLETED);
	expect_event(f, "k4", "t1", "failed", TLM_TASK_FAILED);
	expect_event(f, "k5", "t1", "running", TLM_TASK_ACTIVE);
	expect_event(f, "k6", "t1", "completed", TLM_TASK_COMPLETED);
	/* Oldest first: one publisher, one subscription, so in publish order. */
	assert_int_equal(f->got.n, 7);
	assert_int_equal(find_task(&f->got, "k1"), 0);
	assert_int_equal(find_task(&f->got, "k6"), 5);
	assert_int_equal(f->got.reconciles, 0);
	tlm_watcher_stats_get(f->w, &st);
	assert_int_equal(st.received, 10);
	assert_int_equal(st.queued, 7);
	assert_int_equal(st.ignored, 3);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.reconnects, 0);
}

/* Two teams, and the same team twice (one subscription, no duplicates). */
static void test_two_teams_no_duplicates(void **state)
{
	struct fx *f = *state;

	watcher_new(f, 0);
	subscribe(f, "a");
	subscribe(f, "b");
	subscribe(f, "a");
	publish(f, "hi.tasks.a.x.completed", "");
	publish(f, "hi.tasks.b.y.failed", "");
	publish(f, "hi.tasks.c.z.failed", "");
	expect_event(f, "x", "a", "completed", TLM_TASK_COMPLETED);
	expect_event(f, "y", "b", "failed", TLM_TASK_FAILED);
	drain_quiet(f);
	assert_int_equal(f->got.n, 2);
}

static void test_wake_called(void **state)
{
	struct fx *f = *state;
	int64_t deadline = tlm_h_now_ms() + WAIT_MS;

	watcher_new(f, 0);
	subscribe(f, "t1");
	assert_int_equal(atomic_load(&f->wakes), 0);
	publish(f, "hi.tasks.t1.k1.completed", "{}");
	while (atomic_load(&f->wakes) == 0 && tlm_h_now_ms() < deadline)
		tlm_h_sleep_ms(5);
	assert_int_equal(atomic_load(&f->wakes), 1);
	/* The wake comes after the event is queued: it is there now. */
	assert_int_equal(tlm_watcher_drain(f->w, on_item, &f->got), 1);
	assert_string_equal(f->got.task[0], "k1");
}

/* Publishing right after subscribe returns, from another connection, must
 * reach us every time: subscribe waited for the server's registration. */
static void test_subscribe_then_publish(void **state)
{
	struct fx *f = *state;
	char team[16], subject[96], task[16];
	int i;

	watcher_new(f, 0);
	for (i = 0; i < 20; i++) {
		snprintf(team, sizeof(team), "team%d", i);
		snprintf(task, sizeof(task), "k%d", i);
		snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.completed", team, task);
		subscribe(f, team);
		publish(f, subject, "");
	}
	for (i = 0; i < 20; i++) {
		snprintf(team, sizeof(team), "team%d", i);
		snprintf(task, sizeof(task), "k%d", i);
		expect_event(f, task, team, "completed", TLM_TASK_COMPLETED);
	}
}

/* ---- outages ---- */

static void wait_connected(struct fx *f, int want)
{
	int64_t deadline = tlm_h_now_ms() + WAIT_MS;

	while (tlm_watcher_connected(f->w) != want && tlm_h_now_ms() < deadline)
		tlm_h_sleep_ms(10);
	assert_int_equal(tlm_watcher_connected(f->w), want);
}

static void test_restart_reconciles(void **state)
{
	struct fx *f = *state;
	int64_t deadline;
	tlm_watcher_stats st;
	int n;

	watcher_new(f, 0);
	subscribe(f, "t1");
	publish(f, "hi.tasks.t1.before.completed", "");
	expect_event(f, "before", "t1", "completed", TLM_TASK_COMPLETED);
	tlm_h_nats_kill(f->nats);
	f->nats = 0;
	wait_connected(f, 0);
	f->nats = tlm_h_nats_restart(0, f->port);
	wait_connected(f, 1);
	deadline = tlm_h_now_ms() + WAIT_MS;
	while (f->got.reconciles == 0 && tlm_h_now_ms() < deadline) {
		tlm_watcher_drain(f->w, on_item, &f->got);
		tlm_h_sleep_ms(5);
	}
	assert_int_equal(f->got.reconciles, 1);
	assert_int_equal(tlm_h_sub_ready(f->pub, WAIT_MS), 0);
	/* Our SUB was resent before the reconnected callback, but the server
	 * handles the two connections independently: probe until one lands. */
	deadline = tlm_h_now_ms() + WAIT_MS;
	for (n = 0; find_task(&f->got, "after") < 0 && tlm_h_now_ms() < deadline; n++) {
		publish(f, "hi.tasks.t1.after.completed", "");
		tlm_h_sleep_ms(50);
		tlm_watcher_drain(f->w, on_item, &f->got);
	}
	assert_true(find_task(&f->got, "after") >= 0);
	tlm_watcher_stats_get(f->w, &st);
	assert_int_equal(st.reconnects, 1);
	assert_int_equal(f->got.reconciles, 1);
}

/* While NATS is down nothing can be confirmed: TLM_ETIMEOUT, no half
 * subscription left behind (free does not wait for one), and the same team
 * can be subscribed once NATS is back. */
static void test_subscribe_while_down(void **state)
{
	struct fx *f = *state;
	tlm_error err = TLM_ERROR_INIT;
	int64_t t0;

	watcher_new(f, 0);
	tlm_h_nats_kill(f->nats);
	f->nats = 0;
	wait_connected(f, 0);
	t0 = tlm_h_now_ms();
	assert_int_equal(tlm_watcher_subscribe(f->w, "t1", &err), TLM_ETIMEOUT);
	assert_true(tlm_h_now_ms() - t0 < 2000 + 1000);
	assert_non_null(strstr(err.message, "t1"));
	f->nats = tlm_h_nats_restart(0, f->port);
	wait_connected(f, 1);
	subscribe(f, "t1");
	assert_int_equal(tlm_h_sub_ready(f->pub, WAIT_MS), 0);
	publish(f, "hi.tasks.t1.k1.completed", "");
	expect_event(f, "k1", "t1", "completed", TLM_TASK_COMPLETED);
	t0 = tlm_h_now_ms();
	tlm_watcher_free(f->w);
	f->w = NULL;
	assert_true(tlm_h_now_ms() - t0 < 1000);
}

/* A batch of teams costs one round trip: with NATS down the engine's
 * thread waits one timeout for all of them, not one per team; all or none;
 * once NATS is back every team of the batch gets its events. */
static void test_subscribe_all(void **state)
{
	struct fx *f = *state;
	const char *teams[] = { "ta", "tb", "tc" };
	tlm_error err = TLM_ERROR_INIT;
	int64_t t0;

	watcher_new(f, 0);
	tlm_h_nats_kill(f->nats);
	f->nats = 0;
	wait_connected(f, 0);
	t0 = tlm_h_now_ms();
	assert_int_equal(tlm_watcher_subscribe_all(f->w, teams, 3, &err), TLM_ETIMEOUT);
	assert_true(tlm_h_now_ms() - t0 < 2000 + 1000); /* one timeout (2 s), not three */
	assert_non_null(strstr(err.message, "3 teams"));
	f->nats = tlm_h_nats_restart(0, f->port);
	wait_connected(f, 1);
	assert_int_equal(tlm_watcher_subscribe_all(f->w, teams, 3, &err), 0);
	assert_int_equal(tlm_h_sub_ready(f->pub, WAIT_MS), 0);
	publish(f, "hi.tasks.tc.k9.completed", "");
	expect_event(f, "k9", "tc", "completed", TLM_TASK_COMPLETED);
	publish(f, "hi.tasks.ta.k8.failed", "");
	expect_event(f, "k8", "ta", "failed", TLM_TASK_FAILED);
}

/* ---- the queue cap ---- */

static void wait_received(struct fx *f, uint64_t n)
{
	int64_t deadline = tlm_h_now_ms() + WAIT_MS;
	tlm_watcher_stats st;

	do {
		tlm_watcher_stats_get(f->w, &st);
	} while (st.received < n && tlm_h_now_ms() < deadline && (tlm_h_sleep_ms(5), 1));
	assert_int_equal(st.received, n);
}

static void test_queue_cap(void **state)
{
	struct fx *f = *state;
	char subject[64];
	tlm_watcher_stats st;
	int i;

	watcher_new(f, 5);
	subscribe(f, "t1");
	for (i = 0; i < 20; i++) {
		snprintf(subject, sizeof(subject), "hi.tasks.t1.k%d.completed", i);
		publish(f, subject, "");
	}
	wait_received(f, 20);
	/* The five that fit, oldest first, then the owed reconcile. */
	assert_int_equal(tlm_watcher_drain(f->w, on_item, &f->got), 6);
	assert_int_equal(f->got.n, 6);
	for (i = 0; i < 5; i++) {
		snprintf(subject, sizeof(subject), "k%d", i);
		assert_int_equal(f->got.kind[i], TLM_WATCHER_EVENT);
		assert_string_equal(f->got.task[i], subject);
	}
	assert_int_equal(f->got.kind[5], TLM_WATCHER_RECONCILE);
	assert_int_equal(f->got.reconciles, 1);
	tlm_watcher_stats_get(f->w, &st);
	assert_int_equal(st.queued, 5);
	assert_int_equal(st.dropped, 15);
	/* The debt was paid: the next event comes alone. */
	publish(f, "hi.tasks.t1.next.completed", "");
	expect_event(f, "next", "t1", "completed", TLM_TASK_COMPLETED);
	assert_int_equal(f->got.n, 7);
	assert_int_equal(f->got.reconciles, 1);
}

/* ---- failures ---- */

static void new_fails(const char *url, const char *token, long timeout_ms, int *rc, tlm_error *err,
		      int64_t *elapsed_ms)
{
	tlm_watcher_opts o = TLM_WATCHER_OPTS_INIT;
	tlm_watcher *w = (tlm_watcher *)(void *)&o; /* must be reset to NULL */
	int64_t t0 = tlm_h_now_ms();

	o.url = url;
	o.token = token;
	o.connect_timeout_ms = timeout_ms;
	*rc = tlm_watcher_new(&w, &o, err);
	*elapsed_ms = tlm_h_now_ms() - t0;
	assert_null(w);
}

static void test_connect_refused(void **state)
{
	char url[128], shown[128];
	unsigned short port = tlm_h_free_port();
	tlm_error err = TLM_ERROR_INIT;
	int64_t ms;
	int rc;

	(void)state;
	tlm_h_nats_url(url, sizeof(url), port);
	new_fails(url, "s3cret-t0ken", 2000, &rc, &err, &ms);
	assert_int_equal(rc, TLM_ERROR); /* refused at once: no server available */
	assert_true(ms < 2000 + 1000);
	assert_non_null(strstr(err.message, url));
	assert_null(strstr(err.message, "s3cret"));
	/* Credentials in the URL are masked, the host and port kept. */
	snprintf(url, sizeof(url), "nats://bob:pa55w0rd@127.0.0.1:%u,nats://tok3n@127.0.0.1:%u",
		 port, port);
	snprintf(shown, sizeof(shown), "nats://***@127.0.0.1:%u,nats://***@127.0.0.1:%u", port,
		 port);
	new_fails(url, NULL, 2000, &rc, &err, &ms);
	assert_non_null(strstr(err.message, shown));
	assert_null(strstr(err.message, "pa55w0rd"));
	assert_null(strstr(err.message, "tok3n"));
}

/* A peer that accepts TCP but never speaks NATS: the timeout decides. */
static void test_connect_timeout(void **state)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char url[64];
	tlm_error err = TLM_ERROR_INIT;
	int64_t ms;
	int rc, fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	tlm_h_nats_url(url, sizeof(url), ntohs(a.sin_port));
	new_fails(url, "s3cret-t0ken", 500, &rc, &err, &ms);
	close(fd);
	assert_int_equal(rc, TLM_ETIMEOUT);
	assert_true(ms >= 400 && ms < 500 + 1500);
	assert_non_null(strstr(err.message, url));
	assert_null(strstr(err.message, "s3cret"));
}

static void test_bad_url(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	int64_t ms;
	int rc;

	(void)state;
	new_fails(NULL, NULL, 100, &rc, &err, &ms);
	assert_int_equal(rc, TLM_EINVALID);
	new_fails("", NULL, 100, &rc, &err, &ms);
	assert_int_equal(rc, TLM_EINVALID);
	new_fails("nats://127.0.0.1:1\r\nPUB x", NULL, 100, &rc, &err, &ms);
	assert_int_equal(rc, TLM_EINVALID);
}

static void test_invalid_team(void **state)
{
	static const char *const bad[] = { "",   "a.b", "a*",   "*",    ">",
					   "a>", "a b", "a\tb", "a\nb", "caf\xc3\xa9" };
	struct fx *f = *state;
	tlm_error err = TLM_ERROR_INIT;
	char longid[TLM_WATCHER_ID_MAX + 2];
	size_t i;

	watcher_new(f, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tlm_watcher_subscribe(f->w, bad[i], &err), TLM_EINVALID);
	assert_int_equal(tlm_watcher_subscribe(f->w, NULL, &err), TLM_EINVALID);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(tlm_watcher_subscribe(f->w, longid, &err), TLM_EINVALID);
	longid[TLM_WATCHER_ID_MAX] = '\0';
	assert_int_equal(tlm_watcher_subscribe(f->w, longid, &err), 0);
}

/* Many events with large payloads, interleaved across two teams: every one
 * arrives, each team's in order, while the handled messages are destroyed
 * in batches by count and by bytes; the last few, still held, are destroyed
 * by free (valgrind/LSan check). */
static void test_many_events(void **state)
{
	struct fx *f = *state;
	enum { N = 60, PAD = 10000 };
	char subject[64], task[16], *payload = malloc(PAD + 64);
	int i, last[2] = { -1, -1 };

	assert_non_null(payload);
	watcher_new(f, 0);
	subscribe(f, "ta");
	subscribe(f, "tb");
	for (i = 0; i < N; i++) {
		snprintf(subject, sizeof(subject), "hi.tasks.%s.k%d.updated", i % 2 ? "tb" : "ta",
			 i);
		snprintf(payload, PAD + 64, "{\"task\":{\"status\":\"%s\",\"d\":\"%0*d\"}}",
			 i % 3 ? "completed" : "running", PAD, i);
		publish(f, subject, payload);
	}
	free(payload);
	wait_received(f, N);
	while (tlm_watcher_drain(f->w, on_item, &f->got) > 0)
		;
	assert_int_equal(f->got.n, N);
	for (i = 0; i < N; i++) {
		int k = atoi(f->got.task[i] + 1), team = strcmp(f->got.team[i], "tb") == 0;

		assert_int_equal(k % 2, team);
		assert_true(k > last[team]); /* in publish order within the team */
		last[team] = k;
		assert_string_equal(f->got.status[i], k % 3 ? "completed" : "running");
		snprintf(task, sizeof(task), "k%d", k);
		assert_string_equal(f->got.task[i], task);
	}
	assert_int_equal(f->got.reconciles, 0);
}

/* Freeing with events still queued frees them (valgrind/LSan check). */
static void test_free_with_queued(void **state)
{
	struct fx *f = *state;

	watcher_new(f, 0);
	subscribe(f, "t1");
	publish(f, "hi.tasks.t1.k1.completed", "");
	publish(f, "hi.tasks.t1.k2.failed", "");
	wait_received(f, 2);
	tlm_watcher_free(f->w);
	f->w = NULL;
}

static void test_null_handle(void **state)
{
	tlm_watcher_stats st;

	(void)state;
	memset(&st, 0xff, sizeof(st));
	tlm_watcher_stats_get(NULL, &st);
	assert_int_equal(st.received + st.queued + st.dropped + st.ignored + st.reconnects, 0);
	assert_int_equal(tlm_watcher_connected(NULL), 0);
	tlm_watcher_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_event_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_teams_no_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_called, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_then_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_reconciles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_while_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_team, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_queued, setup, teardown),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_bad_url),
		cmocka_unit_test(test_null_handle),
	};
	int failed = cmocka_run_group_tests_name("events.watcher", tests, NULL, NULL);

	/* libnats' global threads, joined so valgrind and LeakSanitizer see
	 * no memory held by running threads. */
	nats_CloseAndWait(5000);
	return failed;
}
